//! StatefulSets and Notebooks get the stamp of whoever writes them (`POST /workloads`). The only
//! I/O is the namespace check and, when the notebook controller relays a Notebook, one GET of it.

use kube::Api;
use kube::core::admission::{AdmissionRequest, AdmissionResponse};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};

use super::scope;
use super::state::AppState;
use crate::admission::workload::{
    StampAction, WorkloadContext, WorkloadReview, relayed_owner, review_workload,
};

/// The decision with its cluster I/O; the flag says a cluster call failed.
pub(super) async fn decide(
    state: &AppState,
    req: &AdmissionRequest<DynamicObject>,
) -> (WorkloadReview, bool) {
    let policy = state.policy.load_full();
    let ns_name = req.namespace.clone().unwrap_or_default();
    let mut owner = None;
    if let Some(cluster) = &state.cluster {
        let ns = match cluster.namespace_info(&ns_name).await {
            Ok(ns) => ns,
            Err(e) => return (refuse(req, &e.to_string()), true),
        };
        if let Err(message) = scope::confirm_in_scope(cluster, ns, &state.policy_namespace).await {
            return (refuse(req, &message), false);
        }
        if let Some((api_version, name)) = relayed_owner(&policy.snapshot, req) {
            let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(group, version, "Notebook"),
                "notebooks",
            );
            let api: Api<DynamicObject> =
                Api::namespaced_with(cluster.client.clone(), &ns_name, &resource);
            match api.get_opt(&name).await {
                Ok(found) => owner = found,
                Err(e) => {
                    let message = format!(
                        "cannot read Notebook {ns_name}/{name} to carry its stamp to the StatefulSet: {e}; check that the webhook may get notebooks.kubeflow.org, then retry"
                    );
                    return (refuse(req, &message), true);
                }
            }
        }
    }
    let key = state.stamp_key.load_full();
    let ctx = WorkloadContext {
        policy: &policy.snapshot,
        namespace: &ns_name,
        stamp_key: key.as_deref(),
    };
    (review_workload(ctx, req, owner.as_ref()), false)
}

fn refuse(req: &AdmissionRequest<DynamicObject>, message: &str) -> WorkloadReview {
    WorkloadReview {
        response: AdmissionResponse::from(req).deny(message.to_string()),
        kind: None,
        action: StampAction::NotJudged,
    }
}
