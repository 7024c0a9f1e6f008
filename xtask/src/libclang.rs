//! Finding libclang the way bindgen's loader (clang-sys) finds it, so that `cargo x` installs
//! it exactly when the RocksDB bindings build would otherwise fail.
//!
//! clang-sys accepts `libclang.so`, `libclang-*.so`, `libclang.so.*` and `libclang-*.so.*`
//! but never `libclang-cpp` (the C++ interface, which other LLVM packages pull in without
//! the C library bindgen loads). With `LIBCLANG_PATH` set it looks only there.

use std::path::{Path, PathBuf};

/// Whether a machine has a libclang that clang-sys would load.
pub fn installed() -> bool {
    search_dirs().iter().any(|dir| dir_has_libclang(dir))
}

/// Whether `dir` holds a file clang-sys would take for libclang.
pub fn dir_has_libclang(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_str().is_some_and(is_libclang_file_name))
    })
}

/// clang-sys's four glob patterns, less its `-cpp.` exclusion.
fn is_libclang_file_name(name: &str) -> bool {
    if name.contains("-cpp.") {
        return false;
    }
    // `libclang.so` and `libclang.so.*`
    if name == "libclang.so" || name.starts_with("libclang.so.") {
        return true;
    }
    // `libclang-*.so` and `libclang-*.so.*`
    name.strip_prefix("libclang-")
        .is_some_and(|rest| rest.ends_with(".so") || rest.contains(".so."))
}

/// The directories clang-sys searches on Linux, in its order.
fn search_dirs() -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("LIBCLANG_PATH") {
        return vec![PathBuf::from(dir)];
    }
    let mut dirs = Vec::new();
    for variable in ["LD_LIBRARY_PATH", "LIBRARY_PATH"] {
        if let Some(paths) = std::env::var_os(variable) {
            dirs.extend(std::env::split_paths(&paths));
        }
    }
    // clang-sys's patterns: /usr/local/llvm*/lib*, then /usr/local/lib* and /usr/lib*
    // with up to two levels below them (/usr/lib/llvm-14/lib, /usr/lib/x86_64-linux-gnu).
    dirs.extend(
        subdirs_matching(Path::new("/usr/local"), "llvm")
            .iter()
            .flat_map(|d| subdirs_matching(d, "lib")),
    );
    for root in ["/usr/local", "/usr"] {
        for lib in subdirs_matching(Path::new(root), "lib") {
            for child in subdirs_matching(&lib, "") {
                dirs.extend(subdirs_matching(&child, ""));
                dirs.push(child);
            }
            dirs.push(lib);
        }
    }
    dirs
}

/// The directories directly inside `dir` whose names start with `prefix`.
fn subdirs_matching(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().to_lowercase().starts_with(prefix))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            std::fs::write(dir.path().join(file), b"").unwrap();
        }
        dir
    }

    #[test]
    fn the_cpp_interface_alone_is_not_libclang() {
        // The fresh Debian machine of issue 11: LLVM packages brought libclang-cpp only.
        let dir = dir_with(&["libclang-cpp.so.14", "libclang-cpp.so"]);
        assert!(!dir_has_libclang(dir.path()));
    }

    #[test]
    fn the_names_clang_sys_loads_are_libclang() {
        for name in ["libclang.so", "libclang-14.so", "libclang.so.1", "libclang-14.so.14"] {
            let dir = dir_with(&[name, "libclang-cpp.so.14"]);
            assert!(dir_has_libclang(dir.path()), "{name}");
        }
    }

    #[test]
    fn other_libclang_files_are_not_libclang() {
        // Static archives and the clang runtime libraries do not satisfy bindgen either.
        let dir = dir_with(&["libclang.a", "libclangBasic.a", "libclang_rt.asan.so"]);
        assert!(!dir_has_libclang(dir.path()));
    }
}
