//! The architecture, checked: every `use crate::…` (and `super::…` that leaves its layer)
//! follows the table of allowed edges, and README's codemap names every folder and only files
//! that exist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Modules every layer may use; they use none of the crate themselves.
const SHARED: &[&str] = &["config", "error", "metrics"];

/// Each layer and the layers it may import from. Anything else is an upward or sideways edge.
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("store", &["model"]),
    ("domain", &["model", "store"]),
    ("api", &["model", "domain"]),
    ("delivery", &["model", "store", "domain", "api"]),
    ("net", &["model", "api", "delivery"]),
];

/// The crate's root files, which wire the layers together and may use any of them.
const ROOTS: &[&str] = &["lib", "main", "layers"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file: `src/net/ws/session.rs` is `net::ws::session`.
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).expect("under src");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The identifier at the start of `text`.
fn ident(text: &str) -> String {
    text.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// The crate-level modules a path after `crate::` names: one, or each item of a `{…}` group.
fn crate_items(path: &str, found: &mut Vec<String>) {
    let Some(group) = path.strip_prefix('{') else {
        found.push(ident(path));
        return;
    };
    let (mut depth, mut start) = (0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                found.push(ident(&group[start..i]));
                return;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                found.push(ident(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
}

/// The first crate-level module each path in `code` reaches: `crate::a::…`, or `super::…`
/// resolved from the file's `module` path. Comment lines are skipped: doc links are not imports.
fn targets(code: &str, module: &[String]) -> Vec<String> {
    let code: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = [rest.find("crate::"), rest.find("super::")].into_iter().flatten().min() {
        let tail = &rest[at..];
        if let Some(path) = tail.strip_prefix("crate::") {
            crate_items(path, &mut found);
        } else {
            let mut base = module.to_vec();
            let mut path = tail;
            while let Some(after) = path.strip_prefix("super::") {
                base.pop();
                path = after;
            }
            match base.first() {
                Some(layer) => found.push(layer.clone()),
                None => crate_items(path, &mut found),
            }
        }
        rest = &tail[tail.find("::").map_or(tail.len(), |i| i + 2)..];
    }
    found.into_iter().filter(|f| !f.is_empty()).collect()
}

#[test]
fn imports_point_down_the_layers() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let module = module_of(file);
        let layer = module.first().cloned().unwrap_or_default();
        if ROOTS.contains(&layer.as_str()) {
            continue;
        }
        let code = std::fs::read_to_string(file).expect("reading a source file");
        let allowed: &[&str] = if SHARED.contains(&layer.as_str()) {
            &[]
        } else {
            ALLOWED.iter().find(|(l, _)| *l == layer).map(|(_, a)| *a).unwrap_or_else(|| {
                panic!("{} is in no layer: add its folder to ALLOWED or its module to SHARED", file.display())
            })
        };
        for target in targets(&code, &module) {
            let fine = target == layer
                || allowed.contains(&target.as_str())
                || (SHARED.contains(&target.as_str()) && !SHARED.contains(&layer.as_str()));
            if !fine {
                violations.push(format!("{}: `{layer}` imports `{target}`", file.display()));
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert!(violations.is_empty(), "imports that break the layer rule:\n{}", violations.join("\n"));
}

#[test]
fn the_import_scanner_reads_every_form() {
    let module = vec!["net".to_owned(), "ws".to_owned(), "session".to_owned()];
    let code = "use crate::api::frame::{self, Format};\nuse crate::{delivery::Gateway, model::UserId};\n\
                use super::super::App;\nlet x = crate::now_ms();\n// use crate::store::Store;";
    let found: BTreeSet<String> = targets(code, &module).into_iter().collect();
    let want: BTreeSet<String> = ["api", "delivery", "model", "net", "now_ms"].map(String::from).into();
    assert_eq!(found, want);
    assert_eq!(targets("use super::config::Config;", &["api".to_owned()]), ["config"]);
    assert_eq!(targets("use super::frame::Format;", &["api".to_owned(), "users".to_owned()]), ["api"]);
    assert_eq!(targets("use crate::{\n    api::Api,\n    store::{Store, sql},\n};", &[]), ["api", "store"]);
}

/// README's codemap table: one row per folder of `src/` (and per shared file), naming files
/// that exist.
#[test]
fn the_codemap_matches_the_tree() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README");
    let start = readme.find("### Codemap").expect("README has a Codemap section");
    let section = &readme[start..];
    let section = &section[..section[4..].find("\n### ").map_or(section.len(), |i| i + 4)];
    let named: BTreeSet<String> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("src/") || s.starts_with("tests/") || s.starts_with("bots/") || s.starts_with("bench/")
        })
        .map(str::to_owned)
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for path in &named {
        assert!(root.join(path.trim_end_matches('/')).exists(), "the codemap names {path}, which does not exist");
    }
    for entry in std::fs::read_dir(src()).expect("reading src") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().expect("a name").to_string_lossy().into_owned();
        let key = if path.is_dir() { format!("src/{name}/") } else { format!("src/{name}") };
        if path.is_dir() || !ROOTS.contains(&name.trim_end_matches(".rs")) {
            assert!(named.contains(&key), "the codemap lacks {key}");
        }
    }
}
