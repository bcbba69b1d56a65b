//! The connection loop: greeting, read with the autologout timer, decode, dispatch, write,
//! STLS upgrade. Commands illegal in the current state are rejected in one place:
//! [`Session::dispatch`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tern_directory::LiveSession;
use tern_proto::pop3::{Command, Decoder, Reply, RespCode, Secret};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::Pop3Context;
use crate::transaction::{self, Transaction};
use tern_common::session::{Conn, ReadOutcome, Wait};
use tern_common::stream::MaybeTls;

/// Replies are flushed at the latest when this much is buffered (a RETR of a large message
/// is written as soon as it is encoded).
const FLUSH_AT: usize = 64 * 1024;

/// Bound on saying goodbye: a client that stopped reading must not hold the task.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// RFC 1939 §3: the session states (UPDATE is the QUIT handler of TRANSACTION).
pub(crate) enum State {
    /// Not logged in yet; `user` is the name of a pending USER command (RFC 1939 §7).
    Authorization { user: Option<String> },
    /// Logged in, holding the maildrop lock.
    Transaction(Box<Transaction>),
}

/// What the loop does after a command.
pub(crate) enum Next {
    Continue,
    Close,
    StartTls,
}

/// Why the loop stopped without a QUIT.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("client closed the connection")]
    Eof,
    #[error("idle for longer than the autologout timer")]
    Timeout,
    #[error("server shutting down")]
    Shutdown,
    #[error("credentials changed, account disabled or removed")]
    Revoked,
    #[error("too many protocol errors")]
    TooManyErrors,
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

pub(crate) struct Session<S> {
    pub(crate) ctx: Arc<Pop3Context>,
    pub(crate) conn: Conn<S>,
    pub(crate) peer: SocketAddr,
    shutdown: CancellationToken,
    /// The login's registration; revoked when the account's credentials change.
    pub(crate) live: Option<LiveSession>,
    pub(crate) wbuf: BytesMut,
    decoder: Decoder,
    pub(crate) state: State,
    errors: u32,
}

/// Runs a session to its end and logs how it ended.
pub(crate) async fn run<S>(
    ctx: Arc<Pop3Context>,
    stream: S,
    peer: SocketAddr,
    implicit_tls: bool,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let io = match MaybeTls::open(
        stream,
        implicit_tls,
        ctx.tls.as_ref(),
        ctx.tls_handshake_timeout,
    )
    .await
    {
        Ok(io) => io,
        Err(e) => {
            debug!(error = %e, "TLS handshake failed");
            return;
        }
    };
    let mut session = Session {
        ctx,
        conn: Conn::new(io, 1024),
        peer,
        shutdown,
        live: None,
        wbuf: BytesMut::with_capacity(4096),
        decoder: Decoder::new(),
        state: State::Authorization { user: None },
        errors: 0,
    };
    match session.run_loop().await {
        Ok(()) => debug!("session closed after QUIT"),
        Err(SessionError::Eof) => debug!("client disconnected"),
        Err(e @ (SessionError::Timeout | SessionError::TooManyErrors | SessionError::Revoked)) => {
            info!("closing: {e}");
        }
        Err(e) => debug!("session ended: {e}"),
    }
    // Final words such as "too many errors" are still buffered.
    if !session.wbuf.is_empty() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.flush()).await;
    }
    // Dropping the session releases the maildrop lock without touching the maildrop.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.conn.io.shutdown()).await;
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    async fn run_loop(&mut self) -> Result<(), SessionError> {
        // RFC 1939 §4: the greeting is a positive response.
        Reply::ok(format!("{} POP3 ready", self.ctx.hostname)).encode(&mut self.wbuf);
        loop {
            let command = match self.decoder.decode(&mut self.conn.rbuf) {
                Ok(Some(command)) => {
                    // Whatever follows (pipelined) is the next command, timed from now.
                    self.conn.mark_command_start();
                    command
                }
                Ok(None) => {
                    // Nothing complete left to answer: send what pipelined commands produced.
                    self.flush().await?;
                    self.read_more().await?;
                    continue;
                }
                Err(e) => {
                    debug!(error = %e, "malformed command");
                    self.protocol_error(e.reply())?;
                    continue;
                }
            };
            if self.live.as_ref().is_some_and(LiveSession::is_revoked) {
                // Pipelined commands of a revoked login are not run.
                return Err(self.revoked().await);
            }
            debug!(command = command.keyword(), "command");
            match self.dispatch(command).await? {
                Next::Continue => {
                    if self.wbuf.len() >= FLUSH_AT {
                        self.flush().await?;
                    }
                }
                Next::Close => {
                    self.flush().await?;
                    return Ok(());
                }
                Next::StartTls => self.start_tls().await?,
            }
        }
    }

    /// The state machine of RFC 1939 §3–§7: the only place a command is matched to a state.
    async fn dispatch(&mut self, command: Command) -> Result<Next, SessionError> {
        match (&mut self.state, command) {
            (_, Command::Capa) => self.capa(),
            (State::Authorization { .. }, Command::Quit) => {
                self.reply(Reply::ok(format!(
                    "{} POP3 server signing off",
                    self.ctx.hostname
                )));
                return Ok(Next::Close);
            }
            (State::Authorization { .. }, Command::Stls) => return self.stls(),
            (State::Authorization { .. }, Command::User(name)) => self.user(name),
            (State::Authorization { .. }, Command::Pass(password)) => self.pass(password).await,
            (
                State::Authorization { .. },
                Command::Auth {
                    mechanism,
                    initial_response,
                },
            ) => self.auth(mechanism, initial_response).await?,
            (State::Transaction(tx), Command::Quit) => {
                let reply = transaction::update(&self.ctx, tx).await;
                self.reply(reply);
                return Ok(Next::Close);
            }
            (
                State::Transaction(tx),
                command @ (Command::Stat
                | Command::List(_)
                | Command::Uidl(_)
                | Command::Retr(_)
                | Command::Top { .. }
                | Command::Dele(_)
                | Command::Noop
                | Command::Rset),
            ) => transaction::handle(&self.ctx.store, tx, command, &mut self.wbuf).await,
            (State::Authorization { .. }, _) => {
                self.protocol_error(Reply::err("Not logged in"))?;
            }
            (State::Transaction(_), _) => {
                self.protocol_error(Reply::err("Already logged in"))?;
            }
        }
        Ok(Next::Continue)
    }

    pub(crate) fn reply(&mut self, reply: Reply) {
        reply.encode(&mut self.wbuf);
    }

    /// Sends an `-ERR` for a malformed or misplaced command; after `max_errors` of them the
    /// session ends.
    pub(crate) fn protocol_error(&mut self, reply: Reply) -> Result<(), SessionError> {
        self.reply(reply);
        self.errors += 1;
        if self.errors >= self.ctx.max_errors {
            self.reply(Reply::err("Too many errors, closing connection"));
            return Err(SessionError::TooManyErrors);
        }
        Ok(())
    }

    /// Whether passwords may be sent now: under TLS, or from loopback when configured.
    pub(crate) fn plaintext_allowed(&self) -> bool {
        tern_common::session::passwords_allowed(
            self.conn.io.is_tls(),
            self.ctx.allow_plaintext_on_loopback,
            self.peer.ip(),
        )
    }

    pub(crate) async fn flush(&mut self) -> Result<(), SessionError> {
        // A client that stops reading is dropped after the autologout time, and its maildrop
        // lock released.
        self.conn
            .flush(&mut self.wbuf, self.ctx.idle_timeout)
            .await?;
        Ok(())
    }

    /// Reads more input, waiting at most the autologout time (RFC 1939 §3: on expiry the
    /// server closes the connection without a response and without removing messages).
    async fn read_more(&mut self) -> Result<(), SessionError> {
        // The timer runs for a whole command line, not for each read, so a client trickling
        // octets (slowloris) is logged out like an idle one.
        let wait = Wait::Command {
            skipping: self.decoder.is_skipping(),
        };
        let (shutdown, live) = (&self.shutdown, self.live.as_ref());
        let interrupt = async {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {}
                () = LiveSession::revoked_opt(live) => {}
            }
        };
        match self
            .conn
            .read_more(4096, wait, self.ctx.idle_timeout, interrupt)
            .await?
        {
            ReadOutcome::Interrupted(())
                if self.live.as_ref().is_some_and(LiveSession::is_revoked) =>
            {
                Err(self.revoked().await)
            }
            ReadOutcome::Interrupted(()) => {
                self.reply(Reply::err("Server shutting down").with_code(RespCode::SysTemp));
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.flush()).await;
                Err(SessionError::Shutdown)
            }
            ReadOutcome::TimedOut => Err(SessionError::Timeout),
            ReadOutcome::Eof => Err(SessionError::Eof),
            ReadOutcome::Data => Ok(()),
        }
    }

    /// Says goodbye to a session whose credentials were revoked (password changed, account
    /// disabled or removed). The connection closes without QUIT, so RFC 1939 §6's UPDATE
    /// state is not entered: messages marked deleted stay.
    async fn revoked(&mut self) -> SessionError {
        self.reply(
            Reply::err("Credentials changed or account disabled; log in again")
                .with_code(RespCode::Auth),
        );
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.flush()).await;
        SessionError::Revoked
    }

    /// Reads one SASL continuation line. `Ok(Err(reply))`: the line was too long; the
    /// exchange is over and `reply` says so.
    pub(crate) async fn read_sasl_line(&mut self) -> Result<Result<Secret, Reply>, SessionError> {
        loop {
            match self.decoder.decode_sasl_line(&mut self.conn.rbuf) {
                Ok(Some(line)) => return Ok(Ok(line)),
                Ok(None) => {
                    self.flush().await?;
                    self.read_more().await?;
                }
                Err(e) => return Ok(Err(e.reply())),
            }
        }
    }

    /// STLS (RFC 2595 §4): only before login, only once, only with a certificate.
    fn stls(&mut self) -> Result<Next, SessionError> {
        if self.conn.io.is_tls() {
            self.protocol_error(Reply::err("Already using TLS"))?;
            return Ok(Next::Continue);
        }
        if self.ctx.tls.is_none() {
            self.protocol_error(Reply::err("STLS not available"))?;
            return Ok(Next::Continue);
        }
        self.reply(Reply::ok("Begin TLS negotiation"));
        Ok(Next::StartTls)
    }

    async fn start_tls(&mut self) -> Result<(), SessionError> {
        self.flush().await?;
        // RFC 2595 §4: commands pipelined after STLS came in cleartext and may have been
        // injected; `start_tls` discards them, and the decoder starts afresh.
        self.decoder = Decoder::new();
        let Some(acceptor) = self.ctx.tls.clone() else {
            return Err(SessionError::Tls(io::Error::other(
                "STLS without a certificate",
            )));
        };
        self.conn
            .start_tls(&acceptor, self.ctx.tls_handshake_timeout)
            .await
            .map_err(SessionError::Tls)?;
        // RFC 2595 §4: the client must discard what it learnt before; so does the server.
        self.state = State::Authorization { user: None };
        debug!("TLS established");
        Ok(())
    }
}
