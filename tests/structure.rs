//! The shape of `src/`: no two files import each other (directly or around a loop), and the core
//! (`policy`, `admission`, `cluster`, `certs`) never imports the edges (`server`, `cli`).
//!
//! The graph has one node per source file and one arrow per `crate::`/`super::` path a file names
//! outside its `#[cfg(test)]` part. A path into a module's `mod.rs` that names an item the module
//! re-exports (`pub use child::Item`) points at the child that defines it, so a facade is not a
//! loop. `cargo test --test structure -- --nocapture` prints every arrow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules of the core, which may not import an edge.
const CORE: [&str; 4] = ["policy", "admission", "cluster", "certs"];
/// The edges: they call the core, never the reverse.
const EDGES: [&str; 2] = ["server", "cli"];

/// A module path (`["admission", "review"]`; the crate root is empty) for each source file.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("main.rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// The file's code without comments and without its test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("source is readable");
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands `a::{b, c::{d, e}}` at the start of `s` into full paths.
fn expand(prefix: &[String], s: &str, out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    let mut rest = s.trim_start();
    loop {
        if let Some(inner) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        expand(&path, &inner[start..i], out);
                        start = i + 1;
                        if c == '}' {
                            return;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            return;
        }
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        path.push(rest[..end].to_string());
        rest = &rest[end..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r.trim_start(),
            None => break,
        }
    }
    out.push(path);
}

/// Every module path a file names, made absolute.
fn paths(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            if code[..at].chars().next_back().is_some_and(is_ident) {
                continue;
            }
            if start == "super::" && code[..at].ends_with("super::") {
                continue;
            }
            // The module the path starts from.
            // `self` is the file's module; `super` its parent (for a mod.rs too).
            let mut base: Vec<String> = match start {
                "crate::" => Vec::new(),
                _ => module.to_vec(),
            };
            if start == "super::" {
                base.pop();
            }
            let mut rest = &code[from..];
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            expand(&base, rest, &mut out);
        }
    }
    out
}

/// Paths a `mod.rs` names through its own children without `self::` (`audit::run`).
fn child_paths(
    module: &[String],
    mods: &BTreeMap<Vec<String>, PathBuf>,
    code: &str,
) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for child in mods.keys() {
        if child.len() != module.len() + 1 || !child.starts_with(module) {
            continue;
        }
        let token = format!("{}::", child[module.len()]);
        let mut from = 0;
        while let Some(at) = code[from..].find(&token) {
            let at = from + at;
            from = at + token.len();
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            expand(child, &code[from..], &mut out);
        }
    }
    out
}

/// Items a `mod.rs` re-exports from its children: item name -> child module.
fn reexports(code: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        let Some(body) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let mut found = Vec::new();
        expand(&[], body, &mut found);
        for p in found {
            if p.len() >= 2 && !["crate", "super", "self"].contains(&p[0].as_str()) {
                let item = p.last().expect("non-empty").clone();
                out.insert(item, p[0].clone());
            }
        }
    }
    out
}

/// The file a path leads to: the longest module prefix, through re-exports of a directory module.
fn target(
    mods: &BTreeMap<Vec<String>, PathBuf>,
    exports: &BTreeMap<Vec<String>, BTreeMap<String, String>>,
    path: &[String],
) -> Option<Vec<String>> {
    let mut len = path.len();
    while len > 0 && !mods.contains_key(&path[..len]) {
        len -= 1;
    }
    let mut module = path[..len].to_vec();
    if let Some(item) = path.get(len)
        && let Some(child) = exports.get(&module).and_then(|e| e.get(item))
    {
        module.push(child.clone());
        if !mods.contains_key(&module) {
            return None;
        }
    }
    Some(module)
}

type Graph = BTreeMap<Vec<String>, BTreeSet<Vec<String>>>;

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let codes: BTreeMap<Vec<String>, String> =
        mods.iter().map(|(m, p)| (m.clone(), code(p))).collect();
    let is_dir = |m: &Vec<String>| {
        let p = &mods[m];
        p.ends_with("mod.rs") || p.ends_with("lib.rs")
    };
    let exports: BTreeMap<Vec<String>, BTreeMap<String, String>> = codes
        .iter()
        .filter(|(m, _)| is_dir(m))
        .map(|(m, c)| (m.clone(), reexports(c)))
        .collect();
    let mut graph = Graph::new();
    for (module, code) in &codes {
        let mut own = code.clone();
        if is_dir(module) {
            // A facade's own re-exports are not imports of it.
            own = own
                .split(';')
                .filter(|s| !s.trim().starts_with("pub use ") && !s.trim().starts_with("pub mod "))
                .collect::<Vec<_>>()
                .join(";");
        }
        let mut arrows = BTreeSet::new();
        let mut named = paths(module, &own);
        if is_dir(module) {
            named.extend(child_paths(module, &mods, &own));
        }
        for path in named {
            if let Some(to) = target(&mods, &exports, &path)
                && &to != module
                && !to.is_empty()
            {
                arrows.insert(to);
            }
        }
        graph.insert(module.clone(), arrows);
    }
    graph
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// Strongly connected components of more than one file (Tarjan).
fn loops(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g Vec<String>, usize>,
        low: BTreeMap<&'g Vec<String>, usize>,
        stack: Vec<&'g Vec<String>>,
        on_stack: BTreeSet<&'g Vec<String>>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g Vec<String>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            if !s.graph.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(name(w));
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn the_graph_sees_the_known_arrows() {
    let graph = graph();
    for (from, arrows) in &graph {
        for to in arrows {
            println!("{} -> {}", name(from), name(to));
        }
    }
    // The check is only as good as its parser: these arrows exist and must be found.
    let arrow = |from: &str, to: &str| {
        let split = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
        graph
            .get(&split(from))
            .is_some_and(|a| a.contains(&split(to)))
    };
    assert!(arrow("server::app", "admission::review"));
    assert!(arrow("admission::guard", "policy::snapshot"));
    assert!(arrow("cli::certs", "certs"));
    assert!(arrow("cli", "cli::audit"));
}

#[test]
fn no_file_imports_another_that_imports_it_back() {
    let loops = loops(&graph());
    assert!(loops.is_empty(), "import loops between files: {loops:?}");
}

#[test]
fn the_core_never_imports_the_edges() {
    let mut upward = Vec::new();
    for (from, arrows) in graph() {
        if !from.first().is_some_and(|m| CORE.contains(&m.as_str())) {
            continue;
        }
        for to in arrows {
            if to.first().is_some_and(|m| EDGES.contains(&m.as_str())) {
                upward.push(format!("{} -> {}", name(&from), name(&to)));
            }
        }
    }
    assert!(upward.is_empty(), "the core imports the edges: {upward:?}");
}
