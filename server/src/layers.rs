//! The layering rule, checked on the source: every `crate::` path in a module (uses, paths
//! in code and doc links alike) names a module of its own layer or one below it
//! ([`crate::LAYERS`]), and every module has a layer, so a new one must be placed.

use std::path::{Path, PathBuf};

use crate::LAYERS;

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level modules of `server/src` with their source files (a folder's, recursively).
fn modules() -> Vec<(String, Vec<PathBuf>)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(&src).expect("server/src") {
        let path = entry.expect("an entry of server/src").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 name")
            .to_string();
        // The crate root, the binary and this check are not modules of a layer.
        if ["lib", "main", "layers"].contains(&name.as_str()) {
            continue;
        }
        let files = if path.is_dir() { rust_files(&path) } else { vec![path] };
        modules.push((name, files));
    }
    modules.sort();
    modules
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a module folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The modules the paths in `text` name through `prefix` (`crate::`, or `super::` in a
/// top-level module's own file, where it means the crate root), with their 1-based lines.
/// A grouped path (`crate::{kv::X, grpc}`) names each module in the group.
fn paths_through(text: &str, prefix: &str) -> Vec<(usize, String)> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            // `some_crate::` is another crate; `super::super::` leaves the crate root's view.
            let preceded_by_ident = rest[..at].chars().last().is_some_and(is_ident);
            if !preceded_by_ident {
                let names: Vec<&str> = match after.strip_prefix('{') {
                    Some(group) => group_items(group)
                        .into_iter()
                        .map(|item| item.trim().split("::").next().unwrap_or(""))
                        .collect(),
                    None => vec![after.split(|c: char| !is_ident(c)).next().unwrap_or("")],
                };
                found.extend(
                    names
                        .into_iter()
                        .filter(|name| !name.is_empty() && *name != "self" && *name != "super")
                        .map(|name| (number + 1, name.to_string())),
                );
            }
            rest = after;
        }
    }
    found
}

/// The top-level items of a `{...}` group, given the text after its `{` (nested groups
/// stay inside their item).
fn group_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..at]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

/// The module each `crate::` path in `text` names, with its 1-based line.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    paths_through(text, "crate::")
}

/// Whether `file` is a top-level module's own file (`src/x.rs` or `src/x/mod.rs`), where
/// `super::` is the crate root.
fn is_top_level_file(file: &Path) -> bool {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    match file.strip_prefix(&src).map(|p| p.components().count()) {
        Ok(1) => true,
        Ok(2) => file.file_name().is_some_and(|name| name == "mod.rs"),
        _ => false,
    }
}

#[test]
fn every_module_imports_only_from_its_layer_or_below() {
    let mut violations = Vec::new();
    let modules = modules();
    assert!(modules.len() >= 10, "found only {} modules", modules.len());
    for (module, files) in &modules {
        let Some(layer) = layer_of(module) else {
            violations.push(format!(
                "`{module}` has no layer: add it to LAYERS in server/src/lib.rs"
            ));
            continue;
        };
        for file in files {
            let text = std::fs::read_to_string(file).expect("a source file");
            let mut paths = crate_paths(&text);
            if is_top_level_file(file) {
                paths.extend(paths_through(&text, "super::"));
            }
            for (line, target) in paths {
                // Items of the crate root (`crate::LAYERS`) and unknown names are not modules.
                let Some(target_layer) = layer_of(&target) else {
                    continue;
                };
                if target_layer < layer {
                    violations.push(format!(
                        "{}:{line}: `{module}` (layer {layer}) uses `crate::{target}` (layer {target_layer}, above it)",
                        file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(file).display()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports pointing up the layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scan_finds_crate_paths_and_only_those() {
    let text = "use crate::kv::KvStore;\nlet x = crate::grpc::status(); edgekv_crate::x; // crate::node\n\
                use crate::{storage::Engine, cache, clock::{Clock, SystemClock}};\n";
    assert_eq!(
        crate_paths(text),
        vec![
            (1, "kv".to_string()),
            (2, "grpc".to_string()),
            (2, "node".to_string()),
            (3, "storage".to_string()),
            (3, "cache".to_string()),
            (3, "clock".to_string()),
        ]
    );
    assert_eq!(
        paths_through("use super::grpc::status;", "super::"),
        vec![(1, "grpc".to_string())]
    );
    assert_eq!(layer_of("node"), Some(0));
    assert!(layer_of("clock") > layer_of("kv"));
}

#[test]
fn docs_architecture_lists_the_same_layers() {
    // The numbered list under "Layers import only downwards" in docs/architecture.md.
    let docs = include_str!("../../docs/architecture.md");
    let listed: Vec<Vec<String>> = docs
        .lines()
        .skip_while(|line| !line.starts_with("Layers import only downwards"))
        .skip_while(|line| !line.starts_with("1. "))
        .take_while(|line| line.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|line| {
            line.split('`')
                .skip(1)
                .step_by(2)
                .map(|name| name.trim_end_matches('/').trim_end_matches(".rs").to_string())
                .collect()
        })
        .collect();
    let expected: Vec<Vec<String>> = LAYERS
        .iter()
        .map(|layer| layer.iter().map(|m| m.to_string()).collect())
        .collect();
    assert_eq!(listed, expected, "docs/architecture.md lists other layers than LAYERS");
}
