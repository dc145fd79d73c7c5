//! Shares indexed by name, by the namespaces they reach, by claim and by mount path, so that
//! validating N shares compares each only with the few that can clash (same claim, equal or
//! nested mount path), not with every share of its namespaces.

use std::collections::{BTreeMap, HashMap};

use super::model::{NamespaceInfo, Scope, Share};

#[derive(Debug, Default)]
pub struct ShareIndex {
    shares: Vec<Share>,
    by_name: HashMap<String, usize>,
    by_namespace: HashMap<String, Vec<usize>>,
    /// Shares without a namespace list (everywhere, or by selector): they may reach any namespace.
    wide: Vec<usize>,
    /// Per claim, its shares by subPath (`""` for the whole claim).
    by_claim: HashMap<String, BTreeMap<String, Vec<usize>>>,
    by_path: BTreeMap<String, Vec<usize>>,
}

/// Entries of `map` at `path`, at a parent of it, or below it: the paths that overlap it. Costs
/// the path's depth plus the entries found. `""` (a whole claim) overlaps everything.
fn overlapping_in(map: &BTreeMap<String, Vec<usize>>, path: &str, out: &mut Vec<usize>) {
    if path.is_empty() {
        out.extend(map.values().flatten());
        return;
    }
    let parents = path
        .char_indices()
        .filter(|&(i, c)| c == '/' && i > 0)
        .map(|(i, _)| &path[..i])
        .chain(["", "/", path]);
    for p in parents {
        out.extend(map.get(p).into_iter().flatten());
    }
    let below = format!("{}/", path.trim_end_matches('/'));
    for (key, found) in map.range(below.clone()..) {
        if !key.starts_with(&below) {
            break;
        }
        out.extend(found);
    }
}

impl ShareIndex {
    pub fn insert(&mut self, share: Share) {
        let i = self.shares.len();
        self.by_name.insert(share.name.clone(), i);
        match &share.scope {
            Scope::Namespaces(names) => {
                for n in names {
                    self.by_namespace.entry(n.clone()).or_default().push(i);
                }
            }
            Scope::Everywhere | Scope::Selector(_) => self.wide.push(i),
        }
        self.by_claim
            .entry(share.claim_name.clone())
            .or_default()
            .entry(share.sub_path.clone().unwrap_or_default())
            .or_default()
            .push(i);
        self.by_path
            .entry(share.mount_path.clone())
            .or_default()
            .push(i);
        self.shares.push(share);
    }

    /// Every share, in the order inserted (policy order).
    pub fn shares(&self) -> &[Share] {
        &self.shares
    }

    /// Shares whose scope includes the namespace, in policy order. Touches only the shares
    /// listed under that namespace and the unlisted ones (everywhere or by selector).
    pub fn in_namespace(&self, ns: &NamespaceInfo) -> Vec<&Share> {
        // Both lists are in insertion order already: merged, not sorted, on every admission.
        let mut named = self
            .by_namespace
            .get(&ns.name)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .copied()
            .peekable();
        let mut wide = self
            .wide
            .iter()
            .copied()
            .filter(|&i| self.shares[i].scope.includes(ns))
            .peekable();
        let mut out = Vec::new();
        loop {
            let next = match (named.peek(), wide.peek()) {
                (Some(&n), Some(&w)) if n <= w => named.next(),
                (Some(_), Some(_)) => wide.next(),
                (Some(_), None) => named.next(),
                (None, _) => wide.next(),
            };
            match next {
                Some(i) => out.push(&self.shares[i]),
                None => return out,
            }
        }
    }

    pub fn named(&self, name: &str) -> Option<&Share> {
        self.by_name.get(name).map(|&i| &self.shares[i])
    }

    /// Shares that may reach a namespace of `scope` (a superset: callers still test the scopes).
    pub fn reaching(&self, scope: &Scope) -> Vec<&Share> {
        match scope {
            Scope::Namespaces(names) => {
                let mut ids: Vec<usize> = names
                    .iter()
                    .flat_map(|n| self.by_namespace.get(n).into_iter().flatten().copied())
                    .chain(self.wide.iter().copied())
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids.into_iter().map(|i| &self.shares[i]).collect()
            }
            Scope::Everywhere | Scope::Selector(_) => self.shares.iter().collect(),
        }
    }

    /// Shares of this claim (any scope: callers test the scopes).
    pub fn with_claim(&self, claim: &str) -> impl Iterator<Item = &Share> {
        self.by_claim
            .get(claim)
            .into_iter()
            .flat_map(|m| m.values().flatten())
            .map(|&i| &self.shares[i])
    }

    /// Shares of this claim in policy order (any scope: callers test the scopes).
    pub fn with_claim_in_order(&self, claim: &str) -> Vec<&Share> {
        let ids = self
            .by_claim
            .get(claim)
            .into_iter()
            .flat_map(|m| m.values().flatten().copied())
            .collect();
        self.resolve(ids)
    }

    /// Shares of this claim whose subPath equals, contains or sits inside `sub_path` (`None`: the
    /// whole claim, which overlaps them all).
    pub fn with_claim_overlapping(&self, claim: &str, sub_path: Option<&str>) -> Vec<&Share> {
        let mut ids = Vec::new();
        if let Some(map) = self.by_claim.get(claim) {
            overlapping_in(map, sub_path.unwrap_or_default(), &mut ids);
        }
        self.resolve(ids)
    }

    /// Shares mounted at `path`, above it or below it (any scope: callers test the scopes).
    pub fn overlapping(&self, path: &str) -> Vec<&Share> {
        let mut ids = Vec::new();
        overlapping_in(&self.by_path, path, &mut ids);
        self.resolve(ids)
    }

    fn resolve(&self, mut ids: Vec<usize>) -> Vec<&Share> {
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|i| &self.shares[i]).collect()
    }

    pub fn into_shares(self) -> Vec<Share> {
        self.shares
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Level, Origin, Principals};

    fn share(name: &str, claim: &str, path: &str, sub: Option<&str>) -> Share {
        Share {
            name: name.into(),
            scope: Scope::Everywhere,
            claim_name: claim.into(),
            mount_path: path.into(),
            sub_path: sub.map(str::to_string),
            level: Level::Public,
            readers: Principals::default(),
            writers: Principals::default(),
            storage: None,
            origin: Origin::file("t.yaml"),
        }
    }

    fn names(found: Vec<&Share>) -> Vec<&str> {
        found.into_iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn only_equal_parent_and_nested_mount_paths_are_candidates() {
        let mut index = ShareIndex::default();
        index.insert(share("a", "c1", "/data", None));
        index.insert(share("b", "c2", "/data/b", None));
        index.insert(share("c", "c3", "/database", None));
        index.insert(share("d", "c4", "/other", None));
        assert_eq!(names(index.overlapping("/data")), ["a", "b"]);
        assert_eq!(names(index.overlapping("/data/b/x")), ["a", "b"]);
        assert_eq!(names(index.overlapping("/database")), ["c"]);
        assert!(index.overlapping("/elsewhere").is_empty());
    }

    #[test]
    fn only_overlapping_sub_paths_of_one_claim_are_candidates() {
        let mut index = ShareIndex::default();
        index.insert(share("x", "c", "/x", Some("x")));
        index.insert(share("xy", "c", "/xy", Some("x/y")));
        index.insert(share("z", "c", "/z", Some("z")));
        index.insert(share("other", "d", "/o", Some("x")));
        assert_eq!(
            names(index.with_claim_overlapping("c", Some("x/y/z"))),
            ["x", "xy"]
        );
        assert_eq!(names(index.with_claim_overlapping("c", Some("z"))), ["z"]);
        assert_eq!(
            names(index.with_claim_overlapping("c", None)),
            ["x", "xy", "z"]
        );
        index.insert(share("whole", "c", "/w", None));
        assert_eq!(
            names(index.with_claim_overlapping("c", Some("q"))),
            ["whole"]
        );
    }

    proptest::proptest! {
        /// The index gives exactly the shares whose scope includes the namespace, in policy
        /// order, whatever mix of listed and namespace-wide shares the policy has.
        #[test]
        fn a_namespace_gets_its_shares_in_policy_order(
            scopes in proptest::collection::vec(proptest::option::of(proptest::sample::subsequence(vec!["a", "b", "c"], 0..=3)), 0..40)
        ) {
            let mut index = ShareIndex::default();
            for (i, scope) in scopes.iter().enumerate() {
                let mut s = share(&format!("s{i}"), &format!("c{i}"), &format!("/p{i}"), None);
                if let Some(names) = scope {
                    s.scope = Scope::Namespaces(names.iter().map(|n| n.to_string()).collect());
                }
                index.insert(s);
            }
            for ns in ["a", "b", "c", "d"] {
                let ns = NamespaceInfo { name: ns.into(), labels: BTreeMap::new() };
                let expected: Vec<&Share> =
                    index.shares().iter().filter(|s| s.scope.includes(&ns)).collect();
                proptest::prop_assert_eq!(index.in_namespace(&ns), expected);
            }
        }
    }
}
