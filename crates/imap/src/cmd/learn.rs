//! Learn-on-move: a user moving (or copying) mail into Junk says "this is spam", moving it
//! out of Junk to anything but Trash says "this is not". The classifier learns from that in
//! the background, after the store change committed, so the IMAP reply never waits for it and
//! a training failure never fails the move.

use tern_filter::{Filter, SpamClass};
use tern_store::{AccountId, Mailbox, SpecialUse, Store, Uid};
use tracing::warn;

/// What moving from a mailbox with special-use `source` into `dest` teaches, if anything.
fn lesson(source: Option<SpecialUse>, dest: Option<SpecialUse>) -> Option<SpamClass> {
    match (source, dest) {
        (Some(SpecialUse::Junk), Some(SpecialUse::Junk)) => None,
        (_, Some(SpecialUse::Junk)) => Some(SpamClass::Spam),
        (Some(SpecialUse::Junk), Some(SpecialUse::Trash)) => None,
        (Some(SpecialUse::Junk), _) => Some(SpamClass::Ham),
        _ => None,
    }
}

/// Trains `filter` on the messages now at `uids` in `dest`, if the transfer teaches anything.
pub(crate) fn on_transfer(
    filter: &Filter,
    store: &Store,
    account: AccountId,
    source: Option<SpecialUse>,
    dest: &Mailbox,
    uids: Vec<Uid>,
) {
    let Some(class) = lesson(source, dest.special_use) else {
        return;
    };
    let (filter, store, mailbox) = (filter.clone(), store.clone(), dest.id);
    tokio::spawn(async move {
        for uid in uids {
            let record = match store.message(mailbox, uid).await {
                Ok(Some(record)) => record,
                // Already moved on or expunged by another session: nothing to learn.
                Ok(None) => continue,
                Err(e) => {
                    warn!(error = %e, "learn-on-move: cannot read the message");
                    continue;
                }
            };
            let result = match store.read_blob(&record.blob).await {
                Ok(raw) => filter.learn(account, &raw, class).await.map(|_| ()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                warn!(error = %e, ?class, "learn-on-move: training failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_moves_into_or_out_of_junk_teach() {
        use SpecialUse::{Archive, Junk, Trash};
        assert_eq!(lesson(None, Some(Junk)), Some(SpamClass::Spam));
        assert_eq!(lesson(Some(Archive), Some(Junk)), Some(SpamClass::Spam));
        assert_eq!(lesson(Some(Junk), None), Some(SpamClass::Ham));
        assert_eq!(lesson(Some(Junk), Some(Archive)), Some(SpamClass::Ham));
        assert_eq!(lesson(Some(Junk), Some(Trash)), None);
        assert_eq!(lesson(Some(Junk), Some(Junk)), None);
        assert_eq!(lesson(None, Some(Trash)), None);
        assert_eq!(lesson(None, None), None);
    }
}
