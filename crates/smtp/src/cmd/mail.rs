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

/// RFC 1870 §4: `SIZE=` 1*20DIGIT, read from the command line itself. smtp-proto's number
/// parser wraps past `usize::MAX` (`SIZE=184467440737095516160` reads as 0), which would let a
/// client declare any size and be accepted; the real limit is enforced on the data anyway, but
/// the declaration must not lie. A value that does not fit 64 bits is simply too big.
fn declared_size(line: &[u8]) -> Result<Option<u64>, Reply> {
    let Some(end) = line.iter().position(|&b| b == b'>') else {
        return Ok(None);
    };
    let mut sizes = line[end + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|p| p.len() >= 5 && p[..5].eq_ignore_ascii_case(b"SIZE="))
        .map(|p| &p[5..]);
    let Some(value) = sizes.next() else {
        return Ok(None);
    };
    if sizes.next().is_some() {
        return Err(Reply::new(
            501,
            [5, 5, 4],
            "Parameter SIZE given more than once",
        ));
    }
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Reply::new(501, [5, 5, 4], "Invalid SIZE parameter"));
    }
    // Twenty digits may still exceed u64: such a size is over any limit.
    let size = std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    Ok(Some(size))
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
        match declared_size(line) {
            Ok(Some(size)) if size > self.ctx.max_message_size => return Ok(r::message_too_big()),
            Ok(_) => {}
            Err(reply) => return Ok(reply),
        }
        // RFC 5321 §4.2.2 / RFC 3463 §3.4: refused for now while the data volume is nearly
        // full, before any text is read (see tern_common::disk).
        if self.ctx.free_space.check().is_err() {
            return Ok(r::insufficient_storage());
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
    use super::{declared_size, mailbox};

    #[test]
    fn declared_sizes_are_read_without_wrapping() {
        let size = |line: &str| declared_size(line.as_bytes()).map_err(|r| r.bytes()[..3].to_vec());
        assert_eq!(size("MAIL FROM:<a@b.test>"), Ok(None));
        assert_eq!(size("MAIL FROM:<a@b.test> size=1000"), Ok(Some(1000)));
        assert_eq!(
            size("MAIL FROM:<a@b.test> SIZE=18446744073709551615"),
            Ok(Some(u64::MAX))
        );
        // Past 2^64 (smtp-proto read this one as 0) and past twenty digits.
        assert_eq!(
            size("MAIL FROM:<a@b.test> SIZE=18446744073709551616"),
            Ok(Some(u64::MAX))
        );
        assert_eq!(
            size("MAIL FROM:<a@b.test> SIZE=184467440737095516160"),
            Err(b"501".to_vec())
        );
        assert_eq!(
            size("MAIL FROM:<a@b.test> SIZE=1 SIZE=2"),
            Err(b"501".to_vec())
        );
        assert_eq!(size("MAIL FROM:<a@b.test> SIZE=1x"), Err(b"501".to_vec()));
    }

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
