//! Values shared by commands and responses: tags, ids, sequence sets, flags, mailbox names,
//! dates, FETCH sections.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};

/// A command tag (RFC 9051 §2.2.1): `tag = 1*<any ASTRING-CHAR except "+">`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    /// A tag if `s` is a valid one.
    pub fn new(s: impl Into<String>) -> Option<Tag> {
        let s = s.into();
        (!s.is_empty() && s.bytes().all(is_tag_char)).then_some(Tag(s))
    }

    /// The tag as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Secret client data (LOGIN password, AUTHENTICATE initial response and continuation lines).
/// `Debug` prints `[redacted]`; the bytes are reached only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    /// The secret bytes. Callers must not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A message UID (RFC 9051 §2.3.1.1): `uniqueid = nz-number`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(pub NonZeroU32);

/// A message sequence number (RFC 9051 §2.3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqNum(pub NonZeroU32);

/// A mailbox's UIDVALIDITY (RFC 9051 §2.3.1.1): `uidvalidity = nz-number`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UidValidity(pub NonZeroU32);

/// A modification sequence (RFC 7162 §7): `mod-sequence-value = 1*DIGIT`, a positive
/// unsigned 63-bit integer. (`mod-sequence-valzer`, which admits 0, also uses this type.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModSeq(pub u64);

macro_rules! nz_newtype {
    ($name:ident) => {
        impl $name {
            /// The value, if `n` is not zero.
            pub fn new(n: u32) -> Option<$name> {
                NonZeroU32::new(n).map($name)
            }

            /// The number.
            pub fn get(self) -> u32 {
                self.0.get()
            }
        }
    };
}
nz_newtype!(Uid);
nz_newtype!(SeqNum);
nz_newtype!(UidValidity);

impl ModSeq {
    /// The largest mod-sequence (RFC 7162 §7: 63 bits).
    pub const MAX: u64 = i64::MAX as u64;

    /// The value, if it fits in 63 bits.
    pub fn new(n: u64) -> Option<ModSeq> {
        (n <= Self::MAX).then_some(ModSeq(n))
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// One end of a sequence-set element (RFC 9051 §9): `seq-number = nz-number / "*"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqOrUid {
    /// A message number or UID.
    Value(NonZeroU32),
    /// `*`: the largest number in use (the last message, or the highest UID).
    Asterisk,
}

/// One element of a sequence set: a single number or a range (`seq-range`, either order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SequenceItem {
    /// `seq-number`.
    Value(SeqOrUid),
    /// `seq-number ":" seq-number`; the bounds may come in either order.
    Range(SeqOrUid, SeqOrUid),
}

/// A set of message numbers or UIDs (RFC 9051 §9):
///
/// ```text
/// sequence-set     = (seq-number / seq-range) ["," sequence-set]
/// sequence-set     =/ seq-last-command
/// seq-last-command = "$"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SequenceSet {
    /// A comma-separated list; never empty when decoded.
    Items(Vec<SequenceItem>),
    /// `$`: the result saved by the last `SEARCH RETURN (SAVE)` (RFC 5182).
    Saved,
}

impl SequenceSet {
    /// A set holding exactly `ids`, compressed into ascending ranges (`1:5,7`). Zeros are
    /// dropped. Returns `None` when no id is left.
    pub fn from_ids(ids: impl IntoIterator<Item = u32>) -> Option<SequenceSet> {
        let mut ids: Vec<u32> = ids.into_iter().filter(|&n| n != 0).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut items = Vec::new();
        let mut iter = ids.into_iter().filter_map(NonZeroU32::new);
        let mut current = iter.next().map(|n| (n, n));
        for n in iter {
            if let Some((start, end)) = current {
                if end.get().checked_add(1) == Some(n.get()) {
                    current = Some((start, n));
                    continue;
                }
                items.push(range_item(start, end));
            }
            current = Some((n, n));
        }
        if let Some((start, end)) = current {
            items.push(range_item(start, end));
        }
        (!items.is_empty()).then_some(SequenceSet::Items(items))
    }

    /// A set of one number.
    pub fn single(n: NonZeroU32) -> SequenceSet {
        SequenceSet::Items(vec![SequenceItem::Value(SeqOrUid::Value(n))])
    }
}

fn range_item(start: NonZeroU32, end: NonZeroU32) -> SequenceItem {
    if start == end {
        SequenceItem::Value(SeqOrUid::Value(start))
    } else {
        SequenceItem::Range(SeqOrUid::Value(start), SeqOrUid::Value(end))
    }
}

/// A message flag (RFC 9051 §2.3.2):
///
/// ```text
/// flag           = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
///                  flag-keyword / flag-extension
/// flag-extension = "\" atom
/// flag-keyword   = "$MDNSent" / "$Forwarded" / "$Junk" / "$NotJunk" / "$Phishing" / atom
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `\Answered`.
    Answered,
    /// `\Flagged`.
    Flagged,
    /// `\Deleted`.
    Deleted,
    /// `\Seen`.
    Seen,
    /// `\Draft`.
    Draft,
    /// A keyword (an atom such as `$Forwarded` or `NonJunk`), case preserved.
    Keyword(String),
    /// A system-flag extension `\Name` other than the five above; holds `Name`.
    Extension(String),
}

impl Flag {
    /// The flag for `\name` (case-insensitive for the system flags).
    pub fn system(name: &str) -> Flag {
        match name.to_ascii_lowercase().as_str() {
            "answered" => Flag::Answered,
            "flagged" => Flag::Flagged,
            "deleted" => Flag::Deleted,
            "seen" => Flag::Seen,
            "draft" => Flag::Draft,
            _ => Flag::Extension(name.to_owned()),
        }
    }
}

/// A flag in PERMANENTFLAGS (`flag-perm = flag / "\*"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FlagPerm {
    /// A flag that can be stored permanently.
    Flag(Flag),
    /// `\*`: new keywords can be created.
    Any,
}

/// A flag in a FETCH response (`flag-fetch = flag / obsolete-flag-recent`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FlagFetch {
    /// A flag.
    Flag(Flag),
    /// `\Recent` (IMAP4rev1 only).
    Recent,
}

/// A mailbox name, UTF-8, with `INBOX` normalised (RFC 9051 §5.1: "INBOX" is
/// case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mailbox(String);

impl Mailbox {
    /// A mailbox name; any case of "inbox" becomes "INBOX".
    pub fn new(name: impl Into<String>) -> Mailbox {
        let name = name.into();
        if name.eq_ignore_ascii_case("INBOX") {
            Mailbox("INBOX".to_owned())
        } else {
            Mailbox(name)
        }
    }

    /// The name (UTF-8).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the INBOX.
    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }
}

/// A mailbox attribute in LIST responses (RFC 9051 §7.3.1, RFC 6154 §2, RFC 5258 §3), also
/// the `use-attr` of CREATE-SPECIAL-USE (RFC 6154 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MailboxAttribute {
    /// `\NonExistent`.
    NonExistent,
    /// `\Noinferiors`.
    NoInferiors,
    /// `\Noselect`.
    NoSelect,
    /// `\HasChildren`.
    HasChildren,
    /// `\HasNoChildren`.
    HasNoChildren,
    /// `\Marked`.
    Marked,
    /// `\Unmarked`.
    Unmarked,
    /// `\Subscribed`.
    Subscribed,
    /// `\Remote`.
    Remote,
    /// `\All` (special use).
    All,
    /// `\Archive` (special use).
    Archive,
    /// `\Drafts` (special use).
    Drafts,
    /// `\Flagged` (special use).
    Flagged,
    /// `\Junk` (special use).
    Junk,
    /// `\Sent` (special use).
    Sent,
    /// `\Trash` (special use).
    Trash,
    /// Another `\atom`; holds the atom without the backslash.
    Other(String),
}

impl MailboxAttribute {
    pub(crate) const NAMED: [(MailboxAttribute, &'static str); 16] = [
        (MailboxAttribute::NonExistent, "NonExistent"),
        (MailboxAttribute::NoInferiors, "Noinferiors"),
        (MailboxAttribute::NoSelect, "Noselect"),
        (MailboxAttribute::HasChildren, "HasChildren"),
        (MailboxAttribute::HasNoChildren, "HasNoChildren"),
        (MailboxAttribute::Marked, "Marked"),
        (MailboxAttribute::Unmarked, "Unmarked"),
        (MailboxAttribute::Subscribed, "Subscribed"),
        (MailboxAttribute::Remote, "Remote"),
        (MailboxAttribute::All, "All"),
        (MailboxAttribute::Archive, "Archive"),
        (MailboxAttribute::Drafts, "Drafts"),
        (MailboxAttribute::Flagged, "Flagged"),
        (MailboxAttribute::Junk, "Junk"),
        (MailboxAttribute::Sent, "Sent"),
        (MailboxAttribute::Trash, "Trash"),
    ];

    /// The attribute for `\name` (case-insensitive).
    pub fn from_name(name: &str) -> MailboxAttribute {
        Self::NAMED
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map_or_else(
                || MailboxAttribute::Other(name.to_owned()),
                |(a, _)| a.clone(),
            )
    }

    /// The name without the backslash.
    pub fn name(&self) -> &str {
        match self {
            MailboxAttribute::Other(name) => name,
            known => Self::NAMED
                .iter()
                .find(|(a, _)| a == known)
                .map_or("", |(_, n)| n),
        }
    }
}

/// A STATUS data item name (RFC 9051 §6.3.11, RFC 7162, RFC 8438).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    /// `MESSAGES`.
    Messages,
    /// `UIDNEXT`.
    UidNext,
    /// `UIDVALIDITY`.
    UidValidity,
    /// `UNSEEN`.
    Unseen,
    /// `DELETED`.
    Deleted,
    /// `SIZE` (STATUS=SIZE).
    Size,
    /// `HIGHESTMODSEQ` (CONDSTORE).
    HighestModSeq,
    /// `RECENT` (IMAP4rev1).
    Recent,
}

impl StatusItem {
    pub(crate) const ALL: [(StatusItem, &'static str); 8] = [
        (StatusItem::Messages, "MESSAGES"),
        (StatusItem::UidNext, "UIDNEXT"),
        (StatusItem::UidValidity, "UIDVALIDITY"),
        (StatusItem::Unseen, "UNSEEN"),
        (StatusItem::Deleted, "DELETED"),
        (StatusItem::Size, "SIZE"),
        (StatusItem::HighestModSeq, "HIGHESTMODSEQ"),
        (StatusItem::Recent, "RECENT"),
    ];

    /// The item's keyword.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(i, _)| *i == self)
            .map_or("", |(_, n)| n)
    }
}

/// A calendar date (`date-text = date-day "-" date-month "-" date-year`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    /// Year, 0..=9999.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of month, 1..=31.
    pub day: u8,
}

/// A date and time with zone (`date-time`, e.g. `"17-Jul-1996 02:44:25 -0700"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    /// The date.
    pub date: Date,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=60.
    pub second: u8,
    /// Offset from UTC in minutes (`-0700` is -420), within ±5999.
    pub zone_minutes: i16,
}

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A FETCH body section (RFC 9051 §6.4.5):
///
/// ```text
/// section         = "[" [section-spec] "]"
/// section-spec    = section-msgtext / (section-part ["." section-text])
/// section-part    = nz-number *("." nz-number)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Section {
    /// Part numbers (`1.2.3`); empty for the whole message.
    pub part: Vec<NonZeroU32>,
    /// What of that part.
    pub text: Option<SectionText>,
}

/// `section-text = section-msgtext / "MIME"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SectionText {
    /// `HEADER`.
    Header,
    /// `HEADER.FIELDS (names)`.
    HeaderFields(Vec<String>),
    /// `HEADER.FIELDS.NOT (names)`.
    HeaderFieldsNot(Vec<String>),
    /// `TEXT`.
    Text,
    /// `MIME` (only with part numbers).
    Mime,
}

/// A partial fetch `<offset.length>` (`partial = "<" number64 "." nz-number64 ">"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partial {
    /// First octet wanted.
    pub offset: u64,
    /// Number of octets wanted.
    pub length: NonZeroU64,
}

// RFC 9051 §9:
// atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
// ATOM-CHAR     = <any CHAR except atom-specials>
pub(crate) fn is_atom_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

// ASTRING-CHAR = ATOM-CHAR / resp-specials
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

// tag = 1*<any ASTRING-CHAR except "+">
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

// list-char = ATOM-CHAR / list-wildcards / resp-specials
pub(crate) fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_sets_compress_into_ranges() {
        let set = SequenceSet::from_ids([7, 1, 2, 3, 4, 5, 9, 10, 0, 3]);
        let v = |n| SeqOrUid::Value(NonZeroU32::new(n).unwrap());
        assert_eq!(
            set,
            Some(SequenceSet::Items(vec![
                SequenceItem::Range(v(1), v(5)),
                SequenceItem::Value(v(7)),
                SequenceItem::Range(v(9), v(10)),
            ]))
        );
        assert_eq!(SequenceSet::from_ids([0]), None);
        assert_eq!(
            SequenceSet::from_ids([u32::MAX, u32::MAX - 1]),
            Some(SequenceSet::Items(vec![SequenceItem::Range(
                v(u32::MAX - 1),
                v(u32::MAX)
            )]))
        );
    }

    #[test]
    fn inbox_is_case_insensitive() {
        assert!(Mailbox::new("iNbOx").is_inbox());
        assert_eq!(Mailbox::new("InBox.sub").as_str(), "InBox.sub");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "[redacted]");
    }

    #[test]
    fn tags_reject_plus_and_specials() {
        assert!(Tag::new("a1").is_some());
        assert!(Tag::new("a+").is_none());
        assert!(Tag::new("").is_none());
        assert!(Tag::new("a b").is_none());
        assert!(Tag::new("x]").is_some());
    }
}
