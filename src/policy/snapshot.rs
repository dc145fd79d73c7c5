//! The compiled policy set: every unit (file or ConfigMap) validated on its own and against the
//! units accepted before it (`cross_check`), then indexed so a decision touches only what is in
//! the pod's scope (`queries`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::check::{Item, check_document};
use super::cross_check::{Accepted, Pending, cross_check};
use super::model::{Home, Library, OpenShiftGroupsMode, Settings};
use super::openshift_groups::OpenShiftGroups;
use super::origin::{Finding, Severity};
use super::parse::{ParsedDoc, Source, parse_source};
use super::protection::Protection;
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
    /// The accepted shares, indexed by namespace, claim and mount path.
    pub(super) shares: ShareIndex,
    pub(super) homes: Vec<Home>,
    pub(super) libraries: Vec<Library>,
    pub(super) settings: Settings,
    pub(super) has_settings: bool,
    pub(super) members: BTreeMap<String, BTreeSet<String>>,
    pub(super) user_groups: HashMap<String, BTreeSet<String>>,
    /// Group → the units whose `Groups` documents define it.
    pub(super) group_units: BTreeMap<String, BTreeSet<String>>,
    /// Members of OpenShift `Group` objects; they count only when `Settings.openshiftGroups`
    /// is `auto`.
    pub(super) openshift: Arc<OpenShiftGroups>,
    /// Unit name → what it protects, for every rejected unit.
    pub(super) rejected: BTreeMap<String, Protection>,
    /// Claim → the rejected unit that protects it.
    pub(super) protected_claims: BTreeMap<String, String>,
    pub(super) reports: Vec<UnitReport>,
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
                    let accepted = Accepted {
                        shares: &committed,
                        libraries: &snap.libraries,
                        homes: &snap.homes,
                        has_settings: snap.has_settings,
                    };
                    cross_check(accepted, &pending, &item, doc, &mut findings);
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
                    snap.add(item, &unit.name);
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
        snap.shares = committed;
        snap.warn_undefined_groups(&parsed_units, &share_docs);
        snap.protect_rejected(&rejected, last_accepted);
        snap.index();
        snap
    }

    /// The same policy with these OpenShift Group members.
    pub fn with_openshift_groups(mut self, groups: Arc<OpenShiftGroups>) -> PolicySnapshot {
        self.openshift = groups;
        self
    }

    fn add(&mut self, item: Item, unit: &str) {
        match item {
            Item::Share(s) => self.shares.insert(s),
            Item::Home(h) => self.homes.push(h),
            Item::Library(l) => self.libraries.push(l),
            Item::Groups(groups) => {
                for (group, users) in groups {
                    self.group_units
                        .entry(group.clone())
                        .or_default()
                        .insert(unit.to_string());
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
        for (share, (unit, doc)) in self.shares.shares().iter().zip(share_docs) {
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
            let openshift = self.settings.openshift_groups == OpenShiftGroupsMode::Auto;
            for (field, group) in named {
                let message = if openshift {
                    format!(
                        "group '{group}' is defined in no Groups document; only members of an OpenShift Group of that name, and users whose identity provider or hub reports it, will match"
                    )
                } else {
                    format!(
                        "group '{group}' is defined in no Groups document; only users whose identity provider reports it will match"
                    )
                };
                let finding = doc.finding(Severity::Warning, field, message);
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
            .shares()
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

    /// Users to their groups, for identity (the shares are indexed as they are committed).
    fn index(&mut self) {
        for (group, users) in &self.members {
            for user in users {
                self.user_groups
                    .entry(user.clone())
                    .or_default()
                    .insert(group.clone());
            }
        }
    }
}
