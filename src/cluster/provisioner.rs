//! The reconciler of provisioned share and library claims (docs/design.md, "Provisioned share
//! claims"). It runs beside the webhook in the same process, off the admission path: the policy
//! watch, the namespace watch and the claim watch nudge it, it waits a moment for a burst of
//! changes to settle, then computes the plan (`policy::provision`, pure) from the caches and
//! creates what is missing. Creates are idempotent create-if-absent, so every replica may run it:
//! an AlreadyExists answer means a replica (or an earlier pass) made the object, which is checked
//! to be the managed one, never adopted otherwise. Nothing is ever updated or deleted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use k8s_openapi::api::core::v1::{
    Namespace, ObjectReference, PersistentVolume, PersistentVolumeClaim,
};
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::events::truncate;
use super::off_workers::off_workers;
use super::readiness::Readiness;
use crate::metrics::Metrics;
use crate::policy::in_force::Policy;
use crate::policy::provision::{self, Owner, Step};
use crate::policy::{NamespaceInfo, PolicySnapshot};

/// A burst of changes (a namespace created then labelled, several ConfigMaps applied) becomes
/// one pass.
const SETTLE: Duration = Duration::from_millis(200);
/// A pass also runs this often without a nudge (a claim deleted while a watch was down).
const RESYNC: Duration = Duration::from_secs(300);
/// While the caches have not made their first list, the next look.
const NOT_READY_RETRY: Duration = Duration::from_secs(1);
/// Conflict Events written in one pass at most (each conflict is reported once anyway).
const MAX_EVENTS_PER_PASS: usize = 20;
/// Reason of the conflict Event on the policy ConfigMap.
pub const PROVISION_CONFLICT: &str = "ProvisionConflict";
/// The Events API caps the note at 1 kB.
const MAX_NOTE: usize = 1000;

/// What the reconciler reads; all of it is shared with the admission side.
pub struct Inputs {
    pub client: Client,
    pub policy: Arc<ArcSwap<Policy>>,
    pub namespaces: Store<Namespace>,
    /// Every claim, slimmed, with the managed label kept (`volume_claims`).
    pub claims: Store<PersistentVolumeClaim>,
    /// The webhook's own namespace, never provisioned in.
    pub own_namespace: String,
    pub readiness: Arc<Readiness>,
    pub metrics: Arc<Metrics>,
}

/// The nudging end; cheap to clone. A nudge never waits.
#[derive(Clone, Default)]
pub struct Provisioner {
    nudge: Arc<Notify>,
}

impl Provisioner {
    pub fn new() -> Provisioner {
        Provisioner::default()
    }

    /// Asks for a pass soon; nudges during a pass give one more pass after it.
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }

    /// Starts the reconciler loop.
    pub fn start(&self, inputs: Inputs) -> JoinHandle<()> {
        let nudge = Arc::clone(&self.nudge);
        tokio::spawn(run(inputs, nudge))
    }
}

async fn run(inputs: Inputs, nudge: Arc<Notify>) {
    let reporter = Reporter {
        controller: "notebook-volumes".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let recorder = Recorder::new(inputs.client.clone(), reporter);
    let mut reported: HashSet<(String, String)> = HashSet::new();
    loop {
        let _ = tokio::time::timeout(RESYNC, nudge.notified()).await;
        tokio::time::sleep(SETTLE).await;
        while !inputs.readiness.is_ready() {
            tokio::time::sleep(NOT_READY_RETRY).await;
        }
        let policy = inputs.policy.load_full();
        let namespaces = enabled(&inputs.namespaces, &inputs.own_namespace);
        let claims = inputs.claims.clone();
        let failed = "planning provisioned claims failed";
        let planned = off_workers(failed, "retrying on the next change", move || {
            plan_from_cache(&policy.snapshot, &namespaces, &claims)
        });
        let Some(steps) = planned.await else {
            continue;
        };
        let mut conflicts = HashSet::new();
        let mut events = 0;
        for step in steps {
            if let Some(conflict) = apply(&inputs, step).await {
                let first = !reported.contains(&conflict.key());
                if first {
                    tracing::warn!(
                        namespace = %conflict.namespace,
                        claim = %conflict.claim,
                        owner = %format!("{} {}", conflict.owner.kind, conflict.owner.name),
                        reason = %conflict.reason,
                        "a provisioned claim's name is taken; it is left alone and not provisioned"
                    );
                    if events < MAX_EVENTS_PER_PASS {
                        events += 1;
                        report(&recorder, &conflict).await;
                    }
                }
                conflicts.insert(conflict.key());
            }
        }
        inputs.metrics.set_provision_conflicts(conflicts.len());
        reported = conflicts;
    }
}

/// The enabled namespaces, from the cache.
fn enabled(namespaces: &Store<Namespace>, own_namespace: &str) -> Vec<NamespaceInfo> {
    namespaces
        .state()
        .iter()
        .map(|ns| super::info(ns))
        .filter(|ns| {
            !ns.name.is_empty()
                && crate::admission::namespace_scope::in_scope(ns, own_namespace).is_ok()
        })
        .collect()
}

fn plan_from_cache(
    snapshot: &PolicySnapshot,
    namespaces: &[NamespaceInfo],
    claims: &Store<PersistentVolumeClaim>,
) -> Vec<Step> {
    provision::plan(snapshot, namespaces, |namespace, claim| {
        let cached = claims.get(&ObjectRef::new(claim).within(namespace));
        provision::existing_of(cached.as_deref())
    })
}

/// A claim name the reconciler found taken.
struct Conflict {
    owner: Owner,
    namespace: String,
    claim: String,
    reason: String,
}

impl Conflict {
    fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.claim.clone())
    }
}

/// Performs one step; a conflict found on the way is returned to be reported.
async fn apply(inputs: &Inputs, step: Step) -> Option<Conflict> {
    let (owner, claim, volume) = match step {
        Step::Conflict {
            owner,
            namespace,
            claim,
            reason,
        } => {
            return Some(Conflict {
                owner,
                namespace,
                claim,
                reason,
            });
        }
        Step::Create {
            owner,
            claim,
            volume,
        } => (owner, claim, volume),
    };
    let namespace = claim.metadata.namespace.clone().unwrap_or_default();
    let name = claim.metadata.name.clone().unwrap_or_default();
    let conflict = |reason: String| Conflict {
        owner: owner.clone(),
        namespace: namespace.clone(),
        claim: name.clone(),
        reason,
    };
    if let Some(volume) = volume {
        match create_volume(inputs, &volume, &namespace, &name).await {
            Ok(()) => {}
            Err(Failure::Conflict(reason)) => return Some(conflict(reason)),
            Err(Failure::Failed) => return None,
        }
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(inputs.client.clone(), &namespace);
    match claims.create(&PostParams::default(), &claim).await {
        Ok(_) => {
            inputs.metrics.provisioned("claim");
            tracing::info!(%namespace, claim = %name, owner = %format!("{} {}", owner.kind, owner.name), "provisioned claim created");
            None
        }
        Err(kube::Error::Api(e)) if e.code == 409 => match claims.get_opt(&name).await {
            Ok(Some(existing)) if provision::is_managed(&existing) => None,
            Ok(Some(_)) => Some(conflict(
                "a claim of that name was created without the label notebook-volumes.io/managed-by=notebook-volumes".into(),
            )),
            Ok(None) => None, // Deleted meanwhile: the claim watch nudges the next pass.
            Err(error) => {
                tracing::warn!(%namespace, claim = %name, %error, "cannot read a claim that already exists");
                None
            }
        },
        Err(error) => {
            inputs.metrics.provision_failed();
            tracing::warn!(%namespace, claim = %name, %error, "cannot create a provisioned claim; retrying on the next pass");
            None
        }
    }
}

enum Failure {
    /// The volume name is taken by something else: the claim is not created.
    Conflict(String),
    /// Logged and counted; the next pass retries.
    Failed,
}

async fn create_volume(
    inputs: &Inputs,
    volume: &PersistentVolume,
    namespace: &str,
    claim: &str,
) -> Result<(), Failure> {
    let volumes: Api<PersistentVolume> = Api::all(inputs.client.clone());
    let name = volume.metadata.name.clone().unwrap_or_default();
    match volumes.create(&PostParams::default(), volume).await {
        Ok(_) => {
            inputs.metrics.provisioned("volume");
            tracing::info!(volume = %name, %namespace, %claim, "provisioned PersistentVolume created");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 409 => match volumes.get_opt(&name).await {
            Ok(Some(existing)) if provision::is_planned_volume(&existing, namespace, claim) => {
                Ok(())
            }
            Ok(Some(_)) => Err(Failure::Conflict(format!(
                "the PersistentVolume '{name}' exists but is not the managed volume reserved for this claim"
            ))),
            Ok(None) => Err(Failure::Failed),
            Err(error) => {
                tracing::warn!(volume = %name, %error, "cannot read a PersistentVolume that already exists");
                Err(Failure::Failed)
            }
        },
        Err(error) => {
            inputs.metrics.provision_failed();
            tracing::warn!(volume = %name, %error, "cannot create a provisioned PersistentVolume; check the webhook may create persistentvolumes; retrying on the next pass");
            Err(Failure::Failed)
        }
    }
}

/// A Warning on the policy ConfigMap defining the share (none for policy from files).
async fn report(recorder: &Recorder, conflict: &Conflict) {
    let Some(reference) = config_map_reference(&conflict.owner.unit) else {
        return;
    };
    let note = format!(
        "{} '{}': claim '{}' in namespace '{}' is not provisioned: {}. notebook-volumes never adopts or changes a claim it did not make; delete or rename that claim (after saving its data), or take the namespace out of the {}'s scope",
        conflict.owner.kind,
        conflict.owner.name,
        conflict.claim,
        conflict.namespace,
        conflict.reason,
        conflict.owner.kind
    );
    let event = Event {
        type_: EventType::Warning,
        reason: PROVISION_CONFLICT.into(),
        note: Some(truncate(&note, MAX_NOTE)),
        action: "Provision".into(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &reference).await {
        tracing::warn!(%error, "cannot record the ProvisionConflict event");
    }
}

/// `ConfigMap <namespace>/<name>` (a policy unit's name) as an object reference.
fn config_map_reference(unit: &str) -> Option<ObjectReference> {
    let (namespace, name) = unit.strip_prefix("ConfigMap ")?.split_once('/')?;
    Some(ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_map_unit_is_referenced_and_a_file_is_not() {
        let r = config_map_reference("ConfigMap nv/team-shares").expect("reference");
        assert_eq!(r.namespace.as_deref(), Some("nv"));
        assert_eq!(r.name.as_deref(), Some("team-shares"));
        assert!(config_map_reference("policies/shares.yaml").is_none());
    }
}
