//! The checks between documents: a new share, library, home or Settings against the units
//! accepted before it and the earlier documents of its own unit. Each looks only at what can
//! clash (the share index gives the same claim, or equal or nested mount paths).

use std::fmt;

use super::check::Item;
use super::home_template::home_user;
use super::model::{ClaimHolder, Home, Library, Scope, Share};
use super::origin::Finding;
use super::parse::ParsedDoc;
use super::rules::{path_within, paths_overlap};
use super::share_index::ShareIndex;

/// What is mounted at a spot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpotKind {
    Share,
    Library,
    Home,
}

/// `share`, `library` or `home`, as the findings name them.
impl fmt::Display for SpotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpotKind::Share => "share",
            SpotKind::Library => "library",
            SpotKind::Home => "home",
        })
    }
}

/// Where a share, library or home is mounted, for the path rules (docs/design.md, "Policy"): shares and libraries
/// may not be equal or nested (a share may sit inside the home), nothing may hide the home, and
/// two homes may not reach one namespace.
struct Spot<'a> {
    kind: SpotKind,
    name: &'a str,
    scope: &'a Scope,
    path: &'a str,
    unit: &'a str,
}

impl<'a> Spot<'a> {
    fn of(item: &'a Item) -> Option<Spot<'a>> {
        match item {
            Item::Share(s) => Some(Spot::share(s)),
            Item::Library(l) => Some(Spot::library(l)),
            Item::Home(h) => Some(Spot::home(h)),
            Item::Groups(_) | Item::Settings(_) => None,
        }
    }

    fn share(s: &'a Share) -> Spot<'a> {
        Spot::at(
            SpotKind::Share,
            &s.name,
            &s.scope,
            &s.mount_path,
            &s.origin.unit,
        )
    }

    fn library(l: &'a Library) -> Spot<'a> {
        Spot::at(
            SpotKind::Library,
            &l.name,
            &l.scope,
            &l.mount_path,
            &l.origin.unit,
        )
    }

    fn home(h: &'a Home) -> Spot<'a> {
        Spot::at(SpotKind::Home, "", &h.scope, &h.mount_path, &h.origin.unit)
    }

    fn at(
        kind: SpotKind,
        name: &'a str,
        scope: &'a Scope,
        path: &'a str,
        unit: &'a str,
    ) -> Spot<'a> {
        Spot {
            kind,
            name,
            scope,
            path,
            unit,
        }
    }

    /// The field and message of a conflict between this new mount and an existing one.
    fn clash(&self, old: &Spot<'_>) -> Option<(&'static str, String)> {
        if !self.scope.may_overlap(old.scope) {
            return None;
        }
        match (self.kind, old.kind) {
            (SpotKind::Home, SpotKind::Home) => Some((
                "namespaces",
                format!(
                    "another Home document (in {}) reaches the same namespaces; give each Home distinct `namespaces` or `namespaceSelector`",
                    old.unit
                ),
            )),
            (SpotKind::Home, _) => path_within(self.path, old.path).then(|| {
                ("mountPath", format!("'{}' sits inside {} '{}' at '{}'", self.path, old.kind, old.name, old.path))
            }),
            (_, SpotKind::Home) => path_within(old.path, self.path).then(|| {
                ("mountPath", format!("'{}' would hide the home volume mounted at '{}'", self.path, old.path))
            }),
            _ => paths_overlap(self.path, old.path).then(|| {
                (
                    "mountPath",
                    format!(
                        "'{}' collides with {} '{}' mounted at '{}' (in {}) in namespaces both can reach; share and library mount paths must not be equal or nested",
                        self.path, old.kind, old.name, old.path, old.unit
                    ),
                )
            }),
        }
    }
}

/// Items of the unit being compiled; committed only if the whole unit is valid.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) shares: ShareIndex,
    pub(super) share_docs: Vec<usize>,
    pub(super) others: Vec<Item>,
}

impl Pending {
    /// The unit's libraries so far.
    fn libraries(&self) -> impl Iterator<Item = &Library> + Clone {
        self.others.iter().filter_map(|i| match i {
            Item::Library(l) => Some(l),
            _ => None,
        })
    }

    /// The unit's Home templates so far.
    fn homes(&self) -> impl Iterator<Item = &Home> + Clone {
        self.others.iter().filter_map(|i| match i {
            Item::Home(h) => Some(h),
            _ => None,
        })
    }

    pub(super) fn push(&mut self, item: Item, doc_index: usize) {
        match item {
            Item::Share(s) => {
                self.shares.insert(s);
                self.share_docs.push(doc_index);
            }
            other => self.others.push(other),
        }
    }
}

/// A claim is a share's, a library's or a user's home, never two of these where scopes may
/// overlap: a library on a share's claim would mount the share's data in every notebook, and a
/// Home template that produces a share's claim would make it someone's home, read-write.
fn claim_clashes<'a>(
    committed: &'a ShareIndex,
    unit: &'a Pending,
    item: &Item,
    libraries: impl Iterator<Item = &'a Library>,
    homes: impl Iterator<Item = &'a Home>,
) -> Vec<(&'static str, String)> {
    let shares_with_claim = |claim: &str, scope: &Scope| -> Vec<&'a Share> {
        committed
            .with_claim(claim)
            .chain(unit.shares.with_claim(claim))
            .filter(|s| s.scope.may_overlap(scope))
            .collect()
    };
    let shares_reaching = |scope: &Scope| -> Vec<&'a Share> {
        committed
            .reaching(scope)
            .into_iter()
            .chain(unit.shares.reaching(scope))
            .filter(|s| s.scope.may_overlap(scope))
            .collect()
    };
    // The Home templates reaching `scope` that produce `claim`, which `other` uses.
    let homes_of = |claim: &str, scope: &Scope, other: &str| -> Vec<(&'static str, String)> {
        homes
            .filter(|h| h.scope.may_overlap(scope))
            .filter_map(|h| {
                let template = &h.claim_name_template;
                let (user, _) = home_user(template, claim)?;
                Some(("claimName", format!(
                    "claim '{claim}' is the home claim of user slug '{user}' under Home template '{template}' (in {}), and {other}; a claim must not be both",
                    h.origin.unit
                )))
            })
            .collect()
    };
    let mut out = Vec::new();
    match item {
        Item::Share(s) => {
            let libraries =
                libraries.filter(|l| l.claim_name == s.claim_name && l.scope.may_overlap(&s.scope));
            let why = "a share may not use its claim";
            out = clashes_of(s, libraries, why, homes_of);
        }
        Item::Library(l) => {
            let shares = shares_with_claim(&l.claim_name, &l.scope).into_iter();
            out = clashes_of(l, shares, "it would expose the share's data", homes_of);
        }
        Item::Home(h) => {
            let template = &h.claim_name_template;
            let shares = shares_reaching(&h.scope)
                .into_iter()
                .map(|s| ("share", &s.claim_name, &s.name, &s.origin.unit));
            let libraries = libraries
                .filter(|l| l.scope.may_overlap(&h.scope))
                .map(|l| ("library", &l.claim_name, &l.name, &l.origin.unit));
            for (kind, claim, name, unit) in shares.chain(libraries) {
                if let Some((user, _)) = home_user(template, claim) {
                    out.push(("claimNameTemplate", format!(
                        "'{template}' produces '{claim}', the claim of {kind} '{name}' (in {unit}), as the home of user slug '{user}'; choose fixed text no share or library claim matches"
                    )));
                }
            }
        }
        _ => {}
    }
    out
}

/// The claim of `held` (a share or a library) is also the claim of each of `others` (the other
/// kind; a library is on one side of every such clash), or some user's home under a template
/// (`homes_of(claim, scope, who uses it)`).
fn clashes_of<'a, H: ClaimHolder, O: ClaimHolder + 'a>(
    held: &H,
    others: impl Iterator<Item = &'a O>,
    why: &str,
    homes_of: impl FnOnce(&str, &Scope, &str) -> Vec<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    let claim = held.claim_name();
    let mut out: Vec<_> = others
        .map(|o| {
            ("claimName", format!(
                "claim '{claim}' is the claim of {} '{}' (in {}); a library is mounted in every notebook, so {why}",
                O::KIND,
                o.name(),
                o.origin().unit
            ))
        })
        .collect();
    let user = format!("{} '{}' uses it", H::KIND, held.name());
    out.extend(homes_of(claim, held.scope(), &user));
    out
}

/// What the units accepted so far hold.
#[derive(Clone, Copy)]
pub(super) struct Accepted<'a> {
    pub(super) shares: &'a ShareIndex,
    pub(super) libraries: &'a [Library],
    pub(super) homes: &'a [Home],
    pub(super) has_settings: bool,
}

/// Checks one new item against the accepted units and the earlier items of its own unit:
/// duplicate names, shared claims and colliding mount paths.
pub(super) fn cross_check(
    accepted: Accepted<'_>,
    unit: &Pending,
    item: &Item,
    doc: &ParsedDoc,
    findings: &mut Vec<Finding>,
) {
    let committed = accepted.shares;
    let libraries = accepted.libraries.iter().chain(unit.libraries());
    let homes = accepted.homes.iter().chain(unit.homes());
    let mut err = |field: &str, message: String| findings.push(doc.error(field, message));
    match item {
        Item::Share(s) => {
            if let Some(other) = committed
                .named(&s.name)
                .or_else(|| unit.shares.named(&s.name))
            {
                err(
                    "name",
                    format!(
                        "share '{}' is already defined in {}",
                        s.name, other.origin.unit
                    ),
                );
            }
            let sub = s.sub_path.as_deref();
            let reaching = committed
                .with_claim_overlapping(&s.claim_name, sub)
                .into_iter()
                .chain(unit.shares.with_claim_overlapping(&s.claim_name, sub));
            for other in reaching.filter(|o| o.name != s.name && o.scope.may_overlap(&s.scope)) {
                let same_claim_overlaps = other.claim_name == s.claim_name
                    && match (&s.sub_path, &other.sub_path) {
                        (Some(a), Some(b)) => paths_overlap(a, b),
                        _ => true,
                    };
                if same_claim_overlaps && !paths_overlap(&s.mount_path, &other.mount_path) {
                    err(
                        "subPath",
                        format!(
                            "share '{}' (in {}) also uses claim '{}'; shares of one claim need distinct, non-nested subPaths, or one would expose the other's data",
                            other.name, other.origin.unit, s.claim_name
                        ),
                    );
                }
            }
            // One claim per namespace: shares on it (distinct subPaths) provision it alike.
            let same_claim = committed
                .with_claim(&s.claim_name)
                .chain(unit.shares.with_claim(&s.claim_name));
            if let Some(other) = same_claim
                .filter(|o| o.name != s.name && o.scope.may_overlap(&s.scope))
                .find(|o| o.storage != s.storage)
            {
                err(
                    "storage",
                    format!(
                        "share '{}' (in {}) also uses claim '{}' with a different `storage`; shares of one claim must carry the same storage, or none of them",
                        other.name, other.origin.unit, s.claim_name
                    ),
                );
            }
        }
        Item::Library(l) => {
            if let Some(other) = libraries.clone().find(|o| o.name == l.name) {
                err(
                    "name",
                    format!(
                        "library '{}' is already defined in {}",
                        l.name, other.origin.unit
                    ),
                );
            }
        }
        _ => {}
    }
    for (field, message) in claim_clashes(committed, unit, item, libraries.clone(), homes.clone()) {
        err(field, message);
    }
    if let Item::Settings(_) = item {
        let earlier = unit.others.iter().any(|i| matches!(i, Item::Settings(_)));
        if accepted.has_settings || earlier {
            err(
                "kind",
                "a second Settings document; the whole policy set may have at most one".into(),
            );
        }
    }
    let Some(new) = Spot::of(item) else {
        return;
    };
    // Shares come from the index: only those mounted at, above or below the new path.
    let shares: Vec<&Share> = committed
        .overlapping(new.path)
        .into_iter()
        .chain(unit.shares.overlapping(new.path))
        .collect();
    let existing = shares
        .into_iter()
        .map(Spot::share)
        .chain(libraries.map(Spot::library))
        .chain(homes.map(Spot::home))
        // A duplicate name is reported once, above.
        .filter(|old| {
            !(old.kind == new.kind && old.name == new.name && new.kind != SpotKind::Home)
        });
    for old in existing {
        if let Some((field, message)) = new.clash(&old) {
            err(field, message);
        }
    }
}
