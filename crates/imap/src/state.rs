//! Session states (RFC 9051 §3) and what ENABLE switched on.

use tern_store::AccountId;

use crate::selected::SelectedMailbox;

/// RFC 9051 §3: Not Authenticated → Authenticated ⇄ Selected → Logout (the loop ends).
pub(crate) enum State {
    NotAuthenticated,
    Authenticated(User),
    Selected(User, Box<SelectedMailbox>),
}

/// The logged-in account; every mailbox lookup goes through `account`.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) account: AccountId,
}

impl State {
    pub(crate) fn user(&self) -> Option<&User> {
        match self {
            State::NotAuthenticated => None,
            State::Authenticated(user) | State::Selected(user, _) => Some(user),
        }
    }

    pub(crate) fn selected_mut(&mut self) -> Option<&mut SelectedMailbox> {
        match self {
            State::Selected(_, mailbox) => Some(mailbox),
            _ => None,
        }
    }
}

/// Extensions the client turned on (RFC 5161 ENABLE, or implicitly for CONDSTORE).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Enabled {
    /// RFC 7162 CONDSTORE: MODSEQ in untagged FETCH responses.
    pub(crate) condstore: bool,
    /// RFC 7162 QRESYNC: VANISHED instead of EXPUNGE.
    pub(crate) qresync: bool,
    /// RFC 6855 UTF8=ACCEPT.
    pub(crate) utf8: bool,
    /// RFC 9051 §6.3.1 `ENABLE IMAP4rev2`: no \Recent, ESEARCH replies to SEARCH.
    pub(crate) rev2: bool,
}
