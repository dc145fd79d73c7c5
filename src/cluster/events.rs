//! Kubernetes Events on policy ConfigMaps that failed validation but got in anyway (webhook down,
//! or edited before install), so `kubectl describe configmap` shows why their shares are absent.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

/// Reason of the Event; stable, for `kubectl get events --field-selector reason=InvalidPolicy`.
pub const INVALID_POLICY: &str = "InvalidPolicy";
/// The Events API caps the note at 1 kB.
const MAX_NOTE: usize = 1000;

#[derive(Clone)]
pub struct PolicyEvents {
    recorder: Recorder,
}

impl PolicyEvents {
    pub fn new(client: Client) -> Self {
        let reporter = Reporter {
            controller: "notebook-volumes".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        PolicyEvents {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Records a Warning `InvalidPolicy` on the ConfigMap; failures are only logged (an Event is
    /// a courtesy, the log line and the metric are already there).
    pub async fn invalid_policy(&self, cm: &ConfigMap, findings: &str) {
        let event = Event {
            type_: EventType::Warning,
            reason: INVALID_POLICY.into(),
            note: Some(truncate(findings, MAX_NOTE)),
            action: "Validate".into(),
            secondary: None,
        };
        let reference = cm.object_ref(&());
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(%error, configmap = ?cm.metadata.name, "cannot record the InvalidPolicy event");
        }
    }
}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}
