//! Session tests: a real [`Session`](crate::session::Session) over `tokio::io::duplex`, a
//! fresh temporary store, directory and pipeline each, and a scripted client.

mod data;
mod dsn;
mod limits;
mod listener;
mod lmtp;
mod mx;
mod outbound;
mod peer;
mod spool;
mod submission;
mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use tern_common::Secret;
use tern_common::config::{Protocol, TlsMode};
use tern_directory::{Account, Argon2Params, Directory, DirectoryConfig};
use tern_store::{Store, StoreOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::delivery::Pipeline;
use crate::{SessionInfo, SmtpContext, serve_stream};

pub(crate) const PW: &str = "correct horse battery";
pub(crate) const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub(crate) const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A store with example.test, the users alice, bob and josé, and aliases:
/// team → alice, bob; mixed → alice, ext@remote.test; outside → ext@remote.test;
/// postmaster → bob.
pub(crate) struct Harness {
    _dir: TempDir,
    pub(crate) store: Store,
    pub(crate) alice: Account,
    pub(crate) bob: Account,
    pub(crate) jose: Account,
    pub(crate) ctx: Arc<SmtpContext>,
}

pub(crate) async fn harness() -> Harness {
    harness_with(|_| {}).await
}

pub(crate) async fn harness_with(configure: impl FnOnce(&mut SmtpContext)) -> Harness {
    harness_full(DirectoryConfig::default(), configure).await
}

pub(crate) async fn harness_full(
    config: DirectoryConfig,
    configure: impl FnOnce(&mut SmtpContext),
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).await.unwrap();
    let config = DirectoryConfig {
        // Cheap hashes: these tests are about SMTP, not argon2's cost.
        argon2: Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        },
        ..config
    };
    let directory = Directory::new(store.clone(), config).unwrap();
    directory.add_domain("example.test").await.unwrap();
    let pw = Secret::new(PW);
    let alice = directory
        .add_user("alice@example.test", &pw, None)
        .await
        .unwrap();
    let bob = directory
        .add_user("bob@example.test", &pw, None)
        .await
        .unwrap();
    let jose = directory
        .add_user("josé@example.test", &pw, None)
        .await
        .unwrap();
    for (source, target) in [
        ("team@example.test", "alice@example.test"),
        ("team@example.test", "bob@example.test"),
        ("mixed@example.test", "alice@example.test"),
        ("mixed@example.test", "ext@remote.test"),
        ("outside@example.test", "ext@remote.test"),
        ("postmaster@example.test", "bob@example.test"),
    ] {
        directory.add_alias(source, target).await.unwrap();
    }
    let pipeline = Pipeline::new(store.clone(), directory.clone(), "mx.example.test".into());
    let spool = crate::Spool::open(dir.path().join("spool")).unwrap();
    let mut ctx = SmtpContext::new(pipeline, directory.clone(), "mx.example.test", spool);
    ctx.allow_plaintext_on_loopback = true;
    configure(&mut ctx);
    Harness {
        _dir: dir,
        store,
        alice,
        bob,
        jose,
        ctx: Arc::new(ctx),
    }
}

impl Harness {
    /// The messages in an account's INBOX, as stored.
    pub(crate) async fn inbox(&self, account: &Account) -> Vec<String> {
        let inbox = self
            .store
            .mailbox_by_name(account.id, "INBOX")
            .await
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        for m in self.store.messages(inbox.id).await.unwrap() {
            let bytes = self.store.read_blob(&m.blob).await.unwrap();
            out.push(String::from_utf8(bytes.to_vec()).unwrap());
        }
        out
    }

    /// The number of messages in every test account's INBOX together.
    pub(crate) async fn total_messages(&self) -> usize {
        let mut n = 0;
        for a in [&self.alice, &self.bob, &self.jose] {
            n += self.inbox(a).await.len();
        }
        n
    }

    pub(crate) async fn mx(&self) -> Client<DuplexStream> {
        self.connect(Protocol::Smtp, LOOPBACK).await
    }

    pub(crate) async fn connect(&self, protocol: Protocol, ip: IpAddr) -> Client<DuplexStream> {
        let tls = protocol.default_tls();
        let mut c = self.start(protocol, ip, tls, "test-session").await;
        c.expect("220 ").await;
        c
    }

    /// A session without reading its greeting.
    pub(crate) async fn start(
        &self,
        protocol: Protocol,
        ip: IpAddr,
        tls: TlsMode,
        session_id: &str,
    ) -> Client<DuplexStream> {
        let (client, server) = tokio::io::duplex(1 << 20);
        let shutdown = CancellationToken::new();
        let info = SessionInfo {
            peer: SocketAddr::new(ip, 40000),
            session_id: session_id.into(),
            protocol,
            tls,
            shutdown: shutdown.clone(),
        };
        let task = tokio::spawn(serve_stream(Arc::clone(&self.ctx), server, info));
        Client {
            stream: client,
            buf: Vec::new(),
            task: Some(task),
            shutdown,
        }
    }
}

/// The scripted client side of a session.
pub(crate) struct Client<S> {
    pub(crate) stream: S,
    pub(crate) buf: Vec<u8>,
    pub(crate) task: Option<JoinHandle<()>>,
    pub(crate) shutdown: CancellationToken,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Sends one command line (CRLF added).
    pub(crate) async fn send(&mut self, line: &str) {
        self.write(format!("{line}\r\n").as_bytes()).await;
    }

    /// Sends raw octets.
    pub(crate) async fn write(&mut self, bytes: &[u8]) {
        tokio::time::timeout(IO_TIMEOUT, async {
            self.stream.write_all(bytes).await.unwrap();
            self.stream.flush().await.unwrap();
        })
        .await
        .expect("write timed out");
    }

    /// Reads one complete (possibly multi-line) reply.
    pub(crate) async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let line = self.line().await;
            assert!(
                !line.is_empty(),
                "connection closed; reply so far: {reply:?}"
            );
            reply.push_str(&line);
            let bytes = line.as_bytes();
            if bytes.len() < 4 || bytes[3] != b'-' {
                return reply;
            }
        }
    }

    /// Reads a reply and checks how it starts.
    pub(crate) async fn expect(&mut self, prefix: &str) -> String {
        let reply = self.reply().await;
        assert!(
            reply.starts_with(prefix),
            "expected {prefix:?}, got {reply:?}"
        );
        reply
    }

    /// Sends a command and checks the reply.
    pub(crate) async fn cmd(&mut self, line: &str, prefix: &str) -> String {
        self.send(line).await;
        self.expect(prefix).await
    }

    /// One line (with CRLF), or "" at end of stream.
    async fn line(&mut self) -> String {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return String::from_utf8(line).unwrap();
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(IO_TIMEOUT, self.stream.read(&mut chunk))
                .await
                .expect("read timed out")
                .unwrap_or(0);
            if n == 0 {
                return String::from_utf8(std::mem::take(&mut self.buf)).unwrap();
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Everything the server sends until it closes the connection.
    pub(crate) async fn rest(&mut self) -> String {
        let mut out = String::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                return out;
            }
            out.push_str(&line);
        }
    }

    /// Asserts that the server closed the connection and the session task ended.
    pub(crate) async fn expect_closed(&mut self) {
        let rest = self.rest().await;
        assert_eq!(rest, "", "expected the connection to be closed");
        if let Some(task) = self.task.take() {
            tokio::time::timeout(IO_TIMEOUT, task)
                .await
                .expect("session did not end")
                .unwrap();
        }
    }

    /// EHLO, returning the reply.
    pub(crate) async fn ehlo(&mut self) -> String {
        self.cmd("EHLO client.test", "250").await
    }

    /// MAIL, RCPT..., DATA with `body` (already dot-stuffed, ending in CRLF); returns the
    /// reply to the final dot.
    pub(crate) async fn transaction(&mut self, from: &str, to: &[&str], body: &str) -> String {
        self.cmd(&format!("MAIL FROM:<{from}>"), "250").await;
        for rcpt in to {
            self.cmd(&format!("RCPT TO:<{rcpt}>"), "250").await;
        }
        self.cmd("DATA", "354").await;
        self.write(body.as_bytes()).await;
        self.send(".").await;
        self.reply().await
    }
}

/// A small message with CRLF line ends.
pub(crate) fn message(subject: &str) -> String {
    message_from("sender@remote.test", subject)
}

/// [`message`] with another author (submissions must name the account in `From:`).
pub(crate) fn message_from(from: &str, subject: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: <alice@example.test>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@remote.test>\r\nDate: Tue, 15 Nov 1994 08:12:31 +0000\r\n\r\nHello {subject}.\r\n"
    )
}

/// The part of a stored message after the trace fields the pipeline added on top.
pub(crate) fn without_trace(stored: &str) -> &str {
    let mut rest = stored;
    loop {
        let Some(end) = rest.find("\r\n") else {
            return rest;
        };
        let first = &rest[..end];
        let is_trace = first.starts_with("Return-Path:") || first.starts_with("Received:");
        let is_continuation = first.starts_with(' ') || first.starts_with('\t');
        if is_trace || is_continuation {
            rest = &rest[end + 2..];
        } else {
            return rest;
        }
    }
}
