//! Limits on policy text, checked before, during and after the YAML reader so that no input can
//! make parsing slow or large. A linear pre-scan bounds the size, the document count and the
//! depth of flow collections (`[[[[...` or `{a: {a: ...`) before the reader sees the text (some
//! readers take time quadratic in that depth); the reader's own budget (see `yaml`) stops
//! nesting, node counts and alias expansion as it reads; the tree is checked for nesting depth
//! and key sizes after.

pub use super::yaml::MAX_DEPTH;
use super::yaml::{Node, Tree};

/// Largest policy text in one source (a ConfigMap data key or a file of documents). The API
/// server already keeps a ConfigMap under 1 MiB; files of documents may be larger (5,000 shares
/// take about 1.1 MiB), and the 3 MiB the API server accepts in one request fit too.
pub const MAX_SOURCE_BYTES: usize = 4 * 1024 * 1024;
/// Largest file of ConfigMap manifests read offline (several ConfigMaps in a `List`).
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// Most documents in one source.
pub const MAX_DOCUMENTS: usize = 10_000;
/// Longest mapping key (field, group or variable name).
pub const MAX_KEY_BYTES: usize = 1024;

/// A text that breaks a limit: the 1-based line where it did, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    pub line: usize,
    pub message: String,
}

/// Where the parser may be at a character. The pre-scan does not parse YAML: it keeps every
/// state the parser could be in, counts an opening bracket when one of them is plain structure
/// and a closing bracket only when all of them are. So the depth it finds is never lower than
/// the parser's, whatever the text.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct States {
    plain: bool,
    single: bool,
    double: bool,
    /// Inside a double-quoted scalar, right after a backslash.
    escape: bool,
    comment: bool,
}

impl States {
    const PLAIN: States = States {
        plain: true,
        single: false,
        double: false,
        escape: false,
        comment: false,
    };
}

/// What came before a character: the last non-blank byte, and blanks around it.
#[derive(Clone, Copy)]
struct Before {
    last: Option<u8>,
    blank_since: bool,
    blank_before_last: bool,
}

/// Whether a quote starts a quoted scalar when the parser is in plain structure: `Some(true)`
/// surely, `Some(false)` surely not (it continues a plain scalar; after a tag or an anchor the
/// parser refuses it), `None` when it depends on how the parser read the text before.
fn quote_starts(b: Before) -> Option<bool> {
    match b.last {
        None => Some(true),
        Some(b'[' | b'{' | b',' | b']' | b'}' | b'"' | b'\'') => Some(true),
        Some(b'-' | b'?') if b.blank_since && b.blank_before_last => Some(true),
        Some(b':') if b.blank_since => Some(true),
        Some(b':') => None,
        Some(_) if !b.blank_since => Some(false),
        Some(_) => None,
    }
}

/// Whether a `#` starts a comment when the parser is in plain structure (same convention): after
/// a blank always; right after a plain character never (`a#b` is text); right after a bracket,
/// a comma or a quote it depends on whether that character was a token or text.
fn comment_starts(b: Before) -> Option<bool> {
    match b.last {
        _ if b.blank_since => Some(true),
        None => Some(true),
        Some(b'[' | b'{' | b',' | b']' | b'}' | b'"' | b'\'') => None,
        Some(_) => Some(false),
    }
}

fn too_deep(line: usize) -> Exceeded {
    Exceeded {
        line,
        message: format!(
            "flow collections ([...] or {{...}}) nested more than {MAX_DEPTH} deep; policy needs only a few levels"
        ),
    }
}

/// Checks the size, the document count and the flow nesting depth of `text` in one pass, before
/// the parser sees it.
pub fn pre_scan(text: &str) -> Result<(), Exceeded> {
    if text.len() > MAX_SOURCE_BYTES {
        return Err(Exceeded {
            line: 1,
            message: format!(
                "the text is {} bytes, more than the {MAX_SOURCE_BYTES} a policy source may hold; split it into several ConfigMaps",
                text.len()
            ),
        });
    }
    let bytes = text.as_bytes();
    let start = Before {
        last: None,
        blank_since: true,
        blank_before_last: true,
    };
    let mut states = States::PLAIN;
    let mut before = start;
    let mut depth = 0usize;
    let mut documents = 0usize;
    let mut line = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        let at_line_start = i == 0 || bytes[i - 1] == b'\n';
        if at_line_start {
            if is_marker(&bytes[i..]) {
                // `---` and `...` end every flow collection and quoted scalar (or the parser
                // stops there with an error).
                documents += 1;
                if documents > MAX_DOCUMENTS {
                    return Err(Exceeded {
                        line,
                        message: format!(
                            "more than {MAX_DOCUMENTS} documents in one source; split it into several ConfigMaps"
                        ),
                    });
                }
                states = States::PLAIN;
                before = start;
                depth = 0;
                i += 3;
                continue;
            }
            // The lines of a block scalar are text to the parser, whatever they look like: after
            // one, it is back in plain structure.
            states.plain = true;
        }
        let c = bytes[i];
        i += 1;
        if c == b'\n' {
            line += 1;
            if states.comment {
                states.comment = false;
                states.plain = true;
            }
            if states.escape {
                states.escape = false;
                states.double = true;
            }
            before.blank_since = true;
            continue;
        }
        if c == b' ' || c == b'\t' || c == b'\r' {
            before.blank_since = true;
            if states.escape {
                states.escape = false;
                states.double = true;
            }
            continue;
        }
        let mut next = States {
            comment: states.comment,
            ..States::default()
        };
        if states.single {
            if c == b'\'' {
                // Closes, or is the first of an escaped pair (`''`): the second quote then
                // reopens from plain, as `quote_starts` says for a quote after a quote.
                next.plain = true;
            } else {
                next.single = true;
            }
        }
        if states.double {
            match c {
                b'\\' => next.escape = true,
                b'"' => next.plain = true,
                _ => next.double = true,
            }
        }
        if states.escape {
            next.double = true;
        }
        if states.plain {
            match c {
                b'#' => match comment_starts(before) {
                    Some(true) => next.comment = true,
                    Some(false) => next.plain = true,
                    None => {
                        next.comment = true;
                        next.plain = true;
                    }
                },
                b'\'' | b'"' => {
                    let starts = quote_starts(before);
                    if starts != Some(true) {
                        next.plain = true;
                    }
                    if starts != Some(false) {
                        if c == b'\'' {
                            next.single = true;
                        } else {
                            next.double = true;
                        }
                    }
                }
                _ => next.plain = true,
            }
        }
        if (c == b'[' || c == b'{') && states.plain {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(too_deep(line));
            }
        } else if (c == b']' || c == b'}') && states == States::PLAIN {
            depth = depth.saturating_sub(1);
        }
        before = Before {
            last: Some(c),
            blank_since: false,
            blank_before_last: before.blank_since,
        };
        states = next;
    }
    Ok(())
}

/// `---` or `...` at the start of a line, followed by a blank or the end.
fn is_marker(rest: &[u8]) -> bool {
    (rest.starts_with(b"---") || rest.starts_with(b"..."))
        && matches!(rest.get(3), None | Some(b' ' | b'\t' | b'\r' | b'\n'))
}

/// Checks a parsed document: nesting depth and key sizes, with the line of the node at fault.
/// Linear in the size of the tree.
pub fn check_tree(node: &Node) -> Result<(), Exceeded> {
    let mut stack: Vec<(&Node, usize)> = vec![(node, 1)];
    while let Some((n, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Node>> = match &n.value {
            Tree::Seq(items) => Box::new(items.iter()),
            Tree::Map(entries) => {
                for (key, _) in entries {
                    let Some(text) = key.as_key() else {
                        return Err(Exceeded {
                            line: key.line,
                            message: "a mapping key must be a plain value, not a list or a mapping"
                                .into(),
                        });
                    };
                    if text.len() > MAX_KEY_BYTES {
                        return Err(Exceeded {
                            line: key.line,
                            message: format!(
                                "a mapping key of {} bytes; keys may have at most {MAX_KEY_BYTES}",
                                text.len()
                            ),
                        });
                    }
                }
                Box::new(entries.iter().map(|(_, v)| v))
            }
            Tree::Scalar(_) => continue,
        };
        for child in children {
            if !matches!(child.value, Tree::Scalar(_)) {
                if depth + 1 > MAX_DEPTH {
                    return Err(Exceeded {
                        line: child.line,
                        message: format!(
                            "nested more than {MAX_DEPTH} levels deep; policy needs only a few levels"
                        ),
                    });
                }
                stack.push((child, depth + 1));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::yaml::{read_stream, read_stream_within};

    #[test]
    fn deep_flow_nesting_is_refused_before_parsing() {
        let deep = format!(
            "kind: Share\nx: {}{}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let e = pre_scan(&deep).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("nested more than 32"), "{}", e.message);
        let maps = format!("{}{}", "{a: ".repeat(40), "}".repeat(40));
        assert!(pre_scan(&maps).is_err());
    }

    #[test]
    fn ordinary_flow_style_policies_pass() {
        let shares = (0..500).map(|i| format!(
            "---\nkind: Share\nname: s{i}\nclaimName: \"c{i}\"\nmountPath: '/d/{i}'\nlevel: private\nreaders: {{groups: [\"a\", 'b'], users: [x]}} # it's [fine\nwriters: {{users: [it's, \"q\\\"]\"]}}\n"
        ));
        // Many flow collections with quotes in one document.
        let groups = (0..300)
            .map(|i| format!("  \"g{i}\": [\"a\", 'b', c] # it's {{x\n  h{i}: {{k: 'v'}}\n"));
        for text in [
            shares.collect::<String>(),
            format!("kind: Groups\ngroups:\n{}", groups.collect::<String>()),
        ] {
            assert_eq!(pre_scan(&text), Ok(()));
        }
    }

    #[test]
    fn closing_brackets_in_quotes_and_comments_do_not_hide_depth() {
        for hide in ["\"]\"", "']'", "'a'']'", "\"\\\"]\"", "# ]\n"] {
            let unit = format!("[{hide}, ");
            let text = format!("x: {}", unit.repeat(40));
            assert!(pre_scan(&text).is_err(), "{hide}");
        }
        // A quote inside a plain scalar is not a quoted scalar; a later real one must not pair
        // up with it.
        let text = format!("x: {}", "[a' , [']]]]' , ".repeat(40));
        assert!(pre_scan(&text).is_err());
        // After a blank inside a plain scalar the quote is ambiguous: both readings are kept.
        let text = format!("x: {}", "[a 'b ]' , ".repeat(40));
        assert!(pre_scan(&text).is_err());
    }

    /// Whatever the text, when the pre-scan lets it through, the reader never finds it nested too
    /// deep: the pre-scan's depth is never lower than the reader's.
    #[test]
    fn the_pre_scan_never_underestimates_the_parser_on_random_text() {
        const TOKENS: &[&str] = &[
            "[", "[", "[", "{", "{", "]", "}", "'", "\"", "#", ",", ": ", " ", "\n", "a", "- ",
            "\\", "''", "\n---\n", "|\n", "? ", ":", "!t ", "!t]", "!t[", "\t", "  ",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut passed = 0;
        for _ in 0..5_000 {
            let len = 150 + (next() % 400) as usize;
            let text: String = (0..len)
                .map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize])
                .collect();
            if pre_scan(&text).is_ok() {
                passed += 1;
                if let (_, Some(e)) = read_stream(&text) {
                    assert!(!e.message.contains("nested more than"), "{text:?}: {e:?}");
                }
            }
        }
        assert!(passed > 100, "only {passed} texts passed the pre-scan");
    }

    /// Nesting depth of a parsed tree.
    fn depth_of(n: &Node) -> usize {
        match &n.value {
            Tree::Seq(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
            Tree::Map(entries) => 1 + entries.iter().map(|(_, v)| depth_of(v)).max().unwrap_or(0),
            Tree::Scalar(_) => 0,
        }
    }

    /// Valid flow YAML, nested up to 48 deep, whose scalars and comments hold brackets and
    /// quotes: whenever the pre-scan lets a text through, the parser's depth is at most 32.
    #[test]
    fn the_pre_scan_never_underestimates_flow_depth() {
        const SCALARS: &[&str] = &[
            "a",
            "a'b",
            "a 'b c'",
            "'x]]'",
            "'it''s ]'",
            "\"q\\\"]\"",
            "\"#]\"",
            "a#b",
            "!t x",
            "!t 'y]'",
            "\"multi\n line ]\"",
            "'multi\n ]line'",
            "a - 'b'",
            "-a",
        ];
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        fn node(
            out: &mut String,
            depth: usize,
            target: usize,
            rand: &mut dyn FnMut(usize) -> usize,
        ) {
            if depth >= target {
                out.push_str(SCALARS[rand(SCALARS.len())]);
                return;
            }
            let map = rand(2) == 0;
            out.push(if map { '{' } else { '[' });
            let items = 1 + rand(3);
            let deep = rand(items);
            for i in 0..items {
                if i > 0 {
                    out.push_str(if rand(4) == 0 { ", # ] }\n  " } else { ", " });
                }
                if map {
                    out.push_str(&format!("k{i}: "));
                }
                if i == deep {
                    node(out, depth + 1, target, rand);
                } else {
                    out.push_str(SCALARS[rand(SCALARS.len())]);
                }
            }
            out.push(if map { '}' } else { ']' });
        }
        let (mut parsed, mut refused) = (0, 0);
        for _ in 0..3_000 {
            let target = 20 + rand(29);
            let mut text = String::from("x: ");
            node(&mut text, 0, target, &mut rand);
            // Read without the nesting bound, to see the real depth.
            let (nodes, None) = read_stream_within(&text, usize::MAX) else {
                continue;
            };
            let Some(value) = nodes.into_iter().next() else {
                continue;
            };
            parsed += 1;
            let depth = depth_of(&value) - 1;
            if pre_scan(&text).is_ok() {
                assert!(depth <= MAX_DEPTH, "depth {depth} passed: {text}");
            } else {
                refused += 1;
            }
        }
        assert!(
            parsed > 1_000 && refused > 100 && refused < parsed,
            "{parsed} {refused}"
        );
    }

    #[test]
    fn document_count_is_capped() {
        let text = "---\nkind: Groups\ngroups: {}\n".repeat(MAX_DOCUMENTS + 1);
        let e = pre_scan(&text).unwrap_err();
        assert!(e.message.contains("documents"), "{}", e.message);
    }

    #[test]
    fn source_size_is_capped() {
        let text = format!("# {}\n", "x".repeat(MAX_SOURCE_BYTES));
        assert!(pre_scan(&text).unwrap_err().message.contains("bytes"));
    }

    #[test]
    fn block_nesting_and_key_size_are_capped_after_parsing() {
        let nested = |levels: usize| {
            let mut text = String::new();
            for i in 0..levels {
                text.push_str(&" ".repeat(i));
                text.push_str("a:\n");
            }
            text
        };
        // The reader stops a text nested deeper as it reads, at the level too many.
        let (_, e) = read_stream(&nested(1_000));
        let e = e.expect("refused");
        assert!(e.message.contains("32 levels"), "{e:?}");
        assert_eq!(e.line, 33);
        let mut text = nested(32);
        text.push_str(&" ".repeat(32));
        text.push_str("- x\n");
        assert_eq!(read_stream(&text).1.map(|e| e.line), Some(33));
        // The tree is checked too (a tree read without the bound here).
        let tree = |text: &str| read_stream_within(text, usize::MAX).0.remove(0);
        let e = check_tree(&tree(&text)).unwrap_err();
        assert!(e.message.contains("32 levels"), "{e:?}");
        assert_eq!(e.line, 33);
        let e = check_tree(&tree(&format!("? {}\n: 1\n", "k".repeat(2000)))).unwrap_err();
        assert!(e.message.contains("at most 1024"), "{e:?}");
        assert_eq!(check_tree(&tree("groups: {a: [b, c]}\n")), Ok(()));
    }
}
