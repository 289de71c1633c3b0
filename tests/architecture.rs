//! The module graph: which top-level modules of `src/` refer to which, read from the source.
//! Fails when dependencies form a cycle (naming it) or when a module reaches one it must not
//! (see the README's Architecture section for the direction).
//!
//! A reference is a path from the crate root: `crate::X` (the library's files; in the binary's
//! files `crate::cli` is its own), `cutover::X` (the binary's files), grouped and nested
//! (`use crate::{a::b, c::{d, e}}`), and `super::` chains that climb to the root. Comments are
//! ignored. `#[cfg(test)]` modules count like any other code: a test that needs another module
//! belongs in `tests/`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// `from` must not refer to any of these (a module, or `module::submodule`).
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "engine",
        &[
            "local",
            "tui",
            "cli",
            "describe",
            "analytics",
            "demo_service",
            "load",
            "platform",
            "provider::simulated",
        ],
    ),
    ("store", &["governance", "engine"]),
    ("spec", &["engine"]),
    ("plan", &["engine"]),
    ("provider", &["engine"]),
    ("verify", &["engine", "local", "platform"]),
    ("governance", &["engine"]),
    ("analysis", &["engine"]),
];

/// One reference: from a top-level module, to a path's first two segments, in a file.
#[derive(Debug, Clone)]
struct Ref {
    from: String,
    to: String,
    sub: Option<String>,
    file: String,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules: `src/X.rs` and `src/X/`, with the binary (`main.rs`, `cli/`) as `cli`.
fn top_level() -> BTreeSet<String> {
    let mut mods = BTreeSet::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.is_dir() || p.extension().is_some_and(|e| e == "rs") {
            mods.insert(name);
        }
    }
    mods.remove("lib");
    mods.remove("main");
    mods.insert("cli".into());
    mods
}

/// The module path of a file under `src/` (`engine/mod.rs` is `[engine]`, `main.rs` is `[cli]`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    if parts == ["main"] {
        parts = vec!["cli".into()];
    }
    parts
}

/// The text without comments (line, doc and block comments), string literals (plain and raw)
/// and character literals.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let after_ident = i > 0 && is_ident(b[i - 1]);
        if b[i] == b'r' && !after_ident && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) {
            // A raw string: r"...", r#"..."#, ...
            let mut j = i + 1;
            while b.get(j) == Some(&b'#') {
                j += 1;
            }
            if b.get(j) == Some(&b'"') {
                let hashes = j - i - 1;
                let mut end = b"\"".to_vec();
                end.extend(std::iter::repeat_n(b'#', hashes));
                let body = j + 1;
                i = b[body..]
                    .windows(end.len())
                    .position(|w| w == end.as_slice())
                    .map_or(b.len(), |p| body + p + end.len());
                out.push(' ');
                continue;
            }
            out.push('r');
            i += 1;
        } else if b[i] == b'\'' {
            // A character literal ('x', '\n', '\'', '"'); a lifetime is copied as it is.
            if b.get(i + 1) == Some(&b'\\') {
                let mut j = i + 3;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                i = j + 1;
            } else if b.get(i + 2) == Some(&b'\'') {
                i += 3;
            } else {
                out.push('\'');
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            // Copy one UTF-8 character.
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Parse a use-tree at `i`: the paths it names (each cut to its first two segments) and where
/// it ends.
fn tree(b: &[u8], i: usize) -> (Vec<Vec<String>>, usize) {
    let mut i = skip_ws(b, i);
    if b.get(i) == Some(&b'{') {
        let mut out = Vec::new();
        i += 1;
        loop {
            i = skip_ws(b, i);
            match b.get(i) {
                None => return (out, i),
                Some(b'}') => return (out, i + 1),
                Some(b',') => i += 1,
                _ => {
                    let (paths, j) = tree(b, i);
                    out.extend(paths);
                    // Skip what follows an item (`as Name`) up to its separator.
                    let mut k = j;
                    while k < b.len() && b[k] != b',' && b[k] != b'}' {
                        k += 1;
                    }
                    i = if k == j && j == i { i + 1 } else { k };
                }
            }
        }
    }
    let start = i;
    while i < b.len() && is_ident(b[i]) {
        i += 1;
    }
    if start == i {
        return (Vec::new(), i);
    }
    let name = String::from_utf8_lossy(&b[start..i]).to_string();
    if b.get(i) == Some(&b':') && b.get(i + 1) == Some(&b':') {
        let (rest, j) = tree(b, i + 2);
        let mut out: Vec<Vec<String>> = rest
            .into_iter()
            .map(|mut p| {
                p.insert(0, name.clone());
                p.truncate(2);
                p
            })
            .collect();
        if out.is_empty() {
            out.push(vec![name]);
        }
        return (out, j);
    }
    (vec![vec![name]], i)
}

/// The crate-root paths a file names: after `crate::`/`cutover::` (per `roots`), and after
/// `super::` chains that climb `depth` levels to the root.
fn paths_in(text: &str, roots: &[&str], depth: usize) -> Vec<(String, Vec<String>)> {
    let s = strip(text);
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b':') {
            i += 1;
            continue;
        }
        let rest = &b[i..];
        if let Some(root) = roots
            .iter()
            .find(|r| rest.starts_with(format!("{r}::").as_bytes()))
        {
            let (paths, j) = tree(b, i + root.len() + 2);
            out.extend(paths.into_iter().map(|p| (root.to_string(), p)));
            i = j.max(i + 1);
            continue;
        }
        if rest.starts_with(b"super::") {
            let mut n = 0;
            let mut j = i;
            while b[j..].starts_with(b"super::") {
                n += 1;
                j += "super::".len();
            }
            if depth > 0 && n >= depth {
                let (paths, k) = tree(b, j);
                out.extend(paths.into_iter().map(|p| ("super".to_string(), p)));
                i = k.max(i + 1);
                continue;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

fn references() -> Vec<Ref> {
    let mods = top_level();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut refs = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src()).unwrap().to_path_buf();
        let path = module_path(&rel);
        let from = path[0].clone();
        if from == "lib" {
            continue;
        }
        let binary = from == "cli";
        let roots: &[&str] = if binary {
            &["crate", "cutover"]
        } else {
            &["crate"]
        };
        let text = std::fs::read_to_string(&f).unwrap();
        for (root, p) in paths_in(&text, roots, path.len()) {
            // In the binary, `crate::` is the binary itself: only `crate::cli` is a module of it.
            if binary && root == "crate" && p[0] != "cli" {
                continue;
            }
            let to = p[0].clone();
            if to == from || !mods.contains(&to) {
                continue;
            }
            refs.push(Ref {
                from: from.clone(),
                to,
                sub: p.get(1).cloned(),
                file: rel.display().to_string(),
            });
        }
    }
    refs
}

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// from -> to -> the files that make the edge.
fn graph(refs: &[Ref]) -> Graph {
    let mut g: Graph = BTreeMap::new();
    for r in refs {
        g.entry(r.from.clone())
            .or_default()
            .entry(r.to.clone())
            .or_default()
            .insert(r.file.clone());
    }
    g
}

fn show(g: &Graph) -> String {
    g.iter()
        .map(|(from, tos)| {
            let tos: Vec<&str> = tos.keys().map(String::as_str).collect();
            format!("  {from} -> {}", tos.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A shortest path from `a` to `b` over the graph's edges, if any.
fn path(g: &Graph, a: &str, b: &str) -> Option<Vec<String>> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([a.to_string()]);
    let mut seen = BTreeSet::from([a.to_string()]);
    while let Some(n) = queue.pop_front() {
        let nexts: Vec<String> = g
            .get(&n)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        for next in nexts {
            if next == b {
                let mut p = vec![b.to_string(), n.clone()];
                let mut cur = n.clone();
                while let Some(before) = prev.get(&cur) {
                    p.push(before.clone());
                    cur = before.clone();
                }
                p.reverse();
                return Some(p);
            }
            if seen.insert(next.clone()) {
                prev.insert(next.clone(), n.clone());
                queue.push_back(next);
            }
        }
    }
    None
}

/// The strongly connected components with more than one module (each a cycle), each named by
/// one cycle through it with the files that make each edge.
fn cycles(g: &Graph) -> Vec<String> {
    let nodes: BTreeSet<String> = g
        .iter()
        .flat_map(|(f, t)| std::iter::once(f.clone()).chain(t.keys().cloned()))
        .collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(n) {
            continue;
        }
        let component: BTreeSet<String> = nodes
            .iter()
            .filter(|m| *m == n || (path(g, n, m).is_some() && path(g, m, n).is_some()))
            .cloned()
            .collect();
        done.extend(component.iter().cloned());
        if component.len() < 2 {
            continue;
        }
        let other = component.iter().find(|m| *m != n).unwrap();
        let mut cycle = path(g, n, other).unwrap();
        cycle.extend(path(g, other, n).unwrap().into_iter().skip(1));
        let edges: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                let files: Vec<&str> = g[&w[0]][&w[1]].iter().map(String::as_str).collect();
                format!("{} -> {} ({})", w[0], w[1], files.join(", "))
            })
            .collect();
        out.push(format!(
            "cycle among {{{}}}: {}",
            component.into_iter().collect::<Vec<_>>().join(", "),
            edges.join("; ")
        ));
    }
    out
}

#[test]
fn the_reader_sees_grouped_nested_and_climbing_paths() {
    let text = "use crate::{engine::{Event, signals::x}, store::{self, Store}};
        // use crate::tui::Ignored;
        /* crate::cli::Ignored */
        let s = \"crate::describe::Ignored\";
        fn f() -> crate::plan::Plan { super::super::spec::x() }
        use crate::{
            verify as v,
            analysis,
        };
        let q = '\"'; let r = r#\"crate::tui::Ignored \"quoted\"\"#; let l: &'static str = \"\";
        fn g() -> crate::load::X {}";
    let got: Vec<Vec<String>> = paths_in(text, &["crate"], 2)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let want: Vec<Vec<String>> = [
        vec!["engine", "Event"],
        vec!["engine", "signals"],
        vec!["store", "self"],
        vec!["store", "Store"],
        vec!["plan", "Plan"],
        vec!["spec", "x"],
        vec!["verify"],
        vec!["analysis"],
        vec!["load", "X"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(got, want);
    // One `super::` from engine/notify.rs stays in the engine.
    assert!(paths_in("use super::event::Event;", &["crate"], 2).is_empty());
    let g = graph(&[
        Ref {
            from: "a".into(),
            to: "b".into(),
            sub: None,
            file: "a.rs".into(),
        },
        Ref {
            from: "b".into(),
            to: "a".into(),
            sub: None,
            file: "b.rs".into(),
        },
    ]);
    assert_eq!(
        cycles(&g),
        vec!["cycle among {a, b}: a -> b (a.rs); b -> a (b.rs)".to_string()]
    );
}

#[test]
fn modules_depend_one_way_without_cycles() {
    let refs = references();
    let all = graph(&refs);
    // The reader works: these edges are there.
    for (from, to) in [("engine", "store"), ("cli", "engine"), ("tui", "engine")] {
        assert!(
            all.get(from).is_some_and(|t| t.contains_key(to)),
            "{from} -> {to} expected in\n{}",
            show(&all)
        );
    }
    let mut problems = cycles(&all);
    for (from, banned) in FORBIDDEN {
        for r in refs.iter().filter(|r| r.from == *from) {
            let full = r.sub.as_ref().map(|s| format!("{}::{s}", r.to));
            if banned
                .iter()
                .any(|b| *b == r.to || Some(*b) == full.as_deref())
            {
                problems.push(format!(
                    "{from} must not refer to {} ({})",
                    full.as_deref().unwrap_or(&r.to),
                    r.file
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{}\n\nthe module graph:\n{}",
        problems.join("\n"),
        show(&all)
    );
}
