//! Kubernetes label selectors, for `namespaceSelector` scopes and the `notebookSelector` setting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    /// True when every term holds, as in Kubernetes; an empty selector matches everything.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Problems that make the selector invalid, as Kubernetes would report them.
    pub fn problems(&self) -> Vec<String> {
        self.match_expressions
            .iter()
            .filter_map(|r| match (r.operator, r.values.is_empty()) {
                (Operator::In | Operator::NotIn, true) => Some(format!(
                    "matchExpressions key '{}': operator {:?} needs at least one value",
                    r.key, r.operator
                )),
                (Operator::Exists | Operator::DoesNotExist, false) => Some(format!(
                    "matchExpressions key '{}': operator {:?} takes no values",
                    r.key, r.operator
                )),
                _ => None,
            })
            .collect()
    }

    /// False only when no label set can satisfy both selectors (a key required with two
    /// different values); used to decide whether two scopes can reach the same namespace.
    pub fn may_overlap(&self, other: &LabelSelector) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| other.match_labels.get(k).is_none_or(|w| w == v))
    }
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_terms_follow_kubernetes_semantics() {
        let sel: LabelSelector = crate::policy::yaml::from_str(
            "matchLabels: {team: a}\nmatchExpressions:\n- {key: tier, operator: In, values: [gold]}\n- {key: legacy, operator: DoesNotExist}\n",
        )
        .unwrap();
        assert!(sel.matches(&labels(&[("team", "a"), ("tier", "gold")])));
        assert!(!sel.matches(&labels(&[("team", "b"), ("tier", "gold")])));
        assert!(!sel.matches(&labels(&[("team", "a"), ("tier", "silver")])));
        assert!(!sel.matches(&labels(&[("team", "a"), ("tier", "gold"), ("legacy", "")])));
        assert!(LabelSelector::default().matches(&labels(&[])));
    }

    #[test]
    fn selector_operators_check_their_values() {
        let sel: LabelSelector =
            crate::policy::yaml::from_str("matchExpressions: [{key: a, operator: In}]").unwrap();
        assert_eq!(sel.problems().len(), 1);
        let sel: LabelSelector = crate::policy::yaml::from_str(
            "matchExpressions: [{key: a, operator: Exists, values: [x]}]",
        )
        .unwrap();
        assert_eq!(sel.problems().len(), 1);
    }

    #[test]
    fn selectors_with_conflicting_labels_cannot_overlap() {
        let a: LabelSelector = crate::policy::yaml::from_str("matchLabels: {team: a}").unwrap();
        let b: LabelSelector = crate::policy::yaml::from_str("matchLabels: {team: b}").unwrap();
        let c: LabelSelector = crate::policy::yaml::from_str("matchLabels: {tier: gold}").unwrap();
        assert!(!a.may_overlap(&b));
        assert!(a.may_overlap(&c));
    }
}
