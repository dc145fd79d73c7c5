//! End-to-end: OpenShift's Group API installed after the webhook started with
//! `openshiftGroups: auto`. The webhook is ready at once (nothing to list), and picks the API up
//! at its next discovery (every minute): then a Group's members get the shares granted to it.
//! A binary of its own, so that its API server serves no Groups at the start.

use nv_test_support as support;

use std::time::Duration;

use notebook_volumes::keys;
use support::env::*;
use support::openshift::*;
use support::webhook::*;

const LAB_PATH: &str = "/opt/app-root/src/shares/lab";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_installed_after_start_are_picked_up_at_the_next_discovery() {
    let writers = "lab-writers";
    let policies = |ns: &str| {
        let lab = format!(
            "kind: Share\nname: lab\nclaimName: lab-data\nmountPath: {LAB_PATH}\nlevel: private\n\
             writers: {{groups: [{writers}]}}\n"
        );
        vec![
            ("policy".to_string(), example_with(ns, "auto")),
            ("lab".to_string(), [("lab.yaml".to_string(), lab)].into()),
        ]
    };
    // Ready although the API server serves no Groups: there is nothing to wait for.
    let env = start_with_policies(policies, &["lab-data"], |_| {}).await;
    let hub = env.cluster.client_as_service_account(HUB.0, HUB.1);
    let lab = || async {
        let pod = notebook_pod("jupyter-alice", "alice", &[]);
        let (pod, _) = create_with_warnings(&hub, env.ns.name(), &pod, true)
            .await
            .expect("admitted");
        annotation(&pod, keys::MOUNTS_ANNOTATION)
            .unwrap_or_default()
            .split(',')
            .find_map(|m| m.strip_prefix("lab=").map(str::to_string))
    };
    assert_eq!(lab().await, None);

    let admin = env.admin.clone();
    install_group_api(&admin).await;
    set_group(&admin, writers, &["alice"]).await;
    wait_until(
        "the next discovery finds the Groups",
        Duration::from_secs(90),
        || async { lab().await.as_deref() == Some("rw") },
    )
    .await;
    env.stop().await;
}
