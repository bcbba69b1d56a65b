//! Not-authenticated state: LOGIN (RFC 9051 §6.2.3), AUTHENTICATE (§6.2.2, SASL-IR RFC
//! 4959); and the any-state helpers ENABLE (§6.3.1, RFC 5161), ID (RFC 2971), NAMESPACE
//! (§6.3.10).

use tern_directory::{
    Account, AuthError, Mechanism, SaslStep, decode_base64_response, encode_base64,
};
use tern_proto::imap::{Code, ContinueRequest, Data, NamespaceDesc, Response, Secret, Tag};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info, warn};

use crate::error::{CmdError, SessionError};
use crate::session::{CmdResult, Session, done, done_with};
use crate::state::{State, User};

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(crate) async fn login(&mut self, username: &str, password: &Secret) -> CmdResult {
        if !self.plaintext_allowed() {
            // RFC 9051 §6.2.3 with LOGINDISABLED; RFC 5530 PRIVACYREQUIRED.
            return Err(CmdError::no(
                Code::PrivacyRequired,
                "Plaintext authentication disallowed; use STARTTLS",
            ));
        }
        // A password that is not UTF-8 matches no stored one (hashes are of UTF-8 text).
        let password = String::from_utf8(password.expose().to_vec()).unwrap_or_default();
        let result = self
            .ctx
            .directory
            .authenticate(
                username,
                &tern_common::Secret::new(password),
                self.peer.ip(),
            )
            .await;
        match result {
            Ok(account) => self.logged_in(account, "LOGIN"),
            Err(e) => Err(auth_error(&e)),
        }
    }

    /// Returns `Ok(result)` for the tagged reply; `Err` only for connection failures.
    pub(crate) async fn authenticate(
        &mut self,
        _tag: &Tag,
        mechanism: &str,
        initial_response: Option<Secret>,
    ) -> Result<CmdResult, SessionError> {
        let plaintext = self.plaintext_allowed();
        let Some(mechanism) = Mechanism::from_name(mechanism) else {
            return Ok(Err(CmdError::no(
                Code::Cannot,
                "Unsupported authentication mechanism",
            )));
        };
        if mechanism.is_plaintext() && !plaintext {
            return Ok(Err(CmdError::no(
                Code::PrivacyRequired,
                "Plaintext authentication disallowed; use STARTTLS",
            )));
        }
        let mut exchange = self.ctx.directory.sasl(mechanism, self.peer.ip());
        // RFC 4959 §3: "=" is an empty initial response.
        let mut response = match initial_response.map(|r| decode_base64_response(r.expose())) {
            None => None,
            Some(Ok(data)) => Some(data),
            Some(Err(e)) => return Ok(Err(auth_error(&e.into()))),
        };
        loop {
            match exchange.step(response.as_deref()).await {
                Ok(SaslStep::Challenge(challenge)) => {
                    self.challenge(&challenge);
                    response = match self.sasl_response().await? {
                        Ok(data) => Some(data),
                        Err(e) => return Ok(Err(e)),
                    };
                }
                Ok(SaslStep::Success {
                    account,
                    final_data,
                }) => {
                    if let Some(data) = final_data {
                        // RFC 9051 §6.2.2: server data on success goes out as a last
                        // challenge, answered by an empty line.
                        self.challenge(&data);
                        if let Err(e) = self.sasl_response().await? {
                            return Ok(Err(e));
                        }
                    }
                    return Ok(self.logged_in(account, mechanism.name()));
                }
                Err(e) => return Ok(Err(auth_error(&e))),
            }
        }
    }

    fn challenge(&mut self, data: &[u8]) {
        self.out
            .send(&Response::Continue(ContinueRequest::Base64(encode_base64(
                data,
            ))));
    }

    async fn sasl_response(&mut self) -> Result<Result<Vec<u8>, CmdError>, SessionError> {
        let line = match self.read_line().await? {
            Ok(line) => line,
            Err(e) => return Ok(Err(e)),
        };
        Ok(decode_base64_response(&line).map_err(|e| auth_error(&e.into())))
    }

    fn logged_in(&mut self, account: Account, how: &'static str) -> CmdResult {
        info!(user = %account.address, mechanism = how, "logged in");
        self.live = Some(self.ctx.directory.open_session(&account));
        self.state = State::Authenticated(User {
            account: account.id,
        });
        // The full literal limits (APPENDLIMIT) apply from now on; the decoder is between
        // commands here, so nothing pipelined is lost.
        self.decoder = crate::session::new_decoder(&self.ctx, true);
        // RFC 9051 §6.2.3: the OK may list the capabilities now in effect.
        let caps = self.capabilities();
        done_with(Code::Capability(caps), "Logged in")
    }

    /// ENABLE (RFC 5161 §3.1): replies `* ENABLED` with what was newly switched on.
    pub(crate) fn enable(&mut self, capabilities: &[String]) -> CmdResult {
        let mut enabled = Vec::new();
        for cap in capabilities {
            let cap_upper = cap.to_ascii_uppercase();
            let newly = match cap_upper.as_str() {
                "CONDSTORE" => !std::mem::replace(&mut self.enabled.condstore, true),
                // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                "QRESYNC" => {
                    self.enabled.condstore = true;
                    !std::mem::replace(&mut self.enabled.qresync, true)
                }
                "UTF8=ACCEPT" => !std::mem::replace(&mut self.enabled.utf8, true),
                "IMAP4REV2" => !std::mem::replace(&mut self.enabled.rev2, true),
                _ => false,
            };
            if newly {
                enabled.push(cap_upper);
            }
        }
        if self.enabled.utf8 || self.enabled.rev2 {
            // RFC 6855 §3 / RFC 9051 §6.3.1: mailbox names are UTF-8 from now on.
            self.decoder.set_utf8_accept(true);
            self.out.enc.utf8 = true;
        }
        self.out.send(&Response::Data(Data::Enabled(enabled)));
        done("ENABLE completed")
    }

    /// ID (RFC 2971 §3.1): the client's fields are logged, ours are sent.
    pub(crate) fn id(&mut self, params: Option<Vec<(String, Option<String>)>>) -> CmdResult {
        if let Some(params) = &params {
            let client: Vec<String> = params
                .iter()
                .take(30)
                .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("NIL")))
                .collect();
            debug!(client = %client.join(" "), "client ID");
        }
        self.out.send(&Response::Data(Data::Id(Some(vec![
            ("name".into(), Some("Tern".into())),
            ("version".into(), Some(env!("CARGO_PKG_VERSION").into())),
        ]))));
        done("ID completed")
    }

    /// NAMESPACE (RFC 9051 §6.3.10): one personal namespace, `""` with `/`.
    pub(crate) fn namespace(&mut self) -> CmdResult {
        self.out.send(&Response::Data(Data::Namespace {
            personal: Some(vec![NamespaceDesc {
                prefix: String::new(),
                delimiter: Some(crate::names::DELIMITER),
            }]),
            other: None,
            shared: None,
        }));
        done("NAMESPACE completed")
    }
}

/// The one mapping of login failures to replies (RFC 9051 §6.2.2, RFC 5530).
fn auth_error(error: &AuthError) -> CmdError {
    match error {
        AuthError::Failed => CmdError::no(Code::AuthenticationFailed, "Authentication failed"),
        AuthError::Throttled { retry_after } => CmdError::no(
            Code::Unavailable,
            format!(
                "Too many failed logins; retry in {} seconds",
                retry_after.as_secs().max(1)
            ),
        ),
        AuthError::Temporary(reason) => {
            warn!(%reason, "authentication could not be decided");
            CmdError::no(Code::Unavailable, "Temporary authentication failure")
        }
        AuthError::Cancelled => CmdError::bad("Authentication cancelled"),
        AuthError::Malformed(e) => CmdError::bad(format!("Malformed authentication data: {e}")),
        _ => CmdError::no(Code::AuthenticationFailed, "Authentication failed"),
    }
}
