//! Server responses (RFC 9051 §7).

use super::Writer;
use crate::imap::response::{
    Code, ContinueRequest, Data, ESearch, FetchData, ListData, ListExtendedItem, NamespaceDesc,
    Response, Status, StatusResponse, StatusValue,
};
use crate::imap::types::{FlagFetch, FlagPerm, StatusItem};

impl Writer<'_> {
    // response = *(continue-req / response-data) response-done
    pub(super) fn response(&mut self, response: &Response) {
        match response {
            Response::Status(status) => self.status_response(status),
            Response::Continue(cont) => self.continue_request(cont),
            Response::Data(data) => self.data(data),
        }
        self.crlf();
    }

    // response-tagged = tag SP resp-cond-state CRLF
    // resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text
    // resp-cond-bye   = "BYE" SP resp-text
    // resp-cond-auth  = ("OK" / "PREAUTH") SP resp-text
    // resp-text       = ["[" resp-text-code "]" SP] [text]
    fn status_response(&mut self, r: &StatusResponse) {
        match (&r.tag, r.status) {
            (Some(tag), Status::Ok | Status::No | Status::Bad) => self.tag(tag),
            _ => self.byte(b'*'),
        }
        self.str(match r.status {
            Status::Ok => " OK",
            Status::No => " NO",
            Status::Bad => " BAD",
            Status::PreAuth => " PREAUTH",
            Status::Bye => " BYE",
        });
        self.resp_text(r.code.as_ref(), &r.text);
    }

    fn resp_text(&mut self, code: Option<&Code>, text: &str) {
        if let Some(code) = code {
            self.str(" [");
            self.code(code);
            self.byte(b']');
        }
        if !text.is_empty() {
            self.sp();
            self.text(text);
        }
    }

    // continue-req = "+" SP (resp-text / base64) CRLF
    fn continue_request(&mut self, cont: &ContinueRequest) {
        self.byte(b'+');
        match cont {
            ContinueRequest::Text { code, text } => {
                if code.is_none() && text.is_empty() {
                    self.sp();
                }
                self.resp_text(code.as_ref(), text);
            }
            ContinueRequest::Base64(data) => {
                self.sp();
                self.text(data);
            }
        }
    }

    // resp-text-code = "ALERT" / "BADCHARSET" [SP "(" charset *(SP charset) ")" ] /
    //                  capability-data / "PARSE" / "PERMANENTFLAGS" SP "(" [flag-perm
    //                  *(SP flag-perm)] ")" / "READ-ONLY" / "READ-WRITE" / "TRYCREATE" /
    //                  "UIDNEXT" SP nz-number / "UIDVALIDITY" SP nz-number / resp-code-apnd /
    //                  resp-code-copy / "UIDNOTSTICKY" / "UNAVAILABLE" / ... /
    //                  atom [SP 1*<any TEXT-CHAR except "]">]
    fn code(&mut self, code: &Code) {
        let simple = match code {
            Code::Alert => "ALERT",
            Code::Parse => "PARSE",
            Code::ReadOnly => "READ-ONLY",
            Code::ReadWrite => "READ-WRITE",
            Code::TryCreate => "TRYCREATE",
            Code::UidNotSticky => "UIDNOTSTICKY",
            Code::NoModSeq => "NOMODSEQ",
            Code::Closed => "CLOSED",
            Code::TooBig => "TOOBIG",
            Code::Limit => "LIMIT",
            Code::Unavailable => "UNAVAILABLE",
            Code::AuthenticationFailed => "AUTHENTICATIONFAILED",
            Code::AuthorizationFailed => "AUTHORIZATIONFAILED",
            Code::Expired => "EXPIRED",
            Code::PrivacyRequired => "PRIVACYREQUIRED",
            Code::ContactAdmin => "CONTACTADMIN",
            Code::NoPerm => "NOPERM",
            Code::InUse => "INUSE",
            Code::ExpungeIssued => "EXPUNGEISSUED",
            Code::Corruption => "CORRUPTION",
            Code::ServerBug => "SERVERBUG",
            Code::ClientBug => "CLIENTBUG",
            Code::Cannot => "CANNOT",
            Code::OverQuota => "OVERQUOTA",
            Code::AlreadyExists => "ALREADYEXISTS",
            Code::NonExistent => "NONEXISTENT",
            Code::NotSaved => "NOTSAVED",
            Code::HasChildren => "HASCHILDREN",
            Code::UnknownCte => "UNKNOWN-CTE",
            _ => "",
        };
        if !simple.is_empty() {
            self.str(simple);
            return;
        }
        match code {
            Code::BadCharset(charsets) => {
                self.str("BADCHARSET");
                if !charsets.is_empty() {
                    self.sp();
                    self.list(charsets, |w, c| w.charset(c));
                }
            }
            Code::Capability(caps) => {
                self.str("CAPABILITY");
                self.atoms(caps);
            }
            Code::PermanentFlags(flags) => {
                self.str("PERMANENTFLAGS ");
                self.list(flags, |w, f| match f {
                    FlagPerm::Flag(f) => w.flag(f),
                    FlagPerm::Any => w.str("\\*"),
                });
            }
            Code::UidNext(uid) => {
                self.str("UIDNEXT ");
                self.num(uid.get());
            }
            Code::UidValidity(v) => {
                self.str("UIDVALIDITY ");
                self.num(v.get());
            }
            Code::Unseen(seq) => {
                self.str("UNSEEN ");
                self.num(seq.get());
            }
            // resp-code-apnd = "APPENDUID" SP nz-number SP append-uid
            Code::AppendUid(validity, uids) => {
                self.str("APPENDUID ");
                self.num(validity.get());
                self.sp();
                self.sequence_set(uids);
            }
            // resp-code-copy = "COPYUID" SP nz-number SP uid-set SP uid-set
            Code::CopyUid(validity, from, to) => {
                self.str("COPYUID ");
                self.num(validity.get());
                self.sp();
                self.sequence_set(from);
                self.sp();
                self.sequence_set(to);
            }
            Code::HighestModSeq(m) => {
                self.str("HIGHESTMODSEQ ");
                self.num(m.get());
            }
            Code::Modified(set) => {
                self.str("MODIFIED ");
                self.sequence_set(set);
            }
            Code::Other(atom, text) => {
                self.atom(atom);
                if let Some(text) = text {
                    self.sp();
                    for b in text.bytes() {
                        self.byte(if matches!(b, b']' | b'\r' | b'\n') {
                            b' '
                        } else {
                            b
                        });
                    }
                }
            }
            _ => {}
        }
    }

    // charset = atom / quoted
    pub(super) fn charset(&mut self, charset: &str) {
        if !charset.is_empty() && charset.bytes().all(crate::imap::types::is_atom_char) {
            self.str(charset);
        } else {
            self.quoted(charset.as_bytes());
        }
    }

    /// `*(SP atom)`.
    pub(super) fn atoms(&mut self, atoms: &[String]) {
        for atom in atoms {
            self.sp();
            self.atom(atom);
        }
    }

    fn data(&mut self, data: &Data) {
        self.str("* ");
        match data {
            // capability-data = "CAPABILITY" *(SP capability) SP "IMAP4rev2" *(SP capability)
            Data::Capability(caps) => {
                self.str("CAPABILITY");
                self.atoms(caps);
            }
            // enable-data = "ENABLED" *(SP capability)
            Data::Enabled(caps) => {
                self.str("ENABLED");
                self.atoms(caps);
            }
            Data::List(list) => {
                self.str("LIST ");
                self.mailbox_list(list);
            }
            Data::Lsub(list) => {
                self.str("LSUB ");
                self.mailbox_list(list);
            }
            // namespace-response = "NAMESPACE" SP namespace SP namespace SP namespace
            Data::Namespace {
                personal,
                other,
                shared,
            } => {
                self.str("NAMESPACE");
                for ns in [personal, other, shared] {
                    self.sp();
                    self.namespace(ns.as_deref());
                }
            }
            // "STATUS" SP mailbox SP "(" [status-att-list] ")"
            Data::Status { mailbox, items } => {
                self.str("STATUS ");
                self.mailbox_string(mailbox);
                self.sp();
                self.list(items, |w, v| w.status_value(v));
            }
            Data::ESearch(es) => self.esearch(es),
            // "SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence-value ")"]
            Data::Search { ids, mod_seq } => {
                self.str("SEARCH");
                for id in ids {
                    self.sp();
                    self.num(id);
                }
                if let Some(m) = mod_seq {
                    self.str(" (MODSEQ ");
                    self.num(m.get());
                    self.byte(b')');
                }
            }
            // "FLAGS" SP flag-list
            Data::Flags(flags) => {
                self.str("FLAGS ");
                self.flag_list(flags);
            }
            // number SP "EXISTS"
            Data::Exists(n) => {
                self.num(n);
                self.str(" EXISTS");
            }
            Data::Recent(n) => {
                self.num(n);
                self.str(" RECENT");
            }
            // expunged-resp = nz-number SP "EXPUNGE"
            Data::Expunge(seq) => {
                self.num(seq.get());
                self.str(" EXPUNGE");
            }
            // expunged-resp =/ "VANISHED" [SP "(EARLIER)"] SP known-uids   ; RFC 7162
            Data::Vanished { earlier, uids } => {
                self.str("VANISHED ");
                if *earlier {
                    self.str("(EARLIER) ");
                }
                self.sequence_set(uids);
            }
            // message-data = nz-number SP "FETCH" SP msg-att
            Data::Fetch { seq, items } => {
                self.num(seq.get());
                self.str(" FETCH ");
                self.list(items, |w, item| w.fetch_data(item));
            }
            // id-response = "ID" SP id-params-list
            Data::Id(params) => {
                self.str("ID ");
                self.id_params(params.as_deref());
            }
        }
    }

    pub(super) fn id_params(&mut self, params: Option<&[(String, Option<String>)]>) {
        match params {
            None => self.str("NIL"),
            Some(params) => self.list(params, |w, (field, value)| {
                w.string(field.as_bytes());
                w.sp();
                w.nstring(value.as_deref().map(str::as_bytes));
            }),
        }
    }

    // mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
    //                [SP mbox-list-extended]
    // mbox-list-extended = "(" [mbox-list-extended-item *(SP mbox-list-extended-item)] ")"
    // mbox-list-extended-item = mbox-list-extended-item-tag SP tagged-ext-val
    fn mailbox_list(&mut self, list: &ListData) {
        self.list(&list.attributes, |w, a| {
            w.byte(b'\\');
            w.atom(a.name());
        });
        self.sp();
        self.delimiter(list.delimiter);
        self.sp();
        self.mailbox_string(&list.mailbox);
        if !list.extended.is_empty() {
            self.sp();
            self.list(&list.extended, |w, item| match item {
                ListExtendedItem::ChildInfo(opts) => {
                    w.str("\"CHILDINFO\" ");
                    w.list(opts, |w, o| w.quoted(o.as_bytes()));
                }
                ListExtendedItem::OldName(name) => {
                    w.str("\"OLDNAME\" (");
                    w.mailbox_string(name);
                    w.byte(b')');
                }
            });
        }
    }

    // namespace = nil / "(" 1*namespace-descr ")"
    // namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")"
    fn namespace(&mut self, ns: Option<&[NamespaceDesc]>) {
        match ns {
            None | Some([]) => self.str("NIL"),
            Some(descs) => {
                self.byte(b'(');
                for d in descs {
                    self.byte(b'(');
                    let wire = self.wire_name(&d.prefix);
                    self.string(&wire);
                    self.sp();
                    self.delimiter(d.delimiter);
                    self.byte(b')');
                }
                self.byte(b')');
            }
        }
    }

    // status-att-val = ("MESSAGES" SP number) / ("UIDNEXT" SP nz-number) / ...
    fn status_value(&mut self, v: &StatusValue) {
        let (item, n) = match *v {
            StatusValue::Messages(n) => (StatusItem::Messages, u64::from(n)),
            StatusValue::UidNext(n) => (StatusItem::UidNext, u64::from(n.get())),
            StatusValue::UidValidity(n) => (StatusItem::UidValidity, u64::from(n.get())),
            StatusValue::Unseen(n) => (StatusItem::Unseen, u64::from(n)),
            StatusValue::Deleted(n) => (StatusItem::Deleted, u64::from(n)),
            StatusValue::Size(n) => (StatusItem::Size, n),
            StatusValue::HighestModSeq(n) => (StatusItem::HighestModSeq, n.get()),
            StatusValue::Recent(n) => (StatusItem::Recent, u64::from(n)),
        };
        self.str(item.name());
        self.sp();
        self.num(n);
    }

    // esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)
    // search-correlator = SP "(" "TAG" SP tag-string ")"
    // search-return-data = "MIN" SP nz-number / "MAX" SP nz-number / "ALL" SP sequence-set /
    //                      "COUNT" SP number / "MODSEQ" SP mod-sequence-value
    fn esearch(&mut self, es: &ESearch) {
        self.str("ESEARCH");
        if let Some(tag) = &es.tag {
            self.str(" (TAG ");
            self.quoted(tag.as_str().as_bytes());
            self.byte(b')');
        }
        if es.uid {
            self.str(" UID");
        }
        if let Some(n) = es.min {
            self.str(" MIN ");
            self.num(n);
        }
        if let Some(n) = es.max {
            self.str(" MAX ");
            self.num(n);
        }
        if let Some(n) = es.count {
            self.str(" COUNT ");
            self.num(n);
        }
        if let Some(set) = &es.all {
            self.str(" ALL ");
            self.sequence_set(set);
        }
        if let Some(m) = es.mod_seq {
            self.str(" MODSEQ ");
            self.num(m.get());
        }
    }

    // msg-att-dynamic = "FLAGS" SP "(" [flag-fetch *(SP flag-fetch)] ")"
    // msg-att-static  = "ENVELOPE" SP envelope / "INTERNALDATE" SP date-time /
    //                   "RFC822.SIZE" SP number64 / "BODY" ["STRUCTURE"] SP body /
    //                   "BODY" section ["<" number ">"] SP nstring /
    //                   "BINARY" section-binary SP (nstring / literal8) /
    //                   "BINARY.SIZE" section-binary SP number / "UID" SP uniqueid
    fn fetch_data(&mut self, item: &FetchData) {
        match item {
            FetchData::Flags(flags) => {
                self.str("FLAGS ");
                self.list(flags, |w, f| match f {
                    FlagFetch::Flag(f) => w.flag(f),
                    FlagFetch::Recent => w.str("\\Recent"),
                });
            }
            FetchData::InternalDate(dt) => {
                self.str("INTERNALDATE ");
                self.date_time(dt);
            }
            FetchData::Rfc822Size(n) => {
                self.str("RFC822.SIZE ");
                self.num(n);
            }
            FetchData::Uid(uid) => {
                self.str("UID ");
                self.num(uid.get());
            }
            // fetch-mod-resp = "MODSEQ" SP "(" permsg-modsequence ")"
            FetchData::ModSeq(m) => {
                self.str("MODSEQ (");
                self.num(m.get());
                self.byte(b')');
            }
            FetchData::Envelope(env) => {
                self.str("ENVELOPE ");
                self.envelope(env);
            }
            FetchData::Body(body) => {
                self.str("BODY ");
                self.body(body, false);
            }
            FetchData::BodyStructure(body) => {
                self.str("BODYSTRUCTURE ");
                self.body(body, true);
            }
            FetchData::BodySection {
                section,
                origin,
                data,
            } => {
                self.str("BODY");
                self.section(section);
                self.origin(*origin);
                self.sp();
                self.data_literal(data.as_deref());
            }
            FetchData::Binary { part, origin, data } => {
                self.str("BINARY");
                self.section_binary(part);
                self.origin(*origin);
                self.sp();
                match data {
                    Some(d) if d.contains(&0) => self.literal8(d),
                    d => self.data_literal(d.as_deref()),
                }
            }
            FetchData::BinarySize { part, size } => {
                self.str("BINARY.SIZE");
                self.section_binary(part);
                self.sp();
                self.num(size);
            }
            FetchData::Rfc822(d) => {
                self.str("RFC822 ");
                self.data_literal(d.as_deref());
            }
            FetchData::Rfc822Header(d) => {
                self.str("RFC822.HEADER ");
                self.data_literal(d.as_deref());
            }
            FetchData::Rfc822Text(d) => {
                self.str("RFC822.TEXT ");
                self.data_literal(d.as_deref());
            }
        }
    }

    fn origin(&mut self, origin: Option<u64>) {
        if let Some(o) = origin {
            self.byte(b'<');
            self.num(o);
            self.byte(b'>');
        }
    }

    /// Message content: always a literal (or NIL).
    fn data_literal(&mut self, data: Option<&[u8]>) {
        match data {
            Some(d) => self.literal(d),
            None => self.str("NIL"),
        }
    }
}
