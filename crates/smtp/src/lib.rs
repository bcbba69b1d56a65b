//! SMTP server sessions: MX (RFC 5321, port 25), submission (RFC 6409, 587 with STARTTLS and
//! 465 with implicit TLS, RFC 8314) and LMTP (RFC 2033). Parsing is smtp-proto's; the session
//! logic, limits and policy are ours; messages go to `tern_delivery::Pipeline`.
//!
//! Implementation notes (the invariants of this crate):
//! - **250 means durable.** The reply to the final dot / `BDAT LAST` is written only after
//!   [`tern_delivery::Pipeline::deliver`] returned, and it reflects the outcome: a pipeline
//!   error gives `451 4.3.0`, never 250. Nothing is stored before the end of the message, so a
//!   client that disconnects mid-DATA leaves nothing behind.
//! - **One message is one message.** DATA ends only at exactly `<CRLF>.<CRLF>`
//!   (`message::DataText`; not smtp-proto's `DataReceiver`, which also ends at
//!   `<CRLF>.<CR><CR><LF>`); afterwards a message containing a bare CR or LF is refused with
//!   `550 5.6.0` (RFC 5321 §2.3.8; SMTP smuggling, CVE-2023-51766 class) — never normalised,
//!   never split. BDAT chunks are taken by exact octet count and always consumed, even when
//!   refused (RFC 3030 §2), so their content is never read as commands.
//! - **STARTTLS forgets.** Input pipelined after STARTTLS is discarded before the handshake
//!   (CVE-2011-0411) and the EHLO name, envelope and any SASL state are dropped
//!   (RFC 3207 §4.2); the client must EHLO again.
//! - **Limits are states, not buffers.** Command lines are at most 512 octets (RFC 5321
//!   §4.5.3.1.4; MAIL 1536 and RCPT 1024 for extension parameters, AUTH and SASL lines 12288
//!   per RFC 4954 §4); a longer line is dropped as it arrives and answered `500 5.5.2`. Message text is kept
//!   up to `max_message_size`; beyond it the rest is read and dropped and the answer is
//!   `552 5.3.4`. Text lines longer than 1000 octets are accepted (real mail has them); only
//!   the total size is bounded. After `max_errors` error replies the session gets `421` and
//!   is closed; `command_timeout` (RFC 5321 §4.5.3.2.7) and `data_timeout` (§4.5.3.2.6)
//!   close idle sessions with `421 4.4.2`. The command timeout is for a whole command line,
//!   not for each read, so a client trickling octets (slowloris) is closed like an idle one;
//!   a client that stops reading its replies is dropped when a write makes no progress for
//!   as long. A whole message has a deadline besides (`data_deadline_*`: DATA from `354` to
//!   the final dot, BDAT from the first chunk to the last), after which it gets `421 4.4.2`.
//! - **Message text does not pile up in memory** (`body`): past a threshold (256 KiB) it goes
//!   to an unlinked file in `<data_dir>/spool/`, and whole messages come back into memory
//!   for delivery only under one budget shared by all sessions; small messages never touch
//!   the disk.
//! - **Recipients are checked at RCPT** against the directory: unknown local user
//!   `550 5.1.1`; a domain not ours from an unauthenticated client `554 5.7.1` (relay denied).
//!   The domain is always what follows the last `@` of the path smtp-proto returns (source
//!   routes dropped per RFC 5321 §3.6.1/§4.1.1.3, quotes removed), so `user%other@ours`,
//!   `"user@other"@ours` and `@ours:user@other` cannot relay.
//! - **Submission** needs AUTH before MAIL (`530 5.7.0`); AUTH is offered and accepted only
//!   over TLS, or from loopback when `allow_plaintext_on_loopback` is set (else
//!   `530 5.7.0 Must issue a STARTTLS command first`). MAIL FROM must be an address the
//!   account may send as (`Directory::owns_address`: own address, sub-addresses, send-as
//!   list; `553 5.7.1`; the null sender too). At the end of the message the pipeline checks
//!   `From:`/`Sender:` the same way (`550 5.7.1 <addr> is not an address you may send as`,
//!   `550 5.6.0` for none or several From:, groups, no address) before anything is stored,
//!   and adds a missing `Date:` and `Message-ID:` (RFC 6409 §8) for
//!   `InboundKind::Submission`.
//! - **Remote recipients are queued**, in the same store transaction as the local copies, so
//!   the 250 covers both: an authenticated submission may send to any domain (RFC 6409 §5), and
//!   the external targets of one of our aliases are forwarded (MX, LMTP and submission alike).
//!   Nobody else can reach a foreign domain (relay denied above). The queue worker, routing,
//!   SMTP client and DSNs live in [`outbound`].
//! - **Replies:** one for the whole message on SMTP (RFC 5321): 250 when every recipient got
//!   it, also 250 (with the others logged) when some did, else 451 if any failure was
//!   temporary, else 550. LMTP answers once per accepted RCPT (RFC 2033 §4.2).
//! - **DSN (RFC 3461)** is offered after EHLO/LHLO; RET/ENVID and NOTIFY/ORCPT travel with
//!   the message into the queue. A recipient stored here that asked for NOTIFY=SUCCESS gets a
//!   "delivered" (or for an alias with several targets "expanded") DSN, delivered on its own
//!   task after the commit: it never delays or changes the 250. LMTP leaves that to its client.
//! - **No backscatter or reflection through DSNs.** Success DSNs go only to a reverse-path that
//!   authenticated (submission) or passed SPF; failure DSNs never to one that failed SPF or
//!   DMARC; a DSN returns only the real header block (≤ 16 KiB) unless the sender authenticated
//!   and asked for RET=FULL; DSNs to one domain are capped per hour (`DsnLimiter`, shared by
//!   the sessions and the queue worker).
//! - **Revoked logins end.** An AUTH registers with the directory (`LiveSession`): when the
//!   account's password changes or it is disabled or removed, the session answers
//!   `421 4.7.0` (RFC 5321 §3.8) and closes, a message being received is dropped, and
//!   pipelined commands are not run.
//! - **Logging:** one line per session end and one per message, with the session id; never
//!   AUTH lines or SASL data.
#![forbid(unsafe_code)]

mod cmd;
mod error;
mod message;
pub mod outbound;
mod reply;
mod session;
mod state;
mod tls_info;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tern_common::config::{Config, Limits, Protocol, TlsMode};
use tern_common::disk::FreeSpace;
use tern_common::listener::{Connection, Service};
use tern_directory::Directory;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::delivery::Pipeline;
use crate::session::Session;
use crate::state::{Flavor, SessionState};
pub use tern_common::body::{MemoryBudget, Spool, Spooling};

pub(crate) use tern_delivery as delivery;

/// The line the listener runtime sends to a connection refused by a connection limit.
pub const REFUSAL: &[u8] = b"421 4.7.0 Too many connections, try again later\r\n";

/// Error replies tolerated before a session is closed with 421.
pub const DEFAULT_MAX_ERRORS: u32 = 20;
/// Failed AUTH attempts tolerated per session before it is closed with 421 (the directory's
/// throttling counts across sessions).
pub const DEFAULT_MAX_AUTH_FAILURES: u32 = 3;

/// What every SMTP session shares. Build one with [`SmtpContext::new`] or
/// [`SmtpContext::from_config`], adjust the public fields, wrap it in an `Arc`.
pub struct SmtpContext {
    /// Where finished messages go.
    pub pipeline: Pipeline,
    /// Recipient resolution, sender ownership, AUTH.
    pub directory: Directory,
    /// For STARTTLS and implicit TLS; without it STARTTLS is not offered and implicit-TLS
    /// connections are closed.
    pub tls: Option<TlsAcceptor>,
    /// Named in the greeting and EHLO.
    pub hostname: String,
    /// Largest message in octets, advertised as `SIZE` (RFC 1870).
    pub max_message_size: u64,
    /// Recipients per message (RFC 5321 §4.5.3.1.8 asks for at least 100).
    pub max_recipients: usize,
    /// Allow AUTH without TLS from loopback addresses.
    pub allow_plaintext_on_loopback: bool,
    /// Wait for the next command (RFC 5321 §4.5.3.2.7: at least 5 minutes).
    pub command_timeout: Duration,
    /// Wait for the next piece of message text (RFC 5321 §4.5.3.2.6: 3 minutes).
    pub data_timeout: Duration,
    /// A whole message (DATA from `354` to the final dot, BDAT from the first chunk to the
    /// last, and any wait for memory budget after it) must arrive within this much time…
    pub data_deadline_base: Duration,
    /// …plus one second per this many octets of `max_message_size`. Default: 30 s + 1 s per
    /// 100 KiB (9 min for 50 MiB), so a slow link still gets a message of any size through
    /// while a client trickling text cannot keep a session past that.
    pub data_deadline_rate: u64,
    /// Spool directory, threshold and memory budget for message text.
    pub spooling: Spooling,
    /// Limit for a TLS handshake (STARTTLS and implicit TLS).
    pub tls_handshake_timeout: Duration,
    /// Error replies before the session is closed.
    pub max_errors: u32,
    /// Failed AUTH attempts before the session is closed.
    pub max_auth_failures: u32,
    /// The cap on DSNs per destination domain; share it with the outbound worker
    /// ([`outbound::Outbound::from_config`]), which sends DSNs too.
    pub dsn_limiter: Arc<outbound::dsn::DsnLimiter>,
    /// The data volume's free space: below its minimum, mail gets `452 4.3.1`.
    pub free_space: FreeSpace,
}

impl SmtpContext {
    /// A context with defaults: no TLS, 50 MiB messages, 100 recipients, no plaintext AUTH
    /// on loopback, 5-minute command and 3-minute data timeouts, 30-second handshakes,
    /// message text beyond 256 KiB in `spool` under a 256 MiB memory budget, and no free-space
    /// minimum.
    pub fn new(
        pipeline: Pipeline,
        directory: Directory,
        hostname: impl Into<String>,
        spool: Spool,
    ) -> Self {
        let max_message_size = 50 * 1024 * 1024;
        let spooling = Spooling::new(spool, Limits::default_message_memory(max_message_size));
        SmtpContext::with_spooling(pipeline, directory, hostname.into(), spooling)
    }

    /// [`SmtpContext::new`] with its spooling given.
    fn with_spooling(
        pipeline: Pipeline,
        directory: Directory,
        hostname: String,
        spooling: Spooling,
    ) -> Self {
        SmtpContext {
            pipeline,
            directory,
            tls: None,
            hostname,
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            allow_plaintext_on_loopback: false,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            data_deadline_base: Duration::from_secs(30),
            data_deadline_rate: 100 * 1024,
            spooling,
            tls_handshake_timeout: Duration::from_secs(30),
            max_errors: DEFAULT_MAX_ERRORS,
            max_auth_failures: DEFAULT_MAX_AUTH_FAILURES,
            dsn_limiter: Arc::new(outbound::dsn::DsnLimiter::new(
                tern_common::config::OutboundConfig::default().dsn_per_domain_per_hour,
            )),
            free_space: FreeSpace::unchecked(),
        }
    }

    /// A context from the server configuration: hostname, `limits` (message size,
    /// recipients, handshake timeout; the idle timeout caps the command and data timeouts),
    /// `auth.allow_plaintext_on_loopback`, `outbound.dsn_per_domain_per_hour`,
    /// `limits.min_free_space` of the data directory's volume, and the server's `spooling`
    /// ([`Spooling::from_config`]), which IMAP APPEND shares.
    pub fn from_config(
        config: &Config,
        pipeline: Pipeline,
        directory: Directory,
        tls: Option<TlsAcceptor>,
        spooling: Spooling,
    ) -> Self {
        let limits = &config.limits;
        let base =
            SmtpContext::with_spooling(pipeline, directory, config.hostname.clone(), spooling);
        SmtpContext {
            tls,
            max_message_size: limits.max_message_size,
            max_recipients: limits.max_recipients,
            allow_plaintext_on_loopback: config.auth.allow_plaintext_on_loopback,
            command_timeout: base.command_timeout.min(limits.idle_timeout),
            data_timeout: base.data_timeout.min(limits.idle_timeout),
            tls_handshake_timeout: limits.tls_handshake_timeout,
            dsn_limiter: Arc::new(outbound::dsn::DsnLimiter::new(
                config.outbound.dsn_per_domain_per_hour,
            )),
            free_space: FreeSpace::new(&config.data_dir, limits.min_free_space),
            ..base
        }
    }

    /// The deadline of a message transaction that starts now.
    pub(crate) fn message_deadline(&self) -> std::time::Instant {
        tern_common::body::deadline(
            self.data_deadline_base,
            self.data_deadline_rate,
            self.max_message_size,
        )
    }
}

impl std::fmt::Debug for SmtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpContext")
            .field("hostname", &self.hostname)
            .field("tls", &self.tls.is_some())
            .field("max_message_size", &self.max_message_size)
            .field("max_recipients", &self.max_recipients)
            .field("spooling", &self.spooling)
            .field(
                "allow_plaintext_on_loopback",
                &self.allow_plaintext_on_loopback,
            )
            .finish_non_exhaustive()
    }
}

/// Who is on the other end of a stream handed to [`serve_stream`].
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The client's address (loopback decides plaintext AUTH; recorded in `Received:`).
    pub peer: SocketAddr,
    /// Session id for logs and the `Received:` header.
    pub session_id: String,
    /// `Smtp` (MX), `Submission`, `Submissions` or `Lmtp`.
    pub protocol: Protocol,
    /// `Implicit`: handshake first; `StartTls`: offer STARTTLS (with a certificate);
    /// `None`: cleartext only.
    pub tls: TlsMode,
    /// Cancelled at server shutdown: the session says `421` and ends.
    pub shutdown: CancellationToken,
}

/// The listener-runtime service: `runtime.bind(&cfg, tern_smtp::REFUSAL, tern_smtp::service(ctx))`.
/// One service serves every SMTP-family listener; it dispatches on the connection's protocol.
pub fn service(ctx: Arc<SmtpContext>) -> impl Service {
    move |conn: Connection| serve(Arc::clone(&ctx), conn)
}

/// Runs one session on an accepted connection until QUIT, disconnect, timeout or shutdown.
pub async fn serve(ctx: Arc<SmtpContext>, conn: Connection) {
    let info = SessionInfo {
        peer: conn.peer,
        session_id: conn.session_id.to_string(),
        protocol: conn.protocol,
        tls: conn.tls,
        shutdown: conn.shutdown,
    };
    serve_stream(ctx, conn.stream, info).await;
}

/// Runs one session over any byte stream (TCP, an in-memory duplex in tests).
pub async fn serve_stream<S>(ctx: Arc<SmtpContext>, stream: S, info: SessionInfo)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(flavor) = Flavor::of(info.protocol) else {
        tracing::error!(protocol = %info.protocol, "not an SMTP-family protocol; closing");
        return;
    };
    // RFC 8314 §3.3: port 465 is TLS from the first byte.
    let implicit = info.tls == TlsMode::Implicit || info.protocol == Protocol::Submissions;
    let starttls = !implicit && info.tls == TlsMode::StartTls && ctx.tls.is_some();
    let state = SessionState::new(ctx, flavor, info.peer, info.session_id, starttls);
    Session::new(stream, state, info.shutdown)
        .run(implicit)
        .await;
}

#[cfg(test)]
mod tests;
