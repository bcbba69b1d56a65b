//! File modes of the data directory: mail, password hashes and DKIM keys are for the tern user
//! alone. `main` sets the umask to 077 so that what tern creates is private; a data directory
//! made earlier (by hand, by an older version, by a package script, a restore with another
//! umask) may still be open to others, which start-up reports and `tern doctor --fix` repairs.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use tracing::warn;

/// Logs a warning when other users may enter or read `data_dir`.
pub fn warn_if_shared(data_dir: &Path) {
    let Ok(meta) = std::fs::metadata(data_dir) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        warn!(
            data_dir = %data_dir.display(),
            mode = format_args!("{mode:03o}"),
            "the data directory is open to other users of this machine (mail, password \
             hashes, DKIM keys); restrict it with: tern doctor --fix (or chmod -R go-rwx {})",
            data_dir.display()
        );
    }
}

/// A file or directory under the data directory that others may use.
#[derive(Debug)]
pub struct OpenEntry {
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
}

/// Everything under `data_dir` (itself included) with group or other permission bits, and
/// how many entries were looked at. Symbolic links are neither followed nor reported (their
/// own mode means nothing). Entries that vanish while the server runs are skipped.
pub fn open_entries(data_dir: &Path) -> std::io::Result<(Vec<OpenEntry>, u64)> {
    let mut open = Vec::new();
    let mut seen = 0u64;
    let mut pending = vec![data_dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && path != data_dir => continue,
            Err(e) => return Err(e),
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        seen += 1;
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            match std::fs::read_dir(&path) {
                Ok(entries) => pending.extend(entries.flatten().map(|e| e.path())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if mode & 0o077 != 0 {
            open.push(OpenEntry { path, mode });
        }
    }
    Ok((open, seen))
}

/// Takes group and other permissions away from `entry`: directories become 0700 at most,
/// files 0600 at most (the owner's own bits are kept).
pub fn restrict(entry: &OpenEntry) -> std::io::Result<()> {
    let mode = entry.mode & 0o700;
    std::fs::set_permissions(&entry.path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_entries_are_found_and_restricted_and_links_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("blobs/ab")).unwrap();
        std::fs::write(data.join("tern.db"), b"db").unwrap();
        std::fs::write(data.join("blobs/ab/cd"), b"mail").unwrap();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        };
        mode(&data, 0o755);
        mode(&data.join("blobs"), 0o700);
        mode(&data.join("blobs/ab"), 0o750);
        mode(&data.join("tern.db"), 0o600);
        mode(&data.join("blobs/ab/cd"), 0o644);
        std::os::unix::fs::symlink("/etc/passwd", data.join("link")).unwrap();
        let (open, seen) = open_entries(&data).unwrap();
        assert_eq!(seen, 5);
        let mut paths: Vec<_> = open.iter().map(|e| e.path.clone()).collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                data.clone(),
                data.join("blobs/ab"),
                data.join("blobs/ab/cd")
            ]
        );
        for entry in &open {
            restrict(entry).unwrap();
        }
        assert!(open_entries(&data).unwrap().0.is_empty());
        let bits = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(bits(&data), 0o700);
        assert_eq!(bits(&data.join("blobs/ab/cd")), 0o600);
        // The link's target is untouched.
        assert_ne!(bits(Path::new("/etc/passwd")) & 0o044, 0);
    }
}
