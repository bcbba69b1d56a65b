//! A real IMAP session (tern-imap) fed arbitrary client bytes over an in-memory stream.
//!
//! Input: the first octet picks the start state and the write size (`tern_fuzz::Input`), the
//! rest is what the client sends after reaching that state. States:
//! 0. not authenticated, STARTTLS offered;
//! 1. authenticated (`LOGIN`);
//! 2. selected: INBOX with four messages (plain, multipart, nested message/rfc822);
//! 3. selected after `ENABLE QRESYNC UTF8=ACCEPT` and `SELECT INBOX (CONDSTORE)`.
//!
//! The user's store is real (APPEND, COPY, MOVE, EXPUNGE, mailbox changes all commit), with the
//! spam filter's learn-on-move. The session must end without panicking once the client closes,
//! and the output must frame: every response starts with `*`, `+` or a tag followed by a status,
//! lines end in CRLF, and a literal's announced length is followed by that many octets.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use libfuzzer_sys::fuzz_target;
use tern_common::body::{Spool, Spooling};
use tern_common::config::FilterConfig;
use tern_filter::Filter;
use tern_fuzz::{Fixture, HOSTNAME, Input, Step, World, converse, runtime, tls};
use tern_imap::{ImapContext, serve_stream};
use tokio_util::sync::CancellationToken;

static FIXTURE: Mutex<Fixture<ImapContext>> = Mutex::new(Fixture::new());

const GREETING: Step<'static> = Step {
    send: b"",
    expect: b"* OK",
};
const LOGIN: Step<'static> = Step {
    send: b"a LOGIN alice@example.test \"correct horse battery\"\r\n",
    expect: b"a OK",
};
const AUTHENTICATED: [Step<'static>; 2] = [GREETING, LOGIN];
const SELECTED: [Step<'static>; 3] = [
    GREETING,
    LOGIN,
    Step {
        send: b"b SELECT INBOX\r\n",
        expect: b"b OK",
    },
];
const QRESYNC: [Step<'static>; 4] = [
    GREETING,
    LOGIN,
    Step {
        send: b"c ENABLE QRESYNC UTF8=ACCEPT\r\n",
        expect: b"c OK",
    },
    Step {
        send: b"d SELECT INBOX (CONDSTORE)\r\n",
        expect: b"d OK",
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
    let steps: &[Step<'_>] = match input.state {
        0 => &[],
        1 => &AUTHENTICATED,
        2 => &SELECTED,
        _ => &QRESYNC,
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
    check_framing(&out);
}

fn context(world: &World) -> ImapContext {
    let domains = vec![tern_fuzz::DOMAIN.to_owned()];
    let spool = Spool::open(world.scratch().join("spool")).expect("spool directory");
    let spooling = Spooling::new(spool, 1 << 20);
    let mut ctx = ImapContext::new(
        world.store.clone(),
        world.directory.clone(),
        HOSTNAME,
        spooling,
    );
    ctx.tls = Some(tls());
    ctx.allow_plaintext_on_loopback = true;
    ctx.append_limit = 4096;
    ctx.filter = Some(Filter::new(
        FilterConfig::default(),
        world.store.clone(),
        HOSTNAME,
        &domains,
    ));
    ctx
}

/// RFC 9051 §2.2.2 and §4.3: responses are lines ending in CRLF; a line ending in `{n}`
/// (`~{n}` for BINARY) is followed by exactly n octets of literal and then the rest of the
/// response. After a tagged OK to STARTTLS come TLS records, so the check stops at the first.
fn check_framing(out: &[u8]) {
    let mut rest = out;
    while !rest.is_empty() && !is_tls_record(rest) {
        let start = rest;
        let first = first_token(rest);
        assert!(
            first == b"*" || first == b"+" || is_tagged_status(rest, first.len()),
            "response does not start with '*', '+' or a tagged status: {:?}",
            String::from_utf8_lossy(&start[..start.len().min(200)])
        );
        // One response: lines, each possibly followed by a literal.
        loop {
            let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                panic!(
                    "response without CRLF: {:?}",
                    String::from_utf8_lossy(&rest[..rest.len().min(200)])
                );
            };
            let line = &rest[..end];
            assert!(
                !line.contains(&b'\r') && !line.contains(&b'\n'),
                "bare CR or LF in a response line: {:?}",
                String::from_utf8_lossy(line)
            );
            rest = &rest[end + 2..];
            match literal_length(line) {
                Some(n) => {
                    assert!(
                        rest.len() >= n,
                        "literal of {n} octets announced, {} follow",
                        rest.len()
                    );
                    rest = &rest[n..];
                }
                None => break,
            }
        }
    }
}

fn first_token(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .position(|&b| b == b' ' || b == b'\r')
        .unwrap_or(bytes.len());
    &bytes[..end]
}

/// `tag SP ("OK" / "NO" / "BAD") SP` (RFC 9051 §7.1).
fn is_tagged_status(bytes: &[u8], tag_len: usize) -> bool {
    let after = &bytes[tag_len..];
    tag_len > 0
        && [&b" OK "[..], b" NO ", b" BAD "]
            .iter()
            .any(|status| after.starts_with(status))
}

/// The length of the literal a response line announces at its end: `{n}` or `~{n}`.
fn literal_length(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A TLS record starts with content type 20–23 (RFC 8446 §5.1), octets no text response
/// starts with. Only the first octet counts: a failed handshake's alert is written best-effort,
/// and with the tiny buffers of small write sizes only part of it may get out.
fn is_tls_record(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|b| (20..=23).contains(b))
}
