//! The one error type of the store.

/// Everything a store operation can fail with.
///
/// Backend errors are flattened into strings so no backend type leaks into the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The domain, account, mailbox, alias, message or blob named in the call does not exist.
    #[error("not found")]
    NotFound,
    /// A record with the same key (domain name, address, alias pair, mailbox name) already exists.
    #[error("already exists")]
    AlreadyExists,
    /// The record is still referenced (a domain with accounts or aliases) and cannot be removed.
    #[error("in use")]
    InUse,
    /// INBOX cannot be renamed or deleted; IMAP gives RENAME INBOX its own meaning, which the caller implements.
    #[error("INBOX cannot be renamed or deleted")]
    Inbox,
    /// The argument is malformed for the store (empty name, keyword with spaces, UID space exhausted ...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A file-system operation on the blob directory failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The database reported an error (including a failed COMMIT of the batch the call was part of).
    #[error("database error: {0}")]
    Database(String),
    /// Stored data failed a consistency check (integrity check, blob hash mismatch, missing blob file).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// Another process owns the data directory: it holds the lock file at `path` (its process id
    /// as written there, if readable). Stop it, or open the store as a client.
    #[error("{} is locked by another process (pid {})", path.display(), pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()))]
    Locked {
        /// The lock file.
        path: std::path::PathBuf,
        /// The process id of the owner.
        pid: Option<u32>,
    },
    /// The store was closed (or its writer stopped) before the call could be answered.
    #[error("store closed")]
    Closed,
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
