//! The store stage's arithmetic: which mailboxes get a copy and what each recipient is told.

use std::collections::{HashMap, HashSet};

use tern_common::Address;
use tern_store::{AccountId, Flags, MailboxId, NewQueuedRecipient, SpecialUse, Store, StoreError};

use crate::types::{InboundRecipient, RecipientStatus};

/// Reason given to a recipient that resolves to no account at all.
pub(crate) const NO_MAILBOX: &str = "no mailbox";
/// Reason given to a recipient one of whose accounts has no INBOX (the account was removed after RCPT).
pub(crate) const MAILBOX_UNAVAILABLE: &str = "mailbox temporarily unavailable";

/// The INBOX of every distinct account of `recipients`, `None` for an account that has none (INBOX cannot
/// be deleted, so the account itself is gone). Accounts in `junk` get their `\Junk` special-use mailbox
/// (RFC 6154) instead, or INBOX if they have none: a message is never lost for want of a Junk folder.
pub(crate) async fn inboxes(
    store: &Store,
    recipients: &[InboundRecipient],
    junk: &HashSet<AccountId>,
) -> Result<HashMap<AccountId, Option<MailboxId>>, StoreError> {
    let mut found = HashMap::new();
    for account in recipients.iter().flat_map(|r| &r.accounts) {
        if !found.contains_key(account) {
            let junk_box = if junk.contains(account) {
                store
                    .mailboxes(*account)
                    .await?
                    .into_iter()
                    .find(|m| m.special_use == Some(SpecialUse::Junk))
            } else {
                None
            };
            let mailbox = match junk_box {
                Some(m) => Some(m),
                None => store.mailbox_by_name(*account, "INBOX").await?,
            };
            found.insert(*account, mailbox.map(|m| m.id));
        }
    }
    Ok(found)
}

/// What to store and what to answer, before the store transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// One entry per distinct mailbox, in first-recipient order.
    pub(crate) targets: Vec<(MailboxId, Flags)>,
    /// Distinct remote addresses to enqueue (by normalised address), in first-recipient order,
    /// with the RFC 3461 parameters of the recipient that first named them.
    pub(crate) remote: Vec<NewQueuedRecipient>,
    /// One status per recipient, in RCPT order; `Delivered` holds once the transaction commits.
    pub(crate) statuses: Vec<RecipientStatus>,
}

/// Plans the copies: a recipient is `Delivered` only when every one of its accounts gets the message, and a
/// failed recipient adds no copy of its own. So a sender retrying a `TempFail` recipient never creates a
/// duplicate for an account that recipient shares with nobody else in this message. An account reached
/// through several recipients (two addresses, an alias, `user+tag`) gets one copy.
pub(crate) fn plan(
    recipients: &[InboundRecipient],
    inboxes: &HashMap<AccountId, Option<MailboxId>>,
) -> Plan {
    let mut targets = Vec::new();
    let mut seen = HashSet::new();
    let mut remote = Vec::new();
    let mut seen_remote = HashSet::new();
    let mut statuses = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        if recipient.accounts.is_empty() && recipient.remote.is_empty() {
            // SMTP resolved every recipient at RCPT time; an empty list is a caller bug, not a retry case.
            statuses.push(RecipientStatus::PermFail(NO_MAILBOX.to_owned()));
            continue;
        }
        let mailboxes: Option<Vec<MailboxId>> = recipient
            .accounts
            .iter()
            .map(|a| inboxes.get(a).copied().flatten())
            .collect();
        match mailboxes {
            Some(mailboxes) => {
                for mailbox in mailboxes {
                    if seen.insert(mailbox) {
                        targets.push((mailbox, Flags::new()));
                    }
                }
                for address in &recipient.remote {
                    if seen_remote.insert(address.normalized()) {
                        remote.push(queued_recipient(recipient, address));
                    }
                }
                statuses.push(RecipientStatus::Delivered);
            }
            None => statuses.push(RecipientStatus::TempFail(MAILBOX_UNAVAILABLE.to_owned())),
        }
    }
    Plan {
        targets,
        remote,
        statuses,
    }
}

/// The queue row of one remote address of `recipient`. An alias's target is asked for no
/// success DSN of its own when the alias expanded (RFC 3461 §5.2.7.3: the "expanded" DSN was
/// sent here), and it keeps the original recipient: the client's ORCPT, else the alias address
/// (§5.2.1 allows supplying one; the DSN then names the address the sender used).
fn queued_recipient(recipient: &InboundRecipient, address: &Address) -> NewQueuedRecipient {
    let notify = if recipient.is_expansion() {
        recipient.notify.without_success()
    } else {
        recipient.notify
    };
    let alias = recipient.address.normalized() != address.normalized();
    let own = recipient.address.to_string();
    let orcpt = match &recipient.orcpt {
        Some(orcpt) => Some(orcpt.clone()),
        // RFC 3461 §4.2: an `rfc822` address is ASCII.
        None if alias && own.is_ascii() => Some(format!("rfc822;{own}")),
        None => None,
    };
    NewQueuedRecipient {
        address: address.to_string(),
        orcpt,
        notify,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt(address: &str, accounts: &[i64]) -> InboundRecipient {
        InboundRecipient {
            address: address.parse::<Address>().unwrap(),
            accounts: accounts.iter().map(|&a| AccountId(a)).collect(),
            remote: Vec::new(),
            notify: Default::default(),
            orcpt: None,
        }
    }

    fn inboxes(pairs: &[(i64, Option<i64>)]) -> HashMap<AccountId, Option<MailboxId>> {
        pairs
            .iter()
            .map(|&(a, m)| (AccountId(a), m.map(MailboxId)))
            .collect()
    }

    fn mailboxes(plan: &Plan) -> Vec<i64> {
        plan.targets.iter().map(|(m, _)| m.0).collect()
    }

    #[test]
    fn an_account_reached_twice_gets_one_copy() {
        let p = plan(
            &[
                rcpt("a@x.test", &[1]),
                rcpt("a+tag@x.test", &[1]),
                rcpt("all@x.test", &[2, 1]),
            ],
            &inboxes(&[(1, Some(10)), (2, Some(20))]),
        );
        assert_eq!(mailboxes(&p), [10, 20]);
        assert_eq!(p.statuses, vec![RecipientStatus::Delivered; 3]);
    }

    #[test]
    fn a_recipient_with_a_missing_inbox_fails_alone_and_adds_no_copy() {
        let p = plan(
            &[
                rcpt("gone@x.test", &[2]),
                rcpt("alias@x.test", &[3, 2]),
                rcpt("a@x.test", &[1]),
            ],
            &inboxes(&[(1, Some(10)), (2, None), (3, Some(30))]),
        );
        // alias@ is temporarily failed as a whole, so account 3 gets no copy now and one on the retry.
        assert_eq!(mailboxes(&p), [10]);
        let temp = RecipientStatus::TempFail(MAILBOX_UNAVAILABLE.to_owned());
        assert_eq!(
            p.statuses,
            vec![temp.clone(), temp, RecipientStatus::Delivered]
        );
    }

    #[test]
    fn a_recipient_without_accounts_fails_permanently() {
        let p = plan(&[rcpt("nobody@x.test", &[])], &inboxes(&[]));
        assert!(p.targets.is_empty());
        assert_eq!(
            p.statuses,
            vec![RecipientStatus::PermFail(NO_MAILBOX.to_owned())]
        );
    }

    #[test]
    fn remote_addresses_are_queued_once_and_count_as_delivered() {
        let mut forward = rcpt("list@x.test", &[1]);
        forward.remote = vec!["far@y.test".parse().unwrap(), "FAR@Y.TEST".parse().unwrap()];
        let mut submitted = rcpt("far@y.test", &[]);
        submitted.remote = vec!["far@y.test".parse().unwrap()];
        let p = plan(&[forward, submitted], &inboxes(&[(1, Some(10))]));
        assert_eq!(mailboxes(&p), [10]);
        assert_eq!(p.remote.len(), 1);
        assert_eq!(p.statuses, vec![RecipientStatus::Delivered; 2]);
    }

    #[test]
    fn an_expanded_alias_passes_no_success_request_on_and_names_itself_as_original() {
        use tern_store::Notify;
        let mut forward = rcpt("list@x.test", &[1]);
        forward.remote = vec!["far@y.test".parse().unwrap()];
        forward.notify = Notify(Notify::SUCCESS);
        let mut submitted = rcpt("near@y.test", &[]);
        submitted.remote = vec!["near@y.test".parse().unwrap()];
        submitted.notify = Notify(Notify::SUCCESS | Notify::FAILURE);
        submitted.orcpt = Some("rfc822;Near@Y.test".into());
        let p = plan(&[forward, submitted], &inboxes(&[(1, Some(10))]));
        // RFC 3461 §5.2.7.3: SUCCESS alone becomes NEVER, not the defaults.
        assert_eq!(p.remote[0].notify, Notify(Notify::NEVER));
        assert_eq!(p.remote[0].orcpt.as_deref(), Some("rfc822;list@x.test"));
        assert_eq!(
            p.remote[1].notify,
            Notify(Notify::SUCCESS | Notify::FAILURE)
        );
        assert_eq!(p.remote[1].orcpt.as_deref(), Some("rfc822;Near@Y.test"));
    }
}
