//! A real SMTP session (tern-smtp) fed arbitrary client bytes over an in-memory stream.
//!
//! Input: the first octet picks the start state and the write size (`tern_fuzz::Input`), the
//! rest is what the client sends after reaching that state. States:
//! 0. MX (port 25) from a remote address, STARTTLS offered;
//! 1. submission from loopback, after `EHLO` and a successful `AUTH PLAIN`;
//! 2. LMTP;
//! 3. submission from loopback before authentication (SASL exchanges, STARTTLS).
//!
//! Messages go through the real delivery pipeline with the spam filter into the real store.
//! Limits are small (4 KiB messages, 5 recipients) so the "skip until the end" states are within
//! reach of short inputs. The session must end without panicking once the client closes, and
//! every reply line must be well-formed: a three-digit code, then space or hyphen, then CRLF.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use libfuzzer_sys::fuzz_target;
use tern_common::config::{FilterConfig, Protocol, TlsMode};
use tern_delivery::Pipeline;
use tern_filter::Filter;
use tern_fuzz::{Fixture, HOSTNAME, Input, Step, World, converse, runtime, tls};
use tern_smtp::{SessionInfo, SmtpContext, Spool, serve_stream};
use tokio_util::sync::CancellationToken;

static FIXTURE: Mutex<Fixture<SmtpContext>> = Mutex::new(Fixture::new());

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

/// `AUTH PLAIN` with `\0alice@example.test\0correct horse battery`.
const LOGIN: [Step<'static>; 3] = [
    Step {
        send: b"",
        expect: b"220 ",
    },
    Step {
        send: b"EHLO client.example.test\r\n",
        expect: b"250 ",
    },
    Step {
        send: b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNlIGJhdHRlcnk=\r\n",
        expect: b"235 ",
    },
];

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let Some(input) = Input::parse(data, 4) else {
        return;
    };
    let ctx = FIXTURE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .context(context);
    let (protocol, ip, tls_mode, steps): (_, _, _, &[Step<'_>]) = match input.state {
        0 => (Protocol::Smtp, REMOTE, TlsMode::StartTls, &[]),
        1 => (Protocol::Submission, LOOPBACK, TlsMode::StartTls, &LOGIN),
        2 => (Protocol::Lmtp, LOOPBACK, TlsMode::None, &[]),
        _ => (Protocol::Submission, LOOPBACK, TlsMode::StartTls, &[]),
    };
    let info = SessionInfo {
        peer: SocketAddr::new(ip, 40000),
        session_id: "fuzz".into(),
        protocol,
        tls: tls_mode,
        shutdown: CancellationToken::new(),
    };
    let out = runtime().block_on(converse(input.chunk, steps, input.bytes, |stream| {
        serve_stream(Arc::clone(&ctx), stream, info)
    }));
    check_replies(&out);
}

fn context(world: &World) -> SmtpContext {
    let domains = vec![tern_fuzz::DOMAIN.to_owned()];
    let filter = Filter::new(
        FilterConfig::default(),
        world.store.clone(),
        HOSTNAME,
        &domains,
    );
    let pipeline = Pipeline::new(
        world.store.clone(),
        world.directory.clone(),
        HOSTNAME.to_owned(),
    )
    .with_filter(filter);
    let spool = Spool::open(world.scratch().join("spool")).expect("spool directory");
    let mut ctx = SmtpContext::new(pipeline, world.directory.clone(), HOSTNAME, spool);
    ctx.tls = Some(tls());
    ctx.allow_plaintext_on_loopback = true;
    ctx.max_message_size = 4096;
    ctx.max_recipients = 5;
    ctx
}

/// RFC 5321 §4.2: `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP
/// textstring ] CRLF`. After the `220` answer to STARTTLS the stream carries TLS records (a
/// handshake failure alert), so the check stops at the first one.
fn check_replies(out: &[u8]) {
    let mut rest = out;
    while !rest.is_empty() && !is_tls_record(rest) {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            panic!("reply without CRLF: {:?}", String::from_utf8_lossy(rest));
        };
        let line = &rest[..end];
        assert!(
            line.len() >= 3 && line[..3].iter().all(u8::is_ascii_digit),
            "reply line without a code: {:?}",
            String::from_utf8_lossy(line)
        );
        assert!(
            line.len() == 3 || line[3] == b' ' || line[3] == b'-',
            "reply code not followed by space or hyphen: {:?}",
            String::from_utf8_lossy(line)
        );
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "bare CR or LF in a reply: {:?}",
            String::from_utf8_lossy(line)
        );
        rest = &rest[end + 2..];
    }
}

/// A TLS record starts with content type 20–23 (RFC 8446 §5.1), octets no text response
/// starts with. Only the first octet counts: a failed handshake's alert is written best-effort,
/// and with the tiny buffers of small write sizes only part of it may get out.
fn is_tls_record(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|b| (20..=23).contains(b))
}
