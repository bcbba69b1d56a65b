//! The SMTP client: one connection to a next hop, over which several messages can be sent.
//!
//! Replies are parsed by smtp-proto (`ResponseReceiver` for every reply, `EhloResponse` for the
//! EHLO capabilities); this module owns the session logic: greeting, EHLO with HELO fallback,
//! STARTTLS, AUTH PLAIN/LOGIN, PIPELINING of MAIL and RCPT, DATA with dot-stuffing or BDAT,
//! per-recipient results, RSET between messages, QUIT — each step under its RFC 5321 §4.5.3.2
//! timeout, and all of them under one deadline for the whole attempt (`outbound.attempt_timeout`),
//! so a server answering each command just before its timeout cannot hold a connection for hours.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use smtp_proto::response::parser::ResponseReceiver;
use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, EXT_8BIT_MIME, EXT_AUTH, EXT_CHUNKING, EXT_DSN, EXT_PIPELINING,
    EXT_SMTP_UTF8, EXT_START_TLS, EhloResponse, Response,
};
use tern_common::Secret;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

pub use super::envelope::{Envelope, EnvelopeRecipient};
pub use super::tls::TlsConnectors;

/// Longest reply we read (all lines together); RFC 5321 §4.5.3.1.5 allows 512 octets per line.
const MAX_REPLY: usize = 64 * 1024;

/// RFC 5321 §4.5.3.2 client timeouts, each capped by the configured maximum.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect (not in the RFC).
    pub connect: Duration,
    /// §4.5.3.2.1 initial 220 message: 5 minutes.
    pub greeting: Duration,
    /// §4.5.3.2.2 MAIL: 5 minutes (also EHLO, STARTTLS, AUTH, RSET, QUIT).
    pub mail: Duration,
    /// §4.5.3.2.3 RCPT: 5 minutes.
    pub rcpt: Duration,
    /// §4.5.3.2.4 DATA initiation: 2 minutes.
    pub data_init: Duration,
    /// §4.5.3.2.5 data block: 3 minutes (each write of message text).
    pub data_block: Duration,
    /// §4.5.3.2.6 DATA termination: 10 minutes.
    pub data_end: Duration,
}

impl Timeouts {
    /// The RFC values, none longer than `cap`.
    pub fn rfc5321(connect: Duration, cap: Duration) -> Timeouts {
        let m = |minutes: u64| Duration::from_secs(minutes * 60).min(cap);
        Timeouts {
            connect,
            greeting: m(5),
            mail: m(5),
            rcpt: m(5),
            data_init: m(2),
            data_block: m(3),
            data_end: m(10),
        }
    }
}

/// Why a connection-level step failed. Replies to MAIL/RCPT/DATA are results, not errors.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Network problem, timeout, or a reply we cannot parse: try again (another host, later).
    #[error("{0}")]
    Io(String),
    /// The attempt's deadline passed during `step`: try again later.
    #[error(
        "{step}: the attempt was cut off after outbound.attempt_timeout (the server answers too slowly)"
    )]
    Deadline {
        /// What was running, e.g. "connect to 192.0.2.1:25" or "waiting for a reply".
        step: String,
    },
    /// The server answered a session step (greeting, EHLO, STARTTLS, AUTH) with an error reply.
    #[error("{step}: {reply}")]
    Rejected {
        /// The step, e.g. "greeting".
        step: &'static str,
        /// The server's reply.
        reply: Reply,
    },
}

impl ClientError {
    /// Whether the failure is permanent (a 5xx reply); network problems never are.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ClientError::Rejected { reply, .. } if reply.is_permanent())
    }
}

fn io_err(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Io(format!("{what}: {e}"))
}

/// One server reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The RFC 3463 enhanced status code, if the server sent one.
    pub esc: Option<[u8; 3]>,
    /// The text, lines joined by spaces.
    pub text: String,
}

impl Reply {
    fn from_response(r: Response<String>) -> Reply {
        Reply {
            code: r.code,
            esc: (r.esc[0] != 0).then_some(r.esc),
            text: r.message.replace(['\r', '\n'], " ").trim().to_owned(),
        }
    }

    /// A reply made up locally (for DSNs and logs), e.g. `Reply::local(550, [5,6,7], "...")`.
    pub fn local(code: u16, esc: [u8; 3], text: impl Into<String>) -> Reply {
        Reply {
            code,
            esc: Some(esc),
            text: text.into(),
        }
    }

    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 5xx.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The enhanced status code, or one derived from the reply class (RFC 3463 §3.1: x.0.0).
    pub fn status(&self) -> String {
        match self.esc {
            Some([a, b, c]) => format!("{a}.{b}.{c}"),
            None => format!("{}.0.0", self.code / 100),
        }
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.esc {
            Some([a, b, c]) => write!(f, "{} {a}.{b}.{c} {}", self.code, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

/// Plain TCP or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What the server offered in EHLO (all zero after HELO).
#[derive(Debug, Clone, Copy, Default)]
pub struct Capabilities {
    /// smtp-proto `EXT_*` bits.
    pub bits: u32,
    /// smtp-proto `AUTH_*` bits.
    pub auth: u64,
    /// RFC 1870 SIZE limit; 0 = none given.
    pub size: usize,
}

impl Capabilities {
    /// Whether an `EXT_*` extension was offered.
    pub fn has(&self, ext: u32) -> bool {
        self.bits & ext != 0
    }
}

/// The outcome of one transaction.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// One final reply per recipient (in envelope order): the RCPT reply if it refused the recipient,
    /// else the reply to the end of data.
    Replies(Vec<Reply>),
    /// MAIL FROM was refused: the reply applies to every recipient.
    MailRejected(Reply),
}

/// An open SMTP session.
pub struct Client {
    stream: Option<Stream>,
    buf: Vec<u8>,
    timeouts: Timeouts,
    /// The end of the whole attempt; every step's timeout is cut short there.
    deadline: Instant,
    /// What the last EHLO offered.
    pub caps: Capabilities,
    /// Whether TLS is active.
    pub tls: bool,
    peer: SocketAddr,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.peer)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects and reads the greeting (RFC 5321 §3.1: 220, anything else ends the attempt); every
    /// step from now on ends at `deadline` at the latest.
    pub async fn connect(
        addr: SocketAddr,
        timeouts: Timeouts,
        deadline: Instant,
    ) -> Result<Client, ClientError> {
        let tcp = tcp_connect(addr, timeouts.connect, deadline).await?;
        let _ = tcp.set_nodelay(true);
        let mut client = Client {
            stream: Some(Stream::Plain(tcp)),
            buf: Vec::new(),
            timeouts,
            deadline,
            caps: Capabilities::default(),
            tls: false,
            peer: addr,
        };
        let greeting = client.read_reply(timeouts.greeting).await?;
        if greeting.code != 220 {
            return Err(ClientError::Rejected {
                step: "greeting",
                reply: greeting,
            });
        }
        Ok(client)
    }

    /// Wraps the connection in TLS from the first byte (RFC 8314 implicit TLS), then reads the greeting.
    pub async fn connect_tls(
        addr: SocketAddr,
        timeouts: Timeouts,
        deadline: Instant,
        connector: &TlsConnector,
        server_name: ServerName<'static>,
    ) -> Result<Client, ClientError> {
        let tcp = tcp_connect(addr, timeouts.connect, deadline).await?;
        let tls = timed(
            "TLS handshake",
            timeouts.mail,
            deadline,
            connector.connect(server_name, tcp),
        )
        .await?
        .map_err(|e| io_err("TLS handshake", e))?;
        let mut client = Client {
            stream: Some(Stream::Tls(Box::new(tls))),
            buf: Vec::new(),
            timeouts,
            deadline,
            caps: Capabilities::default(),
            tls: true,
            peer: addr,
        };
        let greeting = client.read_reply(timeouts.greeting).await?;
        if greeting.code != 220 {
            return Err(ClientError::Rejected {
                step: "greeting",
                reply: greeting,
            });
        }
        Ok(client)
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// EHLO, falling back to HELO when EHLO is not understood (RFC 5321 §3.2: 500/502, also 5xx in
    /// general since old servers vary).
    pub async fn hello(&mut self, name: &str) -> Result<(), ClientError> {
        self.write(format!("EHLO {name}\r\n").as_bytes()).await?;
        let raw = self.read_raw(self.timeouts.mail).await?;
        let reply = parse_reply(&raw)?;
        if reply.code == 250 {
            // smtp-proto's EHLO parser reads the capability lines.
            let ehlo = EhloResponse::parse(&mut raw.iter())
                .map_err(|e| io_err("unparseable EHLO reply", format!("{e:?}")))?;
            self.caps = Capabilities {
                bits: ehlo.capabilities,
                auth: ehlo.auth_mechanisms,
                size: ehlo.size,
            };
            return Ok(());
        }
        if !reply.is_permanent() {
            return Err(ClientError::Rejected {
                step: "EHLO",
                reply,
            });
        }
        self.write(format!("HELO {name}\r\n").as_bytes()).await?;
        let reply = self.read_reply(self.timeouts.mail).await?;
        if reply.code != 250 {
            return Err(ClientError::Rejected {
                step: "HELO",
                reply,
            });
        }
        self.caps = Capabilities::default();
        Ok(())
    }

    /// STARTTLS (RFC 3207): on 220 the handshake follows; the caller must EHLO again (§4.2).
    pub async fn starttls(
        &mut self,
        connector: &TlsConnector,
        server_name: ServerName<'static>,
    ) -> Result<(), ClientError> {
        self.write(b"STARTTLS\r\n").await?;
        let reply = self.read_reply(self.timeouts.mail).await?;
        if reply.code != 220 {
            return Err(ClientError::Rejected {
                step: "STARTTLS",
                reply,
            });
        }
        // RFC 3207 §4.2: anything the server sent before the handshake is discarded.
        self.buf.clear();
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            return Err(ClientError::Io("STARTTLS on a TLS connection".into()));
        };
        let tls = timed(
            "TLS handshake",
            self.timeouts.mail,
            self.deadline,
            connector.connect(server_name, tcp),
        )
        .await?
        .map_err(|e| io_err("TLS handshake", e))?;
        self.stream = Some(Stream::Tls(Box::new(tls)));
        self.tls = true;
        self.caps = Capabilities::default();
        Ok(())
    }

    /// AUTH PLAIN (RFC 4616), or LOGIN when PLAIN is not offered (RFC 4954).
    pub async fn auth(&mut self, username: &str, password: &Secret) -> Result<(), ClientError> {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let reply = if self.caps.auth & AUTH_PLAIN != 0 || self.caps.auth & AUTH_LOGIN == 0 {
            let token = b64(format!("\0{username}\0{}", password.expose()).as_bytes());
            self.write(format!("AUTH PLAIN {token}\r\n").as_bytes())
                .await?;
            self.read_reply(self.timeouts.mail).await?
        } else {
            self.write(b"AUTH LOGIN\r\n").await?;
            let mut reply = self.read_reply(self.timeouts.mail).await?;
            for answer in [username.as_bytes(), password.expose().as_bytes()] {
                if reply.code != 334 {
                    break;
                }
                self.write(format!("{}\r\n", b64(answer)).as_bytes())
                    .await?;
                reply = self.read_reply(self.timeouts.mail).await?;
            }
            reply
        };
        if reply.code != 235 {
            return Err(ClientError::Rejected {
                step: "AUTH",
                reply,
            });
        }
        Ok(())
    }

    /// One mail transaction. MAIL and the RCPTs go in one write when the server offers PIPELINING
    /// (RFC 2920 §3.1); the message follows with BDAT LAST when CHUNKING is offered (RFC 3030), else
    /// DATA with dot-stuffing (RFC 5321 §4.5.2). `message` must use CRLF line endings.
    pub async fn send(
        &mut self,
        envelope: &Envelope<'_>,
        message: &[u8],
    ) -> Result<SendOutcome, ClientError> {
        let (mail, rcpts) = envelope.commands(&self.caps, message.len());
        let mail_reply;
        let mut rcpt_replies = Vec::with_capacity(rcpts.len());
        if self.caps.has(EXT_PIPELINING) {
            let mut batch = mail.into_bytes();
            rcpts
                .iter()
                .for_each(|r| batch.extend_from_slice(r.as_bytes()));
            self.write(&batch).await?;
            mail_reply = self.read_reply(self.timeouts.mail).await?;
            for _ in &rcpts {
                rcpt_replies.push(self.read_reply(self.timeouts.rcpt).await?);
            }
            if !mail_reply.is_positive() {
                return Ok(SendOutcome::MailRejected(mail_reply));
            }
        } else {
            self.write(mail.as_bytes()).await?;
            mail_reply = self.read_reply(self.timeouts.mail).await?;
            if !mail_reply.is_positive() {
                return Ok(SendOutcome::MailRejected(mail_reply));
            }
            for r in &rcpts {
                self.write(r.as_bytes()).await?;
                rcpt_replies.push(self.read_reply(self.timeouts.rcpt).await?);
            }
        }
        if !rcpt_replies.iter().any(Reply::is_positive) {
            // Nothing to send: end the transaction (RFC 5321 §4.1.1.5).
            self.rset().await?;
            return Ok(SendOutcome::Replies(rcpt_replies));
        }
        let final_reply = if self.caps.has(EXT_CHUNKING) {
            // RFC 3030 §2: one chunk with LAST; no dot-stuffing.
            let mut chunk = format!("BDAT {} LAST\r\n", message.len()).into_bytes();
            chunk.extend_from_slice(message);
            self.write_timed(&chunk, self.timeouts.data_block).await?;
            self.read_reply(self.timeouts.data_end).await?
        } else {
            self.write(b"DATA\r\n").await?;
            let go = self.read_reply(self.timeouts.data_init).await?;
            if go.code != 354 {
                go
            } else {
                let body = dot_stuff(message);
                self.write_timed(&body, self.timeouts.data_block).await?;
                self.read_reply(self.timeouts.data_end).await?
            }
        };
        Ok(SendOutcome::Replies(
            rcpt_replies
                .into_iter()
                .map(|r| {
                    if r.is_positive() {
                        final_reply.clone()
                    } else {
                        r
                    }
                })
                .collect(),
        ))
    }

    /// RSET (between messages on one connection, or after a failed transaction).
    pub async fn rset(&mut self) -> Result<(), ClientError> {
        self.write(b"RSET\r\n").await?;
        let reply = self.read_reply(self.timeouts.mail).await?;
        if !reply.is_positive() {
            return Err(ClientError::Rejected {
                step: "RSET",
                reply,
            });
        }
        Ok(())
    }

    /// QUIT and close; errors are ignored (the work is done).
    pub async fn quit(mut self) {
        if self.write(b"QUIT\r\n").await.is_ok() {
            let _ = self.read_reply(self.timeouts.mail).await;
        }
        if let Some(mut s) = self.stream.take() {
            let _ = s.shutdown().await;
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.write_timed(bytes, self.timeouts.mail).await
    }

    async fn write_timed(&mut self, bytes: &[u8], limit: Duration) -> Result<(), ClientError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(ClientError::Io("connection closed".into()));
        };
        let io = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        timed("write", limit, self.deadline, io)
            .await?
            .map_err(|e| io_err("write", e))
    }

    /// Reads one complete reply and parses it with smtp-proto.
    async fn read_reply(&mut self, limit: Duration) -> Result<Reply, ClientError> {
        let raw = self.read_raw(limit).await?;
        parse_reply(&raw)
    }

    /// Reads the lines of one reply (up to the line whose fourth octet is not `-`).
    async fn read_raw(&mut self, limit: Duration) -> Result<Vec<u8>, ClientError> {
        // One timeout for the whole reply, however the server splits it.
        let until = Instant::now() + limit;
        loop {
            if let Some(end) = reply_end(&self.buf) {
                let rest = self.buf.split_off(end);
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            if self.buf.len() > MAX_REPLY {
                return Err(ClientError::Io("reply too long".into()));
            }
            let Some(stream) = self.stream.as_mut() else {
                return Err(ClientError::Io("connection closed".into()));
            };
            let mut chunk = [0u8; 4096];
            let left = until.saturating_duration_since(Instant::now());
            let n = timed(
                "waiting for a reply",
                left,
                self.deadline,
                stream.read(&mut chunk),
            )
            .await?
            .map_err(|e| io_err("read", e))?;
            if n == 0 {
                return Err(ClientError::Io("connection closed by the server".into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Runs `step` for at most `limit`, and not past `deadline` (the attempt's end): a timeout names
/// which of the two ran out.
async fn timed<T>(
    what: &str,
    limit: Duration,
    deadline: Instant,
    step: impl std::future::Future<Output = T>,
) -> Result<T, ClientError> {
    let own = Instant::now() + limit;
    match tokio::time::timeout_at(own.min(deadline), step).await {
        Ok(v) => Ok(v),
        Err(_) if deadline <= own => Err(ClientError::Deadline {
            step: what.to_owned(),
        }),
        Err(_) => Err(ClientError::Io(format!("{what}: timed out"))),
    }
}

async fn tcp_connect(
    addr: SocketAddr,
    limit: Duration,
    deadline: Instant,
) -> Result<TcpStream, ClientError> {
    let what = format!("connect to {addr}");
    timed(&what, limit, deadline, TcpStream::connect(addr))
        .await?
        .map_err(|e| io_err(&what, e))
}

/// RFC 5321 §4.2.1: `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`.
/// The end offset of the first complete reply in `buf`, if there is one.
fn reply_end(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(lf) = buf[start..].iter().position(|&b| b == b'\n') {
        let line = &buf[start..start + lf + 1];
        start += lf + 1;
        if line.get(3) != Some(&b'-') {
            return Some(start);
        }
    }
    None
}

fn parse_reply(raw: &[u8]) -> Result<Reply, ClientError> {
    ResponseReceiver::default()
        .parse(&mut raw.iter())
        .map(Reply::from_response)
        .map_err(|e| {
            io_err(
                "unparseable reply",
                format!(
                    "{e:?}: {:?}",
                    String::from_utf8_lossy(&raw[..raw.len().min(200)])
                ),
            )
        })
}

/// RFC 5321 §4.5.2: a line starting with "." gets another "."; the text ends with CRLF "." CRLF.
pub(crate) fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The capability bit for STARTTLS, re-exported for the worker.
pub(crate) const STARTTLS: u32 = EXT_START_TLS;
/// The capability bit for AUTH.
pub(crate) const AUTH: u32 = EXT_AUTH;
/// The capability bit for SMTPUTF8.
pub(crate) const SMTPUTF8: u32 = EXT_SMTP_UTF8;
/// The capability bit for 8BITMIME.
pub(crate) const EIGHTBITMIME: u32 = EXT_8BIT_MIME;
/// The capability bit for DSN (RFC 3461).
pub(crate) const DSN: u32 = EXT_DSN;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(
            dot_stuff(b".a\r\nb\r\n..c\r\n"),
            b"..a\r\nb\r\n...c\r\n.\r\n"
        );
        assert_eq!(dot_stuff(b"no newline"), b"no newline\r\n.\r\n");
    }

    #[test]
    fn a_multiline_reply_ends_at_the_line_without_a_dash() {
        assert_eq!(reply_end(b"250-a\r\n250-b\r\n"), None);
        assert_eq!(reply_end(b"250-a\r\n250 b\r\nxx"), Some(14));
        assert_eq!(reply_end(b"220\r\n"), Some(5));
    }

    /// A server that accepts and never says a word.
    async fn silent_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn the_attempt_deadline_cuts_a_step_short_and_says_so() {
        let (addr, task) = silent_server().await;
        let timeouts = Timeouts::rfc5321(Duration::from_secs(5), Duration::from_secs(5));
        let started = Instant::now();
        let deadline = started + Duration::from_millis(200);
        let err = Client::connect(addr, timeouts, deadline).await.unwrap_err();
        assert!(matches!(err, ClientError::Deadline { .. }), "{err}");
        assert!(
            err.to_string().contains("outbound.attempt_timeout"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        // The step's own timeout, when it comes first, is an ordinary timeout.
        let short = Timeouts::rfc5321(Duration::from_secs(5), Duration::from_millis(100));
        let far = Instant::now() + Duration::from_secs(60);
        let err = Client::connect(addr, short, far).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Io(t) if t.contains("timed out")),
            "{err}"
        );
        task.abort();
    }

    #[test]
    fn replies_are_parsed_with_their_enhanced_status() {
        let r = parse_reply(b"550-5.1.1 no such\r\n550 5.1.1 user\r\n").unwrap();
        assert_eq!(r.code, 550);
        assert_eq!(r.status(), "5.1.1");
        assert!(r.is_permanent());
        let plain = parse_reply(b"451 try later\r\n").unwrap();
        assert_eq!(plain.status(), "4.0.0");
    }
}
