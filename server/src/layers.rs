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

/// The module each `crate::` path in `text` names, with its 1-based line.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `edgekv_crate::` or `some_crate::` are other crates, not this one.
            let preceded_by_ident = rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if !preceded_by_ident && !name.is_empty() {
                found.push((number + 1, name));
            }
            rest = after;
        }
    }
    found
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
            for (line, target) in crate_paths(&text) {
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
    let text = "use crate::kv::KvStore;\nlet x = crate::grpc::status(); edgekv_crate::x; // crate::node\n";
    assert_eq!(
        crate_paths(text),
        vec![(1, "kv".to_string()), (2, "grpc".to_string()), (2, "node".to_string())]
    );
    assert_eq!(layer_of("node"), Some(0));
    assert!(layer_of("clock") > layer_of("kv"));
}
