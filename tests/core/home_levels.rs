//! Homes per sensitivity level (`Home.secretHome`): a notebook with secret data never writes
//! anything a normal notebook of the same user can read, the home included.

use notebook_volumes::admission::{Effect, MountSource, Review};
use notebook_volumes::keys;
use notebook_volumes::policy::PolicySnapshot;

use crate::fixtures::*;

const SECRET_HOME: &str = "home-alice--secret";

/// The example policies with the Home's `secretHome` set to `mode`.
fn examples_with(mode: &str) -> PolicySnapshot {
    let loaded = notebook_volumes::files::load_policies(&[repo("examples/policies")]).unwrap();
    let units: Vec<_> = loaded
        .units
        .into_iter()
        .map(|mut u| {
            for s in &mut u.sources {
                s.text = s.text.replace(
                    "claimNameTemplate: \"home-{user}\"",
                    &format!("claimNameTemplate: \"home-{{user}}\"\nsecretHome: {mode}"),
                );
            }
            u
        })
        .collect();
    let snap = PolicySnapshot::compile(&units);
    assert!(snap.findings().next().is_none());
    snap
}

fn home_record(outcome: &Review) -> (String, bool) {
    let home = outcome
        .mounts
        .iter()
        .find(|m| m.source == MountSource::Home)
        .expect("a home is mounted");
    (home.claim_name.clone(), home.read_only)
}

/// alice's own plain pod (she creates it) mounting `claim` read-write, beside the public share's
/// claim; `secret` adds the secret mergers share's claim.
fn plain_pod(claim: &str, secret: bool) -> k8s_openapi::api::core::v1::Pod {
    let extra = if secret {
        "\n  - {name: m, persistentVolumeClaim: {claimName: mergers-data}}"
    } else {
        ""
    };
    pod(&format!(
        "metadata: {{name: job}}\nspec:\n  containers:\n  - name: job\n    volumeMounts: [{{name: h, mountPath: /h}}, {{name: d, mountPath: /d}}]\n  volumes:\n  - {{name: h, persistentVolumeClaim: {{claimName: {claim}}}}}\n  - {{name: d, persistentVolumeClaim: {{claimName: scratch}}}}{extra}\n"
    ))
}

#[test]
fn separate_is_the_default_a_secret_notebook_gets_its_own_home_created_with_its_level() {
    let case = Case::new(examples(), HUB);
    let outcome = case.review(&example_pod("kubespawner-alice-secret"));
    assert!(outcome.allowed(), "{:?}", outcome.message());
    assert_eq!(home_record(&outcome), (SECRET_HOME.to_string(), false));
    let [Effect::CreateClaim(pvc)] = outcome.effects.as_slice() else {
        panic!(
            "expected the secret home's creation, got {:?}",
            outcome.effects
        )
    };
    assert_eq!(pvc.metadata.name.as_deref(), Some(SECRET_HOME));
    let labels = pvc.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(keys::HOME_LABEL).map(String::as_str),
        Some("true")
    );
    assert_eq!(
        labels.get(keys::HOME_LEVEL_LABEL).map(String::as_str),
        Some(keys::HOME_LEVEL_SECRET)
    );
    // The normal home is not in the pod at all.
    assert!(!outcome.mounts.iter().any(|m| m.claim_name == "home-alice"));
    // A normal notebook of alice's still gets the normal home.
    let normal = case.review(&example_pod("kubespawner-alice"));
    assert_eq!(home_record(&normal), ("home-alice".to_string(), false));
}

#[test]
fn read_only_mode_mounts_the_normal_home_read_only_in_a_secret_notebook() {
    let case = Case::new(examples_with("readOnly"), HUB).claim("home-alice", true, Some("alice"));
    let pod = example_pod("kubespawner-alice-secret");
    let outcome = case.review(&pod);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    assert_eq!(home_record(&outcome), ("home-alice".to_string(), true));
    assert!(outcome.effects.is_empty());
    let patched = apply(&pod, &outcome);
    assert_eq!(volume_read_only(&patched, keys::HOME_VOLUME), Some(true));
    assert!(
        mounts_of(&patched, "notebook").contains(&("/opt/app-root/src".to_string(), true)),
        "{:?}",
        mounts_of(&patched, "notebook")
    );
    // Not created just to be mounted read-only: a warning says why it is missing.
    let fresh = Case::new(examples_with("readOnly"), HUB).review(&pod);
    assert!(fresh.allowed() && fresh.effects.is_empty());
    assert!(!fresh.mounts.iter().any(|m| m.source == MountSource::Home));
    assert!(
        fresh.warnings.iter().any(|w| w.contains("readOnly")),
        "{:?}",
        fresh.warnings
    );
}

#[test]
fn check_rejects_an_unknown_secret_home_mode() {
    let snap =
        policy("kind: Home\nclaimNameTemplate: home-{user}\nmountPath: /h\nsecretHome: shared\n");
    let finding = snap.findings().next().expect("an error");
    assert!(
        finding.message.contains("secretHome") || finding.message.contains("shared"),
        "{}",
        finding.message
    );
    assert!(snap.findings().next().is_some());
}

#[test]
fn a_normal_pod_of_the_user_may_not_mount_the_secret_level_home() {
    let case = Case::new(examples(), "alice").claim(SECRET_HOME, true, Some("alice"));
    let outcome = case.review(&plain_pod(SECRET_HOME, false));
    assert!(
        !outcome.allowed(),
        "a plain pod of alice's mounted her secret home"
    );
    assert!(
        outcome.message().unwrap().contains("secret-level home"),
        "{:?}",
        outcome.message()
    );
    // Before it exists too: the name is reserved for her secret notebooks.
    let fresh = Case::new(examples(), "alice").review(&plain_pod(SECRET_HOME, false));
    assert!(!fresh.allowed());
}

#[test]
fn a_statefulset_pod_of_the_user_without_secret_data_may_not_mount_it() {
    let case = Case::new(
        policy(&format!(
            "{}\n---\nkind: Settings\ntrustedControllers: [{STS}]\n",
            std::fs::read_to_string(repo("examples/policies/shares.yaml")).unwrap()
                + "\n---\nkind: Home\nclaimNameTemplate: home-{user}\nmountPath: /home\n"
        )),
        STS,
    )
    .claim(SECRET_HOME, true, Some("alice"));
    let pod = stamped(plain_pod(SECRET_HOME, false), "nb", "alice");
    assert!(!case.review(&pod).allowed());
}

#[test]
fn a_secret_pod_of_the_user_may_mount_it_and_everything_else_turns_read_only() {
    let case = Case::new(examples(), "alice").claim(SECRET_HOME, true, Some("alice"));
    let pod = plain_pod(SECRET_HOME, true);
    let outcome = case.review(&pod);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    let patched = apply(&pod, &outcome);
    assert_eq!(
        mounts_of(&patched, "job"),
        vec![("/h".into(), false), ("/d".into(), true)]
    );
}

#[test]
fn the_normal_home_is_read_only_in_any_pod_with_secret_data() {
    // A spawner (or alice herself) mounting the normal home beside a secret share.
    let case = Case::new(examples(), "alice").claim("home-alice", true, Some("alice"));
    let pod = plain_pod("home-alice", true);
    let outcome = case.review(&pod);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    let patched = apply(&pod, &outcome);
    assert_eq!(mounts_of(&patched, "job")[0], ("/h".to_string(), true));
    assert_eq!(volume_read_only(&patched, "h"), Some(true));
}

#[test]
fn another_user_may_never_mount_a_secret_level_home() {
    let case = Case::new(examples(), "bob").claim(SECRET_HOME, true, Some("alice"));
    let outcome = case.review(&plain_pod(SECRET_HOME, false));
    assert!(!outcome.allowed());
    // dave is entitled to mergers but it is alice's secret home.
    let dave = Case::new(examples(), "dave").claim(SECRET_HOME, true, Some("alice"));
    assert!(!dave.review(&plain_pod(SECRET_HOME, true)).allowed());
}

#[test]
fn ephemeral_volumes_may_not_clone_or_be_marked_as_a_secret_level_home() {
    let case = Case::new(examples(), "alice").claim(SECRET_HOME, true, Some("alice"));
    let cloning = pod(&format!(
        "metadata: {{name: job}}\nspec:\n  containers: [{{name: job, volumeMounts: [{{name: e, mountPath: /e}}]}}]\n  volumes:\n  - name: e\n    ephemeral:\n      volumeClaimTemplate:\n        spec:\n          accessModes: [ReadWriteOnce]\n          resources: {{requests: {{storage: 1Gi}}}}\n          dataSource: {{kind: PersistentVolumeClaim, name: {SECRET_HOME}}}\n"
    ));
    assert!(
        !case.review(&cloning).allowed(),
        "an ephemeral clone of the secret home"
    );
    let marked = pod(
        "metadata: {name: job}\nspec:\n  containers: [{name: job, volumeMounts: [{name: e, mountPath: /e}]}]\n  volumes:\n  - name: e\n    ephemeral:\n      volumeClaimTemplate:\n        metadata: {labels: {notebook-volumes.io/home-level: secret}}\n        spec:\n          accessModes: [ReadWriteOnce]\n          resources: {requests: {storage: 1Gi}}\n",
    );
    assert!(!case.review(&marked).allowed());
    // Generated under the secret home's name: `<pod>-<volume>`.
    let named = pod(
        "metadata: {name: home-alice-}\nspec:\n  containers: [{name: job, volumeMounts: [{name: secret, mountPath: /e}]}]\n  volumes:\n  - name: secret\n    ephemeral:\n      volumeClaimTemplate:\n        spec:\n          accessModes: [ReadWriteOnce]\n          resources: {requests: {storage: 1Gi}}\n",
    );
    assert!(!case.review(&named).allowed());
}

#[test]
fn a_debug_container_in_a_normal_pod_may_not_add_the_secret_level_home() {
    // Pod volumes are immutable, but the guard judges the debug container's mounts again: the
    // pod has no secret data, so its secret home is refused there too.
    let case = Case::new(examples(), "alice").claim(SECRET_HOME, true, Some("alice"));
    let old = plain_pod(SECRET_HOME, false);
    let mut new = old.clone();
    new.spec.as_mut().unwrap().ephemeral_containers = Some(vec![serde_json::from_value(
        serde_json::json!({"name": "dbg", "image": "busybox", "volumeMounts": [{"name": "h", "mountPath": "/h"}]}),
    )
    .unwrap()]);
    assert!(!case.review_update(&old, &new, true).allowed());
}
