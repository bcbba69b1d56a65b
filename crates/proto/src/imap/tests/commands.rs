//! One test per command: decoded at every chunk size, and round-tripped through
//! `encode_command`.

use std::num::{NonZeroU32, NonZeroU64};

use bytes::Bytes;

use super::{one_command, one_error};
use crate::imap::*;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn v(n: u32) -> SeqOrUid {
    SeqOrUid::Value(nz(n))
}

fn mb(name: &str) -> Mailbox {
    Mailbox::new(name)
}

fn bad_message(input: &str) -> (Option<String>, String) {
    match one_error(input) {
        DecodeError::Bad { tag, message } => (tag.map(|t| t.as_str().to_owned()), message),
        other => panic!("expected Bad, got {other:?}"),
    }
}

#[test]
fn commands_without_arguments_decode_case_insensitively() {
    assert_eq!(one_command("a CAPABILITY\r\n"), CommandBody::Capability);
    assert_eq!(one_command("a noop\r\n"), CommandBody::Noop);
    assert_eq!(one_command("a Logout\r\n"), CommandBody::Logout);
    assert_eq!(one_command("a STARTTLS\r\n"), CommandBody::StartTls);
    assert_eq!(one_command("a NAMESPACE\r\n"), CommandBody::Namespace);
    assert_eq!(one_command("a IDLE\r\n"), CommandBody::Idle);
    assert_eq!(one_command("a CHECK\r\n"), CommandBody::Check);
    assert_eq!(one_command("a CLOSE\r\n"), CommandBody::Close);
    assert_eq!(one_command("a UNSELECT\r\n"), CommandBody::Unselect);
    assert_eq!(one_command("a EXPUNGE\r\n"), CommandBody::Expunge);
}

#[test]
fn login_takes_atoms_quoted_strings_and_literals() {
    match one_command("a1 LOGIN alice \"pa ss\\\"word\"\r\n") {
        CommandBody::Login { username, password } => {
            assert_eq!(username, "alice");
            assert_eq!(password.expose(), b"pa ss\"word");
        }
        other => panic!("{other:?}"),
    }
    match one_command("a1 LOGIN {5+}\r\nalice {6}\r\nsecret\r\n") {
        CommandBody::Login { username, password } => {
            assert_eq!(username, "alice");
            assert_eq!(password.expose(), b"secret");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn login_password_is_redacted_in_debug_output() {
    let body = one_command("a1 LOGIN alice hunter2\r\n");
    let debug = format!("{body:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("[redacted]"));
}

#[test]
fn authenticate_takes_an_optional_initial_response() {
    assert_eq!(
        one_command("a AUTHENTICATE plain\r\n"),
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: None
        }
    );
    assert_eq!(
        one_command("a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: Some(Secret::new("AGFsaWNlAHNlY3JldA=="))
        }
    );
    assert_eq!(
        one_command("a AUTHENTICATE PLAIN =\r\n"),
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: Some(Secret::new("="))
        }
    );
    assert!(matches!(
        one_error("a AUTHENTICATE PLAIN ab!c\r\n"),
        DecodeError::Bad { .. }
    ));
}

#[test]
fn enable_lists_capabilities() {
    assert_eq!(
        one_command("e ENABLE CONDSTORE UTF8=ACCEPT\r\n"),
        CommandBody::Enable {
            capabilities: vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()]
        }
    );
    assert!(matches!(one_error("e ENABLE\r\n"), DecodeError::Bad { .. }));
}

#[test]
fn select_normalises_inbox_and_decodes_modified_utf7() {
    assert_eq!(
        one_command("s SELECT inbox\r\n"),
        CommandBody::Select {
            mailbox: mb("INBOX"),
            params: SelectParams::default()
        }
    );
    assert_eq!(
        one_command("s EXAMINE \"Entw&APw-rfe\"\r\n"),
        CommandBody::Examine {
            mailbox: mb("Entwürfe"),
            params: SelectParams::default()
        }
    );
    let (tag, _) = bad_message("s SELECT Entw&APw\r\n");
    assert_eq!(tag.as_deref(), Some("s"));
}

#[test]
fn select_takes_condstore_and_qresync_parameters() {
    assert_eq!(
        one_command("s SELECT INBOX (CONDSTORE)\r\n"),
        CommandBody::Select {
            mailbox: mb("INBOX"),
            params: SelectParams {
                condstore: true,
                qresync: None
            }
        }
    );
    assert_eq!(
        one_command(
            "s SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:5 1:5)))\r\n"
        ),
        CommandBody::Select {
            mailbox: mb("INBOX"),
            params: SelectParams {
                condstore: false,
                qresync: Some(QResyncParams {
                    uid_validity: UidValidity(nz(67890007)),
                    mod_seq: ModSeq(20050715194045000),
                    known_uids: Some(SequenceSet::Items(vec![
                        SequenceItem::Value(v(41)),
                        SequenceItem::Range(v(43), v(211)),
                        SequenceItem::Range(v(214), v(541)),
                    ])),
                    seq_match: Some((
                        SequenceSet::Items(vec![SequenceItem::Range(v(1), v(5))]),
                        SequenceSet::Items(vec![SequenceItem::Range(v(1), v(5))]),
                    )),
                })
            }
        }
    );
    match one_command("s SELECT INBOX (QRESYNC (1 2))\r\n") {
        CommandBody::Select { params, .. } => {
            let q = params.qresync.unwrap();
            assert_eq!((q.known_uids, q.seq_match), (None, None));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        one_error("s SELECT INBOX (QRESYNC (1 0))\r\n"),
        DecodeError::Bad { .. }
    ));
}

#[test]
fn create_takes_special_use() {
    assert_eq!(
        one_command("c CREATE Drafts (USE (\\Drafts))\r\n"),
        CommandBody::Create {
            mailbox: mb("Drafts"),
            special_use: vec![MailboxAttribute::Drafts]
        }
    );
    assert_eq!(
        one_command("c CREATE \"My Mail\"\r\n"),
        CommandBody::Create {
            mailbox: mb("My Mail"),
            special_use: vec![]
        }
    );
}

#[test]
fn mailbox_commands_decode() {
    assert_eq!(
        one_command("d DELETE foo\r\n"),
        CommandBody::Delete { mailbox: mb("foo") }
    );
    assert_eq!(
        one_command("r RENAME foo \"b ar\"\r\n"),
        CommandBody::Rename {
            from: mb("foo"),
            to: mb("b ar")
        }
    );
    assert_eq!(
        one_command("s SUBSCRIBE foo\r\n"),
        CommandBody::Subscribe { mailbox: mb("foo") }
    );
    assert_eq!(
        one_command("u UNSUBSCRIBE {3+}\r\nfoo\r\n"),
        CommandBody::Unsubscribe { mailbox: mb("foo") }
    );
}

#[test]
fn list_basic_and_extended() {
    assert_eq!(
        one_command("l LIST \"\" *\r\n"),
        CommandBody::List(ListCommand {
            selection: vec![],
            reference: String::new(),
            patterns: vec!["*".into()],
            return_options: vec![]
        })
    );
    assert_eq!(
        one_command(
            "l LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX \"Other/%\") RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n"
        ),
        CommandBody::List(ListCommand {
            selection: vec![
                ListSelectOption::Subscribed,
                ListSelectOption::RecursiveMatch
            ],
            reference: String::new(),
            patterns: vec!["INBOX".into(), "Other/%".into()],
            return_options: vec![
                ListReturnOption::Children,
                ListReturnOption::SpecialUse,
                ListReturnOption::Status(vec![StatusItem::Messages, StatusItem::Unseen])
            ]
        })
    );
    assert_eq!(
        one_command("l LIST () \"\" % RETURN ()\r\n"),
        CommandBody::List(ListCommand {
            selection: vec![],
            reference: String::new(),
            patterns: vec!["%".into()],
            return_options: vec![]
        })
    );
    assert!(matches!(
        one_error("l LIST (RECURSIVEMATCH) \"\" *\r\n"),
        DecodeError::Bad { .. }
    ));
    assert!(matches!(
        one_error("l LIST (BOGUS) \"\" *\r\n"),
        DecodeError::Bad { .. }
    ));
}

#[test]
fn lsub_decodes() {
    assert_eq!(
        one_command("l LSUB \"#news.\" \"comp.mail.*\"\r\n"),
        CommandBody::Lsub {
            reference: "#news.".into(),
            pattern: "comp.mail.*".into()
        }
    );
}

#[test]
fn status_lists_items() {
    assert_eq!(
        one_command(
            "s STATUS blurdybloop (UIDNEXT MESSAGES SIZE HIGHESTMODSEQ DELETED RECENT UIDVALIDITY UNSEEN)\r\n"
        ),
        CommandBody::Status {
            mailbox: mb("blurdybloop"),
            items: vec![
                StatusItem::UidNext,
                StatusItem::Messages,
                StatusItem::Size,
                StatusItem::HighestModSeq,
                StatusItem::Deleted,
                StatusItem::Recent,
                StatusItem::UidValidity,
                StatusItem::Unseen
            ]
        }
    );
    assert!(matches!(
        one_error("s STATUS x (BOGUS)\r\n"),
        DecodeError::Bad { .. }
    ));
}

#[test]
fn append_with_flags_date_and_literal() {
    let input = "A003 APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {22}\r\nDate: x\r\n\r\nHello Joe\r\n\r\n";
    match one_command(input) {
        CommandBody::Append { mailbox, messages } => {
            assert_eq!(mailbox, mb("saved-messages"));
            assert_eq!(messages.len(), 1);
            let m = &messages[0];
            assert_eq!(m.flags, vec![Flag::Seen]);
            assert_eq!(m.date.unwrap().zone_minutes, -420);
            assert_eq!(m.data.kind, AppendDataKind::Literal);
            assert_eq!(
                m.data.content,
                AppendContent::Octets(Bytes::from_static(b"Date: x\r\n\r\nHello Joe\r\n"))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn multiappend_and_literal8_and_utf8_forms() {
    let input = "A APPEND x {1+}\r\na (\\Draft) ~{3+}\r\nb\0c UTF8 (~{2+}\r\n\u{e9})\r\n";
    match one_command(input) {
        CommandBody::Append { messages, .. } => {
            let kinds: Vec<_> = messages.iter().map(|m| m.data.kind).collect();
            assert_eq!(
                kinds,
                vec![
                    AppendDataKind::Literal,
                    AppendDataKind::Literal8,
                    AppendDataKind::Utf8
                ]
            );
            assert_eq!(
                messages[1].data.content,
                AppendContent::Octets(Bytes::from_static(b"b\0c"))
            );
            assert_eq!(messages[1].flags, vec![Flag::Draft]);
            assert_eq!(
                messages[2].data.content,
                AppendContent::Octets(Bytes::from("\u{e9}"))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        one_error("A APPEND x UTF8 ({1+}\r\na)\r\n"),
        DecodeError::Bad { .. }
    ));
    assert!(matches!(
        one_error("A APPEND x\r\n"),
        DecodeError::Bad { .. }
    ));
}

#[test]
fn uid_expunge_copy_move() {
    assert_eq!(
        one_command("u UID EXPUNGE 3000:3002\r\n"),
        CommandBody::UidExpunge {
            uids: SequenceSet::Items(vec![SequenceItem::Range(v(3000), v(3002))])
        }
    );
    assert_eq!(
        one_command("c COPY 2:4 MEETING\r\n"),
        CommandBody::Copy {
            uid: false,
            set: SequenceSet::Items(vec![SequenceItem::Range(v(2), v(4))]),
            mailbox: mb("MEETING")
        }
    );
    assert_eq!(
        one_command("m UID MOVE 42:* Trash\r\n"),
        CommandBody::Move {
            uid: true,
            set: SequenceSet::Items(vec![SequenceItem::Range(v(42), SeqOrUid::Asterisk)]),
            mailbox: mb("Trash")
        }
    );
    assert_eq!(
        one_command("m MOVE $ Trash\r\n"),
        CommandBody::Move {
            uid: false,
            set: SequenceSet::Saved,
            mailbox: mb("Trash")
        }
    );
    assert!(matches!(
        one_error("m MOVE 0 Trash\r\n"),
        DecodeError::Bad { .. }
    ));
    assert!(matches!(
        one_error("m UID BOGUS 1\r\n"),
        DecodeError::Bad { .. }
    ));
}

#[test]
fn id_takes_nil_or_pairs() {
    assert_eq!(
        one_command("i ID NIL\r\n"),
        CommandBody::Id { params: None }
    );
    assert_eq!(
        one_command("i ID (\"name\" \"sodr\" \"version\" NIL)\r\n"),
        CommandBody::Id {
            params: Some(vec![
                ("name".into(), Some("sodr".into())),
                ("version".into(), None)
            ])
        }
    );
    assert_eq!(
        one_command("i ID ()\r\n"),
        CommandBody::Id {
            params: Some(vec![])
        }
    );
}

#[test]
fn unknown_commands_are_bad_with_the_tag() {
    assert_eq!(
        bad_message("x17 FROBNICATE now\r\n"),
        (Some("x17".into()), "unknown command".into())
    );
    assert_eq!(bad_message("+ NOOP\r\n").0, None);
    assert_eq!(bad_message("\r\n").0, None);
    assert_eq!(bad_message("a NOOP extra\r\n").0.as_deref(), Some("a"));
}

#[test]
fn fetch_macros_and_items() {
    let fetch = |input: &str| match one_command(input) {
        CommandBody::Fetch(f) => *f,
        other => panic!("{other:?}"),
    };
    let f = fetch("f FETCH 1:* ALL\r\n");
    assert_eq!(f.items, FetchItems::Macro(FetchMacro::All));
    assert_eq!(
        f.set,
        SequenceSet::Items(vec![SequenceItem::Range(v(1), SeqOrUid::Asterisk)])
    );
    let f = fetch(
        "f UID FETCH 1,3:5 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE UID MODSEQ RFC822 RFC822.HEADER RFC822.TEXT) (CHANGEDSINCE 12345 VANISHED)\r\n",
    );
    assert!(f.uid);
    assert_eq!(
        f.items,
        FetchItems::Items(vec![
            FetchItem::Flags,
            FetchItem::InternalDate,
            FetchItem::Rfc822Size,
            FetchItem::Envelope,
            FetchItem::Body,
            FetchItem::BodyStructure,
            FetchItem::Uid,
            FetchItem::ModSeq,
            FetchItem::Rfc822,
            FetchItem::Rfc822Header,
            FetchItem::Rfc822Text,
        ])
    );
    assert_eq!(
        f.modifiers,
        FetchModifiers {
            changed_since: Some(ModSeq(12345)),
            vanished: true
        }
    );
    let f = fetch("f FETCH 2 body[]\r\n");
    assert_eq!(
        f.items,
        FetchItems::Items(vec![FetchItem::BodySection {
            peek: false,
            section: Section::default(),
            partial: None
        }])
    );
}

#[test]
fn fetch_sections_and_partials() {
    let items = |input: &str| match one_command(input) {
        CommandBody::Fetch(f) => match f.items {
            FetchItems::Items(items) => items,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(
        items(
            "f FETCH 1 (BODY.PEEK[HEADER.FIELDS (From \"To\" Subject)]<0.1024> BODY[1.2.MIME] BODY[3.TEXT] BODY[HEADER.FIELDS.NOT (Received)] BODY[4.1])\r\n"
        ),
        vec![
            FetchItem::BodySection {
                peek: true,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFields(vec![
                        "From".into(),
                        "To".into(),
                        "Subject".into()
                    ]))
                },
                partial: Some(Partial {
                    offset: 0,
                    length: NonZeroU64::new(1024).unwrap()
                })
            },
            FetchItem::BodySection {
                peek: false,
                section: Section {
                    part: vec![nz(1), nz(2)],
                    text: Some(SectionText::Mime)
                },
                partial: None
            },
            FetchItem::BodySection {
                peek: false,
                section: Section {
                    part: vec![nz(3)],
                    text: Some(SectionText::Text)
                },
                partial: None
            },
            FetchItem::BodySection {
                peek: false,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFieldsNot(vec!["Received".into()]))
                },
                partial: None
            },
            FetchItem::BodySection {
                peek: false,
                section: Section {
                    part: vec![nz(4), nz(1)],
                    text: None
                },
                partial: None
            },
        ]
    );
    assert_eq!(
        items("f FETCH 1 (BINARY.PEEK[1]<10.20> BINARY[] BINARY.SIZE[2.3])\r\n"),
        vec![
            FetchItem::Binary {
                peek: true,
                part: vec![nz(1)],
                partial: Some(Partial {
                    offset: 10,
                    length: NonZeroU64::new(20).unwrap()
                })
            },
            FetchItem::Binary {
                peek: false,
                part: vec![],
                partial: None
            },
            FetchItem::BinarySize {
                part: vec![nz(2), nz(3)]
            },
        ]
    );
    // MIME needs a part number; BINARY takes no section text; partial length is non-zero.
    for bad in [
        "f FETCH 1 BODY[MIME]\r\n",
        "f FETCH 1 BINARY[1.TEXT]\r\n",
        "f FETCH 1 BODY[]<0.0>\r\n",
        "f FETCH 1 (FLAGS\r\n",
        "f FETCH 1 ()\r\n",
        "f FETCH 1 BOGUS\r\n",
    ] {
        assert!(matches!(one_error(bad), DecodeError::Bad { .. }), "{bad}");
    }
}

#[test]
fn store_variants() {
    let store = |input: &str| match one_command(input) {
        CommandBody::Store(s) => *s,
        other => panic!("{other:?}"),
    };
    let s = store("s STORE 2:4 +FLAGS (\\Deleted)\r\n");
    assert_eq!(
        (s.action, s.silent, s.flags, s.unchanged_since),
        (StoreAction::Add, false, vec![Flag::Deleted], None)
    );
    let s = store("s UID STORE 1 (UNCHANGEDSINCE 0) -FLAGS.SILENT \\Seen $Forwarded foo\r\n");
    assert!(s.uid);
    assert_eq!(
        (s.action, s.silent, s.unchanged_since),
        (StoreAction::Remove, true, Some(ModSeq(0)))
    );
    assert_eq!(
        s.flags,
        vec![
            Flag::Seen,
            Flag::Keyword("$Forwarded".into()),
            Flag::Keyword("foo".into())
        ]
    );
    let s = store("s STORE 1 flags ()\r\n");
    assert_eq!((s.action, s.flags), (StoreAction::Replace, vec![]));
    assert!(matches!(
        one_error("s STORE 1 FLAGZ (\\Seen)\r\n"),
        DecodeError::Bad { .. }
    ));
}

#[test]
fn search_keys_of_rfc_9051() {
    let search = |input: &str| match one_command(input) {
        CommandBody::Search(s) => *s,
        other => panic!("{other:?}"),
    };
    let s = search("s SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n");
    assert_eq!(
        s.criteria,
        vec![
            SearchKey::Flagged,
            SearchKey::Since(Date {
                year: 1994,
                month: 2,
                day: 1
            }),
            SearchKey::Not(Box::new(SearchKey::From(b"Smith".to_vec()))),
        ]
    );
    let s = search(
        "s UID SEARCH RETURN (MIN MAX COUNT ALL SAVE) CHARSET UTF-8 OR (SEEN UNSEEN) 1:5,7 UID $ HEADER X-Spam yes LARGER 100 SMALLER 20000 KEYWORD $Junk UNKEYWORD x BODY {4+}\r\nbody TEXT t TO to CC cc BCC bcc SUBJECT s ON \"3-Mar-2020\" BEFORE 01-Jan-2000 SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 ALL ANSWERED DELETED DRAFT NEW OLD RECENT UNANSWERED UNDELETED UNDRAFT UNFLAGGED\r\n",
    );
    assert!(s.uid);
    assert_eq!(s.charset.as_deref(), Some("UTF-8"));
    assert_eq!(
        s.return_options,
        Some(vec![
            SearchReturnOption::Min,
            SearchReturnOption::Max,
            SearchReturnOption::Count,
            SearchReturnOption::All,
            SearchReturnOption::Save
        ])
    );
    assert_eq!(
        s.criteria[0],
        SearchKey::Or(
            Box::new(SearchKey::And(vec![SearchKey::Seen, SearchKey::Unseen])),
            Box::new(SearchKey::SequenceSet(SequenceSet::Items(vec![
                SequenceItem::Range(v(1), v(5)),
                SequenceItem::Value(v(7))
            ])))
        )
    );
    assert_eq!(s.criteria[1], SearchKey::Uid(SequenceSet::Saved));
    assert_eq!(
        s.criteria[2],
        SearchKey::Header("X-Spam".into(), b"yes".to_vec())
    );
    assert_eq!(s.criteria[7], SearchKey::Body(b"body".to_vec()));
    assert_eq!(s.criteria.len(), 29);
    let s = search("s SEARCH RETURN () ALL\r\n");
    assert_eq!(s.return_options, Some(vec![]));
}

#[test]
fn search_modseq_key() {
    let search = |input: &str| match one_command(input) {
        CommandBody::Search(s) => *s,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        search("s SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338\r\n").criteria,
        vec![SearchKey::ModSeq {
            entry: Some(("/flags/\\draft".into(), EntryType::All)),
            mod_seq: ModSeq(620162338)
        }]
    );
    assert_eq!(
        search("s SEARCH MODSEQ 5\r\n").criteria,
        vec![SearchKey::ModSeq {
            entry: None,
            mod_seq: ModSeq(5)
        }]
    );
}

#[test]
fn search_nesting_is_bounded() {
    let deep = format!("s SEARCH {}ALL{}\r\n", "(".repeat(40), ")".repeat(40));
    let (tag, message) = bad_message(&deep);
    assert_eq!(tag.as_deref(), Some("s"));
    assert_eq!(message, "too deeply nested");
    let nots = format!("s SEARCH {}ALL\r\n", "NOT ".repeat(33));
    assert_eq!(bad_message(&nots).1, "too deeply nested");
    let ok = format!("s SEARCH {}ALL{}\r\n", "(".repeat(30), ")".repeat(30));
    one_command(&ok);
    assert!(matches!(
        one_error("s SEARCH BOGUS\r\n"),
        DecodeError::Bad { .. }
    ));
    assert!(matches!(one_error("s SEARCH\r\n"), DecodeError::Bad { .. }));
}

#[test]
fn utf8_accept_mode_takes_raw_utf8_names() {
    let config = DecoderConfig {
        utf8_accept: true,
        ..DecoderConfig::default()
    };
    let (outputs, _) = super::decode_chunked_with(&config, "a SELECT \"Entwürfe\"\r\n".as_bytes());
    match outputs.as_slice() {
        [Ok(Decoded::Command(c))] => assert_eq!(
            c.body,
            CommandBody::Select {
                mailbox: mb("Entwürfe"),
                params: SelectParams::default()
            }
        ),
        other => panic!("{other:?}"),
    }
    // Without UTF8=ACCEPT, 8-bit names are not modified UTF-7.
    assert!(matches!(
        one_error("a SELECT \"Entwürfe\"\r\n"),
        DecodeError::Bad { .. }
    ));
    // And with it, `&` is just a character.
    let (outputs, _) = super::decode_chunked_with(&config, b"a SELECT A&B\r\n");
    assert!(
        matches!(&outputs[..], [Ok(Decoded::Command(c))] if c.body == CommandBody::Select { mailbox: mb("A&B"), params: SelectParams::default() })
    );
}

#[test]
fn pipelined_commands_decode_in_order() {
    let outputs = super::decode_chunked(b"a NOOP\r\nb BOGUS\r\nc CAPABILITY\r\n");
    assert_eq!(outputs.len(), 3);
    assert!(matches!(&outputs[0], Ok(Decoded::Command(c)) if c.tag.as_str() == "a"));
    assert!(matches!(&outputs[1], Err(DecodeError::Bad { tag: Some(t), .. }) if t.as_str() == "b"));
    assert!(matches!(&outputs[2], Ok(Decoded::Command(c)) if c.body == CommandBody::Capability));
}

#[test]
fn quoted_strings_with_cr_lf_nul_or_control_characters_say_what_is_wrong() {
    let message = |input: &str| bad_message(input).1;
    // Only CRLF ends a command, so these are inside the string, not an unterminated one.
    for input in ["a LOGIN \"a\rb\" x\r\n", "a LOGIN \"a\nb\" x\r\n"] {
        assert_eq!(
            message(input),
            "CR or LF in a quoted string (send it as a literal)"
        );
    }
    assert_eq!(message("a LOGIN \"a\0b\" x\r\n"), "NUL in a quoted string");
    assert_eq!(message("a LOGIN \"ab x\r\n"), "unterminated quoted string");
    // RFC 9051 TEXT-CHAR: other control characters may be quoted...
    assert!(matches!(
        one_command("a LOGIN \"a\x01b\" x\r\n"),
        CommandBody::Login { .. }
    ));
    // ...but are no mailbox name, quoted or literal (and not "non-ASCII").
    for input in [
        "a SELECT \"a\x01b\"\r\n",
        "a CREATE \"a\x7fb\"\r\n",
        "a COPY 1 {3+}\r\na\tb\r\n",
    ] {
        assert_eq!(message(input), "mailbox name has a control character");
    }
}

#[test]
fn a_long_tag_is_accepted_with_and_without_a_literal() {
    // Found by the imap_roundtrip fuzz target: a command with a literal looked for its tag in
    // the first 128 octets only, so a tag the quoted form accepted was refused once the
    // encoder chose a literal.
    let tag = "a".repeat(200);
    for input in [
        format!("{tag} LOGIN alice \"secret\"\r\n"),
        format!("{tag} LOGIN alice {{6+}}\r\nsecret\r\n"),
        format!("{tag} LOGIN alice {{4+}}\r\np\u{e4}s\r\n"),
    ] {
        let outputs = super::decode_chunked(input.as_bytes());
        match outputs.as_slice() {
            [Ok(Decoded::Command(command))] => {
                assert_eq!(command.tag.as_str(), tag);
                super::assert_round_trips(command);
            }
            other => panic!("{input:?} gave {other:?}"),
        }
    }
}
