//! IMAP command decoder on arbitrary bytes with arbitrary chunking.
//!
//! Input: the first byte chooses the read size (1..=256) and the limits, the rest is what
//! the client sends. The decoder must not panic, and its outputs (commands, continuation
//! requests, APPEND message octets handed out, errors) and leftover buffer must be the same
//! whether the input arrives at once, in reads of that size, or one octet at a time (the
//! handed-out pieces joined). Every error's reply must encode. With the small limits, APPEND
//! messages past 100 octets are handed out.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_proto::imap::{
    CommandBody, CommandDecoder, DecodeError, Decoded, DecoderConfig, LiteralPlus, encode,
};

fuzz_target!(|data: &[u8]| run(data));

type Outputs = Vec<Result<Decoded, DecodeError>>;

fn run(data: &[u8]) {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(control) + 1;
    let config = if control & 1 == 0 {
        DecoderConfig::default()
    } else {
        DecoderConfig {
            max_line: 200,
            max_literal: 300,
            max_command_literals: 500,
            max_other_literals: 400,
            max_inline_messages: 100,
            max_depth: 6,
            literal_plus: if control & 2 == 0 {
                LiteralPlus::Plus
            } else {
                LiteralPlus::Minus
            },
            utf8_accept: control & 4 != 0,
        }
    };
    let whole = feed(&config, input, input.len().max(1));
    assert_eq!(whole, feed(&config, input, chunk), "read size {chunk}");
    assert_eq!(whole, feed(&config, input, 1), "read size 1");
    let mut out = BytesMut::new();
    for output in &whole.0 {
        if let Err(e) = output {
            encode(&e.response(), &mut out);
        }
    }
}

/// Feeds `input` in reads of `chunk` octets. After an IDLE command the next line is read
/// as IDLE's `DONE`, as a session would.
fn feed(config: &DecoderConfig, input: &[u8], chunk: usize) -> (Outputs, BytesMut) {
    let mut decoder = CommandDecoder::new(config.clone());
    let mut buf = BytesMut::new();
    let mut outputs = Vec::new();
    let mut idle = false;
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            if idle {
                match decoder.decode_line(&mut buf) {
                    Ok(Some(_)) => idle = false,
                    Ok(None) => break,
                    Err(e) => {
                        outputs.push(Err(e));
                        idle = false;
                    }
                }
                continue;
            }
            match decoder.decode(&mut buf) {
                Ok(Some(Decoded::MessageData(more))) => match outputs.last_mut() {
                    // How many pieces there are depends on the reads; what they hold does not.
                    Some(Ok(Decoded::MessageData(data))) => {
                        let mut joined = data.to_vec();
                        joined.extend_from_slice(&more);
                        *data = joined.into();
                    }
                    _ => outputs.push(Ok(Decoded::MessageData(more))),
                },
                Ok(Some(decoded)) => {
                    idle = matches!(
                        &decoded,
                        Decoded::Command(c) if c.body == CommandBody::Idle
                    );
                    outputs.push(Ok(decoded));
                }
                Ok(None) => break,
                Err(e) => outputs.push(Err(e)),
            }
        }
    }
    (outputs, buf)
}
