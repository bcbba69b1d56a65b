//! The message cache answers exactly as the blob-parse path: ENVELOPE, BODY and
//! BODYSTRUCTURE in the wire form clients receive, the header sections, and every header
//! SEARCH key, over the fixture corpus of `tests.rs`, edge cases and random messages.

use bytes::BytesMut;
use proptest::prelude::*;
use tern_proto::imap::{Data, FetchData, Response, SectionText, SeqNum};

use super::tests::{crlf, fixtures, messageish, names, sec};
use super::{
    AddrField, HEADER_CACHE_MAX, ParsedMessage, cached_body_structure, cached_envelope,
    cached_header, summarize,
};

/// Header SEARCH keys to compare: (field, needle).
const HEADER_KEYS: &[(&str, &str)] = &[
    ("Subject", ""),
    ("Subject", "mtg"),
    ("subject", "ä"),
    ("Subject", "andré"),
    ("From", "alice"),
    ("To", "example"),
    ("Cc", "klensin"),
    ("Message-ID", "<"),
    ("X-Missing", ""),
    ("Content-Type", "multipart"),
    ("Date", "1996"),
    ("", ""),
];

const NEEDLES: &[&str] = &[
    "",
    "a",
    "alice",
    "example.com",
    "gray",
    "Joe",
    "@",
    "é",
    "Pirard",
];

/// A FETCH item as a client receives it (8-bit strings as literals, so not always UTF-8).
fn wire(item: FetchData) -> Vec<u8> {
    let response = Response::Data(Data::Fetch {
        seq: SeqNum(std::num::NonZeroU32::MIN),
        items: vec![item],
    });
    let mut out = BytesMut::new();
    tern_proto::imap::encode(&response, &mut out);
    out.to_vec()
}

/// Messages the corpus lacks: bare LF, no blank line, 8-bit and encoded headers, deep
/// nesting, a digest, no header at all.
fn edge_cases() -> Vec<Vec<u8>> {
    let mut deep = Vec::new();
    for _ in 0..100 {
        deep.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    deep.extend_from_slice(b"Subject: deep\r\n\r\nbody");
    vec![
        b"Subject: bare LF\nFrom: a@b\n\nbody\n".to_vec(),
        b"Subject: only a header\r\nFrom: x@y".to_vec(),
        "Subject: caf\u{e9} \u{1f600}\r\nFrom: J\u{fc}rgen <j@x.test>\r\n\r\nok".into(),
        b"Subject: \xff\xfe raw 8-bit\r\n\r\n".to_vec(),
        b"Subject: =?utf-8?b?w6TDtsO8?= and =?iso-8859-1?q?caf=E9?=\r\nDate: Tue, 2 Jan 2024 23:30:00 -0900\r\n\r\n".to_vec(),
        crlf("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: in digest\n\nx\n--d--\n"),
        deep,
        Vec::new(),
        b"\r\nbody without header".to_vec(),
        crlf("To: undisclosed-recipients:;\nReply-To: \nSender: s@x\nCc: (comment) <@r:a@b>\n\n"),
    ]
}

/// Checks every cached answer against the parsed one for `raw`.
fn assert_cache_matches_parse(raw: &[u8]) {
    let parsed = ParsedMessage::parse(raw);
    let meta = summarize(raw);

    let envelope = meta.envelope.as_deref().and_then(cached_envelope);
    assert_eq!(
        envelope.as_ref(),
        Some(&parsed.envelope()),
        "ENVELOPE of {raw:?}"
    );
    let bytes = meta.body_structure.as_deref();
    for extensions in [true, false] {
        let cached = bytes.and_then(|b| cached_body_structure(b, extensions));
        let fresh = parsed.body_structure(extensions);
        assert_eq!(
            cached.as_ref(),
            Some(&fresh),
            "BODY ext={extensions} of {raw:?}"
        );
        let (cached_wire, fresh_wire) = match cached {
            Some(c) if extensions => (
                wire(FetchData::BodyStructure(Box::new(c))),
                wire(FetchData::BodyStructure(Box::new(fresh))),
            ),
            Some(c) => (
                wire(FetchData::Body(Box::new(c))),
                wire(FetchData::Body(Box::new(fresh))),
            ),
            None => unreachable!("asserted above"),
        };
        assert_eq!(cached_wire, fresh_wire);
    }
    assert_eq!(
        envelope.map(|e| wire(FetchData::Envelope(Box::new(e)))),
        Some(wire(FetchData::Envelope(Box::new(parsed.envelope()))))
    );

    let header = meta.headers.as_deref().and_then(cached_header);
    let Some(header) = header else {
        panic!("no cached header for {raw:?}");
    };
    for text in [
        SectionText::Header,
        SectionText::HeaderFields(names(&["from", "SUBJECT", "x-none"])),
        SectionText::HeaderFieldsNot(names(&["from", "received"])),
    ] {
        assert_eq!(
            header.section_text(&text),
            parsed.section(&sec(&[], Some(text.clone()))),
            "{text:?} of {raw:?}"
        );
    }
    for (field, needle) in HEADER_KEYS {
        assert_eq!(
            header.header_contains(field, needle),
            parsed.header_contains(field, needle),
            "HEADER {field} {needle:?} of {raw:?}"
        );
    }
    for needle in NEEDLES {
        for field in [
            AddrField::From,
            AddrField::To,
            AddrField::Cc,
            AddrField::Bcc,
        ] {
            assert_eq!(
                header.address_contains(field, needle),
                parsed.address_contains(field, needle),
                "{field:?} {needle:?} of {raw:?}"
            );
        }
        assert_eq!(
            header.subject_contains(needle),
            parsed.subject_contains(needle)
        );
    }
    assert_eq!(header.sent_date(), parsed.sent_date());
    assert_eq!(header.sent_day(), parsed.sent_day());
}

#[test]
fn cached_answers_match_the_parse_for_every_fixture() {
    for raw in fixtures() {
        assert_cache_matches_parse(&raw);
    }
}

#[test]
fn cached_answers_match_the_parse_for_edge_cases() {
    for raw in edge_cases() {
        assert_cache_matches_parse(&raw);
    }
}

#[test]
fn the_cached_header_block_is_the_start_of_the_message() {
    for raw in fixtures().into_iter().chain(edge_cases()) {
        let meta = summarize(&raw);
        let block = meta.headers.as_deref().and_then(|h| h.get(1..));
        assert!(block.is_some_and(|b| raw.starts_with(b)), "{raw:?}");
    }
}

#[test]
fn an_oversized_header_is_not_cached_but_the_structure_is() {
    let mut raw = Vec::new();
    while raw.len() <= HEADER_CACHE_MAX {
        raw.extend_from_slice(b"Received: from somewhere by somewhere else; for nobody\r\n");
    }
    raw.extend_from_slice(b"Subject: big\r\n\r\nbody\r\n");
    let meta = summarize(&raw);
    assert_eq!(meta.headers, None);
    assert!(meta.envelope.as_deref().and_then(cached_envelope).is_some());
    assert!(meta.body_structure.is_some());
}

#[test]
fn unreadable_cache_parts_are_not_answers() {
    assert!(cached_envelope(b"").is_none());
    assert!(cached_envelope(b"\x09junk").is_none());
    assert!(cached_body_structure(b"\x01", true).is_none());
    assert!(cached_header(b"").is_none());
    assert!(cached_header(b"\x02Subject: x\r\n\r\n").is_none());
}

proptest! {
    #[test]
    fn cached_answers_match_the_parse_for_mangled_mime(raw in messageish()) {
        assert_cache_matches_parse(&raw);
    }

    #[test]
    fn reading_damaged_cache_parts_never_panics(
        mut data in prop::collection::vec(any::<u8>(), 0..512),
        version in 0u8..3,
    ) {
        // Mostly the current format octet, so the decoders get past it.
        if let Some(first) = data.first_mut() {
            *first = version;
        }
        let _ = cached_envelope(&data);
        let _ = cached_body_structure(&data, true);
        let _ = cached_body_structure(&data, false);
        if let Some(header) = cached_header(&data) {
            let _ = header.envelope();
            let _ = header.header_contains("subject", "a");
        }
    }

    #[test]
    fn reading_corrupted_cache_parts_never_panics(
        raw in messageish(),
        at in any::<usize>(),
        octet in any::<u8>(),
    ) {
        let meta = summarize(&raw);
        for part in [meta.envelope, meta.body_structure].into_iter().flatten() {
            let mut part = part;
            let len = part.len();
            if let Some(b) = part.get_mut(at % len.max(1)) {
                *b = octet;
            }
            let _ = cached_envelope(&part);
            let _ = cached_body_structure(&part, true);
            let _ = cached_envelope(part.get(..at % len.max(1)).unwrap_or_default());
        }
    }

    #[test]
    fn cached_answers_match_the_parse_for_arbitrary_bytes(
        raw in prop::collection::vec(any::<u8>(), 0..1024)
    ) {
        assert_cache_matches_parse(&raw);
    }
}
