//! Home claim names are reserved by their template, whether or not the claim exists yet: a claim
//! name that the template could produce belongs to the user it was made for, and nobody else.

/// Placeholder for the username slug in `claimNameTemplate`.
pub const USER_PLACEHOLDER: &str = "{user}";

/// The part of `claim` that stands where `{user}` is in `template`, when the template could have
/// produced this name (fixed text around it matches and the user part is not empty).
pub fn user_part<'c>(template: &str, claim: &'c str) -> Option<&'c str> {
    let (prefix, suffix) = template.split_once(USER_PLACEHOLDER)?;
    let rest = claim.strip_prefix(prefix)?;
    let middle = rest.strip_suffix(suffix)?;
    (!middle.is_empty()).then_some(middle)
}

/// Suffix of the secret-level home claim (`Home.secretHome: separate`). No slug ends with it: a
/// slug kept as written has no `--`, and any other ends in `--` and hexadecimal digits; so the
/// secret home of one user is never the normal home of another.
pub const SECRET_SUFFIX: &str = "--secret";

/// The secret-level home claim beside the home claim `claim`.
pub fn secret_claim(claim: &str) -> String {
    format!("{claim}{SECRET_SUFFIX}")
}

/// The user part of a claim `template` can produce, as a normal home (`false`) or as the
/// secret-level home beside one (`true`).
pub fn home_user<'c>(template: &str, claim: &'c str) -> Option<(&'c str, bool)> {
    if let Some(user) = claim
        .strip_suffix(SECRET_SUFFIX)
        .and_then(|base| user_part(template, base))
    {
        return Some((user, true));
    }
    user_part(template, claim).map(|user| (user, false))
}

/// The claim name `template` gives a user whose slug is `slug`.
pub fn claim_for(template: &str, slug: &str) -> String {
    template.replacen(USER_PLACEHOLDER, slug, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_template_can_produce_have_a_user_part() {
        assert_eq!(user_part("home-{user}", "home-alice"), Some("alice"));
        assert_eq!(user_part("{user}-data", "mergers-data"), Some("mergers"));
        assert_eq!(
            user_part("jupyterhub-nb-{user}-pvc", "jupyterhub-nb-bob-pvc"),
            Some("bob")
        );
        assert_eq!(user_part("home-{user}", "home-"), None);
        assert_eq!(user_part("home-{user}", "scratch"), None);
        assert_eq!(user_part("{user}-pvc", "x-pvc"), Some("x"));
        assert_eq!(user_part("no-placeholder", "no-placeholder"), None);
    }

    #[test]
    fn secret_homes_are_recognised_under_any_template() {
        assert_eq!(
            home_user("home-{user}", "home-alice--secret"),
            Some(("alice", true))
        );
        assert_eq!(
            home_user("home-{user}", "home-alice"),
            Some(("alice", false))
        );
        assert_eq!(
            home_user("jupyterhub-nb-{user}-pvc", "jupyterhub-nb-bob-pvc--secret"),
            Some(("bob", true))
        );
        // Without a user before the suffix it is no secret home (and `--secret` is no slug).
        assert_eq!(
            home_user("claim-{user}", "claim---secret").map(|(_, secret)| secret),
            Some(false)
        );
        assert_eq!(secret_claim("home-a"), "home-a--secret");
    }

    #[test]
    fn claim_for_fills_the_placeholder_once() {
        assert_eq!(claim_for("home-{user}", "alice"), "home-alice");
        assert_eq!(
            user_part("home-{user}", &claim_for("home-{user}", "a-b")),
            Some("a-b")
        );
    }
}
