//! Codec tests: every decoder fixture is fed whole and in chunks of 1, 2, 4 … 512 octets,
//! and the outputs must be identical.

mod commands;
mod framing;
mod proptests;
mod responses;
mod streaming;

use bytes::BytesMut;

use super::{
    Command, CommandBody, CommandDecoder, DecodeError, Decoded, DecoderConfig, encode_command,
};

/// Everything the decoder produced for one input, in order.
pub(super) type Outputs = Vec<Result<Decoded, DecodeError>>;

/// Feeds `input` to a fresh decoder in chunks of `chunk` octets (0: all at once), calling
/// `decode` until it needs more after each chunk. Returns the outputs and what is left over;
/// the pieces of a message literal handed out one after another are joined into one
/// `MessageData` (how many there are depends on the reads).
pub(super) fn feed(config: &DecoderConfig, input: &[u8], chunk: usize) -> (Outputs, BytesMut) {
    let mut decoder = CommandDecoder::new(config.clone());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let chunk = if chunk == 0 {
        input.len().max(1)
    } else {
        chunk
    };
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(d)) => push_output(&mut out, d),
                Ok(None) => break,
                Err(e) => out.push(Err(e)),
            }
        }
    }
    (out, buf)
}

/// Adds `decoded` to `out`, joining consecutive `MessageData` pieces into one.
pub(super) fn push_output(out: &mut Outputs, decoded: Decoded) {
    match (out.last_mut(), decoded) {
        (Some(Ok(Decoded::MessageData(data))), Decoded::MessageData(more)) => {
            let mut joined = BytesMut::from(&data[..]);
            joined.extend_from_slice(&more);
            *data = joined.freeze();
        }
        (_, decoded) => out.push(Ok(decoded)),
    }
}

/// Feeds `input` whole and in chunks of 1, 2, 4 … 512 octets, asserts identical outputs and
/// leftovers, and returns them.
pub(super) fn decode_chunked_with(config: &DecoderConfig, input: &[u8]) -> (Outputs, BytesMut) {
    let (whole, rest) = feed(config, input, 0);
    let mut size = 1;
    while size <= 512 {
        let (chunked, chunked_rest) = feed(config, input, size);
        assert_eq!(
            chunked,
            whole,
            "chunks of {size} differ for {:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(chunked_rest, rest, "leftover differs for chunks of {size}");
        size *= 2;
    }
    (whole, rest)
}

pub(super) fn decode_chunked(input: &[u8]) -> Outputs {
    decode_chunked_with(&DecoderConfig::default(), input).0
}

/// Decodes `input` (with literals as `{n+}` or after continuations) as exactly one command,
/// at every chunk size, and checks that encoding it again decodes to the same command.
pub(super) fn one_command(input: &str) -> CommandBody {
    let outputs = decode_chunked(input.as_bytes());
    let commands: Vec<&Command> = outputs
        .iter()
        .filter_map(|o| match o {
            Ok(Decoded::Command(c)) => Some(c),
            Ok(Decoded::NeedContinuation { .. }) => None,
            Ok(Decoded::MessageLiteral { .. } | Decoded::MessageData(_)) => {
                panic!("{input:?} handed out a message literal")
            }
            Err(e) => panic!("{input:?} failed: {e:?}"),
        })
        .collect();
    assert_eq!(commands.len(), 1, "{input:?} gave {outputs:?}");
    let command = commands[0].clone();
    assert_round_trips(&command);
    command.body
}

/// `decode(encode_command(c)) == c`.
pub(super) fn assert_round_trips(command: &Command) {
    let mut wire = BytesMut::new();
    encode_command(command, &mut wire);
    let (outputs, rest) = feed(&DecoderConfig::default(), &wire, 0);
    assert!(rest.is_empty(), "leftover after {wire:?}");
    assert_eq!(
        outputs,
        vec![Ok(Decoded::Command(command.clone()))],
        "round trip through {:?}",
        String::from_utf8_lossy(&wire)
    );
}

/// The single error `input` produces.
pub(super) fn one_error(input: &str) -> DecodeError {
    let outputs = decode_chunked(input.as_bytes());
    match outputs.as_slice() {
        [Err(e)] => e.clone(),
        other => panic!("{input:?} gave {other:?}"),
    }
}
