//! Why a user has the access they have to a share: which policy entry, and which source of the
//! user's groups, granted it. `access --user` prints it so an auditor can see that a right came
//! from the hub rather than from a `Groups` document.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::access::{Access, share_access};
use super::identity::Subject;
use crate::policy::{Level, PolicySnapshot, Principals, Share};

/// Where one of the user's groups came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupSource {
    /// A `Groups` policy document, in this unit (ConfigMap or file).
    Policy(String),
    /// The groups annotation a trusted spawner wrote (JupyterHub groups).
    Hub,
    /// The Kubernetes groups of the requester (a user creating their own pod).
    Requester,
    /// An OpenShift `Group` object of the group's name (`Settings.openshiftGroups: auto`).
    OpenShift,
}

impl fmt::Display for GroupSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupSource::Policy(unit) => write!(f, "Groups document in {unit}"),
            GroupSource::Hub => f.write_str("hub annotation"),
            GroupSource::Requester => f.write_str("requester's groups"),
            GroupSource::OpenShift => f.write_str("OpenShift Group"),
        }
    }
}

/// A user and their groups, each group with every source that gives it.
#[derive(Debug, Clone, Default)]
pub struct SourcedSubject {
    pub user: Option<String>,
    pub groups: BTreeMap<String, BTreeSet<GroupSource>>,
}

impl SourcedSubject {
    /// The user with the groups of the policy (`Groups` documents, OpenShift Groups when the
    /// Settings use them), the hub and the requester.
    pub fn new(policy: &PolicySnapshot, user: &str, hub: &[String], requester: &[String]) -> Self {
        let mut groups: BTreeMap<String, BTreeSet<GroupSource>> = BTreeMap::new();
        for g in policy.policy_groups_of(user).into_iter().flatten() {
            let sources = groups.entry(g.clone()).or_default();
            for unit in policy.group_units(g).into_iter().flatten() {
                sources.insert(GroupSource::Policy(unit.clone()));
            }
        }
        for g in policy.openshift_groups_of(user).into_iter().flatten() {
            groups
                .entry(g.clone())
                .or_default()
                .insert(GroupSource::OpenShift);
        }
        for (list, source) in [(hub, GroupSource::Hub), (requester, GroupSource::Requester)] {
            for g in list {
                groups.entry(g.clone()).or_default().insert(source.clone());
            }
        }
        SourcedSubject {
            user: Some(user.to_string()),
            groups,
        }
    }

    pub fn subject(&self) -> Subject {
        Subject {
            user: self.user.clone(),
            groups: self.groups.keys().cloned().collect(),
        }
    }
}

/// What granted an access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// The user is named in the share's `writers` or `readers`.
    User { list: &'static str },
    /// A group of the user is named there; with the sources of that group.
    Group {
        list: &'static str,
        group: String,
        sources: Vec<GroupSource>,
    },
    /// A public share is readable by every notebook user.
    Public,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::User { list } => write!(f, "{list}.users"),
            Grant::Group {
                list,
                group,
                sources,
            } => {
                let from: Vec<String> = sources.iter().map(ToString::to_string).collect();
                write!(f, "{list}.groups '{group}' (from {})", from.join(", "))
            }
            Grant::Public => f.write_str("public share"),
        }
    }
}

/// The subject's access to the share and what granted it (`None` for no access).
pub fn explain(share: &Share, subject: &SourcedSubject) -> (Access, Option<Grant>) {
    let access = share_access(share, &subject.subject());
    let grant = match access {
        Access::None => None,
        Access::Rw => named_in("writers", &share.writers, subject),
        Access::Ro => named_in("readers", &share.readers, subject)
            .or_else(|| (share.level == Level::Public).then_some(Grant::Public)),
    };
    (access, grant)
}

/// The first entry of `principals` naming the subject: the user, else a group.
fn named_in(
    list: &'static str,
    principals: &Principals,
    subject: &SourcedSubject,
) -> Option<Grant> {
    if subject
        .user
        .as_deref()
        .is_some_and(|u| principals.users.contains(u))
    {
        return Some(Grant::User { list });
    }
    subject
        .groups
        .iter()
        .find(|(g, _)| principals.groups.contains(*g))
        .map(|(group, sources)| Grant::Group {
            list,
            group: group.clone(),
            sources: sources.iter().cloned().collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::openshift_groups::OpenShiftGroups;
    use crate::policy::{PolicySnapshot, Unit, units_from_text};

    fn policy() -> PolicySnapshot {
        policy_with("")
    }

    fn finance_of(policy: &PolicySnapshot) -> &Share {
        let shares = policy.shares();
        shares
            .iter()
            .find(|s| s.name == "finance")
            .expect("finance")
    }

    fn policy_with(settings: &str) -> PolicySnapshot {
        let text = settings.to_string()
            + r#"
kind: Groups
groups:
  finance-team: [alice]
---
kind: Share
name: finance
claimName: finance
mountPath: /shares/finance
level: private
readers: {groups: [auditors]}
writers: {groups: [finance-team, ml]}
---
kind: Share
name: datasets
claimName: datasets
mountPath: /shares/datasets
level: public
writers: {users: [erin]}
"#;
        let (units, findings): (Vec<Unit>, _) = units_from_text("p.yaml", &text, "nv");
        assert!(findings.is_empty(), "{findings:?}");
        crate::policy::in_force::Policy::compile(units).snapshot
    }

    #[test]
    fn each_grant_names_its_list_and_the_source_of_the_group() {
        let policy = policy();
        let share = |name: &str| policy.shares().iter().find(|s| s.name == name).expect(name);
        let (finance, datasets) = (share("finance"), share("datasets"));
        let alice = SourcedSubject::new(&policy, "alice", &["ml".into()], &[]);
        let (access, grant) = explain(finance, &alice);
        assert_eq!(access, Access::Rw);
        assert_eq!(
            grant.map(|g| g.to_string()).as_deref(),
            Some("writers.groups 'finance-team' (from Groups document in p.yaml)")
        );
        let bob = SourcedSubject::new(&policy, "bob", &["ml".into()], &["ml".into()]);
        assert_eq!(
            explain(finance, &bob).1.map(|g| g.to_string()).as_deref(),
            Some("writers.groups 'ml' (from hub annotation, requester's groups)")
        );
        let carol = SourcedSubject::new(&policy, "carol", &["auditors".into()], &[]);
        assert_eq!(explain(finance, &carol).0, Access::Ro);
        assert_eq!(
            explain(finance, &SourcedSubject::new(&policy, "dave", &[], &[])),
            (Access::None, None)
        );
        assert_eq!(explain(datasets, &carol), (Access::Ro, Some(Grant::Public)));
        let erin = SourcedSubject::new(&policy, "erin", &[], &[]);
        assert_eq!(
            explain(datasets, &erin),
            (Access::Rw, Some(Grant::User { list: "writers" }))
        );
    }

    /// OpenShift Groups naming `bob` in `ml` and `alice` in `finance-team`.
    fn openshift() -> std::sync::Arc<OpenShiftGroups> {
        let ml = serde_json::json!(["bob"]);
        let team = serde_json::json!(["alice"]);
        let (groups, skipped) =
            OpenShiftGroups::index([(Some("ml"), Some(&ml)), (Some("finance-team"), Some(&team))]);
        assert!(skipped.is_empty());
        std::sync::Arc::new(groups)
    }

    #[test]
    fn openshift_groups_grant_only_when_the_settings_say_auto() {
        let on = policy_with("kind: Settings\nopenshiftGroups: auto\n---\n")
            .with_openshift_groups(openshift());
        let finance = finance_of(&on);
        let bob = SourcedSubject::new(&on, "bob", &[], &[]);
        assert_eq!(
            explain(finance, &bob).1.map(|g| g.to_string()).as_deref(),
            Some("writers.groups 'ml' (from OpenShift Group)")
        );
        assert_eq!(on.groups_of("bob"), ["ml".to_string()].into());
        // Both sources of one group are named.
        let alice = SourcedSubject::new(&on, "alice", &[], &[]);
        let sources: Vec<String> = alice.groups["finance-team"]
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(sources, ["Groups document in p.yaml", "OpenShift Group"]);

        let off = policy_with("kind: Settings\nopenshiftGroups: off\n---\n")
            .with_openshift_groups(openshift());
        let finance = finance_of(&off);
        assert_eq!(
            explain(finance, &SourcedSubject::new(&off, "bob", &[], &[])),
            (Access::None, None)
        );
        assert!(off.groups_of("bob").is_empty());
        // Without a Settings document: off.
        let default = policy().with_openshift_groups(openshift());
        assert!(default.groups_of("bob").is_empty());
        assert_eq!(
            default.groups_of("alice"),
            ["finance-team".to_string()].into()
        );
    }
}
