//! Finding server programs on this machine.

use std::path::{Path, PathBuf};

/// Looks for `program` in `$env_var`, then on PATH, then in the given extra directories.
pub(crate) fn find_program(program: &str, env_var: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Some(path);
        }
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .iter()
        .map(PathBuf::as_path)
        .chain(extra_dirs.iter().map(Path::new))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// PostgreSQL's server programs live outside PATH on Debian (`/usr/lib/postgresql/<v>/bin`).
pub(crate) fn postgres_bin_dirs() -> Vec<String> {
    let mut dirs = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        // Newest first.
        versions.sort();
        versions.reverse();
        dirs.extend(
            versions
                .into_iter()
                .map(|v| v.join("bin").display().to_string()),
        );
    }
    dirs.extend(
        [
            "/usr/local/pgsql/bin",
            "/opt/homebrew/bin",
            "/usr/local/bin",
        ]
        .map(String::from),
    );
    dirs
}
