//! Data flows one way through the library (see the module map in `src/lib.rs`). This test reads
//! every library source file and fails on a path to a module its layer may not use, so a
//! forbidden `use` is caught when it is written, not when someone trips over it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The ground floor: the article model, errors, text rules, the archive format's own types,
/// atomic file writes and the clock. They use only each other.
const GROUND: &[&str] = &["clock", "error", "files", "format", "model", "text"];

/// What each module may use besides the ground floor (and itself).
fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("config", &[][..]),
        ("lock", &[][..]),
        ("metrics", &[][..]),
        ("store", &[][..]),
        ("schedule", &["config"][..]),
        ("fetch", &["config"][..]),
        ("parse", &["config"][..]),
        ("normalize", &["config", "parse"][..]),
        ("opml", &["config", "normalize", "parse"][..]),
        ("extract", &["config"][..]),
        ("enrich", &["config", "fetch"][..]),
        ("publish", &["config", "store"][..]),
        (
            "pipeline",
            &[
                "config",
                "schedule",
                "fetch",
                "parse",
                "normalize",
                "extract",
                "enrich",
                "store",
                "publish",
            ][..],
        ),
        ("serve", &["config", "store", "publish", "metrics"][..]),
        (
            "daemon",
            &[
                "config", "lock", "schedule", "fetch", "pipeline", "store", "publish", "serve",
                "metrics",
            ][..],
        ),
    ])
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src/`: `pipeline/commit.rs` is `["pipeline", "commit"]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" {
            parts.push(stem.to_owned());
        }
    }
    parts
}

/// The names after `crate::` in `code`, a `crate::{a, b::c}` group giving each of its names.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue; // `gazette_crate::`, not ours
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.push(item);
        } else {
            found.push(rest.to_owned());
        }
    }
    found
        .iter()
        .map(|p| {
            p.trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty() && name != "self")
        .collect()
}

/// The top-level modules reached with `super::` chains that climb out of the file's own module.
fn super_paths(code: &str, depth: usize) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("super::") {
        if code[..at].ends_with("super::") {
            continue; // counted from the first `super` of a chain
        }
        let mut rest = &code[at..];
        let mut climbs = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            climbs += 1;
            rest = r;
        }
        if climbs >= depth {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

/// Code without comments: doc links name modules without depending on them.
fn code_of(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_module_uses_a_layer_it_may_not() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let allowed = allowed();
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .expect("src")
        .filter_map(|e| {
            let path = e.expect("entry").path();
            let name = path.file_stem()?.to_string_lossy().into_owned();
            (path.is_dir() || path.extension().is_some_and(|e| e == "rs")).then_some(name)
        })
        .filter(|name| !["lib", "main", "commands"].contains(&name.as_str()))
        .collect();
    for module in &modules {
        assert!(
            GROUND.contains(&module.as_str()) || allowed.contains_key(module.as_str()),
            "src/{module} has no place in the layers; add it to this test and to lib.rs's map"
        );
    }

    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).expect("below src");
        let path = module_path(relative);
        let Some(top) = path.first() else { continue };
        if top == "main" || top == "commands" {
            continue; // the binary uses the library as a whole
        }
        let code = code_of(&std::fs::read_to_string(file).expect("read"));
        let used = crate_paths(&code)
            .into_iter()
            .chain(super_paths(&code, path.len()));
        let may: Vec<&str> = GROUND
            .iter()
            .copied()
            .chain(
                allowed
                    .get(top.as_str())
                    .copied()
                    .unwrap_or_default()
                    .iter()
                    .copied(),
            )
            .collect();
        for name in used {
            checked += 1;
            if name == *top || !modules.contains(&name) {
                continue; // its own module, or a re-export at the crate root (`Result`)
            }
            if !may.contains(&name.as_str()) {
                violations.push(format!("{} uses {name}", relative.display()));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} paths found: is the scan broken?"
    );
    assert!(
        violations.is_empty(),
        "layers reached the wrong way:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scan_sees_groups_chains_and_comments() {
    assert_eq!(
        crate_paths(
            "use crate::{config::Source, store::{Store, Pruned}};\nlet x = crate::pipeline::run();"
        ),
        vec!["config", "store", "pipeline"]
    );
    assert_eq!(
        super_paths("use super::super::serve::x; use super::y;", 2),
        vec!["serve"]
    );
    assert_eq!(super_paths("use super::y;", 2), Vec::<String>::new());
    assert_eq!(
        code_of("/// [`crate::serve`]\nuse crate::model;"),
        "use crate::model;"
    );
    assert_eq!(module_path(Path::new("pipeline/mod.rs")), vec!["pipeline"]);
    assert_eq!(
        module_path(Path::new("pipeline/commit.rs")),
        vec!["pipeline", "commit"]
    );
}
