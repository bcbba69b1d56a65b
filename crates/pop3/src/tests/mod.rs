//! Session tests: a real session over `tokio::io::duplex`, a fresh temp store and directory
//! each, driven by a scripted client.

mod auth;
mod tls;
mod transaction;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tern_common::Secret;
use tern_directory::{Account, Argon2Params, Directory, DirectoryConfig};
use tern_store::{Flags, MailboxId, MessageMeta, Store, StoreOptions, Uid};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Pop3Context, serve_stream};

pub(crate) const USER: &str = "alice@example.test";
pub(crate) const PASSWORD: &str = "correct horse battery";
pub(crate) const LOOPBACK: &str = "127.0.0.1:40000";
pub(crate) const REMOTE: &str = "192.0.2.7:40000";

/// Two messages as SMTP would store them (CRLF); the second has lines starting with dots.
pub(crate) const MSG1: &[u8] =
    b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: one\r\n\r\nHello Alice.\r\n";
pub(crate) const MSG2: &[u8] = b"From: carol@example.test\r\nSubject: two\r\n\r\nline 1\r\n.line 2 starts with a dot\r\n..\r\n.\r\nline 5\r\nline 6\r\n";

pub(crate) struct Harness {
    pub(crate) ctx: Arc<Pop3Context>,
    pub(crate) store: Store,
    pub(crate) account: Account,
    pub(crate) inbox: MailboxId,
    _dir: tempfile::TempDir,
}

pub(crate) fn fast_directory_config() -> DirectoryConfig {
    DirectoryConfig {
        argon2: Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        },
        ..DirectoryConfig::default()
    }
}

/// A store with alice@example.test, plaintext allowed on loopback, no TLS.
pub(crate) async fn harness() -> Harness {
    harness_with(fast_directory_config(), |_| {}).await
}

pub(crate) async fn harness_with(
    config: DirectoryConfig,
    adjust: impl FnOnce(&mut Pop3Context),
) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(StoreOptions {
        group_commit_window: Duration::from_millis(1),
        ..StoreOptions::new(dir.path())
    })
    .await
    .expect("open store");
    let directory = Directory::new(store.clone(), config).expect("directory");
    directory
        .add_domain("example.test")
        .await
        .expect("add domain");
    let account = directory
        .add_user(USER, &Secret::new(PASSWORD), None)
        .await
        .expect("add user");
    let inbox = store
        .mailbox_by_name(account.id, "INBOX")
        .await
        .expect("lookup")
        .expect("INBOX")
        .id;
    let mut ctx = Pop3Context::new(store.clone(), directory, "mail.example.test");
    ctx.allow_plaintext_on_loopback = true;
    adjust(&mut ctx);
    Harness {
        ctx: Arc::new(ctx),
        store,
        account,
        inbox,
        _dir: dir,
    }
}

impl Harness {
    pub(crate) async fn append(&self, body: &[u8]) -> Uid {
        self.store
            .append(
                self.inbox,
                Bytes::copy_from_slice(body),
                Flags::new(),
                1_700_000_000,
                MessageMeta::default(),
            )
            .await
            .expect("append")
            .uid
    }

    /// A harness with MSG1 and MSG2 in INBOX.
    pub(crate) async fn with_two_messages() -> Harness {
        let h = harness().await;
        h.append(MSG1).await;
        h.append(MSG2).await;
        h
    }

    /// Opens a session from `peer` (greeting not yet read).
    pub(crate) fn connect_from(&self, peer: &str) -> Client<DuplexStream> {
        self.connect_with(peer, false, CancellationToken::new())
    }

    pub(crate) fn connect_with(
        &self,
        peer: &str,
        implicit_tls: bool,
        shutdown: CancellationToken,
    ) -> Client<DuplexStream> {
        let (client, server) = tokio::io::duplex(1 << 16);
        let peer: SocketAddr = peer.parse().expect("peer address");
        let task = tokio::spawn(serve_stream(
            Arc::clone(&self.ctx),
            server,
            peer,
            implicit_tls,
            shutdown,
        ));
        Client {
            stream: client,
            buf: BytesMut::new(),
            task: Some(task),
        }
    }

    /// A session from loopback, greeting read.
    pub(crate) async fn connect(&self) -> Client<DuplexStream> {
        let mut c = self.connect_from(LOOPBACK);
        c.expect("+OK mail.example.test POP3 ready").await;
        c
    }

    /// A logged-in session from loopback.
    pub(crate) async fn login(&self) -> Client<DuplexStream> {
        let mut c = self.connect().await;
        c.send(&format!("USER {USER}")).await;
        c.expect("+OK").await;
        c.send(&format!("PASS {PASSWORD}")).await;
        c.expect("+OK Logged in").await;
        c
    }

    pub(crate) async fn uids(&self) -> Vec<Uid> {
        self.store
            .messages(self.inbox)
            .await
            .expect("messages")
            .iter()
            .map(|m| m.uid)
            .collect()
    }
}

/// The scripted client: `c.send("STAT").await; c.expect("+OK 2 320").await;`.
pub(crate) struct Client<S> {
    pub(crate) stream: S,
    buf: BytesMut,
    task: Option<JoinHandle<()>>,
}

const TIMEOUT: Duration = Duration::from_secs(10);

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub(crate) fn wrap(stream: S) -> Client<S> {
        Client {
            stream,
            buf: BytesMut::new(),
            task: None,
        }
    }

    /// Sends one command line (CRLF added).
    pub(crate) async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    async fn fill(&mut self) -> bool {
        let n = tokio::time::timeout(TIMEOUT, self.stream.read_buf(&mut self.buf))
            .await
            .expect("server answered in time")
            .expect("read");
        n > 0
    }

    /// The next line, without CRLF; `None` at end of stream.
    pub(crate) async fn try_line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf.split_to(pos + 2);
                return Some(String::from_utf8_lossy(&line[..pos]).into_owned());
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    pub(crate) async fn line(&mut self) -> String {
        self.try_line().await.expect("a line before end of stream")
    }

    /// Reads a line and checks that it starts with `prefix`; returns it.
    pub(crate) async fn expect(&mut self, prefix: &str) -> String {
        let line = self.line().await;
        assert!(
            line.starts_with(prefix),
            "expected {prefix:?}, got {line:?}"
        );
        line
    }

    /// Reads the lines of a multi-line response up to the terminating ".", still stuffed.
    pub(crate) async fn lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let line = self.line().await;
            if line == "." {
                return out;
            }
            out.push(line);
        }
    }

    /// Reads the raw bytes of a multi-line body, terminator included.
    pub(crate) async fn raw_body(&mut self) -> Vec<u8> {
        loop {
            let end = if self.buf.starts_with(b".\r\n") {
                Some(3)
            } else {
                self.buf
                    .windows(5)
                    .position(|w| w == b"\r\n.\r\n")
                    .map(|p| p + 5)
            };
            if let Some(end) = end {
                return self.buf.split_to(end).to_vec();
            }
            assert!(self.fill().await, "body ended early");
        }
    }

    /// Asserts the server closed the connection (after any remaining lines, returned).
    pub(crate) async fn closed(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        while let Some(line) = self.try_line().await {
            rest.push(line);
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task)
                .await
                .expect("session ended")
                .expect("session did not panic");
        }
        rest
    }
}

/// Undoes dot-stuffing of a body read with [`Client::raw_body`].
pub(crate) fn unstuff(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = wire;
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if line == b"." {
            break;
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
    out
}
