//! Finding libclang the way bindgen's loader (clang-sys) finds it, so that `cargo x` installs
//! it exactly when the RocksDB bindings build would otherwise fail.
//!
//! clang-sys accepts `libclang.so`, `libclang-*.so`, `libclang.so.*` and `libclang-*.so.*`
//! but never `libclang-cpp` (the C++ interface, which other LLVM packages pull in without
//! the C library bindgen loads). With `LIBCLANG_PATH` set it looks only there (a directory,
//! or the library file itself).

use std::path::{Path, PathBuf};

/// Whether this machine has a libclang that clang-sys would load.
pub fn installed() -> bool {
    found(std::env::var_os("LIBCLANG_PATH").map(PathBuf::from))
}

/// Whether clang-sys would find libclang, given `LIBCLANG_PATH`'s value.
fn found(libclang_path: Option<PathBuf>) -> bool {
    if let Some(path) = libclang_path {
        // clang-sys looks only there: the library file itself, or a directory holding it.
        let names_a_library = path.is_file()
            && path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(is_libclang_file_name);
        return names_a_library || dir_has_libclang(&path);
    }
    search_dirs().iter().any(|dir| dir_has_libclang(dir))
}

/// Whether `dir` holds a file clang-sys would take for libclang.
pub fn dir_has_libclang(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            // `is_file` follows links: a dangling one is no library.
            e.path().is_file() && e.file_name().to_str().is_some_and(is_libclang_file_name)
        })
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

/// The directories clang-sys searches on Linux without `LIBCLANG_PATH`, in its order.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // `llvm-config --prefix` (or the one LLVM_CONFIG_PATH names): its bin, lib and lib64.
    let llvm_config = std::env::var_os("LLVM_CONFIG_PATH").unwrap_or_else(|| "llvm-config".into());
    if let Ok(output) = std::process::Command::new(llvm_config).arg("--prefix").output()
        && output.status.success()
        && let Some(prefix) = String::from_utf8_lossy(&output.stdout).lines().next()
    {
        let prefix = Path::new(prefix.trim());
        dirs.extend(["bin", "lib", "lib64"].map(|sub| prefix.join(sub)));
    }
    for variable in ["LD_LIBRARY_PATH", "LIBRARY_PATH"] {
        if let Some(paths) = std::env::var_os(variable) {
            dirs.extend(std::env::split_paths(&paths));
        }
    }
    // Then its patterns: /usr/local/llvm*/lib*, and /usr/local/lib* and /usr/lib* with up
    // to two levels below them (/usr/lib/llvm-14/lib, /usr/lib/x86_64-linux-gnu).
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
        let dir = dir_with(&["libclang-cpp.so.14"]);
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
    fn libclang_path_may_name_the_library_file_or_its_directory() {
        let dir = dir_with(&["libclang.so.1", "libclang-cpp.so.14"]);
        assert!(found(Some(dir.path().join("libclang.so.1"))));
        assert!(found(Some(dir.path().to_path_buf())));
        assert!(!found(Some(dir.path().join("libclang-cpp.so.14"))));
        let cpp_only = dir_with(&["libclang-cpp.so.14"]);
        assert!(!found(Some(cpp_only.path().to_path_buf())), "and only there");
    }

    #[test]
    fn a_dangling_link_is_not_libclang() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("libclang.so.1")).unwrap();
        assert!(!dir_has_libclang(dir.path()));
    }

    #[test]
    fn other_libclang_files_are_not_libclang() {
        // Static archives and the clang runtime libraries do not satisfy bindgen either.
        let dir = dir_with(&["libclang.a", "libclangBasic.a", "libclang_rt.asan.so"]);
        assert!(!dir_has_libclang(dir.path()));
    }
}
