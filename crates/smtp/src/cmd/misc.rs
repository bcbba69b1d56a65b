//! STARTTLS (RFC 3207), VRFY, HELP and QUIT (RFC 5321 §4.1.1).

use crate::cmd::Outcome;
use crate::reply::{Reply, r};
use crate::state::SessionState;

impl SessionState {
    pub(crate) fn handle_starttls(&mut self) -> Outcome {
        if self.tls.is_some() {
            // RFC 3207 §4: STARTTLS is not offered once TLS is active.
            return r::bad_sequence("TLS already active").into();
        }
        if !self.starttls_available() {
            return r::not_implemented().into();
        }
        // RFC 3207 §4: 220 Ready to start TLS; the loop discards any pipelined input.
        Outcome::StartTls(Reply::new(220, [2, 0, 0], "Ready to start TLS"))
    }

    pub(crate) fn handle_vrfy(&self) -> Reply {
        // RFC 5321 §3.5.3: VRFY is disabled (it lets anyone harvest addresses); 252 says so
        // without refusing the mail.
        Reply::new(
            252,
            [2, 5, 0],
            "Cannot VRFY user, but will accept message and attempt delivery",
        )
    }

    pub(crate) fn handle_help(&self) -> Reply {
        // RFC 5321 §4.1.1.8.
        Reply::new(
            214,
            [2, 0, 0],
            "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH; see RFC 5321",
        )
    }

    pub(crate) fn handle_quit(&self) -> Reply {
        // RFC 5321 §4.1.1.10.
        Reply::new(
            221,
            [2, 0, 0],
            format!("{} closing connection", self.ctx.hostname),
        )
    }
}
