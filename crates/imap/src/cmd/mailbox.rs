//! Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE, LIST (+LIST-EXTENDED,
//! LIST-STATUS, SPECIAL-USE), LSUB, STATUS (RFC 9051 §6.3.4–§6.3.11).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use tern_proto::imap::{
    Code, Data, ListCommand, ListData, ListExtendedItem, ListReturnOption, ListSelectOption,
    Mailbox as WireMailbox, MailboxAttribute, ModSeq as WireModSeq, Response, StatusItem,
    StatusValue, Uid as WireUid,
};
use tern_store::{Mailbox, SpecialUse, StoreError};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{lookup, wire_uidvalidity};
use crate::error::CmdError;
use crate::names::{self, DELIMITER};
use crate::session::{CmdResult, Session, done};
use crate::state::State;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    fn account(&self) -> Result<tern_store::AccountId, CmdError> {
        self.state
            .user()
            .map(|u| u.account)
            .ok_or_else(|| CmdError::bad("Not authenticated"))
    }

    /// CREATE (RFC 9051 §6.3.4, RFC 6154 §3 USE): missing parents are created too.
    pub(crate) async fn create(
        &mut self,
        mailbox: &WireMailbox,
        special_use: &[MailboxAttribute],
    ) -> CmdResult {
        let account = self.account()?;
        // §6.3.4: a trailing delimiter only declares the intent to create children.
        let name = mailbox.as_str().trim_end_matches(DELIMITER);
        names::validate(name).map_err(|why| CmdError::no(Code::Cannot, why))?;
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(CmdError::no(Code::AlreadyExists, "INBOX always exists"));
        }
        let special = match special_use {
            [] => None,
            [attr] => Some(
                SpecialUse::parse(&format!("\\{}", attr.name())).ok_or_else(|| {
                    CmdError::No(
                        Some(Code::Other("USEATTR".into(), None)),
                        "Unsupported special-use attribute".into(),
                    )
                })?,
            ),
            _ => {
                return Err(CmdError::No(
                    Some(Code::Other("USEATTR".into(), None)),
                    "One special-use attribute per mailbox".into(),
                ));
            }
        };
        self.ensure_room(account, name, true).await?;
        let store = &self.ctx.store;
        for parent in names::parents(name) {
            match store.create_mailbox(account, parent, None).await {
                Ok(_) | Err(StoreError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
        }
        store.create_mailbox(account, name, special).await?;
        done("CREATE completed")
    }

    /// DELETE (RFC 9051 §6.3.5): never INBOX; children stay.
    pub(crate) async fn delete(&mut self, mailbox: &WireMailbox) -> CmdResult {
        let account = self.account()?;
        if mailbox.is_inbox() {
            return Err(CmdError::no(Code::Cannot, "INBOX cannot be deleted"));
        }
        let found = lookup(&self.ctx.store, account, mailbox).await?;
        self.ctx.store.delete_mailbox(found.id).await?;
        if let State::Selected(user, selected) = &self.state
            && selected.id == found.id
        {
            self.state = State::Authenticated(user.clone());
        }
        done("DELETE completed")
    }

    /// RENAME (RFC 9051 §6.3.6): children follow; renaming INBOX moves its messages into a
    /// new mailbox and leaves INBOX empty.
    pub(crate) async fn rename(&mut self, from: &WireMailbox, to: &WireMailbox) -> CmdResult {
        let account = self.account()?;
        let target = to.as_str().trim_end_matches(DELIMITER);
        names::validate(target).map_err(|why| CmdError::no(Code::Cannot, why))?;
        if target.eq_ignore_ascii_case("INBOX") {
            return Err(CmdError::no(Code::AlreadyExists, "INBOX already exists"));
        }
        let source = lookup(&self.ctx.store, account, from).await?;
        let store = &self.ctx.store;
        if store.mailbox_by_name(account, target).await?.is_some() {
            return Err(CmdError::no(Code::AlreadyExists, "Target mailbox exists"));
        }
        // Renaming INBOX creates the target; any rename creates missing parents.
        self.ensure_room(account, target, source.name == "INBOX")
            .await?;
        let store = &self.ctx.store;
        for parent in names::parents(target) {
            match store.create_mailbox(account, parent, None).await {
                Ok(_) | Err(StoreError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if source.name == "INBOX" {
            let created = store.create_mailbox(account, target, None).await?;
            let uids: Vec<_> = store
                .messages(source.id)
                .await?
                .into_iter()
                .map(|m| m.uid)
                .collect();
            if !uids.is_empty() {
                store.move_messages(source.id, &uids, created).await?;
            }
        } else {
            store.rename_mailbox(source.id, target).await?;
        }
        done("RENAME completed")
    }

    /// Refuses (RFC 5530 §3 `NO [LIMIT]`) a CREATE or RENAME that would take the account past
    /// `max_mailboxes` with the missing parents of `name` (and `name` itself if `creates`).
    /// Counted before the writes, so concurrent sessions of one account can overshoot by
    /// the few mailboxes they create at the same moment.
    async fn ensure_room(
        &self,
        account: tern_store::AccountId,
        name: &str,
        creates: bool,
    ) -> Result<(), CmdError> {
        let existing = self.ctx.store.mailboxes(account).await?;
        let known: BTreeSet<&str> = existing.iter().map(|m| m.name.as_str()).collect();
        let exists = |n: &str| n.eq_ignore_ascii_case("INBOX") || known.contains(n);
        let new = names::parents(name).filter(|p| !exists(p)).count() + usize::from(creates);
        if existing.len() + new > self.ctx.max_mailboxes {
            return Err(CmdError::no(
                Code::Limit,
                format!(
                    "Too many mailboxes (at most {} per account)",
                    self.ctx.max_mailboxes
                ),
            ));
        }
        Ok(())
    }

    /// SUBSCRIBE / UNSUBSCRIBE (RFC 9051 §6.3.7–§6.3.8). Subscriptions live on the mailbox
    /// row, so only existing mailboxes can be subscribed.
    pub(crate) async fn subscribe(&mut self, mailbox: &WireMailbox, on: bool) -> CmdResult {
        let account = self.account()?;
        let found = lookup(&self.ctx.store, account, mailbox).await?;
        self.ctx.store.set_subscribed(found.id, on).await?;
        done(if on {
            "SUBSCRIBE completed"
        } else {
            "UNSUBSCRIBE completed"
        })
    }

    /// LIST (RFC 9051 §6.3.9, RFC 5258, RFC 5819, RFC 6154).
    pub(crate) async fn list(&mut self, list: ListCommand) -> CmdResult {
        let account = self.account()?;
        let ListCommand {
            selection,
            reference,
            patterns,
            return_options,
        } = list;
        // §6.3.9: an empty pattern asks for the delimiter and the root.
        if patterns.iter().all(String::is_empty) {
            self.out.send(&Response::Data(Data::List(ListData {
                attributes: vec![MailboxAttribute::NoSelect],
                delimiter: Some(DELIMITER),
                mailbox: WireMailbox::new(""),
                extended: Vec::new(),
            })));
            return done("LIST completed");
        }
        let mailboxes = self.ctx.store.mailboxes(account).await?;
        let sel_subscribed = selection.contains(&ListSelectOption::Subscribed);
        let sel_special = selection.contains(&ListSelectOption::SpecialUse);
        let recursive = selection.contains(&ListSelectOption::RecursiveMatch);
        let ret_subscribed =
            sel_subscribed || return_options.contains(&ListReturnOption::Subscribed);
        let status_items: Option<Vec<StatusItem>> = return_options.iter().find_map(|o| match o {
            ListReturnOption::Status(items) => Some(items.clone()),
            _ => None,
        });
        let tree = Tree::new(&mailboxes);
        let mut matcher =
            names::Matcher::new(&reference, patterns.iter().map(String::as_str)).map_err(limit)?;
        let mut replies = Vec::new();
        for (name, node) in &tree.nodes {
            let matching = matcher.matches(name).map_err(limit)?;
            let Some(mb) = node.mailbox else {
                // A hierarchy level without a mailbox (its parent was deleted).
                if !sel_subscribed && !sel_special && matching {
                    replies.push((
                        name.clone(),
                        None,
                        vec![MailboxAttribute::NoSelect, MailboxAttribute::HasChildren],
                        Vec::new(),
                    ));
                }
                continue;
            };
            let mut extended = Vec::new();
            if sel_subscribed && !mb.subscribed {
                // RFC 5258 §3.5: RECURSIVEMATCH reports parents of matching subscribed children.
                if recursive && matching && tree.has_subscribed_child(name) {
                    extended.push(ListExtendedItem::ChildInfo(vec!["SUBSCRIBED".into()]));
                    replies.push((name.clone(), Some(mb), Vec::new(), extended));
                }
                continue;
            }
            if sel_special && mb.special_use.is_none() {
                continue;
            }
            if !matching {
                continue;
            }
            replies.push((name.clone(), Some(mb), Vec::new(), extended));
        }
        for (name, mb, mut attributes, extended) in replies {
            if let Some(mb) = mb {
                // CHILDREN (RFC 3348, RFC 5258 §4) are always reported.
                attributes.push(if tree.has_children(&name) {
                    MailboxAttribute::HasChildren
                } else {
                    MailboxAttribute::HasNoChildren
                });
                if ret_subscribed && mb.subscribed {
                    attributes.push(MailboxAttribute::Subscribed);
                }
                // RFC 6154 §2: special-use attributes are always listed.
                if let Some(special) = mb.special_use {
                    attributes.push(special_attribute(special));
                }
            }
            self.out.send(&Response::Data(Data::List(ListData {
                attributes,
                delimiter: Some(DELIMITER),
                mailbox: WireMailbox::new(name.clone()),
                extended,
            })));
            // RFC 5819 §2: STATUS follows the LIST of each selectable mailbox.
            if let (Some(items), Some(mb)) = (&status_items, mb) {
                self.send_status(mb, items).await?;
            }
        }
        done("LIST completed")
    }

    /// LSUB (RFC 3501 §6.3.9, IMAP4rev1 only).
    pub(crate) async fn lsub(&mut self, reference: &str, pattern: &str) -> CmdResult {
        let account = self.account()?;
        let mut matcher = names::Matcher::new(reference, [pattern]).map_err(limit)?;
        let mailboxes = self.ctx.store.mailboxes(account).await?;
        for mb in &mailboxes {
            if !mb.subscribed || !matcher.matches(&mb.name).map_err(limit)? {
                continue;
            }
            self.out.send(&Response::Data(Data::Lsub(ListData {
                attributes: Vec::new(),
                delimiter: Some(DELIMITER),
                mailbox: WireMailbox::new(mb.name.clone()),
                extended: Vec::new(),
            })));
        }
        done("LSUB completed")
    }

    /// STATUS (RFC 9051 §6.3.11, RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ).
    pub(crate) async fn status(
        &mut self,
        mailbox: &WireMailbox,
        items: &[StatusItem],
    ) -> CmdResult {
        let account = self.account()?;
        let found = lookup(&self.ctx.store, account, mailbox).await?;
        if items.contains(&StatusItem::HighestModSeq) {
            self.enabled.condstore = true;
        }
        self.send_status(&found, items).await?;
        done("STATUS completed")
    }

    async fn send_status(
        &mut self,
        mailbox: &Mailbox,
        items: &[StatusItem],
    ) -> Result<(), CmdError> {
        let status = self.ctx.store.mailbox_status(mailbox.id).await?;
        // RFC 3501 §6.3.10: the messages with \Recent, i.e. not yet claimed by a session.
        let recent = if items.contains(&StatusItem::Recent) {
            self.ctx.store.recent_status(mailbox.id).await?.unclaimed
        } else {
            0
        };
        let values = items
            .iter()
            .filter_map(|item| {
                Some(match item {
                    StatusItem::Messages => StatusValue::Messages(status.messages),
                    StatusItem::UidNext => {
                        StatusValue::UidNext(WireUid::new(status.uidnext.max(1))?)
                    }
                    StatusItem::UidValidity => {
                        StatusValue::UidValidity(wire_uidvalidity(status.uidvalidity))
                    }
                    StatusItem::Unseen => StatusValue::Unseen(status.unseen),
                    StatusItem::Deleted => StatusValue::Deleted(status.deleted),
                    StatusItem::Size => StatusValue::Size(status.size_bytes),
                    StatusItem::HighestModSeq => {
                        StatusValue::HighestModSeq(WireModSeq(status.highestmodseq.0))
                    }
                    StatusItem::Recent => StatusValue::Recent(recent),
                })
            })
            .collect();
        self.out.send(&Response::Data(Data::Status {
            mailbox: WireMailbox::new(mailbox.name.clone()),
            items: values,
        }));
        Ok(())
    }
}

/// RFC 5530 §3 LIMIT: a pattern beyond the matcher's bounds.
fn limit(why: names::NameError) -> CmdError {
    CmdError::no(Code::Limit, why)
}

pub(crate) fn special_attribute(special: SpecialUse) -> MailboxAttribute {
    match special {
        SpecialUse::All => MailboxAttribute::All,
        SpecialUse::Archive => MailboxAttribute::Archive,
        SpecialUse::Drafts => MailboxAttribute::Drafts,
        SpecialUse::Flagged => MailboxAttribute::Flagged,
        SpecialUse::Junk => MailboxAttribute::Junk,
        SpecialUse::Sent => MailboxAttribute::Sent,
        SpecialUse::Trash => MailboxAttribute::Trash,
    }
}

/// The account's mailboxes plus hierarchy levels that exist only as parents, by name.
struct Tree<'a> {
    nodes: BTreeMap<String, Node<'a>>,
    subscribed: BTreeSet<&'a str>,
}

struct Node<'a> {
    mailbox: Option<&'a Mailbox>,
}

impl<'a> Tree<'a> {
    fn new(mailboxes: &'a [Mailbox]) -> Tree<'a> {
        let mut nodes = BTreeMap::new();
        for mb in mailboxes {
            for parent in names::parents(&mb.name) {
                nodes
                    .entry(parent.to_owned())
                    .or_insert(Node { mailbox: None });
            }
        }
        for mb in mailboxes {
            nodes.insert(mb.name.clone(), Node { mailbox: Some(mb) });
        }
        let subscribed = mailboxes
            .iter()
            .filter(|m| m.subscribed)
            .map(|m| m.name.as_str())
            .collect();
        Tree { nodes, subscribed }
    }

    fn has_children(&self, name: &str) -> bool {
        let prefix = format!("{name}{DELIMITER}");
        self.nodes
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    fn has_subscribed_child(&self, name: &str) -> bool {
        // A range lookup, not a scan: LIST (SUBSCRIBED RECURSIVEMATCH) asks for every name.
        let prefix = format!("{name}{DELIMITER}");
        self.subscribed
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .next()
            .is_some_and(|s| s.starts_with(&prefix))
    }
}
