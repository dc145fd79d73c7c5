//! YAML read into a tree that keeps the line of every node. The events come from granit-parser,
//! the maintained, panic-free parser under serde-saphyr; the tree is built from them without
//! recursion, within the policy bounds (nesting, alias repetition, duplicate keys). Findings name
//! the line of the very key or item at fault, in block and flow style alike; typed documents are
//! deserialised from the tree, and every shape error of a document is collected, not only the
//! first. Manifests read whole (a pod for `audit`) go through serde-saphyr itself.

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Tag};

/// Deepest nesting a policy document may have (flow or block). The tree builder stops there; policy needs about 6 levels.
pub const MAX_DEPTH: usize = 32;
/// Most nodes that aliases (`*a`) may repeat in one source: an alias bomb stops here.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// One YAML node and the 1-based line where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub value: Tree,
}

/// What a node holds. Scalars are typed as YAML's core schema reads them untyped (`12` is a
/// number, `"12"` a string), as the Kubernetes API and every YAML tool read them.
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    Scalar(Json),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A YAML text the reader refused, with the line it stopped at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(self.value, Tree::Scalar(Json::Null))
    }

    /// The value of `key` in a mapping node, with the key node.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            Tree::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_key().as_deref() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Tree::Scalar(Json::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Tree::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// A scalar as a mapping key: its text (`12`, `true`, `null` as written in the core schema).
    /// Collections are not keys; `bounds::check_tree` refuses them.
    pub fn as_key(&self) -> Option<String> {
        match &self.value {
            Tree::Scalar(Json::String(s)) => Some(s.clone()),
            Tree::Scalar(Json::Null) => Some("null".into()),
            Tree::Scalar(other) => Some(other.to_string()),
            _ => None,
        }
    }

    /// Moves every line of the tree down by `by` (a document read out of a larger text).
    pub fn shift_lines(&mut self, by: usize) {
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            node.line += by;
            match &mut node.value {
                Tree::Scalar(_) => {}
                Tree::Seq(items) => stack.extend(items.iter_mut()),
                Tree::Map(entries) => {
                    for (k, v) in entries.iter_mut() {
                        stack.push(k);
                        stack.push(v);
                    }
                }
            }
        }
    }

    /// The objects of a Kubernetes manifest: the items of a `List`, else the manifest itself.
    pub fn manifest_objects(&self) -> Vec<&Node> {
        match self.get("kind").and_then(Node::as_str) {
            Some("List") => self
                .get("items")
                .and_then(Node::as_seq)
                .map_or_else(Vec::new, |items| items.iter().collect()),
            _ => vec![self],
        }
    }

    /// The node as JSON, for typed deserialisation (keys become strings).
    pub fn to_json(&self) -> Json {
        match &self.value {
            Tree::Scalar(v) => v.clone(),
            Tree::Seq(items) => Json::Array(items.iter().map(Node::to_json).collect()),
            Tree::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_key().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The line of a field path: the line of the deepest key or item of `path` found (the key's
    /// own line, so `level: x` and `{a: 1, level: x}` both point at `level`), else the node's.
    pub fn line_of(&self, path: &[Segment]) -> usize {
        let mut node = self;
        let mut line = self.line;
        for segment in path {
            let next = match (segment, &node.value) {
                (Segment::Key(key), Tree::Map(entries)) => entries
                    .iter()
                    .find(|(k, _)| k.as_key().as_deref() == Some(key.as_str()))
                    .map(|(k, v)| (k.line, v)),
                (Segment::Index(i), Tree::Seq(items)) => items.get(*i).map(|v| (v.line, v)),
                _ => None,
            };
            match next {
                Some((l, v)) => {
                    line = l;
                    node = v;
                }
                None => break,
            }
        }
        line
    }

    /// The line of a dotted field as findings name it (`create.size`, `readers.users[1]`,
    /// `groups.team.a` for a group named `team.a`).
    pub fn line_of_field(&self, field: &str) -> usize {
        self.line_of(&self.resolve(field))
    }

    /// Splits a dotted field into segments, matching keys that themselves hold dots.
    fn resolve(&self, field: &str) -> Vec<Segment> {
        let mut segments = Vec::new();
        let mut node = Some(self);
        let mut rest = field;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let Some((index, tail)) = after.split_once(']') else {
                    break;
                };
                let Ok(i) = index.parse::<usize>() else {
                    break;
                };
                node = node.and_then(|n| n.as_seq()).and_then(|items| items.get(i));
                segments.push(Segment::Index(i));
                rest = tail.strip_prefix('.').unwrap_or(tail);
                continue;
            }
            // The longest key of this mapping that `rest` starts with, up to a `.` or a `[`.
            let ends = |k: &str| {
                rest.strip_prefix(k)
                    .is_some_and(|t| t.is_empty() || t.starts_with('.') || t.starts_with('['))
            };
            let key = match node.map(|n| &n.value) {
                Some(Tree::Map(entries)) => entries
                    .iter()
                    .filter_map(|(k, _)| k.as_key())
                    .filter(|k| ends(k))
                    .max_by_key(String::len),
                _ => None,
            };
            let key = key.unwrap_or_else(|| {
                rest.split(['.', '['])
                    .next()
                    .unwrap_or_default()
                    .to_string()
            });
            node = node.and_then(|n| n.get(&key));
            rest = &rest[key.len().min(rest.len())..];
            rest = rest.strip_prefix('.').unwrap_or(rest);
            segments.push(Segment::Key(key));
        }
        segments
    }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Prints a path as findings name fields: `readers.users[1]`.
pub fn path_text(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A collection being read: its line, anchor, entries so far, and its height.
struct Open {
    line: usize,
    anchor: usize,
    height: usize,
    /// Nodes in it so far, itself included.
    size: usize,
    kind: OpenKind,
}

enum OpenKind {
    Seq(Vec<Node>),
    /// Entries, the key waiting for its value, and the keys seen (duplicates are refused).
    Map(Vec<(Node, Node)>, Option<Node>, HashSet<String>),
}

/// An anchored node, with its size and height for the alias budget and the depth bound.
struct Anchored {
    node: Node,
    size: usize,
    height: usize,
}

/// Builds the documents of a text from the parser's events, without recursion: the stack of
/// open collections is as deep as the text, and that is bounded to `max_depth`.
struct Builder {
    max_depth: usize,
    stack: Vec<Open>,
    anchors: HashMap<usize, Anchored>,
    root: Option<(Node, usize)>,
    repeated: usize,
}

impl Builder {
    fn error(line: usize, message: String) -> YamlError {
        YamlError { line, message }
    }

    fn open(&mut self, line: usize, anchor: usize, kind: OpenKind) -> Result<(), YamlError> {
        if self.stack.len() + 1 > self.max_depth {
            return Err(Self::error(
                line,
                format!(
                    "nested more than {} levels deep; policy needs only a few levels",
                    self.max_depth
                ),
            ));
        }
        self.stack.push(Open {
            line,
            anchor,
            height: 1,
            size: 1,
            kind,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), YamlError> {
        let Some(open) = self.stack.pop() else {
            return Ok(());
        };
        let value = match open.kind {
            OpenKind::Seq(items) => Tree::Seq(items),
            OpenKind::Map(entries, _, _) => Tree::Map(entries),
        };
        let node = Node {
            line: open.line,
            value,
        };
        self.add(node, open.anchor, open.size, open.height)
    }

    /// Adds a finished node to the collection it is in, or makes it the document's root.
    fn add(
        &mut self,
        node: Node,
        anchor: usize,
        size: usize,
        height: usize,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    size,
                    height,
                },
            );
        }
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some((node, height));
            return Ok(());
        };
        parent.height = parent.height.max(height + 1);
        parent.size += size;
        match &mut parent.kind {
            OpenKind::Seq(items) => items.push(node),
            OpenKind::Map(entries, pending, seen) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if let Some(k) = key.as_key()
                        && !seen.insert(k.clone())
                    {
                        return Err(Self::error(key.line, format!("duplicate key `{k}`")));
                    }
                    entries.push((key, node));
                }
            },
        }
        Ok(())
    }

    /// Repeats an anchored node where an alias names it, within the alias and depth budgets.
    fn alias(&mut self, line: usize, id: usize) -> Result<(), YamlError> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(Self::error(line, "an alias to an unknown anchor".into()));
        };
        self.repeated += anchored.size;
        if self.repeated > MAX_ALIAS_NODES {
            return Err(Self::error(
                line,
                format!(
                    "aliases repeat more than {} nodes; write the values out instead",
                    MAX_ALIAS_NODES
                ),
            ));
        }
        if self.stack.len() + anchored.height > self.max_depth {
            return Err(Self::error(
                line,
                format!(
                    "nested more than {} levels deep (through an alias); policy needs only a few levels",
                    self.max_depth
                ),
            ));
        }
        let (mut node, size, height) = (anchored.node.clone(), anchored.size, anchored.height);
        node.line = line;
        self.add(node, 0, size, height)
    }
}

/// The value of a scalar as YAML 1.2's core schema reads it untyped, as the Kubernetes API
/// does: quoted and block scalars are strings; plain ones may be null, a boolean or a number;
/// `!!str` and the other core tags choose; any other tag leaves a string (and on a collection,
/// nothing).
fn resolve(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Json, String> {
    let core = match tag {
        None => None,
        Some(tag) => match tag.core_suffix() {
            Some(suffix) => Some(suffix.to_string()),
            // An application tag says nothing a policy reads: its scalar is text.
            None => return Ok(Json::String(text.to_string())),
        },
    };
    if core.as_deref() == Some("str") || (core.is_none() && style != ScalarStyle::Plain) {
        return Ok(Json::String(text.to_string()));
    }
    let value = plain_scalar(text);
    let fits = match core.as_deref() {
        None => true,
        Some("null") => value.is_null(),
        Some("bool") => value.is_boolean(),
        Some("int") => value.is_i64() || value.is_u64(),
        Some("float") => value.is_number(),
        Some(other) => return Err(format!("the tag !!{other} is not used in policy")),
    };
    if fits {
        Ok(value)
    } else {
        Err(format!("'{text}' is not a {}", core.unwrap_or_default()))
    }
}

fn plain_scalar(text: &str) -> Json {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Json::Null,
        "true" | "True" | "TRUE" => return Json::Bool(true),
        "false" | "False" | "FALSE" => return Json::Bool(false),
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let integer = if let Some(hex) = text.strip_prefix("0x") {
        let digits = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
        digits.then(|| i64::from_str_radix(hex, 16).ok()).flatten()
    } else if let Some(octal) = text.strip_prefix("0o") {
        let digits = !octal.is_empty() && octal.bytes().all(|b| (b'0'..=b'7').contains(&b));
        digits.then(|| i64::from_str_radix(octal, 8).ok()).flatten()
    } else if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok()
    } else {
        None
    };
    if let Some(i) = integer {
        return Json::from(i);
    }
    if is_float(unsigned)
        && let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
    {
        return Json::Number(n);
    }
    Json::String(text.to_string())
}

/// `[0-9]+(\.[0-9]*)?` or `\.[0-9]+`, then an optional exponent: the core schema's finite floats.
fn is_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (digits(int) && (frac.is_empty() || digits(frac))) || (int.is_empty() && digits(frac))
        }
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// Every document of `text` in order (empty and null documents are left out), and the error the
/// reader stopped at, if any. Reading stops at a syntax error, as every YAML tool does.
pub fn read_stream(text: &str) -> (Vec<Node>, Option<YamlError>) {
    read_stream_within(text, MAX_DEPTH)
}

/// Like `read_stream`, refusing collections nested deeper than `max_depth`.
pub(crate) fn read_stream_within(text: &str, max_depth: usize) -> (Vec<Node>, Option<YamlError>) {
    let mut builder = Builder {
        max_depth,
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        repeated: 0,
    };
    let mut docs = Vec::new();
    let last_line = text.lines().count().max(1);
    for event in Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(e) => e,
            Err(e) => {
                // An error at the end of input is reported on the last line.
                let line = e.marker().line().clamp(1, last_line);
                return (docs, Some(Builder::error(line, e.info())));
            }
        };
        let line = span.start.line();
        let step = match event {
            Event::Scalar(value, style, anchor, tag) => {
                match resolve(&value, style, tag.as_deref()) {
                    Ok(v) => builder.add(
                        Node {
                            line,
                            value: Tree::Scalar(v),
                        },
                        anchor,
                        1,
                        0,
                    ),
                    Err(message) => Err(Builder::error(line, message)),
                }
            }
            Event::SequenceStart(_, anchor, _) => {
                builder.open(line, anchor, OpenKind::Seq(Vec::new()))
            }
            Event::MappingStart(_, anchor, _) => builder.open(
                line,
                anchor,
                OpenKind::Map(Vec::new(), None, HashSet::new()),
            ),
            Event::SequenceEnd | Event::MappingEnd => builder.close(),
            Event::Alias(id) => builder.alias(line, id),
            Event::UnresolvedAlias(name) => Err(Builder::error(
                line,
                format!("the alias *{name} names no anchor before it"),
            )),
            Event::DocumentEnd => {
                builder.anchors.clear();
                if let Some((root, _)) = builder.root.take()
                    && !root.is_null()
                {
                    docs.push(root);
                }
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = step {
            return (docs, Some(e));
        }
    }
    (docs, None)
}

/// Reads one manifest (a pod for `audit`) into its type with serde-saphyr, under the same
/// schema (YAML 1.2 core: `y` and `no` are strings) and nesting bound as policy.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
        },
        strict_booleans: true,
        underscored_numbers_as_strings: true,
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| e.to_string())
}

/// A field of a document whose value does not fit its type: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    pub path: Vec<Segment>,
    pub line: usize,
    pub message: String,
}

/// Most shape errors reported for one document; each costs one linear pass over it.
pub const MAX_SHAPE_ERRORS: usize = 20;

/// Deserialises `node`, without its top-level keys `without`, strictly into `T`, reporting every
/// shape error it can find in one go: after each error the offending field is set aside and the
/// rest is read again (a required field set aside is then missing; that is not reported twice).
/// At most `MAX_SHAPE_ERRORS` passes, each linear in the document.
pub fn typed<T: DeserializeOwned>(node: &Node, without: &[&str]) -> Result<T, Vec<ShapeError>> {
    let mut json = node.to_json();
    if let Json::Object(map) = &mut json {
        for key in without {
            map.remove(*key);
        }
    }
    let mut errors: Vec<ShapeError> = Vec::new();
    let mut set_aside: Vec<Vec<Segment>> = Vec::new();
    for _ in 0..MAX_SHAPE_ERRORS {
        let e = match serde_path_to_error::deserialize::<_, T>(&json) {
            Ok(value) if errors.is_empty() => return Ok(value),
            Ok(_) => break,
            Err(e) => e,
        };
        let mut path = segments(e.path());
        let message = e.inner().to_string();
        let missing = quoted_after(&message, "missing field `");
        let unknown = quoted_after(&message, "unknown field `");
        if let Some(u) = unknown
            && path.last() != Some(&Segment::Key(u.to_string()))
        {
            path.push(Segment::Key(u.to_string()));
        }
        // A mapping with a field set aside misses what that field probably meant to be (a
        // misspelt key): its missing fields are not reported on top.
        let caused_by_us = missing.is_some()
            && set_aside
                .iter()
                .any(|p| p.len() == path.len() + 1 && p.starts_with(&path));
        if !caused_by_us {
            errors.push(ShapeError {
                line: node.line_of(&path),
                path: path.clone(),
                message,
            });
        }
        // Set aside the field holding the error (a whole list for an error in one item).
        while matches!(path.last(), Some(Segment::Index(_))) {
            path.pop();
        }
        if path.is_empty() || !remove(&mut json, &path) {
            break;
        }
        set_aside.push(path);
    }
    errors.sort_by_key(|e| e.line);
    Err(errors)
}

fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message.strip_prefix(prefix)?.split('`').next()
}

fn segments(path: &serde_path_to_error::Path) -> Vec<Segment> {
    use serde_path_to_error::Segment as S;
    path.iter()
        .filter_map(|s| match s {
            S::Seq { index } => Some(Segment::Index(*index)),
            S::Map { key } => Some(Segment::Key(key.clone())),
            S::Enum { .. } | S::Unknown => None,
        })
        .collect()
}

/// Removes the field at `path` (ending in a key) from `json`; false when it is not there.
fn remove(json: &mut Json, path: &[Segment]) -> bool {
    let Some((Segment::Key(last), parents)) = path.split_last() else {
        return false;
    };
    let mut at = json;
    for segment in parents {
        let next = match (segment, at) {
            (Segment::Key(k), Json::Object(map)) => map.get_mut(k),
            (Segment::Index(i), Json::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => at = n,
            None => return false,
        }
    }
    match at {
        Json::Object(map) => map.remove(last).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let (mut nodes, error) = read_stream(text);
        assert_eq!(error, None);
        assert_eq!(nodes.len(), 1);
        nodes.remove(0)
    }

    #[test]
    fn every_node_knows_its_line_in_block_and_flow_style() {
        let node = one(
            "kind: Share\nreaders:\n  users: [a,\n    b]\nwriters: {users: [c],\n  groups: [d]}\n",
        );
        assert_eq!(node.line, 1);
        assert_eq!(node.line_of_field("kind"), 1);
        assert_eq!(node.line_of_field("readers.users"), 3);
        assert_eq!(node.line_of_field("readers.users[1]"), 4);
        assert_eq!(node.line_of_field("writers.groups"), 6);
        assert_eq!(node.line_of_field("writers.groups[0]"), 6);
        assert_eq!(node.line_of_field("writers.nothing"), 5);
        assert_eq!(node.line_of_field("nothing"), 1);
    }

    #[test]
    fn keys_holding_dots_are_found() {
        let node = one("groups:\n  team.a: [x]\n  team: [y]\n");
        assert_eq!(node.line_of_field("groups.team.a"), 2);
        assert_eq!(node.line_of_field("groups.team"), 3);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        level: Level,
        inner: Option<Inner>,
        list: Option<Vec<Inner>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        size: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Level {
        Public,
    }

    #[test]
    fn every_shape_error_of_a_document_is_reported_with_its_line() {
        let node = one(
            "name: [x]\nlevel: secret\ninner: {size: big,\n  extra: 1}\nlist:\n- size: 1\n- {sise: 2}\ntypo: 3\n",
        );
        let errors = typed::<Doc>(&node, &[]).unwrap_err();
        let got: Vec<(String, usize)> = errors
            .iter()
            .map(|e| (path_text(&e.path), e.line))
            .collect();
        assert_eq!(
            got,
            [
                ("name".to_string(), 1),
                ("level".to_string(), 2),
                ("inner.size".to_string(), 3),
                ("inner.extra".to_string(), 4),
                ("list[1].sise".to_string(), 7),
                ("typo".to_string(), 8),
            ],
            "{errors:#?}"
        );
    }

    #[test]
    fn a_missing_field_is_reported_once_and_a_good_document_reads() {
        let errors = typed::<Doc>(&one("level: public\n"), &[]).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("missing field `name`"));
        assert_eq!(errors[0].line, 1);
        let doc = typed::<Doc>(&one("name: a\nlevel: public\ninner: {size: 1}\n"), &[]).unwrap();
        assert_eq!(doc.inner.map(|i| i.size), Some(1));
    }

    #[test]
    fn plain_scalars_follow_the_yaml_1_2_core_schema() {
        let node = one(
            "[~, null, '', true, False, y, no, on, 12, -0o17, 0o17, 0x1F, 0x-1, 1.5e3, .5, 1_000, 0755, '12', !!str 12, !local 7, .inf]",
        );
        let got: Vec<Json> = node.as_seq().unwrap().iter().map(Node::to_json).collect();
        let expected = serde_json::json!([
            null, null, "", true, false, "y", "no", "on", 12, "-0o17", 15, 31, "0x-1", 1500.0, 0.5,
            "1_000", 755, "12", "12", "7", ".inf"
        ]);
        assert_eq!(Json::Array(got), expected);
        let (_, e) = read_stream("a: !!int x\n");
        assert!(e.is_some_and(|e| e.message.contains("is not a int")));
    }

    #[test]
    fn duplicate_keys_and_unknown_aliases_are_refused_with_their_line() {
        let (_, e) = read_stream("a: 1\nb: {c: 1,\n  c: 2}\n");
        assert_eq!(
            e,
            Some(YamlError {
                line: 3,
                message: "duplicate key `c`".into()
            })
        );
        let (_, e) = read_stream("a: 1\nb: *nothing\n");
        assert_eq!(e.map(|e| e.line), Some(2));
    }

    /// The tree is built without recursion: a document at the nesting bound reads on a small
    /// stack (a reader recursing through serde needs tens of KiB per level).
    #[test]
    fn reading_at_the_nesting_bound_needs_little_stack() {
        let text = format!("x: {}{}\n", "{a: [".repeat(15), "]}".repeat(15));
        let reader = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || read_stream(&text))
            .unwrap();
        let (nodes, error) = reader.join().unwrap();
        assert_eq!(error, None);
        assert_eq!(nodes.len(), 1);
    }

    #[test]
    fn syntax_errors_stop_the_reading_with_their_line() {
        let (nodes, error) = read_stream("a: 1\n---\nb: [x\n");
        assert_eq!(nodes.len(), 1);
        let error = error.unwrap();
        assert!(error.line >= 3, "{error:?}");
    }
}
