//! The AUTHORIZATION state: CAPA, USER/PASS (RFC 1939 §7), AUTH (RFC 5034), and entering
//! TRANSACTION with the maildrop lock.

use tern_directory::{
    Account, AuthError, Mechanism, SaslStep, decode_base64_response, encode_base64,
};
use tern_proto::pop3::{Reply, RespCode, Secret, encode_challenge, encode_lines};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info, warn};

use crate::maildrop::Maildrop;
use crate::session::{Session, SessionError, State};
use crate::transaction::{ReadAhead, Transaction};

/// RFC 2595 §2 / RFC 3206 §5: a password must not cross an unprotected connection.
const PLAINTEXT_REFUSED: &str =
    "Plaintext authentication disallowed on insecure connections; use STLS";

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// CAPA (RFC 2449 §5). The list depends on the state and on whether passwords are
    /// allowed right now.
    pub(crate) fn capa(&mut self) {
        let authorization = matches!(self.state, State::Authorization { .. });
        let plaintext = self.plaintext_allowed();
        let mut caps: Vec<String> = vec!["TOP".into(), "UIDL".into()];
        if authorization {
            // RFC 2449 §6.2: USER only where USER/PASS would be accepted.
            if plaintext {
                caps.push("USER".into());
            }
            let mechanisms: Vec<&str> = self.mechanisms(plaintext).map(Mechanism::name).collect();
            caps.push(format!("SASL {}", mechanisms.join(" ")));
        }
        caps.extend(
            ["RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER"].map(String::from),
        );
        if authorization && !self.conn.io.is_tls() && self.ctx.tls.is_some() {
            caps.push("STLS".into());
        }
        caps.push("IMPLEMENTATION Tern".into());
        self.reply(Reply::ok("Capability list follows"));
        encode_lines(&caps, &mut self.wbuf);
    }

    fn mechanisms(&self, plaintext: bool) -> impl Iterator<Item = Mechanism> {
        Mechanism::ALL
            .into_iter()
            .filter(move |m| plaintext || !m.is_plaintext())
    }

    /// USER (RFC 1939 §7). Always `+OK` when allowed: whether the user exists is not told.
    pub(crate) fn user(&mut self, name: String) {
        if !self.plaintext_allowed() {
            self.reply(Reply::err(PLAINTEXT_REFUSED).with_code(RespCode::Auth));
            return;
        }
        self.state = State::Authorization { user: Some(name) };
        self.reply(Reply::ok("Send PASS"));
    }

    /// PASS (RFC 1939 §7): right after a successful USER.
    pub(crate) async fn pass(&mut self, password: Secret) {
        let State::Authorization { user } = &mut self.state else {
            return;
        };
        // Whatever happens next, the USER is used up.
        let Some(user) = user.take() else {
            self.reply(Reply::err("Send USER first"));
            return;
        };
        if !self.plaintext_allowed() {
            self.reply(Reply::err(PLAINTEXT_REFUSED).with_code(RespCode::Auth));
            return;
        }
        // A password that is not UTF-8 matches no stored one (hashes are of UTF-8 text).
        let password = String::from_utf8(password.expose().to_vec()).unwrap_or_default();
        let result = self
            .ctx
            .directory
            .authenticate(&user, &tern_common::Secret::new(password), self.peer.ip())
            .await;
        match result {
            Ok(account) => self.enter_transaction(account, "USER/PASS").await,
            Err(e) => self.auth_failed(&e),
        }
    }

    /// AUTH (RFC 5034 §4): a SASL exchange of `+ <base64>` challenges and base64 lines.
    pub(crate) async fn auth(
        &mut self,
        mechanism: Option<String>,
        initial_response: Option<Secret>,
    ) -> Result<(), SessionError> {
        let plaintext = self.plaintext_allowed();
        let Some(name) = mechanism else {
            // RFC 1734 clients probe with a bare AUTH and expect the mechanism list.
            let names: Vec<&str> = self.mechanisms(plaintext).map(Mechanism::name).collect();
            self.reply(Reply::ok("Supported mechanisms follow"));
            encode_lines(names, &mut self.wbuf);
            return Ok(());
        };
        let Some(mechanism) = Mechanism::from_name(&name) else {
            self.reply(Reply::err("Unsupported authentication mechanism"));
            return Ok(());
        };
        if mechanism.is_plaintext() && !plaintext {
            self.reply(Reply::err(PLAINTEXT_REFUSED).with_code(RespCode::Auth));
            return Ok(());
        }
        self.state = State::Authorization { user: None };
        let mut exchange = self.ctx.directory.sasl(mechanism, self.peer.ip());
        // RFC 5034 §4: an initial response of "=" is an empty one.
        let mut response = match initial_response.map(|r| decode_base64_response(r.expose())) {
            None => None,
            Some(Ok(data)) => Some(data),
            Some(Err(e)) => {
                self.auth_failed(&e.into());
                return Ok(());
            }
        };
        loop {
            match exchange.step(response.as_deref()).await {
                Ok(SaslStep::Challenge(challenge)) => {
                    encode_challenge(&encode_base64(&challenge), &mut self.wbuf);
                    response = match self.sasl_response().await? {
                        Ok(data) => Some(data),
                        Err(reply) => {
                            self.reply(reply);
                            return Ok(());
                        }
                    };
                }
                Ok(SaslStep::Success {
                    account,
                    final_data,
                }) => {
                    if let Some(data) = final_data {
                        // RFC 5034 §4: POP3 has no success-with-data; the server's final
                        // message goes out as one more challenge, answered by an empty line.
                        encode_challenge(&encode_base64(&data), &mut self.wbuf);
                        if let Err(reply) = self.sasl_response().await? {
                            self.reply(reply);
                            return Ok(());
                        }
                    }
                    self.enter_transaction(account, mechanism.name()).await;
                    return Ok(());
                }
                Err(e) => {
                    self.auth_failed(&e);
                    return Ok(());
                }
            }
        }
    }

    /// Reads and decodes the client's answer to a challenge; `Err(reply)` ends the exchange
    /// (cancelled with `*`, bad base64, over-long line).
    async fn sasl_response(&mut self) -> Result<Result<Vec<u8>, Reply>, SessionError> {
        let line = match self.read_sasl_line().await? {
            Ok(line) => line,
            Err(reply) => return Ok(Err(reply)),
        };
        Ok(decode_base64_response(line.expose()).map_err(|e| auth_error_reply(&e.into())))
    }

    fn auth_failed(&mut self, error: &AuthError) {
        match error {
            AuthError::Temporary(reason) => warn!(%reason, "authentication could not be decided"),
            e => debug!(error = %e, "authentication failed"),
        }
        self.reply(auth_error_reply(error));
    }

    /// Locks and snapshots the maildrop (RFC 1939 §4: "+OK maildrop locked and ready").
    async fn enter_transaction(&mut self, account: Account, how: &'static str) {
        let Some(lock) = self.ctx.locks.try_lock(account.id) else {
            info!(user = %account.address, "maildrop already locked by another POP3 session");
            self.reply(
                Reply::err("Maildrop already locked by another session").with_code(RespCode::InUse),
            );
            return;
        };
        match Maildrop::open(&self.ctx.store, account.id).await {
            Ok(maildrop) => {
                let (count, size) = maildrop.stat();
                info!(user = %account.address, mechanism = how, messages = count, "logged in");
                self.live = Some(self.ctx.directory.open_session(&account));
                self.reply(Reply::ok(format!(
                    "Logged in, {count} messages ({size} octets)"
                )));
                self.state = State::Transaction(Box::new(Transaction {
                    address: account.address,
                    maildrop,
                    read_ahead: ReadAhead::default(),
                    _lock: lock,
                }));
            }
            Err(e) => {
                warn!(user = %account.address, error = %e, "cannot open the maildrop");
                self.reply(Reply::err("Cannot open the maildrop").with_code(RespCode::SysTemp));
            }
        }
    }
}

/// The one mapping of login failures to replies (RFC 3206, RFC 2449 §8.1.2).
fn auth_error_reply(error: &AuthError) -> Reply {
    match error {
        AuthError::Failed => Reply::err("Authentication failed").with_code(RespCode::Auth),
        AuthError::Throttled { retry_after } => Reply::err(format!(
            "Too many failed logins; retry in {} seconds",
            retry_after.as_secs().max(1)
        ))
        .with_code(RespCode::LoginDelay),
        AuthError::Temporary(_) => {
            Reply::err("Temporary authentication failure").with_code(RespCode::SysTemp)
        }
        AuthError::Cancelled => Reply::err("Authentication cancelled"),
        AuthError::Malformed(e) => Reply::err(format!("Malformed authentication data: {e}")),
        _ => Reply::err("Authentication failed").with_code(RespCode::Auth),
    }
}
