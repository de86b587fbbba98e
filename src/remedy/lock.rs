//! One remedy at a time per config: `.opsguard/lock`, held with `flock` for
//! the whole of a `run` or `resume`. The kernel releases it when the process
//! dies, however it dies, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error, miette::Diagnostic)]
pub enum LockError {
    #[error("another opsguard is working on this environment ({holder}); wait for it to finish, or look at .opsguard/runs/")]
    #[diagnostic(
        code(opsguard::locked),
        help("one `run` or `resume` at a time per config: wait for the other to end. The lock dies with its process, so if that process is gone, simply run again; an interrupted remedy is finished with `opsguard resume RUN_ID`")
    )]
    Held { holder: String },
    /// Not another opsguard: the state folder cannot be written.
    #[error("cannot open the lock file {path}: {source}")]
    #[diagnostic(
        code(opsguard::state_dir),
        help("opsguard keeps its lock, its runs and its fingerprint key in .opsguard/ beside the config: make that folder (or the config's folder) writable, or use a config in a writable folder")
    )]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Held until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

pub fn acquire(state_dir: &Path, what: &str) -> Result<Lock, LockError> {
    let path = state_dir.join(crate::state::LOCK);
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    crate::state::ensure(state_dir).map_err(io)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Held {
                holder: if holder.is_empty() {
                    "unknown".into()
                } else {
                    holder.to_owned()
                },
            });
        }
        return Err(io(err));
    }
    let note = format!("pid {}: {what}", std::process::id());
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(note.as_bytes());
    let _ = file.sync_data();
    Ok(Lock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_folder_that_cannot_be_written_is_not_called_another_run() {
        // Root ignores permission bits, so make the folder impossible instead:
        // a plain file where `.opsguard/` should be.
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".opsguard");
        std::fs::write(&state, "not a folder").unwrap();
        let e = acquire(&state, "run r").unwrap_err();
        assert!(matches!(e, LockError::Io { .. }), "{e:?}");
        let help = miette::Diagnostic::help(&e).unwrap().to_string();
        assert!(help.contains("writable"), "{help}");
        assert!(!e.to_string().contains("another opsguard"), "{e}");
        assert!(!help.contains("wait for the other"), "{help}");
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_name() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), "run 20261124T101500Z-3f2a").unwrap();
        match acquire(dir.path(), "run other") {
            Err(LockError::Held { holder }) => {
                assert!(holder.contains("run 20261124T101500Z-3f2a"), "{holder}");
                assert!(holder.contains(&std::process::id().to_string()));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(held);
        acquire(dir.path(), "run other").expect("free again once dropped");
    }
}
