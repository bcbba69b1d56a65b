//! The session's errors and their single mapping to protocol replies.

use std::io;

use tern_proto::imap::{Code, Response, Tag};
use tern_store::StoreError;
use tracing::warn;

/// Why a command failed. [`CmdError::response`] is the one mapping to the wire.
#[derive(Debug)]
pub(crate) enum CmdError {
    /// Syntax or protocol misuse: `BAD`.
    Bad(String),
    /// Refused by policy or state (no such mailbox, read-only ...): `NO [code] text`.
    No(Option<Code>, String),
    /// The store could not answer now: logged, then `NO [UNAVAILABLE]`.
    Temporary(String),
}

impl CmdError {
    pub(crate) fn no(code: Code, text: impl Into<String>) -> CmdError {
        CmdError::No(Some(code), text.into())
    }

    pub(crate) fn bad(text: impl Into<String>) -> CmdError {
        CmdError::Bad(text.into())
    }

    pub(crate) fn nonexistent() -> CmdError {
        CmdError::no(Code::NonExistent, "No such mailbox")
    }

    /// The tagged reply; temporary failures are logged here, once.
    pub(crate) fn response(self, tag: Tag) -> Response {
        match self {
            CmdError::Bad(text) => Response::bad(Some(tag), None, text),
            CmdError::No(code, text) => Response::no(tag, code, text),
            CmdError::Temporary(reason) => {
                warn!(%reason, "command failed temporarily");
                Response::no(tag, Some(Code::Unavailable), "Temporary failure, try again")
            }
        }
    }

    pub(crate) fn is_bad(&self) -> bool {
        matches!(self, CmdError::Bad(_))
    }
}

impl From<StoreError> for CmdError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => CmdError::nonexistent(),
            StoreError::AlreadyExists => {
                CmdError::no(Code::AlreadyExists, "Mailbox already exists")
            }
            StoreError::Inbox => CmdError::no(Code::Cannot, "INBOX cannot be renamed or deleted"),
            StoreError::InUse => CmdError::no(Code::InUse, "In use"),
            StoreError::Invalid(why) => CmdError::no(Code::Cannot, format!("Invalid: {why}")),
            other => CmdError::Temporary(other.to_string()),
        }
    }
}

/// Why the connection loop stopped without a LOGOUT.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("client closed the connection")]
    Eof,
    #[error("idle for longer than the autologout timer")]
    Timeout,
    #[error("server shutting down")]
    Shutdown,
    #[error("credentials changed, account disabled or removed")]
    Revoked,
    #[error("too many protocol errors")]
    TooManyErrors,
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}
