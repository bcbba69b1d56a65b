//! The directory's error types: [`DirectoryError`] for administration and lookups,
//! [`AuthError`] for logins.

use std::time::Duration;

use tern_common::AddressError;
use tern_store::StoreError;

use crate::password::PasswordError;
use crate::sasl::SaslError;

/// Why a directory operation failed. Messages are meant to be printed by the CLI as they are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The text is not a valid mail address.
    #[error("invalid address {input:?}: {reason}")]
    InvalidAddress {
        /// What was given.
        input: String,
        /// Why it was rejected.
        reason: AddressError,
    },
    /// The text is not a valid domain name.
    #[error("invalid domain {input:?}: {reason}")]
    InvalidDomain {
        /// What was given.
        input: String,
        /// Why it was rejected.
        reason: AddressError,
    },
    /// The domain is not hosted here.
    #[error("unknown domain {0}: add it first with `tern domain add {0}`")]
    UnknownDomain(String),
    /// The domain, user or alias already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// No user account with this address.
    #[error("no user {0}: list users with `tern user list`")]
    UnknownUser(String),
    /// No such alias (or no such alias target).
    #[error("no alias {0}: list aliases with `tern alias list`")]
    UnknownAlias(String),
    /// The domain still has users or aliases.
    #[error("domain {0} still has users or aliases: remove them first")]
    DomainInUse(String),
    /// An alias cannot use the address of a user account: the account always wins, so the
    /// alias would never be used.
    #[error("{0} is a user account; an alias with that address would never be used")]
    AddressIsAccount(String),
    /// A user cannot take the address of an existing alias.
    #[error("{0} is an alias; remove it first with `tern alias remove {0}`")]
    AddressIsAlias(String),
    /// The address is not on the account's send-as list.
    #[error(
        "{address} is not on the send-as list of {account}: see `tern user send-as list {account}`"
    )]
    NotSendAs {
        /// The account.
        account: String,
        /// The address that was to be removed.
        address: String,
    },
    /// The alias is not acceptable (e.g. it points to itself).
    #[error("invalid alias: {0}")]
    InvalidAlias(&'static str),
    /// The display name is too long or has control characters.
    #[error("invalid display name: {0}")]
    InvalidDisplayName(&'static str),
    /// The new password does not meet the policy.
    #[error("unacceptable password: {0}")]
    WeakPassword(PasswordError),
    /// The store failed.
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    /// Something inside the directory failed (random generator, hashing task).
    #[error("internal directory error: {0}")]
    Internal(String),
}

/// Why a login failed. `Failed` covers both "no such user" and "wrong password" on purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Wrong user name or password (indistinguishable). SMTP 535 5.7.8, IMAP `NO [AUTHENTICATIONFAILED]`.
    #[error("authentication failed")]
    Failed,
    /// Refused without looking at the password: the client address is blocked after too many
    /// failures, or this account's attempts from it are queued too long. Never because of
    /// failures from other addresses. SMTP 454 4.7.0, IMAP `NO [UNAVAILABLE]`,
    /// POP3 `-ERR [LOGIN-DELAY]`.
    #[error("too many failed logins; retry in {}s", retry_after.as_secs().max(1))]
    Throttled {
        /// When the client may try again.
        retry_after: Duration,
    },
    /// The client's SASL data is malformed. SMTP 501 5.5.2, IMAP `BAD`.
    #[error("malformed authentication exchange: {0}")]
    Malformed(SaslError),
    /// The client cancelled the exchange with `*`. SMTP 501 5.0.0, IMAP `BAD`.
    #[error("authentication cancelled")]
    Cancelled,
    /// The server could not decide (store down, internal failure). SMTP 454 4.7.0,
    /// IMAP `NO [UNAVAILABLE]`.
    #[error("temporary authentication failure: {0}")]
    Temporary(String),
}

impl From<SaslError> for AuthError {
    fn from(e: SaslError) -> Self {
        match e {
            SaslError::Cancelled => AuthError::Cancelled,
            SaslError::AuthzidNotPermitted | SaslError::InvalidProof => AuthError::Failed,
            SaslError::Random => AuthError::Temporary(e.to_string()),
            other => AuthError::Malformed(other),
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Temporary(e.to_string())
    }
}

impl From<PasswordError> for DirectoryError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Hash(_) | PasswordError::Random | PasswordError::MalformedScram => {
                DirectoryError::Internal(e.to_string())
            }
            weak => DirectoryError::WeakPassword(weak),
        }
    }
}
