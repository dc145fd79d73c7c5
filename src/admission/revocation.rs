//! Which running notebooks mount more than current policy grants (a user removed from a share's
//! writers keeps a read-write mount until the notebook restarts). Pure: `audit --live` and the
//! server feed it the pods they listed.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

use super::access::{Access, effective_access};
use super::identity::{Subject, parse_hub_groups};
use super::pod;
use crate::keys;
use crate::policy::{Level, NamespaceInfo, PolicySnapshot, Share};

/// One share a running notebook mounts beyond its user's current rights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Excess {
    pub namespace: String,
    pub pod: String,
    pub user: String,
    pub share: String,
    pub claim: String,
    /// How the pod mounts it (`rw`, `ro`).
    pub mounted: String,
    /// What current policy grants (`rw`, `ro`, `-`).
    pub granted: String,
    /// The rule as it stands now, and where it is written.
    pub reason: String,
    /// The pod's uid, so an Event about it shows in `kubectl describe pod`.
    #[serde(skip)]
    pub uid: Option<String>,
}

/// Reason of the Event on a running notebook that exceeds a changed policy.
pub const EXCEEDS_POLICY: &str = "ExceedsPolicy";

impl Excess {
    /// The Event users see on the pod: which share, how it is mounted, what policy grants now and
    /// the rule that says so.
    pub fn notice(&self) -> super::notices::Notice {
        let granted = match self.granted.as_str() {
            "-" => "no access".to_string(),
            g => g.to_string(),
        };
        super::notices::Notice {
            regarding: k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some(self.namespace.clone()),
                name: Some(self.pod.clone()),
                uid: self.uid.clone(),
                ..Default::default()
            },
            wait_for_pod: false,
            warning: true,
            reason: EXCEEDS_POLICY,
            note: format!(
                "share '{}' is mounted {} but the policy now grants {}: {}. This notebook keeps the mount until it restarts; restart it to run with current rights",
                self.share, self.mounted, granted, self.reason
            ),
        }
    }
}

/// The shares `pod` mounts beyond what `policy` grants its user now. Only notebooks the webhook
/// decided on count (they carry its user annotation): the user's groups are those of the policy
/// and those the hub passed (the webhook's groups annotation).
pub fn exceeding(policy: &PolicySnapshot, ns: &NamespaceInfo, pod: &Pod) -> Vec<Excess> {
    let Some(user) = pod::annotation(pod, keys::USER_ANNOTATION) else {
        return Vec::new();
    };
    let mut groups: BTreeSet<String> = policy.groups_of(user);
    if let Some(hub) = pod::annotation(pod, keys::GROUPS_ANNOTATION) {
        groups.extend(parse_hub_groups(hub).unwrap_or_default());
    }
    let subject = Subject {
        user: Some(user.to_string()),
        groups,
    };
    let in_scope = policy.shares_in_scope(ns);
    let share_of = |claim: &str| in_scope.iter().copied().find(|s| s.claim_name == claim);
    let secret_in_pod = pod::volumes(pod)
        .iter()
        .filter_map(pod::claim_of)
        .filter_map(share_of)
        .any(|s| s.level == Level::Secret);
    let mut out = Vec::new();
    for volume in pod::volumes(pod) {
        let Some(claim) = pod::claim_of(volume) else {
            continue;
        };
        let mounted = mounted_access(pod, &volume.name, volume_read_only(volume));
        if mounted == Access::None {
            continue;
        }
        let share_name = volume.name.strip_prefix(keys::SHARE_VOLUME_PREFIX);
        let (share, granted, reason) = match share_of(claim) {
            Some(share) => {
                let granted = effective_access(share, &subject, secret_in_pod);
                (share.name.clone(), granted, rule(share, user, granted))
            }
            // The webhook mounted a share whose policy is gone from this namespace: its record
            // on the pod says so (a volume name alone is the pod author's to choose).
            None => match share_name.filter(|name| recorded(pod, name)) {
                Some(name) => (
                    name.to_string(),
                    Access::None,
                    format!(
                        "share '{name}' no longer reaches namespace '{}' with claim '{claim}' (removed, renamed or rescoped)",
                        ns.name
                    ),
                ),
                None => continue,
            },
        };
        if mounted > granted {
            out.push(Excess {
                namespace: ns.name.clone(),
                pod: pod.metadata.name.clone().unwrap_or_default(),
                user: user.to_string(),
                share,
                claim: claim.to_string(),
                mounted: mounted.as_str().into(),
                granted: granted.as_str().into(),
                reason,
                uid: pod.metadata.uid.clone(),
            });
        }
    }
    out
}

/// Whether the webhook's record of what it mounted (`notebook-volumes.io/mounts`, written at
/// creation and changed by administrators only) names `share`. Linear in the annotation.
fn recorded(pod: &Pod, share: &str) -> bool {
    pod::annotation(pod, keys::MOUNTS_ANNOTATION).is_some_and(|mounts| {
        mounts
            .split(',')
            .any(|entry| entry.split_once('=').is_some_and(|(name, _)| name == share))
    })
}

fn volume_read_only(volume: &k8s_openapi::api::core::v1::Volume) -> bool {
    volume
        .persistent_volume_claim
        .as_ref()
        .and_then(|p| p.read_only)
        .unwrap_or(false)
}

/// The most any container of the pod gets from the volume: `Rw` when one mount is writable.
fn mounted_access(pod: &Pod, volume: &str, volume_read_only: bool) -> Access {
    let Some(spec) = &pod.spec else {
        return Access::None;
    };
    let mounts = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .filter(|m| m.name == volume);
    let mut access = Access::None;
    for m in mounts {
        // Mount-level readOnly is what the kubelet honours for each mount (a claim-level flag
        // applies to every mount of the volume).
        let ro = m.read_only.unwrap_or(false) || volume_read_only;
        access = access.max(if ro { Access::Ro } else { Access::Rw });
    }
    access
}

/// The current rule, for the report: who writes or reads the share now, and where it is written.
fn rule(share: &Share, user: &str, granted: Access) -> String {
    let names = |p: &crate::policy::Principals| {
        let mut v: Vec<String> = p.users.iter().map(|u| format!("user {u}")).collect();
        v.extend(p.groups.iter().map(|g| format!("group {g}")));
        v.sort();
        if v.is_empty() {
            "nobody".to_string()
        } else {
            v.join(", ")
        }
    };
    let what = match granted {
        Access::Ro => format!(
            "'{user}' is no longer a writer of share '{}' (writers now: {})",
            share.name,
            names(&share.writers)
        ),
        _ => format!(
            "'{user}' may no longer read {} share '{}' (readers now: {}; writers: {})",
            share.level.as_str(),
            share.name,
            names(&share.readers),
            names(&share.writers)
        ),
    };
    format!("{what}; defined in {}", share.origin.unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Unit, units_from_text};

    fn policy(finance_writers: &str) -> PolicySnapshot {
        let text = format!(
            "kind: Groups\ngroups:\n  analysts: [bob]\n---\nkind: Share\nname: finance\nclaimName: finance-data\nmountPath: /f\nlevel: private\nreaders: {{groups: [analysts]}}\nwriters: {{users: [{finance_writers}]}}\n"
        );
        let (units, findings): (Vec<Unit>, _) = units_from_text("p.yaml", &text, "nv");
        assert!(findings.is_empty(), "{findings:?}");
        crate::policy::in_force::Policy::compile(units).snapshot
    }

    fn notebook(user: &str, read_only: bool, hub_groups: Option<&str>) -> Pod {
        let access = if read_only { "ro" } else { "rw" };
        let mut annotations = serde_json::json!({
            (keys::USER_ANNOTATION): user,
            (keys::MOUNTS_ANNOTATION): format!("home=rw,finance={access}"),
        });
        if let Some(g) = hub_groups {
            annotations[keys::GROUPS_ANNOTATION] = g.into();
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("jupyter-{user}"), "annotations": annotations},
            "spec": {
                "containers": [{"name": "notebook", "image": "x",
                    "volumeMounts": [{"name": "nv-share-finance", "mountPath": "/f", "readOnly": read_only}]}],
                "volumes": [{"name": "nv-share-finance", "persistentVolumeClaim": {"claimName": "finance-data"}}]
            }
        }))
        .expect("pod")
    }

    #[test]
    fn a_removed_writer_with_a_writable_mount_is_reported_with_the_rule() {
        let ns = NamespaceInfo::new("ds");
        let before = policy("alice");
        assert!(exceeding(&before, &ns, &notebook("alice", false, None)).is_empty());
        let after = policy("erin");
        let found = exceeding(&after, &ns, &notebook("alice", false, None));
        assert_eq!(found.len(), 1);
        let e = &found[0];
        assert_eq!((e.mounted.as_str(), e.granted.as_str()), ("rw", "-"));
        assert!(
            e.reason
                .contains("'alice' may no longer read private share 'finance'")
                && e.reason.contains("writers: user erin")
                && e.reason.contains("p.yaml"),
            "{}",
            e.reason
        );
        // A read-only mount within the reader's rights is fine; hub groups count.
        assert!(exceeding(&after, &ns, &notebook("bob", true, None)).is_empty());
        assert!(exceeding(&after, &ns, &notebook("carol", true, Some("analysts"))).is_empty());
        let carol = exceeding(&after, &ns, &notebook("carol", false, Some("analysts")));
        assert_eq!(carol.len(), 1);
        assert!(
            carol[0].reason.contains("no longer a writer"),
            "{}",
            carol[0].reason
        );
        // A pod the webhook did not decide on is not judged here (the guard judged it).
        let mut plain = notebook("alice", false, None);
        plain.metadata.annotations = None;
        assert!(exceeding(&after, &ns, &plain).is_empty());
    }

    #[test]
    fn the_event_on_the_pod_names_the_share_the_rights_and_the_rule() {
        let mut pod = notebook("alice", false, None);
        pod.metadata.uid = Some("uid-1".into());
        let found = exceeding(&policy("erin"), &NamespaceInfo::new("ds"), &pod);
        let notice = found[0].notice();
        assert_eq!(notice.reason, EXCEEDS_POLICY);
        assert!(notice.warning && !notice.wait_for_pod);
        assert_eq!(notice.regarding.uid.as_deref(), Some("uid-1"));
        assert_eq!(notice.regarding.name.as_deref(), Some("jupyter-alice"));
        assert!(
            notice
                .note
                .starts_with("share 'finance' is mounted rw but the policy now grants no access: ")
                && notice.note.contains(&found[0].reason),
            "{}",
            notice.note
        );
    }

    #[test]
    fn a_share_gone_from_the_namespace_is_reported() {
        let ns = NamespaceInfo::new("ds");
        let (units, _): (Vec<Unit>, _) =
            units_from_text("p.yaml", "kind: Groups\ngroups: {}\n", "nv");
        let empty = crate::policy::in_force::Policy::compile(units).snapshot;
        let found = exceeding(&empty, &ns, &notebook("alice", true, None));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].reason.contains("no longer reaches namespace 'ds'"),
            "{}",
            found[0].reason
        );
    }

    #[test]
    fn a_volume_named_like_a_share_the_webhook_never_mounted_is_not_reported() {
        let ns = NamespaceInfo::new("ds");
        let mut pod = notebook("mallory", false, None);
        let spec = pod.spec.as_mut().expect("spec");
        for volume in spec.volumes.iter_mut().flatten() {
            volume.name = "nv-share-ghost".into();
            volume
                .persistent_volume_claim
                .as_mut()
                .expect("claim")
                .claim_name = "scratch".into();
        }
        for mount in spec.containers[0].volume_mounts.iter_mut().flatten() {
            mount.name = "nv-share-ghost".into();
        }
        assert!(exceeding(&policy("erin"), &ns, &pod).is_empty());
        // Nor when the record names it only as part of another entry.
        let mut record = |value: &str| {
            let annotations = pod.metadata.annotations.get_or_insert_default();
            annotations.insert(keys::MOUNTS_ANNOTATION.into(), value.into());
            exceeding(&policy("erin"), &ns, &pod).len()
        };
        assert_eq!(record("ghostly=rw,home=rw"), 0);
        assert_eq!(record("home=rw,ghost=rw"), 1, "the webhook mounted it");
    }
}
