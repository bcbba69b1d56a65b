//! Client commands: the inverse of the parser, for clients, tests and the round-trip fuzz
//! target. Literals are written non-synchronizing (`{n+}`, LITERAL+), so the output is one
//! buffer that needs no continuation round trips.

use bytes::BytesMut;

use super::Writer;
use crate::imap::command::{
    AppendContent, AppendDataKind, Command, CommandBody, EntryType, FetchItem, FetchItems,
    FetchMacro, ListReturnOption, ListSelectOption, SearchKey, SearchReturnOption, SelectParams,
    StoreAction,
};
use crate::imap::types::{Mailbox, MailboxAttribute, Partial, StatusItem};

/// Appends `command`, CRLF included, to `out`, with mailbox names in modified UTF-7.
pub fn encode_command(command: &Command, out: &mut BytesMut) {
    encode_command_with(command, false, out);
}

/// Appends `command` to `out`; `utf8` sends mailbox names as UTF-8 (UTF8=ACCEPT enabled) and
/// lets quoted strings hold UTF-8.
pub fn encode_command_with(command: &Command, utf8: bool, out: &mut BytesMut) {
    let mut w = Writer {
        out,
        utf8,
        client: true,
    };
    w.tag(&command.tag);
    w.sp();
    w.command_body(&command.body);
    w.crlf();
}

impl Writer<'_> {
    fn mailbox(&mut self, mailbox: &Mailbox) {
        self.mailbox_astring(mailbox.as_str());
    }

    fn pattern(&mut self, pattern: &str) {
        let wire = self.wire_name(pattern);
        self.list_mailbox(&wire);
    }

    fn command_body(&mut self, body: &CommandBody) {
        self.str(body.name());
        match body {
            CommandBody::Capability
            | CommandBody::Noop
            | CommandBody::Logout
            | CommandBody::StartTls
            | CommandBody::Namespace
            | CommandBody::Idle
            | CommandBody::Check
            | CommandBody::Close
            | CommandBody::Unselect
            | CommandBody::Expunge => {}
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                self.sp();
                self.atom(mechanism);
                if let Some(ir) = initial_response {
                    // initial-resp = (base64 / "="): nothing else can be sent here.
                    self.sp();
                    for &b in ir.expose() {
                        if b.is_ascii_alphanumeric() || b"+/=".contains(&b) {
                            self.byte(b);
                        }
                    }
                }
            }
            CommandBody::Login { username, password } => {
                self.sp();
                self.astring(username.as_bytes());
                self.sp();
                self.astring(password.expose());
            }
            CommandBody::Enable { capabilities } => self.atoms(capabilities),
            CommandBody::Select { mailbox, params } | CommandBody::Examine { mailbox, params } => {
                self.sp();
                self.mailbox(mailbox);
                self.select_params(params);
            }
            CommandBody::Create {
                mailbox,
                special_use,
            } => {
                self.sp();
                self.mailbox(mailbox);
                if !special_use.is_empty() {
                    self.str(" (USE ");
                    self.attributes(special_use);
                    self.byte(b')');
                }
            }
            CommandBody::Delete { mailbox }
            | CommandBody::Subscribe { mailbox }
            | CommandBody::Unsubscribe { mailbox } => {
                self.sp();
                self.mailbox(mailbox);
            }
            CommandBody::Rename { from, to } => {
                self.sp();
                self.mailbox(from);
                self.sp();
                self.mailbox(to);
            }
            CommandBody::List(list) => {
                self.sp();
                if !list.selection.is_empty() {
                    self.list(&list.selection, |w, o| {
                        w.str(match o {
                            ListSelectOption::Subscribed => "SUBSCRIBED",
                            ListSelectOption::Remote => "REMOTE",
                            ListSelectOption::RecursiveMatch => "RECURSIVEMATCH",
                            ListSelectOption::SpecialUse => "SPECIAL-USE",
                        });
                    });
                    self.sp();
                }
                self.mailbox_astring(&list.reference);
                self.sp();
                match list.patterns.as_slice() {
                    [one] => self.pattern(one),
                    many => self.list(many, |w, p| w.pattern(p)),
                }
                if !list.return_options.is_empty() {
                    self.str(" RETURN ");
                    self.list(&list.return_options, |w, o| match o {
                        ListReturnOption::Subscribed => w.str("SUBSCRIBED"),
                        ListReturnOption::Children => w.str("CHILDREN"),
                        ListReturnOption::SpecialUse => w.str("SPECIAL-USE"),
                        ListReturnOption::Status(items) => {
                            w.str("STATUS ");
                            w.status_items(items);
                        }
                    });
                }
            }
            CommandBody::Lsub { reference, pattern } => {
                self.sp();
                self.mailbox_astring(reference);
                self.sp();
                self.pattern(pattern);
            }
            CommandBody::Status { mailbox, items } => {
                self.sp();
                self.mailbox(mailbox);
                self.sp();
                self.status_items(items);
            }
            CommandBody::Append { mailbox, messages } => {
                self.sp();
                self.mailbox(mailbox);
                for m in messages {
                    if !m.flags.is_empty() {
                        self.sp();
                        self.flag_list(&m.flags);
                    }
                    if let Some(date) = &m.date {
                        self.sp();
                        self.date_time(date);
                    }
                    self.sp();
                    if m.data.kind == AppendDataKind::Utf8 {
                        self.str("UTF8 (");
                    }
                    if m.data.kind != AppendDataKind::Literal {
                        self.byte(b'~');
                    }
                    match &m.data.content {
                        AppendContent::Octets(octets) => self.literal(octets),
                        // The caller sends the octets (they are not here).
                        AppendContent::Streamed(size) => self.literal_header(*size),
                    }
                    if m.data.kind == AppendDataKind::Utf8 {
                        self.byte(b')');
                    }
                }
            }
            CommandBody::UidExpunge { uids } => {
                self.sp();
                self.sequence_set(uids);
            }
            CommandBody::Search(search) => {
                if let Some(options) = &search.return_options {
                    self.str(" RETURN ");
                    self.list(options, |w, o| {
                        w.str(match o {
                            SearchReturnOption::Min => "MIN",
                            SearchReturnOption::Max => "MAX",
                            SearchReturnOption::All => "ALL",
                            SearchReturnOption::Count => "COUNT",
                            SearchReturnOption::Save => "SAVE",
                        });
                    });
                }
                if let Some(charset) = &search.charset {
                    self.str(" CHARSET ");
                    self.charset(charset);
                }
                for key in &search.criteria {
                    self.sp();
                    self.search_key(key);
                }
            }
            CommandBody::Fetch(fetch) => {
                self.sp();
                self.sequence_set(&fetch.set);
                self.sp();
                match &fetch.items {
                    FetchItems::Macro(FetchMacro::All) => self.str("ALL"),
                    FetchItems::Macro(FetchMacro::Fast) => self.str("FAST"),
                    FetchItems::Macro(FetchMacro::Full) => self.str("FULL"),
                    FetchItems::Items(items) => self.list(items, |w, i| w.fetch_item(i)),
                }
                let m = &fetch.modifiers;
                if m.changed_since.is_some() || m.vanished {
                    self.str(" (");
                    if let Some(since) = m.changed_since {
                        self.str("CHANGEDSINCE ");
                        self.num(since.get());
                        if m.vanished {
                            self.sp();
                        }
                    }
                    if m.vanished {
                        self.str("VANISHED");
                    }
                    self.byte(b')');
                }
            }
            CommandBody::Store(store) => {
                self.sp();
                self.sequence_set(&store.set);
                if let Some(since) = store.unchanged_since {
                    self.str(" (UNCHANGEDSINCE ");
                    self.num(since.get());
                    self.byte(b')');
                }
                self.str(match store.action {
                    StoreAction::Replace => " FLAGS",
                    StoreAction::Add => " +FLAGS",
                    StoreAction::Remove => " -FLAGS",
                });
                if store.silent {
                    self.str(".SILENT");
                }
                self.sp();
                self.flag_list(&store.flags);
            }
            CommandBody::Copy { set, mailbox, .. } | CommandBody::Move { set, mailbox, .. } => {
                self.sp();
                self.sequence_set(set);
                self.sp();
                self.mailbox(mailbox);
            }
            CommandBody::Id { params } => {
                self.sp();
                self.id_params(params.as_deref());
            }
        }
    }

    fn attributes(&mut self, attributes: &[MailboxAttribute]) {
        self.list(attributes, |w, a| {
            w.byte(b'\\');
            w.atom(a.name());
        });
    }

    fn status_items(&mut self, items: &[StatusItem]) {
        self.list(items, |w, i| w.str(i.name()));
    }

    fn select_params(&mut self, params: &SelectParams) {
        if !params.condstore && params.qresync.is_none() {
            return;
        }
        self.str(" (");
        if params.condstore {
            self.str("CONDSTORE");
        }
        if let Some(q) = &params.qresync {
            if params.condstore {
                self.sp();
            }
            self.str("QRESYNC (");
            self.num(q.uid_validity.get());
            self.sp();
            self.num(q.mod_seq.get());
            if let Some(known) = &q.known_uids {
                self.sp();
                self.sequence_set(known);
            }
            if let Some((seqs, uids)) = &q.seq_match {
                self.str(" (");
                self.sequence_set(seqs);
                self.sp();
                self.sequence_set(uids);
                self.byte(b')');
            }
            self.byte(b')');
        }
        self.byte(b')');
    }

    fn search_key(&mut self, key: &SearchKey) {
        let simple = match key {
            SearchKey::All => "ALL",
            SearchKey::Answered => "ANSWERED",
            SearchKey::Deleted => "DELETED",
            SearchKey::Draft => "DRAFT",
            SearchKey::Flagged => "FLAGGED",
            SearchKey::New => "NEW",
            SearchKey::Old => "OLD",
            SearchKey::Recent => "RECENT",
            SearchKey::Seen => "SEEN",
            SearchKey::Unanswered => "UNANSWERED",
            SearchKey::Undeleted => "UNDELETED",
            SearchKey::Undraft => "UNDRAFT",
            SearchKey::Unflagged => "UNFLAGGED",
            SearchKey::Unseen => "UNSEEN",
            _ => "",
        };
        if !simple.is_empty() {
            self.str(simple);
            return;
        }
        let (name, value): (&str, &[u8]) = match key {
            SearchKey::Bcc(v) => ("BCC ", v),
            SearchKey::Body(v) => ("BODY ", v),
            SearchKey::Cc(v) => ("CC ", v),
            SearchKey::From(v) => ("FROM ", v),
            SearchKey::Subject(v) => ("SUBJECT ", v),
            SearchKey::Text(v) => ("TEXT ", v),
            SearchKey::To(v) => ("TO ", v),
            _ => ("", b""),
        };
        if !name.is_empty() {
            self.str(name);
            self.astring(value);
            return;
        }
        let dated = match key {
            SearchKey::Before(d) => Some(("BEFORE ", d)),
            SearchKey::On(d) => Some(("ON ", d)),
            SearchKey::Since(d) => Some(("SINCE ", d)),
            SearchKey::SentBefore(d) => Some(("SENTBEFORE ", d)),
            SearchKey::SentOn(d) => Some(("SENTON ", d)),
            SearchKey::SentSince(d) => Some(("SENTSINCE ", d)),
            _ => None,
        };
        if let Some((name, date)) = dated {
            self.str(name);
            self.date(date);
            return;
        }
        match key {
            SearchKey::Keyword(k) => {
                self.str("KEYWORD ");
                self.atom(k);
            }
            SearchKey::Unkeyword(k) => {
                self.str("UNKEYWORD ");
                self.atom(k);
            }
            SearchKey::Header(field, value) => {
                self.str("HEADER ");
                self.astring(field.as_bytes());
                self.sp();
                self.astring(value);
            }
            SearchKey::Larger(n) => {
                self.str("LARGER ");
                self.num(n);
            }
            SearchKey::Smaller(n) => {
                self.str("SMALLER ");
                self.num(n);
            }
            SearchKey::Uid(set) => {
                self.str("UID ");
                self.sequence_set(set);
            }
            SearchKey::Not(inner) => {
                self.str("NOT ");
                self.search_key(inner);
            }
            SearchKey::Or(a, b) => {
                self.str("OR ");
                self.search_key(a);
                self.sp();
                self.search_key(b);
            }
            SearchKey::SequenceSet(set) => self.sequence_set(set),
            SearchKey::And(keys) => self.list(keys, |w, k| w.search_key(k)),
            SearchKey::ModSeq { entry, mod_seq } => {
                self.str("MODSEQ ");
                if let Some((name, kind)) = entry {
                    self.quoted(name.as_bytes());
                    self.str(match kind {
                        EntryType::Private => " priv ",
                        EntryType::Shared => " shared ",
                        EntryType::All => " all ",
                    });
                }
                self.num(mod_seq.get());
            }
            _ => {}
        }
    }

    fn partial(&mut self, partial: Option<&Partial>) {
        if let Some(p) = partial {
            self.byte(b'<');
            self.num(p.offset);
            self.byte(b'.');
            self.num(p.length);
            self.byte(b'>');
        }
    }

    fn fetch_item(&mut self, item: &FetchItem) {
        match item {
            FetchItem::Flags => self.str("FLAGS"),
            FetchItem::InternalDate => self.str("INTERNALDATE"),
            FetchItem::Rfc822Size => self.str("RFC822.SIZE"),
            FetchItem::Envelope => self.str("ENVELOPE"),
            FetchItem::Body => self.str("BODY"),
            FetchItem::BodyStructure => self.str("BODYSTRUCTURE"),
            FetchItem::Uid => self.str("UID"),
            FetchItem::ModSeq => self.str("MODSEQ"),
            FetchItem::Rfc822 => self.str("RFC822"),
            FetchItem::Rfc822Header => self.str("RFC822.HEADER"),
            FetchItem::Rfc822Text => self.str("RFC822.TEXT"),
            FetchItem::BodySection {
                peek,
                section,
                partial,
            } => {
                self.str(if *peek { "BODY.PEEK" } else { "BODY" });
                self.section(section);
                self.partial(partial.as_ref());
            }
            FetchItem::Binary {
                peek,
                part,
                partial,
            } => {
                self.str(if *peek { "BINARY.PEEK" } else { "BINARY" });
                self.section_binary(part);
                self.partial(partial.as_ref());
            }
            FetchItem::BinarySize { part } => {
                self.str("BINARY.SIZE");
                self.section_binary(part);
            }
        }
    }
}
