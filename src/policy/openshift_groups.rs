//! Group membership from OpenShift `Group` objects (`user.openshift.io/v1`, cluster-scoped,
//! `users: [string]`), indexed by user. Pure: the server feeds it the objects its watch lists,
//! `access` those of a file. Every input is capped; an object over a cap or of the wrong shape is
//! skipped whole and reported, never fatal, and a skipped Group only ever grants less.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kube::core::DynamicObject;
use serde_json::Value;

/// Most Groups indexed; past it, Groups are taken in name order and the rest skipped.
pub const MAX_GROUPS: usize = 10_000;
/// Most users one Group may list; a Group with more is skipped.
pub const MAX_USERS_PER_GROUP: usize = 10_000;
/// Most memberships (user in a group) over all Groups; Groups past it are skipped.
pub const MAX_MEMBERSHIPS: usize = 200_000;
/// Longest group name (a Kubernetes object name).
pub const MAX_GROUP_NAME: usize = 253;
/// Longest username in a Group.
pub const MAX_USER_NAME: usize = 512;

/// Why a Group was not indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    NoName,
    NameTooLong,
    /// `users` is neither absent, null nor a list of strings.
    BadUsers,
    UserNameTooLong,
    TooManyUsers,
    TooManyGroups,
    TooManyMemberships,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NoName => f.write_str("the Group has no name"),
            SkipReason::NameTooLong => {
                write!(f, "the Group's name is longer than {MAX_GROUP_NAME} bytes")
            }
            SkipReason::BadUsers => f.write_str("`users` is not a list of strings"),
            SkipReason::UserNameTooLong => {
                write!(f, "a username is longer than {MAX_USER_NAME} bytes")
            }
            SkipReason::TooManyUsers => {
                write!(f, "the Group lists more than {MAX_USERS_PER_GROUP} users")
            }
            SkipReason::TooManyGroups => write!(
                f,
                "more than {MAX_GROUPS} Groups: those after the first {MAX_GROUPS} by name are skipped"
            ),
            SkipReason::TooManyMemberships => write!(
                f,
                "more than {MAX_MEMBERSHIPS} memberships over all Groups: later Groups by name are skipped"
            ),
        }
    }
}

/// A Group left out of the index, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub reason: SkipReason,
}

/// Users to the OpenShift Groups that list them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OpenShiftGroups {
    user_groups: HashMap<String, BTreeSet<String>>,
    groups: usize,
}

impl OpenShiftGroups {
    /// Indexes Groups given as (name, `users` value). Linear in the input, which is first cut to
    /// a bounded number of Groups; duplicate names merge.
    pub fn index<'a>(
        groups: impl IntoIterator<Item = (Option<&'a str>, Option<&'a Value>)>,
    ) -> (OpenShiftGroups, Vec<Skipped>) {
        let mut skipped = Vec::new();
        let mut named: BTreeMap<&str, Vec<Option<&Value>>> = BTreeMap::new();
        for (name, users) in groups {
            match name {
                None | Some("") => skipped.push(Skipped {
                    name: String::new(),
                    reason: SkipReason::NoName,
                }),
                Some(name) if name.len() > MAX_GROUP_NAME => skipped.push(Skipped {
                    name: truncated(name),
                    reason: SkipReason::NameTooLong,
                }),
                Some(name) => named.entry(name).or_default().push(users),
            }
        }
        let mut index = OpenShiftGroups::default();
        let mut memberships = 0usize;
        for (i, (name, lists)) in named.into_iter().enumerate() {
            let skip = |reason| Skipped {
                name: name.to_string(),
                reason,
            };
            if i >= MAX_GROUPS {
                skipped.push(skip(SkipReason::TooManyGroups));
                continue;
            }
            let users = match members(&lists) {
                Ok(users) => users,
                Err(reason) => {
                    skipped.push(skip(reason));
                    continue;
                }
            };
            if memberships + users.len() > MAX_MEMBERSHIPS {
                skipped.push(skip(SkipReason::TooManyMemberships));
                continue;
            }
            memberships += users.len();
            index.groups += 1;
            for user in users {
                index
                    .user_groups
                    .entry(user.to_string())
                    .or_default()
                    .insert(name.to_string());
            }
        }
        (index, skipped)
    }

    /// Indexes Group objects as the API server serves them.
    pub fn from_objects<'a>(
        objects: impl IntoIterator<Item = &'a DynamicObject>,
    ) -> (OpenShiftGroups, Vec<Skipped>) {
        Self::index(
            objects
                .into_iter()
                .map(|o| (o.metadata.name.as_deref(), o.data.get("users"))),
        )
    }

    /// The Groups that list this user.
    pub fn groups_of(&self, user: &str) -> Option<&BTreeSet<String>> {
        self.user_groups.get(user)
    }

    /// Every user some Group lists.
    pub fn users(&self) -> impl Iterator<Item = &String> {
        self.user_groups.keys()
    }

    /// Service accounts some Group lists, with the namespace whose `edit` members may act as
    /// each (the role impersonates the namespace's service accounts), in name order.
    pub fn service_accounts(&self) -> Vec<(&str, &str)> {
        let mut accounts: Vec<(&str, &str)> = self
            .user_groups
            .keys()
            .filter_map(|user| {
                let rest = user.strip_prefix("system:serviceaccount:")?;
                Some((user.as_str(), rest.split(':').next()?))
            })
            .collect();
        accounts.sort_unstable();
        accounts
    }

    /// Groups indexed.
    pub fn len(&self) -> usize {
        self.groups
    }

    pub fn is_empty(&self) -> bool {
        self.groups == 0
    }
}

/// The users of one Group name's objects, or why the Group is skipped. Blank entries name nobody
/// and are dropped.
fn members<'a>(lists: &[Option<&'a Value>]) -> Result<BTreeSet<&'a str>, SkipReason> {
    let mut users = BTreeSet::new();
    for list in lists {
        let items = match list {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => items,
            Some(_) => return Err(SkipReason::BadUsers),
        };
        if items.len() > MAX_USERS_PER_GROUP {
            return Err(SkipReason::TooManyUsers);
        }
        for item in items {
            let user = item.as_str().ok_or(SkipReason::BadUsers)?;
            if user.len() > MAX_USER_NAME {
                return Err(SkipReason::UserNameTooLong);
            }
            if !user.trim().is_empty() {
                users.insert(user);
            }
        }
        if users.len() > MAX_USERS_PER_GROUP {
            return Err(SkipReason::TooManyUsers);
        }
    }
    Ok(users)
}

/// A name short enough to log.
fn truncated(name: &str) -> String {
    let mut end = 64.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &name[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index(groups: &[(&str, Value)]) -> (OpenShiftGroups, Vec<Skipped>) {
        OpenShiftGroups::index(groups.iter().map(|(n, u)| (Some(*n), Some(u))))
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn users_get_the_groups_that_list_them() {
        let (idx, skipped) = index(&[
            ("finance", json!(["alice", "bob"])),
            ("analysts", json!(["bob", " "])),
            ("empty", Value::Null),
        ]);
        assert!(skipped.is_empty());
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.groups_of("alice"), Some(&set(&["finance"])));
        assert_eq!(idx.groups_of("bob"), Some(&set(&["analysts", "finance"])));
        assert_eq!(idx.groups_of("Alice"), None, "usernames compare exactly");
        assert_eq!(idx.groups_of(" "), None, "blank entries name nobody");
    }

    #[test]
    fn a_bad_group_is_skipped_whole_and_the_others_kept() {
        let long_user = "u".repeat(MAX_USER_NAME + 1);
        let (idx, skipped) = index(&[
            ("numbers", json!(["alice", 5])),
            ("scalar", json!("alice")),
            ("long-user", json!(["alice", long_user])),
            ("ok", json!(["alice"])),
        ]);
        assert_eq!(idx.groups_of("alice"), Some(&set(&["ok"])));
        let reasons: Vec<_> = skipped
            .iter()
            .map(|s| (s.name.as_str(), s.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                ("long-user", SkipReason::UserNameTooLong),
                ("numbers", SkipReason::BadUsers),
                ("scalar", SkipReason::BadUsers),
            ]
        );
        let (_, skipped) = OpenShiftGroups::index([
            (None, None),
            (Some("g".repeat(MAX_GROUP_NAME + 1).as_str()), None),
        ]);
        assert_eq!(skipped[0].reason, SkipReason::NoName);
        assert_eq!(skipped[1].reason, SkipReason::NameTooLong);
        assert!(skipped[1].name.len() < 100, "long names are cut for logs");
    }

    #[test]
    fn a_group_over_the_user_cap_is_skipped() {
        let users: Vec<String> = (0..=MAX_USERS_PER_GROUP).map(|i| format!("u{i}")).collect();
        let (idx, skipped) = index(&[("big", json!(users)), ("small", json!(["u1"]))]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].reason, SkipReason::TooManyUsers);
        assert_eq!(idx.groups_of("u1"), Some(&set(&["small"])));
        assert_eq!(idx.groups_of("u0"), None);
    }

    #[test]
    fn groups_past_the_count_cap_are_skipped_in_name_order() {
        let names: Vec<String> = (0..MAX_GROUPS + 2).map(|i| format!("g{i:06}")).collect();
        let users = json!(["alice"]);
        // Given in reverse: which ones are kept does not depend on the listing order.
        let (idx, skipped) =
            OpenShiftGroups::index(names.iter().rev().map(|n| (Some(n.as_str()), Some(&users))));
        assert_eq!(idx.len(), MAX_GROUPS);
        let skipped: Vec<_> = skipped.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            skipped,
            [names[MAX_GROUPS].as_str(), names[MAX_GROUPS + 1].as_str()]
        );
    }

    #[test]
    fn memberships_past_the_total_cap_skip_whole_groups() {
        let users: Vec<String> = (0..MAX_USERS_PER_GROUP).map(|i| format!("u{i}")).collect();
        let users = json!(users);
        let names: Vec<String> = (0..MAX_MEMBERSHIPS / MAX_USERS_PER_GROUP + 1)
            .map(|i| format!("g{i:03}"))
            .collect();
        let (idx, skipped) =
            OpenShiftGroups::index(names.iter().map(|n| (Some(n.as_str()), Some(&users))));
        assert_eq!(idx.len(), MAX_MEMBERSHIPS / MAX_USERS_PER_GROUP);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].reason, SkipReason::TooManyMemberships);
    }

    #[test]
    fn objects_read_their_top_level_users() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "user.openshift.io/v1", "kind": "Group",
            "metadata": {"name": "finance"}, "users": ["alice"]
        }))
        .unwrap();
        let (idx, skipped) = OpenShiftGroups::from_objects([&object]);
        assert!(skipped.is_empty());
        assert_eq!(idx.groups_of("alice"), Some(&set(&["finance"])));
    }
}
