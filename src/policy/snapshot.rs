//! The compiled policy set: every unit (file or ConfigMap) validated on its own and against the
//! units accepted before it, then indexed so a decision touches only what is in the pod's scope.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::check::{Item, check_document};
use super::home_template::user_part;
use super::model::{Home, Library, NamespaceInfo, Scope, Settings, Share};
use super::origin::{Finding, Severity};
use super::parse::{ParsedDoc, Source, parse_source};
use super::protection::Protection;
use super::rules::{path_within, paths_overlap};
use super::share_index::ShareIndex;

/// What is accepted or rejected as a whole: a ConfigMap, or a file of documents.
#[derive(Debug, Clone)]
pub struct Unit {
    pub name: String,
    pub sources: Vec<Source>,
}

/// The verdict on one unit.
#[derive(Debug, Clone)]
pub struct UnitReport {
    pub unit: String,
    pub accepted: bool,
    pub findings: Vec<Finding>,
}

/// An immutable, indexed policy set. Cheap to share between admissions (wrap it in an `Arc`).
#[derive(Debug, Default)]
pub struct PolicySnapshot {
    shares: Vec<Share>,
    homes: Vec<Home>,
    libraries: Vec<Library>,
    settings: Settings,
    has_settings: bool,
    members: BTreeMap<String, BTreeSet<String>>,
    user_groups: HashMap<String, BTreeSet<String>>,
    by_namespace: HashMap<String, Vec<usize>>,
    everywhere: Vec<usize>,
    by_selector: Vec<usize>,
    share_claims: HashMap<String, Vec<usize>>,
    /// Unit name → what it protects, for every rejected unit.
    rejected: BTreeMap<String, Protection>,
    /// Claim → the rejected unit that protects it.
    protected_claims: BTreeMap<String, String>,
    reports: Vec<UnitReport>,
}

/// Where a share, library or home is mounted, for the path rules of §3: shares and libraries
/// may not be equal or nested (a share may sit inside the home), nothing may hide the home, and
/// two homes may not reach one namespace.
struct Spot<'a> {
    kind: &'static str,
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
        Spot {
            kind: "share",
            name: &s.name,
            scope: &s.scope,
            path: &s.mount_path,
            unit: &s.origin.unit,
        }
    }

    fn library(l: &'a Library) -> Spot<'a> {
        Spot {
            kind: "library",
            name: &l.name,
            scope: &l.scope,
            path: &l.mount_path,
            unit: &l.origin.unit,
        }
    }

    fn home(h: &'a Home) -> Spot<'a> {
        Spot {
            kind: "home",
            name: "",
            scope: &h.scope,
            path: &h.mount_path,
            unit: &h.origin.unit,
        }
    }

    /// The field and message of a conflict between this new mount and an existing one.
    fn clash(&self, old: &Spot<'_>) -> Option<(&'static str, String)> {
        if !self.scope.may_overlap(old.scope) {
            return None;
        }
        match (self.kind, old.kind) {
            ("home", "home") => Some((
                "namespaces",
                format!(
                    "another Home document (in {}) reaches the same namespaces; give each Home distinct `namespaces` or `namespaceSelector`",
                    old.unit
                ),
            )),
            ("home", _) => path_within(self.path, old.path).then(|| {
                ("mountPath", format!("'{}' sits inside {} '{}' at '{}'", self.path, old.kind, old.name, old.path))
            }),
            (_, "home") => path_within(old.path, self.path).then(|| {
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
struct Pending {
    shares: ShareIndex,
    share_docs: Vec<usize>,
    others: Vec<Item>,
}

impl Pending {
    fn push(&mut self, item: Item, doc_index: usize) {
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
    let home_of = |template: &str, claim: &str, other: &str, unit: &str| {
        user_part(template, claim).map(|user| {
            format!(
                "claim '{claim}' is the home claim of user slug '{user}' under Home template '{template}' (in {unit}), and {other}; a claim must not be both"
            )
        })
    };
    let mut out = Vec::new();
    match item {
        Item::Share(s) => {
            for l in
                libraries.filter(|l| l.claim_name == s.claim_name && l.scope.may_overlap(&s.scope))
            {
                out.push(("claimName", format!(
                    "claim '{}' is the claim of library '{}' (in {}); a library is mounted in every notebook, so a share may not use its claim",
                    s.claim_name, l.name, l.origin.unit
                )));
            }
            for h in homes.filter(|h| h.scope.may_overlap(&s.scope)) {
                if let Some(m) = home_of(
                    &h.claim_name_template,
                    &s.claim_name,
                    &format!("share '{}' uses it", s.name),
                    &h.origin.unit,
                ) {
                    out.push(("claimName", m));
                }
            }
        }
        Item::Library(l) => {
            for s in shares_with_claim(&l.claim_name, &l.scope) {
                out.push(("claimName", format!(
                    "claim '{}' is the claim of share '{}' (in {}); a library is mounted in every notebook, so it would expose the share's data",
                    l.claim_name, s.name, s.origin.unit
                )));
            }
            for h in homes.filter(|h| h.scope.may_overlap(&l.scope)) {
                if let Some(m) = home_of(
                    &h.claim_name_template,
                    &l.claim_name,
                    &format!("library '{}' uses it", l.name),
                    &h.origin.unit,
                ) {
                    out.push(("claimName", m));
                }
            }
        }
        Item::Home(h) => {
            let template = &h.claim_name_template;
            for s in shares_reaching(&h.scope) {
                if let Some(user) = user_part(template, &s.claim_name) {
                    out.push(("claimNameTemplate", format!(
                        "'{template}' produces '{}', the claim of share '{}' (in {}), as the home of user slug '{user}'; choose fixed text no share or library claim matches",
                        s.claim_name, s.name, s.origin.unit
                    )));
                }
            }
            for l in libraries.filter(|l| l.scope.may_overlap(&h.scope)) {
                if let Some(user) = user_part(template, &l.claim_name) {
                    out.push(("claimNameTemplate", format!(
                        "'{template}' produces '{}', the claim of library '{}' (in {}), as the home of user slug '{user}'; choose fixed text no share or library claim matches",
                        l.claim_name, l.name, l.origin.unit
                    )));
                }
            }
        }
        _ => {}
    }
    out
}

impl PolicySnapshot {
    /// Compiles units in the given order (first come, first served: a later unit that conflicts
    /// with an earlier one is the one rejected). Never fails: rejected units are reported, and
    /// what they name stays protected (see `compile_with`).
    pub fn compile(units: &[Unit]) -> PolicySnapshot {
        Self::compile_with(units, &BTreeMap::new())
    }

    /// Like `compile`, knowing what the last accepted version of each unit protected (the server
    /// keeps it per ConfigMap). A rejected unit protects the claims and Home templates of its
    /// last accepted version and those a tolerant scan finds in its rejected text.
    pub fn compile_with(
        units: &[Unit],
        last_accepted: &BTreeMap<String, Protection>,
    ) -> PolicySnapshot {
        let mut snap = PolicySnapshot::default();
        let mut parsed_units: Vec<Vec<ParsedDoc>> = Vec::with_capacity(units.len());
        let mut share_docs: Vec<(usize, usize)> = Vec::new();
        let mut rejected: Vec<&Unit> = Vec::new();
        let mut committed = ShareIndex::default();
        for unit in units {
            let mut docs = Vec::new();
            let mut findings = Vec::new();
            for source in &unit.sources {
                let (d, f) = parse_source(source);
                docs.extend(d);
                findings.extend(f);
            }
            parsed_units.push(docs);
            let docs = parsed_units.last().map(Vec::as_slice).unwrap_or_default();
            let mut pending = Pending::default();
            for (doc_index, doc) in docs.iter().enumerate() {
                let (item, f) = check_document(doc);
                findings.extend(f);
                if let Some(item) = item {
                    snap.cross_check(&committed, &pending, &item, doc, &mut findings);
                    pending.push(item, doc_index);
                }
            }
            let ok = !findings.iter().any(|f| f.severity == Severity::Error);
            if ok {
                let unit_index = parsed_units.len() - 1;
                for (share, doc_index) in pending
                    .shares
                    .into_shares()
                    .into_iter()
                    .zip(pending.share_docs)
                {
                    share_docs.push((unit_index, doc_index));
                    committed.insert(share);
                }
                for item in pending.others {
                    snap.add(item);
                }
            } else {
                rejected.push(unit);
            }
            snap.reports.push(UnitReport {
                unit: unit.name.clone(),
                accepted: ok,
                findings,
            });
        }
        snap.shares = committed.into_shares();
        snap.warn_undefined_groups(&parsed_units, &share_docs);
        snap.protect_rejected(&rejected, last_accepted);
        snap.index();
        snap
    }

    fn cross_check(
        &self,
        committed: &ShareIndex,
        unit: &Pending,
        item: &Item,
        doc: &ParsedDoc,
        findings: &mut Vec<Finding>,
    ) {
        let libraries = self
            .libraries
            .iter()
            .chain(unit.others.iter().filter_map(|i| match i {
                Item::Library(l) => Some(l),
                _ => None,
            }));
        let homes = self
            .homes
            .iter()
            .chain(unit.others.iter().filter_map(|i| match i {
                Item::Home(h) => Some(h),
                _ => None,
            }));
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
                for other in reaching.filter(|o| o.name != s.name && o.scope.may_overlap(&s.scope))
                {
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
        for (field, message) in
            claim_clashes(committed, unit, item, libraries.clone(), homes.clone())
        {
            err(field, message);
        }
        if let Item::Settings(_) = item {
            let earlier = unit.others.iter().any(|i| matches!(i, Item::Settings(_)));
            if self.has_settings || earlier {
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
            .filter(|old| !(old.kind == new.kind && old.name == new.name && new.kind != "home"));
        for old in existing {
            if let Some((field, message)) = new.clash(&old) {
                err(field, message);
            }
        }
    }

    fn add(&mut self, item: Item) {
        match item {
            Item::Share(s) => self.shares.push(s),
            Item::Home(h) => self.homes.push(h),
            Item::Library(l) => self.libraries.push(l),
            Item::Groups(groups) => {
                for (group, users) in groups {
                    self.members.entry(group).or_default().extend(users);
                }
            }
            Item::Settings(s) => {
                self.settings = s;
                self.has_settings = true;
            }
        }
    }

    /// A group that no `Groups` document defines may still come from the identity provider
    /// (`userInfo.groups`), so it is only a warning.
    fn warn_undefined_groups(&mut self, parsed: &[Vec<ParsedDoc>], share_docs: &[(usize, usize)]) {
        for (share, (unit, doc)) in self.shares.iter().zip(share_docs) {
            let doc = &parsed[*unit][*doc];
            let mut named: Vec<(&str, &String)> = share
                .readers
                .groups
                .iter()
                .map(|g| ("readers.groups", g))
                .chain(share.writers.groups.iter().map(|g| ("writers.groups", g)))
                .filter(|(_, g)| !self.members.contains_key(*g))
                .collect();
            named.sort();
            for (field, group) in named {
                let finding = doc.finding(
                    Severity::Warning,
                    field,
                    format!("group '{group}' is defined in no Groups document; only users whose identity provider reports it will match"),
                );
                if let Some(report) = self
                    .reports
                    .iter_mut()
                    .find(|r| r.unit == share.origin.unit)
                {
                    report.findings.push(finding);
                }
            }
        }
    }

    /// The documents of a rejected unit are absent, but what it names stays protected: the guard
    /// denies pods that reference those claims, so a broken policy never opens access.
    fn protect_rejected(
        &mut self,
        rejected: &[&Unit],
        last_accepted: &BTreeMap<String, Protection>,
    ) {
        for unit in rejected {
            let mut protection = last_accepted.get(&unit.name).cloned().unwrap_or_default();
            for source in &unit.sources {
                protection.merge(&Protection::scan(&source.text));
            }
            for claim in &protection.claims {
                self.protected_claims
                    .entry(claim.clone())
                    .or_insert_with(|| unit.name.clone());
            }
            self.rejected.insert(unit.name.clone(), protection);
        }
    }

    /// What each accepted unit protects: the claims of its shares and libraries and its Home
    /// templates. The server keeps this to protect a unit whose next version is rejected.
    pub fn accepted_protection(&self) -> BTreeMap<String, Protection> {
        let mut out: BTreeMap<String, Protection> = self
            .reports
            .iter()
            .filter(|r| r.accepted)
            .map(|r| (r.unit.clone(), Protection::default()))
            .collect();
        let claims = self
            .shares
            .iter()
            .map(|s| (&s.origin.unit, &s.claim_name))
            .chain(
                self.libraries
                    .iter()
                    .map(|l| (&l.origin.unit, &l.claim_name)),
            );
        for (unit, claim) in claims {
            if let Some(p) = out.get_mut(unit) {
                p.claims.insert(claim.clone());
            }
        }
        for home in &self.homes {
            if let Some(p) = out.get_mut(&home.origin.unit) {
                p.home_templates.insert(home.claim_name_template.clone());
            }
        }
        out
    }

    fn index(&mut self) {
        for (i, share) in self.shares.iter().enumerate() {
            match &share.scope {
                Scope::Everywhere => self.everywhere.push(i),
                Scope::Namespaces(names) => {
                    for n in names {
                        self.by_namespace.entry(n.clone()).or_default().push(i);
                    }
                }
                Scope::Selector(_) => self.by_selector.push(i),
            }
            self.share_claims
                .entry(share.claim_name.clone())
                .or_default()
                .push(i);
        }
        for (group, users) in &self.members {
            for user in users {
                self.user_groups
                    .entry(user.clone())
                    .or_default()
                    .insert(group.clone());
            }
        }
    }

    /// Shares whose scope includes the namespace, in policy order. Touches only the shares
    /// indexed under that namespace, the unscoped ones and those with a selector.
    pub fn shares_in_scope(&self, ns: &NamespaceInfo) -> Vec<&Share> {
        let named = self
            .by_namespace
            .get(&ns.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut ids: Vec<usize> = named
            .iter()
            .chain(&self.everywhere)
            .copied()
            .chain(
                self.by_selector
                    .iter()
                    .copied()
                    .filter(|&i| self.shares[i].scope.includes(ns)),
            )
            .collect();
        ids.sort_unstable();
        ids.into_iter().map(|i| &self.shares[i]).collect()
    }

    /// Shares in scope of the namespace that use this claim.
    pub fn shares_for_claim(&self, ns: &NamespaceInfo, claim: &str) -> Vec<&Share> {
        self.share_claims
            .get(claim)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|&i| &self.shares[i])
            .filter(|s| s.scope.includes(ns))
            .collect()
    }

    pub fn libraries_in_scope(&self, ns: &NamespaceInfo) -> Vec<&Library> {
        self.libraries
            .iter()
            .filter(|l| l.scope.includes(ns))
            .collect()
    }

    pub fn home_for(&self, ns: &NamespaceInfo) -> Option<&Home> {
        self.homes.iter().find(|h| h.scope.includes(ns))
    }

    /// Groups the `Groups` documents give this user.
    pub fn groups_of(&self, user: &str) -> Option<&BTreeSet<String>> {
        self.user_groups.get(user)
    }

    /// Group name → members, from the `Groups` documents.
    pub fn group_members(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.members
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn shares(&self) -> &[Share] {
        &self.shares
    }

    pub fn libraries(&self) -> &[Library] {
        &self.libraries
    }

    /// The rejected unit that protects this claim as a share's or a library's, if any.
    pub fn protected_claim(&self, claim: &str) -> Option<&str> {
        self.protected_claims.get(claim).map(String::as_str)
    }

    /// The rejected unit with a Home template that can produce this claim name, if any.
    pub fn protected_home(&self, claim: &str) -> Option<&str> {
        self.rejected
            .iter()
            .find(|(_, p)| p.home_template_for(claim).is_some())
            .map(|(unit, _)| unit.as_str())
    }

    /// What each rejected unit protects until it is fixed.
    pub fn rejected_protection(&self) -> &BTreeMap<String, Protection> {
        &self.rejected
    }

    pub fn reports(&self) -> &[UnitReport] {
        &self.reports
    }

    /// Every finding of every unit, errors and warnings.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.reports.iter().flat_map(|r| r.findings.iter())
    }

    pub fn rejected_units(&self) -> impl Iterator<Item = &UnitReport> {
        self.reports.iter().filter(|r| !r.accepted)
    }
}
