//! From policy text to typed documents: YAML multi-document splitting, the `kind` tag, strict
//! field checking, and findings that carry origin, line and field.

// Findings are the rare path of policy loading, never of admission; their size does not matter.
#![allow(clippy::result_large_err)]

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::document::{Document, KINDS};
use super::lines::FieldLines;
use super::origin::{Finding, Origin, Severity};

/// A piece of policy text to parse: a file of documents or one ConfigMap data key.
#[derive(Debug, Clone)]
pub struct Source {
    pub origin: Origin,
    pub text: String,
}

/// A document that parsed, with what is needed to point at its fields later.
#[derive(Debug, Clone)]
pub struct ParsedDoc {
    pub doc: Document,
    pub origin: Origin,
    pub lines: FieldLines,
}

impl ParsedDoc {
    pub fn finding(&self, severity: Severity, field: &str, message: impl Into<String>) -> Finding {
        Finding {
            severity,
            origin: self.origin.clone(),
            line: self.lines.line_of(field),
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.into(),
        }
    }

    pub fn error(&self, field: &str, message: impl Into<String>) -> Finding {
        self.finding(Severity::Error, field, message)
    }
}

/// One YAML document of a multi-document text, with its 1-based first line.
#[derive(Debug, Clone)]
pub struct RawDoc<'a> {
    pub text: &'a str,
    pub first_line: usize,
}

/// Splits on `---` separator lines, keeping line numbers; empty documents are dropped.
pub fn split_documents(text: &str) -> Vec<RawDoc<'_>> {
    let mut docs = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut byte = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let content = line.trim_end();
        if content == "---" || content.starts_with("--- ") || content == "..." {
            docs.push(RawDoc {
                text: &text[start_byte..byte],
                first_line: start_line,
            });
            start_byte = byte + line.len();
            start_line = i + 2;
        }
        byte += line.len();
    }
    docs.push(RawDoc {
        text: &text[start_byte..],
        first_line: start_line,
    });
    docs.retain(|d| {
        d.text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

/// Parses YAML into a generic value, turning syntax errors into findings with the right line.
pub fn parse_value(origin: &Origin, raw: &RawDoc<'_>) -> Result<Value, Finding> {
    serde_yaml::from_str::<Value>(raw.text).map_err(|e| {
        // An error at the end of input is reported on the line after the last: point at the last.
        let last = raw.first_line + raw.text.lines().count().max(1) - 1;
        let at = raw.first_line + e.location().map_or(0, |l| l.line().saturating_sub(1));
        Finding {
            severity: Severity::Error,
            origin: origin.clone(),
            line: at.min(last),
            field: None,
            message: format!("invalid YAML: {}", strip_location(&e.to_string())),
        }
    })
}

/// Parses every document of a policy source.
pub fn parse_source(source: &Source) -> (Vec<ParsedDoc>, Vec<Finding>) {
    let mut docs = Vec::new();
    let mut findings = Vec::new();
    for raw in split_documents(&source.text) {
        let lines = FieldLines::scan(raw.text, raw.first_line);
        match parse_value(&source.origin, &raw)
            .and_then(|value| parse_document(value, &source.origin, &lines))
        {
            Ok(doc) => docs.push(ParsedDoc {
                doc,
                origin: source.origin.clone(),
                lines,
            }),
            Err(f) => findings.push(f),
        }
    }
    (docs, findings)
}

/// Reads `kind` and deserialises the rest strictly into that kind's type.
pub fn parse_document(
    value: Value,
    origin: &Origin,
    lines: &FieldLines,
) -> Result<Document, Finding> {
    let error = |field: Option<String>, message: String| Finding {
        severity: Severity::Error,
        origin: origin.clone(),
        line: field.as_deref().map_or(lines.start(), |f| lines.line_of(f)),
        field,
        message,
    };
    let Value::Mapping(mut map) = value else {
        return Err(error(
            None,
            "a policy document must be a mapping with a `kind`".into(),
        ));
    };
    let kind = match map.remove("kind") {
        Some(Value::String(kind)) => kind,
        Some(_) => return Err(error(Some("kind".into()), "must be a string".into())),
        None => {
            return Err(error(
                None,
                format!(
                    "document has no `kind`; expected one of {}",
                    KINDS.join(", ")
                ),
            ));
        }
    };
    let rest = Value::Mapping(map);
    let typed = |r: Result<Document, (String, String)>| {
        r.map_err(|(path, message)| error((!path.is_empty()).then_some(path), message))
    };
    match kind.as_str() {
        "Share" => typed(strict(rest).map(Document::Share)),
        "Home" => typed(strict(rest).map(Document::Home)),
        "Library" => typed(strict(rest).map(Document::Library)),
        "Groups" => typed(strict(rest).map(Document::Groups)),
        "Settings" => typed(strict(rest).map(Document::Settings)),
        other => Err(error(
            Some("kind".into()),
            format!(
                "unknown kind '{other}'; expected one of {}",
                KINDS.join(", ")
            ),
        )),
    }
}

/// Deserialises with the path of the failing field; unknown fields name themselves.
fn strict<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        let message = strip_location(&e.inner().to_string());
        if let Some(unknown) = unknown_field(&message).filter(|u| !path.ends_with(u)) {
            path = if path.is_empty() {
                unknown.to_string()
            } else {
                format!("{path}.{unknown}")
            };
        }
        (path, message)
    })
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// serde_yaml appends " at line L column C" relative to the document; we report our own line.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source {
            origin: Origin::file("policy.yaml"),
            text: text.to_string(),
        }
    }

    #[test]
    fn documents_split_on_separators_keep_their_lines() {
        let docs = split_documents("kind: Groups\ngroups: {}\n---\n# c\n---\nkind: Settings\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 1);
        assert_eq!(docs[1].first_line, 6);
    }

    #[test]
    fn unknown_kind_is_an_error_naming_the_line() {
        let (docs, findings) = parse_source(&source(
            "kind: Groups\ngroups: {}\n---\nkind: Shares\nname: x\n",
        ));
        assert_eq!(docs.len(), 1);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].line, 4);
        assert!(findings[0].to_string().contains("policy.yaml:4"));
        assert!(findings[0].message.contains("unknown kind 'Shares'"));
    }

    #[test]
    fn unknown_field_is_an_error_naming_field_and_line() {
        let text = "kind: Share\nname: a\nclaimName: a\nmountPath: /a\nlevel: public\nwriters:\n  users: [x]\n  grops: [y]\n";
        let (_, findings) = parse_source(&source(text));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].field.as_deref(), Some("writers.grops"));
        assert_eq!(findings[0].line, 8);
    }

    #[test]
    fn wrong_type_names_the_field() {
        let text = "kind: Share\nname: a\nclaimName: a\nmountPath: /a\nlevel: topsecret\n";
        let (_, findings) = parse_source(&source(text));
        assert_eq!(findings[0].field.as_deref(), Some("level"));
        assert_eq!(findings[0].line, 5);
    }

    #[test]
    fn bad_yaml_reports_the_line_in_the_whole_file() {
        let text = "kind: Groups\ngroups: {}\n---\nkind: Settings\ntrustedSpawners: [a\n";
        let (_, findings) = parse_source(&source(text));
        assert_eq!(findings.len(), 1);
        assert!(findings[0].message.starts_with("invalid YAML"));
        assert!(findings[0].line >= 5, "{:?}", findings[0]);
    }
}
