//! Command handlers, one file per family, plus the conversions they share.

mod append;
mod auth;
mod cache;
mod copy;
mod fetch;
mod fetch_items;
mod learn;
mod mailbox;
mod search;
mod select;
mod store;

use tern_proto::imap::{Code, Flag, FlagFetch, FlagPerm, Mailbox as WireMailbox};
use tern_store::{AccountId, Flags, Mailbox, Store, SystemFlags, UidValidity};

use crate::error::CmdError;
use crate::names;

/// The store's flags as sent in FETCH, and `\Recent` if the message is recent in this
/// session (IMAP4rev1 only, RFC 3501 §2.3.2: the caller knows).
pub(crate) fn flags_to_wire(flags: &Flags, recent: bool) -> Vec<FlagFetch> {
    // Exact, so that a message without flags (the common case in FETCH 1:* FLAGS) costs no
    // allocation.
    let system = flags.system.bits().count_ones() as usize + usize::from(recent);
    let mut out = Vec::with_capacity(system + flags.keywords.len());
    if recent {
        out.push(FlagFetch::Recent);
    }
    for (bit, flag) in [
        (SystemFlags::SEEN, Flag::Seen),
        (SystemFlags::ANSWERED, Flag::Answered),
        (SystemFlags::FLAGGED, Flag::Flagged),
        (SystemFlags::DELETED, Flag::Deleted),
        (SystemFlags::DRAFT, Flag::Draft),
    ] {
        if flags.system.contains(bit) {
            out.push(FlagFetch::Flag(flag));
        }
    }
    out.extend(
        flags
            .keywords
            .iter()
            .map(|k| FlagFetch::Flag(Flag::Keyword(k.clone()))),
    );
    out
}

/// Flags from a STORE or APPEND. RFC 9051 §2.3.2: `\Recent` and unknown system flags cannot
/// be set by clients.
pub(crate) fn flags_from_wire(flags: &[Flag]) -> Result<Flags, CmdError> {
    let mut out = Flags::new();
    for flag in flags {
        match flag {
            Flag::Seen => out.system.insert(SystemFlags::SEEN),
            Flag::Answered => out.system.insert(SystemFlags::ANSWERED),
            Flag::Flagged => out.system.insert(SystemFlags::FLAGGED),
            Flag::Deleted => out.system.insert(SystemFlags::DELETED),
            Flag::Draft => out.system.insert(SystemFlags::DRAFT),
            Flag::Keyword(k) => {
                out.keywords.insert(k.clone());
            }
            Flag::Extension(name) if name.eq_ignore_ascii_case("Recent") => {}
            Flag::Extension(name) => {
                return Err(CmdError::bad(format!("Unknown system flag \\{name}")));
            }
        }
    }
    Ok(out)
}

/// The system flags the FLAGS response lists (RFC 9051 §7.3.5).
pub(crate) fn system_flags() -> Vec<Flag> {
    vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ]
}

/// PERMANENTFLAGS: all system flags and any keyword (`\*`).
pub(crate) fn permanent_flags() -> Vec<FlagPerm> {
    let mut flags: Vec<FlagPerm> = system_flags().into_iter().map(FlagPerm::Flag).collect();
    flags.push(FlagPerm::Any);
    flags
}

/// A mailbox of the logged-in account; the only way handlers find mailboxes.
pub(crate) async fn lookup(
    store: &Store,
    account: AccountId,
    name: &WireMailbox,
) -> Result<Mailbox, CmdError> {
    names::validate(name.as_str()).map_err(|why| CmdError::no(Code::NonExistent, why))?;
    store
        .mailbox_by_name(account, name.as_str())
        .await?
        .ok_or_else(CmdError::nonexistent)
}

/// The destination of APPEND, COPY or MOVE. RFC 9051 §6.3.12, §6.4.7, §6.4.8: TRYCREATE only
/// when the mailbox does not exist and a CREATE could make it; a name CREATE refuses
/// (another namespace, `..`, control characters) gets the same `NO [CANNOT]` CREATE gives.
pub(crate) async fn lookup_destination(
    store: &Store,
    account: AccountId,
    name: &WireMailbox,
) -> Result<Mailbox, CmdError> {
    names::validate(name.as_str()).map_err(|why| CmdError::no(Code::Cannot, why))?;
    store
        .mailbox_by_name(account, name.as_str())
        .await?
        .ok_or_else(|| CmdError::no(Code::TryCreate, "No such mailbox"))
}

/// The wire form of a UIDVALIDITY (never zero in the store; 1 if it were).
pub(crate) fn wire_uidvalidity(v: UidValidity) -> tern_proto::imap::UidValidity {
    tern_proto::imap::UidValidity(
        std::num::NonZeroU32::new(v.0).unwrap_or(std::num::NonZeroU32::MIN),
    )
}

/// The wire form of a UID.
pub(crate) fn wire_uid(uid: tern_store::Uid) -> tern_proto::imap::Uid {
    tern_proto::imap::Uid(uid.0)
}

/// A sequence number (always ≥ 1 by construction in the view).
pub(crate) fn wire_seq(seq: u32) -> tern_proto::imap::SeqNum {
    tern_proto::imap::SeqNum(std::num::NonZeroU32::new(seq).unwrap_or(std::num::NonZeroU32::MIN))
}
