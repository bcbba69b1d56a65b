//! The connection loop: read with a per-state timeout, frame (command line, SASL line, DATA
//! text, BDAT chunk), dispatch, buffer replies, and flush when no complete input is left
//! (RFC 2920 PIPELINING then needs no special code). STARTTLS swaps the stream in place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use smtp_proto::Request;
use smtp_proto::request::receiver::{BdatReceiver, DummyDataReceiver};
use tern_common::listener::accept_tls;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::SmtpContext;
use crate::cmd::{ChunkPlan, Outcome};
use crate::error::{SessionError, parse_error_reply};
use crate::message::DataText;
use crate::reply::{Reply, r};
use crate::state::{Flavor, SessionState};
use crate::tls_info::describe_tls;
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
        body: Vec<u8>,
    },
    /// DATA text of a message that exceeded the size limit, read and dropped.
    DataDiscard(DataText),
    /// A BDAT chunk appended to the transaction's message.
    Chunk {
        receiver: BdatReceiver,
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
                | Input::DataDiscard(_)
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

/// One SMTP, submission or LMTP session over any byte stream.
pub(crate) struct Session<S> {
    stream: MaybeTls<S>,
    state: SessionState,
    rbuf: BytesMut,
    /// Bytes of `rbuf` already searched for LF without finding one.
    scanned: usize,
    wbuf: Vec<u8>,
    input: Input,
    shutdown: CancellationToken,
    /// When the server began waiting for the command line now arriving: the whole line must
    /// come within `command_timeout`, so a client trickling octets (slowloris) is cut off
    /// like an idle one.
    command_started: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(crate) fn new(stream: S, state: SessionState, shutdown: CancellationToken) -> Session<S> {
        Session {
            stream: MaybeTls::Plain(stream),
            state,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            scanned: 0,
            wbuf: Vec::with_capacity(1024),
            input: Input::Command,
            shutdown,
            command_started: Instant::now(),
        }
    }

    /// Runs the session to its end; with `implicit_tls` the TLS handshake comes first
    /// (RFC 8314 §3.3). Logs one line when it ends.
    pub(crate) async fn run(mut self, implicit_tls: bool) {
        let started = Instant::now();
        let result = self.converse(implicit_tls).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stream.shutdown()).await;
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
        let (timeout, chunk) = if self.input.is_message() {
            (self.state.ctx.data_timeout, DATA_READ_CHUNK)
        } else {
            // RFC 5321 §4.5.3.2.7: the timeout is for the next command, not for each read.
            if self.rbuf.is_empty() && !matches!(self.input, Input::SkipLine) {
                self.command_started = Instant::now();
            }
            let deadline = self.command_started + self.state.ctx.command_timeout;
            (
                deadline.saturating_duration_since(Instant::now()),
                READ_CHUNK,
            )
        };
        self.rbuf.reserve(chunk);
        let read = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => {
                self.wbuf.extend_from_slice(
                    Reply::new(421, [4, 3, 2], "Server shutting down, try again later").bytes(),
                );
                return Ok(Some("shutdown"));
            }
            read = tokio::time::timeout(timeout, self.stream.read_buf(&mut self.rbuf)) => read,
        };
        match read {
            // RFC 5321 §4.5.3.2.7: the server closes an idle connection with 421.
            Err(_) => {
                self.wbuf.extend_from_slice(
                    Reply::new(421, [4, 4, 2], "Timeout, closing connection").bytes(),
                );
                Ok(Some("timeout"))
            }
            Ok(Ok(0)) if self.input.is_message() => {
                // Nothing was stored: messages reach the pipeline only after the final dot.
                tracing::info!(session = %self.state.session_id, "client disconnected during message data; message dropped");
                Ok(Some("disconnected during DATA"))
            }
            Ok(Ok(0)) => Ok(Some("disconnected")),
            Ok(Ok(_)) => Ok(None),
            Ok(Err(e)) => Err(e.into()),
        }
    }

    async fn flush(&mut self) -> Result<(), SessionError> {
        if !self.wbuf.is_empty() {
            // A client that stops reading its replies is dropped after the command timeout.
            self.stream
                .write_all_within(&self.wbuf, self.state.ctx.command_timeout)
                .await?;
            self.wbuf.clear();
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
            Input::DataDiscard(receiver) => Ok(self.data_discard(receiver)),
            Input::Chunk {
                receiver,
                size,
                last,
            } => self.chunk(receiver, size, last).await,
            Input::ChunkDiscard { receiver, replies } => Ok(self.chunk_discard(receiver, replies)),
        }
    }

    /// The longest line allowed for what the buffer starts with.
    fn line_limit(&self, sasl: bool) -> usize {
        let starts = |word: &[u8]| {
            self.rbuf.len() >= word.len() && self.rbuf[..word.len()].eq_ignore_ascii_case(word)
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
        let Some(pos) = memchr::memchr(b'\n', &self.rbuf[self.scanned..]).map(|p| p + self.scanned)
        else {
            if self.rbuf.len() > limit {
                // Limits are states, not growing buffers: drop the line as it arrives.
                self.rbuf.clear();
                self.scanned = 0;
                self.abandon_sasl();
                self.input = Input::SkipLine;
                return Ok(Step::NeedInput);
            }
            self.scanned = self.rbuf.len();
            self.input = restore;
            return Ok(Step::NeedInput);
        };
        self.scanned = 0;
        let line = self.rbuf.split_to(pos + 1);
        // Whatever follows (pipelined) is the next command, timed from now.
        self.command_started = Instant::now();
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
            match Request::parse(&mut line.iter()) {
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
                    body: Vec::new(),
                };
                self.push_all(std::slice::from_ref(&reply))
            }
            Outcome::Chunk { size, last, plan } => {
                self.input = match plan {
                    ChunkPlan::Keep => Input::Chunk {
                        receiver: BdatReceiver::new(size, last),
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
        match memchr::memchr(b'\n', &self.rbuf) {
            Some(pos) => {
                self.rbuf.advance(pos + 1);
                self.command_started = Instant::now();
                if self.push(&r::line_too_long()) {
                    Step::Close
                } else {
                    Step::Progress
                }
            }
            None => {
                self.rbuf.clear();
                self.input = Input::SkipLine;
                Step::NeedInput
            }
        }
    }

    async fn data(
        &mut self,
        mut receiver: DataText,
        mut body: Vec<u8>,
    ) -> Result<Step, SessionError> {
        let mut bytes = self.rbuf.iter();
        let done = receiver.ingest(&mut bytes, &mut body);
        let consumed = self.rbuf.len() - bytes.len();
        self.rbuf.advance(consumed);
        let too_big = body.len() as u64 > self.state.ctx.max_message_size;
        if too_big {
            // Stop keeping the text; the rest is read and dropped (RFC 1870 §6.3).
            let discard = receiver;
            drop(body);
            if done {
                return Ok(self.message_too_big());
            }
            self.input = Input::DataDiscard(discard);
            return Ok(Step::Progress);
        }
        if !done {
            self.input = Input::Data { receiver, body };
            return Ok(Step::NeedInput);
        }
        let replies = self.finish(body).await?;
        Ok(self.push_all(&replies))
    }

    fn data_discard(&mut self, mut receiver: DataText) -> Step {
        let mut bytes = self.rbuf.iter();
        let done = receiver.discard(&mut bytes);
        let consumed = self.rbuf.len() - bytes.len();
        self.rbuf.advance(consumed);
        if done {
            return self.message_too_big();
        }
        self.input = Input::DataDiscard(receiver);
        Step::NeedInput
    }

    fn message_too_big(&mut self) -> Step {
        let replies: Vec<Reply> = match (&self.state.tx, self.state.flavor) {
            (Some(tx), Flavor::Lmtp) => tx.accepted.iter().map(|_| r::message_too_big()).collect(),
            _ => vec![r::message_too_big()],
        };
        self.state.tx = None;
        self.push_all(&replies)
    }

    async fn chunk(
        &mut self,
        mut receiver: BdatReceiver,
        size: usize,
        last: bool,
    ) -> Result<Step, SessionError> {
        let Some(body) = self.state.tx.as_mut().and_then(|tx| tx.chunks.as_mut()) else {
            // `ChunkPlan::Keep` is only chosen with a transaction in BDAT mode.
            self.input = Input::ChunkDiscard {
                receiver: DummyDataReceiver::new_bdat(size),
                replies: vec![r::bad_sequence("No mail transaction")],
            };
            return Ok(Step::Progress);
        };
        let mut bytes = self.rbuf.iter();
        let done = receiver.ingest(&mut bytes, body);
        let consumed = self.rbuf.len() - bytes.len();
        self.rbuf.advance(consumed);
        if !done {
            self.input = Input::Chunk {
                receiver,
                size,
                last,
            };
            return Ok(Step::NeedInput);
        }
        let replies = match self.state.chunk_received(size, last).await {
            Ok(replies) => replies,
            Err(e) => self.error_replies(e)?,
        };
        Ok(self.push_all(&replies))
    }

    fn chunk_discard(&mut self, mut receiver: DummyDataReceiver, replies: Vec<Reply>) -> Step {
        let mut bytes = self.rbuf.iter();
        let done = receiver.ingest(&mut bytes);
        let consumed = self.rbuf.len() - bytes.len();
        self.rbuf.advance(consumed);
        if done {
            return self.push_all(&replies);
        }
        self.input = Input::ChunkDiscard { receiver, replies };
        Step::NeedInput
    }

    async fn finish(&mut self, body: Vec<u8>) -> Result<Vec<Reply>, SessionError> {
        match self.state.finish_message(body).await {
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
        // in cleartext before the handshake and must not be taken as a command.
        if !self.rbuf.is_empty() {
            tracing::info!(session = %self.state.session_id, bytes = self.rbuf.len(), "discarding input pipelined after STARTTLS");
            self.rbuf.clear();
        }
        self.scanned = 0;
        self.input = Input::Command;
        let ctx: &Arc<SmtpContext> = &self.state.ctx;
        let Some(acceptor) = ctx.tls.clone() else {
            tracing::error!(session = %self.state.session_id, "TLS requested but no certificate is configured");
            return false;
        };
        let timeout = ctx.tls_handshake_timeout;
        let Some(plain) = self.stream.take_plain() else {
            return false;
        };
        match accept_tls(&acceptor, plain, timeout).await {
            Ok(tls) => {
                let description = describe_tls(&tls);
                tracing::debug!(session = %self.state.session_id, tls = %description, "TLS established");
                self.stream = MaybeTls::Tls(Box::new(tls));
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
