//! IMAP4rev2 (RFC 9051) server sessions with IMAP4rev1 (RFC 3501) compatibility, on Tern's
//! own sans-IO codec (`tern_proto::imap`) and the shared store.
//!
//! Implementation notes (the invariants of this crate):
//! - **One dispatch point.** `session::Session::dispatch` is the only place a command is matched
//!   against the session state (RFC 9051 §3); a command illegal in the current state is
//!   rejected there and nowhere else.
//! - **Isolation.** Every mailbox lookup goes through the session's own `AccountId`
//!   (`store.mailbox_by_name(account, ..)`); a name that belongs to another account is simply
//!   "no such mailbox". Names that try to leave the personal namespace (`..`, `~bob`, `#x`,
//!   control characters) are refused before any lookup (`names::validate`).
//! - **Synchronisation.** The selected mailbox is a `selected::SelectedMailbox` view: the
//!   seq→UID list as the client knows it plus a change-bus receiver. The bus is only a signal;
//!   what changed is read back with `changes_since(watermark)` so one code path serves
//!   NOOP, IDLE and command boundaries, and a lagged receiver falls back to a full UID resync.
//!   Before every tagged reply pending changes are turned into EXISTS / FETCH / EXPUNGE
//!   (or VANISHED under QRESYNC); RFC 9051 §7.5.1: EXPUNGE is held back while answering
//!   FETCH, STORE and SEARCH that are not UID commands, and sequence numbers always match
//!   what the client was told.
//! - **Own changes are reported once.** A STORE answers with its own FETCH responses and
//!   remembers `(uid, modseq)` so the echo from the bus is skipped; own expunges remove the
//!   UID from the view first, so their echo finds nothing to report.
//! - **Durability before the reply.** Every store write is durable when the call returns, so
//!   the tagged OK of APPEND, STORE, EXPUNGE, COPY and MOVE is sent only after it.
//! - **Passwords** are refused before TLS (`LOGINDISABLED`, `NO [PRIVACYREQUIRED]`) unless
//!   the peer is loopback and `allow_plaintext_on_loopback` is set; SCRAM-SHA-256 is always
//!   allowed. STARTTLS discards pipelined plaintext (RFC 9051 §6.2.1).
//! - **Bounded input.** Lines and literals are bounded by the codec; its errors become `BAD`
//!   or `NO [TOOBIG]` and the session survives; `max_errors` consecutive errors end it.
//!   Before login a command may carry at most 64 KiB of literals (APPENDLIMIT applies after
//!   login), and must arrive whole within the login timeout (slowloris). A client that stops
//!   reading is dropped when a write makes no progress for the login/autologout time.
//! - **`\Recent`** (IMAP4rev1 only; RFC 9051 removed it): the store keeps per mailbox the
//!   highest UID claimed as recent; a SELECT, and the selected session when new messages show
//!   up, claims what lies above it atomically (`store.claim_recent`), so each message is
//!   recent in exactly one SELECT session (`recent::Recent`). EXAMINE and STATUS only look.
//!   Sessions that ENABLEd IMAP4rev2 neither see nor claim it.
//! - **APPEND messages are not buffered whole.** Up to 64 KiB of a command's messages stay
//!   in its frame; a message literal past that is handed over by the decoder as it arrives
//!   (`Decoded::MessageData`) into a `tern_common::body::Body`: in memory up to the spool
//!   threshold (charged to the server-wide budget SMTP uses too), then in an unlinked spool
//!   file, and read back for the store only under that budget. Each literal must arrive within
//!   30 s + 1 s per 100 KiB of its size, or the session ends with `* BYE`.
//! - **MULTIAPPEND** is all or nothing (RFC 3502 §3): every message is checked (size, flags,
//!   date) before any is stored, then all go into the store in one transaction
//!   (`store.deliver_all`).
//! - SEARCH reads message content only for keys that need it (three-valued evaluation:
//!   flags, dates, sizes and UIDs decide first, then the cached header block, then the blob).
//! - **The message cache** (`message::summary`, stored per message row by `tern-store`) is
//!   computed once when a message is stored (APPEND here, delivery through the pipeline's
//!   summarizer) and answers ENVELOPE, BODY, BODYSTRUCTURE, BODY[HEADER…] and header SEARCH
//!   without the blob; messages stored before it existed are parsed and their cache filled on
//!   first use. FETCH and SEARCH read a mailbox a slice (`cmd::cache::SLICE`) at a time, the
//!   next slice while answering this one; FLAGS-only FETCH never reads a blob.
//! - **Revoked logins end.** A login registers with the directory (`LiveSession`); when the
//!   account's password changes or it is disabled or removed — by an admin command in another
//!   process too — the session says `* BYE [EXPIRED]` and closes: while waiting for a command,
//!   in IDLE, and a long FETCH stops at its next flush (`NO [EXPIRED]`, then the BYE).
//!   Commands already pipelined behind are not run.
//! - **Bounded mailboxes and LIST.** An account has at most `limits.max_mailboxes` mailboxes
//!   (CREATE/RENAME beyond: `NO [LIMIT]`), names at most 1000 octets and 32 levels. LIST/LSUB
//!   patterns are bounded in length and number, and matched within a work budget per command
//!   (`names::Matcher`: wildcard runs collapsed, literal head and tail first, then a table
//!   linear in pattern × name); beyond it `NO [LIMIT]`.
//! - Never logged: LOGIN passwords and SASL data (redacted types).
#![forbid(unsafe_code)]

mod cmd;
mod dates;
mod error;
pub mod message;
mod names;
mod recent;
mod selected;
mod session;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tern_common::body::Spooling;
use tern_common::config::Config;
use tern_common::listener::{Connection, Service};
use tern_directory::Directory;
use tern_store::Store;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The line the listener runtime sends to a connection refused by a connection limit.
pub const REFUSAL: &[u8] = b"* BYE Too many connections\r\n";

/// Consecutive protocol errors tolerated before the session is closed.
pub const DEFAULT_MAX_ERRORS: u32 = 20;

/// RFC 9051 §5.4: the autologout timer of an authenticated session is at least 30 minutes.
pub const AUTOLOGOUT: Duration = Duration::from_secs(30 * 60);

/// What every IMAP session shares. Build one with [`ImapContext::new`] or
/// [`ImapContext::from_config`], adjust the public fields, wrap it in an `Arc`.
pub struct ImapContext {
    /// The message store.
    pub store: Store,
    /// Accounts and authentication.
    pub directory: Directory,
    /// For STARTTLS and implicit TLS; without it STARTTLS is not offered.
    pub tls: Option<TlsAcceptor>,
    /// Named in the greeting.
    pub hostname: String,
    /// Allow LOGIN and AUTHENTICATE PLAIN/LOGIN without TLS from loopback addresses.
    pub allow_plaintext_on_loopback: bool,
    /// Idle limit before login.
    pub login_timeout: Duration,
    /// Idle limit after login, IDLE included (RFC 9051 §5.4: at least 30 minutes).
    pub idle_timeout: Duration,
    /// Limit for a TLS handshake (implicit TLS and STARTTLS).
    pub tls_handshake_timeout: Duration,
    /// Largest APPEND message (APPENDLIMIT, RFC 7889).
    pub append_limit: u64,
    /// Where APPEND messages larger than the spool threshold wait until the command is
    /// complete, and the memory budget for message text; shared with SMTP.
    pub spooling: Spooling,
    /// An APPEND message literal handed to a spool must arrive within this much time…
    pub append_deadline_base: Duration,
    /// …plus one second per this many octets of its announced size (default 30 s + 1 s per
    /// 100 KiB: 9 minutes for 50 MiB), so that a client trickling octets cannot keep a spool
    /// file and budget; the same wait bounds reading the messages back under the budget.
    pub append_deadline_rate: u64,
    /// Consecutive protocol errors tolerated before the session is closed.
    pub max_errors: u32,
    /// Mailboxes one account may have (CREATE/RENAME beyond: `NO [LIMIT]`).
    pub max_mailboxes: usize,
    /// The spam classifier, trained when a user moves or copies mail into or out of Junk.
    pub filter: Option<tern_filter::Filter>,
    /// The data volume's free space: below its minimum, APPEND gets `NO [OVERQUOTA]`.
    pub free_space: tern_common::disk::FreeSpace,
}

impl ImapContext {
    /// A context with defaults: no TLS, no plaintext on loopback, 10-minute login timeout,
    /// 30-minute autologout, 30-second handshake timeout, 50 MiB APPENDLIMIT, 30 s + 1 s per
    /// 100 KiB for an APPEND message, 20 errors, 10,000 mailboxes per account, no free-space
    /// minimum; large APPEND messages go to `spooling`.
    pub fn new(
        store: Store,
        directory: Directory,
        hostname: impl Into<String>,
        spooling: Spooling,
    ) -> ImapContext {
        ImapContext {
            store,
            directory,
            tls: None,
            hostname: hostname.into(),
            allow_plaintext_on_loopback: false,
            login_timeout: Duration::from_secs(600),
            idle_timeout: AUTOLOGOUT,
            tls_handshake_timeout: Duration::from_secs(30),
            append_limit: 50 * 1024 * 1024,
            spooling,
            append_deadline_base: Duration::from_secs(30),
            append_deadline_rate: 100 * 1024,
            max_errors: DEFAULT_MAX_ERRORS,
            max_mailboxes: 10_000,
            filter: None,
            free_space: tern_common::disk::FreeSpace::unchecked(),
        }
    }

    /// A context from the server configuration: hostname, `auth.allow_plaintext_on_loopback`,
    /// `limits.idle_timeout` (before login; after login at least [`AUTOLOGOUT`]),
    /// `limits.tls_handshake_timeout`, `limits.max_message_size` (APPENDLIMIT),
    /// `limits.max_mailboxes`, `limits.min_free_space` of the data directory's volume, and the
    /// server's `spooling` ([`Spooling::from_config`]), shared with SMTP.
    pub fn from_config(
        config: &Config,
        store: Store,
        directory: Directory,
        tls: Option<TlsAcceptor>,
        spooling: Spooling,
    ) -> ImapContext {
        ImapContext {
            tls,
            allow_plaintext_on_loopback: config.auth.allow_plaintext_on_loopback,
            login_timeout: config.limits.idle_timeout,
            idle_timeout: config.limits.idle_timeout.max(AUTOLOGOUT),
            tls_handshake_timeout: config.limits.tls_handshake_timeout,
            append_limit: config.limits.max_message_size,
            free_space: tern_common::disk::FreeSpace::new(
                &config.data_dir,
                config.limits.min_free_space,
            ),
            max_mailboxes: config.limits.max_mailboxes,
            ..ImapContext::new(store, directory, config.hostname.clone(), spooling)
        }
    }
}

impl std::fmt::Debug for ImapContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapContext")
            .field("hostname", &self.hostname)
            .field("tls", &self.tls.is_some())
            .field(
                "allow_plaintext_on_loopback",
                &self.allow_plaintext_on_loopback,
            )
            .field("idle_timeout", &self.idle_timeout)
            .field("append_limit", &self.append_limit)
            .field("spooling", &self.spooling)
            .finish_non_exhaustive()
    }
}

/// The listener-runtime service: `runtime.bind(&cfg, tern_imap::REFUSAL, tern_imap::service(ctx))`.
pub fn service(ctx: Arc<ImapContext>) -> impl Service {
    move |conn: Connection| serve(Arc::clone(&ctx), conn)
}

/// Runs one IMAP session on an accepted connection (TLS handshake first on implicit-TLS
/// listeners), until LOGOUT, disconnect, autologout or shutdown.
pub async fn serve(ctx: Arc<ImapContext>, conn: Connection) {
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

/// Runs one IMAP session over any byte stream (TCP, an in-memory duplex in tests). With
/// `implicit_tls` the stream starts with a TLS handshake (port 993, RFC 8314); otherwise it is
/// cleartext and may be upgraded with STARTTLS.
pub async fn serve_stream<S>(
    ctx: Arc<ImapContext>,
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
