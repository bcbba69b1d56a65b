//! The message cache: computed once from a message when it is stored (delivery, APPEND) and
//! kept by `tern-store` as [`MessageMeta`], so that FETCH ENVELOPE/BODY/BODYSTRUCTURE,
//! BODY[HEADER…] and header SEARCH need neither the blob nor a parse.
//!
//! The three parts, each self-describing by a leading format octet so a later format can
//! replace them without a migration (an unknown one reads as "not cached"):
//! - `envelope`: ENVELOPE in the binary form of `codec.rs`;
//! - `body_structure`: BODYSTRUCTURE with extension data, same form; BODY is derived from it
//!   by dropping the extension data at every level (RFC 9051 §7.5.2: BODY is the
//!   non-extensible form of BODYSTRUCTURE), exactly what the parser yields for BODY;
//! - `headers`: the top-level header block octets as stored (RFC 9051 §6.4.5 HEADER), at
//!   most [`HEADER_CACHE_MAX`]. Header SEARCH (any field, RFC 9051 §6.4.4) and the header
//!   sections are computed from it by the same code that reads a whole message, since a
//!   header parse stops at the blank line: the answers are the same by construction.
//!
//! A part that is too large to be worth caching is left out (`None`); readers fall back to
//! the blob for it, as they do for messages stored before the cache existed.

use tern_proto::imap::{BodyStructure, Envelope, SinglePartKind};
use tern_store::MessageMeta;

use super::{MessageHeader, ParsedMessage, codec};

/// Header blocks larger than this are not cached; header SEARCH and BODY[HEADER] read the
/// blob for such a message. Ordinary headers (trace fields, DKIM and ARC sets included) are a
/// few KiB.
pub const HEADER_CACHE_MAX: usize = 64 * 1024;

/// Encoded ENVELOPE or BODYSTRUCTURE larger than this (a To: with thousands of addresses, a
/// multipart with thousands of parts) are not cached either.
const STRUCTURE_CACHE_MAX: usize = 256 * 1024;

/// Format octet of the `headers` part: this, then the header block.
const HEADER_FORMAT: u8 = 1;

/// The cache of the message `raw` (the exact octets that are stored).
pub fn summarize(raw: &[u8]) -> MessageMeta {
    summary_of(&ParsedMessage::parse(raw))
}

/// The cache of an already parsed message (a FETCH or SEARCH that had to read the blob
/// fills the cache of messages stored without one).
pub fn summary_of(msg: &ParsedMessage<'_>) -> MessageMeta {
    let bounded = |v: Vec<u8>| (v.len() <= STRUCTURE_CACHE_MAX).then_some(v);
    let block = msg.header().block();
    MessageMeta {
        envelope: bounded(codec::encode_envelope(&msg.envelope())),
        body_structure: bounded(codec::encode_body(&msg.body_structure(true))),
        headers: (block.len() <= HEADER_CACHE_MAX).then(|| {
            let mut v = Vec::with_capacity(block.len() + 1);
            v.push(HEADER_FORMAT);
            v.extend_from_slice(block);
            v
        }),
    }
}

/// ENVELOPE from the cached `envelope` part; `None` when it cannot be read.
pub fn cached_envelope(data: &[u8]) -> Option<Envelope> {
    codec::decode_envelope(data)
}

/// BODY (`extensions == false`) or BODYSTRUCTURE (`true`) from the cached `body_structure`
/// part; `None` when it cannot be read.
pub fn cached_body_structure(data: &[u8], extensions: bool) -> Option<BodyStructure> {
    let body = codec::decode_body(data)?;
    Some(if extensions {
        body
    } else {
        without_extensions(body)
    })
}

/// The top-level header from the cached `headers` part; `None` when it cannot be read.
pub fn cached_header(data: &[u8]) -> Option<MessageHeader<'_>> {
    match data.split_first() {
        Some((&HEADER_FORMAT, block)) => Some(MessageHeader::parse(block)),
        _ => None,
    }
}

/// BODYSTRUCTURE less its extension data, at every level (the decoder bounds the depth).
fn without_extensions(body: BodyStructure) -> BodyStructure {
    match body {
        BodyStructure::Single { fields, kind, .. } => BodyStructure::Single {
            fields,
            kind: match kind {
                SinglePartKind::Message {
                    subtype,
                    envelope,
                    body,
                    lines,
                } => SinglePartKind::Message {
                    subtype,
                    envelope,
                    body: Box::new(without_extensions(*body)),
                    lines,
                },
                other => other,
            },
            extension: None,
        },
        BodyStructure::Multi { parts, subtype, .. } => BodyStructure::Multi {
            parts: parts.into_iter().map(without_extensions).collect(),
            subtype,
            extension: None,
        },
    }
}
