//! RCPT TO (RFC 5321 §4.1.1.3): every recipient is checked against the directory now, so
//! unknown users and relay attempts are refused in-protocol (no backscatter).

use std::borrow::Cow;

use smtp_proto::RcptTo;
use tern_common::Address;
use tern_directory::Recipient;

use crate::cmd::dsn::{self, RCPT_DSN_FLAGS, RcptDsn};
use crate::cmd::mail::mailbox;
use crate::delivery::InboundRecipient;
use crate::error::SessionError;
use crate::reply::{Reply, r};
use crate::state::{Flavor, SessionState};

impl SessionState {
    pub(crate) async fn handle_rcpt(
        &mut self,
        to: RcptTo<Cow<'_, str>>,
        line: &[u8],
    ) -> Result<Reply, SessionError> {
        let Some(tx) = &self.tx else {
            return Ok(r::bad_sequence("Need MAIL before RCPT"));
        };
        // RFC 5321 §4.5.3.1.10: too many recipients is a temporary 452; the client sends the
        // rest in another transaction.
        if tx.accepted.len() >= self.ctx.max_recipients {
            return Ok(Reply::new(452, [4, 5, 3], "Too many recipients"));
        }
        // RFC 5321 §4.1.1.11: RRVS (RFC 7293) and CONNEG are not advertised, DSN (RFC 3461)
        // only after EHLO/LHLO.
        let extended = self.helo.as_ref().is_some_and(|h| h.extended);
        let supported = if extended { RCPT_DSN_FLAGS } else { 0 };
        if to.flags & !supported != 0 || (to.orcpt.is_some() && !extended) || to.rrvs != 0 {
            return Ok(Reply::new(555, [5, 5, 4], "RCPT parameter not supported"));
        }
        let dsn = match dsn::rcpt(&to, line) {
            Ok(dsn) => dsn,
            Err(reply) => return Ok(reply),
        };
        if to.address.is_empty() {
            // smtp-proto returns `<Postmaster>` (and `<>`) as an empty path.
            return self.rcpt_postmaster(dsn).await;
        }
        let address = to.address.into_owned();
        if !tx.smtputf8 && !address.is_ascii() {
            // RFC 6531 §3.4.
            return Ok(Reply::new(
                553,
                [5, 6, 7],
                "Non-ASCII address requires SMTPUTF8",
            ));
        }
        let Some(address) = mailbox(&address) else {
            return Ok(Reply::new(501, [5, 1, 3], "Bad recipient address syntax"));
        };
        let (accounts, remote) = match self.ctx.directory.resolve_recipient(&address).await? {
            Recipient::Local(accounts) => (accounts, Vec::new()),
            // An alias of ours with external targets: they are forwarded through the outbound
            // queue. Not a relay: the address itself is in one of our domains.
            Recipient::Forward { local, external } => (local, external),
            Recipient::Unknown => {
                return Ok(Reply::new(550, [5, 1, 1], "User unknown"));
            }
            Recipient::NotLocal => match (self.flavor, &self.account) {
                // RFC 6409 §5: an authenticated submission may go anywhere; it is queued.
                (Flavor::Submission, Some(_)) => (Vec::new(), vec![address.clone()]),
                // RFC 5321 §3.6.2 / RFC 3463 §3.8: no relaying for anyone else.
                _ => return Ok(Reply::new(554, [5, 7, 1], "Relay access denied")),
            },
        };
        Ok(self.accept_recipient(address, accounts, remote, dsn))
    }

    /// RFC 5321 §4.5.1: `<Postmaster>` without a domain must be accepted. It is the
    /// postmaster of this host name if that is a hosted domain, else of the first hosted
    /// domain; the directory resolves a domain without a postmaster of its own to another's.
    async fn rcpt_postmaster(&mut self, dsn: RcptDsn) -> Result<Reply, SessionError> {
        let directory = self.ctx.directory.clone();
        let hostname = mailbox(&format!("postmaster@{}", self.ctx.hostname));
        let address = match hostname {
            Some(a) if directory.is_local_domain(a.domain()).await? => Some(a),
            _ => match directory.domains().await?.into_iter().next() {
                Some(d) => mailbox(&format!("postmaster@{}", d.name)),
                None => None,
            },
        };
        if let Some(address) = address {
            match directory.resolve_recipient(&address).await? {
                Recipient::Local(accounts) => {
                    return Ok(self.accept_recipient(address, accounts, Vec::new(), dsn));
                }
                Recipient::Forward { local, external } => {
                    return Ok(self.accept_recipient(address, local, external, dsn));
                }
                _ => {}
            }
        }
        Ok(Reply::new(550, [5, 1, 1], "No postmaster mailbox here"))
    }

    fn accept_recipient(
        &mut self,
        address: Address,
        accounts: Vec<tern_directory::AccountId>,
        remote: Vec<Address>,
        dsn: RcptDsn,
    ) -> Reply {
        let Some(tx) = &mut self.tx else {
            return r::bad_sequence("Need MAIL before RCPT");
        };
        // The same address twice: the first RCPT's DSN parameters apply to its one copy.
        let key = address.normalized();
        let index = match tx
            .recipients
            .iter()
            .position(|r| r.address.normalized() == key)
        {
            Some(index) => index,
            None => {
                tx.recipients.push(InboundRecipient {
                    address,
                    accounts,
                    remote,
                    notify: dsn.notify,
                    orcpt: dsn.orcpt,
                });
                tx.recipients.len() - 1
            }
        };
        tx.accepted.push(index);
        Reply::new(250, [2, 1, 5], "Recipient OK")
    }
}
