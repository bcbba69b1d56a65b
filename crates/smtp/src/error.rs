//! The session's error type and its single mapping to the wire.
//!
//! Policy refusals (unknown user, relay denied, bad sequence) are not errors here: handlers
//! return them as ordinary [`Reply`]s. A [`SessionError`] is something that went wrong on our
//! side or on the socket.

use std::io;

use smtp_proto::Error as ParseError;

use crate::reply::{Reply, r};

/// What can end a command abnormally.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    /// A lookup or the store failed; the client may retry (451 4.3.0). Logged once.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The connection failed or was closed; nothing more can be written.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
}

impl SessionError {
    /// The reply to send, if the connection can still take one.
    pub(crate) fn reply(&self) -> Option<Reply> {
        match self {
            SessionError::Temporary(_) => Some(r::temporary()),
            SessionError::Io(_) => None,
        }
    }
}

impl From<tern_directory::DirectoryError> for SessionError {
    fn from(e: tern_directory::DirectoryError) -> Self {
        SessionError::Temporary(e.to_string())
    }
}

/// The reply to a command line smtp-proto could not parse (RFC 5321 §4.2.2, §4.1.1.11).
pub(crate) fn parse_error_reply(e: &ParseError) -> Reply {
    match e {
        ParseError::UnknownCommand => Reply::new(500, [5, 5, 1], "Command unrecognized"),
        ParseError::InvalidSenderAddress => Reply::new(501, [5, 1, 7], "Bad sender address syntax"),
        ParseError::InvalidRecipientAddress => {
            Reply::new(501, [5, 1, 3], "Bad recipient address syntax")
        }
        ParseError::SyntaxError { syntax } => {
            Reply::new(501, [5, 5, 2], format!("Syntax: {syntax}"))
        }
        ParseError::InvalidParameter { param } => Reply::new(
            501,
            [5, 5, 4],
            format!("Invalid value of parameter {param}"),
        ),
        // RFC 5321 §4.1.1.11: parameters of extensions we do not offer get 555.
        ParseError::UnsupportedParameter { param } => {
            let param: String = param.chars().take(32).collect();
            Reply::new(555, [5, 5, 4], format!("Unsupported parameter {param}"))
        }
        ParseError::ResponseTooLong => r::line_too_long(),
        ParseError::NeedsMoreData { .. } | ParseError::InvalidResponse { .. } => {
            Reply::new(501, [5, 5, 2], "Syntax error")
        }
    }
}
