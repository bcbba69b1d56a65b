//! The IMAP message model (tern-imap `ParsedMessage`: our own header and MIME scanner) on
//! arbitrary bytes as a stored message: ENVELOPE, BODY, BODYSTRUCTURE, BODY[section],
//! BINARY[part], SEARCH matching, partial fetches, and the FETCH response they encode to.
//!
//! Input: the first octet picks partial-fetch bounds and search needles; the rest is the
//! message. Nothing may panic (the crate promises "nothing here panics or fails on any input"),
//! and sections are the stored octets: the whole message, HEADER, TEXT and MIME are contiguous
//! ranges of it, HEADER followed by TEXT is the message, and BINARY.SIZE is BINARY's length.
#![no_main]

use std::num::NonZeroU32;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tern_imap::message::{AddrField, ParsedMessage, apply_partial, rfc822_size};
use tern_proto::imap::{Data, FetchData, Response, Section, SectionText, SeqNum, encode};

fuzz_target!(|data: &[u8]| run(data));

/// Part paths to ask for: top-level parts, nested parts and parts that usually do not exist.
const PATHS: [&[u32]; 9] = [
    &[],
    &[1],
    &[2],
    &[3],
    &[1, 1],
    &[1, 2],
    &[2, 1],
    &[1, 1, 1],
    &[1, 2, 1],
];

fn run(data: &[u8]) {
    let Some((&control, raw)) = data.split_first() else {
        return;
    };
    let message = ParsedMessage::parse(raw);
    let mut items = vec![
        FetchData::Envelope(Box::new(message.envelope())),
        FetchData::Body(Box::new(message.body_structure(false))),
        FetchData::BodyStructure(Box::new(message.body_structure(true))),
        FetchData::Rfc822Size(rfc822_size(raw)),
    ];

    let whole = |text| Section {
        part: Vec::new(),
        text,
    };
    assert_eq!(message.section(&whole(None)).as_deref(), Some(raw));
    if let (Some(header), Some(text)) = (
        message.section(&whole(Some(SectionText::Header))),
        message.section(&whole(Some(SectionText::Text))),
    ) {
        assert_eq!(
            [header, text].concat(),
            raw,
            "HEADER + TEXT is not the message"
        );
    }

    for path in PATHS {
        let part: Vec<NonZeroU32> = path.iter().filter_map(|&n| NonZeroU32::new(n)).collect();
        let texts = [
            None,
            Some(SectionText::Header),
            Some(SectionText::Text),
            Some(SectionText::Mime),
            Some(SectionText::HeaderFields(vec![
                "Subject".into(),
                "content-type".into(),
            ])),
            Some(SectionText::HeaderFieldsNot(vec!["From".into()])),
        ];
        for text in texts {
            let contiguous = matches!(
                text,
                None | Some(SectionText::Header | SectionText::Text | SectionText::Mime)
            );
            let section = Section {
                part: part.clone(),
                text,
            };
            let bytes = message.section(&section);
            if let Some(bytes) = &bytes
                && contiguous
            {
                assert!(
                    is_range_of(bytes, raw),
                    "BODY[{section:?}] is not a range of the message"
                );
            }
            items.push(FetchData::BodySection {
                section,
                origin: None,
                data: bytes.map(Bytes::from),
            });
        }
        let binary = message.binary(&part);
        let size = message.binary_size(&part);
        match (&binary, &size) {
            (Ok(Some(b)), Ok(Some(n))) => assert_eq!(b.len() as u64, *n, "BINARY.SIZE"),
            (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
            _ => panic!("BINARY {binary:?} and BINARY.SIZE {size:?} disagree"),
        }
        if let (Ok(Some(b)), Ok(Some(n))) = (binary, size) {
            items.push(FetchData::Binary {
                part: part.clone(),
                origin: None,
                data: Some(Bytes::from(b)),
            });
            items.push(FetchData::BinarySize { part, size: n });
        }
    }

    // Partial fetch bounds from the control octet: origin and count both ≤ 2 × length.
    let origin = u64::from(control & 0x0f) * raw.len() as u64 / 8;
    let count = match control >> 4 {
        0 => None,
        c => Some(u64::from(c) * raw.len() as u64 / 8),
    };
    let partial = apply_partial(raw, origin, count);
    assert!(partial.len() as u64 <= count.unwrap_or(u64::MAX));
    assert!(is_range_of(partial, raw));

    // SEARCH needles: a fixed word and a slice of the message itself.
    let own = String::from_utf8_lossy(&raw[..raw.len().min(usize::from(control & 7))]).into_owned();
    for needle in ["a", own.as_str(), "ü"] {
        let _ = message.header_contains("subject", needle);
        let _ = message.header_contains("x-unknown", needle);
        let _ = message.body_contains(needle);
        let _ = message.text_contains(needle);
        let _ = message.subject_contains(needle);
        for field in [
            AddrField::From,
            AddrField::To,
            AddrField::Cc,
            AddrField::Bcc,
        ] {
            let _ = message.address_contains(field, needle);
        }
    }
    let _ = message.sent_date();
    let _ = message.sent_day();

    let mut out = BytesMut::new();
    let seq = SeqNum(NonZeroU32::MIN);
    encode(&Response::Data(Data::Fetch { seq, items }), &mut out);
}

/// Whether `part` occurs in `whole` as a contiguous range.
fn is_range_of(part: &[u8], whole: &[u8]) -> bool {
    part.is_empty() || whole.windows(part.len()).any(|w| w == part)
}
