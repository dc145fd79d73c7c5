//! The claim guard: PersistentVolumeClaim and VolumeSnapshot admissions in an enabled namespace.

use std::collections::HashMap;

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use notebook_volumes::admission::{ClaimInfo, Context, review_claim};
use notebook_volumes::policy::{NamespaceInfo, PolicySnapshot};
use serde_json::{Value, json};

use super::fixtures::{NS, examples, policy, unit};

const ALICE: &str = "alice";
const EPHEMERAL: &str = "system:serviceaccount:kube-system:ephemeral-volume-controller";
const WEBHOOK: &str = "system:serviceaccount:notebook-volumes:notebook-volumes";

/// One claim admission: policy, existing home claims, who asks.
struct ClaimCase {
    policy: PolicySnapshot,
    claims: HashMap<(String, String), ClaimInfo>,
    user: String,
    groups: Vec<String>,
}

impl ClaimCase {
    fn new(user: &str) -> Self {
        ClaimCase {
            policy: examples(),
            claims: HashMap::new(),
            user: user.into(),
            groups: vec!["system:authenticated".into()],
        }
    }

    fn groups(mut self, groups: &[&str]) -> Self {
        self.groups = groups.iter().map(|g| g.to_string()).collect();
        self
    }

    fn home(mut self, name: &str, owner: Option<&str>) -> Self {
        self.claims.insert(
            (NS.into(), name.into()),
            ClaimInfo {
                home: true,
                owner: owner.map(str::to_string),
                ..Default::default()
            },
        );
        self
    }

    fn run(
        &self,
        kind: (&str, &str, &str),
        operation: &str,
        object: Value,
        old: Value,
    ) -> AdmissionResponse {
        let (group, version, kind) = kind;
        let resource = if kind == "VolumeSnapshot" {
            "volumesnapshots"
        } else {
            "persistentvolumeclaims"
        };
        let name = object["metadata"]["name"]
            .as_str()
            .or(old["metadata"]["name"].as_str())
            .unwrap_or_default()
            .to_string();
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "00000000-0000-0000-0000-000000000001",
                "kind": {"group": group, "version": version, "kind": kind},
                "resource": {"group": group, "version": version, "resource": resource},
                "name": name,
                "namespace": NS,
                "operation": operation,
                "userInfo": {"username": self.user, "groups": self.groups},
                "object": object,
                "oldObject": old,
                "dryRun": false,
            }
        });
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(review).unwrap();
        let req: AdmissionRequest<DynamicObject> = review.try_into().unwrap();
        let ns = NamespaceInfo::new(NS);
        let ctx = Context {
            policy: &self.policy,
            namespace: &ns,
            claims: &self.claims,
            webhook_user: Some(WEBHOOK),
            stamp_key: None,
        };
        review_claim(ctx, &req)
    }

    fn create(&self, claim: Value) -> AdmissionResponse {
        self.run(
            ("", "v1", "PersistentVolumeClaim"),
            "CREATE",
            claim,
            Value::Null,
        )
    }

    fn update(&self, old: Value, new: Value) -> AdmissionResponse {
        self.run(("", "v1", "PersistentVolumeClaim"), "UPDATE", new, old)
    }

    fn snapshot(&self, name: &str, source: &str) -> AdmissionResponse {
        self.run(
            ("snapshot.storage.k8s.io", "v1", "VolumeSnapshot"),
            "CREATE",
            snapshot_of(name, source),
            Value::Null,
        )
    }

    fn resnapshot(&self, name: &str, old: &str, new: &str) -> AdmissionResponse {
        self.run(
            ("snapshot.storage.k8s.io", "v1", "VolumeSnapshot"),
            "UPDATE",
            snapshot_of(name, new),
            snapshot_of(name, old),
        )
    }
}

fn snapshot_of(name: &str, source: &str) -> Value {
    json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"source": {"persistentVolumeClaimName": source}}
    })
}

/// A claim as a user would write it, with `spec` merged over a plain 1Gi RWO request.
fn claim(name: &str, spec: Value) -> Value {
    let mut base = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    });
    if let (Some(target), Value::Object(extra)) = (base["spec"].as_object_mut(), spec) {
        target.extend(extra);
    }
    base
}

fn marked(name: &str, labels: Value, annotations: Value) -> Value {
    let mut c = claim(name, json!({}));
    c["metadata"]["labels"] = labels;
    c["metadata"]["annotations"] = annotations;
    c
}

fn message(r: &AdmissionResponse) -> String {
    assert!(!r.allowed, "expected a denial");
    assert_eq!(r.result.code, 403);
    r.result.message.clone()
}

fn clone_of(name: &str, source: &str) -> Value {
    claim(
        name,
        json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": source}}),
    )
}

// Rule 1: home claim names are reserved, whether or not the claim exists.

#[test]
fn claim_guard_reserves_home_template_names() {
    let r = ClaimCase::new(ALICE).create(claim("home-carol", json!({})));
    assert_eq!(
        message(&r),
        "claim name 'home-carol' is reserved for the home of the user whose name slugs to 'carol'; home claims are created by notebook-volumes on first launch (start a notebook), or by an administrator"
    );
    assert!(
        r.audit_annotations["reason"].contains("reserved"),
        "{:?}",
        r.audit_annotations
    );
}

#[test]
fn claim_guard_reserves_the_users_own_home_name_for_the_webhook() {
    let r = ClaimCase::new(ALICE).create(claim("home-alice", json!({})));
    assert!(message(&r).contains("slugs to 'alice'"));
}

#[test]
fn claim_guard_lets_administrators_and_the_webhook_create_home_claims() {
    let admin = ClaimCase::new("root").groups(&["system:masters"]);
    assert!(admin.create(claim("home-carol", json!({}))).allowed);
    let home = marked(
        "home-carol",
        json!({"notebook-volumes.io/home": "true"}),
        json!({"notebook-volumes.io/owner": "carol"}),
    );
    assert!(ClaimCase::new(WEBHOOK).create(home.clone()).allowed);
    assert!(admin.create(home).allowed);
}

#[test]
fn claim_guard_allows_ordinary_claims() {
    let c = ClaimCase::new(ALICE);
    assert!(c.create(claim("scratch", json!({}))).allowed);
    assert!(c.create(claim("home-", json!({}))).allowed);
    assert!(c.create(claim("my-home-carol", json!({}))).allowed);
}

// Rule 2: share and library claims are provisioned by administrators.

#[test]
fn claim_guard_denies_share_and_library_claim_names() {
    let c = ClaimCase::new(ALICE);
    let share = message(&c.create(claim("finance-data", json!({}))));
    assert!(
        share.contains("claim name 'finance-data' is the claim of private share 'finance'"),
        "{share}"
    );
    assert!(share.contains("provisioned by administrators"), "{share}");
    let library = message(&c.create(claim("apps", json!({}))));
    assert!(library.contains("the claim of library 'apps'"), "{library}");
}

#[test]
fn claim_guard_ignores_shares_out_of_the_namespaces_scope() {
    let mut c = ClaimCase::new(ALICE);
    c.policy = policy(
        "kind: Share\nname: other\nnamespaces: [elsewhere]\nclaimName: other-data\nmountPath: /data/other\nlevel: public\n",
    );
    assert!(c.create(claim("other-data", json!({}))).allowed);
}

#[test]
fn claim_guard_denies_claims_of_rejected_policy_units() {
    let mut c = ClaimCase::new(ALICE);
    c.policy = PolicySnapshot::compile(&[unit(
        "broken.yaml",
        "kind: Share\nname: vault\nclaimName: vault-data\nmountPath: /data/vault\nlevel: secret\ntypo: 1\n",
    )]);
    assert!(c.policy.protected_claim("vault-data").is_some());
    let m = message(&c.create(claim("vault-data", json!({}))));
    assert!(m.contains("broken.yaml"), "{m}");
    let m = message(&c.create(clone_of("copy", "vault-data")));
    assert!(m.contains("clones claim 'vault-data'"), "{m}");
}

#[test]
fn claim_guard_denies_home_names_of_a_rejected_home_template() {
    let mut c = ClaimCase::new(ALICE);
    c.policy = PolicySnapshot::compile(&[unit(
        "homes.yaml",
        "kind: Home\nclaimNameTemplate: home-{user}\nmountPath: /home\nsize: 1Gi\n",
    )]);
    assert_eq!(c.policy.protected_home("home-bob"), Some("homes.yaml"));
    let m = message(&c.create(claim("home-bob", json!({}))));
    assert!(m.contains("homes.yaml"), "{m}");
    let m = message(&c.create(clone_of("copy", "home-bob")));
    assert!(m.contains("clones claim 'home-bob'"), "{m}");
}

// Rule 3: the home label and the owner annotation.

#[test]
fn claim_guard_denies_home_marks_on_create() {
    let c = ClaimCase::new(ALICE);
    let label = marked(
        "mine",
        json!({"notebook-volumes.io/home": "true"}),
        json!({}),
    );
    assert!(message(&c.create(label)).contains("sets the label notebook-volumes.io/home"));
    let owner = marked(
        "mine",
        json!({}),
        json!({"notebook-volumes.io/owner": "dave"}),
    );
    assert!(message(&c.create(owner)).contains("the annotation notebook-volumes.io/owner"));
    let other_value = marked(
        "mine",
        json!({"notebook-volumes.io/home": "false"}),
        json!({}),
    );
    assert!(!c.create(other_value).allowed, "any value of the label");
}

#[test]
fn claim_guard_denies_setting_changing_or_removing_home_marks_on_update() {
    let c = ClaimCase::new(ALICE);
    let plain = claim("scratch", json!({}));
    let labelled = marked(
        "scratch",
        json!({"notebook-volumes.io/home": "true"}),
        json!({}),
    );
    let owned = marked(
        "scratch",
        json!({"notebook-volumes.io/home": "true"}),
        json!({"notebook-volumes.io/owner": "alice"}),
    );
    let other = marked(
        "scratch",
        json!({"notebook-volumes.io/home": "true"}),
        json!({"notebook-volumes.io/owner": "dave"}),
    );
    let set = message(&c.update(plain.clone(), labelled.clone()));
    assert!(
        set.contains("may not set, change or remove the label"),
        "{set}"
    );
    assert!(message(&c.update(owned.clone(), other.clone())).contains("notebook-volumes.io/owner"));
    assert!(!c.update(owned.clone(), plain.clone()).allowed, "removing");
    assert!(
        !c.update(labelled, owned.clone()).allowed,
        "adding the owner"
    );
    let mut relabelled = owned.clone();
    relabelled["metadata"]["labels"]["team"] = json!("x");
    assert!(
        c.update(owned.clone(), relabelled).allowed,
        "other labels are free"
    );
    let admin = ClaimCase::new("root").groups(&["system:masters"]);
    assert!(admin.update(plain, other).allowed);
}

// Rule 4: clones (dataSource / dataSourceRef naming a claim).

#[test]
fn claim_guard_denies_cloning_a_share_naming_it() {
    let c = ClaimCase::new(ALICE);
    let m = message(&c.create(clone_of("copy", "mergers-data")));
    assert!(
        m.starts_with("claim 'copy' clones claim 'mergers-data' (spec.dataSource), the claim of secret share 'mergers'"),
        "{m}"
    );
    let by_ref = claim(
        "copy",
        json!({"dataSourceRef": {"apiGroup": "", "kind": "PersistentVolumeClaim", "name": "shared-datasets"}}),
    );
    let m = message(&c.create(by_ref));
    assert!(
        m.contains("(spec.dataSourceRef), the claim of public share 'datasets'"),
        "{m}"
    );
    // Even a writer of the share may not: the copy would escape the share's policy.
    let writer = ClaimCase::new("alice").groups(&["finance-admins"]);
    assert!(!writer.create(clone_of("copy", "finance-data")).allowed);
}

#[test]
fn claim_guard_denies_cloning_a_library() {
    let m = message(&ClaimCase::new(ALICE).create(clone_of("copy", "apps")));
    assert!(m.contains("the claim of library 'apps'"), "{m}");
}

#[test]
fn claim_guard_denies_cloning_another_users_home() {
    let c = ClaimCase::new(ALICE);
    let m = message(&c.create(clone_of("copy", "home-carol")));
    assert!(
        m.contains("the home of the user whose name slugs to 'carol'"),
        "{m}"
    );
    // A labelled home claim outside the template (an administrator's migration) by its owner.
    let c = ClaimCase::new(ALICE).home("legacy-dave", Some("dave"));
    let m = message(&c.create(clone_of("copy", "legacy-dave")));
    assert!(
        m.contains(
            "the home claim of user 'dave'; only the home's owner and administrators may clone it"
        ),
        "{m}"
    );
    let c = ClaimCase::new(ALICE).home("legacy", None);
    assert!(message(&c.create(clone_of("copy", "legacy"))).contains("a home claim;"));
}

#[test]
fn claim_guard_lets_users_clone_their_own_home_and_ordinary_claims() {
    let c = ClaimCase::new(ALICE).home("home-alice", Some(ALICE));
    assert!(c.create(clone_of("copy", "home-alice")).allowed);
    assert!(c.create(clone_of("copy", "scratch")).allowed);
    // Own template name, but marked by an administrator as someone else's home.
    let c = ClaimCase::new(ALICE).home("home-alice", Some("dave"));
    assert!(!c.create(clone_of("copy", "home-alice")).allowed);
}

#[test]
fn claim_guard_denies_cross_namespace_data_sources() {
    let c = ClaimCase::new(ALICE);
    let spec = json!({"dataSourceRef": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "s", "namespace": "other"}});
    let m = message(&c.create(claim("copy", spec)));
    assert!(
        m.contains("takes its data from namespace 'other' (spec.dataSourceRef.namespace)"),
        "{m}"
    );
    let same = json!({"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "scratch", "namespace": NS}});
    assert!(c.create(claim("copy", same)).allowed);
}

#[test]
fn claim_guard_allows_snapshot_and_populator_sources() {
    let c = ClaimCase::new(ALICE);
    let snapshot = json!({"dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "finance-data"}});
    assert!(c.create(claim("restore", snapshot)).allowed);
    let populator = json!({"dataSourceRef": {"apiGroup": "example.com", "kind": "PersistentVolumeClaim", "name": "finance-data"}});
    assert!(
        c.create(claim("populated", populator)).allowed,
        "another group is a populator, not a clone"
    );
}

// Rule 5: static binding.

#[test]
fn claim_guard_denies_static_binding_by_volume_name() {
    let c = ClaimCase::new(ALICE);
    let m = message(&c.create(claim("grab", json!({"volumeName": "pv-finance"}))));
    assert!(
        m.contains("binds to the PersistentVolume 'pv-finance' by name (spec.volumeName)"),
        "{m}"
    );
    assert!(c.create(claim("ok", json!({"volumeName": ""}))).allowed);
}

#[test]
fn claim_guard_denies_setting_volume_name_on_update_except_to_the_volume_binder() {
    let pending = claim("grab", json!({}));
    let bound = claim("grab", json!({"volumeName": "pv-finance"}));
    let m = message(&ClaimCase::new(ALICE).update(pending.clone(), bound.clone()));
    assert!(
        m.contains("may not set spec.volumeName to 'pv-finance'"),
        "{m}"
    );
    assert!(m.contains("administrators.users"), "{m}");
    let binder = ClaimCase::new("system:serviceaccount:kube-system:persistent-volume-binder");
    assert!(binder.update(pending.clone(), bound.clone()).allowed);
    assert!(
        ClaimCase::new("system:kube-controller-manager")
            .update(pending, bound.clone())
            .allowed
    );
    // Expanding a bound claim leaves volumeName alone.
    let mut bigger = bound.clone();
    bigger["spec"]["resources"]["requests"]["storage"] = json!("5Gi");
    assert!(ClaimCase::new(ALICE).update(bound, bigger).allowed);
}

// Rule 6: VolumeSnapshots of guarded claims.

#[test]
fn claim_guard_denies_snapshots_of_guarded_claims() {
    let c = ClaimCase::new(ALICE).home("legacy-dave", Some("dave"));
    let m = message(&c.snapshot("snap", "finance-data"));
    assert!(
        m.starts_with("volume snapshot 'snap' copies claim 'finance-data' (spec.source.persistentVolumeClaimName), the claim of private share 'finance'"),
        "{m}"
    );
    assert!(message(&c.snapshot("snap", "apps")).contains("library 'apps'"));
    assert!(message(&c.snapshot("snap", "home-carol")).contains("slugs to 'carol'"));
    assert!(message(&c.snapshot("snap", "legacy-dave")).contains("the home claim of user 'dave'"));
}

#[test]
fn claim_guard_allows_snapshots_of_own_and_ordinary_claims() {
    let c = ClaimCase::new(ALICE);
    assert!(c.snapshot("snap", "home-alice").allowed);
    assert!(c.snapshot("snap", "scratch").allowed);
    let admin = ClaimCase::new("root").groups(&["system:masters"]);
    assert!(admin.snapshot("backup", "finance-data").allowed);
}

// Rule 7: the ephemeral-volume controller is not an administrator.

#[test]
fn claim_guard_applies_to_the_ephemeral_volume_controller() {
    let c = ClaimCase::new(EPHEMERAL).groups(&["system:serviceaccounts", "system:authenticated"]);
    assert!(!c.create(claim("home-carol", json!({}))).allowed);
    let template = marked(
        "nb-scratch",
        json!({"notebook-volumes.io/home": "true"}),
        json!({"notebook-volumes.io/owner": "carol"}),
    );
    assert!(!c.create(template).allowed);
    assert!(!c.create(clone_of("nb-copy", "finance-data")).allowed);
    assert!(c.create(claim("nb-scratch", json!({}))).allowed);
}

#[test]
fn claim_guard_lets_settings_administrators_through() {
    let mut c = ClaimCase::new("erin");
    c.policy = policy("kind: Settings\nadministrators: {users: [erin]}\n");
    assert!(
        c.create(claim("vault", json!({"volumeName": "pv-1"})))
            .allowed
    );
}

#[test]
fn claim_guard_ignores_deletes() {
    let c = ClaimCase::new(ALICE);
    let r = c.run(
        ("", "v1", "PersistentVolumeClaim"),
        "DELETE",
        Value::Null,
        claim("finance-data", json!({})),
    );
    assert!(r.allowed);
}

// ---- The secret-level home (`Home.secretHome: separate`): never copied out of the secret level.

#[test]
fn claim_guard_reserves_the_secret_level_home_name_for_notebook_volumes() {
    let denied = ClaimCase::new(ALICE).create(claim("home-alice--secret", json!({})));
    assert!(!denied.allowed);
    assert!(
        denied.result.message.contains("secret-level home"),
        "{}",
        denied.result.message
    );
    // Under a template with fixed text after {user} too.
    let mut case = ClaimCase::new(ALICE);
    case.policy = policy(
        "kind: Home\nclaimNameTemplate: jupyterhub-nb-{user}-pvc\nmountPath: /home/jovyan\n",
    );
    assert!(
        !case
            .create(claim("jupyterhub-nb-alice-pvc--secret", json!({})))
            .allowed
    );
    assert!(
        ClaimCase::new(ALICE)
            .create(claim("scratch--secret", json!({})))
            .allowed
    );
}

#[test]
fn claim_guard_lets_nobody_but_administrators_copy_a_secret_level_home() {
    let case = ClaimCase::new(ALICE);
    let clone = claim(
        "copy",
        json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": "home-alice--secret"}}),
    );
    let cloned = case.create(clone.clone());
    assert!(
        !cloned.allowed,
        "alice cloned her secret home into an ordinary claim"
    );
    assert!(
        cloned.result.message.contains("write-down"),
        "{}",
        cloned.result.message
    );
    let by_ref = claim(
        "copy",
        json!({"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "home-alice--secret"}}),
    );
    assert!(!case.create(by_ref).allowed);
    assert!(!case.snapshot("snap", "home-alice--secret").allowed);
    // Her normal home she may still copy.
    assert!(case.snapshot("snap", "home-alice").allowed);
    // A marked secret home under another name (an earlier template) is just as secret.
    let mut marked_case = ClaimCase::new(ALICE);
    marked_case.claims.insert(
        (NS.into(), "old-home".into()),
        ClaimInfo {
            home: true,
            owner: Some(ALICE.into()),
            secret: true,
            ..Default::default()
        },
    );
    assert!(!marked_case.snapshot("snap", "old-home").allowed);
    let admin = ClaimCase::new("root").groups(&["system:masters"]);
    assert!(admin.create(clone).allowed);
    assert!(admin.snapshot("snap", "home-alice--secret").allowed);
}

#[test]
fn claim_guard_protects_the_home_level_label() {
    let case = ClaimCase::new(ALICE);
    let labelled = marked(
        "mine",
        json!({"notebook-volumes.io/home-level": "secret"}),
        json!({}),
    );
    assert!(!case.create(labelled.clone()).allowed);
    let plain = marked("mine", json!({}), json!({}));
    // Removing the level from a secret home would make it an ordinary home of its user.
    let denied = case.update(labelled.clone(), plain.clone());
    assert!(!denied.allowed);
    assert!(
        denied.result.message.contains("home-level"),
        "{}",
        denied.result.message
    );
    assert!(!case.update(plain, labelled).allowed);
}

// The managed mark: the reconciler trusts a claim of a share's name only when it carries it.

#[test]
fn claim_guard_keeps_the_managed_label_to_notebook_volumes_and_administrators() {
    let c = ClaimCase::new(ALICE);
    let managed = marked(
        "scratch",
        json!({"notebook-volumes.io/managed-by": "notebook-volumes", "notebook-volumes.io/share": "finance"}),
        json!({}),
    );
    let create = message(&c.create(managed.clone()));
    assert!(
        create.contains("sets the label notebook-volumes.io/managed-by"),
        "{create}"
    );
    let plain = claim("scratch", json!({}));
    let set = message(&c.update(plain.clone(), managed.clone()));
    assert!(
        set.contains("may not set, change or remove the label notebook-volumes.io/managed-by"),
        "{set}"
    );
    assert!(
        !c.update(managed.clone(), plain.clone()).allowed,
        "removing"
    );
    let admin = ClaimCase::new("root").groups(&["system:masters"]);
    assert!(admin.create(managed.clone()).allowed);
    assert!(admin.update(plain, managed.clone()).allowed);
    let webhook = ClaimCase::new(WEBHOOK);
    assert!(
        webhook.create(managed).allowed,
        "the reconciler's own create"
    );
}

// The share and library labels name what a provisioned claim is for: administrators clean up by
// them (`kubectl get pvc -A -l notebook-volumes.io/share=<name>`), so a user's claim must not
// pass for a share's.
#[test]
fn claim_guard_keeps_the_share_and_library_labels_to_notebook_volumes_and_administrators() {
    let c = ClaimCase::new(ALICE);
    for key in ["notebook-volumes.io/share", "notebook-volumes.io/library"] {
        let labelled = marked("scratch", json!({key: "finance"}), json!({}));
        let create = message(&c.create(labelled.clone()));
        assert!(
            create.contains(&format!("sets the label {key}")),
            "{create}"
        );
        let plain = claim("scratch", json!({}));
        let set = message(&c.update(plain.clone(), labelled.clone()));
        assert!(
            set.contains(&format!("may not set, change or remove the label {key}")),
            "{set}"
        );
        assert!(
            !c.update(labelled.clone(), plain.clone()).allowed,
            "removing"
        );
        let admin = ClaimCase::new("root").groups(&["system:masters"]);
        assert!(admin.create(labelled.clone()).allowed);
        assert!(ClaimCase::new(WEBHOOK).create(labelled).allowed);
    }
    // Other labels under the prefix, and every other label, stay free.
    let other = marked(
        "scratch",
        json!({"notebook-volumes.io/team": "a", "app": "x"}),
        json!({}),
    );
    assert!(c.create(other).allowed);
}

// Older snapshot CRDs let the source change until the snapshot is taken.
#[test]
fn claim_guard_denies_pointing_a_snapshot_at_a_guarded_claim_later() {
    let c = ClaimCase::new(ALICE);
    let r = c.resnapshot("s", "scratch", "finance-data");
    assert!(
        message(&r).contains("volume snapshot 's' copies claim 'finance-data'"),
        "{}",
        message(&r)
    );
    assert!(!c.resnapshot("s", "scratch", "home-bob").allowed);
    assert!(c.resnapshot("s", "scratch", "other-scratch").allowed);
    assert!(
        c.resnapshot("s", "scratch", "home-alice").allowed,
        "her own home"
    );
    // An update that leaves the source alone is not judged again (a snapshot an administrator
    // took of a share keeps its labels editable).
    assert!(c.resnapshot("s", "finance-data", "finance-data").allowed);
    let admin = ClaimCase::new("root").groups(&["system:masters"]);
    assert!(admin.resnapshot("s", "scratch", "finance-data").allowed);
}
