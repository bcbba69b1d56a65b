//! Plain data types of the public API: ids, directory records, mailboxes, flags and messages.

use std::collections::BTreeSet;
use std::fmt;
use std::num::NonZeroU32;
use std::ops::{BitAnd, BitOr, BitOrAssign, Not};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use crate::blob::BlobId;

/// Tuning and location of a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// SQLite database file (default `data_dir/tern.db`).
    pub db_path: PathBuf,
    /// Directory of large blob files (default `data_dir/blobs`).
    pub blob_dir: PathBuf,
    /// Messages of at most this many bytes live inside the database (default 64 KiB): one WAL fsync then
    /// covers bytes and metadata. A [`StoreRole::Client`] stores every message inside.
    pub inline_blob_max: usize,
    /// How long the writer waits for more jobs after the first one of a batch (default 2 ms).
    pub group_commit_window: Duration,
    /// Whether this process owns the data directory or only opens the database beside its owner
    /// (default [`StoreRole::Owner`]: a second owner then fails loudly instead of sweeping files
    /// the first one is writing).
    pub role: StoreRole,
    /// The owner's lock file (default `data_dir/tern.lock`); it holds the owner's process id.
    pub lock_path: PathBuf,
}

/// What a process that opens the store may do to the blob directory (security issue 17).
///
/// Only one process may create, rename or delete blob files: a file renamed into place is
/// referenced only once its batch commits, so any other process that judged it an orphan (at
/// open, or after releasing a blob of the same content) would delete acknowledged mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreRole {
    /// The one process that owns the data directory (`tern serve`). [`crate::Store::open`] takes
    /// an exclusive lock (`flock`) on [`StoreOptions::lock_path`] and holds it until the store's
    /// writer stops; a second owner fails with [`crate::StoreError::Locked`]. Only under that
    /// lock does the store remove crash leftovers at open, write large blobs as files, and
    /// unlink the files of blobs whose last reference it released.
    Owner,
    /// A process beside the owner (the admin commands), or instead of it: opens the database
    /// and takes no lock, so it works whether or not a server runs. It never creates, renames
    /// or deletes anything in the blob directory: new blobs are stored inline whatever their
    /// size, and the files of blobs it releases are left to the owner, which unlinks them after
    /// its next batch (or at its next open).
    Client,
}

impl StoreOptions {
    /// Default inline blob threshold: 64 KiB.
    pub const DEFAULT_INLINE_BLOB_MAX: usize = 64 * 1024;
    /// Default group commit window: 2 ms.
    pub const DEFAULT_GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(2);

    /// Defaults for a data directory: `tern.db`, `blobs/` and `tern.lock` inside it, opened as
    /// its owner.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let dir = data_dir.into();
        Self {
            db_path: dir.join("tern.db"),
            blob_dir: dir.join("blobs"),
            inline_blob_max: Self::DEFAULT_INLINE_BLOB_MAX,
            group_commit_window: Self::DEFAULT_GROUP_COMMIT_WINDOW,
            role: StoreRole::Owner,
            lock_path: dir.join("tern.lock"),
        }
    }
}

/// Counters of the group-commit writer (cheap to read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Successful COMMITs.
    pub commits: u64,
    /// Write jobs (mutating API calls) processed, successful or not.
    pub jobs: u64,
    /// WAL checkpoints completed by the checkpoint thread.
    pub checkpoints: u64,
}

/// Id of a hosted domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(pub i64);

/// Id of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

/// Id of a mailbox; stable across renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId(pub i64);

/// A message UID (RFC 9051 §2.3.1.1): non-zero, strictly increasing per mailbox, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(pub NonZeroU32);

impl Uid {
    /// `None` for 0.
    pub fn new(v: u32) -> Option<Uid> {
        NonZeroU32::new(v).map(Uid)
    }

    /// The numeric value.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A mod-sequence (RFC 7162 §3.1): per mailbox, never goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModSeq(pub u64);

/// UIDVALIDITY of a mailbox: unique and increasing across the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UidValidity(pub u32);

/// A hosted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Id.
    pub id: DomainId,
    /// Lowercase domain name (A-labels).
    pub name: String,
    /// Address receiving mail for unknown local parts, if any.
    pub catch_all: Option<String>,
}

/// An account (a mailbox owner that can log in).
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub id: AccountId,
    /// `local@domain`, normalised by the caller, domain lowercase.
    pub address: String,
    /// The account's domain.
    pub domain_id: DomainId,
    /// Display name.
    pub display_name: Option<String>,
    /// PHC string of the password hash (argon2id).
    pub password_hash: String,
    /// Stored SCRAM-SHA-256 keys, if any.
    pub scram_sha256: Option<String>,
    /// Quota in bytes, `None` for unlimited.
    pub quota_bytes: Option<u64>,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Disabled by an admin: every login is refused (mail is still delivered).
    pub disabled: bool,
    /// The [`CredentialEpoch`] of the last change of password or disabled state (removal
    /// bumps the epoch too): a session that logged in at another generation must end.
    pub credential_generation: CredentialEpoch,
}

/// Value of the store-wide counter bumped by every credential change (password, disable,
/// enable, removal of an account); see [`crate::Store::credential_epoch`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CredentialEpoch(pub i64);

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("address", &self.address)
            .field("domain_id", &self.domain_id)
            .field("display_name", &self.display_name)
            .field("password_hash", &"[redacted]")
            .field(
                "scram_sha256",
                &self.scram_sha256.as_ref().map(|_| "[redacted]"),
            )
            .field("quota_bytes", &self.quota_bytes)
            .field("created_at", &self.created_at)
            .field("disabled", &self.disabled)
            .field("credential_generation", &self.credential_generation)
            .finish()
    }
}

/// Input of [`crate::Store::add_account`].
#[derive(Clone, Default)]
pub struct NewAccount {
    /// `local@domain`, already validated and normalised; the domain must exist.
    pub address: String,
    /// Display name.
    pub display_name: Option<String>,
    /// PHC string of the password hash.
    pub password_hash: String,
    /// Stored SCRAM-SHA-256 keys.
    pub scram_sha256: Option<String>,
    /// Quota in bytes.
    pub quota_bytes: Option<u64>,
}

impl fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccount")
            .field("address", &self.address)
            .field("display_name", &self.display_name)
            .field("password_hash", &"[redacted]")
            .field("quota_bytes", &self.quota_bytes)
            .finish_non_exhaustive()
    }
}

/// An alias: mail to `source` is delivered to `target`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alias {
    /// Address the alias answers to (`local@domain`).
    pub source: String,
    /// Address mail is forwarded to.
    pub target: String,
}

/// RFC 6154 special-use attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpecialUse {
    /// `\All`
    All,
    /// `\Archive`
    Archive,
    /// `\Drafts`
    Drafts,
    /// `\Flagged`
    Flagged,
    /// `\Junk`
    Junk,
    /// `\Sent`
    Sent,
    /// `\Trash`
    Trash,
}

impl SpecialUse {
    /// Every value, in declaration order.
    pub const ALL: [SpecialUse; 7] = [
        SpecialUse::All,
        SpecialUse::Archive,
        SpecialUse::Drafts,
        SpecialUse::Flagged,
        SpecialUse::Junk,
        SpecialUse::Sent,
        SpecialUse::Trash,
    ];

    /// The attribute as written on the wire, e.g. `\Sent`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    /// Parses `\Sent` etc. (case-insensitive).
    pub fn parse(s: &str) -> Option<SpecialUse> {
        Self::ALL
            .into_iter()
            .find(|u| u.as_str().eq_ignore_ascii_case(s))
    }
}

/// A mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Id.
    pub id: MailboxId,
    /// Owner.
    pub account_id: AccountId,
    /// UTF-8 name, hierarchy separator `/`, `INBOX` canonical uppercase.
    pub name: String,
    /// UIDVALIDITY.
    pub uidvalidity: UidValidity,
    /// The UID the next message will get.
    pub uidnext: u32,
    /// Highest mod-sequence of anything in the mailbox.
    pub highestmodseq: ModSeq,
    /// Special-use attribute.
    pub special_use: Option<SpecialUse>,
    /// Whether the mailbox is subscribed.
    pub subscribed: bool,
}

/// STATUS-style counters of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStatus {
    /// Number of messages.
    pub messages: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// Messages with `\Deleted`.
    pub deleted: u32,
    /// Sum of message sizes.
    pub size_bytes: u64,
    /// UIDNEXT.
    pub uidnext: u32,
    /// UIDVALIDITY.
    pub uidvalidity: UidValidity,
    /// HIGHESTMODSEQ.
    pub highestmodseq: ModSeq,
}

/// IMAP4rev1 `\Recent` (RFC 3501 §2.3.2): the UIDs one session claimed as recent, those in
/// `after + 1 ..= through` (none when equal). Each UID is claimed at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentClaim {
    /// The highest UID claimed before (by any session).
    pub after: u32,
    /// The highest UID claimed now (`uidnext - 1`, or `after` if nothing was new).
    pub through: u32,
}

/// IMAP4rev1 `\Recent` of a mailbox without claiming anything (EXAMINE, STATUS RECENT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentStatus {
    /// The highest UID some session has claimed: messages above it are recent.
    pub claimed: u32,
    /// Messages above `claimed`.
    pub unclaimed: u32,
}

/// The IMAP system flags as a bit set (RFC 9051 §2.3.2). `\Recent` is session state, not stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SystemFlags(u8);

impl SystemFlags {
    /// `\Seen`
    pub const SEEN: SystemFlags = SystemFlags(1);
    /// `\Answered`
    pub const ANSWERED: SystemFlags = SystemFlags(2);
    /// `\Flagged`
    pub const FLAGGED: SystemFlags = SystemFlags(4);
    /// `\Deleted`
    pub const DELETED: SystemFlags = SystemFlags(8);
    /// `\Draft`
    pub const DRAFT: SystemFlags = SystemFlags(16);
    const NAMED: [(SystemFlags, &'static str); 5] = [
        (Self::SEEN, "\\Seen"),
        (Self::ANSWERED, "\\Answered"),
        (Self::FLAGGED, "\\Flagged"),
        (Self::DELETED, "\\Deleted"),
        (Self::DRAFT, "\\Draft"),
    ];

    /// No flag.
    pub const fn empty() -> Self {
        SystemFlags(0)
    }

    /// Every flag.
    pub const fn all() -> Self {
        SystemFlags(31)
    }

    /// Raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// From raw bits, dropping unknown ones.
    pub const fn from_bits_truncate(bits: u8) -> Self {
        SystemFlags(bits & 31)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: SystemFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: SystemFlags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: SystemFlags) {
        self.0 &= !other.0;
    }

    /// The wire names of the set flags, e.g. `["\\Seen", "\\Deleted"]`.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMED
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }

    /// Parses one system flag name (case-insensitive), e.g. `\Seen`.
    pub fn parse(name: &str) -> Option<SystemFlags> {
        Self::NAMED
            .into_iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(f, _)| f)
    }
}

impl fmt::Debug for SystemFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl BitOr for SystemFlags {
    type Output = SystemFlags;
    fn bitor(self, rhs: SystemFlags) -> SystemFlags {
        SystemFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for SystemFlags {
    fn bitor_assign(&mut self, rhs: SystemFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for SystemFlags {
    type Output = SystemFlags;
    fn bitand(self, rhs: SystemFlags) -> SystemFlags {
        SystemFlags(self.0 & rhs.0)
    }
}

impl Not for SystemFlags {
    type Output = SystemFlags;
    fn not(self) -> SystemFlags {
        SystemFlags(!self.0 & 31)
    }
}

/// The flags of a message: system flags plus keywords.
///
/// Keywords are atoms (RFC 9051 `flag-keyword`): non-empty, no spaces, controls or `\`-prefix; the store
/// rejects others with [`crate::StoreError::Invalid`]. They are compared byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Flags {
    /// System flags.
    pub system: SystemFlags,
    /// Keywords.
    pub keywords: BTreeSet<String>,
}

impl Flags {
    /// No flags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only the given system flags.
    pub fn from_system(system: SystemFlags) -> Self {
        Flags {
            system,
            keywords: BTreeSet::new(),
        }
    }

    /// Adds a keyword (builder style).
    pub fn with_keyword(mut self, keyword: impl Into<String>) -> Self {
        self.keywords.insert(keyword.into());
        self
    }

    /// The result of applying `op` with `arg` to these flags.
    pub fn apply(&self, op: FlagOp, arg: &Flags) -> Flags {
        match op {
            FlagOp::Replace => arg.clone(),
            FlagOp::Add => Flags {
                system: self.system | arg.system,
                keywords: self.keywords.union(&arg.keywords).cloned().collect(),
            },
            FlagOp::Remove => Flags {
                system: self.system & !arg.system,
                keywords: self.keywords.difference(&arg.keywords).cloned().collect(),
            },
        }
    }
}

/// How [`crate::Store::store_flags`] combines the given flags with a message's flags (IMAP `+FLAGS`,
/// `-FLAGS`, `FLAGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// Set the given flags, keep the others.
    Add,
    /// Clear the given flags, keep the others.
    Remove,
    /// Set exactly the given flags.
    Replace,
}

/// The cached parse of one message, computed once when the message is stored so that FETCH
/// ENVELOPE/BODYSTRUCTURE and header SEARCH need not read and parse the blob.
///
/// The store keeps the three parts as opaque byte strings: their encoding belongs to the IMAP
/// crate, which computes them (and, for messages stored without them, fills them in later with
/// [`crate::Store::fill_message_meta`]). `None` means "not cached": readers fall back to the blob.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageMeta {
    /// Cached ENVELOPE.
    pub envelope: Option<Vec<u8>>,
    /// Cached BODYSTRUCTURE.
    pub body_structure: Option<Vec<u8>>,
    /// Cached top-level header block.
    pub headers: Option<Vec<u8>>,
}

impl MessageMeta {
    /// Whether no part is cached.
    pub fn is_empty(&self) -> bool {
        self.envelope.is_none() && self.body_structure.is_none() && self.headers.is_none()
    }
}

/// Which parts of [`MessageMeta`] [`crate::Store::message_meta`] reads; the others come back
/// `None` without being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetaParts {
    /// [`MessageMeta::envelope`].
    pub envelope: bool,
    /// [`MessageMeta::body_structure`].
    pub body_structure: bool,
    /// [`MessageMeta::headers`].
    pub headers: bool,
}

impl MetaParts {
    /// Every part.
    pub const ALL: MetaParts = MetaParts {
        envelope: true,
        body_structure: true,
        headers: true,
    };

    /// Whether no part is asked for.
    pub fn is_empty(self) -> bool {
        !(self.envelope || self.body_structure || self.headers)
    }
}

/// A message row: one message in one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// Mailbox.
    pub mailbox: MailboxId,
    /// UID.
    pub uid: Uid,
    /// Mod-sequence of the last change.
    pub modseq: ModSeq,
    /// Flags.
    pub flags: Flags,
    /// INTERNALDATE, unix seconds.
    pub internal_date: i64,
    /// RFC822.SIZE.
    pub size: u64,
    /// Content (shared between copies).
    pub blob: BlobId,
}

/// The flags of a message row and their mod-sequence ([`crate::Store::message_flags_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFlags {
    /// UID.
    pub uid: Uid,
    /// Mod-sequence of the last change.
    pub modseq: ModSeq,
    /// Flags.
    pub flags: Flags,
}

/// Input of [`crate::Store::deliver`]: one message for one or more mailboxes.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The raw message.
    pub bytes: Bytes,
    /// INTERNALDATE, unix seconds.
    pub internal_date: i64,
    /// Cached parse results (stored with every target's row; empty stores none).
    pub meta: MessageMeta,
    /// Target mailboxes with the initial flags of each copy.
    pub targets: Vec<(MailboxId, Flags)>,
    /// Remote recipients: enqueued for outbound delivery in the same transaction as the local copies.
    pub queue: Option<crate::queue::NewQueued>,
}

/// One stored copy of a delivered message (what APPENDUID / COPYUID need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Mailbox.
    pub mailbox: MailboxId,
    /// New UID.
    pub uid: Uid,
    /// Its mod-sequence.
    pub modseq: ModSeq,
    /// UIDVALIDITY of the mailbox.
    pub uidvalidity: UidValidity,
}

/// Result of [`crate::Store::store_flags`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagUpdate {
    /// Messages whose flags changed, with the new flags and mod-sequence (unchanged messages are absent).
    pub updated: Vec<(Uid, Flags, ModSeq)>,
    /// Messages left alone because their mod-sequence exceeded UNCHANGEDSINCE (RFC 7162 §3.2 MODIFIED).
    pub failed_unchanged_since: Vec<Uid>,
}

/// Result of [`crate::Store::changes_since`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Messages created or changed after the given mod-sequence, in UID order.
    pub changed: Vec<MessageRecord>,
    /// UIDs expunged after the given mod-sequence, ascending (QRESYNC VANISHED).
    pub vanished: Vec<Uid>,
}

/// What the store knows about one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// Size in bytes.
    pub size: u64,
    /// Number of message rows referencing it.
    pub refcount: u64,
    /// Whether the bytes live inside the database (else in a file under the blob directory).
    pub inline: bool,
}
