//! Command handlers. [`SessionState::dispatch`] is the one place where a command that is
//! illegal in the current state is refused; the handlers check their own arguments.

mod auth;
mod bdat;
mod data;
mod dsn;
mod ehlo;
mod mail;
mod misc;
mod rcpt;

use std::borrow::Cow;

use smtp_proto::Request;

use crate::error::SessionError;
use crate::reply::{Reply, r};
use crate::state::{Flavor, SessionState};

pub(crate) use bdat::{BdatLine, ChunkPlan, invalid_bdat, parse_bdat};
pub(crate) use dsn::MailDsn;

/// What the session loop does after a command.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send the reply and read the next command (or close after 221/421).
    Reply(Reply),
    /// Send `354` and read message text up to `<CRLF>.<CRLF>`.
    Data(Reply),
    /// Read a BDAT chunk of `size` octets, then reply.
    Chunk {
        size: usize,
        last: bool,
        plan: ChunkPlan,
    },
    /// Send a `334` challenge; the next line is a SASL response.
    Sasl(Reply),
    /// Send `220`, discard buffered input and start the TLS handshake.
    StartTls(Reply),
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Self {
        Outcome::Reply(reply)
    }
}

impl SessionState {
    /// Runs one parsed command; `line` is the command line it was parsed from.
    pub(crate) async fn dispatch(
        &mut self,
        request: Request<Cow<'_, str>>,
        line: &[u8],
    ) -> Result<Outcome, SessionError> {
        let lmtp = self.flavor == Flavor::Lmtp;
        let greeted = self.helo.is_some();
        let reply = match request {
            // RFC 2033 §4.1: LMTP uses LHLO instead of HELO/EHLO.
            Request::Ehlo { .. } | Request::Helo { .. } if lmtp => {
                Reply::new(500, [5, 5, 1], "This is LMTP, use LHLO")
            }
            Request::Lhlo { .. } if !lmtp => Reply::new(500, [5, 5, 1], "Command unrecognized"),
            Request::Ehlo { host } | Request::Lhlo { host } => self.handle_ehlo(&host),
            Request::Helo { host } => self.handle_helo(&host),
            Request::StartTls => return Ok(self.handle_starttls()),
            // RFC 5321 §4.1.4: a transaction needs a greeting first.
            Request::Mail { .. } | Request::Rcpt { .. } | Request::Data | Request::Auth { .. }
                if !greeted =>
            {
                Reply::new(503, [5, 5, 1], format!("Send {} first", self.hello_verb()))
            }
            // RFC 3030 §2: a BDAT chunk is always read, even when it is refused, so its octets
            // are never taken for commands.
            Request::Bdat {
                chunk_size,
                is_last,
            } => return Ok(self.handle_bdat(chunk_size, is_last)),
            Request::Auth {
                mechanism,
                initial_response,
            } => return self.handle_auth(mechanism, &initial_response).await,
            Request::Mail { from } => self.handle_mail(from, line).await?,
            Request::Rcpt { to } => self.handle_rcpt(to, line).await?,
            Request::Data => return Ok(self.handle_data()),
            Request::Rset => {
                // RFC 5321 §4.1.1.5.
                self.tx = None;
                r::ok()
            }
            Request::Noop { .. } => r::ok(),
            Request::Vrfy { .. } => self.handle_vrfy(),
            Request::Help { .. } => self.handle_help(),
            Request::Quit => self.handle_quit(),
            Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => r::not_implemented(),
        };
        Ok(Outcome::Reply(reply))
    }
}
