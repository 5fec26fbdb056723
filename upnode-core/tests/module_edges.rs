//! The modules of `upnode-core` depend on each other one way only.
//!
//! Reads every source file, collects each module's references to its siblings (`use
//! crate::…`, `use super::…` and paths such as `crate::config::X` in code, comments and
//! test modules left out) and fails if the edges among the children of any one module form
//! a cycle. `cargo test -p upnode-core --test module_edges -- --nocapture` prints the edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path from the crate root, e.g. `["link", "client"]`.
type ModPath = Vec<String>;

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            source_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/link/client.rs` → `link::client`; `src/config/mod.rs` → `config`; `src/lib.rs` → root.
fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: ModPath = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its `#[cfg(test)]` module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `path` names a module (a file or a directory under `src`).
fn is_module(src: &Path, path: &[String]) -> bool {
    let mut p = src.to_path_buf();
    for s in path {
        p.push(s);
    }
    p.with_extension("rs").is_file() || p.join("mod.rs").is_file()
}

/// The longest prefix of `path` that is a module.
fn resolve(src: &Path, path: &[String]) -> ModPath {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| is_module(src, p))
        .unwrap_or_default()
}

/// The module paths a piece of code refers to, relative to `here`.
fn references(src: &Path, here: &ModPath, code: &str) -> BTreeSet<ModPath> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    for (start, prefix) in code
        .match_indices("crate::")
        .map(|(i, _)| (i, "crate"))
        .chain(code.match_indices("super::").map(|(i, _)| (i, "super")))
    {
        // `upnode_core::crate` never occurs; skip `foo_crate::` and `self::super::`.
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let mut base: ModPath = match prefix {
            "crate" => Vec::new(),
            _ => here[..here.len().saturating_sub(1)].to_vec(),
        };
        let rest = &code[start + prefix.len() + 2..];
        let mut segments = Vec::new();
        let mut rest = rest;
        loop {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            segments.push(rest[..end].to_owned());
            if rest[end..].starts_with("::") {
                rest = &rest[end + 2..];
            } else {
                break;
            }
        }
        match rest.trim_start().chars().next() {
            // `use super::{a, b}` / `use crate::x::{a, b}`: each item may be a module.
            Some('{') if rest.starts_with('{') => {
                let inner = &rest[1..rest.find('}').unwrap_or(rest.len())];
                base.extend(segments);
                for item in inner.split(',') {
                    let item: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if item.is_empty() {
                        continue;
                    }
                    let mut p = base.clone();
                    p.push(item);
                    out.insert(resolve(src, &p));
                }
            }
            _ => {
                base.extend(segments);
                out.insert(resolve(src, &base));
            }
        }
    }
    out
}

/// Edges between the children of each module: `(parent, from, to)`.
fn edges(src: &Path) -> BTreeSet<(ModPath, String, String)> {
    let mut files = Vec::new();
    source_files(src, &mut files);
    let mut out = BTreeSet::new();
    for file in files {
        let here = module_of(src, &file);
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for target in references(src, &here, &code) {
            let common = here.iter().zip(&target).take_while(|(a, b)| a == b).count();
            // A reference to an ancestor (its `mod.rs` items) or a descendant is not an
            // edge between siblings.
            if common == here.len() || common == target.len() {
                continue;
            }
            out.insert((
                here[..common].to_vec(),
                here[common].clone(),
                target[common].clone(),
            ));
        }
    }
    out
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_owned());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn modules_depend_on_each_other_one_way_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = edges(&src);
    let mut by_parent: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (parent, from, to) in &edges {
        let name = if parent.is_empty() {
            "crate".to_owned()
        } else {
            parent.join("::")
        };
        println!("{name}: {from} -> {to}");
        by_parent
            .entry(parent.clone())
            .or_default()
            .entry(from.clone())
            .or_default()
            .insert(to.clone());
    }
    for (parent, graph) in &by_parent {
        if let Some(cycle) = find_cycle(graph) {
            panic!(
                "import cycle among the children of `{}`: {}",
                parent.join("::"),
                cycle.join(" -> ")
            );
        }
    }
    // The layering the crate documents: config is a leaf; protocol sits below session,
    // session below link.
    let top = &by_parent[&Vec::new()];
    assert!(
        !top.contains_key("config"),
        "config imports {:?}",
        top.get("config")
    );
    for (lower, upper) in [
        ("protocol", "session"),
        ("protocol", "link"),
        ("session", "link"),
    ] {
        assert!(
            !top.get(lower).is_some_and(|t| t.contains(upper)),
            "{lower} imports {upper}"
        );
    }
}

#[test]
fn a_planted_cycle_is_found() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
