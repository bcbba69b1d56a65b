//! A scripted SMTP server on 127.0.0.1 for outbound tests: real TCP, optional STARTTLS with a
//! self-signed certificate and AUTH, configurable replies. It records what it received.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::*;

/// How the peer answers.
#[derive(Clone)]
pub(crate) struct Script {
    /// EHLO keywords after the greeting line.
    pub(crate) ehlo: Vec<&'static str>,
    /// Reply line for a RCPT, by address.
    pub(crate) rcpt: fn(&str) -> &'static str,
    /// Reply lines for the end of data, one per transaction in order; the last one repeats.
    pub(crate) data: Vec<&'static str>,
    /// STARTTLS with this acceptor.
    pub(crate) tls: Option<TlsAcceptor>,
    /// AUTH required with these credentials (PLAIN or LOGIN).
    pub(crate) auth: Option<(&'static str, &'static str)>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            ehlo: vec![
                "PIPELINING",
                "8BITMIME",
                "SMTPUTF8",
                "SIZE 10000000",
                "ENHANCEDSTATUSCODES",
            ],
            rcpt: |_| "250 2.1.5 ok",
            data: vec!["250 2.0.0 queued as X1"],
            tls: None,
            auth: None,
        }
    }
}

/// One message the peer accepted (or refused at the end of data: `accepted` false).
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) mail_from: String,
    pub(crate) rcpts: Vec<String>,
    pub(crate) data: Vec<u8>,
    pub(crate) tls: bool,
    pub(crate) auth: Option<String>,
    pub(crate) connection: usize,
    pub(crate) accepted: bool,
    /// The MAIL and RCPT command lines as sent, for their parameters.
    pub(crate) commands: Vec<String>,
}

pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    pub(crate) received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Peer {
    pub(crate) async fn start(script: Script) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let transactions = Arc::new(AtomicUsize::new(0));
        let (r, c) = (Arc::clone(&received), Arc::clone(&connections));
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                let (script, r, t) = (script.clone(), Arc::clone(&r), Arc::clone(&transactions));
                tokio::spawn(async move { connection(tcp, script, r, t, n).await });
            }
        });
        Peer {
            addr,
            received,
            task,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub(crate) fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.accepted).collect()
    }
}

struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..p + 2).collect();
                return Some(String::from_utf8_lossy(&line[..p]).into_owned());
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn exact(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            let mut chunk = [0u8; 4096];
            let got = self.stream.read(&mut chunk).await.ok()?;
            if got == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
        Some(self.buf.drain(..n).collect())
    }

    async fn say(&mut self, line: &str) {
        let _ = self
            .stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await;
    }
}

enum Next {
    Done,
    StartTls,
}

async fn connection(
    tcp: TcpStream,
    script: Script,
    received: Arc<Mutex<Vec<Received>>>,
    transactions: Arc<AtomicUsize>,
    n: usize,
) {
    let mut plain = Conn {
        stream: tcp,
        buf: Vec::new(),
    };
    plain.say("220 peer.test ESMTP scripted").await;
    let next = session(&mut plain, &script, &received, &transactions, n, false).await;
    if let (Next::StartTls, Some(acceptor)) = (next, script.tls.clone()) {
        let Ok(tls) = acceptor.accept(plain.stream).await else {
            return;
        };
        let mut tls = Conn {
            stream: tls,
            buf: Vec::new(),
        };
        session(&mut tls, &script, &received, &transactions, n, true).await;
    }
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<S>,
    script: &Script,
    received: &Mutex<Vec<Received>>,
    transactions: &AtomicUsize,
    n: usize,
    tls: bool,
) -> Next {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    };
    let mut auth: Option<String> = None;
    let mut tx: Option<Received> = None;
    while let Some(line) = c.line().await {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let mut caps: Vec<&str> = script.ehlo.clone();
            if script.tls.is_some() && !tls {
                caps.push("STARTTLS");
            }
            if script.auth.is_some() && tls {
                caps.push("AUTH PLAIN LOGIN");
            }
            if !caps.is_empty() {
                c.say("250-peer.test").await;
            }
            for (i, cap) in caps.iter().enumerate() {
                let sep = if i + 1 == caps.len() { ' ' } else { '-' };
                c.say(&format!("250{sep}{cap}")).await;
            }
            if caps.is_empty() {
                c.say("250 peer.test").await;
            }
        } else if upper.starts_with("HELO") {
            c.say("250 peer.test").await;
        } else if upper == "STARTTLS" && script.tls.is_some() && !tls {
            c.say("220 2.0.0 go ahead").await;
            return Next::StartTls;
        } else if let Some(rest) = upper.strip_prefix("AUTH PLAIN ") {
            let decoded = b64(&line[11..11 + rest.len()]);
            let parts: Vec<&str> = decoded.split('\0').collect();
            if let (Some((u, p)), [_, user, pass]) = (script.auth, parts.as_slice())
                && *user == u
                && *pass == p
            {
                auth = Some(user.to_string());
                c.say("235 2.7.0 ok").await;
                continue;
            }
            c.say("535 5.7.8 bad credentials").await;
        } else if upper == "AUTH LOGIN" {
            c.say("334 VXNlcm5hbWU6").await;
            let user = b64(&c.line().await.unwrap_or_default());
            c.say("334 UGFzc3dvcmQ6").await;
            let pass = b64(&c.line().await.unwrap_or_default());
            if script.auth.is_some_and(|(u, p)| u == user && p == pass) {
                auth = Some(user);
                c.say("235 2.7.0 ok").await;
            } else {
                c.say("535 5.7.8 bad credentials").await;
            }
        } else if upper.starts_with("MAIL FROM:") {
            if script.auth.is_some() && auth.is_none() {
                c.say("530 5.7.0 authentication required").await;
                continue;
            }
            let from = line[10..]
                .split('>')
                .next()
                .unwrap_or("")
                .trim_start_matches('<');
            tx = Some(Received {
                mail_from: from.to_owned(),
                rcpts: Vec::new(),
                data: Vec::new(),
                tls,
                auth: auth.clone(),
                connection: n,
                accepted: false,
                commands: vec![line.clone()],
            });
            c.say("250 2.1.0 ok").await;
        } else if upper.starts_with("RCPT TO:") {
            let to = line[8..]
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_owned();
            let reply = (script.rcpt)(&to);
            if let Some(t) = tx.as_mut() {
                t.commands.push(line.clone());
                if reply.starts_with('2') {
                    t.rcpts.push(to);
                }
            }
            c.say(reply).await;
        } else if upper == "DATA" {
            c.say("354 go ahead").await;
            let mut data = Vec::new();
            while let Some(l) = c.line().await {
                if l == "." {
                    break;
                }
                let l = l
                    .strip_prefix('.')
                    .filter(|_| l.starts_with(".."))
                    .unwrap_or(&l);
                data.extend_from_slice(l.as_bytes());
                data.extend_from_slice(b"\r\n");
            }
            finish(c, script, received, transactions, tx.take(), data).await;
        } else if let Some(rest) = upper.strip_prefix("BDAT ") {
            let len: usize = rest
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let data = c.exact(len).await.unwrap_or_default();
            finish(c, script, received, transactions, tx.take(), data).await;
        } else if upper == "RSET" {
            tx = None;
            c.say("250 2.0.0 ok").await;
        } else if upper == "QUIT" {
            c.say("221 2.0.0 bye").await;
            return Next::Done;
        } else {
            c.say("502 5.5.1 not implemented").await;
        }
    }
    Next::Done
}

async fn finish<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<S>,
    script: &Script,
    received: &Mutex<Vec<Received>>,
    transactions: &AtomicUsize,
    tx: Option<Received>,
    data: Vec<u8>,
) {
    let i = transactions.fetch_add(1, Ordering::SeqCst);
    let reply = script
        .data
        .get(i)
        .or(script.data.last())
        .copied()
        .unwrap_or("250 ok");
    if let Some(mut t) = tx {
        t.data = data;
        t.accepted = reply.starts_with('2');
        received.lock().unwrap().push(t);
    }
    c.say(reply).await;
}
