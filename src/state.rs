//! The state folder, `.opsguard/` beside the config file, and its layout.
//!
//! It holds `fingerprint.key` (the HMAC key behind every value fingerprint),
//! `lock` (one `run` or `resume` at a time) and `runs/RUN_ID/` (snapshots,
//! facts, journal and report of each run). The key must never be committed:
//! whoever has it can test guesses against the fingerprints in a snapshot. So
//! the folder is created with a `.gitignore` that ignores everything in it,
//! and every writer creates the folder through [`ensure`].

use std::path::{Path, PathBuf};

/// The folder's name beside the config.
pub const DIR: &str = ".opsguard";
/// The fingerprint key file, inside the folder.
pub const FINGERPRINT_KEY: &str = "fingerprint.key";
/// The lock file, inside the folder.
pub const LOCK: &str = "lock";
/// The runs folder, inside the folder.
pub const RUNS: &str = "runs";

const GITIGNORE: &str =
    "# Written by opsguard: run state and the fingerprint key stay out of git.\n*\n";

/// `.opsguard/` beside the config file at `config_path`.
pub fn beside(config_path: &Path) -> PathBuf {
    config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(DIR)
}

/// The folder of one run.
pub fn run_dir(state_dir: &Path, run_id: &str) -> PathBuf {
    state_dir.join(RUNS).join(run_id)
}

/// Create the state folder if needed, with its `.gitignore` (`*`), so that a
/// `git add -A` in the user's repository never picks up the key or a run.
pub fn ensure(state_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    let ignore = state_dir.join(".gitignore");
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&ignore)
    {
        Ok(mut f) => std::io::Write::write_all(&mut f, GITIGNORE.as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_writes_a_gitignore_that_ignores_everything_and_keeps_a_users_edit() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = beside(&tmp.path().join("opsguard.toml"));
        assert_eq!(dir, tmp.path().join(".opsguard"));
        ensure(&dir).unwrap();
        let text = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
        assert!(text.lines().any(|l| l.trim() == "*"), "{text}");
        // A user's own edit is left alone.
        std::fs::write(dir.join(".gitignore"), "runs/\n").unwrap();
        ensure(&dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(".gitignore")).unwrap(),
            "runs/\n"
        );
    }

    #[test]
    fn a_config_without_a_folder_keeps_its_state_in_the_working_directory() {
        assert_eq!(beside(Path::new("opsguard.toml")), Path::new(".").join(DIR));
        assert_eq!(
            run_dir(Path::new("/x/.opsguard"), "r1"),
            Path::new("/x/.opsguard/runs/r1")
        );
    }
}
