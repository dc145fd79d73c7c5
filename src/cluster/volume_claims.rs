//! The cache behind claim readiness: every PersistentVolumeClaim, reduced to its name, phase and
//! access modes. The API cannot select claims by their namespace's label, so the watch is
//! cluster-wide; each object is slimmed as it arrives (a few hundred bytes a claim), so memory stays
//! linear in the number of claims and small.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::task::JoinHandle;

use super::drive::drive_with;
use super::provisioner::Provisioner;
use super::readiness::{Cache, Readiness};
use crate::keys;

/// Starts the reflector; `readiness` records its initial list.
/// A deleted claim nudges `provisioner` (a provisioned claim is made again).
pub fn start(
    client: Client,
    readiness: Arc<Readiness>,
    provisioner: Provisioner,
) -> (Store<PersistentVolumeClaim>, JoinHandle<()>) {
    let api: Api<PersistentVolumeClaim> = Api::all(client);
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(slim),
    );
    let task = tokio::spawn(drive_with(
        stream,
        Cache::VolumeClaims,
        readiness,
        move |event| {
            if matches!(event, watcher::Event::InitDone | watcher::Event::Delete(_)) {
                provisioner.nudge();
            }
        },
    ));
    (store, task)
}

/// Keeps what `ClaimInfo::of` reads for readiness (name, namespace, phase, access modes) and
/// what the reconciler reads: the managed label and the claim's source (class, volume name,
/// data source, selector: `provision::Shape`).
fn slim(pvc: &mut PersistentVolumeClaim) {
    let meta = std::mem::take(&mut pvc.metadata);
    let managed = meta
        .labels
        .and_then(|mut l| l.remove_entry(keys::MANAGED_BY_LABEL))
        .map(|entry| [entry].into());
    pvc.metadata = ObjectMeta {
        labels: managed,
        name: meta.name,
        namespace: meta.namespace,
        resource_version: meta.resource_version,
        uid: meta.uid,
        deletion_timestamp: meta.deletion_timestamp,
        ..Default::default()
    };
    pvc.spec = pvc.spec.take().map(|spec| PersistentVolumeClaimSpec {
        access_modes: spec.access_modes,
        storage_class_name: spec.storage_class_name,
        volume_name: spec.volume_name,
        data_source: spec.data_source,
        data_source_ref: spec.data_source_ref,
        // Only whether it is set: a selector can be long, and it is the user's to write.
        selector: spec.selector.map(|_| Default::default()),
        ..Default::default()
    });
    pvc.status = pvc.status.take().map(|status| PersistentVolumeClaimStatus {
        phase: status.phase,
        access_modes: status.access_modes,
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::ClaimInfo;

    #[test]
    fn slimming_keeps_what_readiness_reads() {
        let mut pvc: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "data", "namespace": "ns", "labels": {"a": "b"},
                         "annotations": {"big": "x".repeat(1000)}},
            "spec": {"accessModes": ["ReadWriteMany"], "volumeName": "pv-1",
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound", "accessModes": ["ReadWriteMany", "ReadOnlyMany"],
                       "capacity": {"storage": "1Gi"}}
        }))
        .expect("claim");
        let before = ClaimInfo::of(&pvc);
        slim(&mut pvc);
        let after = ClaimInfo::of(&pvc);
        assert_eq!(after.phase, before.phase);
        assert_eq!(after.access_modes, before.access_modes);
        assert_eq!(after.access_modes, ["ReadWriteMany", "ReadOnlyMany"]);
        assert!(pvc.metadata.annotations.is_none());
        assert!(pvc.metadata.labels.is_none());
        assert_eq!(pvc.metadata.name.as_deref(), Some("data"));
    }

    #[test]
    fn slimming_keeps_the_managed_label_only() {
        let mut pvc: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "data", "namespace": "ns",
                         "labels": {"a": "b", keys::MANAGED_BY_LABEL: keys::MANAGED_BY}}
        }))
        .expect("claim");
        slim(&mut pvc);
        assert!(crate::policy::provision::is_managed(&pvc));
        assert_eq!(pvc.metadata.labels.as_ref().map(|l| l.len()), Some(1));
    }

    #[test]
    fn slimming_keeps_the_source_the_reconciler_compares_and_not_a_selectors_content() {
        let values: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
        let mut pvc: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "data", "namespace": "ns"},
            "spec": {"storageClassName": "fast", "volumeName": "pv-1",
                     "dataSource": {"kind": "PersistentVolumeClaim", "name": "src"},
                     "selector": {"matchExpressions": [{"key": "k", "operator": "In", "values": values}]}}
        }))
        .expect("claim");
        let before = crate::policy::provision::Shape::of(&pvc);
        slim(&mut pvc);
        assert_eq!(crate::policy::provision::Shape::of(&pvc), before);
        assert!(before.filled);
        let selector = pvc
            .spec
            .and_then(|s| s.selector)
            .expect("selector kept as set");
        assert!(selector.match_expressions.is_none());
    }
}
