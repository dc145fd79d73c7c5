//! End-to-end against the real API server: share and library claims that cannot be mounted in
//! the pod's namespace are skipped with a warning naming the claim (or the pod denied, by policy),
//! and groups passed by the hub in a pod annotation count only from the trusted spawner.

use nv_test_support as support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use notebook_volumes::keys;
use serde_json::json;
use support::env::*;
use support::webhook::*;

const SHARES: &str = "/opt/app-root/src/shares";

fn share(name: &str) -> String {
    format!("{SHARES}/{name}")
}

fn paths(pod: &Pod) -> Vec<String> {
    mounts(pod, "notebook")
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

/// A dry-run CREATE of a hub notebook for `user`: the pod and the warnings.
async fn try_notebook(
    client: &Client,
    ns: &str,
    user: &str,
    extra: &[(&str, &str)],
) -> Result<(Pod, Vec<String>), String> {
    let pod = notebook_pod(&format!("jupyter-{user}"), user, extra);
    create_with_warnings(client, ns, &pod, true).await
}

/// A hub notebook for `user`, created for real.
async fn create_notebook(client: &Client, ns: &str, user: &str) -> Pod {
    let pod = notebook_pod(&format!("jupyter-{user}"), user, &[]);
    create_with_warnings(client, ns, &pod, false)
        .await
        .expect("admitted")
        .0
}

fn hub_client(env: &Env) -> Client {
    env.cluster.client_as_service_account(HUB.0, HUB.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_share_claims_are_skipped_with_a_warning_or_deny_the_pod() {
    let env = Env::start_without_claims().await;
    let ns = env.ns.name();
    ready_claims(&env.admin, ns, &["shared-datasets"], "ReadWriteMany").await;
    ready_claims(&env.admin, ns, &["apps"], "ReadOnlyMany").await;
    ready_claims(&env.admin, ns, &["finance-data"], "ReadWriteOnce").await;
    // Created, never bound: the PV controller would leave it Pending.
    let pending = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "team-notebooks"},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}});
    env.claims()
        .create(
            &Default::default(),
            &serde_json::from_value(pending).expect("claim"),
        )
        .await
        .expect("claim");
    let hub = hub_client(&env);
    // The cache sees the claims within moments of their creation.
    wait_until("the claims are cached", Duration::from_secs(10), || {
        let hub = hub.clone();
        async move {
            let (pod, _) = try_notebook(&hub, ns, "alice", &[])
                .await
                .expect("admitted");
            paths(&pod).contains(&share("datasets"))
        }
    })
    .await;
    let (pod, warnings) = try_notebook(&hub, ns, "alice", &[])
        .await
        .expect("admitted");
    assert_eq!(
        paths(&pod),
        [
            "/opt/app-root/src".to_string(),
            share("datasets"),
            "/opt/apps".into()
        ],
        "only the home, the RWX share and the ROX library: {warnings:?}"
    );
    let warned = |needle: &str| warnings.iter().any(|w| w.contains(needle));
    assert!(
        warned(&format!(
            "share:team-notebooks not mounted: its claim 'team-notebooks' in namespace '{ns}' is Pending, not Bound"
        )),
        "{warnings:?}"
    );
    assert!(
        warned("share:finance not mounted: its claim 'finance-data'")
            && warned("access modes [ReadWriteOnce]")
            && warned("bind it to a ReadWriteMany volume"),
        "{warnings:?}"
    );
    assert_eq!(
        annotation(&pod, keys::MOUNTS_ANNOTATION).as_deref(),
        Some("home=rw,datasets=ro,apps=ro")
    );

    // Once the claim binds, the next notebook gets the share.
    set_claim_status(&env.admin, ns, "team-notebooks", "Bound", "ReadWriteMany").await;
    wait_until(
        "the bound claim is mounted",
        Duration::from_secs(10),
        || {
            let hub = hub.clone();
            async move {
                let (pod, _) = try_notebook(&hub, ns, "bob", &[]).await.expect("admitted");
                paths(&pod).contains(&share("notebooks"))
            }
        },
    )
    .await;
    // A claim being deleted (held by its protection finalizer) is named too.
    env.claims()
        .delete("team-notebooks", &Default::default())
        .await
        .expect("deleted");
    wait_until(
        "the deleted claim is reported",
        Duration::from_secs(10),
        || {
            let hub = hub.clone();
            async move {
                let (_, warnings) = try_notebook(&hub, ns, "carol", &[])
                    .await
                    .expect("admitted");
                warnings
                    .iter()
                    .any(|w| w.contains("'team-notebooks'") && w.contains("is being deleted"))
            }
        },
    )
    .await;

    // With `unusableClaims: deny`, the notebook is refused with the same words.
    let config_maps = Api::<ConfigMap>::namespaced(env.admin.clone(), env.policy_ns.name());
    let settings = example_policy(ns)["settings.yaml"]
        .replace("kind: Settings\n", "kind: Settings\nunusableClaims: deny\n");
    config_maps
        .patch(
            "policy",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"settings.yaml": settings}})),
        )
        .await
        .expect("policy updated");
    wait_until("the pod is denied", Duration::from_secs(10), || {
        let hub = hub.clone();
        async move {
            match try_notebook(&hub, ns, "dave", &[]).await {
                Err(message) => {
                    message.contains("claim 'team-notebooks'")
                        && message.contains("unusableClaims: deny")
                }
                Ok(_) => false,
            }
        }
    })
    .await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_groups_count_only_from_the_trusted_spawner() {
    let env = Env::start().await;
    let ns = env.ns.name();
    let hub = hub_client(&env);
    // frank is in no Groups document; the hub says he is an analyst (readers of finance).
    let groups = [("hub.jupyter.org/groups", "analysts, ml")];
    let mut pod = notebook_pod("jupyter-frank", "frank", &groups);
    pod.metadata.name = Some("jupyter-frank".into());
    let (pod, _) = create_with_warnings(&hub, ns, &pod, false)
        .await
        .expect("admitted");
    assert!(
        mounts(&pod, "notebook").contains(&(share("finance"), true)),
        "{:?}",
        mounts(&pod, "notebook")
    );
    assert_eq!(
        annotation(&pod, keys::GROUPS_ANNOTATION).as_deref(),
        Some("analysts,ml")
    );
    let (plain, _) = try_notebook(&hub, ns, "grace", &[])
        .await
        .expect("admitted");
    assert!(!paths(&plain).contains(&share("finance")));
    assert_eq!(annotation(&plain, keys::GROUPS_ANNOTATION), None);

    // frank, with `edit` in the namespace, writes the annotation on his own notebook: no group.
    let frank = env.cluster.client_as("frank", &[]);
    let mut own = notebook_pod("frank-own", "frank", &groups);
    own.metadata
        .annotations
        .get_or_insert_default()
        .insert(keys::GROUPS_ANNOTATION.into(), "analysts".into());
    let (own, warnings) = create_with_warnings(&frank, ns, &own, true)
        .await
        .expect("admitted");
    assert!(
        !paths(&own).contains(&share("finance")),
        "{:?}",
        paths(&own)
    );
    assert_eq!(
        annotation(&own, keys::GROUPS_ANNOTATION),
        None,
        "a forged copy of the webhook's annotation is removed"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("annotation hub.jupyter.org/groups ignored")),
        "{warnings:?}"
    );
    // Nor can he add a group to the running hub notebook afterwards.
    let pods = env.pods_as_user("frank", &[]);
    let name = pod.metadata.name.clone().expect("name");
    let patch = json!({"metadata": {"annotations": {(keys::GROUPS_ANNOTATION): "analysts,finance-admins"}}});
    let err = pods
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains(keys::GROUPS_ANNOTATION), "{err}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notebooks_exceeding_a_changed_policy_are_counted_and_listed() {
    let env = Env::start().await;
    let ns = env.ns.name();
    let hub = hub_client(&env);
    let alice = create_notebook(&hub, ns, "alice").await;
    let bob = create_notebook(&hub, ns, "bob").await;
    assert!(mounts(&alice, "notebook").contains(&(share("finance"), false)));
    assert!(mounts(&bob, "notebook").contains(&(share("finance"), true)));
    // mallory's own notebook names a scratch claim of hers like an injected share's volume: the
    // report must not take it for a share the policy once gave her (a forged ExceedsPolicy, a
    // gauge series per invented name, her pod deleted with --delete-exceeding-pods).
    let mut forged = notebook_pod("jupyter-mallory", "mallory", &[]);
    let spec = forged.spec.as_mut().expect("spec");
    spec.volumes.get_or_insert_default().push(
        serde_json::from_value(
            json!({"name": "nv-share-ghost", "persistentVolumeClaim": {"claimName": "mallory-scratch"}}),
        )
        .expect("volume"),
    );
    spec.containers[0]
        .volume_mounts
        .get_or_insert_default()
        .push(
            serde_json::from_value(json!({"name": "nv-share-ghost", "mountPath": "/ghost"}))
                .expect("mount"),
        );
    let mallory = env.cluster.client_as("mallory", &[]);
    create_with_warnings(&mallory, ns, &forged, false)
        .await
        .expect("her own notebook with her own claim");
    let audit = |output: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_notebook-volumes"))
            .args(["audit", "--live", "--namespace", ns, "--output", output])
            .args(["--policy-namespace", env.policy_ns.name()])
            .env("KUBECONFIG", env.cluster.kubeconfig_path())
            .output()
            .expect("audit runs")
    };
    let before = audit("text");
    assert_eq!(before.status.code(), Some(0), "{before:?}");

    // alice is no longer a writer (nor a reader) of finance: her running notebook still writes it.
    let config_maps = Api::<ConfigMap>::namespaced(env.admin.clone(), env.policy_ns.name());
    let shares_yaml = example_policy(ns)["shares.yaml"].replace(
        "writers: {users: [alice], groups: [finance-admins]}",
        "writers: {users: [erin]}",
    );
    config_maps
        .patch(
            "policy",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"shares.yaml": shares_yaml}})),
        )
        .await
        .expect("policy updated");
    // Other tests' notebook namespaces are enabled on this API server too (and outside this
    // policy): the gauge counts at least alice's notebook.
    env.wait_for_sample(
        "notebook_volumes_pods_exceeding_policy{share=\"finance\"}",
        1.0,
    )
    .await;

    // alice sees it on her notebook: a Warning naming the share and the rule as it stands now.
    // The other tests' webhooks on this API server scan every enabled namespace against their
    // own policies (which do not reach this one): only this policy's Events count here.
    let own_policy = format!("defined in ConfigMap {}/", env.policy_ns.name());
    let ours = |e: &Event| e.note.as_deref().is_some_and(|n| n.contains(&own_policy));
    let events = Api::<Event>::namespaced(env.admin.clone(), ns);
    let exceeds = || async {
        events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some("ExceedsPolicy")
                    && ours(e)
                    && e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some("Pod")
                            && r.name.as_deref() == Some("jupyter-alice")
                            && r.uid == alice.metadata.uid
                    })
            })
            .collect::<Vec<_>>()
    };
    wait_until(
        "an ExceedsPolicy Event on alice's notebook",
        Duration::from_secs(30),
        || async { !exceeds().await.is_empty() },
    )
    .await;
    let found = exceeds().await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].type_.as_deref(), Some("Warning"));
    let note = found[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("share 'finance' is mounted rw but the policy now grants no access")
            && note.contains("writers: user erin")
            && note.contains("until it restarts"),
        "{note}"
    );
    assert!(
        !env.metrics()
            .await
            .contains("notebook_volumes_pods_exceeding_policy{share=\"ghost\"}"),
        "no series for a share that never was"
    );
    // bob still reads finance: nothing to tell him. Nor mallory, and no webhook tells anyone
    // about her invented share.
    let listed = events.list(&ListParams::default()).await.expect("events");
    let wrong: Vec<_> = listed
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ExceedsPolicy"))
        .filter(|e| {
            let note = e.note.as_deref().unwrap_or_default();
            note.contains("share 'ghost'")
                || (ours(e)
                    && matches!(
                        e.regarding.as_ref().and_then(|r| r.name.as_deref()),
                        Some("jupyter-bob" | "jupyter-mallory")
                    ))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "neither bob's nor mallory's notebook exceeds policy: {wrong:?}"
    );

    let json_out = audit("json");
    assert_eq!(json_out.status.code(), Some(1), "{json_out:?}");
    let report: serde_json::Value = serde_json::from_slice(&json_out.stdout).expect("JSON");
    let found = report["exceeding"].as_array().expect("list");
    assert_eq!(found.len(), 1, "only alice's finance mount: {report}");
    assert_eq!(found[0]["pod"], "jupyter-alice");
    assert_eq!(found[0]["share"], "finance");
    assert_eq!(found[0]["mounted"], "rw");
    assert_eq!(found[0]["granted"], "-");
    let reason = found[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("'alice' may no longer read private share 'finance'")
            && reason.contains("writers: user erin")
            && reason.contains(env.policy_ns.name()),
        "{reason}"
    );
    let table = audit("text");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.lines()
            .next()
            .unwrap_or_default()
            .starts_with("NAMESPACE")
            && text.contains("jupyter-alice"),
        "{text}"
    );
    env.stop().await;
}
