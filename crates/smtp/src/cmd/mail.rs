//! MAIL FROM (RFC 5321 §4.1.1.2) with SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8
//! (RFC 6531) and RET/ENVID (RFC 3461).

use std::borrow::Cow;

use smtp_proto::{MAIL_BODY_7BIT, MAIL_BODY_8BITMIME, MAIL_SMTPUTF8, MailFrom};
use tern_common::{Address, Domain};

use crate::cmd::dsn::{self, MAIL_DSN_FLAGS};
use crate::error::SessionError;
use crate::reply::{Reply, r};
use crate::state::{Flavor, SessionState, Transaction};

/// Turns a path as smtp-proto returns it (source route already dropped, RFC 5321 §4.1.1.3;
/// quotes removed from a quoted local part) into an address: the domain is what follows the
/// last `@`, everything before it is the local part's value, so `"a@b"@example.test` is the
/// local part `a@b` of example.test, never an address at b.
pub(crate) fn mailbox(path: &str) -> Option<Address> {
    let (local, domain) = path.rsplit_once('@')?;
    let domain: Domain = domain.parse().ok()?;
    Address::new(local, domain).ok()
}

impl SessionState {
    pub(crate) async fn handle_mail(
        &mut self,
        from: MailFrom<Cow<'_, str>>,
        line: &[u8],
    ) -> Result<Reply, SessionError> {
        if self.tx.is_some() {
            // RFC 5321 §4.1.1.2: no nested transactions.
            return Ok(r::bad_sequence("Nested MAIL command"));
        }
        if self.flavor == Flavor::Submission && self.account.is_none() {
            // RFC 4954 §6: 530 5.7.0 Authentication required.
            return Ok(Reply::new(530, [5, 7, 0], "Authentication required"));
        }
        // RFC 5321 §4.1.1.11: parameters of extensions we did not advertise are refused. DSN
        // (RFC 3461) is advertised after EHLO/LHLO only. AUTH= (RFC 4954 §5) is accepted and
        // ignored: we do not trust other servers' claims.
        let extended = self.helo.as_ref().is_some_and(|h| h.extended);
        let mut supported = MAIL_BODY_7BIT | MAIL_BODY_8BITMIME | MAIL_SMTPUTF8;
        if extended {
            supported |= MAIL_DSN_FLAGS;
        }
        if from.flags & !supported != 0
            || (from.env_id.is_some() && !extended)
            || from.trans_id.is_some()
            || from.solicit.is_some()
            || from.mtrk.is_some()
            || from.by != 0
            || from.hold_for != 0
            || from.hold_until != 0
            || from.mt_priority != 0
        {
            return Ok(Reply::new(555, [5, 5, 4], "MAIL parameter not supported"));
        }
        let dsn = match dsn::mail(&from, line) {
            Ok(dsn) => dsn,
            Err(reply) => return Ok(reply),
        };
        // RFC 1870 §6.1: a declared size above the limit is refused at MAIL.
        if from.size as u64 > self.ctx.max_message_size {
            return Ok(r::message_too_big());
        }
        let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        let mail_from = if from.address.is_empty() {
            // The null reverse-path (RFC 5321 §4.5.5) is for bounces; users do not send them.
            if self.flavor == Flavor::Submission {
                return Ok(Reply::new(
                    553,
                    [5, 7, 1],
                    "Null sender not allowed for submission",
                ));
            }
            None
        } else {
            let Some(address) = mailbox(&from.address) else {
                return Ok(Reply::new(501, [5, 1, 7], "Bad sender address syntax"));
            };
            Some(address)
        };
        // RFC 6531 §3.4: non-ASCII addresses need the SMTPUTF8 parameter.
        if !smtputf8 && !from.address.is_ascii() {
            return Ok(Reply::new(
                553,
                [5, 6, 7],
                "Non-ASCII address requires SMTPUTF8",
            ));
        }
        if let (Some(account), Some(address)) = (&self.account, &mail_from)
            && !self.ctx.directory.owns_address(account.id, address).await?
        {
            // RFC 6409 §6.1: the submission server may enforce the sender.
            return Ok(Reply::new(
                553,
                [5, 7, 1],
                "Sender address not owned by the authenticated user",
            ));
        }
        self.tx = Some(Transaction {
            mail_from,
            smtputf8,
            dsn,
            ..Transaction::default()
        });
        Ok(Reply::new(250, [2, 1, 0], "Sender OK"))
    }
}

#[cfg(test)]
mod tests {
    use super::mailbox;

    #[test]
    fn quoted_at_signs_stay_in_the_local_part() {
        let a = mailbox("user@other.test@example.test").unwrap();
        assert_eq!(a.local(), "user@other.test");
        assert_eq!(a.domain().as_str(), "example.test");
    }

    #[test]
    fn percent_hack_is_just_a_local_part() {
        let a = mailbox("user%other.test@example.test").unwrap();
        assert_eq!(a.domain().as_str(), "example.test");
    }

    #[test]
    fn invalid_paths_are_refused() {
        for bad in [
            "",
            "user",
            "user@",
            "@example.test",
            "user@bad_domain",
            "a\u{1}b@x.test",
        ] {
            assert!(mailbox(bad).is_none(), "{bad:?}");
        }
    }
}
