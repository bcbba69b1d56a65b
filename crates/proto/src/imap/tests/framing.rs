//! Literals, continuations, limits and recovery.

use bytes::{Bytes, BytesMut};

use super::{decode_chunked, decode_chunked_with, feed};
use crate::imap::*;

fn tag(s: &str) -> Tag {
    Tag::new(s).unwrap()
}

fn is_command(output: &Result<Decoded, DecodeError>, t: &str) -> bool {
    matches!(output, Ok(Decoded::Command(c)) if c.tag.as_str() == t)
}

fn small(max_line: usize, max_literal: u64) -> DecoderConfig {
    DecoderConfig {
        max_line,
        max_literal,
        ..DecoderConfig::default()
    }
}

#[test]
fn synchronizing_literals_ask_for_a_continuation_once_each() {
    let outputs = decode_chunked(b"a LOGIN {5}\r\nalice {6}\r\nsecret\r\n");
    assert_eq!(outputs.len(), 3);
    assert_eq!(
        outputs[0],
        Ok(Decoded::NeedContinuation {
            tag: tag("a"),
            literal_size: 5
        })
    );
    assert_eq!(
        outputs[1],
        Ok(Decoded::NeedContinuation {
            tag: tag("a"),
            literal_size: 6
        })
    );
    assert!(is_command(&outputs[2], "a"));
}

#[test]
fn repeated_decode_calls_do_not_ask_again() {
    let mut decoder = CommandDecoder::default();
    let mut buf = BytesMut::from(&b"a LOGIN {5}\r\n"[..]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Decoded::NeedContinuation {
            literal_size: 5,
            ..
        }))
    ));
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"ali");
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"ce bob\r\n");
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Decoded::Command(_)))
    ));
    assert!(buf.is_empty());
}

#[test]
fn a_zero_length_synchronizing_literal_still_asks() {
    let outputs = decode_chunked(b"a LOGIN {0}\r\n x\r\n");
    assert!(matches!(
        outputs[0],
        Ok(Decoded::NeedContinuation {
            literal_size: 0,
            ..
        })
    ));
    assert!(is_command(&outputs[1], "a"));
}

#[test]
fn literal_data_may_hold_crlf_and_braces() {
    let outputs = decode_chunked(b"a LOGIN {10+}\r\nx\r\n{3}\r\nyz pw\r\nb NOOP\r\n");
    assert_eq!(outputs.len(), 2);
    match &outputs[0] {
        Ok(Decoded::Command(Command {
            body: CommandBody::Login { username, .. },
            ..
        })) => assert_eq!(username, "x\r\n{3}\r\nyz"),
        other => panic!("{other:?}"),
    }
    assert!(is_command(&outputs[1], "b"));
}

#[test]
fn literal_plus_needs_no_continuation() {
    let outputs = decode_chunked(b"a APPEND INBOX {5+}\r\nhello\r\n");
    assert_eq!(outputs.len(), 1);
    assert!(is_command(&outputs[0], "a"));
}

#[test]
fn literal_minus_limits_non_synchronizing_literals_to_4096() {
    let config = DecoderConfig {
        literal_plus: LiteralPlus::Minus,
        ..DecoderConfig::default()
    };
    let body = vec![b'x'; 4096];
    let mut ok = b"a APPEND INBOX {4096+}\r\n".to_vec();
    ok.extend_from_slice(&body);
    ok.extend_from_slice(b"\r\n");
    let (outputs, _) = decode_chunked_with(&config, &ok);
    assert!(is_command(&outputs[0], "a"));

    let mut too_big = b"a APPEND INBOX {4097+}\r\n".to_vec();
    too_big.extend_from_slice(&[b'x'; 4097]);
    too_big.extend_from_slice(b"\r\nb NOOP\r\n");
    let (outputs, rest) = decode_chunked_with(&config, &too_big);
    assert_eq!(
        outputs[0],
        Err(DecodeError::TooBig {
            tag: Some(tag("a")),
            size: 4097,
            limit: 4096,
            synchronizing: false
        })
    );
    assert!(is_command(&outputs[1], "b"));
    assert_eq!(outputs.len(), 2);
    assert!(rest.is_empty());

    // A synchronizing literal of that size is fine under LITERAL-.
    let mut sync = b"a APPEND INBOX {5000}\r\n".to_vec();
    sync.extend_from_slice(&[b'x'; 5000]);
    sync.extend_from_slice(b"\r\n");
    let (outputs, _) = decode_chunked_with(&config, &sync);
    assert!(is_command(&outputs[1], "a"));
}

#[test]
fn literal8_carries_nul_octets() {
    let outputs = decode_chunked(b"a APPEND INBOX ~{4}\r\n\0\x01\x02\xff\r\n");
    match &outputs[1] {
        Ok(Decoded::Command(Command {
            body: CommandBody::Append { messages, .. },
            ..
        })) => {
            assert_eq!(
                messages[0].data.content,
                AppendContent::Octets(Bytes::from_static(b"\0\x01\x02\xff"))
            );
            assert_eq!(messages[0].data.kind, AppendDataKind::Literal8);
        }
        other => panic!("{other:?}"),
    }
    // Outside APPEND a literal8 is a syntax error; a literal may not hold NUL.
    assert!(matches!(
        decode_chunked(b"a LOGIN ~{1+}\r\nx y\r\n")[..],
        [Err(DecodeError::Bad { .. })]
    ));
    assert!(matches!(
        decode_chunked(b"a LOGIN {1+}\r\n\0 y\r\n")[..],
        [Err(DecodeError::Bad { .. })]
    ));
}

#[test]
fn over_long_line_is_bad_and_the_next_command_decodes() {
    let config = small(1024, 1 << 20);
    let mut input = b"a1 LOGIN ".to_vec();
    input.extend_from_slice(&[b'x'; 5000]);
    input.extend_from_slice(b" y\r\nb NOOP\r\n");
    let (outputs, rest) = decode_chunked_with(&config, &input);
    assert_eq!(
        outputs,
        vec![
            Err(DecodeError::Bad {
                tag: Some(tag("a1")),
                message: "Command line too long".into()
            }),
            outputs[1].clone()
        ]
    );
    assert!(is_command(&outputs[1], "b"));
    assert!(rest.is_empty());
}

#[test]
fn over_long_line_ending_in_a_non_synchronizing_literal_skips_that_literal() {
    let config = small(1024, 1 << 20);
    let mut input = b"a1 LOGIN ".to_vec();
    input.extend_from_slice(&[b'x'; 2000]);
    input.extend_from_slice(b" {12+}\r\nc NOOP\r\nd NO more text\r\nb NOOP\r\n");
    let (outputs, rest) = decode_chunked_with(&config, &input);
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert!(
        matches!(&outputs[0], Err(DecodeError::Bad { tag: Some(t), .. }) if t.as_str() == "a1")
    );
    assert!(is_command(&outputs[1], "b"));
    assert!(rest.is_empty());
}

#[test]
fn over_long_command_over_several_lines_is_bad() {
    let config = small(200, 1 << 20);
    let mut input = Vec::new();
    input.extend_from_slice(b"a LOGIN {3+}\r\nabc ");
    input.extend_from_slice(&[b'p'; 300]);
    input.extend_from_slice(b"\r\nb NOOP\r\n");
    let (outputs, _) = decode_chunked_with(&config, &input);
    assert!(matches!(&outputs[0], Err(DecodeError::Bad { tag: Some(t), .. }) if t.as_str() == "a"));
    assert!(is_command(&outputs[1], "b"));
}

#[test]
fn over_limit_synchronizing_literal_is_too_big_and_not_awaited() {
    let config = small(1024, 100);
    let (outputs, rest) = decode_chunked_with(&config, b"a APPEND INBOX {200}\r\nb NOOP\r\n");
    assert_eq!(
        outputs[0],
        Err(DecodeError::TooBig {
            tag: Some(tag("a")),
            size: 200,
            limit: 100,
            synchronizing: true
        })
    );
    assert!(is_command(&outputs[1], "b"));
    assert!(rest.is_empty());
    let mut wire = BytesMut::new();
    encode(&outputs[0].clone().unwrap_err().response(), &mut wire);
    assert_eq!(&wire[..], b"a NO [TOOBIG] Literal too big\r\n");
}

#[test]
fn over_limit_non_synchronizing_literal_is_discarded_as_it_arrives() {
    let config = small(1024, 100);
    let mut input = b"a APPEND INBOX {200+}\r\n".to_vec();
    // The literal holds what looks like commands; none of it may be decoded.
    let fake = b"x NOOP\r\n".repeat(25);
    input.extend_from_slice(&fake);
    input.extend_from_slice(b" (\\Seen) {3+}\r\nabc\r\nb NOOP\r\n");
    let (outputs, rest) = decode_chunked_with(&config, &input);
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert!(matches!(
        outputs[0],
        Err(DecodeError::TooBig {
            synchronizing: false,
            ..
        })
    ));
    assert!(is_command(&outputs[1], "b"));
    assert!(rest.is_empty());
    let mut wire = BytesMut::new();
    encode(&outputs[0].clone().unwrap_err().response(), &mut wire);
    assert_eq!(&wire[..], b"a BAD [TOOBIG] Literal too big\r\n");
}

#[test]
fn huge_literal_announcements_are_too_big() {
    for input in [
        &b"a APPEND INBOX {4294967296}\r\n"[..],
        b"a APPEND INBOX {99999999999999999999999}\r\n",
        b"a LOGIN {18446744073709551615+}\r\n",
    ] {
        let outputs = decode_chunked(input);
        assert!(
            matches!(&outputs[..], [Err(DecodeError::TooBig { .. })]),
            "{outputs:?}"
        );
    }
}

#[test]
fn total_literal_octets_per_command_are_bounded() {
    let config = DecoderConfig {
        max_literal: 10,
        max_command_literals: 15,
        ..DecoderConfig::default()
    };
    let input = b"a APPEND x {10+}\r\n0123456789 {10+}\r\n0123456789\r\nb NOOP\r\n";
    let (outputs, _) = decode_chunked_with(&config, input);
    assert_eq!(
        outputs[0],
        Err(DecodeError::TooBig {
            tag: Some(tag("a")),
            size: 10,
            limit: 15,
            synchronizing: false
        })
    );
    assert!(is_command(&outputs[1], "b"));
}

#[test]
fn literals_outside_append_are_bounded_by_max_other_literals() {
    let config = DecoderConfig {
        max_other_literals: 15,
        ..DecoderConfig::default()
    };
    // A SEARCH whose second literal passes the total is refused and skipped.
    let input = b"a SEARCH BODY {10+}\r\n0123456789 BODY {10+}\r\n0123456789\r\nb NOOP\r\n";
    let (outputs, _) = decode_chunked_with(&config, input);
    assert_eq!(
        outputs[0],
        Err(DecodeError::TooBig {
            tag: Some(tag("a")),
            size: 10,
            limit: 15,
            synchronizing: false
        })
    );
    assert!(is_command(&outputs[1], "b"));
    // A synchronizing one gets no continuation; UID SEARCH is not APPEND either.
    let (outputs, _) = decode_chunked_with(&config, b"c UID SEARCH BODY {16}\r\n");
    assert!(
        matches!(&outputs[..], [Err(DecodeError::TooBig { limit: 15, .. })]),
        "{outputs:?}"
    );
    // APPEND literals count against max_command_literals alone.
    let input = b"d APPEND x {10+}\r\n0123456789 {10+}\r\n0123456789\r\n";
    let (outputs, _) = decode_chunked_with(&config, input);
    assert!(is_command(&outputs[0], "d"), "{outputs:?}");
}

#[test]
fn memory_stays_bounded_while_skipping() {
    let config = small(4096, 1 << 20);
    let mut decoder = CommandDecoder::new(config);
    let mut buf = BytesMut::new();
    let mut errors = 0;
    buf.extend_from_slice(b"a ");
    for _ in 0..2000 {
        buf.extend_from_slice(&[b'z'; 1000]);
        while let Err(_) | Ok(Some(_)) = decoder.decode(&mut buf).map_err(|_| errors += 1) {}
        assert!(buf.len() <= 4096 + 1000, "buffer grew to {}", buf.len());
    }
    buf.extend_from_slice(b"\r\nb NOOP\r\n");
    assert!(
        matches!(decoder.decode(&mut buf), Ok(Some(Decoded::Command(c))) if c.tag.as_str() == "b")
    );
    assert_eq!(errors, 1);

    // A rejected non-synchronizing literal is not buffered either.
    let mut decoder = CommandDecoder::new(small(4096, 1000));
    let mut buf = BytesMut::from(&b"a APPEND x {10000000+}\r\n"[..]);
    assert!(decoder.decode(&mut buf).is_err());
    for _ in 0..10_000 {
        buf.extend_from_slice(&[b'q'; 1000]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }
    buf.extend_from_slice(b"\r\nb NOOP\r\n");
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Decoded::Command(_)))
    ));
}

#[test]
fn unterminated_literal_waits_for_more() {
    let (outputs, rest) = feed(&DecoderConfig::default(), b"a LOGIN {10}\r\nabc", 0);
    assert_eq!(outputs.len(), 1);
    assert_eq!(&rest[..], b"a LOGIN {10}\r\nabc");
}

#[test]
fn a_bad_tag_before_a_literal_gets_no_continuation() {
    let outputs = decode_chunked(b"+x LOGIN {5}\r\nb NOOP\r\n");
    assert!(matches!(
        &outputs[0],
        Err(DecodeError::Bad { tag: None, .. })
    ));
    assert!(is_command(&outputs[1], "b"));
}

#[test]
fn a_bare_lf_does_not_end_a_command() {
    let outputs = decode_chunked(b"a NOOP\nb NOOP\r\nc NOOP\r\n");
    assert!(matches!(&outputs[0], Err(DecodeError::Bad { tag: Some(t), .. }) if t.as_str() == "a"));
    assert!(is_command(&outputs[1], "c"));
}

#[test]
fn decode_line_reads_idle_done_and_sasl_lines() {
    let mut decoder = CommandDecoder::default();
    let mut buf = BytesMut::from(&b"DO"[..]);
    assert_eq!(decoder.decode_line(&mut buf), Ok(None));
    buf.extend_from_slice(b"NE\r\ndGVzdA==\r\n*\r\na NOOP\r\n");
    let line = decoder.decode_line(&mut buf).unwrap().unwrap();
    assert!(is_idle_done(&line));
    let sasl = decoder.decode_sasl_line(&mut buf).unwrap().unwrap();
    assert_eq!(sasl.expose(), b"dGVzdA==");
    assert_eq!(format!("{sasl:?}"), "[redacted]");
    assert_eq!(decoder.decode_line(&mut buf), Ok(Some(b"*".to_vec())));
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Decoded::Command(_)))
    ));
}

#[test]
fn decode_line_is_bounded() {
    let mut decoder = CommandDecoder::new(small(200, 100));
    let mut buf = BytesMut::new();
    let mut errors = 0;
    for _ in 0..100 {
        buf.extend_from_slice(&[b'A'; 100]);
        if decoder.decode_line(&mut buf).is_err() {
            errors += 1;
        }
        assert!(buf.len() <= 302);
    }
    buf.extend_from_slice(b"\r\nDONE\r\n");
    assert_eq!(decoder.decode_line(&mut buf), Ok(Some(b"DONE".to_vec())));
    assert_eq!(errors, 1);
}

#[test]
fn decode_line_skips_an_over_long_line_already_in_the_buffer() {
    let mut decoder = CommandDecoder::new(small(200, 100));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[b'A'; 500]);
    buf.extend_from_slice(b"\r\nDONE\r\nb NOOP\r\n");
    assert!(matches!(
        decoder.decode_line(&mut buf),
        Err(DecodeError::Bad { tag: None, .. })
    ));
    assert_eq!(decoder.decode_line(&mut buf), Ok(Some(b"DONE".to_vec())));
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Decoded::Command(_)))
    ));
}

#[test]
fn tags_with_brackets_are_echoed_intact() {
    let outputs = decode_chunked(b"a]1 BOGUS\r\n");
    let mut wire = BytesMut::new();
    encode(&outputs[0].clone().unwrap_err().response(), &mut wire);
    assert_eq!(&wire[..], b"a]1 BAD unknown command\r\n");
}

#[test]
fn no_continuation_is_offered_to_an_unknown_command() {
    let outputs = decode_chunked(b"a FROB {5}\r\nb NOOP\r\nc FROB {3+}\r\nxyz\r\nd NOOP\r\n");
    assert_eq!(outputs.len(), 4, "{outputs:?}");
    assert!(
        matches!(&outputs[0], Err(DecodeError::Bad { tag: Some(t), message }) if t.as_str() == "a" && message == "unknown command")
    );
    assert!(is_command(&outputs[1], "b"));
    assert!(matches!(&outputs[2], Err(DecodeError::Bad { tag: Some(t), .. }) if t.as_str() == "c"));
    assert!(is_command(&outputs[3], "d"));
}
