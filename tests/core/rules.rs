//! The rules of docs/design.md (access, identity, the decision), one test each, on the example policy set and small policies.

use notebook_volumes::admission::{Effect, MountSource};
use notebook_volumes::keys;

use crate::fixtures::*;

fn ro(path: &str) -> (String, bool) {
    (path.to_string(), true)
}
fn rw(path: &str) -> (String, bool) {
    (path.to_string(), false)
}

const LMOD: &[(&str, &str)] = &[
    (
        "MODULEPATH",
        "/opt/apps/modulefiles/Core:/opt/apps/modulefiles/Linux",
    ),
    ("LMOD_PKG", "/opt/apps/lmod/lmod"),
    ("MODULESHOME", "/opt/apps/lmod/lmod"),
    ("LMOD_DIR", "/opt/apps/lmod/lmod/libexec"),
    ("LMOD_CMD", "/opt/apps/lmod/lmod/libexec/lmod"),
    ("BASH_ENV", "/opt/apps/lmod/lmod/init/bash"),
    ("ENV", "/opt/apps/lmod/lmod/init/profile"),
    ("LMOD_SYSTEM_DEFAULT_MODULES", "StdEnv"),
    ("APPS_ROOT", "/opt/apps"),
];

#[test]
fn kubespawner_pod_from_trusted_hub_gets_home_entitled_shares_and_library() {
    let case = Case::new(examples(), HUB);
    let pod = example_pod("kubespawner-alice");
    let outcome = case.review(&pod);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    assert_eq!(outcome.user.as_deref(), Some("alice"));
    let patched = apply(&pod, &outcome);
    assert_eq!(
        mounts_of(&patched, "notebook"),
        vec![
            rw("/opt/app-root/src"),
            ro("/opt/app-root/src/shares/datasets"),
            rw("/opt/app-root/src/shares/notebooks"),
            rw("/opt/app-root/src/shares/finance"),
            ro("/opt/apps"),
        ]
    );
    assert_eq!(volume_read_only(&patched, "nv-home"), Some(false));
    assert_eq!(volume_read_only(&patched, "nv-share-datasets"), Some(true));
    assert_eq!(volume_read_only(&patched, "nv-lib-apps"), Some(true));
    for (name, value) in LMOD {
        assert_eq!(
            env_of(&patched, "notebook", name).as_deref(),
            Some(*value),
            "{name}"
        );
    }
    assert_eq!(
        annotation(&patched, keys::USER_ANNOTATION).as_deref(),
        Some("alice")
    );
    assert_eq!(
        annotation(&patched, keys::MOUNTS_ANNOTATION).as_deref(),
        Some("home=rw,datasets=ro,finance=rw,team-notebooks=rw,apps=ro")
    );
    let audit = &outcome.audit_annotations;
    assert_eq!(audit.get("user").map(String::as_str), Some("alice"));
    assert!(audit.get("mounts").is_some());
    // First launch: the home claim is created with its label and owner.
    let [Effect::CreateClaim(pvc)] = outcome.effects.as_slice() else {
        panic!("expected one claim creation, got {:?}", outcome.effects)
    };
    assert_eq!(pvc.metadata.name.as_deref(), Some("home-alice"));
    assert_eq!(
        pvc.metadata.labels.as_ref().unwrap()[keys::HOME_LABEL],
        "true"
    );
    assert_eq!(
        pvc.metadata.annotations.as_ref().unwrap()[keys::OWNER_ANNOTATION],
        "alice"
    );
    let spec = pvc.spec.as_ref().unwrap();
    assert_eq!(
        spec.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_string()][..])
    );
    assert_eq!(
        spec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
        "2Gi"
    );
}

#[test]
fn odh_pod_gets_mounts_in_its_notebook_name_container_and_oauth_proxy_is_untouched() {
    let case = Case::new(examples(), STS);
    let pod = stamped(example_pod("odh-bob"), "bob-workbench", "bob");
    let outcome = case.review(&pod);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    assert_eq!(outcome.user.as_deref(), Some("bob"));
    let patched = apply(&pod, &outcome);
    assert_eq!(
        mounts_of(&patched, "bob-workbench"),
        vec![
            rw("/opt/app-root/src"),
            ro("/opt/app-root/src/shares/datasets"),
            rw("/opt/app-root/src/shares/notebooks"),
            ro("/opt/app-root/src/shares/finance"),
            ro("/opt/apps"),
        ]
    );
    assert_eq!(volume_read_only(&patched, "nv-share-finance"), Some(true));
    assert_eq!(
        env_of(&patched, "bob-workbench", "LMOD_CMD").as_deref(),
        Some("/opt/apps/lmod/lmod/libexec/lmod")
    );
    let sidecar = |p: &k8s_openapi::api::core::v1::Pod| {
        serde_json::to_value(&p.spec.as_ref().unwrap().containers[1]).unwrap()
    };
    assert_eq!(
        sidecar(&patched),
        sidecar(&pod),
        "oauth-proxy must not change"
    );
}

#[test]
fn notebook_container_falls_back_to_the_first_container() {
    let case = Case::new(examples(), HUB);
    let pod = pod(
        "metadata: {labels: {component: singleuser-server}, annotations: {hub.jupyter.org/username: erin}}\nspec:\n  containers:\n  - {name: lab}\n  - {name: sidecar}\n",
    );
    let patched = apply(&pod, &case.review(&pod));
    assert!(!mounts_of(&patched, "lab").is_empty());
    assert!(mounts_of(&patched, "sidecar").is_empty());
}

#[test]
fn identity_untrusted_requester_claiming_another_user_is_denied() {
    let case = Case::new(examples(), "carol");
    let outcome = case.review(&example_pod("carol-claims-bob"));
    assert!(!outcome.allowed());
    let message = outcome.message().unwrap();
    assert!(
        message.starts_with("pod claims user 'bob' but was created by 'carol'; only trusted spawners may create notebooks for other users"),
        "{message}"
    );
    assert!(
        message.contains("trustedSpawners") && message.contains("Settings"),
        "{message}"
    );
    let response = case.respond(&example_pod("carol-claims-bob"));
    assert_eq!(response.result.code, 403);
    assert_eq!(
        response.audit_annotations.get("reason").map(String::as_str),
        Some(message.as_str())
    );
    assert!(outcome.patch.is_empty() && outcome.effects.is_empty());
}

#[test]
fn identity_without_settings_no_requester_is_trusted() {
    let case = Case::new(policy("kind: Groups\ngroups: {}\n"), HUB);
    let outcome = case.review(&example_pod("kubespawner-alice"));
    assert!(!outcome.allowed());
    assert!(
        outcome
            .message()
            .unwrap()
            .contains(&format!("created by '{HUB}'"))
    );
}

#[test]
fn identity_pod_created_by_the_user_uses_userinfo_and_its_groups() {
    // carol is an analyst by policy; the identity provider adds finance-admins, which writes finance.
    let case = Case::new(examples(), "carol").groups(&["finance-admins", "system:authenticated"]);
    let pod = pod(
        "metadata: {name: mine, labels: {component: singleuser-server}, annotations: {hub.jupyter.org/username: carol}}\nspec: {containers: [{name: notebook}]}\n",
    );
    let outcome = case.review(&pod);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    assert_eq!(outcome.user.as_deref(), Some("carol"));
    let patched = apply(&pod, &outcome);
    assert!(mounts_of(&patched, "notebook").contains(&rw("/opt/app-root/src/shares/finance")));
    // Without the userInfo group she only reads it.
    let case = Case::new(examples(), "carol");
    let patched = apply(&pod, &case.review(&pod));
    assert!(mounts_of(&patched, "notebook").contains(&ro("/opt/app-root/src/shares/finance")));
}

#[test]
fn identity_groups_from_userinfo_are_ignored_when_a_spawner_names_the_user() {
    let case = Case::new(examples(), HUB).groups(&["finance-admins"]);
    let pod = example_pod("kubespawner-alice");
    let mut pod = pod;
    pod.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("hub.jupyter.org/username".into(), "dave".into());
    let patched = apply(&pod, &case.review(&pod));
    assert!(
        !mounts_of(&patched, "notebook")
            .iter()
            .any(|(p, _)| p.ends_with("finance"))
    );
}

#[test]
fn identity_trusted_spawner_pod_without_username_is_anonymous_and_gets_nothing() {
    let case = Case::new(examples(), HUB);
    let pod = pod(
        "metadata: {labels: {component: singleuser-server}}\nspec: {containers: [{name: notebook}]}\n",
    );
    let outcome = case.review(&pod);
    assert!(outcome.allowed());
    assert!(outcome.patch.is_empty(), "{:?}", outcome.patch);
    assert_eq!(outcome.user, None);
}

#[test]
fn secret_share_mounted_makes_every_public_and_private_share_read_only() {
    let case = Case::new(examples(), HUB);
    let pod = example_pod("kubespawner-alice-secret");
    let outcome = case.review(&pod);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    let patched = apply(&pod, &outcome);
    assert_eq!(
        mounts_of(&patched, "notebook"),
        vec![
            rw("/opt/app-root/src"),
            ro("/opt/app-root/src/shares/datasets"),
            ro("/opt/app-root/src/shares/notebooks"),
            ro("/opt/app-root/src/shares/finance"),
            rw("/opt/app-root/src/shares/mergers"),
            ro("/opt/apps"),
        ]
    );
    assert_eq!(volume_read_only(&patched, "nv-share-finance"), Some(true));
    assert_eq!(
        volume_read_only(&patched, "nv-share-team-notebooks"),
        Some(true)
    );
    assert_eq!(
        annotation(&patched, keys::MOUNTS_ANNOTATION).as_deref(),
        Some("home=rw,datasets=ro,finance=ro,mergers=rw,team-notebooks=ro,apps=ro")
    );
    let warnings = outcome.warnings.clone();
    assert!(
        warnings.iter().any(|w| w.contains("no write-down")),
        "{warnings:?}"
    );
}

#[test]
fn secret_share_referenced_directly_also_forbids_write_down() {
    // A plain pod of alice's (created by herself) that mounts mergers and finance directly.
    let case = Case::new(examples(), "alice");
    let pod = pod(
        "metadata: {name: job}\nspec:\n  containers:\n  - name: job\n    volumeMounts: [{name: m, mountPath: /m}, {name: f, mountPath: /f}]\n  volumes:\n  - {name: m, persistentVolumeClaim: {claimName: mergers-data}}\n  - {name: f, persistentVolumeClaim: {claimName: finance-data}}\n",
    );
    let outcome = case.review(&pod);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    let patched = apply(&pod, &outcome);
    assert_eq!(mounts_of(&patched, "job"), vec![rw("/m"), ro("/f")]);
    assert_eq!(volume_read_only(&patched, "f"), Some(true));
    assert_eq!(volume_read_only(&patched, "m"), Some(false));
}

#[test]
fn secret_share_is_never_in_a_default_notebook() {
    let case = Case::new(examples(), HUB);
    let outcome = case.review(&example_pod("kubespawner-alice"));
    assert!(
        !outcome
            .mounts
            .iter()
            .any(|m| m.source == MountSource::Share("mergers".into()))
    );
}

#[test]
fn secret_share_asked_for_without_entitlement_is_denied() {
    let case = Case::new(examples(), HUB);
    let mut pod = example_pod("kubespawner-alice-secret");
    pod.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("hub.jupyter.org/username".into(), "bob".into());
    let outcome = case.review(&pod);
    assert!(!outcome.allowed());
    assert!(
        outcome
            .message()
            .unwrap()
            .contains("secret share 'mergers'"),
        "{:?}",
        outcome.message()
    );
    // An unknown name gets the same answer, so probing does not reveal which secret shares exist.
    pod.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(keys::SECRET_SHARES_ANNOTATION.into(), "nope".into());
    assert!(
        case.review(&pod)
            .message()
            .unwrap()
            .contains("is not available to user 'bob'")
    );
}

fn finance_job(mode_read_only: bool) -> k8s_openapi::api::core::v1::Pod {
    let mut pod = example_pod("batch-reads-finance");
    if mode_read_only {
        let spec = pod.spec.as_mut().unwrap();
        spec.containers[0].volume_mounts.as_mut().unwrap()[0].read_only = Some(true);
    }
    pod
}

#[test]
fn guard_denies_a_private_claim_to_a_user_without_access() {
    let case = Case::new(examples(), "erin");
    let outcome = case.review(&finance_job(false));
    assert!(!outcome.allowed());
    let m = outcome.message().unwrap();
    assert!(
        m.contains("volume 'data'")
            && m.contains("claim 'finance-data'")
            && m.contains("user 'erin'"),
        "{m}"
    );
}

#[test]
fn guard_forces_a_readers_read_write_reference_read_only_on_mount_and_volume() {
    let case = Case::new(examples(), "bob");
    let pod = finance_job(false);
    let outcome = case.review(&pod);
    assert!(outcome.allowed());
    let patched = apply(&pod, &outcome);
    assert_eq!(mounts_of(&patched, "report"), vec![ro("/data")]);
    assert_eq!(volume_read_only(&patched, "data"), Some(true));
}

#[test]
fn guard_leaves_a_writers_reference_read_write() {
    let case = Case::new(examples(), "alice");
    let outcome = case.review(&finance_job(false));
    assert!(outcome.allowed());
    assert!(outcome.patch.is_empty(), "{:?}", outcome.patch);
}

#[test]
fn guard_never_turns_read_only_into_read_write() {
    let case = Case::new(examples(), "alice");
    let pod = finance_job(true);
    let patched = apply(&pod, &case.review(&pod));
    assert_eq!(mounts_of(&patched, "report"), vec![ro("/data")]);
}

#[test]
fn guard_forces_library_claims_read_only() {
    let case = Case::new(examples(), "erin");
    let pod = pod(
        "metadata: {name: x}\nspec:\n  containers: [{name: c, volumeMounts: [{name: apps, mountPath: /opt/apps}]}]\n  volumes: [{name: apps, persistentVolumeClaim: {claimName: apps}}]\n",
    );
    let patched = apply(&pod, &case.review(&pod));
    assert_eq!(mounts_of(&patched, "c"), vec![ro("/opt/apps")]);
    assert_eq!(volume_read_only(&patched, "apps"), Some(true));
}

#[test]
fn guard_denies_another_users_home_claim() {
    let case = Case::new(examples(), "bob").claim("home-alice", true, Some("alice"));
    let pod = pod(
        "metadata: {name: x}\nspec:\n  containers: [{name: c, volumeMounts: [{name: h, mountPath: /h}]}]\n  volumes: [{name: h, persistentVolumeClaim: {claimName: home-alice}}]\n",
    );
    let outcome = case.review(&pod);
    assert!(!outcome.allowed());
    assert!(
        outcome
            .message()
            .unwrap()
            .contains("uses claim 'home-alice', the home claim of user 'alice'; user 'bob' may only mount their own home"),
        "{:?}",
        outcome.message()
    );
    // Her own pod may mount it.
    let case = Case::new(examples(), "alice").claim("home-alice", true, Some("alice"));
    assert!(case.review(&pod).allowed());
}

#[test]
fn guard_applies_to_pods_opted_out_of_injection() {
    let case = Case::new(examples(), "erin");
    let mut pod = finance_job(false);
    pod.metadata.annotations =
        Some([(keys::INJECT_ANNOTATION.to_string(), "false".to_string())].into());
    assert!(!case.review(&pod).allowed());
}

#[test]
fn guard_anonymous_pods_see_public_shares_only() {
    let case = Case::new(examples(), HUB);
    let outcome = case.review(&finance_job(false));
    assert!(!outcome.allowed());
    assert!(outcome.message().unwrap().contains("anonymous"));
}

#[test]
fn guard_protects_claims_of_a_rejected_policy_unit() {
    let good = unit(
        "good.yaml",
        "kind: Share\nname: ok\nclaimName: ok\nmountPath: /ok\nlevel: public\n",
    );
    let bad = unit(
        "bad.yaml",
        "kind: Share\nname: hr\nclaimName: hr-data\nmountPath: relative/path\nlevel: private\n",
    );
    let snap = notebook_volumes::policy::PolicySnapshot::compile(&[good, bad]);
    assert_eq!(snap.rejected_units().count(), 1);
    assert!(snap.shares().iter().all(|s| s.name != "hr"));
    let case = Case::new(snap, "alice");
    let pod = pod(
        "metadata: {name: x}\nspec:\n  containers: [{name: c}]\n  volumes: [{name: v, persistentVolumeClaim: {claimName: hr-data}}]\n",
    );
    let outcome = case.review(&pod);
    assert!(!outcome.allowed());
    assert!(
        outcome.message().unwrap().contains("bad.yaml"),
        "{:?}",
        outcome.message()
    );
}

#[test]
fn guard_ephemeral_container_cannot_write_to_a_read_only_share() {
    let case = Case::new(examples(), "bob");
    let pod = pod(
        "metadata: {name: x}\nspec:\n  containers: [{name: c}]\n  volumes: [{name: f, persistentVolumeClaim: {claimName: finance-data, readOnly: true}}]\n  ephemeralContainers: [{name: debug, volumeMounts: [{name: f, mountPath: /f}]}]\n",
    );
    let outcome = case.review_op(&pod, true);
    assert!(outcome.allowed(), "{:?}", outcome.message());
    let mut doc = serde_json::to_value(&pod).unwrap();
    json_patch::patch(&mut doc, &outcome.patch).unwrap();
    assert_eq!(
        doc["spec"]["ephemeralContainers"][0]["volumeMounts"][0]["readOnly"],
        true
    );
    assert!(outcome.patch.iter().all(|op| {
        op.path()
            .to_string()
            .starts_with("/spec/ephemeralContainers/")
    }));
    // Someone without access to the share may not mount it in a debug container.
    let case = Case::new(examples(), "erin");
    assert!(!case.review_op(&pod, true).allowed());
}

#[test]
fn home_existing_claim_of_another_owner_is_denied() {
    let case = Case::new(examples(), HUB).claim("home-alice", true, Some("mallory"));
    let outcome = case.review(&example_pod("kubespawner-alice"));
    assert!(!outcome.allowed());
    assert!(
        outcome
            .message()
            .unwrap()
            .contains("belongs to user 'mallory'")
    );
}

#[test]
fn home_existing_claim_not_made_by_the_webhook_is_never_adopted() {
    for (home, owner) in [(false, None), (true, None), (false, Some("alice"))] {
        let case = Case::new(examples(), HUB).claim("home-alice", home, owner);
        let outcome = case.review(&example_pod("kubespawner-alice"));
        assert!(!outcome.allowed(), "label {home}, owner {owner:?}");
        assert!(outcome.effects.is_empty());
        let message = outcome.message().unwrap();
        assert!(
            message.contains("was not created by notebook-volumes")
                && message.contains("an administrator must check its contents"),
            "{message}"
        );
    }
}

#[test]
fn home_existing_claim_of_the_user_needs_nothing() {
    let case = Case::new(examples(), HUB).claim("home-alice", true, Some("alice"));
    let outcome = case.review(&example_pod("kubespawner-alice"));
    assert!(outcome.allowed() && outcome.effects.is_empty());
    assert!(
        outcome
            .mounts
            .iter()
            .any(|m| m.source == MountSource::Home && !m.read_only)
    );
}

#[test]
fn home_already_mounted_by_the_spawner_is_not_added_again() {
    let case = Case::new(examples(), HUB).claim("home-alice", true, Some("alice"));
    let mut pod = example_pod("kubespawner-alice");
    let spec = pod.spec.as_mut().unwrap();
    spec.volumes = Some(vec![
        serde_saphyr::from_str(
            "{name: volume-alice, persistentVolumeClaim: {claimName: home-alice}}",
        )
        .unwrap(),
    ]);
    spec.containers[0].volume_mounts = Some(vec![
        serde_saphyr::from_str("{name: volume-alice, mountPath: /home/jovyan}").unwrap(),
    ]);
    let outcome = case.review(&pod);
    let patched = apply(&pod, &outcome);
    let homes = patched
        .spec
        .unwrap()
        .volumes
        .unwrap()
        .iter()
        .filter(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|p| p.claim_name == "home-alice")
        })
        .count();
    assert_eq!(homes, 1);
    assert!(
        outcome
            .mounts
            .iter()
            .any(|m| m.source == MountSource::Home && m.mount_path == "/home/jovyan")
    );
}

#[test]
fn home_is_not_created_without_create_settings() {
    let case = Case::new(
        policy("kind: Home\nclaimNameTemplate: home-{user}\nmountPath: /home\n"),
        "alice",
    );
    let pod = pod(
        "metadata: {labels: {component: singleuser-server}}\nspec: {containers: [{name: notebook}]}\n",
    );
    let outcome = case.review(&pod);
    assert!(outcome.allowed() && outcome.effects.is_empty());
    assert!(!outcome.mounts.iter().any(|m| m.source == MountSource::Home));
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.contains("does not create claims"))
    );
}

#[test]
fn dry_run_creates_nothing_and_says_would_create() {
    let mut case = Case::new(examples(), HUB);
    case.dry_run = true;
    let pod = example_pod("kubespawner-alice");
    let outcome = case.review(&pod);
    assert!(outcome.allowed());
    assert!(outcome.effects.is_empty());
    let mounts = &outcome.audit_annotations["mounts"];
    assert!(mounts.starts_with("home=would-create,"), "{mounts}");
    // The mutation shown is the same as for a real create.
    case.dry_run = false;
    assert_eq!(case.review(&pod).patch, outcome.patch);
}

#[test]
fn patch_creates_missing_arrays_escapes_keys_is_idempotent_and_yields_a_pod() {
    let case = Case::new(examples(), HUB);
    let pod = pod(
        "metadata: {name: bare, labels: {component: singleuser-server}}\nspec: {containers: [{name: notebook}]}\n",
    );
    assert!(pod.metadata.annotations.is_none());
    let outcome = case.review(&pod);
    let patched = apply(&pod, &outcome);
    assert_eq!(
        annotation(&patched, keys::USER_ANNOTATION),
        None,
        "no username annotation: anonymous"
    );

    let pod = crate::fixtures::pod(
        "metadata: {name: bare, labels: {component: singleuser-server}, annotations: {hub.jupyter.org/username: bob}}\nspec: {containers: [{name: notebook}]}\n",
    );
    let outcome = case.review(&pod);
    let json = serde_json::to_string(&outcome.patch).unwrap();
    assert!(
        json.contains("/metadata/annotations/notebook-volumes.io~1user"),
        "{json}"
    );
    let patched = apply(&pod, &outcome);
    assert_eq!(
        annotation(&patched, keys::USER_ANNOTATION).as_deref(),
        Some("bob")
    );
    let again = case.review(&patched);
    assert!(again.allowed());
    assert!(
        again.patch.is_empty(),
        "second pass must be empty: {:?}",
        again.patch
    );

    let bare = crate::fixtures::pod(
        "metadata: {name: bare, labels: {component: singleuser-server}}\nspec: {containers: [{name: notebook}]}\n",
    );
    let user = Case::new(examples(), "bob");
    let outcome = user.review(&bare);
    let patched = apply(&bare, &outcome);
    assert_eq!(
        annotation(&patched, keys::USER_ANNOTATION).as_deref(),
        Some("bob")
    );
    assert!(env_of(&patched, "notebook", "MODULEPATH").is_some());
    assert!(user.review(&patched).patch.is_empty());
}

#[test]
fn collisions_are_skipped_with_a_warning_never_overwritten() {
    let case = Case::new(examples(), HUB);
    let mut pod = example_pod("kubespawner-alice");
    let spec = pod.spec.as_mut().unwrap();
    spec.volumes = Some(vec![
        serde_saphyr::from_str("{name: scratch, emptyDir: {}}").unwrap(),
    ]);
    spec.containers[0].volume_mounts = Some(vec![
        serde_saphyr::from_str("{name: scratch, mountPath: /opt/apps}").unwrap(),
    ]);
    spec.containers[0].env = Some(vec![
        serde_saphyr::from_str("{name: MODULEPATH, value: /mine}").unwrap(),
    ]);
    let outcome = case.review(&pod);
    let patched = apply(&pod, &outcome);
    let mounts = mounts_of(&patched, "notebook");
    assert_eq!(mounts.iter().filter(|(p, _)| p == "/opt/apps").count(), 1);
    assert_eq!(
        mounts[0],
        rw("/opt/apps"),
        "the pod's own mount stays first and as it was"
    );
    assert_eq!(
        volume_read_only(&patched, "nv-lib-apps"),
        None,
        "library skipped"
    );
    let warnings = outcome.warnings.clone();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("library:apps not mounted")),
        "{warnings:?}"
    );
    assert!(case.review(&patched).patch.is_empty());

    let mut pod = example_pod("kubespawner-alice");
    pod.spec.as_mut().unwrap().containers[0].env = Some(vec![
        serde_saphyr::from_str("{name: MODULEPATH, value: /mine}").unwrap(),
    ]);
    let outcome = case.review(&pod);
    let patched = apply(&pod, &outcome);
    assert_eq!(
        env_of(&patched, "notebook", "MODULEPATH").as_deref(),
        Some("/mine")
    );
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.contains("already sets MODULEPATH"))
    );
}

#[test]
fn opted_out_notebook_gets_nothing() {
    let case = Case::new(examples(), HUB);
    let mut pod = example_pod("kubespawner-alice");
    pod.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(keys::INJECT_ANNOTATION.into(), "false".into());
    let outcome = case.review(&pod);
    assert!(outcome.allowed() && outcome.patch.is_empty() && outcome.effects.is_empty());
}

#[test]
fn non_notebook_pods_get_no_injection() {
    let case = Case::new(examples(), "alice");
    let pod = pod("metadata: {name: web}\nspec: {containers: [{name: web}]}\n");
    let outcome = case.review(&pod);
    assert!(outcome.allowed() && outcome.patch.is_empty());
}

#[test]
fn scope_shares_reach_only_their_namespaces() {
    let mut case = Case::new(examples(), HUB);
    case.ns = notebook_volumes::policy::NamespaceInfo::new("other-team");
    let outcome = case.review(&example_pod("kubespawner-alice"));
    assert!(outcome.allowed());
    let sources: Vec<&MountSource> = outcome.mounts.iter().map(|m| &m.source).collect();
    assert_eq!(sources, vec![&MountSource::Library("apps".into())]);
}

#[test]
fn scope_namespace_selector_follows_namespace_labels() {
    let snap = policy(
        "kind: Share\nname: gold\nnamespaceSelector: {matchLabels: {tier: gold}}\nclaimName: gold\nmountPath: /gold\nlevel: public\n",
    );
    let mut case = Case::new(snap, "alice");
    let pod = pod(
        "metadata: {labels: {component: singleuser-server}}\nspec: {containers: [{name: notebook}]}\n",
    );
    assert!(case.review(&pod).mounts.is_empty());
    case.ns.labels.insert("tier".into(), "gold".into());
    assert_eq!(case.review(&pod).mounts.len(), 1);
}

#[test]
fn operations_other_than_pod_create_pass_through() {
    let case = Case::new(examples(), "erin");
    let pod = finance_job(false);
    let mut req =
        notebook_volumes::admission::request::pod_request(&pod, NS, &case.requester, false, false)
            .unwrap();
    for op in [
        kube::core::admission::Operation::Delete,
        kube::core::admission::Operation::Connect,
        kube::core::admission::Operation::Update,
    ] {
        req.operation = op;
        let ctx = notebook_volumes::admission::Context {
            policy: &case.policy,
            namespace: &case.ns,
            claims: &case.claims,
            webhook_user: None,
            stamp_key: None,
        };
        let outcome = notebook_volumes::admission::review(ctx, &req);
        assert!(outcome.allowed() && outcome.patch.is_empty());
    }
}

#[test]
fn identity_an_empty_username_annotation_names_nobody() {
    let case = Case::new(examples(), HUB);
    let pod = pod(
        "metadata: {labels: {component: singleuser-server}, annotations: {hub.jupyter.org/username: \"\"}}\nspec: {containers: [{name: notebook}]}\n",
    );
    let outcome = case.review(&pod);
    assert!(outcome.allowed());
    assert_eq!(outcome.user, None);
    assert!(outcome.patch.is_empty());
}
