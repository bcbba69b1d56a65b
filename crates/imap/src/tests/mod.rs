//! Session tests: a real session over `tokio::io::duplex`, a fresh temp store and directory
//! each, driven by a scripted client (`c.send("a1 SELECT INBOX").await;
//! c.expect_tagged("a1 OK").await` returns the untagged lines before the tagged one).

mod append_spool;
mod auth;
mod cache;
mod fetch;
mod mailboxes;
mod messages;
mod recent;
mod search;
mod sync;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tern_common::Secret;
use tern_common::body::{Spool, Spooling};
use tern_directory::{Account, Argon2Params, Directory, DirectoryConfig};
use tern_store::{Flags, MailboxId, MessageMeta, Store, StoreOptions, Uid};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{ImapContext, serve_stream};

pub(crate) const USER: &str = "alice@example.test";
pub(crate) const OTHER: &str = "bob@example.test";
pub(crate) const PASSWORD: &str = "correct horse battery";
pub(crate) const LOOPBACK: &str = "127.0.0.1:40000";
pub(crate) const REMOTE: &str = "192.0.2.7:40000";

pub(crate) const MSG1: &[u8] = b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: one\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nHello Alice.\r\n";
pub(crate) const MSG2: &[u8] = b"From: carol@example.test\r\nTo: alice@example.test\r\nSubject: two apples\r\nDate: Wed, 15 Nov 2023 10:00:00 +0100\r\n\r\nline 1\r\nbanana split\r\n";
pub(crate) const MSG3: &[u8] = b"From: dave@example.test\r\nSubject: three\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody part\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n";

pub(crate) struct Harness {
    pub(crate) ctx: Arc<ImapContext>,
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

/// A store with alice and bob, plaintext allowed on loopback, no TLS.
pub(crate) async fn harness() -> Harness {
    harness_with(|_| {}).await
}

pub(crate) async fn harness_with(adjust: impl FnOnce(&mut ImapContext)) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(StoreOptions {
        group_commit_window: Duration::from_millis(1),
        ..StoreOptions::new(dir.path())
    })
    .await
    .expect("open store");
    let directory = Directory::new(store.clone(), fast_directory_config()).expect("directory");
    directory.add_domain("example.test").await.expect("domain");
    let account = directory
        .add_user(USER, &Secret::new(PASSWORD), None)
        .await
        .expect("add user");
    directory
        .add_user(OTHER, &Secret::new(PASSWORD), None)
        .await
        .expect("add other user");
    let inbox = store
        .mailbox_by_name(account.id, "INBOX")
        .await
        .expect("lookup")
        .expect("INBOX")
        .id;
    let spool = Spool::open(dir.path().join("spool")).expect("spool");
    let spooling = Spooling::new(spool, 64 << 20);
    let mut ctx = ImapContext::new(store.clone(), directory, "mail.example.test", spooling);
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
    /// Delivers a message into INBOX through the store (as SMTP would).
    pub(crate) async fn deliver(&self, body: &[u8]) -> Uid {
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

    /// A harness with MSG1, MSG2 and MSG3 in INBOX.
    pub(crate) async fn with_messages() -> Harness {
        let h = harness().await;
        for m in [MSG1, MSG2, MSG3] {
            h.deliver(m).await;
        }
        h
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

    /// A session from `peer` with the greeting read.
    pub(crate) async fn connect_from(&self, peer: &str) -> Client<DuplexStream> {
        let mut c = self.connect_with(peer, false, CancellationToken::new());
        c.expect("* OK [CAPABILITY").await;
        c
    }

    pub(crate) async fn connect(&self) -> Client<DuplexStream> {
        self.connect_from(LOOPBACK).await
    }

    /// A session logged in as alice.
    pub(crate) async fn login(&self) -> Client<DuplexStream> {
        self.login_as(USER).await
    }

    pub(crate) async fn login_as(&self, user: &str) -> Client<DuplexStream> {
        let mut c = self.connect().await;
        c.send(&format!("l1 LOGIN {user} \"{PASSWORD}\"")).await;
        c.expect_tagged("l1 OK").await;
        c
    }

    /// Logged in as alice (IMAP4rev1) with INBOX selected by `{tag}1 SELECT INBOX`; the
    /// client and the SELECT's untagged lines.
    pub(crate) async fn select_rev1(&self, tag: &str) -> (Client<DuplexStream>, Vec<String>) {
        let mut c = self.login().await;
        let lines = c
            .cmd(&format!("{tag}1 SELECT INBOX"), &format!("{tag}1 OK"))
            .await;
        (c, lines)
    }

    /// Logged in with INBOX selected.
    pub(crate) async fn select(&self) -> Client<DuplexStream> {
        let mut c = self.login().await;
        c.send("s1 SELECT INBOX").await;
        c.expect_tagged("s1 OK [READ-WRITE]").await;
        c
    }
}

/// The scripted client.
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

    /// The next response line with its literals inline (raw octets), without the final
    /// CRLF; `None` at end of stream.
    pub(crate) async fn try_raw_line(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                if !self.fill().await {
                    return None;
                }
                continue;
            };
            let line = self.buf.split_to(pos + 2);
            let line = &line[..pos];
            out.extend_from_slice(line);
            // A literal `{n}` at the end of the line: take n octets and go on.
            let Some(size) = literal_size(line) else {
                return Some(out);
            };
            out.extend_from_slice(b"\r\n");
            while self.buf.len() < size {
                assert!(self.fill().await, "literal cut short");
            }
            out.extend_from_slice(&self.buf.split_to(size));
        }
    }

    pub(crate) async fn line(&mut self) -> String {
        let raw = self
            .try_raw_line()
            .await
            .expect("a line before end of stream");
        String::from_utf8_lossy(&raw).into_owned()
    }

    /// Reads a line and checks its start.
    pub(crate) async fn expect(&mut self, prefix: &str) -> String {
        let line = self.line().await;
        assert!(
            line.starts_with(prefix),
            "expected {prefix:?}, got {line:?}"
        );
        line
    }

    /// Reads up to the tagged reply of the tag that starts `prefix`, checks the reply starts
    /// with `prefix`, returns the lines before it.
    pub(crate) async fn expect_tagged(&mut self, prefix: &str) -> Vec<String> {
        let tag = prefix.split(' ').next().unwrap_or(prefix).to_owned() + " ";
        let mut untagged = Vec::new();
        loop {
            let line = self.line().await;
            if line.starts_with(&tag) {
                assert!(
                    line.starts_with(prefix),
                    "expected {prefix:?}, got {line:?} after {untagged:#?}"
                );
                return untagged;
            }
            untagged.push(line);
        }
    }

    /// Sends a command and expects its tagged reply; returns the untagged lines.
    pub(crate) async fn cmd(&mut self, line: &str, expect: &str) -> Vec<String> {
        self.send(line).await;
        self.expect_tagged(expect).await
    }

    /// Asserts the server closed the connection; returns the remaining lines.
    pub(crate) async fn closed(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        while let Some(line) = self.try_raw_line().await {
            rest.push(String::from_utf8_lossy(&line).into_owned());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task)
                .await
                .expect("session ended")
                .expect("session did not panic");
        }
        rest
    }

    /// Whether nothing arrives within a short time.
    pub(crate) async fn quiet(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        tokio::time::timeout(
            Duration::from_millis(150),
            self.stream.read_buf(&mut self.buf),
        )
        .await
        .is_err()
    }
}

fn literal_size(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&inner[open + 1..]).ok()?.parse().ok()
}

/// Whether some line contains `needle`.
pub(crate) fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}
