//! Scenario 6: no replica answers (`failurePolicy: Fail`). Pods of namespaces that are not enabled
//! keep starting, pods of enabled ones are refused, and the break-glass steps of
//! docs/operating.md ("When the webhook is down") work as written: taking one namespace out of
//! scope, then deleting the mutating webhook configuration. Afterwards the webhook is restored.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use notebook_volumes::keys;
use serde_json::json;

use super::stream::{self, Row};
use super::support::webhook::{allow_everyone_to_edit, dry_run, notebook_pod, wait_until};
use super::support::{TestCluster, TestNamespace};
use super::{Report, Scale, Setup, notebooks, pods_in};

pub async fn run(scale: Scale, report: &mut Report) {
    let mut setup = Setup::start(2, &[]).await;
    let load = scale.load.lasting(scale.load.duration / 2);
    let plain = TestNamespace::new("plain").await;
    allow_everyone_to_edit(&setup.admin, plain.name()).await;
    for replica in &mut setup.replicas {
        replica.kill().await;
    }
    setup.replicas.clear();

    // 6a: a namespace that is not enabled is out of the webhook's scope.
    let samples = stream::start(pods_in(plain.name()), load, notebooks("plain"))
        .finish()
        .await;
    let row = Row::of("6a webhook down: namespace not enabled", &samples, "");
    report.goal(
        row.failed == 0,
        format!(
            "6a: {} failed creations outside the webhook's scope",
            row.failed
        ),
    );
    report.row(row);

    // 6b: an enabled namespace fails closed.
    let burst = load.lasting(Duration::from_secs(1));
    let samples = stream::start(setup.pods(), burst, notebooks("closed"))
        .finish()
        .await;
    let row = Row::of(
        "6b webhook down: enabled namespace (refused)",
        &samples,
        "failures expected: failurePolicy Fail",
    );
    report.goal(
        row.failed == row.attempted,
        format!(
            "6b: {} of {} creations passed with no webhook",
            row.attempted - row.failed,
            row.attempted
        ),
    );
    report.row(row);

    // 6c: break-glass 1, `kubectl label namespace <ns> notebook-volumes.io/inject-`.
    let namespaces = Api::<Namespace>::all(setup.admin.clone());
    let unlabel = json!({"metadata": {"labels": {keys::INJECT_LABEL: null}}});
    namespaces
        .patch(
            setup.ns.name(),
            &PatchParams::default(),
            &Patch::Merge(&unlabel),
        )
        .await
        .expect("remove the inject label");
    wait_for_creation(setup.pods()).await;
    let samples = stream::start(setup.pods(), load, notebooks("unlabelled"))
        .finish()
        .await;
    let injected = injected_pods(&setup.pods(), "unlabelled").await;
    let row = Row::of(
        "6c break-glass: inject label removed",
        &samples,
        format!("{injected} of them injected"),
    );
    report.goal(
        row.failed == 0 && injected == 0,
        format!(
            "6c: {} failed, {injected} injected with the namespace out of scope",
            row.failed
        ),
    );
    report.row(row);
    let relabel = json!({"metadata": {"labels": {keys::INJECT_LABEL: keys::INJECT_ENABLED}}});
    namespaces
        .patch(
            setup.ns.name(),
            &PatchParams::default(),
            &Patch::Merge(&relabel),
        )
        .await
        .expect("restore the inject label");

    // 6d: break-glass 2, `kubectl delete mutatingwebhookconfiguration <name>`.
    wait_until(
        "the relabelled namespace is in scope again",
        Duration::from_secs(30),
        || {
            let pods = setup.pods();
            async move {
                let probe = notebook_pod("probe", "alice", &[]);
                pods.create(&dry_run(), &probe).await.is_err()
            }
        },
    )
    .await;
    Api::<MutatingWebhookConfiguration>::all(setup.admin.clone())
        .delete(&setup.registration, &DeleteParams::default())
        .await
        .expect("delete the mutating webhook configuration");
    wait_for_creation(setup.pods()).await;
    let samples = stream::start(setup.pods(), load, notebooks("nomutating"))
        .finish()
        .await;
    // The validating configuration still guards a project member's claims, as the runbook says
    // (the webhook's own requests skip it: its matchConditions).
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "created-while-down"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .expect("claim");
    let member = TestCluster::shared().client_as("bob", &[]);
    let claim_refused = Api::<PersistentVolumeClaim>::namespaced(member, setup.ns.name())
        .create(&PostParams::default(), &claim)
        .await
        .is_err();
    let row = Row::of(
        "6d break-glass: mutating configuration deleted",
        &samples,
        format!(
            "claim creation {} by the validating configuration",
            if claim_refused {
                "still refused"
            } else {
                "ALLOWED"
            }
        ),
    );
    report.goal(
        row.failed == 0 && claim_refused,
        format!(
            "6d: {} failed creations; claim refused: {claim_refused}",
            row.failed
        ),
    );
    report.row(row);

    // Restore: a replica and the registrations, and injection is back.
    setup.add_replica().await;
    setup.registrations.clear();
    setup.register().await;
    report.note("6: restored (a replica and both configurations); injection back");
}

/// Waits until the API server no longer calls the webhook for a pod of `pods`' namespace.
async fn wait_for_creation(pods: Api<Pod>) {
    wait_until(
        "the API server creates pods without the webhook",
        Duration::from_secs(30),
        || {
            let pods = pods.clone();
            async move {
                let probe = notebook_pod("probe", "alice", &[]);
                pods.create(&dry_run(), &probe).await.is_ok()
            }
        },
    )
    .await;
}

/// Pods named `<prefix>-…` that carry the webhook's user annotation.
async fn injected_pods(pods: &Api<Pod>, prefix: &str) -> usize {
    pods.list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .iter()
        .filter(|p| {
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(&format!("{prefix}-")))
        })
        .filter(|p| {
            p.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(keys::USER_ANNOTATION))
        })
        .count()
}
