//! APPEND message literals handed to the caller as they arrive (`max_inline_messages`).

use bytes::{Bytes, BytesMut};

use super::{decode_chunked_with, feed};
use crate::imap::*;

fn streaming(inline: u64) -> DecoderConfig {
    DecoderConfig {
        max_inline_messages: inline,
        max_literal: 1000,
        ..DecoderConfig::default()
    }
}

fn tag(s: &str) -> Tag {
    Tag::new(s).unwrap()
}

/// The contents of the messages of the APPEND in `output`.
fn append_contents(output: &Result<Decoded, DecodeError>) -> Vec<AppendContent> {
    match output {
        Ok(Decoded::Command(Command {
            body: CommandBody::Append { messages, .. },
            ..
        })) => messages.iter().map(|m| m.data.content.clone()).collect(),
        other => panic!("not an APPEND: {other:?}"),
    }
}

#[test]
fn a_synchronizing_message_literal_is_handed_out_across_reads_and_the_command_continues() {
    let message = "Subject: x\r\n\r\n".to_owned() + &"y".repeat(200);
    let input = format!(
        "a APPEND INBOX (\\Seen) {{{}}}\r\n{message}\r\n",
        message.len()
    );
    let (outputs, rest) = decode_chunked_with(&streaming(100), input.as_bytes());
    assert!(rest.is_empty());
    assert_eq!(outputs.len(), 3, "{outputs:?}");
    assert_eq!(
        outputs[0],
        Ok(Decoded::MessageLiteral {
            tag: tag("a"),
            size: message.len() as u64,
            synchronizing: true,
        })
    );
    assert_eq!(
        outputs[1],
        Ok(Decoded::MessageData(Bytes::from(message.clone())))
    );
    assert_eq!(
        append_contents(&outputs[2]),
        [AppendContent::Streamed(message.len() as u64)]
    );
}

#[test]
fn a_literal_plus_message_needs_no_continuation_and_is_handed_out_too() {
    let input = format!(
        "a APPEND INBOX {{150+}}\r\n{}\r\nb NOOP\r\n",
        "z".repeat(150)
    );
    let (outputs, _) = decode_chunked_with(&streaming(100), input.as_bytes());
    assert_eq!(
        outputs[0],
        Ok(Decoded::MessageLiteral {
            tag: tag("a"),
            size: 150,
            synchronizing: false,
        })
    );
    assert_eq!(
        outputs[1],
        Ok(Decoded::MessageData(Bytes::from("z".repeat(150))))
    );
    assert_eq!(append_contents(&outputs[2]), [AppendContent::Streamed(150)]);
    // The pipelined command after it, read in the same buffer, is intact.
    assert!(matches!(&outputs[3], Ok(Decoded::Command(c)) if c.body == CommandBody::Noop));
    assert_eq!(outputs.len(), 4);
}

#[test]
fn messages_up_to_the_inline_limit_stay_in_the_command_and_one_octet_more_is_handed_out() {
    let at_limit = format!("a APPEND INBOX {{100+}}\r\n{}\r\n", "x".repeat(100));
    let outputs = decode_chunked_with(&streaming(100), at_limit.as_bytes()).0;
    assert_eq!(
        append_contents(&outputs[0]),
        [AppendContent::Octets(Bytes::from("x".repeat(100)))]
    );
    let over = format!("a APPEND INBOX {{101+}}\r\n{}\r\n", "x".repeat(101));
    let outputs = decode_chunked_with(&streaming(100), over.as_bytes()).0;
    assert_eq!(append_contents(&outputs[2]), [AppendContent::Streamed(101)]);
    // MULTIAPPEND: the limit is per command, so the second of two 60-octet messages goes out.
    let multi = format!(
        "a APPEND INBOX {{60+}}\r\n{} {{60+}}\r\n{}\r\n",
        "1".repeat(60),
        "2".repeat(60)
    );
    let outputs = decode_chunked_with(&streaming(100), multi.as_bytes()).0;
    assert_eq!(
        outputs[1],
        Ok(Decoded::MessageData(Bytes::from("2".repeat(60))))
    );
    assert_eq!(
        append_contents(&outputs[2]),
        [
            AppendContent::Octets(Bytes::from("1".repeat(60))),
            AppendContent::Streamed(60)
        ]
    );
}

#[test]
fn a_message_of_exactly_the_appendlimit_is_accepted_and_one_octet_more_is_refused_at_the_announcement()
 {
    let exact = format!("a APPEND INBOX {{1000}}\r\n{}\r\n", "m".repeat(1000));
    let outputs = decode_chunked_with(&streaming(0), exact.as_bytes()).0;
    assert_eq!(
        append_contents(&outputs[2]),
        [AppendContent::Streamed(1000)]
    );
    // Refused before any octet is solicited or handed out: `NO [TOOBIG]`, nothing else.
    let outputs = decode_chunked_with(&streaming(0), b"a APPEND INBOX {1001}\r\n").0;
    assert_eq!(
        outputs,
        [Err(DecodeError::TooBig {
            tag: Some(tag("a")),
            size: 1001,
            limit: 1000,
            synchronizing: true,
        })]
    );
}

#[test]
fn a_mailbox_name_literal_is_kept_and_bounded_like_any_other_literal() {
    let input = "a APPEND {5}\r\nINBOX {3}\r\nabc\r\n";
    let (outputs, _) = decode_chunked_with(&streaming(0), input.as_bytes());
    assert!(matches!(
        outputs[0],
        Ok(Decoded::NeedContinuation {
            literal_size: 5,
            ..
        })
    ));
    assert!(matches!(
        outputs[1],
        Ok(Decoded::MessageLiteral { size: 3, .. })
    ));
    assert_eq!(append_contents(&outputs[3]), [AppendContent::Streamed(3)]);
    // A mailbox named `~` is an atom, not the start of a literal8.
    let outputs = decode_chunked_with(&streaming(0), b"a APPEND ~ {3+}\r\nabc\r\n").0;
    assert_eq!(append_contents(&outputs[2]), [AppendContent::Streamed(3)]);
    // A mailbox name is not a message: it may not be message-sized.
    let outputs = decode_chunked_with(&streaming(0), b"a APPEND {70000}\r\n").0;
    assert!(
        matches!(&outputs[..], [Err(DecodeError::TooBig { size: 70000, .. })]),
        "{outputs:?}"
    );
}

#[test]
fn a_handed_out_literal_where_no_message_may_be_is_bad() {
    // The literal ends the line, so the decoder hands it out; the parser then finds it
    // inside the flag list.
    let input = format!("a APPEND INBOX (\\Seen {{20+}}\r\n{})\r\n", "q".repeat(20));
    let outputs = decode_chunked_with(&streaming(0), input.as_bytes()).0;
    assert!(
        matches!(outputs.last(), Some(Err(DecodeError::Bad { .. }))),
        "{outputs:?}"
    );
}

#[test]
fn binary_and_utf8_messages_are_handed_out_too() {
    let input = b"a APPEND INBOX ~{4}\r\n\0\x01\r\n UTF8 (~{2+}\r\n\xc3\xa9)\r\n";
    let outputs = decode_chunked_with(&streaming(0), input).0;
    let contents = append_contents(outputs.last().unwrap());
    assert_eq!(
        contents,
        [AppendContent::Streamed(4), AppendContent::Streamed(2)]
    );
}

#[test]
fn handed_out_pieces_never_exceed_what_one_read_brought() {
    let config = DecoderConfig {
        max_inline_messages: 0,
        ..DecoderConfig::default()
    };
    let size = 1 << 20;
    let input = format!("a APPEND INBOX {{{size}+}}\r\n");
    let mut decoder = CommandDecoder::new(config);
    let mut buf = BytesMut::from(input.as_bytes());
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Decoded::MessageLiteral { .. }))
    ));
    let read = vec![b'r'; 4096];
    let mut received = 0;
    while received < size {
        buf.extend_from_slice(&read);
        match decoder.decode(&mut buf) {
            Ok(Some(Decoded::MessageData(data))) => {
                assert_eq!(data.len(), read.len());
                received += data.len();
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        // Only the command text so far stays in the buffer.
        assert_eq!(buf.len(), input.len());
    }
    buf.extend_from_slice(b"\r\n");
    assert_eq!(
        decoder
            .decode(&mut buf)
            .map(|d| d.map(|d| append_contents(&Ok(d)))),
        Ok(Some(vec![AppendContent::Streamed(size as u64)]))
    );
    assert!(buf.is_empty());
}

#[test]
fn without_an_inline_limit_nothing_is_handed_out() {
    let input = format!("a APPEND INBOX {{900+}}\r\n{}\r\n", "d".repeat(900));
    let (outputs, _) = feed(&DecoderConfig::default(), input.as_bytes(), 0);
    assert_eq!(
        append_contents(&outputs[0]),
        [AppendContent::Octets(Bytes::from("d".repeat(900)))]
    );
}
