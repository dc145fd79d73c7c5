//! Administrators may create, mark and clone the claims the policy reserves; users may not. The
//! webhook itself counts as one, since it creates home claims through the same API server.

use std::collections::BTreeSet;

use k8s_openapi::api::authentication::v1::UserInfo;

use crate::policy::Settings;

/// Whether the requester is an administrator by `Settings.administrators`, or is the webhook's
/// own identity (`webhook`, learnt at start-up).
pub fn is_administrator(settings: &Settings, user_info: &UserInfo, webhook: Option<&str>) -> bool {
    let user = user_info.username.as_deref();
    if user.is_some() && user == webhook {
        return true;
    }
    let groups: BTreeSet<String> = user_info.groups.iter().flatten().cloned().collect();
    settings.administrators.contains(user, &groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(user: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            username: Some(user.into()),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn masters_and_the_webhook_are_administrators_by_default() {
        let s = Settings::default();
        assert!(is_administrator(
            &s,
            &info("root", &["system:masters"]),
            None
        ));
        assert!(is_administrator(&s, &info("nv", &[]), Some("nv")));
        assert!(!is_administrator(&s, &info("alice", &["edit"]), Some("nv")));
        assert!(!is_administrator(&s, &UserInfo::default(), None));
    }
}
