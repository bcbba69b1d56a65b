//! IMAP decode → encode_command → decode round trip.
//!
//! Every command the decoder accepts from arbitrary input must survive being written back
//! with `encode_command` and decoded again, unchanged. The second decode uses roomy limits:
//! re-encoding may turn literals into quoted strings (longer lines) and vice versa.
//!
//! The same input as a mailbox name checks modified UTF-7 (RFC 3501 §5.1.3) both ways: the
//! decoder is strict, so a name it accepts is the one wire form `encode_modified_utf7` gives,
//! and every UTF-8 name encodes to a wire form that decodes back to it.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_proto::imap::{
    CommandDecoder, Decoded, DecoderConfig, decode_modified_utf7, encode_command,
    encode_modified_utf7,
};

fuzz_target!(|data: &[u8]| {
    mailbox_names(data);
    run(data);
});

fn mailbox_names(data: &[u8]) {
    if let Ok(name) = decode_modified_utf7(data) {
        assert_eq!(
            encode_modified_utf7(&name).as_bytes(),
            data,
            "accepted a non-canonical wire name"
        );
    }
    let name = String::from_utf8_lossy(data);
    let wire = encode_modified_utf7(&name);
    assert_eq!(
        decode_modified_utf7(wire.as_bytes()).as_deref(),
        Ok(&*name),
        "wire form {wire:?}"
    );
}

fn run(data: &[u8]) {
    let mut decoder = CommandDecoder::default();
    let mut buf = BytesMut::from(data);
    let mut commands = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(Decoded::Command(command))) => commands.push(command),
            // The default decoder keeps every APPEND message, so it hands none out.
            Ok(Some(
                Decoded::NeedContinuation { .. }
                | Decoded::MessageLiteral { .. }
                | Decoded::MessageData(_),
            ))
            | Err(_) => {}
            Ok(None) => break,
        }
    }
    let roomy = DecoderConfig {
        max_line: 1 << 24,
        max_literal: 1 << 26,
        max_command_literals: 1 << 28,
        max_other_literals: 1 << 28,
        ..DecoderConfig::default()
    };
    for command in commands {
        let mut wire = BytesMut::new();
        encode_command(&command, &mut wire);
        let mut again = CommandDecoder::new(roomy.clone());
        let decoded = again.decode(&mut wire);
        assert_eq!(
            decoded,
            Ok(Some(Decoded::Command(command))),
            "re-encoded as {:?}",
            String::from_utf8_lossy(&wire)
        );
        assert!(wire.is_empty(), "leftover {wire:?}");
    }
}
