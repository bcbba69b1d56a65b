//! The store stage's arithmetic: which mailboxes get a copy and what each recipient is told.

use std::collections::{HashMap, HashSet};

use tern_common::Address;
use tern_store::{AccountId, Flags, MailboxId, SpecialUse, Store, StoreError};

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
    /// Distinct remote addresses to enqueue (by normalised address), in first-recipient order.
    pub(crate) remote: Vec<Address>,
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
                        remote.push(address.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt(address: &str, accounts: &[i64]) -> InboundRecipient {
        InboundRecipient {
            address: address.parse::<Address>().unwrap(),
            accounts: accounts.iter().map(|&a| AccountId(a)).collect(),
            remote: Vec::new(),
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
}
