//! The spool directory: where message text beyond the in-memory threshold waits for the end
//! of its message.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Every file this module creates starts with this; nothing else in the directory is touched.
const PREFIX: &str = "tern-spool-";

/// A private directory (mode 0700) for spool files.
///
/// A spool file is unlinked as soon as it has been created, so its space comes back when the
/// session closes the file — at the end of the transaction, when the session is dropped, and
/// also when the process dies, without any clean-up pass. Only a crash in the instant between
/// creating and unlinking can leave a file behind; [`Spool::open`] removes those at start.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    next: AtomicU64,
}

impl Spool {
    /// Opens (creating it if needed) the spool directory `dir`, makes it private to this
    /// user, and removes the files an earlier run left there — only regular files whose name
    /// this module would have chosen, never anything else.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Spool> {
        let dir = dir.into();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&dir)
            .map_err(|e| context(e, "create", &dir))?;
        // `recursive` accepts an existing directory as it is; a symlink there is refused so
        // that the clean-up below never runs in a directory somebody else chose.
        let meta = fs::symlink_metadata(&dir).map_err(|e| context(e, "inspect", &dir))?;
        if !meta.is_dir() {
            return Err(io::Error::other(format!(
                "spool directory {} is not a directory (a symlink?); remove it or point data_dir elsewhere",
                dir.display()
            )));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| context(e, "make private", &dir))?;
        }
        let mut removed = 0;
        for entry in fs::read_dir(&dir).map_err(|e| context(e, "list", &dir))? {
            let entry = entry.map_err(|e| context(e, "list", &dir))?;
            let ours = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(PREFIX));
            if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
                fs::remove_file(entry.path()).map_err(|e| context(e, "remove", &entry.path()))?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(dir = %dir.display(), removed, "removed spool files left by an earlier run");
        }
        Ok(Spool {
            dir,
            next: AtomicU64::new(0),
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new, empty spool file (mode 0600, a name no other file has), already unlinked.
    /// Blocking: call it off the async threads.
    pub fn create(&self) -> io::Result<File> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let path = self.dir.join(format!("{PREFIX}{}-{n}", std::process::id()));
            match options.open(&path) {
                Ok(file) => {
                    fs::remove_file(&path).map_err(|e| context(e, "unlink", &path))?;
                    return Ok(file);
                }
                // A leftover of another process with our id: take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(context(e, "create", &path)),
            }
        }
    }
}

fn context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot {what} spool file {}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};

    use super::*;

    #[test]
    fn opening_removes_only_leftover_spool_files() {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        fs::create_dir(&spool_dir).unwrap();
        fs::write(spool_dir.join(format!("{PREFIX}1-1")), b"left over").unwrap();
        fs::write(spool_dir.join("notes.txt"), b"not ours").unwrap();
        fs::create_dir(spool_dir.join(format!("{PREFIX}dir"))).unwrap();
        let spool = Spool::open(&spool_dir).unwrap();
        let mut names: Vec<String> = fs::read_dir(spool.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["notes.txt".to_owned(), format!("{PREFIX}dir")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&spool_dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_not_accepted_as_the_spool_directory() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::write(elsewhere.join(format!("{PREFIX}1-1")), b"someone's file").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("spool")).unwrap();
        assert!(Spool::open(dir.path().join("spool")).is_err());
        assert!(elsewhere.join(format!("{PREFIX}1-1")).exists());
    }

    #[test]
    fn spool_files_are_usable_but_leave_no_name_behind() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let mut a = spool.create().unwrap();
        let b = spool.create().unwrap();
        assert_eq!(fs::read_dir(spool.dir()).unwrap().count(), 0);
        a.write_all(b"text").unwrap();
        a.seek(SeekFrom::Start(0)).unwrap();
        let mut back = String::new();
        a.read_to_string(&mut back).unwrap();
        assert_eq!(back, "text");
        assert_eq!(b.metadata().unwrap().len(), 0, "each file is its own");
    }
}
