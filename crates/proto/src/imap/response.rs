//! Typed server responses (RFC 9051 §7) and the message structures FETCH returns.

use std::num::NonZeroU32;

use bytes::Bytes;

use super::types::{
    DateTime, Flag, FlagFetch, FlagPerm, Mailbox, MailboxAttribute, ModSeq, Section, SeqNum,
    SequenceSet, Tag, Uid, UidValidity,
};

/// One server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A status response: tagged `tag OK/NO/BAD`, or untagged `* OK/NO/BAD/PREAUTH/BYE`.
    Status(StatusResponse),
    /// A command continuation request: `+ ...`.
    Continue(ContinueRequest),
    /// Untagged data: `* ...`.
    Data(Data),
}

impl Response {
    /// `tag OK [code] text`.
    pub fn ok(tag: Tag, code: Option<Code>, text: impl Into<String>) -> Response {
        Response::Status(StatusResponse::tagged(tag, Status::Ok, code, text))
    }

    /// `tag NO [code] text`.
    pub fn no(tag: Tag, code: Option<Code>, text: impl Into<String>) -> Response {
        Response::Status(StatusResponse::tagged(tag, Status::No, code, text))
    }

    /// `tag BAD [code] text`, or `* BAD ...` without a tag.
    pub fn bad(tag: Option<Tag>, code: Option<Code>, text: impl Into<String>) -> Response {
        Response::Status(StatusResponse {
            tag,
            status: Status::Bad,
            code,
            text: text.into(),
        })
    }

    /// `+ Ready`: the continuation request for a synchronizing literal
    /// ([`super::Decoded::NeedContinuation`]).
    pub fn ready() -> Response {
        Response::Continue(ContinueRequest::Text {
            code: None,
            text: "Ready".to_owned(),
        })
    }

    /// An untagged status `* OK/NO/BAD/PREAUTH/BYE [code] text`.
    pub fn untagged(status: Status, code: Option<Code>, text: impl Into<String>) -> Response {
        Response::Status(StatusResponse {
            tag: None,
            status,
            code,
            text: text.into(),
        })
    }
}

/// A status response (RFC 9051 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusResponse {
    /// The command's tag; `None` for untagged. Ignored for PREAUTH and BYE (always untagged).
    pub tag: Option<Tag>,
    /// OK, NO, BAD, PREAUTH or BYE.
    pub status: Status,
    /// The response code in brackets.
    pub code: Option<Code>,
    /// Human-readable text (CR and LF are replaced by spaces when encoded).
    pub text: String,
}

impl StatusResponse {
    /// A tagged status response.
    pub fn tagged(tag: Tag, status: Status, code: Option<Code>, text: impl Into<String>) -> Self {
        StatusResponse {
            tag: Some(tag),
            status,
            code,
            text: text.into(),
        }
    }
}

/// The condition of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`.
    Ok,
    /// `NO`.
    No,
    /// `BAD`.
    Bad,
    /// `PREAUTH` (greeting only).
    PreAuth,
    /// `BYE`.
    Bye,
}

/// A response code (RFC 9051 §7.1, RFC 5530, RFC 4315, RFC 7162, RFC 7889).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// `ALERT`.
    Alert,
    /// `BADCHARSET (charsets)`.
    BadCharset(Vec<String>),
    /// `CAPABILITY ...`.
    Capability(Vec<String>),
    /// `PARSE`.
    Parse,
    /// `PERMANENTFLAGS (...)`.
    PermanentFlags(Vec<FlagPerm>),
    /// `READ-ONLY`.
    ReadOnly,
    /// `READ-WRITE`.
    ReadWrite,
    /// `TRYCREATE`.
    TryCreate,
    /// `UIDNEXT n`.
    UidNext(Uid),
    /// `UIDVALIDITY n`.
    UidValidity(UidValidity),
    /// `UNSEEN n` (IMAP4rev1).
    Unseen(SeqNum),
    /// `APPENDUID uidvalidity uid-set` (UIDPLUS; a set for MULTIAPPEND).
    AppendUid(UidValidity, SequenceSet),
    /// `COPYUID uidvalidity source-uids dest-uids` (UIDPLUS).
    CopyUid(UidValidity, SequenceSet, SequenceSet),
    /// `UIDNOTSTICKY`.
    UidNotSticky,
    /// `HIGHESTMODSEQ n` (CONDSTORE).
    HighestModSeq(ModSeq),
    /// `NOMODSEQ` (CONDSTORE).
    NoModSeq,
    /// `MODIFIED set` (CONDSTORE).
    Modified(SequenceSet),
    /// `CLOSED` (QRESYNC).
    Closed,
    /// `TOOBIG` (RFC 7889, RFC 4469).
    TooBig,
    /// `LIMIT`.
    Limit,
    /// `UNAVAILABLE`.
    Unavailable,
    /// `AUTHENTICATIONFAILED`.
    AuthenticationFailed,
    /// `AUTHORIZATIONFAILED`.
    AuthorizationFailed,
    /// `EXPIRED`.
    Expired,
    /// `PRIVACYREQUIRED` (RFC 5530's name for "privacy needed").
    PrivacyRequired,
    /// `CONTACTADMIN`.
    ContactAdmin,
    /// `NOPERM`.
    NoPerm,
    /// `INUSE`.
    InUse,
    /// `EXPUNGEISSUED`.
    ExpungeIssued,
    /// `CORRUPTION`.
    Corruption,
    /// `SERVERBUG`.
    ServerBug,
    /// `CLIENTBUG`.
    ClientBug,
    /// `CANNOT`.
    Cannot,
    /// `OVERQUOTA`.
    OverQuota,
    /// `ALREADYEXISTS`.
    AlreadyExists,
    /// `NONEXISTENT`.
    NonExistent,
    /// `NOTSAVED` (SEARCHRES).
    NotSaved,
    /// `HASCHILDREN`.
    HasChildren,
    /// `UNKNOWN-CTE` (BINARY).
    UnknownCte,
    /// Another code: an atom and optional text (no `]`, CR or LF).
    Other(String, Option<String>),
}

/// A continuation request (RFC 9051 §7.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContinueRequest {
    /// `+ [code] text`, e.g. `+ Ready` for a literal.
    Text {
        /// Optional response code.
        code: Option<Code>,
        /// The text.
        text: String,
    },
    /// `+ base64` (a SASL challenge, already base64-encoded; may be empty).
    Base64(String),
}

/// Untagged server data (RFC 9051 §7.2–§7.5 and extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// `* CAPABILITY ...`.
    Capability(Vec<String>),
    /// `* ENABLED ...` (RFC 5161).
    Enabled(Vec<String>),
    /// `* LIST (...) "/" name [(extended)]`.
    List(ListData),
    /// `* LSUB (...) "/" name` (IMAP4rev1).
    Lsub(ListData),
    /// `* NAMESPACE personal other shared`.
    Namespace {
        /// Personal namespaces, `None` for NIL.
        personal: Option<Vec<NamespaceDesc>>,
        /// Other users' namespaces.
        other: Option<Vec<NamespaceDesc>>,
        /// Shared namespaces.
        shared: Option<Vec<NamespaceDesc>>,
    },
    /// `* STATUS name (items)`.
    Status {
        /// The mailbox.
        mailbox: Mailbox,
        /// The values.
        items: Vec<StatusValue>,
    },
    /// `* ESEARCH ...` (RFC 4731, RFC 9051 §7.3.4).
    ESearch(ESearch),
    /// `* SEARCH n... [(MODSEQ n)]` (IMAP4rev1, RFC 7162).
    Search {
        /// Matching numbers or UIDs.
        ids: Vec<NonZeroU32>,
        /// Highest mod-sequence of the matches (CONDSTORE).
        mod_seq: Option<ModSeq>,
    },
    /// `* FLAGS (...)`.
    Flags(Vec<Flag>),
    /// `* n EXISTS`.
    Exists(u32),
    /// `* n RECENT` (IMAP4rev1).
    Recent(u32),
    /// `* n EXPUNGE`.
    Expunge(SeqNum),
    /// `* VANISHED [(EARLIER)] uids` (QRESYNC).
    Vanished {
        /// `(EARLIER)`.
        earlier: bool,
        /// The UIDs.
        uids: SequenceSet,
    },
    /// `* n FETCH (...)`.
    Fetch {
        /// The message number.
        seq: SeqNum,
        /// The data items.
        items: Vec<FetchData>,
    },
    /// `* ID (...)` or `* ID NIL` (RFC 2971).
    Id(Option<Vec<(String, Option<String>)>>),
}

/// A LIST or LSUB reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListData {
    /// Mailbox attributes.
    pub attributes: Vec<MailboxAttribute>,
    /// The hierarchy delimiter, `None` for NIL (flat).
    pub delimiter: Option<char>,
    /// The mailbox name.
    pub mailbox: Mailbox,
    /// `mbox-list-extended` items (RFC 5258).
    pub extended: Vec<ListExtendedItem>,
}

/// An extended LIST item (RFC 5258 §3.5, RFC 9051 §7.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListExtendedItem {
    /// `("CHILDINFO" ("SUBSCRIBED"))`.
    ChildInfo(Vec<String>),
    /// `("OLDNAME" ("name"))`.
    OldName(Mailbox),
}

/// One namespace (`"(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceDesc {
    /// The prefix, e.g. `""` or `"Other Users/"`.
    pub prefix: String,
    /// The hierarchy delimiter.
    pub delimiter: Option<char>,
}

/// A STATUS value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusValue {
    /// `MESSAGES n`.
    Messages(u32),
    /// `UIDNEXT n`.
    UidNext(Uid),
    /// `UIDVALIDITY n`.
    UidValidity(UidValidity),
    /// `UNSEEN n`.
    Unseen(u32),
    /// `DELETED n`.
    Deleted(u32),
    /// `SIZE n`.
    Size(u64),
    /// `HIGHESTMODSEQ n`.
    HighestModSeq(ModSeq),
    /// `RECENT n`.
    Recent(u32),
}

/// An ESEARCH reply (RFC 4731, RFC 9051 §7.3.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ESearch {
    /// The tag of the SEARCH command (`(TAG "x")`).
    pub tag: Option<Tag>,
    /// The results are UIDs.
    pub uid: bool,
    /// `MIN n`.
    pub min: Option<NonZeroU32>,
    /// `MAX n`.
    pub max: Option<NonZeroU32>,
    /// `COUNT n`.
    pub count: Option<u32>,
    /// `ALL set` (omitted when nothing matched).
    pub all: Option<SequenceSet>,
    /// `MODSEQ n` (CONDSTORE).
    pub mod_seq: Option<ModSeq>,
}

/// A FETCH data item in a response (RFC 9051 §7.5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchData {
    /// `FLAGS (...)`.
    Flags(Vec<FlagFetch>),
    /// `INTERNALDATE "..."`.
    InternalDate(DateTime),
    /// `RFC822.SIZE n`.
    Rfc822Size(u64),
    /// `UID n`.
    Uid(Uid),
    /// `MODSEQ (n)`.
    ModSeq(ModSeq),
    /// `ENVELOPE (...)`.
    Envelope(Box<Envelope>),
    /// `BODY (...)`: the structure without extension data.
    Body(Box<BodyStructure>),
    /// `BODYSTRUCTURE (...)`.
    BodyStructure(Box<BodyStructure>),
    /// `BODY[section]<origin> data`; `None` data is NIL.
    BodySection {
        /// The section.
        section: Section,
        /// The first octet, for a partial fetch.
        origin: Option<u64>,
        /// The octets.
        data: Option<Bytes>,
    },
    /// `BINARY[part]<origin> data` (a literal8 when the data holds NUL).
    Binary {
        /// Part numbers.
        part: Vec<NonZeroU32>,
        /// The first octet, for a partial fetch.
        origin: Option<u64>,
        /// The decoded octets.
        data: Option<Bytes>,
    },
    /// `BINARY.SIZE[part] n`.
    BinarySize {
        /// Part numbers.
        part: Vec<NonZeroU32>,
        /// The decoded size.
        size: u64,
    },
    /// `RFC822 data` (IMAP4rev1).
    Rfc822(Option<Bytes>),
    /// `RFC822.HEADER data` (IMAP4rev1).
    Rfc822Header(Option<Bytes>),
    /// `RFC822.TEXT data` (IMAP4rev1).
    Rfc822Text(Option<Bytes>),
}

/// A message envelope (RFC 9051 §7.5.2). Strings are the raw header values (still
/// RFC 2047-encoded); `None` is NIL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// `Date:`.
    pub date: Option<Vec<u8>>,
    /// `Subject:`.
    pub subject: Option<Vec<u8>>,
    /// `From:`.
    pub from: Vec<Address>,
    /// `Sender:` (defaults to From).
    pub sender: Vec<Address>,
    /// `Reply-To:` (defaults to From).
    pub reply_to: Vec<Address>,
    /// `To:`.
    pub to: Vec<Address>,
    /// `Cc:`.
    pub cc: Vec<Address>,
    /// `Bcc:`.
    pub bcc: Vec<Address>,
    /// `In-Reply-To:`.
    pub in_reply_to: Option<Vec<u8>>,
    /// `Message-ID:`.
    pub message_id: Option<Vec<u8>>,
}

/// An envelope address. A group starts with an address whose `host` is `None` and `mailbox`
/// is the group name, and ends with one whose `mailbox` and `host` are both `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// Display name.
    pub name: Option<Vec<u8>>,
    /// Source route (obsolete; normally `None`).
    pub adl: Option<Vec<u8>>,
    /// Local part (or group name).
    pub mailbox: Option<Vec<u8>>,
    /// Domain.
    pub host: Option<Vec<u8>>,
}

/// A body structure (RFC 9051 §7.5.2 BODYSTRUCTURE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStructure {
    /// A non-multipart part.
    Single {
        /// The basic fields.
        fields: BodyFields,
        /// Type-specific fields.
        kind: SinglePartKind,
        /// Extension data (BODYSTRUCTURE only).
        extension: Option<SinglePartExtension>,
    },
    /// A multipart.
    Multi {
        /// The parts (at least one).
        parts: Vec<BodyStructure>,
        /// The multipart subtype, e.g. `MIXED`.
        subtype: String,
        /// Extension data (BODYSTRUCTURE only).
        extension: Option<MultipartExtension>,
    },
}

/// The kind of a single part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinglePartKind {
    /// Any type but text and message/rfc822 (`body-type-basic`).
    Basic {
        /// Media type, e.g. `APPLICATION`.
        media_type: String,
        /// Subtype, e.g. `PDF`.
        subtype: String,
    },
    /// `TEXT/subtype` with its line count.
    Text {
        /// Subtype, e.g. `PLAIN`.
        subtype: String,
        /// Lines of the body.
        lines: u64,
    },
    /// `MESSAGE/RFC822` (or `MESSAGE/GLOBAL`) with the encapsulated message.
    Message {
        /// Subtype, `RFC822` or `GLOBAL`.
        subtype: String,
        /// Envelope of the encapsulated message.
        envelope: Box<Envelope>,
        /// Its structure.
        body: Box<BodyStructure>,
        /// Lines of the encapsulated message.
        lines: u64,
    },
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
/// body-fld-octets`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BodyFields {
    /// Content-Type parameters (attribute, value).
    pub params: Vec<(String, String)>,
    /// Content-ID.
    pub id: Option<String>,
    /// Content-Description.
    pub description: Option<String>,
    /// Content-Transfer-Encoding, e.g. `7BIT`.
    pub encoding: String,
    /// Size in octets (encoded).
    pub size: u64,
}

/// Extension data of a single part: `body-fld-md5 [SP body-fld-dsp [SP body-fld-lang
/// [SP body-fld-loc *(SP body-extension)]]]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SinglePartExtension {
    /// Content-MD5.
    pub md5: Option<String>,
    /// Content-Disposition.
    pub disposition: Option<Disposition>,
    /// Content-Language (empty is NIL).
    pub language: Vec<String>,
    /// Content-Location.
    pub location: Option<String>,
    /// Further extension data.
    pub extensions: Vec<BodyExtension>,
}

/// Extension data of a multipart: `body-fld-param [SP body-fld-dsp [SP body-fld-lang
/// [SP body-fld-loc *(SP body-extension)]]]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultipartExtension {
    /// Content-Type parameters (e.g. boundary).
    pub params: Vec<(String, String)>,
    /// Content-Disposition.
    pub disposition: Option<Disposition>,
    /// Content-Language (empty is NIL).
    pub language: Vec<String>,
    /// Content-Location.
    pub location: Option<String>,
    /// Further extension data.
    pub extensions: Vec<BodyExtension>,
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disposition {
    /// E.g. `attachment`.
    pub kind: String,
    /// Parameters (e.g. filename).
    pub params: Vec<(String, String)>,
}

/// `body-extension = nstring / number64 / "(" body-extension *(SP body-extension) ")"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyExtension {
    /// A string or NIL.
    String(Option<String>),
    /// A number.
    Number(u64),
    /// A list.
    List(Vec<BodyExtension>),
}
