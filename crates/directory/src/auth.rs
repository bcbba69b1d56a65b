//! Logins: [`Directory::authenticate`] (user name + password, used by PLAIN, LOGIN, POP3
//! USER/PASS and IMAP LOGIN) and [`SaslExchange`], the async driver of the sans-IO SASL
//! mechanisms for the protocol crates.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tern_common::{Address, Secret};
use tracing::{debug, info, warn};

use crate::password::{self, ScramCredentials, hmac_sha256, nonzero_iterations};
use crate::sasl::{LoginServer, LoginStep, Mechanism, SaslError, ScramServer, parse_plain};
use crate::throttle::Refusal;
use crate::{Account, AuthError, Directory};

/// How often an attempt that found its key busy asks again: a fraction of a verification.
const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// What to send the client after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this challenge (`334 <base64>` / `+ <base64>`) and feed the reply to `step`.
    Challenge(Vec<u8>),
    /// Logged in. `final_data` is the server's additional data on success (SCRAM's `v=`),
    /// to be sent as RFC 4954 / RFC 9051 allow.
    Success {
        account: Account,
        final_data: Option<Vec<u8>>,
    },
}

/// One SASL authentication exchange, created by [`Directory::sasl`].
pub struct SaslExchange {
    directory: Directory,
    client_ip: IpAddr,
    mechanism: Mechanism,
    state: State,
}

enum State {
    Plain { challenged: bool },
    Login(LoginServer),
    ScramStart { challenged: bool },
    ScramFinal(Box<ScramPending>),
    Done,
}

/// SCRAM between server-first and client-final (boxed: much larger than the other states).
struct ScramPending {
    server: ScramServer,
    attempt: Admission,
    account: Option<Account>,
}

/// A login attempt the throttle admitted: it counts there as in flight (as if failing) until
/// its outcome is recorded; dropped without one (the client left, a temporary error), it just
/// stops counting.
struct Admission {
    directory: Directory,
    key: String,
    ip: IpAddr,
    settled: bool,
}

impl Admission {
    fn succeeded(mut self) {
        self.settled = true;
        self.directory.login_succeeded(&self.key, self.ip);
    }

    /// `password` is the wrong password, when the mechanism had one (for the throttle to tell
    /// a repeat from a new guess).
    fn failed(mut self, password: Option<&[u8]>) {
        self.settled = true;
        self.directory.login_failed(&self.key, self.ip, password);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if !self.settled {
            self.directory.inner.throttle.release(&self.key, self.ip);
        }
    }
}

impl std::fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslExchange")
            .field("mechanism", &self.mechanism)
            .field("client_ip", &self.client_ip)
            .finish_non_exhaustive()
    }
}

impl SaslExchange {
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Feeds the client's decoded response; `None` when the client gave no initial response
    /// (then the first step answers with the mechanism's initial challenge). An error ends
    /// the exchange.
    pub async fn step(&mut self, response: Option<&[u8]>) -> Result<SaslStep, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Done);
        let result = self.advance(state, response).await;
        if result.is_err() {
            self.state = State::Done;
        }
        result
    }

    async fn advance(
        &mut self,
        state: State,
        response: Option<&[u8]>,
    ) -> Result<SaslStep, AuthError> {
        let directory = self.directory.clone();
        let ip = self.client_ip;
        match (state, response) {
            (State::Plain { challenged: false }, None) => {
                self.state = State::Plain { challenged: true };
                Ok(SaslStep::Challenge(Vec::new()))
            }
            (State::Plain { .. }, Some(message)) => {
                let credentials = parse_plain(message)?;
                let account = directory
                    .authenticate(&credentials.username, &credentials.password, ip)
                    .await?;
                Ok(success(account, None))
            }
            (State::Login(mut login), response) => match login.step(response)? {
                LoginStep::Challenge(challenge) => {
                    self.state = State::Login(login);
                    Ok(SaslStep::Challenge(challenge.to_vec()))
                }
                LoginStep::Credentials(credentials) => {
                    let account = directory
                        .authenticate(&credentials.username, &credentials.password, ip)
                        .await?;
                    Ok(success(account, None))
                }
            },
            (State::ScramStart { challenged: false }, None) => {
                self.state = State::ScramStart { challenged: true };
                Ok(SaslStep::Challenge(Vec::new()))
            }
            (State::ScramStart { .. }, Some(message)) => {
                let mut server = ScramServer::new()?;
                let first = server.client_first(message)?;
                let username = login_key(&first.username);
                let attempt = directory.admit(&username, ip).await?;
                let account = directory.account_for_login(&username).await?;
                let credentials = match account.as_ref().map(|a| a.scram_sha256.as_deref()) {
                    Some(Some(stored)) => match ScramCredentials::parse(stored) {
                        Ok(credentials) => credentials,
                        Err(_) => {
                            tracing::warn!(user = %username, "stored SCRAM credentials are malformed");
                            directory.decoy_credentials(&username)
                        }
                    },
                    Some(None) => {
                        debug!(user = %username, "account has no SCRAM credentials; set its password again");
                        directory.decoy_credentials(&username)
                    }
                    None => directory.decoy_credentials(&username),
                };
                let server_first = server.server_first(&credentials)?;
                self.state = State::ScramFinal(Box::new(ScramPending {
                    server,
                    attempt,
                    account,
                }));
                Ok(SaslStep::Challenge(server_first))
            }
            (State::ScramFinal(pending), Some(message)) => {
                let ScramPending {
                    mut server,
                    attempt,
                    account,
                } = *pending;
                match (server.client_final(message), account) {
                    (Ok(server_final), Some(account)) => {
                        attempt.succeeded();
                        Ok(success(account, Some(server_final)))
                    }
                    (Ok(_), None) | (Err(SaslError::InvalidProof), _) => {
                        // No password to compare: a SCRAM proof differs on every attempt.
                        attempt.failed(None);
                        Err(AuthError::Failed)
                    }
                    (Err(e), _) => Err(e.into()),
                }
            }
            _ => Err(AuthError::Malformed(SaslError::UnexpectedStep)),
        }
    }
}

fn success(account: Account, final_data: Option<Vec<u8>>) -> SaslStep {
    SaslStep::Success {
        account,
        final_data,
    }
}

/// The throttling and lookup key of a login name: the normalised address if it parses, else
/// the lowercased text (which matches no account).
fn login_key(username: &str) -> String {
    match username.trim().parse::<Address>() {
        Ok(address) => address.normalized(),
        Err(_) => username.trim().to_lowercase(),
    }
}

impl Directory {
    /// Starts a SASL exchange for a client at `client_ip`.
    pub fn sasl(&self, mechanism: Mechanism, client_ip: IpAddr) -> SaslExchange {
        let state = match mechanism {
            Mechanism::Plain => State::Plain { challenged: false },
            Mechanism::Login => State::Login(LoginServer::new()),
            Mechanism::ScramSha256 => State::ScramStart { challenged: false },
        };
        SaslExchange {
            directory: self.clone(),
            client_ip,
            mechanism,
            state,
        }
    }

    /// Verifies a user name (the account's address) and password, with throttling and the
    /// verification cache. Unknown user and wrong password both give [`AuthError::Failed`].
    pub async fn authenticate(
        &self,
        username: &str,
        password: &Secret,
        client_ip: IpAddr,
    ) -> Result<Account, AuthError> {
        let key = login_key(username);
        let attempt = self.admit(&key, client_ip).await?;
        let account = self.account_for_login(&key).await?;
        // A password SASLprep refuses cannot match; it still costs a verification.
        let prepared = password::prepare(password.expose()).ok();
        if let (Some(account), Some(prepared)) = (&account, &prepared)
            && self.inner.cache.hit(
                &key,
                account.id,
                &account.password_hash,
                prepared,
                Instant::now(),
            )
        {
            self.inner.cache_hits.fetch_add(1, Ordering::Relaxed);
            attempt.succeeded();
            return Ok(account.clone());
        }
        let phc = match &account {
            Some(account) => account.password_hash.clone(),
            None => self.dummy_hash().await?,
        };
        let candidate = prepared.clone().unwrap_or_default();
        self.inner
            .password_verifications
            .fetch_add(1, Ordering::Relaxed);
        let matched = self
            .blocking_hash(move || password::verify_password(&candidate, &phc))
            .await
            .map_err(AuthError::Temporary)?;
        match (account, prepared) {
            (Some(account), Some(prepared)) if matched => {
                self.inner.cache.insert(
                    &key,
                    account.id,
                    &account.password_hash,
                    &prepared,
                    Instant::now(),
                );
                attempt.succeeded();
                Ok(account)
            }
            _ => {
                attempt.failed(Some(password.expose().as_bytes()));
                Err(AuthError::Failed)
            }
        }
    }

    /// Lets a login attempt go ahead: at once, after the tarpit's delay (slept here, before the
    /// password is looked at), or not at all while the address is blocked.
    async fn admit(&self, key: &str, ip: IpAddr) -> Result<Admission, AuthError> {
        let throttle = &self.inner.throttle;
        let asked = Instant::now();
        let mut now = asked;
        let mut admitted = throttle.admit(key, ip, now);
        // Others under the same key are being verified: their outcomes are recorded within a
        // verification's time, then this attempt is admitted, delayed or refused accordingly.
        while admitted == Err(Refusal::Busy) {
            if now.duration_since(asked) >= throttle.config().max_delay {
                admitted = Err(Refusal::Queued {
                    retry_after: throttle.config().max_delay,
                });
                break;
            }
            tokio::time::sleep(BUSY_POLL).await;
            now = Instant::now();
            admitted = throttle.admit(key, ip, now);
        }
        match admitted {
            Ok(start) => {
                // Counted from now on, also while it sleeps.
                let attempt = Admission {
                    directory: self.clone(),
                    key: key.to_owned(),
                    ip,
                    settled: false,
                };
                let wait = start.saturating_duration_since(now);
                if !wait.is_zero() {
                    info!(user = %key, %ip, wait_ms = wait.as_millis(), "login delayed after failed logins");
                    tokio::time::sleep_until(tokio::time::Instant::from_std(start)).await;
                }
                Ok(attempt)
            }
            Err(refusal) => {
                let retry_after = refusal.retry_after();
                info!(user = %key, %ip, retry_after_s = retry_after.as_secs(), "login refused: {refusal}");
                Err(AuthError::Throttled { retry_after })
            }
        }
    }

    /// The account a login name may log in as: a disabled account is treated as unknown, so
    /// its login fails (after the same work) like a wrong password.
    async fn account_for_login(&self, key: &str) -> Result<Option<Account>, AuthError> {
        let account = self.inner.store.account_by_address(key).await?;
        Ok(account.filter(|a| !a.disabled))
    }

    fn login_succeeded(&self, key: &str, ip: IpAddr) {
        self.inner.throttle.record_success(key, ip, Instant::now());
        debug!(user = %key, "login succeeded");
    }

    /// `password` is the wrong password, when the mechanism had one (for the throttle to tell
    /// a repeat from a new guess).
    fn login_failed(&self, key: &str, ip: IpAddr, password: Option<&[u8]>) {
        let block = self
            .inner
            .throttle
            .record_failure(key, ip, password, Instant::now());
        self.inner.auth_failures.fetch_add(1, Ordering::Relaxed);
        info!(user = %key, %ip, "login failed");
        if let Some(block) = block {
            warn!(
                %ip,
                failures = block.failures,
                window_s = block.window.as_secs(),
                blocked_for_s = block.duration.as_secs(),
                "blocking client address: {} failed logins within {} s; every login from it is \
                 refused for {} s",
                block.failures,
                block.window.as_secs(),
                block.duration.as_secs()
            );
        }
    }

    /// A PHC string with the configured parameters that no password matches, so an unknown
    /// user costs as much as a known one.
    async fn dummy_hash(&self) -> Result<String, AuthError> {
        let params = self.inner.config.argon2;
        self.inner
            .dummy_hash
            .get_or_try_init(|| async move {
                let secret = password::random_bytes::<16>()
                    .map_err(|e| AuthError::Temporary(e.to_string()))?;
                let random: String = secret.iter().map(|b| format!("{b:02x}")).collect();
                tokio::task::spawn_blocking(move || password::hash_password(&random, params))
                    .await
                    .map_err(|e| AuthError::Temporary(e.to_string()))?
                    .map_err(|e| AuthError::Temporary(e.to_string()))
            })
            .await
            .cloned()
    }

    /// SCRAM credentials for a user without real ones: salt derived from the name (stable,
    /// so repeated probes look like a real user), keys no proof can match.
    fn decoy_credentials(&self, username: &str) -> ScramCredentials {
        let salt = hmac_sha256(&self.inner.decoy_key, username.as_bytes());
        let keys = hmac_sha256(&self.inner.decoy_key, &salt);
        ScramCredentials {
            iterations: nonzero_iterations(password::SCRAM_ITERATIONS).get(),
            salt: salt[..16].to_vec(),
            stored_key: keys,
            server_key: keys,
        }
    }
}
