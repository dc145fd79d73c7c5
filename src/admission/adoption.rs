//! The plan of `notebook-volumes adopt`: which existing claims become whose home. A claim the
//! webhook did not create is never trusted as a home; an administrator adopts it by giving it the
//! marks the webhook puts on the claims it creates. Pure: the caller lists claims and pods.

use std::collections::BTreeMap;
use std::fmt;

use super::claims::ClaimColumns;
use super::identity::slug;
use crate::keys;
use crate::policy::Home;
use crate::policy::home_template::claim_for;

/// Placeholder for the username in an adoption pattern.
pub const USERNAME: &str = "{username}";
/// Placeholder for a notebook's name: the user is whoever's notebook pods mount the claim.
pub const NOTEBOOK: &str = "{notebook}";

/// Patterns of the usual platforms, by preset name.
pub const PRESETS: &[(&str, &str)] = &[
    ("kubespawner", "claim-{username}"),
    ("odh", "jupyterhub-nb-{username}-pvc"),
    ("workbench", "{notebook}-workspace"),
];

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error(
        "pattern '{0}' must contain {USERNAME} or {NOTEBOOK} exactly once, with fixed text around it (for example claim-{USERNAME})"
    )]
    Placeholder(String),
    #[error("unknown preset '{0}'; the presets are kubespawner, odh and workbench")]
    Preset(String),
}

/// A claim-name pattern with one placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    prefix: String,
    suffix: String,
    /// `{notebook}`: the captured part names a notebook, not a user.
    by_notebook: bool,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let bad = || PatternError::Placeholder(text.to_string());
        let count = text.matches(USERNAME).count() + text.matches(NOTEBOOK).count();
        if count != 1 {
            return Err(bad());
        }
        let (placeholder, by_notebook) = if text.contains(USERNAME) {
            (USERNAME, false)
        } else {
            (NOTEBOOK, true)
        };
        let (prefix, suffix) = text.split_once(placeholder).ok_or_else(bad)?;
        if prefix.is_empty() && suffix.is_empty() {
            return Err(bad());
        }
        Ok(Pattern {
            prefix: prefix.into(),
            suffix: suffix.into(),
            by_notebook,
        })
    }

    pub fn preset(name: &str) -> Result<Self, PatternError> {
        let (_, text) = PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| PatternError::Preset(name.into()))?;
        Pattern::parse(text)
    }

    /// The part of `claim` standing for the placeholder.
    pub fn capture<'c>(&self, claim: &'c str) -> Option<&'c str> {
        let middle = claim
            .strip_prefix(&self.prefix)?
            .strip_suffix(&self.suffix)?;
        (!middle.is_empty()).then_some(middle)
    }
}

/// What the plan needs of one existing claim.
#[derive(Debug, Clone, Default)]
pub struct ClaimFacts {
    pub name: String,
    pub size: String,
    pub home: bool,
    pub owner: Option<String>,
    /// What the claim was filled from (`spec.dataSource`/`dataSourceRef`: kind/name), if anything.
    /// Anyone with `edit` can create a claim under a spawner's name filled with another claim's
    /// data, so such a claim is never adopted by the plan.
    pub data_source: Option<String>,
}

/// What the plan needs of one pod: its user, if it names one, and the claims it mounts.
#[derive(Debug, Clone)]
pub struct PodFacts {
    pub name: String,
    pub user: Option<String>,
    pub claims: Vec<String>,
}

impl PodFacts {
    /// The pod's user: the webhook's own record first, then the spawners' username annotations.
    pub fn user_of(annotations: &BTreeMap<String, String>) -> Option<String> {
        std::iter::once(keys::USER_ANNOTATION)
            .chain(
                crate::policy::model::DEFAULT_USERNAME_ANNOTATIONS
                    .iter()
                    .copied(),
            )
            .find_map(|k| annotations.get(k).filter(|v| !v.is_empty()).cloned())
    }
}

/// What `adopt` does with a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Marked as the user's home.
    Adopt,
    /// Already marked for this user: nothing to do.
    Already,
    /// Left alone, with the reason.
    Conflict(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Adopt => write!(f, "adopt"),
            Verdict::Already => write!(f, "already adopted"),
            Verdict::Conflict(why) => write!(f, "refused: {why}"),
        }
    }
}

/// One row of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub claim: ClaimColumns,
    pub verdict: Verdict,
    /// What the administrator should know besides (the Home template names another claim).
    pub note: Option<String>,
}

/// The plan over every claim `pattern` matches, in claim order. `home` is the namespace's Home
/// document, when known: a claim its template would not give the user is reported, since the
/// webhook would look for (and create) another claim for them.
pub fn plan(
    pattern: &Pattern,
    claims: &[ClaimFacts],
    pods: &[PodFacts],
    home: Option<&Home>,
) -> Vec<Row> {
    let mut mounted_by: BTreeMap<&str, Vec<(&str, Option<&str>)>> = BTreeMap::new();
    for pod in pods {
        for claim in &pod.claims {
            mounted_by
                .entry(claim.as_str())
                .or_default()
                .push((pod.name.as_str(), pod.user.as_deref()));
        }
    }
    let mut rows: Vec<Row> = claims
        .iter()
        .filter_map(|c| {
            let captured = pattern.capture(&c.name)?;
            let mounts = mounted_by.get(c.name.as_str()).map_or(&[][..], Vec::as_slice);
            let user = if pattern.by_notebook {
                mounts.iter().find_map(|(_, u)| *u).map(str::to_string)
            } else {
                Some(captured.to_string())
            };
            let verdict = verdict(c, user.as_deref(), mounts);
            let note = user.as_deref().zip(home).and_then(|(u, h)| {
                let expected = claim_for(&h.claim_name_template, &slug(u));
                (expected != c.name).then(|| format!(
                    "the Home template '{}' gives '{u}' the claim '{expected}': this one is trusted where the spawner mounts it itself, but the webhook injects '{expected}'; set claimNameTemplate to match to have it injected",
                    h.claim_name_template
                ))
            });
            Some(Row {
                claim: ClaimColumns {
                    name: c.name.clone(),
                    user,
                    size: c.size.clone(),
                },
                verdict,
                note,
            })
        })
        .collect();
    // Two claims for one user: the webhook trusts either, so neither is adopted silently.
    let mut per_user: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        if let (Some(u), Verdict::Adopt | Verdict::Already) = (&r.claim.user, &r.verdict) {
            *per_user.entry(u.clone()).or_default() += 1;
        }
    }
    for r in &mut rows {
        if r.verdict == Verdict::Adopt
            && r.claim
                .user
                .as_ref()
                .is_some_and(|u| per_user.get(u).copied().unwrap_or(0) > 1)
        {
            r.verdict = Verdict::Conflict(
                "another claim matches the same user; adopt one by hand (kubectl label/annotate)"
                    .into(),
            );
        }
    }
    rows
}

fn verdict(claim: &ClaimFacts, user: Option<&str>, mounts: &[(&str, Option<&str>)]) -> Verdict {
    let Some(user) = user else {
        return Verdict::Conflict(
            "no notebook pod of a known user mounts it, so its user is unknown".into(),
        );
    };
    if let Some(owner) = claim.owner.as_deref().filter(|o| *o != user) {
        return Verdict::Conflict(format!("it is already marked as the home of '{owner}'"));
    }
    // A pod that names no user may be anyone's: its data would become the user's home.
    match mounts.iter().find(|(_, u)| *u != Some(user)) {
        Some((pod, Some(other))) => {
            return Verdict::Conflict(format!(
                "it is mounted by pod '{pod}' of another user, '{other}'"
            ));
        }
        Some((pod, None)) => {
            return Verdict::Conflict(format!(
                "it is mounted by pod '{pod}', which names no user; delete the pod or adopt the claim by hand"
            ));
        }
        None => {}
    }
    if claim.home && claim.owner.as_deref() == Some(user) {
        return Verdict::Already;
    }
    if let Some(source) = claim.data_source.as_deref() {
        return Verdict::Conflict(format!(
            "it was filled from {source} (spec.dataSource), which anyone with edit in the namespace could have chosen; check its contents and adopt it by hand"
        ));
    }
    Verdict::Adopt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str) -> ClaimFacts {
        ClaimFacts {
            name: name.into(),
            size: "1Gi".into(),
            ..Default::default()
        }
    }

    fn pod(name: &str, user: Option<&str>, claims: &[&str]) -> PodFacts {
        PodFacts {
            name: name.into(),
            user: user.map(str::to_string),
            claims: claims.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn a_claim_filled_from_a_data_source_is_never_adopted() {
        let mut prepared = claim("claim-alice");
        prepared.data_source = Some("PersistentVolumeClaim/mallory-scripts".into());
        let pattern = Pattern::preset("kubespawner").unwrap();
        let rows = plan(&pattern, &[prepared], &[], None);
        assert!(
            matches!(&rows[0].verdict, Verdict::Conflict(why) if why.contains("mallory-scripts")),
            "{:?}",
            rows[0].verdict
        );
    }

    #[test]
    fn patterns_need_one_placeholder_with_fixed_text() {
        assert!(Pattern::parse("{username}").is_err());
        assert!(Pattern::parse("home").is_err());
        assert!(Pattern::parse("{username}-{notebook}").is_err());
        let p = Pattern::preset("odh").unwrap();
        assert_eq!(p.capture("jupyterhub-nb-bob-pvc"), Some("bob"));
        assert_eq!(p.capture("jupyterhub-nb--pvc"), None);
        assert!(Pattern::preset("nope").is_err());
    }

    #[test]
    fn plan_adopts_refuses_and_reports() {
        let p = Pattern::preset("kubespawner").unwrap();
        let mut carols = claim("claim-carol");
        carols.home = true;
        carols.owner = Some("carol".into());
        let mut taken = claim("claim-erin");
        taken.owner = Some("frank".into());
        let rows = plan(
            &p,
            &[
                claim("claim-alice"),
                claim("claim-dave"),
                carols,
                taken,
                claim("claim-gina"),
                claim("scratch"),
            ],
            &[
                pod("jupyter-alice", Some("alice"), &["claim-alice"]),
                pod("snoop", Some("bob"), &["claim-dave"]),
                pod("job", None, &["claim-gina"]),
            ],
            None,
        );
        let by: BTreeMap<_, _> = rows
            .iter()
            .map(|r| (r.claim.name.as_str(), &r.verdict))
            .collect();
        assert_eq!(by.len(), 5, "scratch does not match");
        assert!(matches!(by["claim-gina"], Verdict::Conflict(w) if w.contains("names no user")));
        assert_eq!(by["claim-alice"], &Verdict::Adopt);
        assert!(matches!(by["claim-dave"], Verdict::Conflict(w) if w.contains("'bob'")));
        assert_eq!(by["claim-carol"], &Verdict::Already);
        assert!(matches!(by["claim-erin"], Verdict::Conflict(w) if w.contains("'frank'")));
    }

    #[test]
    fn notebook_patterns_take_the_user_of_the_mounting_pods() {
        let p = Pattern::preset("workbench").unwrap();
        let rows = plan(
            &p,
            &[claim("nb1-workspace"), claim("nb2-workspace")],
            &[pod("nb1-0", Some("alice"), &["nb1-workspace"])],
            None,
        );
        assert_eq!(rows[0].claim.user.as_deref(), Some("alice"));
        assert_eq!(rows[0].verdict, Verdict::Adopt);
        assert!(matches!(&rows[1].verdict, Verdict::Conflict(w) if w.contains("unknown")));
    }

    #[test]
    fn a_home_template_that_names_another_claim_is_noted() {
        let home = Home {
            scope: crate::policy::Scope::Everywhere,
            claim_name_template: "home-{user}".into(),
            mount_path: "/home".into(),
            create: None,
            secret_home: Default::default(),
            sizes: vec![],
            origin: crate::policy::Origin::file("p.yaml"),
        };
        let p = Pattern::preset("kubespawner").unwrap();
        let rows = plan(&p, &[claim("claim-alice")], &[], Some(&home));
        assert_eq!(rows[0].verdict, Verdict::Adopt);
        assert!(
            rows[0]
                .note
                .as_deref()
                .is_some_and(|n| n.contains("home-alice"))
        );
        let same = Home {
            claim_name_template: "claim-{user}".into(),
            ..home
        };
        assert_eq!(
            plan(&p, &[claim("claim-alice")], &[], Some(&same))[0].note,
            None
        );
    }
}
