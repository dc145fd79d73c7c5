//! YAML read into a tree that keeps the line of every node, through serde-saphyr (a maintained,
//! panic-free reader with budgets). Findings name the line of the very key or item at fault, in
//! block and flow style alike; typed documents are deserialised from the tree, and every shape
//! error of a document is collected, not only the first.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use serde_saphyr::Spanned;

use super::bounds;

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

impl<'de> de::Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Tree>::deserialize(deserializer)?;
        Ok(Node {
            line: usize::try_from(spanned.referenced.line()).unwrap_or(usize::MAX),
            value: spanned.value,
        })
    }
}

impl<'de> de::Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Scalar(Json::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Scalar(Json::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Scalar(Json::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Tree, E> {
        i64::try_from(v)
            .map(|v| Tree::Scalar(Json::from(v)))
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Tree, E> {
        u64::try_from(v)
            .map(|v| Tree::Scalar(Json::from(v)))
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tree, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Tree::Scalar(Json::Number(n)))
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Scalar(Json::String(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::Scalar(Json::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar(Json::Null))
    }

    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar(Json::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Node, Node>()? {
            entries.push((k, v));
        }
        Ok(Tree::Map(entries))
    }
}

/// The reader's settings: the core schema of YAML 1.2 for untyped scalars, and its own budget set to the policy bounds, so that nesting, documents,
/// nodes and alias expansion are refused as they are read, never after.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(bounds::MAX_SOURCE_BYTES),
            max_depth: bounds::MAX_DEPTH + 1,
            flow_nesting_limit: bounds::MAX_DEPTH + 1,
            max_documents: bounds::MAX_DOCUMENTS + 1,
            max_nodes: bounds::MAX_NODES,
            max_events: 2 * bounds::MAX_NODES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: bounds::MAX_ALIAS_EVENTS,
        },
        // YAML 1.2's core schema, as the Kubernetes API reads it: `y`, `no` and `on` are
        // strings, `1_000` too.
        strict_booleans: true,
        underscored_numbers_as_strings: true,
        with_snippet: false,
    }
}

/// Every document of `text` in order (empty and null documents are left out), and the error the
/// reader stopped at, if any. Reading stops at a syntax error, as every YAML tool does.
pub fn read_stream(text: &str) -> (Vec<Node>, Option<YamlError>) {
    let mut bytes = text.as_bytes();
    let mut nodes = Vec::new();
    let last_line = text.lines().count().max(1);
    for document in serde_saphyr::read_with_options::<_, Node>(&mut bytes, options()) {
        match document {
            Ok(node) => nodes.push(node),
            Err(e) => {
                // An error at the end of input is reported on the last line.
                let line = e
                    .location()
                    .map_or(1, |l| usize::try_from(l.line()).unwrap_or(usize::MAX))
                    .clamp(1, last_line);
                return (
                    nodes,
                    Some(YamlError {
                        line,
                        message: strip_location(&e.without_snippet().to_string()),
                    }),
                );
            }
        }
    }
    (nodes, None)
}

/// Reads one document (a pod or claim manifest) into a type, with the reader's error text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| e.to_string())
}

/// Each document of a stream into a type, with the reader's error text.
pub fn from_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, String> {
    serde_saphyr::from_multiple_with_options(text, options()).map_err(|e| e.to_string())
}

/// The reader appends " at line L, column C"; findings carry their own line.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
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
    fn syntax_errors_stop_the_reading_with_their_line() {
        let (nodes, error) = read_stream("a: 1\n---\nb: [x\n");
        assert_eq!(nodes.len(), 1);
        let error = error.unwrap();
        assert!(error.line >= 3, "{error:?}");
    }
}
