//! Which namespaces the webhook acts in (pure): labelled `notebook-volumes.io/inject=enabled`,
//! and neither the control plane's nor the webhook's own. The server checks each review with it
//! (`server::scope`), the provisioning reconciler each namespace it provisions in.

use crate::keys;
use crate::policy::NamespaceInfo;

/// Namespaces never acted in, labelled or not (the control plane's; the webhook's own is added).
pub const EXCLUDED_NAMESPACES: &[&str] = &["kube-system"];

/// Why a review's namespace is out of scope (the pod is denied with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutOfScope {
    #[error(
        "namespace '{0}' is never handled by notebook-volumes; this review did not come through the shipped webhook configuration (check its namespaceSelector)"
    )]
    Excluded(String),
    #[error(
        "namespace '{0}' is not enabled for notebook-volumes (label {label}={enabled}); label it, or fix the webhook configuration's namespaceSelector that sent this review",
        label = keys::INJECT_LABEL,
        enabled = keys::INJECT_ENABLED
    )]
    NotEnabled(String),
}

/// Whether the webhook acts in `ns`: labelled `notebook-volumes.io/inject=enabled`, and neither
/// `kube-system` nor `own_namespace` (where the webhook and its policy live).
pub fn in_scope(ns: &NamespaceInfo, own_namespace: &str) -> Result<(), OutOfScope> {
    if ns.name.is_empty()
        || ns.name == own_namespace
        || EXCLUDED_NAMESPACES.contains(&ns.name.as_str())
    {
        return Err(OutOfScope::Excluded(ns.name.clone()));
    }
    match ns.labels.get(keys::INJECT_LABEL) {
        Some(value) if value == keys::INJECT_ENABLED => Ok(()),
        _ => Err(OutOfScope::NotEnabled(ns.name.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str, labels: &[(&str, &str)]) -> NamespaceInfo {
        NamespaceInfo {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    const ENABLED: (&str, &str) = (keys::INJECT_LABEL, keys::INJECT_ENABLED);

    #[test]
    fn side_effects_only_in_enabled_namespaces() {
        assert_eq!(
            in_scope(&ns("ds-team", &[ENABLED]), "notebook-volumes"),
            Ok(())
        );
        assert_eq!(
            in_scope(&ns("ds-team", &[]), "notebook-volumes"),
            Err(OutOfScope::NotEnabled("ds-team".into()))
        );
        assert_eq!(
            in_scope(
                &ns("ds-team", &[(keys::INJECT_LABEL, "disabled")]),
                "notebook-volumes"
            ),
            Err(OutOfScope::NotEnabled("ds-team".into()))
        );
    }

    #[test]
    fn side_effects_never_in_kube_system_or_the_webhooks_namespace() {
        for name in ["kube-system", "notebook-volumes", ""] {
            assert_eq!(
                in_scope(&ns(name, &[ENABLED]), "notebook-volumes"),
                Err(OutOfScope::Excluded(name.into())),
                "{name}"
            );
        }
        let message = OutOfScope::NotEnabled("x".into()).to_string();
        assert!(
            message.contains("notebook-volumes.io/inject=enabled"),
            "{message}"
        );
    }
}
