//! From policy text to typed documents: YAML multi-document splitting, the `kind` tag, strict
//! field checking, and findings that carry origin, line and field.

// Findings are the rare path of policy loading, never of admission; their size does not matter.
#![allow(clippy::result_large_err)]

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::bounds;
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

/// One YAML document of a multi-document text: its value as a standard YAML stream reader reads
/// it, the lines it spans (from its `---` line, if any) and its 1-based first line.
#[derive(Debug, Clone)]
pub struct RawDoc<'a> {
    pub value: Value,
    pub text: &'a str,
    pub first_line: usize,
}

/// The lines of each document: the text before the first `---` (when it holds anything but
/// comments and directives, or when there is no `---` at all), then one part per `---` line,
/// starting at that line. A YAML parser starts a document at exactly these lines: `---` at the
/// start of a line cannot be content of a scalar or a collection.
pub fn document_spans(text: &str) -> Vec<(&str, usize)> {
    let mut spans = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut byte = 0;
    let mut leading_content = false;
    let mut markers = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let content = line.trim_end();
        let is_start =
            content == "---" || content.starts_with("--- ") || content.starts_with("---\t");
        if is_start {
            if markers > 0 || leading_content {
                spans.push((&text[start_byte..byte], start_line));
            }
            markers += 1;
            start_byte = byte;
            start_line = i + 1;
        } else if markers == 0 {
            let t = content.trim_start();
            leading_content |=
                !(t.is_empty() || t.starts_with('#') || t.starts_with('%') || t == "...");
        }
        byte += line.len();
    }
    if markers > 0 || leading_content || spans.is_empty() {
        spans.push((&text[start_byte..], start_line));
    }
    spans
}

/// Reads every document of `text` exactly as a YAML multi-document stream reader does (a document
/// after `--- |` is a string, not a mapping), after the limits of `bounds` are checked. Empty
/// documents are dropped; reading stops at the first syntax error, as every YAML tool does.
pub fn read_documents<'a>(origin: &Origin, text: &'a str) -> (Vec<RawDoc<'a>>, Vec<Finding>) {
    use serde::Deserialize;
    let error = |line: usize, message: String| Finding {
        severity: Severity::Error,
        origin: origin.clone(),
        line,
        field: None,
        message,
    };
    if let Err(e) = bounds::pre_scan(text) {
        return (Vec::new(), vec![error(e.line, e.message)]);
    }
    let last_line = text.lines().count().max(1);
    let spans = document_spans(text);
    let mut values = Vec::new();
    let mut findings = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        match Value::deserialize(document) {
            Ok(value) => values.push(value),
            Err(e) => {
                // An error at the end of input is reported on the line after the last.
                let at = e.location().map_or(1, |l| l.line()).clamp(1, last_line);
                findings.push(error(
                    at,
                    format!("invalid YAML: {}", strip_location(&e.to_string())),
                ));
                break;
            }
        }
        if values.len() > bounds::MAX_DOCUMENTS {
            break;
        }
    }
    if values.len() > spans.len() || (findings.is_empty() && values.len() != spans.len()) {
        findings.push(error(
            1,
            format!(
                "a YAML reader finds {} document(s) here but the `---` lines mark {}; separate documents with a line holding only `---`",
                values.len(),
                spans.len()
            ),
        ));
        return (Vec::new(), findings);
    }
    let mut docs = Vec::new();
    for (value, (span, first_line)) in values.into_iter().zip(spans) {
        if value.is_null() {
            continue;
        }
        if let Err(message) = bounds::check_value(&value) {
            findings.push(error(first_line, message));
            continue;
        }
        docs.push(RawDoc {
            value,
            text: span,
            first_line,
        });
    }
    (docs, findings)
}

/// Parses every document of a policy source.
pub fn parse_source(source: &Source) -> (Vec<ParsedDoc>, Vec<Finding>) {
    let (raw, mut findings) = read_documents(&source.origin, &source.text);
    let mut docs = Vec::new();
    for raw in raw {
        let lines = FieldLines::scan(raw.text, raw.first_line);
        match parse_document(raw.value, &source.origin, &lines) {
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
        let origin = Origin::file("p.yaml");
        let (docs, f) = read_documents(
            &origin,
            "kind: Groups\ngroups: {}\n---\n# c\n---\nkind: Settings\n",
        );
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 1);
        assert_eq!(docs[1].first_line, 5);
        let (docs, _) = read_documents(&origin, "# c\n---\nkind: Groups\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].first_line, 2);
    }

    /// A document after `--- |` is a string to every YAML tool: so it is to the webhook.
    #[test]
    fn documents_are_read_as_a_standard_yaml_stream() {
        let text = "kind: Settings\n--- |\n  kind: Groups\n  groups: {admins: [mallory]}\n--- {kind: Groups, groups: {a: [b]}}\n";
        let (docs, findings) = parse_source(&source(text));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].line, 2);
        assert!(
            findings[0].message.contains("must be a mapping"),
            "{}",
            findings[0]
        );
        assert_eq!(docs.len(), 2);
        assert!(matches!(docs[1].doc, Document::Groups(_)));
        assert_eq!(docs[1].lines.start(), 5);
    }

    #[test]
    fn document_markers_line_up_with_the_yaml_reader() {
        let origin = Origin::file("p.yaml");
        for (text, count) in [
            ("", 0),
            ("# only a comment\n", 0),
            ("---\n", 0),
            ("---\n...\n---\n", 0),
            ("a: 1\n...\n", 1),
            ("a: 1\n...\n---\nb: 2\n", 2),
            ("%YAML 1.1\n---\na: 1\n", 1),
            ("a: 1\n---\n", 1),
            (
                "--- # first\na: 1\n--- ~\n---\nb: |\n  --- not a marker\n",
                2,
            ),
            ("a: \"x\n---\"\n", 1),
            ("a: 'x\n--- y'\n", 0),
            ("a: [x,\n---\n]\n", 0),
        ] {
            let (docs, findings) = read_documents(&origin, text);
            let mismatch = findings
                .iter()
                .any(|f| f.message.contains("`---` lines mark"));
            assert!(!mismatch, "{text:?}: {findings:?}");
            assert_eq!(docs.len(), count, "{text:?}: {findings:?}");
        }
    }

    #[test]
    fn a_document_that_is_not_a_mapping_is_an_error_with_its_line() {
        let (_, findings) = parse_source(&source("kind: Settings\n---\n- a\n- b\n"));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].line, 3);
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
