//! What a decision asks of the compiled policy: the shares, libraries and home in a namespace's
//! scope, a claim's shares, group membership and what rejected units protect.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::model::{Home, Library, NamespaceInfo, OpenShiftGroupsMode, Settings, Share};
use super::openshift_groups::OpenShiftGroups;
use super::origin::Finding;
use super::protection::Protection;
use super::snapshot::{PolicySnapshot, UnitReport};

impl PolicySnapshot {
    /// Shares whose scope includes the namespace, in policy order. Touches only the shares
    /// indexed under that namespace, the unscoped ones and those with a selector.
    pub fn shares_in_scope(&self, ns: &NamespaceInfo) -> Vec<&Share> {
        self.shares.in_namespace(ns)
    }

    /// Shares in scope of the namespace that use this claim.
    pub fn shares_for_claim(&self, ns: &NamespaceInfo, claim: &str) -> Vec<&Share> {
        self.shares
            .with_claim_in_order(claim)
            .into_iter()
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

    /// Every group the policy gives this user: those of the `Groups` documents and, when
    /// `Settings.openshiftGroups` is `auto`, those of the OpenShift Groups that list the user.
    pub fn groups_of(&self, user: &str) -> BTreeSet<String> {
        let mut groups = self.policy_groups_of(user).cloned().unwrap_or_default();
        groups.extend(
            self.openshift_groups_of(user)
                .into_iter()
                .flatten()
                .cloned(),
        );
        groups
    }

    /// Groups the `Groups` documents give this user.
    pub fn policy_groups_of(&self, user: &str) -> Option<&BTreeSet<String>> {
        self.user_groups.get(user)
    }

    /// The OpenShift Groups that list this user, when `Settings.openshiftGroups` is `auto`.
    pub fn openshift_groups_of(&self, user: &str) -> Option<&BTreeSet<String>> {
        match self.settings.openshift_groups {
            OpenShiftGroupsMode::Auto => self.openshift.groups_of(user),
            OpenShiftGroupsMode::Off => None,
        }
    }

    /// The OpenShift Groups the policy was compiled with (whether or not the Settings use them).
    pub fn openshift_groups(&self) -> &Arc<OpenShiftGroups> {
        &self.openshift
    }

    /// The units whose `Groups` documents define this group.
    pub fn group_units(&self, group: &str) -> Option<&BTreeSet<String>> {
        self.group_units.get(group)
    }

    /// Group name → members, from the `Groups` documents.
    pub fn group_members(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.members
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn shares(&self) -> &[Share] {
        self.shares.shares()
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
