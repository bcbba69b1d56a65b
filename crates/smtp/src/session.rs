//! The connection loop: read with a per-state timeout, frame (command line, SASL line, DATA
//! text, BDAT chunk), dispatch, buffer replies, and flush when no complete input is left
//! (RFC 2920 PIPELINING then needs no special code). STARTTLS swaps the stream in place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use smtp_proto::Request;
use smtp_proto::request::receiver::DummyDataReceiver;
use tern_directory::LiveSession;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::SmtpContext;
use crate::cmd::{BdatLine, ChunkPlan, Outcome, invalid_bdat, parse_bdat};
use crate::error::{SessionError, parse_error_reply};
use crate::message::DataText;
use crate::reply::{Reply, r};
use crate::state::{Flavor, SessionState};
use crate::tls_info::describe_tls;
use tern_common::body::{Body, BodyError};
use tern_common::session::{Conn, ReadOutcome, Wait};
use tern_common::stream::MaybeTls;

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
pub(crate) const MAX_COMMAND_LINE: usize = 512;
/// MAIL may carry extension parameters beyond the base limit (RFC 5321 §4.5.3.1.4 "SMTP
/// extensions may be used to increase this limit"): SIZE (RFC 1870), BODY, SMTPUTF8,
/// AUTH= (RFC 4954 §5 adds 500 octets), RET and ENVID (RFC 3461 §4.3, §4.4: up to 100
/// characters, three octets each as xtext).
pub(crate) const MAX_MAIL_LINE: usize = 1536;
/// RCPT may carry NOTIFY and ORCPT (RFC 3461 §4.1, §4.2: an ORCPT of up to 500 characters).
pub(crate) const MAX_RCPT_LINE: usize = 1024;
/// RFC 4954 §4: AUTH command lines and SASL responses may be up to 12288 octets.
pub(crate) const MAX_AUTH_LINE: usize = 12288;
/// Replies buffered for a client that pipelines without reading are flushed at this size.
const WRITE_FLUSH_THRESHOLD: usize = 16 * 1024;
const READ_CHUNK: usize = 16 * 1024;
const DATA_READ_CHUNK: usize = 64 * 1024;

/// How the next input octets are framed.
enum Input {
    Command,
    /// An over-long line is being dropped up to its LF; then `500 5.5.2`.
    SkipLine,
    /// The next line answers a `334` challenge.
    SaslResponse,
    /// DATA text up to `<CRLF>.<CRLF>`, dot-unstuffed into `body`.
    Data {
        receiver: DataText,
        body: Body,
    },
    /// DATA text of a message that will not be delivered (over the size limit, or its text
    /// could not be kept), read and dropped before `replies` are sent.
    DataDiscard {
        receiver: DataText,
        replies: Vec<Reply>,
    },
    /// A BDAT chunk of `size` octets appended to the transaction's message; `left` to come.
    Chunk {
        left: usize,
        size: usize,
        last: bool,
    },
    /// A refused BDAT chunk, read and dropped before `replies` are sent.
    ChunkDiscard {
        receiver: DummyDataReceiver,
        replies: Vec<Reply>,
    },
}

impl Input {
    fn is_message(&self) -> bool {
        matches!(
            self,
            Input::Data { .. }
                | Input::DataDiscard { .. }
                | Input::Chunk { .. }
                | Input::ChunkDiscard { .. }
        )
    }
}

enum Step {
    /// Something was consumed or answered; try the next unit.
    Progress,
    /// No complete unit in the buffer: flush replies, read more.
    NeedInput,
    /// Flush and end the session.
    Close,
    /// Flush, drop buffered input, upgrade to TLS.
    StartTls,
}

/// What ended a wait for input from outside.
enum Interrupt {
    Shutdown,
    Revoked,
}

/// One SMTP, submission or LMTP session over any byte stream.
pub(crate) struct Session<S> {
    conn: Conn<S>,
    state: SessionState,
    /// Bytes of `rbuf` already searched for LF without finding one.
    scanned: usize,
    wbuf: BytesMut,
    input: Input,
    shutdown: CancellationToken,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(crate) fn new(stream: S, state: SessionState, shutdown: CancellationToken) -> Session<S> {
        Session {
            conn: Conn::new(MaybeTls::Plain(stream), READ_CHUNK),
            state,
            scanned: 0,
            wbuf: BytesMut::with_capacity(1024),
            input: Input::Command,
            shutdown,
        }
    }

    /// Runs the session to its end; with `implicit_tls` the TLS handshake comes first
    /// (RFC 8314 §3.3). Logs one line when it ends.
    pub(crate) async fn run(mut self, implicit_tls: bool) {
        let started = Instant::now();
        let result = self.converse(implicit_tls).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.conn.io.shutdown()).await;
        let state = &self.state;
        match result {
            Ok(reason) => tracing::info!(
                session = %state.session_id,
                peer = %state.peer,
                messages = state.messages,
                errors = state.errors,
                duration_ms = started.elapsed().as_millis() as u64,
                reason,
                "session ended"
            ),
            Err(e) => tracing::info!(
                session = %state.session_id,
                peer = %state.peer,
                messages = state.messages,
                errors = state.errors,
                duration_ms = started.elapsed().as_millis() as u64,
                error = %e,
                "session ended"
            ),
        }
    }

    async fn converse(&mut self, implicit_tls: bool) -> Result<&'static str, SessionError> {
        if implicit_tls && !self.start_tls().await {
            return Ok("TLS handshake failed");
        }
        let word = match self.state.flavor {
            Flavor::Lmtp => "LMTP",
            _ => "ESMTP",
        };
        // RFC 5321 §4.2 / §3.1: the greeting names this host.
        self.wbuf.extend_from_slice(
            Reply::plain(
                220,
                format!("{} {word} Tern ready", self.state.ctx.hostname),
            )
            .bytes(),
        );
        loop {
            if self
                .state
                .live
                .as_ref()
                .is_some_and(LiveSession::is_revoked)
            {
                // Pipelined commands of a revoked login are not run.
                self.revoked();
                self.flush().await?;
                return Ok("credentials revoked");
            }
            match self.step().await? {
                Step::Progress => {
                    if self.wbuf.len() >= WRITE_FLUSH_THRESHOLD {
                        self.flush().await?;
                    }
                }
                Step::NeedInput => {
                    self.flush().await?;
                    if let Some(reason) = self.read().await? {
                        self.flush().await?;
                        return Ok(reason);
                    }
                }
                Step::Close => {
                    self.flush().await?;
                    return Ok("closed");
                }
                Step::StartTls => {
                    self.flush().await?;
                    if !self.start_tls().await {
                        return Ok("TLS handshake failed");
                    }
                }
            }
        }
    }

    /// Reads more input. `Some(reason)` ends the session (after a final reply, if any).
    async fn read(&mut self) -> Result<Option<&'static str>, SessionError> {
        let (mut timeout, chunk) = if self.input.is_message() {
            (self.state.ctx.data_timeout, DATA_READ_CHUNK)
        } else {
            // RFC 5321 §4.5.3.2.7: the timeout is for the next command, not for each read.
            let skipping = matches!(self.input, Input::SkipLine);
            let wait = Wait::Command { skipping };
            (
                self.conn.time_left(wait, self.state.ctx.command_timeout),
                READ_CHUNK,
            )
        };
        // A message as a whole has a deadline besides (DATA from 354 to the final dot, BDAT from
        // the first chunk to the last), checked before every read: a client sending steadily
        // never hits the idle timeout, and a read that finds data never times out.
        let in_message =
            self.input.is_message() || self.state.tx.as_ref().is_some_and(|tx| tx.chunks.is_some());
        let mut by_deadline = false;
        if in_message {
            let left = self
                .state
                .message_deadline
                .saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Some(self.message_deadline_passed()));
            }
            if left < timeout {
                timeout = left;
                by_deadline = true;
            }
        }
        let (shutdown, live) = (&self.shutdown, self.state.live.as_ref());
        let interrupt = async {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => Interrupt::Shutdown,
                () = LiveSession::revoked_opt(live) => Interrupt::Revoked,
            }
        };
        match self
            .conn
            .read_more(chunk, Wait::Read, timeout, interrupt)
            .await?
        {
            ReadOutcome::Interrupted(Interrupt::Shutdown) => {
                self.wbuf.extend_from_slice(
                    Reply::new(421, [4, 3, 2], "Server shutting down, try again later").bytes(),
                );
                Ok(Some("shutdown"))
            }
            ReadOutcome::Interrupted(Interrupt::Revoked) => {
                self.revoked();
                Ok(Some("credentials revoked"))
            }
            ReadOutcome::TimedOut if by_deadline => Ok(Some(self.message_deadline_passed())),
            // RFC 5321 §4.5.3.2.7: the server closes an idle connection with 421.
            ReadOutcome::TimedOut => {
                self.wbuf.extend_from_slice(
                    Reply::new(421, [4, 4, 2], "Timeout, closing connection").bytes(),
                );
                Ok(Some("timeout"))
            }
            ReadOutcome::Eof if self.input.is_message() => {
                // Nothing was stored: messages reach the pipeline only after the final dot.
                tracing::info!(session = %self.state.session_id, "client disconnected during message data; message dropped");
                Ok(Some("disconnected during DATA"))
            }
            ReadOutcome::Eof => Ok(Some("disconnected")),
            ReadOutcome::Data => Ok(None),
        }
    }

    /// The login's credentials were revoked (password changed, account disabled or removed):
    /// RFC 5321 §3.8, 421 closes the connection; 4.7.0 (RFC 3463 §3.8) a security condition.
    /// A message being received is dropped: nothing reaches the pipeline before its end.
    fn revoked(&mut self) {
        tracing::info!(session = %self.state.session_id, "credentials changed or account disabled; closing");
        self.wbuf.extend_from_slice(
            Reply::new(
                421,
                [4, 7, 0],
                "Credentials changed or account disabled, closing connection",
            )
            .bytes(),
        );
    }

    /// The message took longer than its deadline: `421 4.4.2` and the session ends (RFC 5321
    /// §3.8: 421 is the reply that closes the connection).
    fn message_deadline_passed(&mut self) -> &'static str {
        tracing::info!(session = %self.state.session_id, "message not complete by its deadline; closing");
        self.wbuf.extend_from_slice(
            Reply::new(
                421,
                [4, 4, 2],
                "Message not received in time, closing connection",
            )
            .bytes(),
        );
        "message deadline"
    }

    async fn flush(&mut self) -> Result<(), SessionError> {
        if !self.wbuf.is_empty() {
            // A client that stops reading its replies is dropped after the command timeout.
            self.conn
                .flush(&mut self.wbuf, self.state.ctx.command_timeout)
                .await?;
        }
        Ok(())
    }

    /// Queues a reply; true if the session must close after it (221, 421, or too many errors).
    fn push(&mut self, reply: &Reply) -> bool {
        self.wbuf.extend_from_slice(reply.bytes());
        if reply.closes() {
            return true;
        }
        if reply.is_error() {
            self.state.errors += 1;
            if self.state.errors >= self.state.ctx.max_errors {
                tracing::info!(session = %self.state.session_id, errors = self.state.errors, "too many errors, closing");
                self.wbuf.extend_from_slice(
                    Reply::new(421, [4, 7, 0], "Too many errors, closing connection").bytes(),
                );
                return true;
            }
        }
        false
    }

    fn push_all(&mut self, replies: &[Reply]) -> Step {
        let mut close = false;
        for reply in replies {
            close |= self.push(reply);
        }
        if close { Step::Close } else { Step::Progress }
    }

    /// Handles at most one unit of input (a line, or as much message data as is buffered).
    async fn step(&mut self) -> Result<Step, SessionError> {
        match std::mem::replace(&mut self.input, Input::Command) {
            Input::Command => self.command_line(false).await,
            Input::SaslResponse => self.command_line(true).await,
            Input::SkipLine => Ok(self.skip_line()),
            Input::Data { receiver, body } => self.data(receiver, body).await,
            Input::DataDiscard { receiver, replies } => Ok(self.data_discard(receiver, replies)),
            Input::Chunk { left, size, last } => self.chunk(left, size, last).await,
            Input::ChunkDiscard { receiver, replies } => Ok(self.chunk_discard(receiver, replies)),
        }
    }

    /// The longest line allowed for what the buffer starts with.
    fn line_limit(&self, sasl: bool) -> usize {
        let starts = |word: &[u8]| {
            self.conn.rbuf.len() >= word.len()
                && self.conn.rbuf[..word.len()].eq_ignore_ascii_case(word)
        };
        if sasl || starts(b"AUTH ") {
            MAX_AUTH_LINE
        } else if starts(b"MAIL ") {
            MAX_MAIL_LINE
        } else if starts(b"RCPT ") {
            MAX_RCPT_LINE
        } else {
            MAX_COMMAND_LINE
        }
    }

    async fn command_line(&mut self, sasl: bool) -> Result<Step, SessionError> {
        let restore = if sasl {
            Input::SaslResponse
        } else {
            Input::Command
        };
        let limit = self.line_limit(sasl);
        let Some(pos) =
            memchr::memchr(b'\n', &self.conn.rbuf[self.scanned..]).map(|p| p + self.scanned)
        else {
            if self.conn.rbuf.len() > limit {
                // Limits are states, not growing buffers: drop the line as it arrives.
                self.conn.rbuf.clear();
                self.scanned = 0;
                self.abandon_sasl();
                self.input = Input::SkipLine;
                return Ok(Step::NeedInput);
            }
            self.scanned = self.conn.rbuf.len();
            self.input = restore;
            return Ok(Step::NeedInput);
        };
        self.scanned = 0;
        let line = self.conn.rbuf.split_to(pos + 1);
        // Whatever follows (pipelined) is the next command, timed from now.
        self.conn.mark_command_start();
        if line.len() > limit {
            self.abandon_sasl();
            return Ok(if self.push(&r::line_too_long()) {
                Step::Close
            } else {
                Step::Progress
            });
        }
        let outcome = if sasl {
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            self.state.handle_sasl_response(text).await
        } else {
            let request = match parse_bdat(&line) {
                BdatLine::NotBdat => Request::parse(&mut line.iter()),
                BdatLine::Valid { chunk_size, last } => Ok(Request::Bdat {
                    chunk_size,
                    is_last: last,
                }),
                BdatLine::Invalid => return Ok(self.apply(Outcome::Reply(invalid_bdat()))),
            };
            match request {
                Ok(request) => match self.state.dispatch(request, &line).await {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        let Some(reply) = e.reply() else {
                            return Err(e);
                        };
                        tracing::warn!(session = %self.state.session_id, error = %e, "command failed");
                        Outcome::Reply(reply)
                    }
                },
                Err(e) => Outcome::Reply(parse_error_reply(&e)),
            }
        };
        Ok(self.apply(outcome))
    }

    fn abandon_sasl(&mut self) {
        self.state.sasl = None;
        self.state.sasl_success = None;
    }

    fn apply(&mut self, outcome: Outcome) -> Step {
        match outcome {
            Outcome::Reply(reply) => self.push_all(std::slice::from_ref(&reply)),
            Outcome::Data(reply) => {
                self.input = Input::Data {
                    receiver: DataText::new(),
                    body: Body::default(),
                };
                self.push_all(std::slice::from_ref(&reply))
            }
            Outcome::Chunk { size, last, plan } => {
                self.input = match plan {
                    ChunkPlan::Keep => Input::Chunk {
                        left: size,
                        size,
                        last,
                    },
                    ChunkPlan::Discard(replies) => Input::ChunkDiscard {
                        receiver: DummyDataReceiver::new_bdat(size),
                        replies,
                    },
                };
                Step::Progress
            }
            Outcome::Sasl(reply) => {
                self.input = Input::SaslResponse;
                self.push_all(std::slice::from_ref(&reply))
            }
            Outcome::StartTls(reply) => {
                self.wbuf.extend_from_slice(reply.bytes());
                Step::StartTls
            }
        }
    }

    fn skip_line(&mut self) -> Step {
        match memchr::memchr(b'\n', &self.conn.rbuf) {
            Some(pos) => {
                self.conn.rbuf.advance(pos + 1);
                self.conn.mark_command_start();
                if self.push(&r::line_too_long()) {
                    Step::Close
                } else {
                    Step::Progress
                }
            }
            None => {
                self.conn.rbuf.clear();
                self.input = Input::SkipLine;
                Step::NeedInput
            }
        }
    }

    async fn data(&mut self, mut receiver: DataText, mut body: Body) -> Result<Step, SessionError> {
        let ctx = Arc::clone(&self.state.ctx);
        // Un-stuffing never adds text, except a withheld CR given back: one octet more.
        if let Err(e) = body
            .make_room(self.conn.rbuf.len() + 1, &ctx.spooling)
            .await
        {
            return Ok(self.data_failed(receiver, &e));
        }
        let mut bytes = self.conn.rbuf.iter();
        let done = receiver.ingest(&mut bytes, body.text());
        let consumed = self.conn.rbuf.len() - bytes.len();
        self.conn.rbuf.advance(consumed);
        if body.received() > ctx.max_message_size {
            // Stop keeping the text; the rest is read and dropped (RFC 1870 §6.3).
            drop(body);
            let replies = self.state.reply_for_message(r::message_too_big());
            return Ok(self.discard_data(receiver, done, replies));
        }
        if !done {
            if let Err(e) = body.settle(&ctx.spooling).await {
                return Ok(self.data_failed(receiver, &e));
            }
            self.input = Input::Data { receiver, body };
            return Ok(Step::NeedInput);
        }
        let replies = self.finish(body).await?;
        Ok(self.push_all(&replies))
    }

    /// The text of the message arriving cannot be kept (spool I/O): the rest is read and
    /// dropped, then `451 4.3.0`.
    fn data_failed(&mut self, receiver: DataText, e: &BodyError) -> Step {
        tracing::error!(session = %self.state.session_id, error = %e, "message text could not be kept");
        let replies = self.state.reply_for_message(r::temporary());
        self.discard_data(receiver, false, replies)
    }

    /// Drops the rest of the DATA text (if `done` is false, it has not all come yet), then
    /// sends `replies`; the transaction ends.
    fn discard_data(&mut self, receiver: DataText, done: bool, replies: Vec<Reply>) -> Step {
        if done {
            self.state.tx = None;
            return self.push_all(&replies);
        }
        self.input = Input::DataDiscard { receiver, replies };
        Step::Progress
    }

    fn data_discard(&mut self, mut receiver: DataText, replies: Vec<Reply>) -> Step {
        let mut bytes = self.conn.rbuf.iter();
        let done = receiver.discard(&mut bytes);
        let consumed = self.conn.rbuf.len() - bytes.len();
        self.conn.rbuf.advance(consumed);
        if done {
            self.state.tx = None;
            return self.push_all(&replies);
        }
        self.input = Input::DataDiscard { receiver, replies };
        Step::NeedInput
    }

    /// Takes up to `left` octets of a BDAT chunk of `size` into the transaction's message.
    async fn chunk(&mut self, left: usize, size: usize, last: bool) -> Result<Step, SessionError> {
        let ctx = Arc::clone(&self.state.ctx);
        let Some(body) = self.state.tx.as_mut().and_then(|tx| tx.chunks.as_mut()) else {
            // `ChunkPlan::Keep` is only chosen with a transaction in BDAT mode.
            self.input = Input::ChunkDiscard {
                receiver: DummyDataReceiver::new_bdat(left),
                replies: vec![r::bad_sequence("No mail transaction")],
            };
            return Ok(Step::Progress);
        };
        // RFC 3030 §2: exactly `size` octets, whatever they contain.
        let take = left.min(self.conn.rbuf.len());
        if let Err(e) = body.make_room(take, &ctx.spooling).await {
            return Ok(self.chunk_failed(left, last, &e));
        }
        body.text().extend_from_slice(&self.conn.rbuf[..take]);
        self.conn.rbuf.advance(take);
        let left = left - take;
        if let Err(e) = body.settle(&ctx.spooling).await {
            return Ok(self.chunk_failed(left, last, &e));
        }
        if left > 0 {
            self.input = Input::Chunk { left, size, last };
            return Ok(Step::NeedInput);
        }
        if !last {
            return Ok(self.push_all(&[SessionState::chunk_received(size)]));
        }
        let body = self
            .state
            .tx
            .as_mut()
            .and_then(|tx| tx.chunks.take())
            .unwrap_or_default();
        let replies = self.finish(body).await?;
        Ok(self.push_all(&replies))
    }

    /// The chunk arriving cannot be kept (spool I/O): its `left` octets are read and dropped,
    /// then `451 4.3.0`; a failed chunk fails the transaction (RFC 3030 §2).
    fn chunk_failed(&mut self, left: usize, last: bool, e: &BodyError) -> Step {
        tracing::error!(session = %self.state.session_id, error = %e, "message text could not be kept");
        let replies = if last {
            self.state.reply_for_message(r::temporary())
        } else {
            vec![r::temporary()]
        };
        self.state.tx = None;
        self.input = Input::ChunkDiscard {
            receiver: DummyDataReceiver::new_bdat(left),
            replies,
        };
        Step::Progress
    }

    fn chunk_discard(&mut self, mut receiver: DummyDataReceiver, replies: Vec<Reply>) -> Step {
        let mut bytes = self.conn.rbuf.iter();
        let done = receiver.ingest(&mut bytes);
        let consumed = self.conn.rbuf.len() - bytes.len();
        self.conn.rbuf.advance(consumed);
        if done {
            return self.push_all(&replies);
        }
        self.input = Input::ChunkDiscard { receiver, replies };
        Step::NeedInput
    }

    /// The message is complete: into memory under the budget, then the pipeline.
    async fn finish(&mut self, body: Body) -> Result<Vec<Reply>, SessionError> {
        let ctx = Arc::clone(&self.state.ctx);
        let message = match body
            .finish(&ctx.spooling, self.state.message_deadline)
            .await
        {
            Ok(message) => message,
            Err(e) => {
                let reply = match &e {
                    BodyError::Spool(_) => {
                        tracing::error!(session = %self.state.session_id, error = %e, "message text could not be read back");
                        r::temporary()
                    }
                    BodyError::Budget(_) => {
                        tracing::warn!(session = %self.state.session_id, error = %e, "message refused for now");
                        // RFC 3463 §3.5: X.4.5 mail system congestion.
                        Reply::new(
                            451,
                            [4, 4, 5],
                            "Too many messages in progress, try again later",
                        )
                    }
                };
                let replies = self.state.reply_for_message(reply);
                self.state.tx = None;
                return Ok(replies);
            }
        };
        match self.state.finish_message(message).await {
            Ok(replies) => Ok(replies),
            Err(e) => self.error_replies(e),
        }
    }

    fn error_replies(&mut self, e: SessionError) -> Result<Vec<Reply>, SessionError> {
        let Some(reply) = e.reply() else {
            return Err(e);
        };
        tracing::warn!(session = %self.state.session_id, error = %e, "message failed");
        self.state.tx = None;
        Ok(vec![reply])
    }

    /// The TLS handshake, for STARTTLS or implicit TLS. On success the session state is reset
    /// (RFC 3207 §4.2); false ends the session.
    async fn start_tls(&mut self) -> bool {
        // RFC 3207 §4.2, CVE-2011-0411: anything the client pipelined after STARTTLS was sent
        // in cleartext before the handshake; `start_tls` discards it, and framing starts afresh.
        self.scanned = 0;
        self.input = Input::Command;
        let ctx: &Arc<SmtpContext> = &self.state.ctx;
        let Some(acceptor) = ctx.tls.clone() else {
            tracing::error!(session = %self.state.session_id, "TLS requested but no certificate is configured");
            return false;
        };
        let timeout = ctx.tls_handshake_timeout;
        match self.conn.start_tls(&acceptor, timeout).await {
            Ok(()) => {
                let MaybeTls::Tls(tls) = &self.conn.io else {
                    return false;
                };
                let description = describe_tls(tls);
                tracing::debug!(session = %self.state.session_id, tls = %description, "TLS established");
                self.state.tls_started(description);
                true
            }
            Err(e) => {
                tracing::info!(session = %self.state.session_id, error = %e, "TLS handshake failed");
                false
            }
        }
    }
}
