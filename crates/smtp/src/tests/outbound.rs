//! Outbound delivery against a scripted SMTP peer over real TCP: retries, bounces, expiry, null MX
//! (through a real dnsmasq), restarts, connection reuse, smarthost with STARTTLS and AUTH.

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use tern_common::config::{OutboundConfig, RelayConfig, RelayTls};
use tern_common::tls::TlsStore;

use super::peer::{Peer, Script};
use super::*;
use crate::outbound::Outbound;
use crate::outbound::routing::{BoxFuture, DnsSource, HickoryDns, MxAnswer};

/// MX answers pointing every domain at 127.0.0.1.
pub(super) struct LoopbackDns;

impl DnsSource for LoopbackDns {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<MxAnswer, String>> {
        Box::pin(async move { Ok(MxAnswer::Records(vec![(10, format!("mx.{domain}"))])) })
    }
    fn ips<'a>(&'a self, _host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, String>> {
        Box::pin(async { Ok(vec![LOOPBACK]) })
    }
}

/// The scripted peer listens on loopback, which MX answers may name only when allowed.
fn config(port: u16) -> OutboundConfig {
    OutboundConfig {
        mx_port: port,
        allow_private_destinations: true,
        retry_initial: Duration::from_secs(1),
        retry_max: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(10),
        ..OutboundConfig::default()
    }
}

fn outbound(h: &Harness, config: OutboundConfig, dns: Arc<dyn DnsSource>) -> Arc<Outbound> {
    Arc::new(
        Outbound::new(
            h.ctx.pipeline.clone(),
            config,
            "mx.example.test".into(),
            dns,
            Arc::clone(&h.ctx.dsn_limiter),
        )
        .unwrap(),
    )
}

/// As written in DATA to Tern: the line `.dotted line` is dot-stuffed.
const BODY: &str = "From: alice@example.test\r\nTo: friend@remote.test\r\nSubject: lunch?\r\n\r\n..dotted line\r\nhi\r\n";

/// Alice submits one message to `rcpts`.
async fn submit(h: &Harness, rcpts: &[&str], body: &str) {
    let mut c = h.connect(Protocol::Submission, LOOPBACK).await;
    c.ehlo().await;
    let token = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("\0alice@example.test\0{PW}"),
    );
    c.cmd(&format!("AUTH PLAIN {token}"), "235").await;
    c.cmd("MAIL FROM:<alice@example.test>", "250").await;
    for r in rcpts {
        c.cmd(&format!("RCPT TO:<{r}>"), "250").await;
    }
    c.cmd("DATA", "354").await;
    c.write(body.as_bytes()).await;
    c.cmd(".", "250 2.0.0").await;
}

async fn make_due(h: &Harness) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    h.store.queue_retry(None, now).await.unwrap();
}

/// The `message/delivery-status` part of the only DSN in alice's INBOX, and the DSN itself.
async fn dsn(h: &Harness) -> (String, String) {
    let inbox = h.inbox(&h.alice).await;
    assert_eq!(inbox.len(), 1, "one DSN expected: {inbox:?}");
    let m = MessageParser::default().parse(inbox[0].as_bytes()).unwrap();
    let ct = m.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
    let status = m
        .parts
        .iter()
        .find(|p| p.content_type().and_then(|c| c.subtype()) == Some("delivery-status"))
        .map(|p| match &p.body {
            PartType::Text(t) => t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => String::from_utf8_lossy(b).into(),
            _ => String::new(),
        })
        .expect("delivery-status part");
    (status, inbox[0].clone())
}

#[tokio::test]
async fn a_message_is_delivered_with_dot_stuffing_and_removed_from_the_queue() {
    let h = harness().await;
    let peer = Peer::start(Script::default()).await;
    submit(&h, &["friend@remote.test"], BODY).await;
    let out = outbound(&h, config(peer.addr.port()), Arc::new(LoopbackDns));
    assert_eq!(out.run_once().await, 1);
    let got = peer.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "alice@example.test");
    assert_eq!(got[0].rcpts, ["friend@remote.test"]);
    let data = String::from_utf8(got[0].data.clone()).unwrap();
    assert!(
        data.starts_with("Received: "),
        "no Return-Path on the wire: {data}"
    );
    assert!(data.ends_with("\r\n.dotted line\r\nhi\r\n"), "{data}");
    assert!(h.store.queue_list().await.unwrap().is_empty());
    h.store.check_integrity().await.unwrap();
}

#[tokio::test]
async fn a_temporary_failure_is_retried_and_then_delivered_once() {
    let h = harness().await;
    let peer = Peer::start(Script {
        data: vec!["451 4.3.0 try again later", "250 2.0.0 ok"],
        ..Script::default()
    })
    .await;
    submit(&h, &["friend@remote.test"], BODY).await;
    let out = outbound(&h, config(peer.addr.port()), Arc::new(LoopbackDns));
    out.run_once().await;
    let queue = h.store.queue_list().await.unwrap();
    let r = &queue[0].recipients[0];
    assert_eq!(r.attempts, 1);
    assert!(
        r.last_error.as_deref().unwrap().contains("451 4.3.0"),
        "{r:?}"
    );
    assert_eq!(out.run_once().await, 0, "not due before the backoff");
    make_due(&h).await;
    assert_eq!(out.run_once().await, 1);
    assert_eq!(peer.accepted().len(), 1);
    assert!(h.store.queue_list().await.unwrap().is_empty());
    assert!(
        h.inbox(&h.alice).await.is_empty(),
        "no DSN for a delivered message"
    );
}

#[tokio::test]
async fn a_permanent_failure_bounces_to_the_senders_inbox_with_status_and_headers() {
    let h = harness().await;
    let peer = Peer::start(Script {
        rcpt: |to| {
            if to.starts_with("nobody") {
                "550 5.1.1 no such user here"
            } else {
                "250 2.1.5 ok"
            }
        },
        ..Script::default()
    })
    .await;
    submit(&h, &["nobody@remote.test", "friend@remote.test"], BODY).await;
    let out = outbound(&h, config(peer.addr.port()), Arc::new(LoopbackDns));
    out.run_once().await;
    assert_eq!(peer.accepted()[0].rcpts, ["friend@remote.test"]);
    let (status, full) = dsn(&h).await;
    assert!(
        status.contains("Final-Recipient: rfc822; nobody@remote.test"),
        "{status}"
    );
    assert!(status.contains("Action: failed"), "{status}");
    assert!(status.contains("Status: 5.1.1"), "{status}");
    assert!(
        status.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user here"),
        "{status}"
    );
    assert!(
        !status.contains("friend@"),
        "only the failed recipient is reported"
    );
    assert!(
        full.contains("Subject: lunch?"),
        "original headers returned"
    );
    assert!(
        full.starts_with("Return-Path: <>\r\n"),
        "DSNs use the null sender"
    );
    assert!(h.store.queue_list().await.unwrap().is_empty());
    h.store.check_integrity().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_host_is_retried_and_expires_with_a_dsn() {
    let expire = Duration::from_secs(2);
    let h = harness_with(|ctx| ctx.pipeline = ctx.pipeline.clone().with_queue_expiry(expire)).await;
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = outbound(
        &h,
        OutboundConfig {
            expire,
            ..config(port)
        },
        Arc::new(LoopbackDns),
    );
    submit(&h, &["friend@remote.test"], BODY).await;
    out.run_once().await;
    let r = h.store.queue_list().await.unwrap()[0].recipients[0].clone();
    assert_eq!(r.attempts, 1);
    assert!(r.last_error.unwrap().contains("connect"));
    assert!(h.inbox(&h.alice).await.is_empty(), "no DSN before expiry");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    make_due(&h).await;
    out.run_once().await;
    let (status, _) = dsn(&h).await;
    assert!(status.contains("Status: 5.4.7"), "{status}");
    assert!(status.contains("Action: failed"), "{status}");
    assert!(h.store.queue_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_long_delay_sends_one_delayed_warning_and_keeps_trying() {
    let h = harness().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = outbound(
        &h,
        OutboundConfig {
            delay_warning: Duration::from_secs(1),
            ..config(port)
        },
        Arc::new(LoopbackDns),
    );
    submit(&h, &["friend@remote.test"], BODY).await;
    out.run_once().await;
    assert!(
        h.inbox(&h.alice).await.is_empty(),
        "no warning before the delay"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..2 {
        make_due(&h).await;
        out.run_once().await;
    }
    // RFC 3464 §2.3.3: Action: delayed, and still queued; only one warning however often
    // the attempt fails again.
    let (status, _) = dsn(&h).await;
    assert!(status.contains("Action: delayed"), "{status}");
    assert!(status.contains("Status: 4."), "{status}");
    assert_eq!(h.store.queue_list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_null_mx_bounces_at_once_through_a_real_resolver() {
    let dns = Dnsmasq::start(&["--mx-host=null.test,.,0"]);
    let h = harness().await;
    let resolver = tern_common::dns::shared_resolver(&tern_common::config::DnsConfig {
        nameservers: vec![dns.addr],
        // Generous: costs nothing when dnsmasq answers, and a loaded machine can be slow.
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    let out = outbound(&h, config(1), Arc::new(HickoryDns(resolver)));
    submit(&h, &["someone@null.test"], BODY).await;
    out.run_once().await;
    let (status, _) = dsn(&h).await;
    assert!(status.contains("Status: 5.1.10"), "{status}");
    assert!(status.contains("null MX"), "{status}");
    assert!(h.store.queue_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_crash_mid_attempt_is_retried_after_restart_and_delivered_once() {
    let h = harness().await;
    let peer = Peer::start(Script::default()).await;
    submit(&h, &["friend@remote.test"], BODY).await;
    // A node claims the recipient and dies before recording anything (kill -9).
    let claimed = h
        .store
        .queue_claim("mx.example.test", i64::MAX / 2, 900, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let out = outbound(&h, config(peer.addr.port()), Arc::new(LoopbackDns));
    assert_eq!(out.run_once().await, 0, "leased by the dead run");
    out.recover().await;
    assert_eq!(out.run_once().await, 1);
    assert_eq!(out.run_once().await, 0);
    assert_eq!(peer.accepted().len(), 1);
}

#[tokio::test]
async fn messages_to_one_domain_share_a_connection_and_smtputf8_is_checked() {
    let h = harness().await;
    let peer = Peer::start(Script {
        ehlo: vec!["PIPELINING", "8BITMIME"],
        ..Script::default()
    })
    .await;
    submit(&h, &["a@remote.test"], BODY).await;
    submit(&h, &["b@remote.test"], BODY).await;
    // UTF-8 header: needs SMTPUTF8, which this peer lacks.
    submit(
        &h,
        &["c@remote.test"],
        "From: alice@example.test\r\nSubject: caf\u{e9}\r\n\r\nx\r\n",
    )
    .await;
    let out = outbound(&h, config(peer.addr.port()), Arc::new(LoopbackDns));
    assert_eq!(out.run_once().await, 3);
    let got = peer.accepted();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.connection == got[0].connection));
    let (status, _) = dsn(&h).await;
    assert!(status.contains("Status: 5.6.7"), "{status}");
}

#[tokio::test]
async fn a_smarthost_gets_starttls_and_auth_with_the_password_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsStore::self_signed(dir.path(), &["relay.test".into()]).unwrap();
    let peer = Peer::start(Script {
        tls: Some(tls.acceptor()),
        auth: Some(("relay-user", "s3cret")),
        ..Script::default()
    })
    .await;
    let password_file = dir.path().join("pw");
    std::fs::write(&password_file, "s3cret\n").unwrap();
    let h = harness().await;
    let cfg = OutboundConfig {
        smarthost: Some(RelayConfig {
            host: "127.0.0.1".into(),
            port: peer.addr.port(),
            tls: RelayTls::StartTls,
            verify_certificate: false,
            username: Some("relay-user".into()),
            password_file: Some(password_file),
        }),
        ..config(1)
    };
    submit(&h, &["friend@anywhere.test"], BODY).await;
    let out = outbound(&h, cfg, Arc::new(LoopbackDns));
    out.run_once().await;
    let got = peer.accepted();
    assert_eq!(got.len(), 1, "{:?}", peer.received());
    assert!(got[0].tls);
    assert_eq!(got[0].auth.as_deref(), Some("relay-user"));
    assert!(h.store.queue_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_verified_smarthost_with_a_self_signed_certificate_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsStore::self_signed(dir.path(), &["localhost".into()]).unwrap();
    let peer = Peer::start(Script {
        tls: Some(tls.acceptor()),
        ..Script::default()
    })
    .await;
    let h = harness().await;
    let cfg = OutboundConfig {
        smarthost: Some(RelayConfig {
            host: "localhost".into(),
            port: peer.addr.port(),
            tls: RelayTls::StartTls,
            verify_certificate: true,
            username: None,
            password_file: None,
        }),
        ..config(1)
    };
    submit(&h, &["friend@anywhere.test"], BODY).await;
    out_run(&h, cfg).await;
    assert!(peer.accepted().is_empty());
    let queue = h.store.queue_list().await.unwrap();
    let err = queue[0].recipients[0].last_error.clone().unwrap();
    assert!(err.contains("TLS handshake"), "{err}");
}

async fn out_run(h: &Harness, cfg: OutboundConfig) {
    outbound(h, cfg, Arc::new(LoopbackDns)).run_once().await;
}

/// dnsmasq on a free loopback port, killed on drop.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
}

impl Dnsmasq {
    fn start(records: &[&str]) -> Dnsmasq {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("dnsmasq")
            .args([
                "--no-daemon",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file=",
            ])
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("dnsmasq is required for this test (apt-get install dnsmasq): {e}")
            });
        let addr = SocketAddr::new(LOOPBACK, port);
        // Wait until it answers on TCP (it binds UDP and TCP together).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "dnsmasq did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Dnsmasq { child, addr }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
