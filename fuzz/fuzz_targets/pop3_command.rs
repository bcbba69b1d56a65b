//! POP3 command decoder on arbitrary bytes with arbitrary chunking.
//!
//! Input: the first byte chooses the read size (1..=256) and whether lines are decoded as
//! commands or as SASL continuation lines; the rest is what the client sends. The decoder
//! must not panic, must give the same results whatever the read size, and must never hold
//! more than one bounded line of input.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_proto::pop3::Decoder;

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let sasl = control & 1 == 1;
    let chunk = usize::from(control >> 1) + 1;
    let whole = feed(input, input.len().max(1), sasl);
    assert_eq!(whole, feed(input, chunk, sasl), "read size {chunk}");
    assert_eq!(whole, feed(input, 1, sasl), "read size 1");
}

/// Feeds `input` in reads of `chunk` octets and returns every decoder result, printed.
fn feed(input: &[u8], chunk: usize, sasl: bool) -> Vec<String> {
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let step = if sasl {
                decoder
                    .decode_sasl_line(&mut buf)
                    .map(|l| l.map(|s| format!("{s:?}")))
            } else {
                decoder
                    .decode(&mut buf)
                    .map(|c| c.map(|c| format!("{c:?}")))
            };
            match step {
                Ok(Some(item)) => out.push(item),
                Ok(None) => break,
                Err(e) => out.push(format!("error {e:?}")),
            }
        }
        // RFC 2449 §4: lines are at most 255 octets; SASL lines are bounded too.
        assert!(
            buf.len() <= 16 * 1024,
            "decoder buffered {} octets",
            buf.len()
        );
    }
    out
}
