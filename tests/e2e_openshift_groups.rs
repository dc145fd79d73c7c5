//! End-to-end against the real API server serving OpenShift's `Group` API (a CustomResourceDefinition
//! of `groups.user.openshift.io`, cluster-scoped, `users: [string]`): with `openshiftGroups: auto`
//! a Group's members get the shares granted to it, read-write or read-only as the share says, and
//! lose them when the Group stops listing them; with the setting off a Group grants nothing; a
//! webhook that starts with the setting on is ready only with the Groups listed.

use nv_test_support as support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use notebook_volumes::keys;
use support::TestCluster;
use support::env::*;
use support::openshift::*;
use support::webhook::*;

const LAB_PATH: &str = "/opt/app-root/src/shares/lab";

/// A private share `lab` whose writers and readers are only OpenShift Groups (and `carol`, so a
/// test can tell when the share is in force).
fn lab_policy(writers: &str, readers: &str) -> BTreeMap<String, String> {
    let share = format!(
        "kind: Share\nname: lab\nclaimName: lab-data\nmountPath: {LAB_PATH}\nlevel: private\n\
         writers: {{groups: [{writers}]}}\nreaders: {{users: [carol], groups: [{readers}]}}\n"
    );
    [("lab.yaml".to_string(), share)].into()
}

/// How the `lab` share is mounted in a dry-run hub notebook of `user`: `rw`, `ro`, or `None`.
async fn lab(env: &Env, user: &str) -> Option<String> {
    let hub = env.cluster.client_as_service_account(HUB.0, HUB.1);
    let pod = notebook_pod(&format!("jupyter-{user}"), user, &[]);
    let (pod, warnings) = create_with_warnings(&hub, env.ns.name(), &pod, true)
        .await
        .expect("admitted");
    let read_only = mounts(&pod, "notebook")
        .into_iter()
        .find(|(path, _)| path == LAB_PATH)
        .map(|(_, ro)| ro);
    let mounted = annotation(&pod, keys::MOUNTS_ANNOTATION)
        .unwrap_or_default()
        .split(',')
        .find_map(|m| m.strip_prefix("lab=").map(str::to_string));
    // The mount flag and the annotation agree.
    assert_eq!(
        read_only.map(|ro| if ro { "ro" } else { "rw" }),
        mounted.as_deref(),
        "{warnings:?}"
    );
    mounted
}

async fn wait_for_lab(env: &Env, what: &str, user: &str, expected: Option<&str>) {
    wait_until(what, Duration::from_secs(20), || async move {
        lab(env, user).await.as_deref() == expected
    })
    .await;
}

async fn set_policy(env: &Env, name: &str, data: BTreeMap<String, String>) {
    let config_maps = Api::<ConfigMap>::namespaced(env.admin.clone(), env.policy_ns.name());
    config_maps
        .patch(
            name,
            &PatchParams::apply("notebook-volumes-tests").force(),
            &Patch::Apply(&policy_config_map(name, data)),
        )
        .await
        .expect("policy ConfigMap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_get_shares_while_the_group_lists_them_and_the_setting_is_auto() {
    let env = Env::start().await;
    let ns = env.ns.name();
    install_group_api(&env.admin).await;
    // Groups are cluster-scoped: named after the test's namespace.
    let (writers, readers) = (format!("{ns}-lab-writers"), format!("{ns}-lab-readers"));
    set_group(&env.admin, &writers, &["alice"]).await;
    set_group(&env.admin, &readers, &["bob"]).await;
    ready_claims(&env.admin, ns, &["lab-data"], "ReadWriteMany").await;
    set_policy(&env, "lab", lab_policy(&writers, &readers)).await;
    wait_for_lab(&env, "the lab share is in force", "carol", Some("ro")).await;

    // The example Settings do not name openshiftGroups: off, the Groups grant nothing.
    assert_eq!(lab(&env, "alice").await, None);
    assert_eq!(lab(&env, "bob").await, None);

    set_policy(&env, "policy", example_with(ns, "auto")).await;
    wait_for_lab(&env, "alice writes through her Group", "alice", Some("rw")).await;
    assert_eq!(lab(&env, "bob").await.as_deref(), Some("ro"));
    assert_eq!(lab(&env, "dave").await, None, "listed in no Group");

    // Edited Groups: alice leaves the writers; she is added to the readers.
    set_group(&env.admin, &writers, &[]).await;
    wait_for_lab(&env, "alice has left the writers", "alice", None).await;
    set_group(&env.admin, &readers, &["bob", "alice"]).await;
    wait_for_lab(&env, "alice reads as a reader", "alice", Some("ro")).await;
    // A deleted Group grants nothing.
    groups_api(&env.admin)
        .delete(&readers, &DeleteParams::default())
        .await
        .expect("delete Group");
    wait_for_lab(&env, "the readers Group is gone", "bob", None).await;

    // A Group over a cap (a username longer than 512 bytes) is skipped whole and counted.
    let long = "x".repeat(600);
    set_group(&env.admin, &writers, &["alice", &long]).await;
    env.wait_for_sample("notebook_volumes_openshift_groups_skipped", 1.0)
        .await;
    assert_eq!(
        lab(&env, "alice").await,
        None,
        "a skipped Group grants nothing"
    );

    // Back to off: the Group that lists alice grants nothing again.
    set_group(&env.admin, &writers, &["alice"]).await;
    wait_for_lab(&env, "alice writes again", "alice", Some("rw")).await;
    set_policy(&env, "policy", example_with(ns, "off")).await;
    wait_for_lab(&env, "off: the Group grants nothing", "alice", None).await;
    for name in [&writers] {
        let _ = groups_api(&env.admin)
            .delete(name, &DeleteParams::default())
            .await;
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_starting_with_auto_is_ready_only_with_the_groups_listed() {
    let admin = TestCluster::shared().admin_client();
    install_group_api(&admin).await;
    let writers = "lab-writers-at-start".to_string();
    set_group(&admin, &writers, &["alice"]).await;
    let policies = |ns: &str| {
        vec![
            ("policy".to_string(), example_with(ns, "auto")),
            ("lab".to_string(), lab_policy(&writers, "nobody-reads")),
        ]
    };
    let env = start_with_policies(policies, &["lab-data"], |server| {
        // The moment it is ready, the policy has the Group: no pod is decided without it.
        assert!(
            server
                .state
                .policy
                .load()
                .snapshot
                .groups_of("alice")
                .contains(&writers),
            "ready before the Groups were in the policy"
        );
    })
    .await;
    let (status, body) = http_get(env.server().probe_addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    assert_eq!(lab(&env, "alice").await.as_deref(), Some("rw"));
    let metrics = env.metrics().await;
    assert!(
        sample(&metrics, "notebook_volumes_openshift_groups") > 0.0,
        "{metrics}"
    );
    let _ = groups_api(&admin)
        .delete(&writers, &DeleteParams::default())
        .await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_notebooks_beyond_a_changed_group_are_counted_and_listed() {
    let env = Env::start().await;
    let ns = env.ns.name();
    install_group_api(&env.admin).await;
    let writers = format!("{ns}-lab-writers");
    set_group(&env.admin, &writers, &["alice"]).await;
    ready_claims(&env.admin, ns, &["lab-data"], "ReadWriteMany").await;
    set_policy(&env, "lab", lab_policy(&writers, "nobody-reads")).await;
    set_policy(&env, "policy", example_with(ns, "auto")).await;
    wait_for_lab(&env, "alice writes through her Group", "alice", Some("rw")).await;
    let hub = env.cluster.client_as_service_account(HUB.0, HUB.1);
    let pod = notebook_pod("jupyter-alice", "alice", &[]);
    let (pod, _) = create_with_warnings(&hub, ns, &pod, false)
        .await
        .expect("admitted");
    assert!(mounts(&pod, "notebook").contains(&(LAB_PATH.to_string(), false)));
    let audit = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_notebook-volumes"))
            .args(["audit", "--live", "--namespace", ns, "--output", "json"])
            .args(["--policy-namespace", env.policy_ns.name()])
            .env("KUBECONFIG", env.cluster.kubeconfig_path())
            .output()
            .expect("audit runs")
    };
    // `audit --live` reads the Groups as the webhook does: alice's notebook is within policy.
    let before = audit();
    assert_eq!(before.status.code(), Some(0), "{before:?}");

    // She leaves the Group: her running notebook now writes a share she is not granted.
    set_group(&env.admin, &writers, &[]).await;
    env.wait_for_sample("notebook_volumes_pods_exceeding_policy{share=\"lab\"}", 1.0)
        .await;
    let after = audit();
    assert_eq!(after.status.code(), Some(1), "{after:?}");
    let out: serde_json::Value = serde_json::from_slice(&after.stdout).expect("JSON");
    let found = out["exceeding"].as_array().expect("exceeding");
    assert!(
        found
            .iter()
            .any(|e| e["pod"] == "jupyter-alice" && e["share"] == "lab"),
        "{out}"
    );
    let _ = groups_api(&env.admin)
        .delete(&writers, &DeleteParams::default())
        .await;
    env.stop().await;
}
