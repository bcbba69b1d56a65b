//! Property tests: `decode(encode_command(c)) == c` for generated commands; the decoder
//! never panics and its output does not depend on how the input is split.

use std::num::{NonZeroU32, NonZeroU64};

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::{assert_round_trips, feed};
use crate::imap::*;

fn nz32() -> impl Strategy<Value = NonZeroU32> {
    prop_oneof![1u32..20, 1u32..=u32::MAX]
        .prop_map(|n| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

fn tag() -> impl Strategy<Value = Tag> {
    "[A-Za-z0-9.\\]]{1,8}".prop_map(|s| Tag::new(s).unwrap_or_else(|| Tag::new("t").unwrap()))
}

/// Any text without NUL (which no IMAP string can carry).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9]{0,8}",
        "[ -~]{0,12}",
        "[^\u{0}]{0,10}",
        Just("INBOX".to_owned()),
        Just("NIL".to_owned()),
    ]
}

fn octets() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![text().prop_map(String::into_bytes), vec(1u8..=255, 0..12),]
}

fn atom() -> impl Strategy<Value = String> {
    "[A-Za-z$][A-Za-z0-9$_.=+-]{0,8}"
}

fn mailbox() -> impl Strategy<Value = Mailbox> {
    text().prop_map(Mailbox::new)
}

fn seq_or_uid() -> impl Strategy<Value = SeqOrUid> {
    prop_oneof![4 => nz32().prop_map(SeqOrUid::Value), 1 => Just(SeqOrUid::Asterisk)]
}

fn sequence_set() -> impl Strategy<Value = SequenceSet> {
    let item = prop_oneof![
        seq_or_uid().prop_map(SequenceItem::Value),
        (seq_or_uid(), seq_or_uid()).prop_map(|(a, b)| SequenceItem::Range(a, b)),
    ];
    prop_oneof![
        9 => vec(item, 1..5).prop_map(SequenceSet::Items),
        1 => Just(SequenceSet::Saved),
    ]
}

fn flag() -> impl Strategy<Value = Flag> {
    prop_oneof![
        Just(Flag::Answered),
        Just(Flag::Flagged),
        Just(Flag::Deleted),
        Just(Flag::Seen),
        Just(Flag::Draft),
        atom().prop_map(Flag::Keyword),
        "X[a-z]{1,6}".prop_map(Flag::Extension),
    ]
}

fn date() -> impl Strategy<Value = Date> {
    (0u16..=9999, 1u8..=12, 1u8..=31).prop_map(|(year, month, day)| Date { year, month, day })
}

fn date_time() -> impl Strategy<Value = DateTime> {
    (date(), 0u8..24, 0u8..60, 0u8..=60, -5999i16..=5999).prop_map(
        |(date, hour, minute, second, zone_minutes)| DateTime {
            date,
            hour,
            minute,
            second,
            zone_minutes,
        },
    )
}

fn mod_seq(min: u64) -> impl Strategy<Value = ModSeq> {
    prop_oneof![min..100, min..=ModSeq::MAX].prop_map(ModSeq)
}

fn status_items() -> impl Strategy<Value = Vec<StatusItem>> {
    vec(
        prop::sample::select(StatusItem::ALL.map(|(i, _)| i).to_vec()),
        1..4,
    )
}

fn attribute() -> impl Strategy<Value = MailboxAttribute> {
    prop_oneof![
        prop::sample::select(MailboxAttribute::NAMED.map(|(a, _)| a).to_vec()),
        "X[a-z]{1,6}".prop_map(MailboxAttribute::Other),
    ]
}

fn search_key() -> impl Strategy<Value = SearchKey> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            SearchKey::All,
            SearchKey::Answered,
            SearchKey::Deleted,
            SearchKey::Draft,
            SearchKey::Flagged,
            SearchKey::New,
            SearchKey::Old,
            SearchKey::Recent,
            SearchKey::Seen,
            SearchKey::Unanswered,
            SearchKey::Undeleted,
            SearchKey::Undraft,
            SearchKey::Unflagged,
            SearchKey::Unseen,
        ]),
        octets().prop_map(SearchKey::Bcc),
        octets().prop_map(SearchKey::Body),
        octets().prop_map(SearchKey::Cc),
        octets().prop_map(SearchKey::From),
        octets().prop_map(SearchKey::Subject),
        octets().prop_map(SearchKey::Text),
        octets().prop_map(SearchKey::To),
        date().prop_map(SearchKey::Before),
        date().prop_map(SearchKey::On),
        date().prop_map(SearchKey::Since),
        date().prop_map(SearchKey::SentBefore),
        date().prop_map(SearchKey::SentOn),
        date().prop_map(SearchKey::SentSince),
        atom().prop_map(SearchKey::Keyword),
        atom().prop_map(SearchKey::Unkeyword),
        (text(), octets()).prop_map(|(f, v)| SearchKey::Header(f, v)),
        (0u64..=ModSeq::MAX).prop_map(SearchKey::Larger),
        any::<u32>().prop_map(|n| SearchKey::Smaller(u64::from(n))),
        sequence_set().prop_map(SearchKey::Uid),
        sequence_set().prop_map(SearchKey::SequenceSet),
        (
            option::of((
                "/flags/[a-zA-Z$\\\\]{1,8}",
                prop::sample::select(vec![EntryType::Private, EntryType::Shared, EntryType::All])
            )),
            mod_seq(0)
        )
            .prop_map(|(entry, mod_seq)| SearchKey::ModSeq { entry, mod_seq }),
    ];
    leaf.prop_recursive(4, 16, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|k| SearchKey::Not(Box::new(k))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| SearchKey::Or(Box::new(a), Box::new(b))),
            vec(inner, 1..3).prop_map(SearchKey::And),
        ]
    })
}

fn partial() -> impl Strategy<Value = Option<Partial>> {
    option::of(
        (0u64..=ModSeq::MAX, 1u64..=ModSeq::MAX).prop_map(|(offset, length)| Partial {
            offset,
            length: NonZeroU64::new(length).unwrap_or(NonZeroU64::MIN),
        }),
    )
}

fn section() -> impl Strategy<Value = Section> {
    (
        vec(nz32(), 0..3),
        option::of(prop_oneof![
            Just(SectionText::Header),
            Just(SectionText::Text),
            Just(SectionText::Mime),
            vec(text(), 1..3).prop_map(SectionText::HeaderFields),
            vec(text(), 1..3).prop_map(SectionText::HeaderFieldsNot),
        ]),
    )
        .prop_map(|(part, text)| {
            let text = match text {
                Some(SectionText::Mime) if part.is_empty() => Some(SectionText::Text),
                t => t,
            };
            Section { part, text }
        })
}

fn fetch_item() -> impl Strategy<Value = FetchItem> {
    prop_oneof![
        prop::sample::select(vec![
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
        ]),
        (any::<bool>(), section(), partial()).prop_map(|(peek, section, partial)| {
            FetchItem::BodySection {
                peek,
                section,
                partial,
            }
        }),
        (any::<bool>(), vec(nz32(), 0..3), partial()).prop_map(|(peek, part, partial)| {
            FetchItem::Binary {
                peek,
                part,
                partial,
            }
        }),
        vec(nz32(), 0..3).prop_map(|part| FetchItem::BinarySize { part }),
    ]
}

fn append_message() -> impl Strategy<Value = AppendMessage> {
    (
        vec(flag(), 0..3),
        option::of(date_time()),
        prop::sample::select(vec![
            AppendDataKind::Literal,
            AppendDataKind::Literal8,
            AppendDataKind::Utf8,
        ]),
        vec(any::<u8>(), 0..40),
    )
        .prop_map(|(flags, date, kind, content)| AppendMessage {
            flags,
            date,
            data: AppendData {
                kind,
                content: AppendContent::Octets(Bytes::from(content)),
            },
        })
}

fn list_command() -> impl Strategy<Value = ListCommand> {
    let select = prop::sample::subsequence(
        vec![
            ListSelectOption::Subscribed,
            ListSelectOption::Remote,
            ListSelectOption::RecursiveMatch,
            ListSelectOption::SpecialUse,
        ],
        0..4,
    )
    .prop_map(|mut s| {
        if s.contains(&ListSelectOption::RecursiveMatch)
            && !s.iter().any(|o| {
                matches!(
                    o,
                    ListSelectOption::Subscribed | ListSelectOption::SpecialUse
                )
            })
        {
            s.push(ListSelectOption::Subscribed);
        }
        s
    });
    let ret = vec(
        prop_oneof![
            Just(ListReturnOption::Subscribed),
            Just(ListReturnOption::Children),
            Just(ListReturnOption::SpecialUse),
            status_items().prop_map(ListReturnOption::Status),
        ],
        0..3,
    );
    (select, text(), vec(text(), 1..3), ret).prop_map(
        |(selection, reference, patterns, return_options)| ListCommand {
            selection,
            reference,
            patterns,
            return_options,
        },
    )
}

fn command_body() -> impl Strategy<Value = CommandBody> {
    let simple = prop::sample::select(vec![
        CommandBody::Capability,
        CommandBody::Noop,
        CommandBody::Logout,
        CommandBody::StartTls,
        CommandBody::Namespace,
        CommandBody::Idle,
        CommandBody::Check,
        CommandBody::Close,
        CommandBody::Unselect,
        CommandBody::Expunge,
    ]);
    let select_params = || {
        (
            any::<bool>(),
            option::of(
                (
                    nz32(),
                    mod_seq(1),
                    option::of(sequence_set()),
                    option::of((sequence_set(), sequence_set())),
                )
                    .prop_map(|(v, m, known_uids, seq_match)| QResyncParams {
                        uid_validity: UidValidity(v),
                        mod_seq: m,
                        known_uids,
                        seq_match,
                    }),
            ),
        )
            .prop_map(|(condstore, qresync)| SelectParams { condstore, qresync })
    };
    prop_oneof![
        simple,
        (
            "[A-Z0-9-]{1,12}",
            option::of(prop_oneof![
                "[A-Za-z0-9+/]{1,16}={0,2}",
                Just("=".to_owned())
            ])
        )
            .prop_map(|(mechanism, ir)| CommandBody::Authenticate {
                mechanism,
                initial_response: ir.map(Secret::new),
            }),
        (text(), octets()).prop_map(|(username, p)| CommandBody::Login {
            username,
            password: Secret::new(p)
        }),
        vec(atom(), 1..4).prop_map(|capabilities| CommandBody::Enable { capabilities }),
        (mailbox(), select_params())
            .prop_map(|(mailbox, params)| CommandBody::Select { mailbox, params }),
        (mailbox(), select_params())
            .prop_map(|(mailbox, params)| CommandBody::Examine { mailbox, params }),
        (mailbox(), vec(attribute(), 0..3)).prop_map(|(mailbox, special_use)| {
            CommandBody::Create {
                mailbox,
                special_use,
            }
        }),
        mailbox().prop_map(|mailbox| CommandBody::Delete { mailbox }),
        (mailbox(), mailbox()).prop_map(|(from, to)| CommandBody::Rename { from, to }),
        mailbox().prop_map(|mailbox| CommandBody::Subscribe { mailbox }),
        mailbox().prop_map(|mailbox| CommandBody::Unsubscribe { mailbox }),
        list_command().prop_map(CommandBody::List),
        (text(), text()).prop_map(|(reference, pattern)| CommandBody::Lsub { reference, pattern }),
        (mailbox(), status_items())
            .prop_map(|(mailbox, items)| CommandBody::Status { mailbox, items }),
        (mailbox(), vec(append_message(), 1..3))
            .prop_map(|(mailbox, messages)| CommandBody::Append { mailbox, messages }),
        sequence_set().prop_map(|uids| CommandBody::UidExpunge { uids }),
        (
            any::<bool>(),
            option::of(vec(
                prop::sample::select(vec![
                    SearchReturnOption::Min,
                    SearchReturnOption::Max,
                    SearchReturnOption::All,
                    SearchReturnOption::Count,
                    SearchReturnOption::Save,
                ]),
                0..4
            )),
            option::of("[A-Za-z0-9 _-]{1,10}"),
            vec(search_key(), 1..4),
        )
            .prop_map(|(uid, return_options, charset, criteria)| {
                CommandBody::Search(Box::new(SearchCommand {
                    uid,
                    return_options,
                    charset,
                    criteria,
                }))
            }),
        (
            any::<bool>(),
            sequence_set(),
            prop_oneof![
                prop::sample::select(vec![FetchMacro::All, FetchMacro::Fast, FetchMacro::Full])
                    .prop_map(FetchItems::Macro),
                vec(fetch_item(), 1..5).prop_map(FetchItems::Items),
            ],
            option::of(mod_seq(1)),
            any::<bool>(),
        )
            .prop_map(|(uid, set, items, changed_since, vanished)| {
                CommandBody::Fetch(Box::new(FetchCommand {
                    uid,
                    set,
                    items,
                    modifiers: FetchModifiers {
                        changed_since,
                        vanished,
                    },
                }))
            }),
        (
            any::<bool>(),
            sequence_set(),
            option::of(mod_seq(0)),
            prop::sample::select(vec![
                StoreAction::Replace,
                StoreAction::Add,
                StoreAction::Remove
            ]),
            any::<bool>(),
            vec(flag(), 0..4),
        )
            .prop_map(|(uid, set, unchanged_since, action, silent, flags)| {
                CommandBody::Store(Box::new(StoreCommand {
                    uid,
                    set,
                    unchanged_since,
                    action,
                    silent,
                    flags,
                }))
            }),
        (any::<bool>(), sequence_set(), mailbox())
            .prop_map(|(uid, set, mailbox)| CommandBody::Copy { uid, set, mailbox }),
        (any::<bool>(), sequence_set(), mailbox())
            .prop_map(|(uid, set, mailbox)| CommandBody::Move { uid, set, mailbox }),
        option::of(vec((text(), option::of(text())), 0..3))
            .prop_map(|params| CommandBody::Id { params }),
    ]
}

/// Input that looks enough like IMAP to reach deep into the decoder.
fn imap_ish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"a ".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b"{3}\r\n".to_vec()),
        Just(b"{4+}\r\n".to_vec()),
        Just(b"~{2}\r\n".to_vec()),
        Just(b"{999999}\r\n".to_vec()),
        Just(b"{70+}\r\n".to_vec()),
        Just(b"LOGIN".to_vec()),
        Just(b"SEARCH".to_vec()),
        Just(b"FETCH 1:* (BODY[HEADER.FIELDS (A)]<0.5>)".to_vec()),
        Just(b"APPEND x".to_vec()),
        Just(b"(".to_vec()),
        Just(b")".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"NOT OR".to_vec()),
        Just(b"&-&AOk-".to_vec()),
        vec(any::<u8>(), 1..8),
    ];
    vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

fn small_config() -> DecoderConfig {
    DecoderConfig {
        max_line: 150,
        max_literal: 64,
        max_command_literals: 100,
        // APPEND messages past 5 octets are handed out (`Decoded::MessageData`).
        max_inline_messages: 5,
        max_depth: 5,
        ..DecoderConfig::default()
    }
}

/// Feeds `input` split at the given cut points.
fn feed_cuts(config: &DecoderConfig, input: &[u8], cuts: &[usize]) -> (super::Outputs, BytesMut) {
    let mut decoder = CommandDecoder::new(config.clone());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(input.len());
    let mut start = 0;
    for cut in cuts {
        buf.extend_from_slice(input.get(start..cut).unwrap_or_default());
        start = start.max(cut);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(d)) => super::push_output(&mut out, d),
                Ok(None) => break,
                Err(e) => out.push(Err(e)),
            }
        }
    }
    (out, buf)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encoded_commands_decode_to_themselves(tag in tag(), body in command_body()) {
        assert_round_trips(&Command { tag, body });
    }

    #[test]
    fn utf8_mode_commands_round_trip(tag in tag(), mailbox in mailbox()) {
        let command = Command { tag, body: CommandBody::Delete { mailbox } };
        let mut wire = BytesMut::new();
        encode_command_with(&command, true, &mut wire);
        let config = DecoderConfig { utf8_accept: true, ..DecoderConfig::default() };
        let (outputs, _) = feed(&config, &wire, 0);
        prop_assert_eq!(outputs, vec![Ok(Decoded::Command(command))]);
    }

    #[test]
    fn decoding_never_panics_and_ignores_chunking(
        input in prop_oneof![imap_ish_bytes(), vec(any::<u8>(), 0..300)],
        cuts in vec(any::<usize>(), 0..12),
    ) {
        for config in [DecoderConfig::default(), small_config()] {
            let whole = feed(&config, &input, 0);
            let cut = feed_cuts(&config, &input, &cuts);
            prop_assert_eq!(&whole, &cut);
            let ones = feed(&config, &input, 1);
            prop_assert_eq!(&whole, &ones);
        }
    }

    #[test]
    fn a_streamed_append_is_the_inline_one_with_its_octets_handed_out(
        tag in tag(),
        mailbox in mailbox(),
        messages in vec(append_message(), 1..4),
        inline in 0u64..60,
        chunk in 1usize..64,
    ) {
        let command = Command { tag, body: CommandBody::Append { mailbox, messages } };
        let mut wire = BytesMut::new();
        encode_command(&command, &mut wire);
        let config = DecoderConfig { max_inline_messages: inline, ..DecoderConfig::default() };
        let (outputs, rest) = feed(&config, &wire, chunk);
        prop_assert!(rest.is_empty());
        // Put the handed-out octets back where the command says they went.
        let mut handed_out = Vec::new();
        let mut decoded = None;
        for output in outputs {
            match output {
                Ok(Decoded::MessageData(data)) => handed_out.push(data),
                Ok(Decoded::MessageLiteral { size: 0, .. }) => handed_out.push(Bytes::new()),
                Ok(Decoded::Command(c)) => decoded = Some(c),
                other => prop_assert!(
                    matches!(other, Ok(Decoded::MessageLiteral { .. })),
                    "{other:?}"
                ),
            }
        }
        let Some(mut decoded) = decoded else {
            return Err(TestCaseError::fail("no command"));
        };
        let CommandBody::Append { messages, .. } = &mut decoded.body else {
            return Err(TestCaseError::fail("not an APPEND"));
        };
        let mut handed_out = handed_out.into_iter();
        let mut kept = 0;
        for m in messages.iter_mut() {
            match &m.data.content {
                AppendContent::Streamed(size) => {
                    let data = handed_out.next().unwrap_or_default();
                    prop_assert_eq!(data.len() as u64, *size);
                    m.data.content = AppendContent::Octets(data);
                }
                AppendContent::Octets(data) => kept += data.len() as u64,
            }
        }
        prop_assert!(handed_out.next().is_none());
        prop_assert!(kept <= inline, "{kept} octets kept, {inline} allowed");
        prop_assert_eq!(decoded, command);
    }

    #[test]
    fn modified_utf7_round_trips(name in "\\PC{0,16}") {
        let wire = encode_modified_utf7(&name);
        prop_assert!(wire.bytes().all(|b| (0x20..0x7f).contains(&b)));
        prop_assert_eq!(decode_modified_utf7(wire.as_bytes()), Ok(name));
    }

    #[test]
    fn modified_utf7_decoding_never_panics(input in vec(any::<u8>(), 0..40)) {
        if let Ok(name) = decode_modified_utf7(&input) {
            // Strict decoding: a name has one wire form.
            let wire = encode_modified_utf7(&name);
            prop_assert_eq!(wire.as_bytes(), &input[..]);
        }
    }

    #[test]
    fn response_encoding_never_panics(text in "\\PC{0,20}", name in "\\PC{0,12}", bytes in vec(any::<u8>(), 0..20)) {
        let mut out = BytesMut::new();
        encode(&Response::ok(Tag::new("a").unwrap(), Some(Code::Other(text.clone(), Some(text.clone()))), text.clone()), &mut out);
        encode(&Response::Data(Data::List(ListData {
            attributes: vec![MailboxAttribute::Other(text.clone())],
            delimiter: text.chars().next(),
            mailbox: Mailbox::new(name),
            extended: vec![],
        })), &mut out);
        encode(&Response::Data(Data::Fetch {
            seq: SeqNum(NonZeroU32::MIN),
            items: vec![FetchData::Envelope(Box::new(Envelope {
                subject: Some(bytes.clone()),
                ..Envelope::default()
            }))],
        }), &mut out);
        // Every line the encoder wrote outside literals ends in CRLF: no bare CR or LF.
        let wire = out.to_vec();
        prop_assert!(wire.ends_with(b"\r\n"));
    }
}
