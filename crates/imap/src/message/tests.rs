//! ENVELOPE, BODYSTRUCTURE, sections, BINARY and SEARCH over whole messages, compared in
//! the wire form the codec sends to clients.

use std::num::NonZeroU32;

use bytes::BytesMut;
use proptest::prelude::*;
use tern_proto::imap::{
    BodyStructure, Data, Date, FetchData, Response, Section, SectionText, SeqNum, SinglePartKind,
};

use super::{AddrField, ParsedMessage, UnknownCte, apply_partial, mime};

/// Fixtures are written with LF; stored messages have CRLF.
pub(super) fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

/// The FETCH item as a client receives it, without the `* 1 FETCH (` framing.
pub(super) fn wire(item: FetchData) -> String {
    let response = Response::Data(Data::Fetch {
        seq: SeqNum::new(1).unwrap(),
        items: vec![item],
    });
    let mut out = BytesMut::new();
    tern_proto::imap::encode(&response, &mut out);
    let text = String::from_utf8(out.to_vec()).unwrap();
    text.strip_prefix("* 1 FETCH (")
        .and_then(|t| t.strip_suffix(")\r\n"))
        .unwrap()
        .to_owned()
}

fn envelope(raw: &[u8]) -> String {
    let env = ParsedMessage::parse(raw).envelope();
    wire(FetchData::Envelope(Box::new(env)))
        .strip_prefix("ENVELOPE ")
        .unwrap()
        .to_owned()
}

fn bodystructure(raw: &[u8]) -> String {
    let bs = ParsedMessage::parse(raw).body_structure(true);
    wire(FetchData::BodyStructure(Box::new(bs)))
        .strip_prefix("BODYSTRUCTURE ")
        .unwrap()
        .to_owned()
}

fn body(raw: &[u8]) -> String {
    let bs = ParsedMessage::parse(raw).body_structure(false);
    wire(FetchData::Body(Box::new(bs)))
        .strip_prefix("BODY ")
        .unwrap()
        .to_owned()
}

pub(super) fn path(p: &[u32]) -> Vec<NonZeroU32> {
    p.iter().map(|&n| NonZeroU32::new(n).unwrap()).collect()
}

pub(super) fn sec(p: &[u32], text: Option<SectionText>) -> Section {
    Section {
        part: path(p),
        text,
    }
}

fn fetch(raw: &[u8], p: &[u32], text: Option<SectionText>) -> Option<String> {
    ParsedMessage::parse(raw)
        .section(&sec(p, text))
        .map(|b| String::from_utf8(b).unwrap())
}

pub(super) fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| (*s).to_owned()).collect()
}

/// The RFC 9051 §8 (and RFC 3501 §8) sample message: 3028 octets of body in 92 lines.
pub(super) fn rfc_sample() -> Vec<u8> {
    let mut raw = crlf(
        "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)
From: Terry Gray <gray@cac.washington.edu>
Subject: IMAP4rev2 WG mtg summary and minutes
To: imap@cac.washington.edu
cc: minutes@CNRI.Reston.VA.US,
 John Klensin <KLENSIN@MIT.EDU>
Message-Id: <B27397-0100000@cac.washington.edu>
MIME-Version: 1.0
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

",
    );
    for i in 0..92 {
        let width = if i < 84 { 31 } else { 30 };
        raw.extend(std::iter::repeat_n(b'x', width));
        raw.extend_from_slice(b"\r\n");
    }
    raw
}

pub(super) const ALTERNATIVE: &str = "From: a@example.com
To: b@example.com
Subject: alt
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=\"XYZ\"

--XYZ
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hello =E2=80=93 world
--XYZ
Content-Type: text/html; charset=utf-8

<p>Hello</p>
--XYZ--
";

pub(super) const MIXED: &str = "From: Alice <alice@example.com>
To: Bob <bob@example.com>
Subject: report
Date: Sun, 6 Feb 1994 10:00:00 +0000
Message-ID: <2@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"outer\"

This is a multi-part message in MIME format.
--outer
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 numbers inside.
--outer
Content-Type: application/pdf; name=\"r.pdf\"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename=\"r.pdf\"; size=18
Content-Language: en, de

JVBERi0xLjQKJcOkw7zDtsOf
--outer
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

RGVyIELDpHIgdGFuenQgaW0gTW9uZHNjaGVpbi4=
--outer
Content-Type: application/octet-stream
Content-Transfer-Encoding: x-uuencode

begin 644 x
--outer--
";

pub(super) const FORWARD: &str = "From: Alice <alice@example.com>
To: Bob <bob@example.com>
Subject: Fwd: two messages
Date: Mon, 7 Feb 1994 23:52:25 -0800
Message-ID: <3@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"outer\"

--outer
Content-Type: text/plain

See attached.
--outer
Content-Type: multipart/mixed; boundary=\"inner\"

--inner
Content-Type: message/rfc822
Content-Description: forwarded

From: Carol <carol@example.com>
To: Alice <alice@example.com>
Subject: lunch
Date: Sun, 6 Feb 1994 10:00:00 +0000

Noon?
--inner
Content-Type: image/png
Content-ID: <img1@example.com>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--inner--
--outer--
";

// RFC 5322 Appendix A.1.2 and A.1.3 addresses.
pub(super) const GROUPS: &str = "From: \"Joe Q. Public\" <john.q.public@example.com>
To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>
Cc: <boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>
Bcc: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, Undisclosed recipients:;
Reply-To:
Date: Tue, 1 Jul 2003 10:52:37 +0200
Message-ID: <5678.21-Nov-1997@example.com>

Hi everyone.
";

pub(super) const ENCODED: &str = "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=
X-Tag: =?UTF-8?B?w5xiZXI=?= alles

Hallo.
";

#[test]
fn plain_text_envelope_matches_the_rfc_example() {
    assert_eq!(
        envelope(&rfc_sample()),
        "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((NIL NIL \"imap\" \"cac.washington.edu\")) \
         ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) \
         NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
    );
}

#[test]
fn plain_text_body_matches_the_rfc_example() {
    let raw = rfc_sample();
    assert_eq!(
        body(&raw),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92)"
    );
    assert_eq!(
        bodystructure(&raw),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92 NIL NIL NIL NIL)"
    );
}

#[test]
fn multipart_alternative_lists_both_parts_and_the_boundary() {
    let raw = crlf(ALTERNATIVE);
    assert_eq!(
        body(&raw),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 21 1)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 12 1) \"ALTERNATIVE\")"
    );
    assert_eq!(
        bodystructure(&raw),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 21 1 NIL NIL NIL NIL)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL) \
         \"ALTERNATIVE\" (\"BOUNDARY\" \"XYZ\") NIL NIL NIL)"
    );
}

#[test]
fn multipart_mixed_attachment_has_disposition_and_language() {
    assert_eq!(
        bodystructure(&crlf(MIXED)),
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"iso-8859-1\") NIL NIL \"QUOTED-PRINTABLE\" 22 1 NIL NIL NIL NIL)\
         (\"APPLICATION\" \"PDF\" (\"NAME\" \"r.pdf\") NIL NIL \"BASE64\" 24 NIL \
         (\"ATTACHMENT\" (\"FILENAME\" \"r.pdf\" \"SIZE\" \"18\")) (\"en\" \"de\") NIL)\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"BASE64\" 40 1 NIL NIL NIL NIL)\
         (\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"X-UUENCODE\" 11 NIL NIL NIL NIL) \
         \"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)"
    );
}

#[test]
fn attached_message_has_its_envelope_structure_and_lines() {
    assert_eq!(
        bodystructure(&crlf(FORWARD)),
        "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 13 1 NIL NIL NIL NIL)\
         ((\"MESSAGE\" \"RFC822\" NIL NIL \"forwarded\" \"7BIT\" 125 \
         (\"Sun, 6 Feb 1994 10:00:00 +0000\" \"lunch\" \
         ((\"Carol\" NIL \"carol\" \"example.com\")) ((\"Carol\" NIL \"carol\" \"example.com\")) \
         ((\"Carol\" NIL \"carol\" \"example.com\")) ((\"Alice\" NIL \"alice\" \"example.com\")) \
         NIL NIL NIL NIL) \
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL) \
         6 NIL NIL NIL NIL)\
         (\"IMAGE\" \"PNG\" NIL \"<img1@example.com>\" NIL \"BASE64\" 12 NIL NIL NIL NIL) \
         \"MIXED\" (\"BOUNDARY\" \"inner\") NIL NIL NIL) \
         \"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)"
    );
}

#[test]
fn group_addresses_are_marked_and_empty_reply_to_defaults_to_from() {
    let joe = "((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\"))";
    assert_eq!(
        envelope(&crlf(GROUPS)),
        format!(
            "(\"Tue, 1 Jul 2003 10:52:37 +0200\" NIL {joe} {joe} {joe} \
             ((\"Mary Smith\" NIL \"mary\" \"x.test\")(NIL NIL \"jdoe\" \"example.org\")\
             (\"Who?\" NIL \"one\" \"y.test\")) \
             ((NIL NIL \"boss\" \"nil.test\")(\"Giant; \\\"Big\\\" Box\" NIL \"sysservices\" \"example.net\")) \
             ((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")(NIL NIL \"joe\" \"where.test\")\
             (\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL)\
             (NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL NIL)) \
             NIL \"<5678.21-Nov-1997@example.com>\")"
        )
    );
}

#[test]
fn encoded_words_stay_raw_in_the_envelope() {
    assert_eq!(
        envelope(&crlf(ENCODED)),
        "(NIL \"=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\" \
         ((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" \"vm1.ulg.ac.be\")) \
         ((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" \"vm1.ulg.ac.be\")) \
         ((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" \"vm1.ulg.ac.be\")) \
         NIL NIL NIL NIL NIL)"
    );
}

#[test]
fn missing_headers_are_nil_and_content_type_defaults_to_us_ascii_text() {
    let raw = crlf("Subject: only\n\nbody");
    assert_eq!(
        envelope(&raw),
        "(NIL \"only\" NIL NIL NIL NIL NIL NIL NIL NIL)"
    );
    assert_eq!(
        bodystructure(&raw),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 4 1 NIL NIL NIL NIL)"
    );
    let empty = ParsedMessage::parse(b"");
    assert_eq!(
        wire(FetchData::Envelope(Box::new(empty.envelope()))),
        "ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    );
}

#[test]
fn whole_message_header_and_text_sections_are_the_stored_octets() {
    let raw = crlf(FORWARD);
    let msg = ParsedMessage::parse(&raw);
    let all = msg.section(&Section::default()).unwrap();
    assert_eq!(all, raw);
    let header = msg.section(&sec(&[], Some(SectionText::Header))).unwrap();
    let text = msg.section(&sec(&[], Some(SectionText::Text))).unwrap();
    assert!(header.ends_with(b"boundary=\"outer\"\r\n\r\n"));
    assert_eq!([header, text].concat(), raw);
    assert_eq!(msg.section(&sec(&[], Some(SectionText::Mime))), None);
}

#[test]
fn part_numbers_reach_parts_inside_attached_messages() {
    let raw = crlf(FORWARD);
    assert_eq!(fetch(&raw, &[1], None).unwrap(), "See attached.");
    let inner_message = "From: Carol <carol@example.com>\r\nTo: Alice <alice@example.com>\r\n\
                         Subject: lunch\r\nDate: Sun, 6 Feb 1994 10:00:00 +0000\r\n\r\nNoon?";
    assert_eq!(fetch(&raw, &[2, 1], None).unwrap(), inner_message);
    assert_eq!(
        fetch(&raw, &[2, 1], Some(SectionText::Header)).unwrap(),
        inner_message.strip_suffix("Noon?").unwrap()
    );
    assert_eq!(
        fetch(&raw, &[2, 1], Some(SectionText::Text)).unwrap(),
        "Noon?"
    );
    assert_eq!(fetch(&raw, &[2, 1, 1], None).unwrap(), "Noon?");
    assert_eq!(
        fetch(&raw, &[2, 1], Some(SectionText::Mime)).unwrap(),
        "Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n"
    );
    assert_eq!(fetch(&raw, &[2, 2], None).unwrap(), "iVBORw0KGgo=");
    assert!(fetch(&raw, &[2], None).unwrap().starts_with("--inner\r\n"));
    assert!(fetch(&raw, &[2], None).unwrap().ends_with("\r\n--inner--"));
}

#[test]
fn nonexistent_parts_and_inapplicable_section_texts_are_none() {
    let raw = crlf(FORWARD);
    for (p, text) in [
        (&[3][..], None),
        (&[2, 3], None),
        (&[1, 1], None),
        (&[2, 2, 1], None),
        (&[2, 1, 2], None),
        (&[2], Some(SectionText::Header)),
        (&[1], Some(SectionText::Text)),
    ] {
        assert_eq!(fetch(&raw, p, text.clone()), None, "{p:?} {text:?}");
    }
    let plain = rfc_sample();
    assert_eq!(fetch(&plain, &[2], None), None);
}

#[test]
fn non_multipart_message_body_is_part_one_and_its_mime_header_is_the_header() {
    let raw = rfc_sample();
    let text = fetch(&raw, &[], Some(SectionText::Text)).unwrap();
    assert_eq!(fetch(&raw, &[1], None).unwrap(), text);
    assert_eq!(
        fetch(&raw, &[1], Some(SectionText::Mime)),
        fetch(&raw, &[], Some(SectionText::Header))
    );
}

#[test]
fn header_fields_keep_folded_lines_in_message_order() {
    let raw = rfc_sample();
    assert_eq!(
        fetch(
            &raw,
            &[],
            Some(SectionText::HeaderFields(names(&[
                "CC", "subject", "X-None"
            ])))
        )
        .unwrap(),
        "Subject: IMAP4rev2 WG mtg summary and minutes\r\n\
         cc: minutes@CNRI.Reston.VA.US,\r\n John Klensin <KLENSIN@MIT.EDU>\r\n\r\n"
    );
    assert_eq!(
        fetch(
            &raw,
            &[],
            Some(SectionText::HeaderFieldsNot(names(&[
                "date",
                "from",
                "subject",
                "to",
                "cc",
                "message-id"
            ])))
        )
        .unwrap(),
        "MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n"
    );
    assert_eq!(
        fetch(
            &raw,
            &[],
            Some(SectionText::HeaderFields(names(&["X-None"])))
        )
        .unwrap(),
        "\r\n"
    );
    let fwd = crlf(FORWARD);
    assert_eq!(
        fetch(
            &fwd,
            &[2, 1],
            Some(SectionText::HeaderFields(names(&["subject"])))
        )
        .unwrap(),
        "Subject: lunch\r\n\r\n"
    );
}

#[test]
fn partial_fetch_slices_within_bounds() {
    let data = b"0123456789";
    assert_eq!(apply_partial(data, 0, Some(4)), b"0123");
    assert_eq!(apply_partial(data, 8, Some(4)), b"89");
    assert_eq!(apply_partial(data, 10, Some(1)), b"");
    assert_eq!(apply_partial(data, u64::MAX, Some(u64::MAX)), b"");
    assert_eq!(apply_partial(data, 3, None), b"3456789");
    assert_eq!(apply_partial(data, 3, Some(0)), b"");
}

#[test]
fn binary_decodes_base64_and_quoted_printable() {
    let raw = crlf(MIXED);
    let msg = ParsedMessage::parse(&raw);
    assert_eq!(
        msg.binary(&path(&[1])).unwrap().unwrap(),
        b"Caf\xe9 numbers inside."
    );
    let pdf = msg.binary(&path(&[2])).unwrap().unwrap();
    assert_eq!(pdf, "%PDF-1.4\n%äüöß".as_bytes());
    assert_eq!(msg.binary_size(&path(&[2])).unwrap(), Some(18));
    assert_eq!(msg.binary_size(&path(&[1])).unwrap(), Some(20));
    assert_eq!(msg.binary(&path(&[9])).unwrap(), None);
    assert_eq!(msg.binary(&[]).unwrap().unwrap(), raw);
    let alt = crlf(ALTERNATIVE);
    let alt = ParsedMessage::parse(&alt);
    assert_eq!(
        alt.binary(&path(&[1])).unwrap().unwrap(),
        "Hello – world".as_bytes()
    );
    assert_eq!(alt.binary(&path(&[2])).unwrap().unwrap(), b"<p>Hello</p>");
}

#[test]
fn binary_of_an_unknown_encoding_is_an_error() {
    let raw = crlf(MIXED);
    let msg = ParsedMessage::parse(&raw);
    assert_eq!(
        msg.binary(&path(&[4])),
        Err(UnknownCte("x-uuencode".to_owned()))
    );
    assert_eq!(
        msg.binary_size(&path(&[4])),
        Err(UnknownCte("x-uuencode".to_owned()))
    );
}

#[test]
fn subject_search_matches_decoded_encoded_words_case_insensitively() {
    let raw = crlf(ENCODED);
    let msg = ParsedMessage::parse(&raw);
    assert!(msg.subject_contains("köln"));
    assert!(msg.subject_contains("KÖLN"));
    assert!(msg.subject_contains("grüße aus"));
    assert!(!msg.subject_contains("C3=BC"));
    assert!(msg.header_contains("x-tag", "über alles"));
    assert!(msg.header_contains("X-TAG", ""));
    assert!(!msg.header_contains("X-Missing", ""));
    assert!(msg.address_contains(AddrField::From, "andré"));
    assert!(msg.address_contains(AddrField::From, "pirard@VM1"));
    assert!(!msg.address_contains(AddrField::To, "pirard"));
    assert!(msg.text_contains("HALLO"));
    assert!(msg.text_contains("Grüße"));
    assert!(!msg.body_contains("Grüße"));
}

#[test]
fn body_search_decodes_transfer_encodings_and_charsets() {
    let raw = crlf(MIXED);
    let msg = ParsedMessage::parse(&raw);
    assert!(msg.body_contains("bär tanzt"));
    assert!(msg.body_contains("CAFÉ"));
    assert!(!msg.body_contains("PDF-1.4"));
    assert!(!msg.body_contains("RGVy"));
    assert!(msg.body_contains(""));
    let fwd = crlf(FORWARD);
    let fwd = ParsedMessage::parse(&fwd);
    assert!(fwd.body_contains("noon?"));
    assert!(fwd.body_contains("carol@example"));
    assert!(fwd.address_contains(AddrField::To, "Bob"));
    assert!(!fwd.address_contains(AddrField::To, "carol"));
}

#[test]
fn sent_day_is_the_date_in_the_headers_own_zone() {
    let raw = crlf(FORWARD);
    let msg = ParsedMessage::parse(&raw);
    // Mon, 7 Feb 1994 23:52:25 -0800 is 8 Feb 07:52:25 UTC.
    assert_eq!(
        msg.sent_day(),
        Some(Date {
            year: 1994,
            month: 2,
            day: 7
        })
    );
    assert_eq!(msg.sent_date(), Some(760_693_945));
    assert_eq!(
        ParsedMessage::parse(b"Date: yesterday\r\n\r\n").sent_day(),
        None
    );
    assert_eq!(ParsedMessage::parse(b"").sent_date(), None);
}

#[test]
fn bare_lf_messages_are_sliced_the_same_way() {
    let raw = FORWARD.as_bytes();
    assert_eq!(fetch(raw, &[2, 1, 1], None).unwrap(), "Noon?");
    assert_eq!(fetch(raw, &[1], None).unwrap(), "See attached.");
    assert_eq!(
        fetch(
            raw,
            &[],
            Some(SectionText::HeaderFields(names(&["subject"])))
        )
        .unwrap(),
        "Subject: Fwd: two messages\n\r\n"
    );
    assert!(bodystructure(raw).contains("\"7BIT\" 120 (\"Sun, 6 Feb"));
}

#[test]
fn messages_without_a_blank_line_are_all_header() {
    let raw = b"just some text without a header\r\nmore";
    let msg = ParsedMessage::parse(raw);
    assert_eq!(
        msg.section(&sec(&[], Some(SectionText::Header))).unwrap(),
        raw
    );
    assert_eq!(
        msg.section(&sec(&[], Some(SectionText::Text))).unwrap(),
        b""
    );
    assert_eq!(msg.section(&sec(&[1], None)).unwrap(), b"");
    assert_eq!(
        bodystructure(raw),
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)"
    );
}

#[test]
fn eight_bit_headers_are_sent_as_literals() {
    let raw = "From: Jörg <jörg@bücher.example>\r\nSubject: Grüße\r\n\r\nx".as_bytes();
    let env = envelope(raw);
    assert!(
        env.starts_with("(NIL {7}\r\nGrüße (({5}\r\nJörg NIL {5}\r\njörg {15}\r\nbücher.example))"),
        "{env}"
    );
    let msg = ParsedMessage::parse(raw);
    assert!(msg.subject_contains("GRÜẞE"));
    assert!(msg.subject_contains("grüße"));
    assert!(msg.address_contains(AddrField::From, "bücher"));
}

#[test]
fn multipart_digest_parts_default_to_message_rfc822() {
    let raw = crlf(
        "Content-Type: multipart/digest; boundary=d

--d

Subject: one

first
--d--
",
    );
    let bs = bodystructure(&raw);
    assert!(
        bs.starts_with("((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 21 (NIL \"one\""),
        "{bs}"
    );
    assert_eq!(fetch(&raw, &[1, 1], None).unwrap(), "first");
}

#[test]
fn decoded_parts_agree_with_mail_parser() {
    let raw = crlf(MIXED);
    let ours = ParsedMessage::parse(&raw);
    let theirs = mail_parser::MessageParser::new().parse(&raw).unwrap();
    // mail-parser's parts: 0 is the multipart, then the four body parts in order.
    assert_eq!(theirs.parts.len(), 5);
    assert_eq!(
        theirs.parts[1].text_contents(),
        Some("Café numbers inside.")
    );
    assert_eq!(
        theirs.parts[2].contents(),
        &ours.binary(&path(&[2])).unwrap().unwrap()[..]
    );
    assert_eq!(
        theirs.parts[3].text_contents().map(str::as_bytes),
        Some(&ours.binary(&path(&[3])).unwrap().unwrap()[..])
    );
    // Its encoded-body offsets match our sections for the parts it does not re-parse.
    for (i, part) in theirs.parts.iter().enumerate().skip(1) {
        let n = u32::try_from(i).unwrap();
        let start = usize::try_from(part.offset_body).unwrap();
        let ours_body = ours.section(&sec(&[n], None)).unwrap();
        assert_eq!(
            &raw[start..start + ours_body.len()],
            &ours_body[..],
            "part {i}"
        );
    }
}

/// Walks a BODYSTRUCTURE and checks every size and text line count against the octets
/// BODY[part] returns, so the two never disagree for a client.
fn check_sizes(msg: &ParsedMessage<'_>, bs: &BodyStructure, prefix: &[u32], message_root: bool) {
    match bs {
        BodyStructure::Multi { parts, .. } => {
            for (i, part) in parts.iter().enumerate() {
                let p = [prefix, &[u32::try_from(i + 1).unwrap()]].concat();
                check_sizes(msg, part, &p, false);
            }
        }
        BodyStructure::Single { fields, kind, .. } => {
            let p = if message_root {
                [prefix, &[1]].concat()
            } else {
                prefix.to_vec()
            };
            let data = msg.section(&sec(&p, None)).unwrap();
            assert_eq!(fields.size, data.len() as u64, "size of {p:?}");
            match kind {
                SinglePartKind::Text { lines, .. } => {
                    assert_eq!(*lines, mime::count_lines(&data), "lines of {p:?}");
                }
                SinglePartKind::Message { body, lines, .. } => {
                    assert_eq!(*lines, mime::count_lines(&data), "lines of {p:?}");
                    check_sizes(msg, body, &p, true);
                }
                SinglePartKind::Basic { .. } => {}
            }
        }
    }
}

#[test]
fn structure_sizes_match_the_sections_of_every_fixture() {
    for raw in &fixtures() {
        let msg = ParsedMessage::parse(raw);
        check_sizes(&msg, &msg.body_structure(true), &[], true);
    }
}

/// Every fixture message above.
pub(super) fn fixtures() -> Vec<Vec<u8>> {
    let raw = [ALTERNATIVE, MIXED, FORWARD, GROUPS, ENCODED];
    let mut out = vec![rfc_sample(), FORWARD.as_bytes().to_vec()];
    out.extend(raw.iter().map(|m| crlf(m)));
    out
}

/// Messages built from pieces that exercise the MIME scanner, then mangled.
pub(super) fn messageish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(&b"Content-Type: multipart/mixed; boundary=a\r\n"[..]),
        Just(&b"Content-Type: message/rfc822\r\n"[..]),
        Just(&b"Content-Type: multipart/digest; boundary=\"a\"\r\n"[..]),
        Just(&b"Content-Transfer-Encoding: base64\r\n"[..]),
        Just(&b"Content-Transfer-Encoding: quoted-printable\r\n"[..]),
        Just(&b"From: a <b@c>, g: d@e;\r\n"[..]),
        Just(&b"Subject: =?utf-8?q?=C3=A4?=\r\n"[..]),
        Just(&b"Date: Mon, 7 Feb 1994 23:52:25 -0800\r\n"[..]),
        Just(&b"--a\r\n"[..]),
        Just(&b"--a--\r\n"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\n"[..]),
        Just(&b" folded\r\n"[..]),
        Just(&b"=E9=\r\n"[..]),
        Just(&b"(\"<@:;,\\"[..]),
        Just(&b"\xff\xfe\x00"[..]),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

fn exercise(raw: &[u8]) {
    let msg = ParsedMessage::parse(raw);
    let _ = msg.envelope();
    let _ = wire(FetchData::BodyStructure(Box::new(msg.body_structure(true))));
    let _ = wire(FetchData::Body(Box::new(msg.body_structure(false))));
    for p in [&[][..], &[1], &[2], &[1, 1], &[1, 2, 1], &[2, 1, 1, 1]] {
        for text in [
            None,
            Some(SectionText::Header),
            Some(SectionText::Text),
            Some(SectionText::Mime),
            Some(SectionText::HeaderFields(names(&["from", "subject"]))),
            Some(SectionText::HeaderFieldsNot(names(&["from"]))),
        ] {
            if let Some(data) = msg.section(&sec(p, text)) {
                let _ = apply_partial(&data, 3, Some(5));
            }
        }
        let _ = msg.binary(&path(p));
        let _ = msg.binary_size(&path(p));
    }
    let _ = msg.header_contains("subject", "ä");
    let _ = msg.body_contains("x");
    let _ = msg.text_contains("É");
    let _ = msg.address_contains(AddrField::From, "b");
    let _ = msg.subject_contains("");
    let _ = msg.sent_date();
    let _ = msg.sent_day();
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&raw);
    }

    #[test]
    fn mangled_mime_never_panics(raw in messageish()) {
        exercise(&raw);
    }

    #[test]
    fn structure_sizes_always_match_sections(raw in messageish()) {
        let msg = ParsedMessage::parse(&raw);
        check_sizes(&msg, &msg.body_structure(false), &[], true);
    }

    #[test]
    fn header_and_text_always_reassemble_the_message(raw in messageish()) {
        let msg = ParsedMessage::parse(&raw);
        let header = msg.section(&sec(&[], Some(SectionText::Header))).unwrap_or_default();
        let text = msg.section(&sec(&[], Some(SectionText::Text))).unwrap_or_default();
        prop_assert_eq!([header, text].concat(), raw);
    }
}
