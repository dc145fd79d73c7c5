//! Which pod creations concern the webhook at all. The pod webhook's `matchConditions` (CEL in
//! the manifests and the chart) let the API server skip the others; this is the core's own
//! statement of the same rule, so tests can hold the CEL expression to it.

use k8s_openapi::api::core::v1::Pod;

use super::pod;
use crate::keys;
use crate::policy::Settings;
use crate::policy::rules::SAFE_VOLUME_TYPES;

/// True when creating `pod` could need the webhook: a notebook (injection), a volume of any
/// kind but the safe built-ins (the guard), or a label or annotation the webhook reads or
/// polices (its prefixes, the username annotations). Pods for which this is false are allowed
/// unchanged by `review`, whoever creates them.
pub fn concerns_webhook(settings: &Settings, pod: &Pod) -> bool {
    let reserved =
        |key: &str| key.starts_with(keys::PREFIX) || key.starts_with(keys::RELAYED_PREFIX);
    let labelled = pod
        .metadata
        .labels
        .iter()
        .flatten()
        .any(|(key, _)| reserved(key));
    let annotated =
        pod.metadata.annotations.iter().flatten().any(|(key, _)| {
            reserved(key) || settings.username_annotations.iter().any(|u| u == key)
        });
    let storage = pod::volumes(pod)
        .iter()
        .any(|v| pod::volume_type(v).is_none_or(|kind| !SAFE_VOLUME_TYPES.contains(&kind)));
    pod::is_notebook(settings, pod) || labelled || annotated || storage
}
