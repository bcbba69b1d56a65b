//! The pipeline's input ([`Inbound`]) and output ([`RecipientOutcome`]).

use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

use bytes::Bytes;
use tern_common::Address;
use tern_store::AccountId;

/// One message as a protocol session hands it to [`crate::Pipeline::deliver`].
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The reverse-path of MAIL FROM; `None` is the null reverse-path `<>` (RFC 5321 §4.5.5).
    pub mail_from: Option<Address>,
    /// The accepted recipients, in RCPT order.
    pub recipients: Vec<InboundRecipient>,
    /// The message as received: CRLF line endings, already dot-unstuffed.
    pub data: Bytes,
    /// Who sent it and how, for the `Received:` header.
    pub trace: Trace,
    /// Which door it came through.
    pub kind: InboundKind,
}

/// One accepted recipient, resolved at RCPT time (`Directory::resolve_recipient`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRecipient {
    /// The address as given in RCPT TO.
    pub address: Address,
    /// The local accounts it delivers to (an alias may name several).
    pub accounts: Vec<AccountId>,
}

/// Where a message entered Tern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundKind {
    /// Port 25: mail from another MTA.
    Mx,
    /// Message submission (RFC 6409) by an authenticated account.
    Submission {
        /// The authenticated account.
        account: AccountId,
    },
    /// LMTP (RFC 2033) from a local MTA.
    Lmtp,
}

/// The session facts recorded in the `Received:` header (RFC 5321 §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The argument of HELO/EHLO/LHLO as the client sent it.
    pub helo: String,
    /// The client's IP address.
    pub client_ip: IpAddr,
    /// The client's verified reverse-DNS name, if known.
    pub client_name: Option<String>,
    /// The `with` protocol (RFC 3848).
    pub protocol: TraceProtocol,
    /// TLS version and cipher suite, e.g. `TLS1.3 TLS13_AES_256_GCM_SHA384`; `None` without TLS.
    pub tls: Option<String>,
    /// The session id, also written to the log.
    pub session_id: String,
    /// When the message was received (end of DATA); also the INTERNALDATE.
    pub received_at: SystemTime,
}

/// The `with` protocol of a `Received:` header (RFC 3848 §3 and the IANA "Mail Transmission Types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceProtocol {
    /// SMTP after HELO.
    Smtp,
    /// SMTP after EHLO.
    Esmtp,
    /// ESMTP with TLS.
    Esmtps,
    /// ESMTP with SMTP AUTH.
    Esmtpa,
    /// ESMTP with TLS and SMTP AUTH.
    Esmtpsa,
    /// LMTP (RFC 2033).
    Lmtp,
    /// LMTP with TLS.
    Lmtps,
    /// LMTP with authentication.
    Lmtpa,
    /// LMTP with TLS and authentication.
    Lmtpsa,
}

impl TraceProtocol {
    /// The protocol of a session. RFC 3848 defines no TLS/AUTH variants of plain `SMTP`, so a HELO session
    /// is `SMTP` whatever else holds.
    pub fn of_session(lmtp: bool, ehlo: bool, tls: bool, authenticated: bool) -> TraceProtocol {
        use TraceProtocol::*;
        match (lmtp, ehlo, tls, authenticated) {
            (true, _, false, false) => Lmtp,
            (true, _, true, false) => Lmtps,
            (true, _, false, true) => Lmtpa,
            (true, _, true, true) => Lmtpsa,
            (false, false, _, _) => Smtp,
            (false, true, false, false) => Esmtp,
            (false, true, true, false) => Esmtps,
            (false, true, false, true) => Esmtpa,
            (false, true, true, true) => Esmtpsa,
        }
    }

    /// The registered keyword, e.g. `ESMTPSA`.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceProtocol::Smtp => "SMTP",
            TraceProtocol::Esmtp => "ESMTP",
            TraceProtocol::Esmtps => "ESMTPS",
            TraceProtocol::Esmtpa => "ESMTPA",
            TraceProtocol::Esmtpsa => "ESMTPSA",
            TraceProtocol::Lmtp => "LMTP",
            TraceProtocol::Lmtps => "LMTPS",
            TraceProtocol::Lmtpa => "LMTPA",
            TraceProtocol::Lmtpsa => "LMTPSA",
        }
    }
}

impl fmt::Display for TraceProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one recipient of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// The recipient, as in [`InboundRecipient::address`].
    pub address: Address,
    /// Its outcome.
    pub status: RecipientStatus,
}

/// Per-recipient result; the SMTP side maps it to a reply (LMTP: one reply per recipient, RFC 2033 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientStatus {
    /// Stored durably in every mailbox the recipient resolves to.
    Delivered,
    /// Not stored for this recipient; the sender should retry (4xx). The reason is for the reply text.
    TempFail(String),
    /// Not stored for this recipient and never will be (5xx). The reason is for the reply text.
    PermFail(String),
}
