//! POP3 server sessions (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 SASL, RFC 3206
//! response codes) on the shared store: the maildrop is the account's INBOX, the same one IMAP
//! shows.
//!
//! Implementation notes:
//! - The maildrop is a snapshot of INBOX taken at login: message numbers 1..n in UID order,
//!   sizes as stored (CRLF, not dot-stuffed: RFC 1939 §5 LIST counts the message as stored),
//!   UIDL `<uidvalidity>.<uid>`, which never changes for a message and is the same in every
//!   session. Messages delivered during the session appear at the next login.
//! - DELE only marks; QUIT in the TRANSACTION state removes the marked messages in one store
//!   transaction ([`tern_store::Store::remove_messages`], tombstones included, so IMAP sessions
//!   see the expunge) and replies only after it committed. A connection that ends any other
//!   way (drop, timeout, shutdown, too many errors) removes nothing.
//! - One POP3 session per maildrop (RFC 1939 §8): [`Pop3Context`] keeps an in-process lock
//!   registry keyed by account; the lock is a guard released when the session ends, also on
//!   panic. IMAP sessions are not affected. Several `tern` nodes on one database will need a
//!   lease in the store instead (multi-node is a later issue).
//! - Passwords are refused before TLS (`-ERR [AUTH]`) unless the connection is from loopback
//!   and `allow_plaintext_on_loopback` is set; SCRAM-SHA-256 is always allowed since it sends
//!   no password. Throttling is the directory's, shared with IMAP and SMTP.
//! - STLS (RFC 2595 §4): input pipelined after STLS is discarded before the handshake, and the
//!   session forgets a pending USER.
//! - Replies are written to a buffer and flushed when the input buffer holds no complete
//!   command, so pipelined commands (RFC 2449 §6.6) get their replies in one write.
//! - A login registers with the directory (`LiveSession`): when the account's password
//!   changes or it is disabled or removed, the session answers `-ERR [AUTH]` and closes without
//!   the UPDATE state (nothing marked deleted is removed); pipelined commands are not run.
//! - Never logged: PASS arguments and SASL data (the codec wraps them in a redacted type).
#![forbid(unsafe_code)]

mod auth;
mod lock;
mod maildrop;
mod session;
mod transaction;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tern_common::config::Config;
use tern_common::listener::{Connection, Service};
use tern_directory::Directory;
use tern_store::Store;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::lock::MaildropLocks;

/// The line the listener runtime sends to a connection refused by a connection limit.
pub const REFUSAL: &[u8] = b"-ERR [SYS/TEMP] Too many connections\r\n";

/// Protocol errors (unknown commands, bad arguments, wrong state) tolerated before the
/// session is closed.
pub const DEFAULT_MAX_ERRORS: u32 = 20;

/// What every POP3 session shares. Build one with [`Pop3Context::new`] or
/// [`Pop3Context::from_config`], adjust the public fields, wrap it in an `Arc`.
pub struct Pop3Context {
    /// The message store.
    pub store: Store,
    /// Accounts and authentication.
    pub directory: Directory,
    /// For STLS and implicit TLS; without it STLS is not offered.
    pub tls: Option<TlsAcceptor>,
    /// Named in the greeting and the sign-off.
    pub hostname: String,
    /// Allow USER/PASS and AUTH PLAIN/LOGIN without TLS from loopback addresses.
    pub allow_plaintext_on_loopback: bool,
    /// Autologout timer (RFC 1939 §3 asks for at least 10 minutes), for each command line as
    /// a whole: a client trickling octets (slowloris) is logged out like an idle one. A write
    /// that makes no progress for as long (the client stopped reading) ends the session too.
    pub idle_timeout: Duration,
    /// Limit for a TLS handshake (implicit TLS and STLS).
    pub tls_handshake_timeout: Duration,
    /// Protocol errors tolerated before the session is closed.
    pub max_errors: u32,
    locks: MaildropLocks,
}

impl Pop3Context {
    /// A context with defaults: no TLS, no plaintext on loopback, 10-minute idle timeout,
    /// 30-second handshake timeout, 20 errors.
    pub fn new(store: Store, directory: Directory, hostname: impl Into<String>) -> Pop3Context {
        Pop3Context {
            store,
            directory,
            tls: None,
            hostname: hostname.into(),
            allow_plaintext_on_loopback: false,
            idle_timeout: Duration::from_secs(600),
            tls_handshake_timeout: Duration::from_secs(30),
            max_errors: DEFAULT_MAX_ERRORS,
            locks: MaildropLocks::default(),
        }
    }

    /// A context from the server configuration: hostname, `auth.allow_plaintext_on_loopback`,
    /// `limits.idle_timeout` and `limits.tls_handshake_timeout`.
    pub fn from_config(
        config: &Config,
        store: Store,
        directory: Directory,
        tls: Option<TlsAcceptor>,
    ) -> Pop3Context {
        Pop3Context {
            tls,
            allow_plaintext_on_loopback: config.auth.allow_plaintext_on_loopback,
            idle_timeout: config.limits.idle_timeout,
            tls_handshake_timeout: config.limits.tls_handshake_timeout,
            ..Pop3Context::new(store, directory, config.hostname.clone())
        }
    }

    /// Whether a POP3 session currently holds the maildrop of `account`.
    pub fn is_locked(&self, account: tern_store::AccountId) -> bool {
        self.locks.is_locked(account)
    }
}

impl std::fmt::Debug for Pop3Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3Context")
            .field("hostname", &self.hostname)
            .field("tls", &self.tls.is_some())
            .field(
                "allow_plaintext_on_loopback",
                &self.allow_plaintext_on_loopback,
            )
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

/// The listener-runtime service: `runtime.bind(&cfg, tern_pop3::REFUSAL, tern_pop3::service(ctx))`.
pub fn service(ctx: Arc<Pop3Context>) -> impl Service {
    move |conn: Connection| serve(Arc::clone(&ctx), conn)
}

/// Runs one POP3 session on an accepted connection (TLS handshake first on implicit-TLS
/// listeners), until QUIT, disconnect, idle timeout or shutdown.
pub async fn serve(ctx: Arc<Pop3Context>, conn: Connection) {
    let Connection {
        stream,
        peer,
        tls,
        shutdown,
        ..
    } = conn;
    let implicit = tls == tern_common::config::TlsMode::Implicit;
    serve_stream(ctx, stream, peer, implicit, shutdown).await;
}

/// Runs one POP3 session over any byte stream (TCP, an in-memory duplex in tests). With
/// `implicit_tls` the stream starts with a TLS handshake (port 995, RFC 8314); otherwise it is
/// cleartext and may be upgraded with STLS.
pub async fn serve_stream<S>(
    ctx: Arc<Pop3Context>,
    stream: S,
    peer: SocketAddr,
    implicit_tls: bool,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    session::run(ctx, stream, peer, implicit_tls, shutdown).await;
}

#[cfg(test)]
mod tests;
