//! The name an admitted object goes by, for notes and stamps.

use kube::api::ObjectMeta;

/// The object's `metadata.name`, else the request's `name` (empty or absent in the object when
/// the API server has not named it yet).
pub(crate) fn object_name(metadata: &ObjectMeta, request_name: &str) -> String {
    metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| request_name.to_string())
}
