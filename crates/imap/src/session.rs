//! The connection loop: greeting, read with the per-state timer, decode, dispatch, write,
//! STARTTLS upgrade, IDLE. Commands illegal in the current state are rejected in one place:
//! [`Session::dispatch`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tern_common::body::{Body, BodyError};
use tern_directory::LiveSession;
use tern_proto::imap::{
    Code, Command, CommandBody, CommandDecoder, ContinueRequest, Data, Decoded, DecoderConfig,
    Response, ResponseEncoder, Status, Tag, is_idle_done,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::ImapContext;
use crate::error::{CmdError, SessionError};
use crate::state::{Enabled, State};
use tern_common::session::{Conn, ReadOutcome, Wait};
use tern_common::stream::MaybeTls;

/// Replies are flushed at the latest when this much is buffered (large FETCH responses).
pub(crate) const FLUSH_AT: usize = 256 * 1024;

/// Bound on saying goodbye: a client that stopped reading must not hold the task.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Literal octets one command may carry before login. LOGIN and ID need a few hundred; an
/// unauthenticated client must not make the server buffer APPEND-sized literals.
const PRE_AUTH_LITERALS: u64 = 64 * 1024;

/// APPEND message octets a command keeps in its frame, as for the literals of any other
/// command (`DecoderConfig::max_other_literals`): most messages fit, and are parsed and stored
/// straight from the read buffer. Larger ones are received into a [`Body`].
const INLINE_MESSAGES: u64 = 64 * 1024;

/// Input read at once while a message literal arrives: large reads, a few syscalls per MiB.
const LITERAL_READ: usize = 64 * 1024;

/// Encoded responses waiting to be written.
pub(crate) struct Out {
    pub(crate) buf: BytesMut,
    pub(crate) enc: ResponseEncoder,
}

impl Out {
    pub(crate) fn send(&mut self, response: &Response) {
        self.enc.encode(response, &mut self.buf);
    }
}

/// A successful command's tagged `OK [code] text`.
pub(crate) struct Done {
    pub(crate) code: Option<Code>,
    pub(crate) text: String,
}

pub(crate) fn done(text: impl Into<String>) -> Result<Done, CmdError> {
    Ok(Done {
        code: None,
        text: text.into(),
    })
}

pub(crate) fn done_with(code: Code, text: impl Into<String>) -> Result<Done, CmdError> {
    Ok(Done {
        code: Some(code),
        text: text.into(),
    })
}

pub(crate) type CmdResult = Result<Done, CmdError>;

/// What the loop does after a command.
pub(crate) enum Next {
    Continue,
    Close,
    StartTls,
}

/// The state without its data, to match commands against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    NotAuthenticated,
    Authenticated,
    Selected,
}

pub(crate) struct Session<S> {
    pub(crate) ctx: Arc<ImapContext>,
    pub(crate) conn: Conn<S>,
    pub(crate) peer: SocketAddr,
    pub(crate) shutdown: CancellationToken,
    /// The login's registration; revoked when the account's credentials change.
    pub(crate) live: Option<LiveSession>,
    pub(crate) out: Out,
    pub(crate) decoder: CommandDecoder,
    pub(crate) state: State,
    pub(crate) enabled: Enabled,
    errors: u32,
    /// The APPEND messages of the command now arriving that the decoder handed over
    /// (`AppendContent::Streamed`), in order; taken by `append`, dropped after any command.
    pub(crate) messages: Vec<Body>,
    /// While a message literal arrives: when it must be complete.
    literal_deadline: Option<Instant>,
}

/// Runs a session to its end and logs how it ended.
pub(crate) async fn run<S>(
    ctx: Arc<ImapContext>,
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
    let decoder = new_decoder(&ctx, false);
    let mut session = Session {
        ctx,
        conn: Conn::new(io, 1024),
        peer,
        shutdown,
        live: None,
        out: Out {
            buf: BytesMut::with_capacity(1024),
            enc: ResponseEncoder::default(),
        },
        decoder,
        state: State::NotAuthenticated,
        enabled: Enabled::default(),
        errors: 0,
        messages: Vec::new(),
        literal_deadline: None,
    };
    match session.run_loop().await {
        Ok(()) => debug!("session closed after LOGOUT"),
        Err(SessionError::Eof) => debug!("client disconnected"),
        Err(e @ (SessionError::Timeout | SessionError::TooManyErrors | SessionError::Revoked)) => {
            info!("closing: {e}");
        }
        Err(e) => debug!("session ended: {e}"),
    }
    if !session.out.buf.is_empty() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.flush()).await;
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.conn.io.shutdown()).await;
}

/// The decoder for a session before login (`authenticated` false: small literals only) or
/// after it.
pub(crate) fn new_decoder(ctx: &ImapContext, authenticated: bool) -> CommandDecoder {
    let defaults = DecoderConfig::default();
    let (max_literal, max_command_literals, max_inline_messages) = if authenticated {
        // RFC 7889: the APPENDLIMIT is enforced on the literal announcement.
        (
            ctx.append_limit,
            defaults.max_command_literals.max(ctx.append_limit),
            INLINE_MESSAGES,
        )
    } else {
        (PRE_AUTH_LITERALS, PRE_AUTH_LITERALS, PRE_AUTH_LITERALS)
    };
    CommandDecoder::new(DecoderConfig {
        max_literal,
        max_command_literals,
        max_inline_messages,
        ..defaults
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    async fn run_loop(&mut self) -> Result<(), SessionError> {
        // RFC 9051 §7.1.1: the greeting may carry the capabilities.
        let caps = self.capabilities();
        self.out.send(&Response::untagged(
            Status::Ok,
            Some(Code::Capability(caps)),
            "Tern IMAP4rev2 ready",
        ));
        loop {
            let command = match self.decoder.decode(&mut self.conn.rbuf) {
                Ok(Some(Decoded::Command(command))) => {
                    // Whatever follows (pipelined) is the next command, timed from now.
                    self.conn.mark_command_start();
                    command
                }
                Ok(Some(Decoded::NeedContinuation { .. })) => {
                    // RFC 9051 §7.5: the client waits for this before sending the literal.
                    self.out.send(&Response::ready());
                    self.flush().await?;
                    continue;
                }
                Ok(Some(Decoded::MessageLiteral {
                    size,
                    synchronizing,
                    ..
                })) => {
                    if synchronizing {
                        self.out.send(&Response::ready());
                        self.flush().await?;
                    }
                    self.receive_message(size).await?;
                    continue;
                }
                // `receive_message` takes every piece of the literal it was announced with.
                Ok(Some(Decoded::MessageData(_))) => continue,
                Ok(None) => {
                    self.flush().await?;
                    self.read_more().await?;
                    continue;
                }
                Err(e) => {
                    debug!(error = %e, "malformed command");
                    self.messages.clear();
                    self.protocol_error(&e.response())?;
                    continue;
                }
            };
            if self.revoked() {
                // Pipelined commands of a revoked login are not run.
                return Err(self.ended().await);
            }
            debug!(command = command.body.name(), "command");
            let next = self.dispatch(command).await;
            // Whatever APPEND did not take (it failed early) goes, with its spool files.
            self.messages.clear();
            match next? {
                Next::Continue => {
                    if self.out.buf.len() >= FLUSH_AT {
                        self.flush().await?;
                    }
                }
                Next::Close => {
                    self.flush().await?;
                    return Ok(());
                }
                Next::StartTls => self.start_tls().await?,
            }
            if self.state.selected_mut().is_some_and(|m| m.gone) {
                self.out.send(&Response::untagged(
                    Status::Bye,
                    None,
                    "Selected mailbox was deleted",
                ));
                self.flush().await?;
                return Ok(());
            }
        }
    }

    fn kind(&self) -> Kind {
        match self.state {
            State::NotAuthenticated => Kind::NotAuthenticated,
            State::Authenticated(_) => Kind::Authenticated,
            State::Selected(..) => Kind::Selected,
        }
    }

    /// RFC 9051 §3 and §6: the only place a command is matched to a state.
    async fn dispatch(&mut self, command: Command) -> Result<Next, SessionError> {
        use CommandBody as C;
        use Kind::{Authenticated as A, NotAuthenticated as N, Selected as Sel};
        let Command { tag, body } = command;
        // RFC 9051 §7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH by number.
        let allow_expunge = !matches!(&body,
            C::Fetch(f) if !f.uid)
            && !matches!(&body, C::Store(s) if !s.uid)
            && !matches!(&body, C::Search(s) if !s.uid);
        let kind = self.kind();
        let result = match (kind, body) {
            (_, C::Capability) => {
                let caps = self.capabilities();
                self.out.send(&Response::Data(Data::Capability(caps)));
                done("CAPABILITY completed")
            }
            (_, C::Noop) => done("NOOP completed"),
            (_, C::Logout) => {
                self.out
                    .send(&Response::untagged(Status::Bye, None, "Logging out"));
                self.out.send(&Response::ok(tag, None, "LOGOUT completed"));
                return Ok(Next::Close);
            }
            (_, C::Id { params }) => self.id(params),
            (N, C::StartTls) => return self.starttls(tag),
            (N, C::Login { username, password }) => self.login(&username, &password).await,
            (
                N,
                C::Authenticate {
                    mechanism,
                    initial_response,
                },
            ) => {
                self.authenticate(&tag, &mechanism, initial_response)
                    .await?
            }
            (N, _) => Err(CmdError::bad("Not authenticated")),
            (_, C::StartTls | C::Login { .. } | C::Authenticate { .. }) => {
                Err(CmdError::bad("Already authenticated"))
            }
            (A, C::Enable { capabilities }) => self.enable(&capabilities),
            (_, C::Enable { .. }) => Err(CmdError::bad("ENABLE only in the authenticated state")),
            (_, C::Select { mailbox, params }) => self.select(&mailbox, params, false).await,
            (_, C::Examine { mailbox, params }) => self.select(&mailbox, params, true).await,
            (
                _,
                C::Create {
                    mailbox,
                    special_use,
                },
            ) => self.create(&mailbox, &special_use).await,
            (_, C::Delete { mailbox }) => self.delete(&mailbox).await,
            (_, C::Rename { from, to }) => self.rename(&from, &to).await,
            (_, C::Subscribe { mailbox }) => self.subscribe(&mailbox, true).await,
            (_, C::Unsubscribe { mailbox }) => self.subscribe(&mailbox, false).await,
            (_, C::List(list)) => self.list(list).await,
            (_, C::Lsub { reference, pattern }) => self.lsub(&reference, &pattern).await,
            (_, C::Namespace) => self.namespace(),
            (_, C::Status { mailbox, items }) => self.status(&mailbox, &items).await,
            (_, C::Append { mailbox, messages }) => self.append(&mailbox, messages).await,
            (_, C::Idle) => return self.idle(tag).await,
            (A, _) => Err(CmdError::bad("No mailbox selected")),
            (Sel, C::Check) => done("CHECK completed"),
            (Sel, C::Close) => self.close(true).await,
            (Sel, C::Unselect) => self.close(false).await,
            (Sel, C::Expunge) => self.expunge(None).await,
            (Sel, C::UidExpunge { uids }) => self.expunge(Some(&uids)).await,
            (Sel, C::Search(search)) => self.search(&tag, *search).await,
            (Sel, C::Fetch(fetch)) => self.fetch(*fetch).await,
            (Sel, C::Store(store)) => self.store(*store).await,
            (Sel, C::Copy { uid, set, mailbox }) => self.copy(uid, &set, &mailbox, false).await,
            (Sel, C::Move { uid, set, mailbox }) => self.copy(uid, &set, &mailbox, true).await,
        };
        self.finish(tag, result, allow_expunge).await?;
        Ok(Next::Continue)
    }

    /// Reports pending mailbox changes, then the tagged reply.
    async fn finish(
        &mut self,
        tag: Tag,
        result: Result<Done, CmdError>,
        allow_expunge: bool,
    ) -> Result<(), SessionError> {
        let enabled = self.enabled;
        if let State::Selected(_, mailbox) = &mut self.state
            && let Err(e) = mailbox
                .sync(&self.ctx.store, &mut self.out, allow_expunge, enabled)
                .await
        {
            // The command itself already succeeded or failed; the changes come next time.
            warn!(error = ?e, "could not report mailbox changes");
        }
        match result {
            Ok(Done { code, text }) => {
                self.errors = 0;
                self.out.send(&Response::ok(tag, code, text));
            }
            Err(e) => {
                let bad = e.is_bad();
                let response = e.response(tag);
                if bad {
                    self.protocol_error(&response)?;
                } else {
                    self.out.send(&response);
                }
            }
        }
        Ok(())
    }

    /// Sends a `BAD`; after `max_errors` consecutive ones the session ends with `* BYE`.
    pub(crate) fn protocol_error(&mut self, response: &Response) -> Result<(), SessionError> {
        self.out.send(response);
        self.errors += 1;
        if self.errors >= self.ctx.max_errors {
            self.out.send(&Response::untagged(
                Status::Bye,
                None,
                "Too many errors, closing connection",
            ));
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

    /// RFC 9051 §6.1.1 and the extensions of issue 4; authentication ones only before login.
    pub(crate) fn capabilities(&self) -> Vec<String> {
        let mut caps: Vec<String> = vec!["IMAP4rev1".into(), "IMAP4rev2".into()];
        if matches!(self.state, State::NotAuthenticated) {
            let plaintext = self.plaintext_allowed();
            if !self.conn.io.is_tls() && self.ctx.tls.is_some() {
                caps.push("STARTTLS".into());
            }
            if !plaintext {
                // RFC 9051 §6.2.3: LOGIN is disabled until TLS.
                caps.push("LOGINDISABLED".into());
            }
            caps.push("AUTH=SCRAM-SHA-256".into());
            if plaintext {
                caps.push("AUTH=PLAIN".into());
                caps.push("AUTH=LOGIN".into());
            }
            caps.push("SASL-IR".into());
        }
        caps.extend(
            [
                "IDLE",
                "UIDPLUS",
                "MOVE",
                "CONDSTORE",
                "QRESYNC",
                "SPECIAL-USE",
                "CREATE-SPECIAL-USE",
                "LITERAL+",
                "NAMESPACE",
                "ENABLE",
                "ID",
                "UNSELECT",
                "CHILDREN",
                "ESEARCH",
                "SEARCHRES",
                "LIST-EXTENDED",
                "LIST-STATUS",
                "BINARY",
                "MULTIAPPEND",
            ]
            .map(String::from),
        );
        caps.push(format!("APPENDLIMIT={}", self.ctx.append_limit));
        caps.push("STATUS=SIZE".into());
        caps.push("UTF8=ACCEPT".into());
        caps
    }

    pub(crate) async fn flush(&mut self) -> Result<(), SessionError> {
        // A client that stops reading is dropped after the (login or autologout) timeout.
        let timeout = self.timeout();
        self.conn.flush(&mut self.out.buf, timeout).await?;
        Ok(())
    }

    /// Writes out large responses while a command is still producing them.
    pub(crate) async fn flush_if_big(&mut self) -> Result<(), CmdError> {
        if self.revoked() {
            // A long FETCH stops here; the loop then says `* BYE`.
            return Err(CmdError::no(Code::Expired, "Credentials changed"));
        }
        if self.out.buf.len() >= FLUSH_AT {
            self.flush()
                .await
                .map_err(|e| CmdError::Temporary(format!("write failed: {e}")))?;
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        match self.state {
            State::NotAuthenticated => self.ctx.login_timeout,
            _ => self.ctx.idle_timeout,
        }
    }

    /// Reads more input, waiting at most the autologout time; on shutdown or timeout says
    /// `* BYE` (RFC 9051 §7.1.5).
    pub(crate) async fn read_more(&mut self) -> Result<(), SessionError> {
        let mut idle = self.timeout();
        let mut literal_late = false;
        let mut reserve = 4096;
        if let Some(deadline) = self.literal_deadline {
            reserve = LITERAL_READ;
            let left = deadline.saturating_duration_since(Instant::now());
            if left <= idle {
                idle = left;
                literal_late = true;
            }
        }
        // Before login the whole command must arrive within the login timeout, not each read,
        // so a client trickling octets (slowloris) is cut off like an idle one. After login the
        // autologout timer is per read: a large APPEND on a slow link may take long.
        let wait = if matches!(self.state, State::NotAuthenticated) {
            Wait::Command {
                skipping: self.decoder.is_skipping(),
            }
        } else {
            Wait::Read
        };
        let (shutdown, live) = (&self.shutdown, self.live.as_ref());
        let interrupt = async {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {}
                () = LiveSession::revoked_opt(live) => {}
            }
        };
        match self.conn.read_more(reserve, wait, idle, interrupt).await? {
            ReadOutcome::Interrupted(()) => Err(self.ended().await),
            ReadOutcome::TimedOut if literal_late => Err(self
                .bye("APPEND message not received in time", SessionError::Timeout)
                .await),
            ReadOutcome::TimedOut => Err(self
                .bye("Autologout; idle for too long", SessionError::Timeout)
                .await),
            ReadOutcome::Eof => Err(SessionError::Eof),
            ReadOutcome::Data => Ok(()),
        }
    }

    /// Whether the login's credentials were revoked (password changed, account disabled or
    /// removed).
    pub(crate) fn revoked(&self) -> bool {
        self.live.as_ref().is_some_and(LiveSession::is_revoked)
    }

    /// The goodbye of a session ended from outside: revoked credentials or shutdown.
    async fn ended(&mut self) -> SessionError {
        if !self.revoked() {
            return self
                .bye("Server shutting down", SessionError::Shutdown)
                .await;
        }
        // RFC 9051 §7.1.5: BYE, then the server closes; RFC 5530 §3 EXPIRED: the credentials
        // the session logged in with no longer give access.
        self.out.send(&Response::untagged(
            Status::Bye,
            Some(Code::Expired),
            "Credentials changed or account disabled; log in again",
        ));
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.flush()).await;
        SessionError::Revoked
    }

    /// Receives an APPEND message literal of `size` octets, which the decoder hands over as it
    /// arrives, into a [`Body`] for `append`: in memory up to the spool threshold, then in a
    /// spool file. It must arrive within `append_deadline_base` plus one second per
    /// `append_deadline_rate` octets, or the session ends with `* BYE`; a failing spool file
    /// (disk full) ends it too, as the client cannot be stopped mid-literal otherwise.
    async fn receive_message(&mut self, size: u64) -> Result<(), SessionError> {
        let spooling = self.ctx.spooling.clone();
        self.literal_deadline = Some(tern_common::body::deadline(
            self.ctx.append_deadline_base,
            self.ctx.append_deadline_rate,
            size,
        ));
        let mut body = Body::default();
        let received = loop {
            if body.received() >= size {
                break Ok(());
            }
            match self.decoder.decode(&mut self.conn.rbuf) {
                Ok(Some(Decoded::MessageData(data))) => {
                    if let Err(e) = take_data(&mut body, &data, &spooling).await {
                        break Err(e);
                    }
                }
                Ok(None) => {
                    // Replies to commands pipelined before this one go out now, not after
                    // the literal.
                    let more = match self.flush().await {
                        Ok(()) => self.read_more().await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = more {
                        self.literal_deadline = None;
                        return Err(e);
                    }
                }
                // The decoder hands over the literal's octets and nothing else until they
                // are all there.
                Ok(Some(_)) | Err(_) => {
                    break Err(BodyError::Spool(io::Error::other(
                        "the message literal ended early",
                    )));
                }
            }
        };
        self.literal_deadline = None;
        match received {
            Ok(()) => {
                self.messages.push(body);
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "cannot keep an APPEND message");
                Err(self
                    .bye(
                        "Cannot keep the message now, try again later",
                        SessionError::Io(io::Error::other(e.to_string())),
                    )
                    .await)
            }
        }
    }

    async fn bye(&mut self, text: &str, error: SessionError) -> SessionError {
        self.out.send(&Response::untagged(Status::Bye, None, text));
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.flush()).await;
        error
    }

    /// Reads one line between commands (SASL responses). `Ok(Err(e))`: over-long line.
    pub(crate) async fn read_line(&mut self) -> Result<Result<Vec<u8>, CmdError>, SessionError> {
        loop {
            match self.decoder.decode_line(&mut self.conn.rbuf) {
                Ok(Some(line)) => return Ok(Ok(line)),
                Ok(None) => {
                    self.flush().await?;
                    self.read_more().await?;
                }
                Err(e) => return Ok(Err(CmdError::bad(e.to_string()))),
            }
        }
    }

    /// RFC 9051 §6.3.13 / RFC 2177: `+ idling`, changes pushed as they commit, ends at DONE.
    async fn idle(&mut self, tag: Tag) -> Result<Next, SessionError> {
        self.out.send(&Response::Continue(ContinueRequest::Text {
            code: None,
            text: "idling".into(),
        }));
        let enabled = self.enabled;
        loop {
            if let State::Selected(_, mailbox) = &mut self.state {
                if let Err(e) = mailbox
                    .sync(&self.ctx.store, &mut self.out, true, enabled)
                    .await
                {
                    warn!(error = ?e, "could not report mailbox changes during IDLE");
                }
                if mailbox.gone {
                    return Ok(Next::Continue);
                }
            }
            match self.decoder.decode_line(&mut self.conn.rbuf) {
                Ok(Some(line)) if is_idle_done(&line) => {
                    self.finish(tag, done("IDLE terminated"), true).await?;
                    return Ok(Next::Continue);
                }
                Ok(Some(_)) => {
                    self.protocol_error(&Response::bad(Some(tag), None, "Expected DONE"))?;
                    return Ok(Next::Continue);
                }
                Ok(None) => {}
                Err(e) => {
                    self.protocol_error(&Response::bad(Some(tag), None, e.to_string()))?;
                    return Ok(Next::Continue);
                }
            }
            self.flush().await?;
            let idle = self.ctx.idle_timeout;
            let woke = {
                let Session {
                    conn,
                    state,
                    shutdown,
                    live,
                    ..
                } = &mut *self;
                let change = async {
                    match state {
                        State::Selected(_, mailbox) => mailbox.wait_change().await,
                        _ => std::future::pending().await,
                    }
                };
                // `Some(())`: a mailbox change to report; `None`: the session ends.
                let interrupt = async {
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled() => None,
                        () = LiveSession::revoked_opt(live.as_ref()) => None,
                        () = change => Some(()),
                    }
                };
                conn.read_more(1024, Wait::Read, idle, interrupt).await?
            };
            match woke {
                ReadOutcome::Interrupted(None) => return Err(self.ended().await),
                ReadOutcome::Interrupted(Some(())) | ReadOutcome::Data => {}
                ReadOutcome::TimedOut => {
                    return Err(self
                        .bye("Autologout; idle for too long", SessionError::Timeout)
                        .await);
                }
                ReadOutcome::Eof => return Err(SessionError::Eof),
            }
        }
    }

    /// STARTTLS (RFC 9051 §6.2.1): only before login, once, with a certificate.
    fn starttls(&mut self, tag: Tag) -> Result<Next, SessionError> {
        if self.conn.io.is_tls() || self.ctx.tls.is_none() {
            self.protocol_error(&Response::bad(Some(tag), None, "STARTTLS not available"))?;
            return Ok(Next::Continue);
        }
        self.out
            .send(&Response::ok(tag, None, "Begin TLS negotiation now"));
        Ok(Next::StartTls)
    }

    async fn start_tls(&mut self) -> Result<(), SessionError> {
        self.flush().await?;
        // RFC 9051 §6.2.1 (like RFC 3207 §4.2): anything pipelined after STARTTLS came in
        // cleartext and may have been injected; `start_tls` discards it, and the decoder
        // starts afresh.
        self.decoder = new_decoder(&self.ctx, false);
        let Some(acceptor) = self.ctx.tls.clone() else {
            return Err(SessionError::Tls(io::Error::other(
                "STARTTLS without a certificate",
            )));
        };
        self.conn
            .start_tls(&acceptor, self.ctx.tls_handshake_timeout)
            .await
            .map_err(SessionError::Tls)?;
        debug!("TLS established");
        Ok(())
    }
}

/// Adds one piece of a message literal to `body`, charging the budget or spooling.
async fn take_data(
    body: &mut Body,
    data: &[u8],
    spooling: &tern_common::body::Spooling,
) -> Result<(), BodyError> {
    body.make_room(data.len(), spooling).await?;
    body.text().extend_from_slice(data);
    body.settle(spooling).await
}
