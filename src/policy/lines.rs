//! Finds the line of a field inside a YAML document. serde does not keep positions, and a finding
//! without a line sends the reader searching; block-style policy files make a key scan reliable.

/// Key lines of one document: (indent, key, 1-based line).
#[derive(Debug, Clone, Default)]
pub struct FieldLines {
    keys: Vec<(usize, String, usize)>,
    first_line: usize,
}

impl FieldLines {
    /// `first_line` is the 1-based line of `text`'s first line in the whole source.
    pub fn scan(text: &str, first_line: usize) -> Self {
        let mut keys = Vec::new();
        let mut first_content = None;
        for (i, raw) in text.lines().enumerate() {
            let trimmed = raw.trim_start();
            let bare_marker = trimmed == "---" || trimmed.starts_with("--- #");
            if trimmed.is_empty() || trimmed.starts_with('#') || bare_marker {
                continue;
            }
            first_content.get_or_insert(first_line + i);
            let mut indent = raw.len() - trimmed.len();
            let mut rest = trimmed;
            while let Some(r) = rest.strip_prefix("- ") {
                indent += 2;
                rest = r.trim_start();
            }
            if let Some(key) = leading_key(rest) {
                keys.push((indent, key.to_string(), first_line + i));
            }
        }
        FieldLines {
            keys,
            first_line: first_content.unwrap_or(first_line),
        }
    }

    /// Line of the first non-empty line of the document.
    pub fn start(&self) -> usize {
        self.first_line
    }

    /// Line of a dotted field path such as `create.size` or `readers.users[1]` (indices are
    /// ignored); falls back to the deepest key found, then to the document start.
    pub fn line_of(&self, path: &str) -> usize {
        let names: Vec<&str> = path
            .split('.')
            .map(|segment| segment.split('[').next().unwrap_or(segment))
            .collect();
        self.line_of_keys(&names)
    }

    /// Line of a path given key by key (for keys that contain dots, like `shares.yaml`).
    pub fn line_of_keys(&self, names: &[&str]) -> usize {
        let mut line = self.first_line;
        let mut from = 0;
        let mut min_indent = 0;
        let mut first = true;
        for &name in names {
            if name.is_empty() {
                continue;
            }
            let found = self.keys[from..].iter().position(|(indent, key, _)| {
                key == name && (if first { true } else { *indent > min_indent })
            });
            match found {
                Some(pos) => {
                    let (indent, _, l) = &self.keys[from + pos];
                    line = *l;
                    min_indent = *indent;
                    from += pos + 1;
                    first = false;
                }
                None => break,
            }
        }
        line
    }
}

fn leading_key(s: &str) -> Option<&str> {
    let end = s.find(':')?;
    let key = s[..end].trim_matches(|c| c == '"' || c == '\'');
    let after = &s[end + 1..];
    let is_key = !key.is_empty()
        && !key.contains(' ')
        && (after.is_empty() || after.starts_with(' ') || after.starts_with('\t'));
    is_key.then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fields_resolve_to_their_own_line() {
        let text = "kind: Home\nmountPath: /home\ncreate:\n  size: 2Gi\n  accessModes:\n  - ReadWriteOnce\n";
        let lines = FieldLines::scan(text, 10);
        assert_eq!(lines.line_of("mountPath"), 11);
        assert_eq!(lines.line_of("create.size"), 13);
        assert_eq!(lines.line_of("create.accessModes[0]"), 14);
        assert_eq!(lines.line_of("nothing"), 10);
    }

    #[test]
    fn list_items_and_quoted_keys_are_found() {
        let text = "groups:\n  \"finance-admins\": [alice]\n  analysts:\n  - carol\n";
        let lines = FieldLines::scan(text, 1);
        assert_eq!(lines.line_of("groups.analysts"), 3);
        assert_eq!(lines.line_of("groups.finance-admins"), 2);
    }
}
