//! Typed client commands (RFC 9051 §6 and the extensions listed in the module docs).

use std::num::NonZeroU32;

use bytes::Bytes;

use super::types::{
    Date, DateTime, Flag, Mailbox, MailboxAttribute, ModSeq, Partial, Secret, Section, SequenceSet,
    StatusItem, Tag, UidValidity,
};

/// One tagged client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag, echoed in the tagged reply.
    pub tag: Tag,
    /// What the client asks for.
    pub body: CommandBody,
}

/// The command proper (RFC 9051 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    /// `CAPABILITY` (§6.1.1).
    Capability,
    /// `NOOP` (§6.1.2).
    Noop,
    /// `LOGOUT` (§6.1.3).
    Logout,
    /// `STARTTLS` (§6.2.1).
    StartTls,
    /// `AUTHENTICATE mechanism [initial-response]` (§6.2.2, SASL-IR RFC 4959).
    Authenticate {
        /// The SASL mechanism name, upper-cased.
        mechanism: String,
        /// The initial response as sent: base64 text, or `=` for an empty one. Not decoded.
        initial_response: Option<Secret>,
    },
    /// `LOGIN userid password` (§6.2.3).
    Login {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// `ENABLE capability...` (§6.3.1, RFC 5161).
    Enable {
        /// Capability names as sent.
        capabilities: Vec<String>,
    },
    /// `SELECT mailbox [(params)]` (§6.3.2).
    Select {
        /// The mailbox.
        mailbox: Mailbox,
        /// CONDSTORE / QRESYNC parameters.
        params: SelectParams,
    },
    /// `EXAMINE mailbox [(params)]` (§6.3.3).
    Examine {
        /// The mailbox.
        mailbox: Mailbox,
        /// CONDSTORE / QRESYNC parameters.
        params: SelectParams,
    },
    /// `CREATE mailbox [(USE (attrs))]` (§6.3.4, RFC 6154 §3).
    Create {
        /// The new mailbox.
        mailbox: Mailbox,
        /// Special-use attributes to give it.
        special_use: Vec<MailboxAttribute>,
    },
    /// `DELETE mailbox` (§6.3.5).
    Delete {
        /// The mailbox.
        mailbox: Mailbox,
    },
    /// `RENAME from to` (§6.3.6).
    Rename {
        /// The existing mailbox.
        from: Mailbox,
        /// Its new name.
        to: Mailbox,
    },
    /// `SUBSCRIBE mailbox` (§6.3.7).
    Subscribe {
        /// The mailbox.
        mailbox: Mailbox,
    },
    /// `UNSUBSCRIBE mailbox` (§6.3.8).
    Unsubscribe {
        /// The mailbox.
        mailbox: Mailbox,
    },
    /// `LIST` (§6.3.9, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819).
    List(ListCommand),
    /// `LSUB reference pattern` (RFC 3501 §6.3.9).
    Lsub {
        /// The reference name.
        reference: String,
        /// The pattern (may hold `%` and `*`).
        pattern: String,
    },
    /// `NAMESPACE` (§6.3.10).
    Namespace,
    /// `STATUS mailbox (items)` (§6.3.11).
    Status {
        /// The mailbox.
        mailbox: Mailbox,
        /// The items asked for.
        items: Vec<StatusItem>,
    },
    /// `APPEND mailbox message...` (§6.3.12, MULTIAPPEND RFC 3502).
    Append {
        /// The target mailbox.
        mailbox: Mailbox,
        /// One or more messages.
        messages: Vec<AppendMessage>,
    },
    /// `IDLE` (§6.3.13); the session then reads `DONE` with [`super::CommandDecoder::decode_line`].
    Idle,
    /// `CHECK` (RFC 3501 §6.4.1).
    Check,
    /// `CLOSE` (§6.4.1).
    Close,
    /// `UNSELECT` (§6.4.2).
    Unselect,
    /// `EXPUNGE` (§6.4.3).
    Expunge,
    /// `UID EXPUNGE set` (§6.4.9).
    UidExpunge {
        /// The UIDs.
        uids: SequenceSet,
    },
    /// `[UID] SEARCH` (§6.4.4).
    Search(Box<SearchCommand>),
    /// `[UID] FETCH` (§6.4.5).
    Fetch(Box<FetchCommand>),
    /// `[UID] STORE` (§6.4.6).
    Store(Box<StoreCommand>),
    /// `[UID] COPY set mailbox` (§6.4.7).
    Copy {
        /// Whether the set holds UIDs.
        uid: bool,
        /// The messages.
        set: SequenceSet,
        /// The target mailbox.
        mailbox: Mailbox,
    },
    /// `[UID] MOVE set mailbox` (§6.4.8).
    Move {
        /// Whether the set holds UIDs.
        uid: bool,
        /// The messages.
        set: SequenceSet,
        /// The target mailbox.
        mailbox: Mailbox,
    },
    /// `ID (params) / NIL` (RFC 2971).
    Id {
        /// Field/value pairs, `None` for NIL.
        params: Option<Vec<(String, Option<String>)>>,
    },
}

impl CommandBody {
    /// The command's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            CommandBody::Capability => "CAPABILITY",
            CommandBody::Noop => "NOOP",
            CommandBody::Logout => "LOGOUT",
            CommandBody::StartTls => "STARTTLS",
            CommandBody::Authenticate { .. } => "AUTHENTICATE",
            CommandBody::Login { .. } => "LOGIN",
            CommandBody::Enable { .. } => "ENABLE",
            CommandBody::Select { .. } => "SELECT",
            CommandBody::Examine { .. } => "EXAMINE",
            CommandBody::Create { .. } => "CREATE",
            CommandBody::Delete { .. } => "DELETE",
            CommandBody::Rename { .. } => "RENAME",
            CommandBody::Subscribe { .. } => "SUBSCRIBE",
            CommandBody::Unsubscribe { .. } => "UNSUBSCRIBE",
            CommandBody::List(_) => "LIST",
            CommandBody::Lsub { .. } => "LSUB",
            CommandBody::Namespace => "NAMESPACE",
            CommandBody::Status { .. } => "STATUS",
            CommandBody::Append { .. } => "APPEND",
            CommandBody::Idle => "IDLE",
            CommandBody::Check => "CHECK",
            CommandBody::Close => "CLOSE",
            CommandBody::Unselect => "UNSELECT",
            CommandBody::Expunge => "EXPUNGE",
            CommandBody::UidExpunge { .. } => "UID EXPUNGE",
            CommandBody::Search(s) if s.uid => "UID SEARCH",
            CommandBody::Search(_) => "SEARCH",
            CommandBody::Fetch(f) if f.uid => "UID FETCH",
            CommandBody::Fetch(_) => "FETCH",
            CommandBody::Store(s) if s.uid => "UID STORE",
            CommandBody::Store(_) => "STORE",
            CommandBody::Copy { uid: true, .. } => "UID COPY",
            CommandBody::Copy { .. } => "COPY",
            CommandBody::Move { uid: true, .. } => "UID MOVE",
            CommandBody::Move { .. } => "MOVE",
            CommandBody::Id { .. } => "ID",
        }
    }
}

/// SELECT/EXAMINE parameters (RFC 7162 §3.1.8, §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelectParams {
    /// `CONDSTORE`.
    pub condstore: bool,
    /// `QRESYNC (...)`.
    pub qresync: Option<QResyncParams>,
}

/// `QRESYNC (uidvalidity modseq [known-uids] [(known-seqs known-uids)])` (RFC 7162 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QResyncParams {
    /// The UIDVALIDITY the client last knew.
    pub uid_validity: UidValidity,
    /// The last known mod-sequence.
    pub mod_seq: ModSeq,
    /// UIDs the client knows.
    pub known_uids: Option<SequenceSet>,
    /// `(known-sequence-set known-uid-set)`: message numbers and the matching UIDs.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// `LIST` in its basic and extended forms (RFC 5258 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCommand {
    /// Selection options (`(SUBSCRIBED RECURSIVEMATCH ...)`); empty for basic LIST.
    pub selection: Vec<ListSelectOption>,
    /// The reference name.
    pub reference: String,
    /// One or more patterns.
    pub patterns: Vec<String>,
    /// Return options (`RETURN (CHILDREN ...)`).
    pub return_options: Vec<ListReturnOption>,
}

/// A LIST selection option (RFC 5258 §3.1, RFC 6154 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSelectOption {
    /// `SUBSCRIBED`.
    Subscribed,
    /// `REMOTE`.
    Remote,
    /// `RECURSIVEMATCH`.
    RecursiveMatch,
    /// `SPECIAL-USE`.
    SpecialUse,
}

/// A LIST return option (RFC 5258 §3.2, RFC 5819, RFC 6154 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListReturnOption {
    /// `SUBSCRIBED`.
    Subscribed,
    /// `CHILDREN`.
    Children,
    /// `SPECIAL-USE`.
    SpecialUse,
    /// `STATUS (items)`.
    Status(Vec<StatusItem>),
}

/// One message of an APPEND (RFC 3502 §6: `append-message = append-opts SP append-data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Flags to set (`flag-list`).
    pub flags: Vec<Flag>,
    /// The internal date to give the message.
    pub date: Option<DateTime>,
    /// The message.
    pub data: AppendData,
}

/// The message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendData {
    /// How it was sent.
    pub kind: AppendDataKind,
    /// The message octets, or where they went.
    pub content: AppendContent,
}

/// Where the octets of an APPEND message are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendContent {
    /// Here: the decoder kept them with the command.
    Octets(Bytes),
    /// With the caller: the decoder handed over this many octets as they arrived
    /// ([`super::Decoded::MessageLiteral`] and [`super::Decoded::MessageData`]), in the order
    /// of the messages. [`super::encode_command`] writes only the literal's header for it.
    Streamed(u64),
}

/// How APPEND data was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendDataKind {
    /// A `literal` (`{n}` / `{n+}`).
    Literal,
    /// A `literal8` (`~{n}`, BINARY RFC 3516).
    Literal8,
    /// `UTF8 (~{n})` (RFC 6855 §4).
    Utf8,
}

/// `[UID] SEARCH [RETURN (...)] [CHARSET x] keys` (RFC 9051 §6.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCommand {
    /// UID SEARCH.
    pub uid: bool,
    /// `RETURN (...)`: `Some` asks for an ESEARCH response (an empty list means `ALL`).
    pub return_options: Option<Vec<SearchReturnOption>>,
    /// The charset of the string arguments.
    pub charset: Option<String>,
    /// The criteria, all of which must match.
    pub criteria: Vec<SearchKey>,
}

/// `search-return-opt` (RFC 9051 §6.4.4, RFC 5182).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturnOption {
    /// `MIN`.
    Min,
    /// `MAX`.
    Max,
    /// `ALL`.
    All,
    /// `COUNT`.
    Count,
    /// `SAVE` (SEARCHRES).
    Save,
}

/// A search key (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 7162 §3.1.5). String arguments are
/// octets in the command's charset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// `ALL`.
    All,
    /// `ANSWERED`.
    Answered,
    /// `BCC string`.
    Bcc(Vec<u8>),
    /// `BEFORE date`.
    Before(Date),
    /// `BODY string`.
    Body(Vec<u8>),
    /// `CC string`.
    Cc(Vec<u8>),
    /// `DELETED`.
    Deleted,
    /// `DRAFT`.
    Draft,
    /// `FLAGGED`.
    Flagged,
    /// `FROM string`.
    From(Vec<u8>),
    /// `HEADER field-name string`.
    Header(String, Vec<u8>),
    /// `KEYWORD flag-keyword`.
    Keyword(String),
    /// `LARGER n`.
    Larger(u64),
    /// `NEW` (IMAP4rev1).
    New,
    /// `NOT key`.
    Not(Box<SearchKey>),
    /// `OLD` (IMAP4rev1).
    Old,
    /// `ON date`.
    On(Date),
    /// `OR key key`.
    Or(Box<SearchKey>, Box<SearchKey>),
    /// `RECENT` (IMAP4rev1).
    Recent,
    /// `SEEN`.
    Seen,
    /// `SENTBEFORE date`.
    SentBefore(Date),
    /// `SENTON date`.
    SentOn(Date),
    /// `SENTSINCE date`.
    SentSince(Date),
    /// `SINCE date`.
    Since(Date),
    /// `SMALLER n`.
    Smaller(u64),
    /// `SUBJECT string`.
    Subject(Vec<u8>),
    /// `TEXT string`.
    Text(Vec<u8>),
    /// `TO string`.
    To(Vec<u8>),
    /// `UID set`.
    Uid(SequenceSet),
    /// `UNANSWERED`.
    Unanswered,
    /// `UNDELETED`.
    Undeleted,
    /// `UNDRAFT`.
    Undraft,
    /// `UNFLAGGED`.
    Unflagged,
    /// `UNKEYWORD flag-keyword`.
    Unkeyword(String),
    /// `UNSEEN`.
    Unseen,
    /// A message sequence set (or `$`).
    SequenceSet(SequenceSet),
    /// `( key... )`: all of them.
    And(Vec<SearchKey>),
    /// `MODSEQ ["/flags/name" priv|shared|all] n` (CONDSTORE).
    ModSeq {
        /// The metadata entry and its type; RFC 7162 lets servers ignore it.
        entry: Option<(String, EntryType)>,
        /// Matches messages with a mod-sequence at least this.
        mod_seq: ModSeq,
    },
}

/// `entry-type-req` of a MODSEQ search key (RFC 7162 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// `priv`.
    Private,
    /// `shared`.
    Shared,
    /// `all`.
    All,
}

/// `[UID] FETCH set items [(modifiers)]` (RFC 9051 §6.4.5, RFC 7162 §3.1.4, §3.2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchCommand {
    /// UID FETCH.
    pub uid: bool,
    /// The messages.
    pub set: SequenceSet,
    /// What to fetch.
    pub items: FetchItems,
    /// CHANGEDSINCE / VANISHED.
    pub modifiers: FetchModifiers,
}

/// The data items of a FETCH: a macro or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItems {
    /// `ALL`, `FAST` or `FULL`.
    Macro(FetchMacro),
    /// One item or a parenthesised list (never empty when decoded).
    Items(Vec<FetchItem>),
}

/// FETCH macros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMacro {
    /// `ALL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)`.
    All,
    /// `FAST` = `(FLAGS INTERNALDATE RFC822.SIZE)`.
    Fast,
    /// `FULL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY)`.
    Full,
}

impl FetchMacro {
    /// The items the macro stands for.
    pub fn expand(self) -> Vec<FetchItem> {
        let mut items = vec![
            FetchItem::Flags,
            FetchItem::InternalDate,
            FetchItem::Rfc822Size,
        ];
        match self {
            FetchMacro::Fast => {}
            FetchMacro::All => items.push(FetchItem::Envelope),
            FetchMacro::Full => items.extend([FetchItem::Envelope, FetchItem::Body]),
        }
        items
    }
}

/// A FETCH data item name (`fetch-att`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    /// `FLAGS`.
    Flags,
    /// `INTERNALDATE`.
    InternalDate,
    /// `RFC822.SIZE`.
    Rfc822Size,
    /// `ENVELOPE`.
    Envelope,
    /// `BODY` (structure without extension data).
    Body,
    /// `BODYSTRUCTURE`.
    BodyStructure,
    /// `UID`.
    Uid,
    /// `MODSEQ` (CONDSTORE).
    ModSeq,
    /// `RFC822` (IMAP4rev1; = `BODY[]`).
    Rfc822,
    /// `RFC822.HEADER` (IMAP4rev1; = `BODY.PEEK[HEADER]`).
    Rfc822Header,
    /// `RFC822.TEXT` (IMAP4rev1; = `BODY[TEXT]`).
    Rfc822Text,
    /// `BODY[section]<partial>` / `BODY.PEEK[...]`.
    BodySection {
        /// `.PEEK`: do not set `\Seen`.
        peek: bool,
        /// The section.
        section: Section,
        /// The octet range.
        partial: Option<Partial>,
    },
    /// `BINARY[part]<partial>` / `BINARY.PEEK[...]` (RFC 3516).
    Binary {
        /// `.PEEK`.
        peek: bool,
        /// Part numbers.
        part: Vec<NonZeroU32>,
        /// The octet range.
        partial: Option<Partial>,
    },
    /// `BINARY.SIZE[part]`.
    BinarySize {
        /// Part numbers.
        part: Vec<NonZeroU32>,
    },
}

/// FETCH modifiers (RFC 7162).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchModifiers {
    /// `CHANGEDSINCE n`.
    pub changed_since: Option<ModSeq>,
    /// `VANISHED` (QRESYNC, UID FETCH only).
    pub vanished: bool,
}

/// `[UID] STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags` (RFC 9051 §6.4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCommand {
    /// UID STORE.
    pub uid: bool,
    /// The messages.
    pub set: SequenceSet,
    /// `UNCHANGEDSINCE` (CONDSTORE; 0 is allowed).
    pub unchanged_since: Option<ModSeq>,
    /// Add, remove or replace.
    pub action: StoreAction,
    /// `.SILENT`.
    pub silent: bool,
    /// The flags.
    pub flags: Vec<Flag>,
}

/// What STORE does with the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAction {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}
