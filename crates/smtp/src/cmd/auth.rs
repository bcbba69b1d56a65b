//! AUTH (RFC 4954) with PLAIN, LOGIN and SCRAM-SHA-256; the mechanisms and throttling are the
//! directory's. Nothing here logs SASL data.

use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, AUTH_SCRAM_SHA_256};
use tern_directory::{
    AuthError, Mechanism, SaslError, SaslExchange, SaslStep, decode_base64_response, encode_base64,
};

use crate::cmd::Outcome;
use crate::error::SessionError;
use crate::reply::{Reply, r};
use crate::state::{Flavor, SessionState};

impl SessionState {
    pub(crate) async fn handle_auth(
        &mut self,
        mechanism: u64,
        initial_response: &str,
    ) -> Result<Outcome, SessionError> {
        if self.flavor != Flavor::Submission {
            return Ok(r::not_implemented().into());
        }
        if !self.helo.as_ref().is_some_and(|h| h.extended) {
            return Ok(r::bad_sequence("Send EHLO first").into());
        }
        if self.account.is_some() {
            // RFC 4954 §4: only one successful AUTH per session.
            return Ok(r::bad_sequence("Already authenticated").into());
        }
        if self.tx.is_some() {
            // RFC 4954 §4: not during a mail transaction.
            return Ok(r::bad_sequence("AUTH not allowed during a mail transaction").into());
        }
        if !self.auth_allowed() {
            // RFC 3207 §4 / RFC 4954 §4: no passwords over cleartext.
            return Ok(Reply::new(530, [5, 7, 0], "Must issue a STARTTLS command first").into());
        }
        let mechanism = match mechanism {
            AUTH_PLAIN => Mechanism::Plain,
            AUTH_LOGIN => Mechanism::Login,
            AUTH_SCRAM_SHA_256 => Mechanism::ScramSha256,
            _ => {
                // RFC 4954 §6.
                return Ok(Reply::new(504, [5, 5, 4], "Unrecognized authentication type").into());
            }
        };
        let initial = if initial_response.is_empty() {
            None
        } else {
            match decode_base64_response(initial_response.as_bytes()) {
                Ok(data) => Some(data),
                Err(e) => return Ok(sasl_error_reply(&e).into()),
            }
        };
        let mut exchange = self.ctx.directory.sasl(mechanism, self.peer.ip());
        let result = exchange.step(initial.as_deref()).await;
        Ok(self.after_step(exchange, result))
    }

    /// The client's answer to a `334` challenge.
    pub(crate) async fn handle_sasl_response(&mut self, line: &[u8]) -> Outcome {
        if let Some(account) = self.sasl_success.take() {
            // RFC 4954 §4: after the server's final data the client sends an empty line
            // (or `*` to cancel).
            if line.trim_ascii() == b"*" {
                return sasl_error_reply(&SaslError::Cancelled).into();
            }
            return self.authenticated(account).into();
        }
        let Some(mut exchange) = self.sasl.take() else {
            return r::bad_sequence("No authentication in progress").into();
        };
        let data = match decode_base64_response(line) {
            Ok(data) => data,
            Err(e) => return sasl_error_reply(&e).into(),
        };
        let result = exchange.step(Some(&data)).await;
        self.after_step(exchange, result)
    }

    fn after_step(
        &mut self,
        exchange: SaslExchange,
        result: Result<SaslStep, AuthError>,
    ) -> Outcome {
        match result {
            Ok(SaslStep::Challenge(challenge)) => {
                self.sasl = Some(exchange);
                // RFC 4954 §4: `334 ` and the base64 challenge.
                Outcome::Sasl(Reply::plain(334, encode_base64(&challenge)))
            }
            Ok(SaslStep::Success {
                account,
                final_data: Some(data),
            }) => {
                self.sasl_success = Some(account);
                Outcome::Sasl(Reply::plain(334, encode_base64(&data)))
            }
            Ok(SaslStep::Success {
                account,
                final_data: None,
            }) => self.authenticated(account).into(),
            Err(e) => self.auth_failed(e).into(),
        }
    }

    fn authenticated(&mut self, account: tern_directory::Account) -> Reply {
        tracing::info!(session = %self.session_id, user = %account.address, "authenticated");
        self.live = Some(self.ctx.directory.open_session(&account));
        self.account = Some(account);
        // RFC 4954 §6.
        Reply::new(235, [2, 7, 0], "Authentication successful")
    }

    fn auth_failed(&mut self, error: AuthError) -> Reply {
        let reply = match &error {
            AuthError::Failed => {
                self.auth_failures += 1;
                Reply::new(535, [5, 7, 8], "Authentication credentials invalid")
            }
            AuthError::Throttled { .. } => {
                self.auth_failures += 1;
                Reply::new(454, [4, 7, 0], "Too many failed logins, try again later")
            }
            AuthError::Malformed(e) => sasl_error_reply(e),
            AuthError::Cancelled => sasl_error_reply(&SaslError::Cancelled),
            AuthError::Temporary(reason) => {
                tracing::warn!(session = %self.session_id, %reason, "authentication unavailable");
                Reply::new(454, [4, 7, 0], "Temporary authentication failure")
            }
            _ => Reply::new(454, [4, 7, 0], "Temporary authentication failure"),
        };
        if self.auth_failures >= self.ctx.max_auth_failures {
            tracing::info!(session = %self.session_id, failures = self.auth_failures, "too many authentication failures, closing");
            return Reply::new(421, [4, 7, 0], "Too many authentication failures");
        }
        reply
    }
}

fn sasl_error_reply(e: &SaslError) -> Reply {
    match e {
        // RFC 4954 §4: a cancelled exchange gets 501.
        SaslError::Cancelled => Reply::new(501, [5, 0, 0], "Authentication cancelled"),
        SaslError::InvalidBase64 => Reply::new(501, [5, 5, 2], "Invalid base64 data"),
        _ => Reply::new(501, [5, 5, 2], "Malformed authentication data"),
    }
}
