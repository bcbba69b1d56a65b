//! Content-addressed blobs: ids and the on-disk layout of large blobs.
//!
//! Layout: `blob_dir/ab/cdef…` (first two hex digits as directory, all 256 created at open), temporary files
//! in `blob_dir/tmp/`. A file is written to `tmp/`, fsync'd, and only then renamed into place by the writer
//! thread; the target directory is fsync'd before the batch that references it commits. Only the owner of
//! the data directory writes or removes these files (see [`crate::StoreRole`]).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::digest;
use bytes::Bytes;

use crate::error::{Result, StoreError};
use crate::lock::DataDirLock;

/// Id of a blob: lowercase hex SHA-256 of its bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(String);

impl BlobId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobId {
        let d = digest::digest(&digest::SHA256, bytes);
        BlobId(hex(d.as_ref()))
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<BlobId> {
        // A table and no early exit: ids are random digits and letters, so a per-octet branch
        // mispredicts about every other octet, and every row of a mailbox listing parses one.
        let digits = s.bytes().fold(true, |ok, b| ok & HEX_DIGIT[usize::from(b)]);
        (s.len() == 64 && digits).then(|| BlobId(s.to_ascii_lowercase()))
    }

    /// The 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", &self.0[..12.min(self.0.len())])
    }
}

/// Whether each octet is an ASCII hex digit.
const HEX_DIGIT: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = (i as u8).is_ascii_hexdigit();
        i += 1;
    }
    table
};

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The blob directory.
#[derive(Debug)]
pub(crate) struct BlobFiles {
    root: PathBuf,
}

/// A temporary blob file, removed on drop unless it was renamed into place.
#[derive(Debug)]
pub(crate) struct TempBlob {
    path: PathBuf,
}

impl TempBlob {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        // After a successful rename the path is gone and this fails with NotFound, which is fine.
        let _ = fs::remove_file(&self.path);
    }
}

/// Where the bytes of a prepared blob are.
#[derive(Debug)]
pub(crate) enum PreparedBody {
    /// Small: stored in the database row.
    Inline(Bytes),
    /// Large: already written and fsync'd to a temporary file.
    File(TempBlob),
}

/// A blob hashed (and, if large, written to a temp file) outside the writer thread.
#[derive(Debug)]
pub(crate) struct PreparedBlob {
    pub id: BlobId,
    pub size: u64,
    pub body: PreparedBody,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl BlobFiles {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Directory holding the file of `id`.
    pub(crate) fn dir_of(&self, id: &BlobId) -> PathBuf {
        self.root.join(&id.as_str()[..2])
    }

    /// Final path of the file of `id`.
    pub(crate) fn path_of(&self, id: &BlobId) -> PathBuf {
        self.dir_of(id).join(&id.as_str()[2..])
    }

    /// Creates the directory tree, deletes leftover temp files, and returns every blob file found
    /// (the caller removes the ones the database does not reference). Only the owner of the data
    /// directory may: another process's temp files are deliveries in progress.
    pub(crate) fn init(&self, _owner: &DataDirLock) -> Result<Vec<BlobId>> {
        fs::create_dir_all(self.tmp_dir())?;
        for entry in fs::read_dir(self.tmp_dir())? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
            }
        }
        let mut found = Vec::new();
        for i in 0..=255u8 {
            let prefix = hex(&[i]);
            let dir = self.root.join(&prefix);
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    for entry in fs::read_dir(&dir)? {
                        let entry = entry?;
                        let name = entry.file_name();
                        let id = name
                            .to_str()
                            .and_then(|n| BlobId::from_hex(&format!("{prefix}{n}")));
                        match id {
                            Some(id) => found.push(id),
                            None => {
                                tracing::warn!(path = %entry.path().display(), "stray file in blob directory")
                            }
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        sync_dir(&self.root)?;
        Ok(found)
    }

    /// Hashes `bytes`; if larger than `inline_max`, writes them to a fsync'd temp file. Blocking.
    pub(crate) fn prepare(&self, bytes: Bytes, inline_max: usize) -> Result<PreparedBlob> {
        let id = BlobId::of(&bytes);
        let size = bytes.len() as u64;
        if bytes.len() <= inline_max {
            return Ok(PreparedBlob {
                id,
                size,
                body: PreparedBody::Inline(bytes),
            });
        }
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = TempBlob {
            path: self
                .tmp_dir()
                .join(format!("{}-{n}-{}", std::process::id(), &id.as_str()[..16])),
        };
        let mut f = File::create(temp.path())?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        Ok(PreparedBlob {
            id,
            size,
            body: PreparedBody::File(temp),
        })
    }

    /// Reads the file of `id`. Blocking.
    pub(crate) fn read(&self, id: &BlobId) -> Result<Bytes> {
        match fs::read(self.path_of(id)) {
            Ok(v) => Ok(Bytes::from(v)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::Corrupt(format!("blob file {id} is missing")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the file of `id` if present. Blocking. Only the owner of the data directory may,
    /// as only its writer thread renames files into place: it alone can tell that no batch is
    /// about to commit a row for this file.
    pub(crate) fn remove(&self, id: &BlobId, _owner: &DataDirLock) -> io::Result<()> {
        match fs::remove_file(self.path_of(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// fsyncs a directory so renames into it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_id_is_hex_sha256() {
        assert_eq!(
            BlobId::of(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            BlobId::from_hex(&"AB".repeat(32)).map(|b| b.0),
            Some("ab".repeat(32))
        );
        assert!(BlobId::from_hex("abc").is_none());
    }

    #[test]
    fn init_removes_temp_files_and_lists_blob_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = DataDirLock::acquire(&dir.path().join("tern.lock")).expect("lock");
        let files = BlobFiles::new(dir.path().join("blobs"));
        assert!(files.init(&lock).expect("init").is_empty());
        let p = files
            .prepare(Bytes::from_static(b"0123456789"), 4)
            .expect("prepare");
        let PreparedBody::File(temp) = &p.body else {
            panic!("expected a file")
        };
        let temp_path = temp.path().to_path_buf();
        std::mem::forget(p); // simulate a crash: the temp file stays
        assert!(temp_path.exists());
        let id = BlobId::of(b"xyz");
        fs::write(files.path_of(&id), b"xyz").expect("write");
        assert_eq!(files.init(&lock).expect("init"), vec![id]);
        assert!(!temp_path.exists());
    }
}
