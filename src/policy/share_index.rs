//! Shares indexed by name and by the namespaces they reach, so validating a set of N shares costs
//! about N × (shares per namespace) instead of N².

use std::collections::HashMap;

use super::model::{Scope, Share};

#[derive(Debug, Default)]
pub struct ShareIndex {
    shares: Vec<Share>,
    by_name: HashMap<String, usize>,
    by_namespace: HashMap<String, Vec<usize>>,
    /// Shares without a namespace list (everywhere, or by selector): they may reach any namespace.
    wide: Vec<usize>,
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
        self.shares.push(share);
    }

    pub fn named(&self, name: &str) -> Option<&Share> {
        self.by_name.get(name).map(|&i| &self.shares[i])
    }

    pub fn all(&self) -> &[Share] {
        &self.shares
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

    pub fn into_shares(self) -> Vec<Share> {
        self.shares
    }
}
