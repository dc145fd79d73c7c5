//! OpenShift Groups, attacked as a namespace member with `edit`: the Groups of a user count for
//! the pods that user is decided to own, no way of naming that user in a pod lends them to
//! someone else, and a Settings document that is not accepted never turns them on.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use notebook_volumes::admission::{MountSource, Review};
use notebook_volumes::policy::openshift_groups::OpenShiftGroups;
use serde_json::json;

use notebook_volumes::policy::PolicySnapshot;

use crate::fixtures::{Case, HUB, pod, policy, unit};

const POLICY: &str = "kind: Settings\ntrustedSpawners: [system:serviceaccount:jupyterhub:hub]\nopenshiftGroups: auto\n---\nkind: Share\nname: lab\nclaimName: lab-data\nmountPath: /data/lab\nlevel: private\nwriters: {groups: [lab-writers]}\n";

/// The policy with the Group `lab-writers` listing alice and a service account of the namespace.
fn case(requester: &str) -> Case {
    let users = json!(["alice", "system:serviceaccount:ds-team:runner"]);
    let (groups, skipped) = OpenShiftGroups::index([(Some("lab-writers"), Some(&users))]);
    assert!(skipped.is_empty());
    Case::new(
        policy(POLICY).with_openshift_groups(Arc::new(groups)),
        requester,
    )
}

/// A notebook pod naming `user` in the hub's username annotation, with `extra` annotations.
fn notebook(user: &str, extra: &str) -> Pod {
    pod(&format!(
        "metadata:\n  name: jupyter-{user}\n  labels: {{component: singleuser-server}}\n  annotations: {{hub.jupyter.org/username: {user}{extra}}}\nspec:\n  containers: [{{name: notebook}}]\n"
    ))
}

fn lab_mount(outcome: &Review) -> Option<bool> {
    outcome
        .mounts
        .iter()
        .find(|m| m.source == MountSource::Share("lab".into()))
        .map(|m| m.read_only)
}

#[test]
fn a_users_openshift_groups_count_only_for_pods_decided_to_be_theirs() {
    // The hub's notebook for alice, and alice's own pod: her Group lets her write.
    let hub = case(HUB).review(&notebook("alice", ""));
    assert_eq!(lab_mount(&hub), Some(false), "{:?}", hub.message());
    let own = case("alice").review(&notebook("alice", ""));
    assert_eq!(lab_mount(&own), Some(false), "{:?}", own.message());

    // The hub's own groups are the hub's: a user it names gets only their own.
    let bob = case(HUB)
        .groups(&["lab-writers", "system:serviceaccounts"])
        .review(&notebook("bob", ""));
    assert!(bob.allowed(), "{:?}", bob.message());
    assert_eq!(lab_mount(&bob), None);

    // mallory naming alice, directly or through a controller that is no trusted spawner.
    for requester in [
        "mallory",
        "system:serviceaccount:kube-system:replicaset-controller",
        "system:serviceaccount:ds-team:default",
    ] {
        let outcome = case(requester).review(&notebook("alice", ""));
        let message = outcome.message().unwrap_or_default();
        assert!(
            message.contains("pod claims user 'alice'"),
            "{requester}: {message}"
        );
    }
    // Her own pod, with the Group's name in the hub's groups annotation: not believed.
    let claimed = case("mallory").review(&notebook(
        "mallory",
        ", hub.jupyter.org/groups: lab-writers",
    ));
    assert!(claimed.allowed(), "{:?}", claimed.message());
    assert_eq!(lab_mount(&claimed), None);
    // Nor does mounting the share's claim herself work.
    let lab_pod = |service_account: &str| {
        pod(&format!(
            "metadata: {{name: x}}\nspec:\n{service_account}  containers: [{{name: c, volumeMounts: [{{name: v, mountPath: /x}}]}}]\n  volumes: [{{name: v, persistentVolumeClaim: {{claimName: lab-data}}}}]\n"
        ))
    };
    let direct = lab_pod("");
    // Running her pod as the service account the Group lists changes nothing: the pod's
    // creator is whose rights apply, not the account its processes run as.
    let as_runner = lab_pod("  serviceAccountName: runner\n");
    for attempt in [&direct, &as_runner] {
        let outcome = case("mallory").review(attempt);
        let message = outcome.message().unwrap_or_default();
        assert!(message.contains("may not access"), "{message}");
    }
    // A service account the Group lists is a member whoever acts as it, and every editor of its
    // namespace may (`edit` includes impersonating its service accounts): docs/security.md.
    let runner = case("system:serviceaccount:ds-team:runner").review(&direct);
    assert!(runner.allowed(), "{:?}", runner.message());
}

#[test]
fn a_rejected_settings_document_leaves_the_groups_off() {
    let users = json!(["alice"]);
    let groups = Arc::new(OpenShiftGroups::index([(Some("lab-writers"), Some(&users))]).0);
    let share = "kind: Share\nname: lab\nclaimName: lab-data\nmountPath: /data/lab\nlevel: private\nwriters: {groups: [lab-writers]}\n";
    let accepted = PolicySnapshot::compile(&[
        unit("settings.yaml", "kind: Settings\nopenshiftGroups: auto\n"),
        unit("lab.yaml", share),
    ])
    .with_openshift_groups(groups.clone());
    assert!(accepted.groups_of("alice").contains("lab-writers"));
    // The same Settings in a unit rejected for another document in it: absent, so off.
    let rejected = PolicySnapshot::compile(&[
        unit(
            "settings.yaml",
            "kind: Settings\nopenshiftGroups: auto\n---\nkind: Share\nname: broken\n",
        ),
        unit("lab.yaml", share),
    ])
    .with_openshift_groups(groups);
    assert!(
        rejected.groups_of("alice").is_empty(),
        "{:?}",
        rejected.groups_of("alice")
    );
}
