//! A real POP3 session (tern-pop3) fed arbitrary client bytes over an in-memory stream.
//!
//! Input: the first octet picks the start state and the write size (`tern_fuzz::Input`), the
//! rest is what the client sends after reaching that state. States:
//! 0. AUTHORIZATION, STLS offered (USER/PASS, APOP refusal, AUTH exchanges, CAPA);
//! 1. TRANSACTION after `USER`/`PASS`, with four messages in the maildrop.
//!
//! DELE and QUIT commit to the real store. The session must end without panicking once the
//! client closes, must release the maildrop lock (the next run logs in as the same user), and
//! its output must be CRLF-terminated lines without bare CR or LF.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use libfuzzer_sys::fuzz_target;
use tern_fuzz::{Fixture, HOSTNAME, Input, Step, World, converse, runtime, tls};
use tern_pop3::{Pop3Context, serve_stream};
use tokio_util::sync::CancellationToken;

static FIXTURE: Mutex<Fixture<Pop3Context>> = Mutex::new(Fixture::new());

const TRANSACTION: [Step<'static>; 3] = [
    Step {
        send: b"",
        expect: b"+OK",
    },
    Step {
        send: b"USER alice@example.test\r\n",
        expect: b"+OK",
    },
    Step {
        send: b"PASS correct horse battery\r\n",
        expect: b"+OK",
    },
];

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let Some(input) = Input::parse(data, 2) else {
        return;
    };
    let ctx = FIXTURE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .context(context);
    let steps: &[Step<'_>] = match input.state {
        0 => &[],
        _ => &TRANSACTION,
    };
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    let out = runtime().block_on(converse(input.chunk, steps, input.bytes, |stream| {
        serve_stream(
            Arc::clone(&ctx),
            stream,
            peer,
            false,
            CancellationToken::new(),
        )
    }));
    check_lines(&out);
}

fn context(world: &World) -> Pop3Context {
    let mut ctx = Pop3Context::new(world.store.clone(), world.directory.clone(), HOSTNAME);
    ctx.tls = Some(tls());
    ctx.allow_plaintext_on_loopback = true;
    ctx
}

/// RFC 1939 §3: responses and multi-line data are CRLF-terminated lines. The seeded messages
/// have CRLF line ends, so a bare CR or LF in the output is the server's. After `+OK` to STLS
/// come TLS records, so the check stops at the first.
fn check_lines(out: &[u8]) {
    let mut rest = out;
    while !rest.is_empty() && !is_tls_record(rest) {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            panic!("output without CRLF: {:?}", String::from_utf8_lossy(rest));
        };
        let line = &rest[..end];
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "bare CR or LF in a line: {:?}",
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
