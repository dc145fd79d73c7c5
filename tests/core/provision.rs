//! Provisioned share and library claims: `storage` is validated field by field, and the plan
//! creates, for each enabled namespace in scope, the claim (and a pre-bound volume for a static
//! source) only where nothing of that name exists; someone else's claim is a conflict.

use notebook_volumes::keys;
use notebook_volumes::policy::provision::{Existing, Shape, Step, plan, volume_name};
use notebook_volumes::policy::{NamespaceInfo, PolicySnapshot, Severity, StorageSource};

use crate::fixtures::policy;

const NFS_SHARE: &str = "kind: Share\nname: finance\nclaimName: finance-data\nmountPath: /data/finance\nlevel: private\nwriters: {users: [alice]}\nstorage:\n  size: 10Gi\n  nfs: {server: nfs.example.org, path: /exports/finance}\n";
const CLASS_LIBRARY: &str = "kind: Library\nname: apps\nnamespaces: [team-a]\nclaimName: apps\nmountPath: /opt/apps\nstorage: {storageClassName: standard, size: 50Gi}\n";

fn errors(text: &str) -> Vec<(String, String)> {
    policy(text)
        .findings()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| (f.field.clone().unwrap_or_default(), f.message.clone()))
        .collect()
}

fn assert_refused(text: &str, field: &str, words: &str) {
    let found = errors(text);
    assert!(
        found.iter().any(|(f, m)| f == field && m.contains(words)),
        "expected an error on {field} with '{words}', got {found:#?}"
    );
}

fn share_with(storage: &str) -> String {
    format!(
        "kind: Share\nname: s\nclaimName: s\nmountPath: /s\nlevel: public\nstorage: {storage}\n"
    )
}

#[test]
fn storage_sources_are_parsed_into_the_model() {
    let snap = policy(&format!("{NFS_SHARE}---\n{CLASS_LIBRARY}"));
    assert_eq!(
        snap.findings().count(),
        0,
        "{:?}",
        snap.findings().collect::<Vec<_>>()
    );
    let share = snap.shares()[0].storage.clone().expect("storage");
    assert_eq!(share.size, "10Gi");
    assert_eq!(share.access_mode, "ReadWriteMany");
    assert_eq!(
        share.source,
        StorageSource::Nfs {
            server: "nfs.example.org".into(),
            path: "/exports/finance".into()
        }
    );
    let library = snap.libraries()[0].storage.clone().expect("storage");
    assert_eq!(library.source, StorageSource::Class("standard".into()));
    let csi = policy(&share_with(
        "{csi: {driver: cephfs.csi.ceph.com, volumeHandle: vol-1, volumeAttributes: {fsName: fs}}}",
    ));
    let storage = csi.shares()[0].storage.clone().expect("storage");
    assert_eq!(storage.size, "1Gi", "a static source's default capacity");
    assert!(
        matches!(storage.source, StorageSource::Csi { ref driver, .. } if driver == "cephfs.csi.ceph.com")
    );
}

#[test]
fn storage_needs_exactly_one_source() {
    assert_refused(&share_with("{size: 1Gi}"), "storage", "exactly one of");
    assert_refused(
        &share_with("{storageClassName: a, size: 1Gi, hostPath: {path: /x}}"),
        "storage",
        "exactly one of",
    );
}

#[test]
fn a_class_needs_a_positive_size() {
    assert_refused(
        &share_with("{storageClassName: standard}"),
        "storage.size",
        "needs a size",
    );
    assert_refused(
        &share_with("{storageClassName: standard, size: lots}"),
        "storage.size",
        "not a quantity",
    );
    assert_refused(
        &share_with("{storageClassName: standard, size: '0'}"),
        "storage.size",
        "at least one byte",
    );
    assert_refused(
        &share_with("{storageClassName: Not_A_Class, size: 1Gi}"),
        "storage.storageClassName",
        "DNS-1123",
    );
}

#[test]
fn static_sources_are_checked_and_capped() {
    assert_refused(
        &share_with("{nfs: {server: 'nfs;reboot', path: /x}}"),
        "storage.nfs.server",
        "host name",
    );
    assert_refused(
        &share_with("{nfs: {server: nfs, path: exports}}"),
        "storage.nfs.path",
        "absolute",
    );
    assert_refused(
        &share_with("{nfs: {server: nfs, path: /a/../b}}"),
        "storage.nfs.path",
        "normalised",
    );
    let long = format!("/{}", "a".repeat(5000));
    assert_refused(
        &share_with(&format!("{{nfs: {{server: nfs, path: {long}}}}}")),
        "storage.nfs.path",
        "at most 4096",
    );
    assert_refused(
        &share_with("{csi: {driver: 'Bad Driver', volumeHandle: v}}"),
        "storage.csi.driver",
        "DNS-1123",
    );
    assert_refused(
        &share_with("{csi: {driver: d.example.org, volumeHandle: ''}}"),
        "storage.csi.volumeHandle",
        "1 to 1024",
    );
    let handle = "h".repeat(1025);
    assert_refused(
        &share_with(&format!(
            "{{csi: {{driver: d.example.org, volumeHandle: {handle}}}}}"
        )),
        "storage.csi.volumeHandle",
        "1 to 1024",
    );
    let attributes: Vec<String> = (0..33).map(|i| format!("k{i}: v")).collect();
    assert_refused(
        &share_with(&format!(
            "{{csi: {{driver: d.example.org, volumeHandle: v, volumeAttributes: {{{}}}}}}}",
            attributes.join(", ")
        )),
        "storage.csi.volumeAttributes",
        "at most 32",
    );
    assert_refused(
        &share_with("{hostPath: {path: relative}}"),
        "storage.hostPath.path",
        "absolute",
    );
    assert_refused(
        &share_with("{nfs: {server: nfs, path: /x, options: soft}}"),
        "storage.nfs.options",
        "unknown field",
    );
}

#[test]
fn access_mode_is_many_nodes_and_read_only_only_without_writers() {
    assert_refused(
        &share_with("{hostPath: {path: /x}, accessMode: ReadWriteOnce}"),
        "storage.accessMode",
        "not one of",
    );
    let text = "kind: Share\nname: s\nclaimName: s\nmountPath: /s\nlevel: public\nwriters: {users: [a]}\nstorage: {hostPath: {path: /x}, accessMode: ReadOnlyMany}\n";
    assert_refused(text, "storage.accessMode", "has writers");
    let read_only = policy(&share_with(
        "{hostPath: {path: /x}, accessMode: ReadOnlyMany}",
    ));
    assert_eq!(read_only.findings().count(), 0);
}

#[test]
fn shares_of_one_claim_carry_the_same_storage() {
    let text = "kind: Share\nname: a\nclaimName: c\nsubPath: a\nmountPath: /a\nlevel: public\nstorage: {hostPath: {path: /x}}\n---\nkind: Share\nname: b\nclaimName: c\nsubPath: b\nmountPath: /b\nlevel: public\nstorage: {hostPath: {path: /y}}\n";
    assert_refused(text, "storage", "different `storage`");
    let same = text.replace("/y", "/x");
    assert_eq!(policy(&same).findings().count(), 0);
}

fn namespaces(names: &[&str]) -> Vec<NamespaceInfo> {
    names.iter().map(|n| NamespaceInfo::new(*n)).collect()
}

fn created(steps: &[Step]) -> Vec<(String, String, Option<String>)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Create { claim, volume, .. } => Some((
                claim.metadata.namespace.clone().unwrap_or_default(),
                claim.metadata.name.clone().unwrap_or_default(),
                volume.as_ref().and_then(|v| v.metadata.name.clone()),
            )),
            Step::Conflict { .. } => None,
        })
        .collect()
}

fn snapshot() -> PolicySnapshot {
    let snap = policy(&format!(
        "{NFS_SHARE}---\n{CLASS_LIBRARY}---\nkind: Share\nname: plain\nclaimName: plain\nmountPath: /plain\nlevel: public\n"
    ));
    assert_eq!(snap.findings().count(), 0);
    snap
}

#[test]
fn the_plan_creates_each_provisioned_claim_in_every_enabled_namespace_in_scope() {
    let steps = plan(&snapshot(), &namespaces(&["team-a", "team-b"]), |_, _| {
        Existing::Absent
    });
    assert_eq!(
        created(&steps),
        [
            (
                "team-a".into(),
                "finance-data".into(),
                Some(volume_name("team-a", "finance-data"))
            ),
            ("team-a".into(), "apps".into(), None),
            (
                "team-b".into(),
                "finance-data".into(),
                Some(volume_name("team-b", "finance-data"))
            ),
        ],
        "the NFS share everywhere with a volume each, the class library only in its namespace, nothing for the share without storage"
    );
}

/// The source the plan gives `finance-data` (NFS) in `ns`.
fn planned_static(ns: &str) -> Shape {
    Shape {
        storage_class_name: Some(String::new()),
        volume_name: Some(volume_name(ns, "finance-data")),
        filled: false,
    }
}

#[test]
fn the_plan_leaves_managed_claims_and_reports_foreign_ones() {
    let steps = plan(
        &snapshot(),
        &namespaces(&["team-a", "team-b"]),
        |ns, claim| match (ns, claim) {
            ("team-a", "finance-data") => Existing::Managed(planned_static("team-a")),
            ("team-b", "finance-data") => Existing::Unmanaged,
            _ => Existing::Absent,
        },
    );
    assert_eq!(created(&steps), [("team-a".into(), "apps".into(), None)]);
    let conflicts: Vec<_> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Conflict {
                owner,
                namespace,
                claim,
                ..
            } => Some((owner.name.as_str(), namespace.as_str(), claim.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(conflicts, [("finance", "team-b", "finance-data")]);
    assert!(plan(&snapshot(), &[], |_, _| Existing::Absent).is_empty());
}

#[test]
fn a_static_volume_is_reserved_for_its_namespaces_claim_and_retained() {
    let steps = plan(&snapshot(), &namespaces(&["team-b"]), |_, _| {
        Existing::Absent
    });
    let Some(Step::Create {
        claim,
        volume: Some(volume),
        ..
    }) = steps.first()
    else {
        panic!("{steps:?}");
    };
    let spec = volume.spec.as_ref().expect("spec");
    let reference = spec.claim_ref.as_ref().expect("claimRef");
    assert_eq!(reference.namespace.as_deref(), Some("team-b"));
    assert_eq!(reference.name.as_deref(), Some("finance-data"));
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Retain")
    );
    assert_eq!(spec.storage_class_name.as_deref(), Some(""));
    let nfs = spec.nfs.as_ref().expect("nfs");
    assert_eq!(
        (nfs.server.as_str(), nfs.path.as_str()),
        ("nfs.example.org", "/exports/finance")
    );
    let claim_spec = claim.spec.as_ref().expect("spec");
    assert_eq!(claim_spec.volume_name, volume.metadata.name);
    assert_eq!(claim_spec.storage_class_name.as_deref(), Some(""));
    assert_eq!(
        claim_spec.access_modes.as_deref(),
        Some(&["ReadWriteMany".to_string()][..])
    );
    for labels in [&claim.metadata.labels, &volume.metadata.labels] {
        let labels = labels.as_ref().expect("labels");
        assert_eq!(
            labels.get(keys::MANAGED_BY_LABEL).map(String::as_str),
            Some(keys::MANAGED_BY)
        );
        assert_eq!(
            labels.get(keys::SHARE_LABEL).map(String::as_str),
            Some("finance")
        );
    }
}

#[test]
fn volume_names_are_deterministic_short_and_distinct() {
    let long = "n".repeat(253);
    assert_eq!(volume_name("a", "b"), volume_name("a", "b"));
    assert_ne!(volume_name("a", "b"), volume_name("b", "a"));
    assert_ne!(volume_name("a-b", "c"), volume_name("a", "b-c"));
    let name = volume_name(&long, &long);
    assert_eq!(name.len(), 43);
    assert!(name.starts_with("nv-"));
    assert!(
        name[3..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
}

#[test]
fn a_provisioned_claim_still_in_policy_is_not_an_orphan() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use notebook_volumes::policy::provision::orphaned;
    let claim = |name: &str, labels: serde_json::Value| -> PersistentVolumeClaim {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "team-a", "labels": labels}
        }))
        .expect("claim")
    };
    let managed = |key: &str, value: &str| serde_json::json!({(keys::MANAGED_BY_LABEL): keys::MANAGED_BY, (key): value});
    let claims = [
        claim("finance-data", managed(keys::SHARE_LABEL, "finance")),
        claim("apps", managed(keys::LIBRARY_LABEL, "apps")),
        claim("old", managed(keys::SHARE_LABEL, "gone")),
        claim("apps-elsewhere", managed(keys::LIBRARY_LABEL, "apps")),
        claim("plain", serde_json::json!({})),
    ];
    let found = orphaned(&snapshot(), &NamespaceInfo::new("team-a"), &claims);
    let names: Vec<&str> = found.iter().map(|o| o.claim.as_str()).collect();
    assert_eq!(names, ["old", "apps-elsewhere"]);
    // The class library reaches only team-a: in team-b its claim is left behind.
    let in_b: Vec<PersistentVolumeClaim> = claims[..2]
        .iter()
        .cloned()
        .map(|mut c| {
            c.metadata.namespace = Some("team-b".into());
            c
        })
        .collect();
    let found = orphaned(&snapshot(), &NamespaceInfo::new("team-b"), &in_b);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].owner, "library apps");
}

/// A claim with the managed label but a source the plan would not give it was made where the
/// claim guard did not look (before its namespace was enabled): reported, never taken for
/// provisioned.
#[test]
fn a_managed_label_on_a_claim_the_plan_would_not_make_is_a_conflict() {
    let class = |name: Option<&str>| Shape {
        storage_class_name: name.map(str::to_string),
        ..Shape::default()
    };
    let cases = [
        (
            "finance-data",
            class(Some("standard")),
            "its volumeName is unset",
        ),
        (
            "finance-data",
            Shape {
                volume_name: Some(volume_name("team-b", "finance-data")),
                ..planned_static("team-a")
            },
            "its volumeName is 'nv-",
        ),
        (
            "finance-data",
            Shape {
                storage_class_name: Some("fast".into()),
                ..planned_static("team-a")
            },
            "its storageClassName is 'fast', not ''",
        ),
        (
            "finance-data",
            Shape {
                filled: true,
                ..planned_static("team-a")
            },
            "dataSource",
        ),
        (
            "apps",
            class(Some("fast")),
            "its storageClassName is 'fast', not 'standard'",
        ),
        ("apps", class(None), "its storageClassName is unset"),
        (
            "apps",
            Shape {
                filled: true,
                ..class(Some("standard"))
            },
            "dataSource",
        ),
    ];
    for (name, shape, words) in cases {
        let steps = plan(&snapshot(), &namespaces(&["team-a"]), |_, claim| {
            if claim == name {
                Existing::Managed(shape.clone())
            } else {
                Existing::Absent
            }
        });
        let reasons: Vec<&str> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Conflict { claim, reason, .. } if claim == name => Some(reason.as_str()),
                _ => None,
            })
            .collect();
        assert!(
            reasons.len() == 1
                && reasons[0].contains(words)
                && reasons[0].contains("before the namespace was enabled"),
            "{name} {shape:?}: {reasons:?}"
        );
        assert!(!created(&steps).iter().any(|(_, c, _)| c == name));
    }
    // As planned, with the class claim bound (its volumeName the PV controller's): nothing to do.
    let bound = Shape {
        volume_name: Some("pvc-1234".into()),
        ..class(Some("standard"))
    };
    let steps = plan(
        &snapshot(),
        &namespaces(&["team-a"]),
        |_, claim| match claim {
            "apps" => Existing::Managed(bound.clone()),
            _ => Existing::Managed(planned_static("team-a")),
        },
    );
    assert!(steps.is_empty(), "{steps:?}");
}
