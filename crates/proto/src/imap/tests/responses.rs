//! Response encoding, byte for byte.

use std::num::NonZeroU32;

use bytes::{Bytes, BytesMut};

use crate::imap::*;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn tag(s: &str) -> Tag {
    Tag::new(s).unwrap()
}

fn wire(response: &Response) -> String {
    let mut out = BytesMut::new();
    encode(response, &mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

fn wire_utf8(response: &Response) -> String {
    let mut out = BytesMut::new();
    ResponseEncoder { utf8: true }.encode(response, &mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

fn data(d: Data) -> String {
    wire(&Response::Data(d))
}

fn set(ids: &[u32]) -> SequenceSet {
    SequenceSet::from_ids(ids.iter().copied()).unwrap()
}

#[test]
fn tagged_and_untagged_status_responses() {
    assert_eq!(
        wire(&Response::ok(tag("a1"), None, "LOGIN completed")),
        "a1 OK LOGIN completed\r\n"
    );
    assert_eq!(
        wire(&Response::no(
            tag("a2"),
            Some(Code::TryCreate),
            "No such mailbox"
        )),
        "a2 NO [TRYCREATE] No such mailbox\r\n"
    );
    assert_eq!(
        wire(&Response::bad(None, None, "Empty command")),
        "* BAD Empty command\r\n"
    );
    assert_eq!(
        wire(&Response::untagged(
            Status::PreAuth,
            None,
            "IMAP4rev2 server logged in as Smith"
        )),
        "* PREAUTH IMAP4rev2 server logged in as Smith\r\n"
    );
    assert_eq!(
        wire(&Response::Status(StatusResponse::tagged(
            tag("x"),
            Status::Bye,
            None,
            "bye"
        ))),
        "* BYE bye\r\n"
    );
    assert_eq!(
        wire(&Response::untagged(
            Status::Ok,
            Some(Code::UidValidity(UidValidity(nz(3857529045)))),
            ""
        )),
        "* OK [UIDVALIDITY 3857529045]\r\n"
    );
}

#[test]
fn text_cannot_inject_lines() {
    assert_eq!(
        wire(&Response::ok(tag("a"), None, "one\r\n* BYE two")),
        "a OK one  * BYE two\r\n"
    );
    assert_eq!(
        wire(&Response::ok(
            tag("a"),
            Some(Code::Other("X-FOO".into(), Some("a]b\r\nc".into()))),
            "t"
        )),
        "a OK [X-FOO a b  c] t\r\n"
    );
}

#[test]
fn every_response_code_encodes() {
    let cases: Vec<(Code, &str)> = vec![
        (Code::Alert, "ALERT"),
        (Code::BadCharset(vec![]), "BADCHARSET"),
        (
            Code::BadCharset(vec!["UTF-8".into(), "US ASCII".into()]),
            "BADCHARSET (UTF-8 \"US ASCII\")",
        ),
        (
            Code::Capability(vec!["IMAP4rev2".into(), "IDLE".into()]),
            "CAPABILITY IMAP4rev2 IDLE",
        ),
        (Code::Parse, "PARSE"),
        (
            Code::PermanentFlags(vec![
                FlagPerm::Flag(Flag::Deleted),
                FlagPerm::Flag(Flag::Seen),
                FlagPerm::Any,
            ]),
            "PERMANENTFLAGS (\\Deleted \\Seen \\*)",
        ),
        (Code::ReadOnly, "READ-ONLY"),
        (Code::ReadWrite, "READ-WRITE"),
        (Code::TryCreate, "TRYCREATE"),
        (Code::UidNext(Uid(nz(4392))), "UIDNEXT 4392"),
        (Code::UidValidity(UidValidity(nz(1))), "UIDVALIDITY 1"),
        (Code::Unseen(SeqNum(nz(12))), "UNSEEN 12"),
        (
            Code::AppendUid(UidValidity(nz(38505)), set(&[3955])),
            "APPENDUID 38505 3955",
        ),
        (
            Code::CopyUid(
                UidValidity(nz(38505)),
                set(&[304, 319, 320]),
                set(&[3956, 3957, 3958]),
            ),
            "COPYUID 38505 304,319:320 3956:3958",
        ),
        (Code::UidNotSticky, "UIDNOTSTICKY"),
        (
            Code::HighestModSeq(ModSeq(715194045007)),
            "HIGHESTMODSEQ 715194045007",
        ),
        (Code::NoModSeq, "NOMODSEQ"),
        (Code::Modified(set(&[7, 9])), "MODIFIED 7,9"),
        (Code::Closed, "CLOSED"),
        (Code::TooBig, "TOOBIG"),
        (Code::Limit, "LIMIT"),
        (Code::Unavailable, "UNAVAILABLE"),
        (Code::AuthenticationFailed, "AUTHENTICATIONFAILED"),
        (Code::AuthorizationFailed, "AUTHORIZATIONFAILED"),
        (Code::Expired, "EXPIRED"),
        (Code::PrivacyRequired, "PRIVACYREQUIRED"),
        (Code::ContactAdmin, "CONTACTADMIN"),
        (Code::NoPerm, "NOPERM"),
        (Code::InUse, "INUSE"),
        (Code::ExpungeIssued, "EXPUNGEISSUED"),
        (Code::Corruption, "CORRUPTION"),
        (Code::ServerBug, "SERVERBUG"),
        (Code::ClientBug, "CLIENTBUG"),
        (Code::Cannot, "CANNOT"),
        (Code::OverQuota, "OVERQUOTA"),
        (Code::AlreadyExists, "ALREADYEXISTS"),
        (Code::NonExistent, "NONEXISTENT"),
        (Code::NotSaved, "NOTSAVED"),
        (Code::HasChildren, "HASCHILDREN"),
        (Code::UnknownCte, "UNKNOWN-CTE"),
        (Code::Other("X-THING".into(), None), "X-THING"),
    ];
    for (code, expected) in cases {
        assert_eq!(
            wire(&Response::no(tag("t"), Some(code), "x")),
            format!("t NO [{expected}] x\r\n")
        );
    }
}

#[test]
fn continuation_requests() {
    assert_eq!(
        wire(&Response::Continue(ContinueRequest::Text {
            code: None,
            text: "Ready".into()
        })),
        "+ Ready\r\n"
    );
    assert_eq!(
        wire(&Response::Continue(ContinueRequest::Base64(String::new()))),
        "+ \r\n"
    );
    assert_eq!(
        wire(&Response::Continue(ContinueRequest::Base64(
            "cj1mb28=".into()
        ))),
        "+ cj1mb28=\r\n"
    );
}

#[test]
fn capability_enabled_flags_and_counts() {
    assert_eq!(
        data(Data::Capability(vec![
            "IMAP4rev2".into(),
            "AUTH=PLAIN".into()
        ])),
        "* CAPABILITY IMAP4rev2 AUTH=PLAIN\r\n"
    );
    assert_eq!(
        data(Data::Enabled(vec!["CONDSTORE".into()])),
        "* ENABLED CONDSTORE\r\n"
    );
    assert_eq!(
        data(Data::Flags(vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
            Flag::Keyword("$Forwarded".into())
        ])),
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n"
    );
    assert_eq!(data(Data::Exists(23)), "* 23 EXISTS\r\n");
    assert_eq!(data(Data::Recent(0)), "* 0 RECENT\r\n");
    assert_eq!(data(Data::Expunge(SeqNum(nz(3)))), "* 3 EXPUNGE\r\n");
    assert_eq!(
        data(Data::Vanished {
            earlier: true,
            uids: set(&[41, 43, 44, 45, 46, 100])
        }),
        "* VANISHED (EARLIER) 41,43:46,100\r\n"
    );
    assert_eq!(
        data(Data::Vanished {
            earlier: false,
            uids: set(&[5])
        }),
        "* VANISHED 5\r\n"
    );
}

#[test]
fn list_responses_encode_names_by_mode() {
    let list = ListData {
        attributes: vec![MailboxAttribute::HasNoChildren, MailboxAttribute::Drafts],
        delimiter: Some('/'),
        mailbox: Mailbox::new("Entwürfe"),
        extended: vec![],
    };
    assert_eq!(
        data(Data::List(list.clone())),
        "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Entw&APw-rfe\"\r\n"
    );
    assert_eq!(
        wire_utf8(&Response::Data(Data::List(list))),
        "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Entwürfe\"\r\n"
    );
    assert_eq!(
        data(Data::List(ListData {
            attributes: vec![MailboxAttribute::Subscribed, MailboxAttribute::NonExistent],
            delimiter: None,
            mailbox: Mailbox::new("Foo\"bar\\"),
            extended: vec![
                ListExtendedItem::ChildInfo(vec!["SUBSCRIBED".into()]),
                ListExtendedItem::OldName(Mailbox::new("Old"))
            ],
        })),
        "* LIST (\\Subscribed \\NonExistent) NIL \"Foo\\\"bar\\\\\" (\"CHILDINFO\" (\"SUBSCRIBED\") \"OLDNAME\" (\"Old\"))\r\n"
    );
    assert_eq!(
        data(Data::Lsub(ListData {
            attributes: vec![],
            delimiter: Some('.'),
            mailbox: Mailbox::new("a\r\nb"),
            extended: vec![],
        })),
        "* LSUB () \".\" \"a&AA0ACg-b\"\r\n"
    );
    assert_eq!(
        wire_utf8(&Response::Data(Data::Lsub(ListData {
            attributes: vec![],
            delimiter: Some('.'),
            mailbox: Mailbox::new("a\r\nb"),
            extended: vec![],
        }))),
        "* LSUB () \".\" {4}\r\na\r\nb\r\n"
    );
}

#[test]
fn namespace_status_search_and_id() {
    assert_eq!(
        data(Data::Namespace {
            personal: Some(vec![NamespaceDesc {
                prefix: String::new(),
                delimiter: Some('/')
            }]),
            other: None,
            shared: None
        }),
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"
    );
    assert_eq!(
        data(Data::Status {
            mailbox: Mailbox::new("blurdybloop"),
            items: vec![
                StatusValue::Messages(231),
                StatusValue::UidNext(Uid(nz(44292))),
                StatusValue::UidValidity(UidValidity(nz(7))),
                StatusValue::Unseen(3),
                StatusValue::Deleted(1),
                StatusValue::Size(123456789012),
                StatusValue::HighestModSeq(ModSeq(9)),
                StatusValue::Recent(0),
            ]
        }),
        "* STATUS \"blurdybloop\" (MESSAGES 231 UIDNEXT 44292 UIDVALIDITY 7 UNSEEN 3 DELETED 1 SIZE 123456789012 HIGHESTMODSEQ 9 RECENT 0)\r\n"
    );
    assert_eq!(
        data(Data::Search {
            ids: vec![nz(2), nz(3), nz(6)],
            mod_seq: None
        }),
        "* SEARCH 2 3 6\r\n"
    );
    assert_eq!(
        data(Data::Search {
            ids: vec![],
            mod_seq: None
        }),
        "* SEARCH\r\n"
    );
    assert_eq!(
        data(Data::Search {
            ids: vec![nz(2)],
            mod_seq: Some(ModSeq(917162500))
        }),
        "* SEARCH 2 (MODSEQ 917162500)\r\n"
    );
    assert_eq!(
        data(Data::Id(Some(vec![
            ("name".into(), Some("Tern".into())),
            ("support-url".into(), None)
        ]))),
        "* ID (\"name\" \"Tern\" \"support-url\" NIL)\r\n"
    );
    assert_eq!(data(Data::Id(None)), "* ID NIL\r\n");
}

#[test]
fn esearch_responses() {
    assert_eq!(
        data(Data::ESearch(ESearch {
            tag: Some(tag("A282")),
            uid: true,
            min: Some(nz(2)),
            max: Some(nz(47)),
            count: Some(5),
            all: Some(set(&[2, 10, 11, 12, 47])),
            mod_seq: Some(ModSeq(917162500)),
        })),
        "* ESEARCH (TAG \"A282\") UID MIN 2 MAX 47 COUNT 5 ALL 2,10:12,47 MODSEQ 917162500\r\n"
    );
    assert_eq!(
        data(Data::ESearch(ESearch {
            tag: Some(tag("A283")),
            count: Some(0),
            ..ESearch::default()
        })),
        "* ESEARCH (TAG \"A283\") COUNT 0\r\n"
    );
}

#[test]
fn fetch_simple_items() {
    let dt = DateTime {
        date: Date {
            year: 1996,
            month: 7,
            day: 17,
        },
        hour: 2,
        minute: 44,
        second: 25,
        zone_minutes: -420,
    };
    assert_eq!(
        data(Data::Fetch {
            seq: SeqNum(nz(12)),
            items: vec![
                FetchData::Flags(vec![FlagFetch::Flag(Flag::Seen), FlagFetch::Recent]),
                FetchData::InternalDate(dt),
                FetchData::Rfc822Size(44827),
                FetchData::Uid(Uid(nz(4827313))),
                FetchData::ModSeq(ModSeq(12121231000)),
            ]
        }),
        "* 12 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827 UID 4827313 MODSEQ (12121231000))\r\n"
    );
}

#[test]
fn fetch_body_sections_are_literals_and_binary_uses_literal8_for_nul() {
    assert_eq!(
        data(Data::Fetch {
            seq: SeqNum(nz(1)),
            items: vec![
                FetchData::BodySection {
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields(vec!["From".into(), "X Y".into()]))
                    },
                    origin: None,
                    data: Some(Bytes::from_static(b"From: a\r\n\r\n"))
                },
                FetchData::BodySection {
                    section: Section {
                        part: vec![nz(1), nz(2)],
                        text: Some(SectionText::Mime)
                    },
                    origin: Some(0),
                    data: None
                },
                FetchData::Binary {
                    part: vec![nz(2)],
                    origin: None,
                    data: Some(Bytes::from_static(b"a\0b"))
                },
                FetchData::Binary {
                    part: vec![],
                    origin: Some(5),
                    data: Some(Bytes::from_static(b"ab"))
                },
                FetchData::BinarySize {
                    part: vec![nz(3)],
                    size: 1024
                },
                FetchData::Rfc822(None),
            ]
        }),
        "* 1 FETCH (BODY[HEADER.FIELDS (From \"X Y\")] {11}\r\nFrom: a\r\n\r\n BODY[1.2.MIME]<0> NIL BINARY[2] ~{3}\r\na\0b BINARY[]<5> {2}\r\nab BINARY.SIZE[3] 1024 RFC822 NIL)\r\n"
    );
}

fn text_part() -> BodyStructure {
    BodyStructure::Single {
        fields: BodyFields {
            params: vec![("CHARSET".into(), "US-ASCII".into())],
            id: None,
            description: None,
            encoding: "7BIT".into(),
            size: 3028,
        },
        kind: SinglePartKind::Text {
            subtype: "PLAIN".into(),
            lines: 92,
        },
        extension: Some(SinglePartExtension::default()),
    }
}

#[test]
fn body_and_bodystructure() {
    assert_eq!(
        data(Data::Fetch {
            seq: SeqNum(nz(1)),
            items: vec![FetchData::Body(Box::new(text_part()))]
        }),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n"
    );
    assert_eq!(
        data(Data::Fetch {
            seq: SeqNum(nz(1)),
            items: vec![FetchData::BodyStructure(Box::new(text_part()))]
        }),
        "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92 NIL NIL NIL NIL))\r\n"
    );
    let attachment = BodyStructure::Single {
        fields: BodyFields {
            params: vec![("NAME".into(), "a.pdf".into())],
            id: Some("<id@x>".into()),
            description: Some("desc".into()),
            encoding: "BASE64".into(),
            size: 4554,
        },
        kind: SinglePartKind::Basic {
            media_type: "APPLICATION".into(),
            subtype: "PDF".into(),
        },
        extension: Some(SinglePartExtension {
            md5: Some("abc".into()),
            disposition: Some(Disposition {
                kind: "attachment".into(),
                params: vec![("filename".into(), "a.pdf".into())],
            }),
            language: vec!["en".into(), "de".into()],
            location: Some("http://x/".into()),
            extensions: vec![
                BodyExtension::Number(7),
                BodyExtension::List(vec![BodyExtension::String(None)]),
            ],
        }),
    };
    let inner_env = Envelope {
        subject: Some(b"inner".to_vec()),
        ..Envelope::default()
    };
    let message = BodyStructure::Single {
        fields: BodyFields {
            encoding: "7BIT".into(),
            size: 100,
            ..BodyFields::default()
        },
        kind: SinglePartKind::Message {
            subtype: "RFC822".into(),
            envelope: Box::new(inner_env),
            body: Box::new(text_part()),
            lines: 5,
        },
        extension: None,
    };
    let multi = BodyStructure::Multi {
        parts: vec![text_part(), attachment, message],
        subtype: "MIXED".into(),
        extension: Some(MultipartExtension {
            params: vec![("BOUNDARY".into(), "xyz".into())],
            disposition: None,
            language: vec!["en".into()],
            location: None,
            extensions: vec![],
        }),
    };
    assert_eq!(
        data(Data::Fetch {
            seq: SeqNum(nz(2)),
            items: vec![FetchData::BodyStructure(Box::new(multi.clone()))]
        }),
        concat!(
            "* 2 FETCH (BODYSTRUCTURE (",
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92 NIL NIL NIL NIL)",
            "(\"APPLICATION\" \"PDF\" (\"NAME\" \"a.pdf\") \"<id@x>\" \"desc\" \"BASE64\" 4554 \"abc\" ",
            "(\"attachment\" (\"filename\" \"a.pdf\")) (\"en\" \"de\") \"http://x/\" 7 (NIL))",
            "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 100 ",
            "(NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) ",
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92 NIL NIL NIL NIL) 5)",
            " \"MIXED\" (\"BOUNDARY\" \"xyz\") NIL \"en\" NIL))\r\n"
        )
    );
    // BODY drops extension data at every level.
    let body = data(Data::Fetch {
        seq: SeqNum(nz(2)),
        items: vec![FetchData::Body(Box::new(multi))],
    });
    assert!(body.ends_with(" 5) \"MIXED\"))\r\n"), "{body}");
    assert!(!body.contains("attachment"));
}

#[test]
fn envelope_with_addresses_and_groups() {
    let env = Envelope {
        date: Some(b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)".to_vec()),
        subject: Some(b"IMAP4rev2 WG mtg summary and minutes".to_vec()),
        from: vec![Address {
            name: Some(b"Terry Gray".to_vec()),
            adl: None,
            mailbox: Some(b"gray".to_vec()),
            host: Some(b"cac.washington.edu".to_vec()),
        }],
        to: vec![
            Address {
                mailbox: Some(b"undisclosed".to_vec()),
                ..Address::default()
            },
            Address::default(),
        ],
        message_id: Some(b"<B27397-0100000@cac.washington.edu>".to_vec()),
        ..Envelope::default()
    };
    assert_eq!(
        data(Data::Fetch {
            seq: SeqNum(nz(12)),
            items: vec![FetchData::Envelope(Box::new(env))]
        }),
        "* 12 FETCH (ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) NIL NIL ((NIL NIL \"undisclosed\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL \"<B27397-0100000@cac.washington.edu>\"))\r\n"
    );
}

#[test]
fn eight_bit_envelope_strings_are_literals_unless_utf8() {
    let env = Envelope {
        subject: Some("Grüße".as_bytes().to_vec()),
        ..Envelope::default()
    };
    let response = Response::Data(Data::Fetch {
        seq: SeqNum(nz(1)),
        items: vec![FetchData::Envelope(Box::new(env))],
    });
    assert!(wire(&response).contains("{7}\r\nGrüße"));
    assert!(wire_utf8(&response).contains("\"Grüße\""));
}
