//! The envelope of one outgoing message and the MAIL and RCPT command lines it becomes, with
//! the parameters of the extensions the server offers: SIZE (RFC 1870), BODY (RFC 6152),
//! SMTPUTF8 (RFC 6531) and DSN (RFC 3461).

use smtp_proto::{EXT_8BIT_MIME, EXT_DSN, EXT_SIZE, EXT_SMTP_UTF8};
use tern_store::{DsnReturn, Notify};

use super::client::Capabilities;

/// The envelope of one message.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// Reverse-path, `None` for `<>`.
    pub mail_from: Option<&'a str>,
    /// Forward-paths, in order.
    pub recipients: Vec<EnvelopeRecipient<'a>>,
    /// Message needs SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// Message has 8-bit content (RFC 6152).
    pub eight_bit: bool,
    /// RFC 3461 ENVID (decoded), passed on to a server offering DSN.
    pub env_id: Option<&'a str>,
    /// RFC 3461 RET, passed on to a server offering DSN.
    pub ret: Option<DsnReturn>,
}

/// One forward-path with its RFC 3461 parameters.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeRecipient<'a> {
    /// The address.
    pub address: &'a str,
    /// NOTIFY; not sent when not given.
    pub notify: Notify,
    /// ORCPT as `addr-type;address` (decoded).
    pub orcpt: Option<&'a str>,
}

/// RFC 3461 §4 `xtext`: `+XX` for `+`, `=` and octets outside `!`..`~`; how ENVID and ORCPT
/// are passed on (§5.2.1).
fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// The RCPT TO command for `r`, with NOTIFY and ORCPT when the server offers DSN.
fn rcpt_command(r: &EnvelopeRecipient<'_>, dsn: bool) -> String {
    let mut line = format!("RCPT TO:<{}>", r.address);
    if dsn && r.notify.is_given() {
        // RFC 3461 §4.1: a comma-separated list (NEVER stands alone: checked at RCPT).
        let words: Vec<&str> = [
            (Notify::NEVER, "NEVER"),
            (Notify::SUCCESS, "SUCCESS"),
            (Notify::FAILURE, "FAILURE"),
            (Notify::DELAY, "DELAY"),
        ]
        .into_iter()
        .filter(|(bit, _)| r.notify.0 & bit != 0)
        .map(|(_, word)| word)
        .collect();
        line.push_str(&format!(" NOTIFY={}", words.join(",")));
    }
    if dsn && let Some((kind, address)) = r.orcpt.and_then(|o| o.split_once(';')) {
        // RFC 3461 §4.2: addr-type ";" xtext.
        line.push_str(&format!(" ORCPT={kind};{}", xtext(address)));
    }
    line.push_str("\r\n");
    line
}

impl Envelope<'_> {
    /// The MAIL command and one RCPT command per recipient (CRLF-terminated) for a server
    /// offering `caps`, for a message of `size` octets.
    pub(crate) fn commands(&self, caps: &Capabilities, size: usize) -> (String, Vec<String>) {
        let mut mail = format!("MAIL FROM:<{}>", self.mail_from.unwrap_or(""));
        if caps.has(EXT_SIZE) {
            // RFC 1870 §6.
            mail.push_str(&format!(" SIZE={size}"));
        }
        if self.eight_bit && caps.has(EXT_8BIT_MIME) {
            // RFC 6152 §3.
            mail.push_str(" BODY=8BITMIME");
        }
        if self.smtputf8 && caps.has(EXT_SMTP_UTF8) {
            // RFC 6531 §3.4.
            mail.push_str(" SMTPUTF8");
        }
        // RFC 3461 §5.2.1: to a server offering DSN, the parameters go along as received.
        let dsn = caps.has(EXT_DSN);
        match self.ret {
            Some(DsnReturn::Full) if dsn => mail.push_str(" RET=FULL"),
            Some(DsnReturn::Headers) if dsn => mail.push_str(" RET=HDRS"),
            _ => {}
        }
        if let Some(id) = self.env_id.filter(|_| dsn) {
            mail.push_str(&format!(" ENVID={}", xtext(id)));
        }
        mail.push_str("\r\n");
        let rcpts = self
            .recipients
            .iter()
            .map(|r| rcpt_command(r, dsn))
            .collect();
        (mail, rcpts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_parameters_are_passed_on_xtext_encoded_to_a_dsn_server_only() {
        let r = EnvelopeRecipient {
            address: "bob@b.test",
            notify: Notify(Notify::SUCCESS | Notify::DELAY),
            orcpt: Some("rfc822;list+x=y@a.test"),
        };
        assert_eq!(
            rcpt_command(&r, true),
            "RCPT TO:<bob@b.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;list+2Bx+3Dy@a.test\r\n"
        );
        assert_eq!(rcpt_command(&r, false), "RCPT TO:<bob@b.test>\r\n");
        let never = EnvelopeRecipient {
            notify: Notify(Notify::NEVER),
            orcpt: None,
            ..r
        };
        assert_eq!(
            rcpt_command(&never, true),
            "RCPT TO:<bob@b.test> NOTIFY=NEVER\r\n"
        );
        let plain = EnvelopeRecipient {
            notify: Notify::default(),
            ..never
        };
        assert_eq!(rcpt_command(&plain, true), "RCPT TO:<bob@b.test>\r\n");
        assert_eq!(xtext("a+b=c d\u{e9}"), "a+2Bb+3Dc+20d+C3+A9");
    }

    #[test]
    fn ret_and_envid_go_to_a_dsn_server_only() {
        let envelope = Envelope {
            mail_from: Some("a@a.test"),
            recipients: Vec::new(),
            smtputf8: false,
            eight_bit: false,
            env_id: Some("x y"),
            ret: Some(DsnReturn::Full),
        };
        let dsn = Capabilities {
            bits: EXT_DSN,
            ..Capabilities::default()
        };
        assert_eq!(
            envelope.commands(&dsn, 10).0,
            "MAIL FROM:<a@a.test> RET=FULL ENVID=x+20y\r\n"
        );
        assert_eq!(
            envelope.commands(&Capabilities::default(), 10).0,
            "MAIL FROM:<a@a.test>\r\n"
        );
    }
}
