//! The owner's lock on a data directory: an exclusive `flock` on a lock file holding its pid.
//!
//! `flock` belongs to the open file, so the kernel releases it when the owner exits for any
//! reason, SIGKILL included: there is no stale lock to clean up after a crash, and the file
//! itself is never removed (removing it would let two processes lock two different files).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};

/// Proof that this process owns the data directory; the lock is released when it is dropped.
/// Every creation, rename and deletion of a blob file needs one (see [`crate::StoreRole`]).
#[derive(Debug)]
pub(crate) struct DataDirLock {
    /// Held open for the lock; never read again.
    _file: File,
}

impl DataDirLock {
    /// Takes the lock at `path` without waiting, and writes this process's id into the file;
    /// [`StoreError::Locked`] with the holder's id if another process has it. Blocking.
    pub(crate) fn acquire(path: &Path) -> Result<DataDirLock> {
        // Not truncated on open: the file may be another owner's, whose pid the error reports.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // The holder may not have written its id yet; then it is unknown.
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(StoreError::Locked {
                    path: PathBuf::from(path),
                    pid,
                });
            }
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }
        file.set_len(0)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tern.lock");
        let first = DataDirLock::acquire(&path).expect("first lock");
        match DataDirLock::acquire(&path) {
            Err(StoreError::Locked { path: p, pid }) => {
                assert_eq!(p, path);
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        let again = DataDirLock::acquire(&path).expect("lock after release");
        drop(again);
        assert_eq!(
            std::fs::read_to_string(&path).expect("lock file"),
            format!("{}\n", std::process::id())
        );
    }
}
