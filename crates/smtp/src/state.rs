//! The protocol state of one session, independent of the byte stream: greeting, TLS,
//! authentication and the mail transaction in progress. Command handlers (`cmd/`) are methods
//! on [`SessionState`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tern_common::Address;
use tern_common::config::Protocol;
use tern_directory::{Account, LiveSession, SaslExchange};

use crate::SmtpContext;
use crate::cmd::MailDsn;
use crate::delivery::{InboundRecipient, TraceProtocol};
use tern_common::body::Body;

/// Which service a listener offers; decides AUTH, relaying and the reply to the final dot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Port 25: mail for our domains from anyone; no AUTH, no relaying.
    Mx,
    /// Ports 587/465: authenticated users sending as themselves (RFC 6409).
    Submission,
    /// RFC 2033: final delivery from another MTA, one reply per recipient.
    Lmtp,
}

impl Flavor {
    pub(crate) fn of(protocol: Protocol) -> Option<Flavor> {
        match protocol {
            Protocol::Smtp => Some(Flavor::Mx),
            Protocol::Submission | Protocol::Submissions => Some(Flavor::Submission),
            Protocol::Lmtp => Some(Flavor::Lmtp),
            _ => None,
        }
    }
}

/// The client's greeting.
#[derive(Debug, Clone)]
pub(crate) struct Helo {
    /// The name the client gave.
    pub(crate) name: String,
    /// EHLO or LHLO (extensions allowed), as opposed to HELO.
    pub(crate) extended: bool,
}

/// A mail transaction: from MAIL to the end of DATA / BDAT LAST, RSET, EHLO or STARTTLS.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    /// `None` for the null reverse-path `<>`.
    pub(crate) mail_from: Option<Address>,
    /// RFC 6531 §3.4: MAIL carried SMTPUTF8.
    pub(crate) smtputf8: bool,
    /// RFC 3461 §4.3 RET and §4.4 ENVID of MAIL.
    pub(crate) dsn: MailDsn,
    /// Distinct accepted recipients with the accounts they resolve to.
    pub(crate) recipients: Vec<InboundRecipient>,
    /// One entry per accepted RCPT command (duplicates included), indexing `recipients`:
    /// LMTP answers each accepted RCPT (RFC 2033 §4.2).
    pub(crate) accepted: Vec<usize>,
    /// The message so far once BDAT has been used (RFC 3030): DATA is then refused.
    pub(crate) chunks: Option<Body>,
}

/// Everything a session knows besides its byte stream.
pub(crate) struct SessionState {
    pub(crate) ctx: Arc<SmtpContext>,
    pub(crate) flavor: Flavor,
    pub(crate) peer: SocketAddr,
    pub(crate) session_id: String,
    pub(crate) helo: Option<Helo>,
    /// Description of the TLS connection (version, cipher) once TLS is active.
    pub(crate) tls: Option<String>,
    /// Whether STARTTLS may be offered (listener mode STARTTLS and a certificate).
    pub(crate) starttls_offered: bool,
    pub(crate) account: Option<Account>,
    /// The login's registration; revoked when the account's credentials change.
    pub(crate) live: Option<LiveSession>,
    pub(crate) tx: Option<Transaction>,
    /// A SASL exchange waiting for the client's next response line.
    pub(crate) sasl: Option<SaslExchange>,
    /// SCRAM: server-final data sent as a 334, waiting for the client's empty response.
    pub(crate) sasl_success: Option<Account>,
    pub(crate) errors: u32,
    pub(crate) auth_failures: u32,
    pub(crate) messages: u32,
    /// When the message now arriving must be complete: set at `354` and at the first BDAT
    /// chunk of a transaction; meaningful only while one is arriving.
    pub(crate) message_deadline: Instant,
}

impl SessionState {
    pub(crate) fn new(
        ctx: Arc<SmtpContext>,
        flavor: Flavor,
        peer: SocketAddr,
        session_id: String,
        starttls_offered: bool,
    ) -> SessionState {
        SessionState {
            ctx,
            flavor,
            peer,
            session_id,
            helo: None,
            tls: None,
            starttls_offered,
            account: None,
            live: None,
            tx: None,
            sasl: None,
            sasl_success: None,
            errors: 0,
            auth_failures: 0,
            messages: 0,
            message_deadline: Instant::now(),
        }
    }

    /// RFC 3207 §4.2: after the handshake the server discards all knowledge obtained from the
    /// client (EHLO name, envelope); the client must EHLO again.
    pub(crate) fn tls_started(&mut self, description: String) {
        self.helo = None;
        self.tx = None;
        self.account = None;
        self.live = None;
        self.sasl = None;
        self.sasl_success = None;
        self.tls = Some(description);
    }

    /// Whether STARTTLS is offered now.
    pub(crate) fn starttls_available(&self) -> bool {
        self.starttls_offered && self.tls.is_none()
    }

    /// RFC 4954 §4 with RFC 3207: passwords only over TLS, or from loopback when allowed.
    pub(crate) fn auth_allowed(&self) -> bool {
        self.flavor == Flavor::Submission
            && tern_common::session::passwords_allowed(
                self.tls.is_some(),
                self.ctx.allow_plaintext_on_loopback,
                self.peer.ip(),
            )
    }

    /// The RFC 3848 protocol word for the `Received:` header of a transaction; RFC 6531 §4.3
    /// when it used SMTPUTF8.
    pub(crate) fn trace_protocol(&self, smtputf8: bool) -> TraceProtocol {
        let extended = self.helo.as_ref().is_some_and(|h| h.extended);
        let protocol = TraceProtocol::of_session(
            self.flavor == Flavor::Lmtp,
            extended,
            self.tls.is_some(),
            self.account.is_some(),
        );
        if smtputf8 {
            protocol.with_smtputf8()
        } else {
            protocol
        }
    }

    /// The greeting word the client should have used, for 503 replies.
    pub(crate) fn hello_verb(&self) -> &'static str {
        match self.flavor {
            Flavor::Lmtp => "LHLO",
            _ => "EHLO/HELO",
        }
    }
}
