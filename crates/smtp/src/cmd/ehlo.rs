//! EHLO, HELO (RFC 5321 §4.1.1.1) and LHLO (RFC 2033 §4.1).

use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, AUTH_SCRAM_SHA_256, EXT_8BIT_MIME, EXT_AUTH, EXT_CHUNKING, EXT_DSN,
    EXT_ENHANCED_STATUS_CODES, EXT_PIPELINING, EXT_SIZE, EXT_SMTP_UTF8, EXT_START_TLS,
    EhloResponse,
};

use crate::reply::Reply;
use crate::state::{Helo, SessionState};

impl SessionState {
    /// EHLO and LHLO: greet and list the extensions.
    pub(crate) fn handle_ehlo(&mut self, host: &str) -> Reply {
        // RFC 5321 §4.1.4: EHLO also resets the transaction.
        self.tx = None;
        self.helo = Some(Helo {
            name: host.to_owned(),
            extended: true,
        });
        let mut ehlo = EhloResponse::new(self.ctx.hostname.as_str());
        ehlo.capabilities = EXT_PIPELINING // RFC 2920
            | EXT_8BIT_MIME // RFC 6152
            | EXT_SMTP_UTF8 // RFC 6531
            | EXT_SIZE // RFC 1870
            | EXT_ENHANCED_STATUS_CODES // RFC 2034
            | EXT_DSN // RFC 3461, after LHLO too
            | EXT_CHUNKING; // RFC 3030
        ehlo.size = usize::try_from(self.ctx.max_message_size).unwrap_or(usize::MAX);
        if self.starttls_available() {
            ehlo.capabilities |= EXT_START_TLS; // RFC 3207
        }
        if self.auth_allowed() && self.account.is_none() {
            // RFC 4954 §3. Passwords only where `auth_allowed` says so.
            ehlo.capabilities |= EXT_AUTH;
            ehlo.auth_mechanisms = AUTH_SCRAM_SHA_256 | AUTH_PLAIN | AUTH_LOGIN;
        }
        let mut bytes = Vec::with_capacity(256);
        // Writing into a Vec cannot fail.
        let _ = ehlo.write(&mut bytes);
        // Our own first line instead of smtp-proto's greeting text.
        let rest = match bytes.windows(2).position(|w| w == b"\r\n") {
            Some(end) => bytes.split_off(end + 2),
            None => Vec::new(),
        };
        let mut lines = vec![format!("{} greets {}", self.ctx.hostname, host)];
        lines.extend(
            String::from_utf8_lossy(&rest)
                .lines()
                .map(|l| l.get(4..).unwrap_or_default().to_owned()),
        );
        Reply::multiline(250, &lines)
    }

    /// HELO: greet without extensions.
    pub(crate) fn handle_helo(&mut self, host: &str) -> Reply {
        self.tx = None;
        self.helo = Some(Helo {
            name: host.to_owned(),
            extended: false,
        });
        Reply::plain(250, self.ctx.hostname.clone())
    }
}
