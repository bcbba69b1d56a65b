use bytes::BytesMut;
use proptest::prelude::*;

use super::*;

fn decode_all(decoder: &mut Decoder, buf: &mut BytesMut) -> Vec<Result<Command, Pop3Error>> {
    let mut out = Vec::new();
    loop {
        match decoder.decode(buf) {
            Ok(Some(c)) => out.push(Ok(c)),
            Ok(None) => return out,
            Err(e) => out.push(Err(e)),
        }
    }
}

/// Feeds `input` in chunks of `size` bytes, decoding after each chunk; also checks that the
/// buffer never holds more than one line's worth of bytes.
fn decode_chunked(input: &[u8], size: usize) -> Vec<Result<Command, Pop3Error>> {
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in input.chunks(size) {
        buf.extend_from_slice(chunk);
        out.extend(decode_all(&mut decoder, &mut buf));
        assert!(buf.len() < MAX_COMMAND_LINE + size, "buffer grew unbounded");
    }
    out
}

fn one(line: &str) -> Result<Command, Pop3Error> {
    let mut buf = BytesMut::from(format!("{line}\r\n").as_bytes());
    let mut all = decode_all(&mut Decoder::new(), &mut buf);
    assert_eq!(all.len(), 1, "{line:?}");
    all.remove(0)
}

#[test]
fn every_command_parses_case_insensitively() {
    let cases: Vec<(&str, Command)> = vec![
        (
            "USER alice@example.test",
            Command::User("alice@example.test".into()),
        ),
        (
            "pass s3cret with spaces",
            Command::Pass(Secret::new("s3cret with spaces")),
        ),
        (
            "Auth",
            Command::Auth {
                mechanism: None,
                initial_response: None,
            },
        ),
        (
            "AUTH plain",
            Command::Auth {
                mechanism: Some("plain".into()),
                initial_response: None,
            },
        ),
        (
            "AUTH PLAIN AGFsaWNlAHB3",
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: Some(Secret::new("AGFsaWNlAHB3")),
            },
        ),
        ("capa", Command::Capa),
        ("STLS", Command::Stls),
        ("stat", Command::Stat),
        ("LIST", Command::List(None)),
        ("list 3", Command::List(Some(3))),
        ("UIDL", Command::Uidl(None)),
        ("uidl 12", Command::Uidl(Some(12))),
        ("RETR 1", Command::Retr(1)),
        ("top 1 0", Command::Top { msg: 1, lines: 0 }),
        ("DELE 2", Command::Dele(2)),
        ("NOOP", Command::Noop),
        ("rset", Command::Rset),
        ("QUIT", Command::Quit),
        ("RETR 99999999999999", Command::Retr(u32::MAX)),
        ("LIST  4", Command::List(Some(4))),
        ("QUIT ", Command::Quit),
    ];
    for (line, expected) in cases {
        assert_eq!(one(line), Ok(expected), "{line:?}");
    }
}

#[test]
fn bad_commands_give_errors_that_name_the_problem() {
    let cases = [
        ("", Pop3Error::UnknownCommand),
        ("HELO there", Pop3Error::UnknownCommand),
        ("APOP a b", Pop3Error::UnknownCommand),
        ("RETRIEVE 1", Pop3Error::UnknownCommand),
        ("RETR", Pop3Error::Syntax("Message number required")),
        ("RETR x", Pop3Error::Syntax("Invalid number")),
        ("RETR -1", Pop3Error::Syntax("Invalid number")),
        ("RETR 1 2", Pop3Error::Syntax("Too many arguments")),
        ("LIST 1 2", Pop3Error::Syntax("Too many arguments")),
        (
            "TOP 1",
            Pop3Error::Syntax("TOP needs a message number and a line count"),
        ),
        (
            "STAT now",
            Pop3Error::Syntax("This command takes no arguments"),
        ),
        ("USER", Pop3Error::Syntax("USER needs a user name")),
        ("USER a b", Pop3Error::Syntax("USER takes one argument")),
        ("PASS", Pop3Error::Syntax("PASS needs a password")),
        (
            "AUTH PLAIN a b",
            Pop3Error::Syntax("AUTH takes at most two arguments"),
        ),
        ("NOOP\0", Pop3Error::Syntax("Control characters in command")),
    ];
    for (line, expected) in cases {
        assert_eq!(one(line), Err(expected), "{line:?}");
    }
    let long_number = format!("RETR {}", "1".repeat(41));
    assert_eq!(one(&long_number), Err(Pop3Error::Syntax("Invalid number")));
    let mut buf = BytesMut::from(&b"USER \xff\xfe\r\n"[..]);
    assert_eq!(
        Decoder::new().decode(&mut buf),
        Err(Pop3Error::Syntax("Argument is not valid UTF-8"))
    );
}

#[test]
fn bare_lf_ends_a_line_too() {
    let mut buf = BytesMut::from(&b"STAT\nNOOP\r\n"[..]);
    assert_eq!(
        decode_all(&mut Decoder::new(), &mut buf),
        [Ok(Command::Stat), Ok(Command::Noop)]
    );
}

#[test]
fn a_line_of_255_octets_is_accepted_and_256_is_too_long() {
    // RFC 2449 §4: 255 octets including CRLF.
    let pass = "p".repeat(MAX_COMMAND_LINE - "PASS \r\n".len());
    let ok = format!("PASS {pass}\r\n");
    assert_eq!(ok.len(), 255);
    let mut buf = BytesMut::from(ok.as_bytes());
    assert_eq!(
        Decoder::new().decode(&mut buf),
        Ok(Some(Command::Pass(Secret::new(pass.clone()))))
    );
    let long = format!("PASS {pass}x\r\nNOOP\r\n");
    assert_eq!(
        decode_chunked(long.as_bytes(), 512),
        [Err(Pop3Error::LineTooLong), Ok(Command::Noop)]
    );
}

#[test]
fn a_megabyte_without_line_feed_is_skipped_without_buffering() {
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::new();
    let mut errors = 0;
    for _ in 0..256 {
        buf.extend_from_slice(&[b'A'; 4096]);
        for r in decode_all(&mut decoder, &mut buf) {
            assert_eq!(r, Err(Pop3Error::LineTooLong));
            errors += 1;
        }
        assert!(buf.len() <= MAX_COMMAND_LINE);
    }
    assert_eq!(errors, 1, "one error per over-long line");
    assert!(decoder.is_skipping());
    buf.extend_from_slice(b"AAAA\r\nSTAT\r\n");
    assert_eq!(decode_all(&mut decoder, &mut buf), [Ok(Command::Stat)]);
    assert!(!decoder.is_skipping());
}

/// A session's worth of input: pipelined commands, an over-long line, garbage, a password
/// with spaces.
type Decoded = Result<Command, Pop3Error>;

fn fixture() -> (Vec<u8>, Vec<Decoded>) {
    let long_x = [b'X'; 700];
    let long_y = [b'Y'; 300];
    // (bytes, what they decode to); the tail of an over-long line decodes to nothing.
    let parts: Vec<(&[u8], Option<Decoded>)> = vec![
        (b"CAPA\r\n", Some(Ok(Command::Capa))),
        (
            b"USER bob@example.test\r\n",
            Some(Ok(Command::User("bob@example.test".into()))),
        ),
        (
            b"PASS correct horse battery\r\n",
            Some(Ok(Command::Pass(Secret::new("correct horse battery")))),
        ),
        (&long_x, Some(Err(Pop3Error::LineTooLong))),
        (b"\r\n", None),
        (b"STAT\r\n", Some(Ok(Command::Stat))),
        (b"LIST\r\n", Some(Ok(Command::List(None)))),
        (b"bogus command\r\n", Some(Err(Pop3Error::UnknownCommand))),
        (b"UIDL 2\r\n", Some(Ok(Command::Uidl(Some(2))))),
        (
            b"TOP 2 10\r\n",
            Some(Ok(Command::Top { msg: 2, lines: 10 })),
        ),
        (b"RETR 1\r\n", Some(Ok(Command::Retr(1)))),
        (b"DELE 1\r\n", Some(Ok(Command::Dele(1)))),
        (&long_y, Some(Err(Pop3Error::LineTooLong))),
        (b"\n", None),
        (b"RSET\r\n", Some(Ok(Command::Rset))),
        (b"QUIT\r\n", Some(Ok(Command::Quit))),
    ];
    let input = parts
        .iter()
        .flat_map(|(bytes, _)| bytes.iter().copied())
        .collect();
    let expected = parts.into_iter().filter_map(|(_, r)| r).collect();
    (input, expected)
}

#[test]
fn fixture_decodes_identically_at_every_chunk_size_from_1_to_512() {
    let (input, expected) = fixture();
    for size in 1..=512 {
        assert_eq!(decode_chunked(&input, size), expected, "chunk size {size}");
    }
}

#[test]
fn sasl_lines_are_bounded_and_returned_without_line_ending() {
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::from(&b"dGVzdA==\r\n*\r\n"[..]);
    assert_eq!(
        decoder.decode_sasl_line(&mut buf),
        Ok(Some(Secret::new("dGVzdA==")))
    );
    assert_eq!(
        decoder.decode_sasl_line(&mut buf),
        Ok(Some(Secret::new("*")))
    );
    assert_eq!(decoder.decode_sasl_line(&mut buf), Ok(None));
    // Longer than a command line is fine for SASL.
    let long = "A".repeat(4000);
    buf.extend_from_slice(format!("{long}\r\n").as_bytes());
    assert_eq!(
        decoder.decode_sasl_line(&mut buf),
        Ok(Some(Secret::new(long)))
    );
    buf.extend_from_slice(&vec![b'B'; MAX_SASL_LINE + 1]);
    assert_eq!(
        decoder.decode_sasl_line(&mut buf),
        Err(Pop3Error::LineTooLong)
    );
    buf.extend_from_slice(b"BBB\r\nNOOP\r\n");
    assert_eq!(decoder.decode(&mut buf), Ok(Some(Command::Noop)));
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let cmd = Command::Pass(Secret::new("hunter2"));
    assert!(!format!("{cmd:?}").contains("hunter2"));
    let auth = one("AUTH PLAIN AGFsaWNlAGh1bnRlcjI=").expect("auth");
    assert!(!format!("{auth:?}").contains("AGFsaWNlAGh1bnRlcjI="));
}

fn encoded(reply: Reply) -> String {
    let mut buf = BytesMut::new();
    reply.encode(&mut buf);
    String::from_utf8(buf.to_vec()).expect("utf-8")
}

#[test]
fn replies_carry_response_codes_in_brackets() {
    assert_eq!(encoded(Reply::ok("2 320")), "+OK 2 320\r\n");
    assert_eq!(encoded(Reply::ok("")), "+OK\r\n");
    assert_eq!(
        encoded(Reply::err("Authentication failed").with_code(RespCode::Auth)),
        "-ERR [AUTH] Authentication failed\r\n"
    );
    for (code, wire) in [
        (RespCode::InUse, "IN-USE"),
        (RespCode::LoginDelay, "LOGIN-DELAY"),
        (RespCode::SysTemp, "SYS/TEMP"),
        (RespCode::SysPerm, "SYS/PERM"),
    ] {
        assert_eq!(
            encoded(Reply::err("x").with_code(code)),
            format!("-ERR [{wire}] x\r\n")
        );
    }
    assert_eq!(Pop3Error::LineTooLong.reply(), Reply::err("Line too long"));
}

#[test]
fn reply_text_stays_on_one_line_of_at_most_512_octets() {
    assert_eq!(encoded(Reply::err("a\r\nb")), "-ERR a  b\r\n");
    let long = encoded(Reply::ok("é".repeat(600)));
    assert!(long.len() <= encode::MAX_RESPONSE_LINE);
    assert!(long.ends_with("\r\n"));
}

fn body(input: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_multiline_body(input, &mut buf);
    buf.to_vec()
}

#[test]
fn multiline_body_is_dot_stuffed_and_terminated() {
    assert_eq!(
        body(b"a\r\n.b\r\n..\r\n.\r\nc\r\n"),
        b"a\r\n..b\r\n...\r\n..\r\nc\r\n.\r\n"
    );
    assert_eq!(body(b".first\r\n"), b"..first\r\n.\r\n");
    assert_eq!(body(b"no newline"), b"no newline\r\n.\r\n");
    assert_eq!(body(b"ends in lf\n.x"), b"ends in lf\n..x\r\n.\r\n");
    assert_eq!(body(b""), b".\r\n");
    let mut buf = BytesMut::new();
    encode_lines(["1 120", ".odd", "2 200"], &mut buf);
    assert_eq!(&buf[..], b"1 120\r\n..odd\r\n2 200\r\n.\r\n");
}

const MESSAGE: &[u8] =
    b"From: a@example.test\r\nSubject: hi\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n";

#[test]
fn top_sends_header_blank_line_and_n_body_lines() {
    let header_len = MESSAGE
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header")
        + 4;
    assert_eq!(top_len(MESSAGE, 0), header_len);
    assert_eq!(
        &MESSAGE[..top_len(MESSAGE, 2)],
        b"From: a@example.test\r\nSubject: hi\r\n\r\nline 1\r\n.line 2\r\n"
    );
    assert_eq!(top_len(MESSAGE, 3), MESSAGE.len());
    assert_eq!(top_len(MESSAGE, u32::MAX), MESSAGE.len());
    assert_eq!(top_len(b"Subject: only header\r\n", 5), 22);
    assert_eq!(top_len(b"\r\nbody\r\n", 0), 2);
    assert_eq!(top_len(b"H: v\r\n\r\nunterminated", 1), 20);
    assert_eq!(top_len(b"", 1), 0);
    let mut buf = BytesMut::new();
    encode_multiline_body(&MESSAGE[..top_len(MESSAGE, 2)], &mut buf);
    assert!(buf.ends_with(b"line 1\r\n..line 2\r\n.\r\n"));
}

/// Reverses dot-stuffing the way a client does: split at CRLF, stop at ".", drop one leading dot.
fn unstuff(wire: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = wire;
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if line == b"." {
            return rest.is_empty().then_some(out);
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_and_never_grow_the_buffer(
        input in proptest::collection::vec(any::<u8>(), 0..2048),
        size in 1usize..600,
        sasl in any::<bool>(),
    ) {
        let mut decoder = Decoder::new();
        let mut buf = BytesMut::new();
        for chunk in input.chunks(size) {
            buf.extend_from_slice(chunk);
            loop {
                let progress = if sasl {
                    matches!(decoder.decode_sasl_line(&mut buf), Ok(Some(_)) | Err(_))
                } else {
                    matches!(decoder.decode(&mut buf), Ok(Some(_)) | Err(_))
                };
                if !progress {
                    break;
                }
            }
            let limit = if sasl { MAX_SASL_LINE } else { MAX_COMMAND_LINE };
            prop_assert!(buf.len() < limit);
        }
    }

    #[test]
    fn random_lines_of_printable_text_never_panic(line in "[ -~]{0,300}") {
        let mut buf = BytesMut::from(format!("{line}\r\n").as_bytes());
        let _ = decode_all(&mut Decoder::new(), &mut buf);
    }

    #[test]
    fn dot_stuffing_round_trips_crlf_text(lines in proptest::collection::vec("[.a-z ]{0,8}", 0..20)) {
        let text: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\r\n").into_bytes()).collect();
        prop_assert_eq!(unstuff(&body(&text)), Some(text.clone()));
    }

    #[test]
    fn top_len_never_exceeds_the_message(message in proptest::collection::vec(any::<u8>(), 0..512), n in any::<u32>()) {
        prop_assert!(top_len(&message, n) <= message.len());
        let _ = body(&message);
    }
}
