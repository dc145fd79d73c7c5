//! What a policy unit protects: the claims of its shares and libraries and the home claims its
//! Home templates reserve. When a unit is rejected, these stay protected (every pod that references
//! one is denied) until it is fixed, so a broken policy never opens access.

use std::collections::BTreeSet;

use super::home_template::{USER_PLACEHOLDER, home_user};

/// The claim names and Home templates a unit protects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protection {
    /// `claimName` of its shares and libraries.
    pub claims: BTreeSet<String>,
    /// `claimNameTemplate` of its Home documents.
    pub home_templates: BTreeSet<String>,
}

/// Longest value the scan keeps: a claim name is at most 253 characters.
const MAX_VALUE: usize = 253;

impl Protection {
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.home_templates.is_empty()
    }

    pub fn merge(&mut self, other: &Protection) {
        self.claims.extend(other.claims.iter().cloned());
        self.home_templates
            .extend(other.home_templates.iter().cloned());
    }

    /// The first Home template that can produce `claim`.
    pub fn home_template_for(&self, claim: &str) -> Option<&str> {
        self.home_templates
            .iter()
            .find(|t| home_user(t, claim).is_some())
            .map(String::as_str)
    }

    /// Finds `claimName:` and `claimNameTemplate:` values in text that may not be valid YAML or
    /// valid policy (a syntax error, `kind: share`): block or flow style, quoted or not, keys in
    /// any letter case. One pass over the text; every value is capped at 253 characters.
    /// Templates without fixed text around `{user}` are ignored: they can never be accepted and
    /// would reserve every claim.
    pub fn scan(text: &str) -> Protection {
        const KEY: &[u8] = b"claimname";
        const TEMPLATE: &[u8] = b"template";
        let bytes = text.as_bytes();
        let mut found = Protection::default();
        let mut i = 0;
        while i + KEY.len() <= bytes.len() {
            let boundary = i == 0
                || matches!(
                    bytes[i - 1],
                    b' ' | b'\t' | b'\n' | b'\r' | b'{' | b',' | b'"' | b'\'' | b'-' | b'?'
                );
            if !boundary || !bytes[i..i + KEY.len()].eq_ignore_ascii_case(KEY) {
                i += 1;
                continue;
            }
            let mut at = i + KEY.len();
            let template = bytes
                .get(at..at + TEMPLATE.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(TEMPLATE));
            if template {
                at += TEMPLATE.len();
            }
            i = at;
            if let Some(value) = value_after_key(bytes, at, template) {
                if template {
                    let fixed = value != USER_PLACEHOLDER;
                    if fixed && value.matches(USER_PLACEHOLDER).count() == 1 {
                        found.home_templates.insert(value);
                    }
                } else {
                    found.claims.insert(value);
                }
            }
        }
        found
    }
}

/// The value of a key whose name ends at `at`: `"key": value`, `key:\n  value`, quoted or plain.
fn value_after_key(bytes: &[u8], mut at: usize, template: bool) -> Option<String> {
    if matches!(bytes.get(at), Some(b'"' | b'\'')) {
        at += 1;
    }
    while matches!(bytes.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    if bytes.get(at) != Some(&b':') {
        return None;
    }
    at += 1;
    // The value may be on a later line; comments between are skipped.
    loop {
        match bytes.get(at)? {
            b' ' | b'\t' | b'\n' | b'\r' => at += 1,
            b'#' => {
                while bytes.get(at).is_some_and(|&c| c != b'\n') {
                    at += 1;
                }
            }
            _ => break,
        }
    }
    let end = (at + MAX_VALUE + 2).min(bytes.len());
    let window = &bytes[at..end];
    let raw: &[u8] = match window.first()? {
        q @ (b'"' | b'\'') => {
            let close = window[1..].iter().position(|c| c == q)?;
            &window[1..1 + close]
        }
        _ => {
            let stop = window
                .iter()
                .position(|&c| {
                    matches!(c, b'\n' | b'\r' | b' ' | b'\t' | b',' | b']')
                        || (!template && matches!(c, b'{' | b'}'))
                })
                .unwrap_or(window.len());
            let mut plain = &window[..stop];
            if template {
                // `{user}` is part of the value; a `}` after it closes a flow mapping.
                let text = std::str::from_utf8(plain).ok()?;
                if let Some(pos) = text.find(USER_PLACEHOLDER) {
                    let after = pos + USER_PLACEHOLDER.len();
                    let rest = text[after..]
                        .find(['{', '}'])
                        .map_or(text.len(), |p| after + p);
                    plain = &plain[..rest];
                }
            }
            plain
        }
    };
    let value = std::str::from_utf8(raw).ok()?.trim();
    (!value.is_empty() && value.len() <= MAX_VALUE).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(text: &str) -> Vec<String> {
        Protection::scan(text).claims.into_iter().collect()
    }

    #[test]
    fn scan_finds_claims_in_block_and_flow_style_quoted_or_not() {
        let text = "kind: share\nname: finance\nclaimName: finance-data\n---\n{kind: Share, claimName: 'mergers-data', name: m}\n---\n- {\"claimName\": \"a\"}\n- claimname:\n    b.c\n";
        assert_eq!(claims(text), ["a", "b.c", "finance-data", "mergers-data"]);
    }

    #[test]
    fn scan_reads_broken_yaml() {
        let text = "kind: Share\nname: finance\nclaimName: finance-data # the team's data\nreaders: {groups: [analysts]\n  oops: : :\n";
        assert_eq!(claims(text), ["finance-data"]);
    }

    #[test]
    fn scan_finds_home_templates_and_ignores_user_alone() {
        let p = Protection::scan(
            "kind: Home\nclaimNameTemplate: home-{user}\n---\n{kind: Home, claimNameTemplate: \"{user}-pvc\"}\n---\nclaimNameTemplate: '{user}'\n---\n{claimNameTemplate: nb-{user}}\n",
        );
        let templates: Vec<&str> = p.home_templates.iter().map(String::as_str).collect();
        assert_eq!(templates, ["home-{user}", "nb-{user}", "{user}-pvc"]);
        assert!(p.claims.is_empty());
        assert_eq!(p.home_template_for("home-alice"), Some("home-{user}"));
        assert_eq!(p.home_template_for("scratch"), None);
    }

    #[test]
    fn scan_ignores_other_keys_and_overlong_values() {
        let long = "a".repeat(300);
        let text = format!("myclaimName: x\nclaimNames: y\nclaimName: {long}\nclaimName:\n");
        assert!(Protection::scan(&text).is_empty());
    }
}
