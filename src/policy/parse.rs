//! From policy text to typed documents: YAML multi-document splitting, the `kind` tag, strict
//! field checking, and findings that carry origin, line and field.

// Findings are the rare path of policy loading, never of admission; their size does not matter.
#![allow(clippy::result_large_err)]

use serde::de::DeserializeOwned;

use super::bounds;
use super::document::{Document, KINDS};
use super::origin::{Finding, Origin, Severity};
use super::yaml::{self, Node, path_text};

/// A piece of policy text to parse: a file of documents or one ConfigMap data key.
#[derive(Debug, Clone)]
pub struct Source {
    pub origin: Origin,
    pub text: String,
}

/// A document that parsed, with its YAML tree to point at its fields later.
#[derive(Debug, Clone)]
pub struct ParsedDoc {
    pub doc: Document,
    pub origin: Origin,
    pub node: Node,
}

impl ParsedDoc {
    pub fn finding(&self, severity: Severity, field: &str, message: impl Into<String>) -> Finding {
        Finding {
            severity,
            origin: self.origin.clone(),
            line: self.node.line_of_field(field),
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.into(),
        }
    }

    pub fn error(&self, field: &str, message: impl Into<String>) -> Finding {
        self.finding(Severity::Error, field, message)
    }
}

/// One YAML document of a multi-document text: its tree as a standard YAML stream reader reads
/// it, the lines it spans (from its `---` line, if any) and the 1-based line they start at.
#[derive(Debug, Clone)]
pub struct RawDoc<'a> {
    pub node: Node,
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
    let (nodes, stopped) = yaml::read_stream(text);
    let mut findings: Vec<Finding> = stopped
        .into_iter()
        .map(|e| error(e.line, format!("invalid YAML: {}", e.message)))
        .collect();
    // Each document belongs to the `---` part holding its first line; two in one part would
    // mean the reader and the `---` lines disagree about where documents start.
    let spans = document_spans(text);
    let mut docs: Vec<RawDoc<'a>> = Vec::with_capacity(nodes.len());
    let mut part = 0;
    for node in nodes {
        while spans
            .get(part + 1)
            .is_some_and(|(_, start)| *start <= node.line)
        {
            part += 1;
        }
        let (span, first_line) = spans.get(part).copied().unwrap_or((text, 1));
        if docs.last().is_some_and(|d| d.first_line == first_line) {
            findings.push(error(
                node.line,
                "a YAML reader finds a second document here but no `---` line starts it; separate documents with a line holding only `---`".into(),
            ));
            return (Vec::new(), findings);
        }
        if node.is_null() {
            continue;
        }
        let mut node = node;
        // A scalar document starts on its `---` line (the reader points at its text, which
        // after `--- |` is a line later).
        if matches!(node.value, yaml::Tree::Scalar(_)) && span.starts_with("---") {
            node.line = first_line;
        }
        if let Err(e) = bounds::check_tree(&node) {
            findings.push(error(e.line, e.message));
            continue;
        }
        docs.push(RawDoc {
            node,
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
        match parse_document(&raw.node, &source.origin) {
            Ok(doc) => docs.push(ParsedDoc {
                doc,
                origin: source.origin.clone(),
                node: raw.node,
            }),
            Err(f) => findings.extend(f),
        }
    }
    (docs, findings)
}

/// Reads `kind` and deserialises the rest strictly into that kind's type: every field that does
/// not fit is reported, each with its line.
pub fn parse_document(node: &Node, origin: &Origin) -> Result<Document, Vec<Finding>> {
    let error = |field: Option<String>, message: String| Finding {
        severity: Severity::Error,
        origin: origin.clone(),
        line: field
            .as_deref()
            .map_or(node.line, |f| node.line_of_field(f)),
        field,
        message,
    };
    if !matches!(node.value, yaml::Tree::Map(_)) {
        return Err(vec![error(
            None,
            "a policy document must be a mapping with a `kind`".into(),
        )]);
    }
    let kind = match node.get("kind") {
        Some(kind) => match kind.as_str() {
            Some(kind) => kind,
            None => return Err(vec![error(Some("kind".into()), "must be a string".into())]),
        },
        None => {
            return Err(vec![error(
                None,
                format!(
                    "document has no `kind`; expected one of {}",
                    KINDS.join(", ")
                ),
            )]);
        }
    };
    let typed = |r: Result<Document, Vec<yaml::ShapeError>>| {
        r.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| Finding {
                    severity: Severity::Error,
                    origin: origin.clone(),
                    line: e.line,
                    field: (!e.path.is_empty()).then(|| path_text(&e.path)),
                    message: e.message,
                })
                .collect()
        })
    };
    match kind {
        "Share" => typed(strict(node).map(Document::Share)),
        "Home" => typed(strict(node).map(Document::Home)),
        "Library" => typed(strict(node).map(Document::Library)),
        "Groups" => typed(strict(node).map(Document::Groups)),
        "Settings" => typed(strict(node).map(Document::Settings)),
        other => Err(vec![error(
            Some("kind".into()),
            format!(
                "unknown kind '{other}'; expected one of {}",
                KINDS.join(", ")
            ),
        )]),
    }
}

/// The document without its `kind`, strictly: unknown fields are errors.
fn strict<T: DeserializeOwned>(node: &Node) -> Result<T, Vec<yaml::ShapeError>> {
    yaml::typed(node, &["kind"])
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
        assert_eq!(docs[1].node.line, 5);
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
                .any(|f| f.message.contains("no `---` line starts it"));
            assert!(!mismatch, "{text:?}: {findings:?}");
            assert_eq!(docs.len(), count, "{text:?}: {findings:?}");
        }
    }

    /// After `...` a YAML reader may start a document without `---`: it cannot be told apart by
    /// lines, so the text is refused rather than misread.
    #[test]
    fn a_document_started_without_its_own_dashes_is_refused() {
        let (docs, findings) = read_documents(&Origin::file("p.yaml"), "a: 1\n...\nb: 2\n");
        assert!(docs.is_empty());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].line, 3);
        assert!(findings[0].message.contains("no `---` line starts it"));
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
    fn a_shape_error_names_its_field_and_line() {
        let share = "kind: Share\nname: a\nclaimName: a\nmountPath: /a\n";
        for (rest, field, line) in [
            // an unknown field
            (
                "level: public\nwriters:\n  users: [x]\n  grops: [y]\n",
                "writers.grops",
                8,
            ),
            // a value of the wrong type
            ("level: topsecret\n", "level", 5),
        ] {
            let (_, findings) = parse_source(&source(&format!("{share}{rest}")));
            assert_eq!(findings.len(), 1, "{findings:?}");
            assert_eq!(findings[0].field.as_deref(), Some(field));
            assert_eq!(findings[0].line, line);
        }
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
