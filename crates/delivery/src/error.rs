//! The one error type of the pipeline: failures that affect the whole message.

use tern_store::StoreError;

/// Why a message as a whole was not delivered. Per-recipient failures are not errors: they are
/// [`crate::RecipientStatus`] values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The store failed (unreachable, I/O, failed COMMIT): nothing was stored; SMTP answers `451 4.3.0`.
    #[error("storage failed: {0}")]
    Storage(#[from] StoreError),
    /// A directory lookup failed (the author check of a submission): nothing was stored; SMTP
    /// answers `451 4.3.0`.
    #[error("directory lookup failed: {0}")]
    Directory(#[from] tern_directory::DirectoryError),
    /// A stage refused the message for every recipient (author check of a submission:
    /// `550 5.7.1` / `550 5.6.0`; DMARC: `550 5.7.1`; virus: `554 5.7.1`, spam: `550 5.7.1`, virus
    /// scan unavailable: `451 4.7.1`); nothing was stored. The session answers with exactly this
    /// reply code, enhanced status code (RFC 3463) and text.
    #[error("refused: {code} {text}")]
    Refused {
        /// The reply code (RFC 5321 §4.2).
        code: u16,
        /// The enhanced status code (RFC 3463), e.g. `[5, 7, 1]`.
        status: [u8; 3],
        /// The reply text.
        text: String,
    },
}

impl DeliveryError {
    /// Whether the sender should retry later (4xx) rather than give up (5xx).
    pub fn is_temporary(&self) -> bool {
        match self {
            // A store failure says nothing about the message; it may well succeed on the next attempt.
            DeliveryError::Storage(_) | DeliveryError::Directory(_) => true,
            DeliveryError::Refused { code, .. } => *code < 500,
        }
    }
}
