//! Command framing: finds where one command ends (its literals included), bounded, and hands
//! the framed bytes to the parser.
//!
//! RFC 9051 §2.2: a command is a line ending in CRLF, except that a line ending in a literal
//! header `{n}` / `{n+}` / `~{n}` continues after n octets of literal data. For a
//! synchronizing literal `{n}` the client waits for a `+` continuation request first
//! (§7.5); the decoder reports [`Decoded::NeedContinuation`] once per such literal.
//!
//! APPEND message literals (RFC 9051 §6.3.12) are the one kind of literal that may be as large
//! as a message. Past [`DecoderConfig::max_inline_messages`] the decoder does not keep them:
//! it reports [`Decoded::MessageLiteral`], hands their octets to the caller as they arrive
//! ([`Decoded::MessageData`]), and the command it finally returns says where they went
//! ([`AppendContent::Streamed`](super::AppendContent::Streamed)). The caller can put them
//! on disk; the command text around them is framed and parsed as before.

use bytes::{Buf, Bytes, BytesMut};

use super::command::Command;
use super::parse::{ParseOptions, parse_command};
use super::response::{Code, Response, Status, StatusResponse};
use super::types::{Tag, is_tag_char};

/// RFC 7888 §5: with LITERAL- a non-synchronizing literal may hold at most 4096 octets.
pub const LITERAL_MINUS_MAX: u64 = 4096;

/// The smallest `max_line` the decoder honours: a tag and a command name must fit.
const MIN_LINE: usize = 128;

/// A literal header is recognised only in the last this many octets of a line
/// (`~{` + 20 digits + `+}` fits), so that the decision does not depend on read sizes.
const HEADER_WINDOW: usize = 32;

/// For the reply to an over-long line, a tag is looked for only in the first this many octets.
const TAG_WINDOW: usize = 128;

/// Limits and modes of a [`CommandDecoder`].
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// Most octets of command text (everything but literal data, CRLFs included) in one
    /// command. Default 64 KiB; at least 128 is used.
    pub max_line: usize,
    /// Largest literal accepted (APPENDLIMIT, RFC 7889). Default 50 MiB.
    pub max_literal: u64,
    /// Most APPEND message octets in one command (MULTIAPPEND sends several). Default
    /// 100 MiB.
    pub max_command_literals: u64,
    /// Most literal octets in one command other than APPEND messages (search strings,
    /// mailbox names, passwords), which are buffered whole before the command runs. Default
    /// 64 KiB, the same as `max_line`: only APPEND carries message-sized literals.
    pub max_other_literals: u64,
    /// Most APPEND message octets of one command kept in the buffer with the command; a
    /// message literal that would pass it is handed to the caller instead
    /// ([`Decoded::MessageLiteral`]). Default `u64::MAX`: all are kept (up to
    /// `max_command_literals`).
    pub max_inline_messages: u64,
    /// Deepest nesting of search keys (parentheses, NOT, OR). Default 32.
    pub max_depth: usize,
    /// Which non-synchronizing literals are accepted. Default LITERAL+.
    pub literal_plus: LiteralPlus,
    /// UTF8=ACCEPT is enabled (RFC 6855): mailbox names are UTF-8, not modified UTF-7.
    pub utf8_accept: bool,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_line: 64 * 1024,
            max_literal: 50 * 1024 * 1024,
            max_command_literals: 100 * 1024 * 1024,
            max_other_literals: 64 * 1024,
            max_inline_messages: u64::MAX,
            max_depth: 32,
            literal_plus: LiteralPlus::Plus,
            utf8_accept: false,
        }
    }
}

/// The non-synchronizing literal extension the server advertises (RFC 7888).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralPlus {
    /// LITERAL+: `{n+}` of any accepted size.
    Plus,
    /// LITERAL-: `{n+}` only up to 4096 octets; larger ones get `BAD [TOOBIG]`.
    Minus,
}

/// What [`CommandDecoder::decode`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A complete command.
    Command(Command),
    /// The client announced a synchronizing literal and waits for `+ Ready\r\n` before
    /// sending its `literal_size` octets. Call `decode` again after sending it.
    NeedContinuation {
        /// The tag of the command in progress.
        tag: Tag,
        /// The announced size.
        literal_size: u64,
    },
    /// An APPEND message literal the decoder does not keep: its `size` octets come next as
    /// [`Decoded::MessageData`], in order, and then the rest of the command. For a
    /// synchronizing literal the client waits for `+ Ready\r\n` first, as after
    /// [`Decoded::NeedContinuation`].
    MessageLiteral {
        /// The tag of the command in progress.
        tag: Tag,
        /// The announced size (within `max_literal` and `max_command_literals`).
        size: u64,
        /// Whether the client waits for a continuation request.
        synchronizing: bool,
    },
    /// The next octets of the message literal announced by [`Decoded::MessageLiteral`], as
    /// much as the buffer held (at most one read of input); they are gone from the buffer.
    MessageData(Bytes),
}

/// Why input was not a command. Each variant says how to answer ([`DecodeError::response`]);
/// the decoder has already skipped (or will skip, as it arrives) the rest of the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Syntax error, unknown command or over-long line: answer `tag BAD message` (or
    /// `* BAD message` without a tag).
    #[error("{message}")]
    Bad {
        /// The command's tag, if it could be read.
        tag: Option<Tag>,
        /// What was wrong.
        message: String,
    },
    /// A literal over the limit (RFC 7889): answer `tag NO [TOOBIG]` for a synchronizing
    /// literal (the client will not send it), `tag BAD [TOOBIG]` for a non-synchronizing
    /// one (its octets are discarded as they arrive).
    #[error("literal of {size} octets exceeds the limit of {limit}")]
    TooBig {
        /// The command's tag.
        tag: Option<Tag>,
        /// The announced size (saturated at `u64::MAX`).
        size: u64,
        /// The limit it exceeded.
        limit: u64,
        /// Whether the literal was synchronizing.
        synchronizing: bool,
    },
}

impl DecodeError {
    /// The response to send for this error.
    pub fn response(&self) -> Response {
        match self {
            DecodeError::Bad { tag, message } => Response::bad(tag.clone(), None, message.clone()),
            DecodeError::TooBig {
                tag, synchronizing, ..
            } => {
                let status = if *synchronizing && tag.is_some() {
                    Status::No
                } else {
                    Status::Bad
                };
                Response::Status(StatusResponse {
                    tag: tag.clone(),
                    status,
                    code: Some(Code::TooBig),
                    text: "Literal too big".to_owned(),
                })
            }
        }
    }

    /// The tag of the failed command, if known.
    pub fn tag(&self) -> Option<&Tag> {
        match self {
            DecodeError::Bad { tag, .. } | DecodeError::TooBig { tag, .. } => tag.as_ref(),
        }
    }
}

/// Where the framer is inside the current command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a line that starts at `start`; no CRLF before `scanned`.
    Line { start: usize, scanned: usize },
    /// Inside literal data that ends `remaining` octets after `at`.
    Literal { at: usize, remaining: u64 },
    /// Inside a message literal handed to the caller: its `remaining` octets are taken out
    /// of the buffer at `at` as they arrive, and the command continues at `at`.
    Message { at: usize, remaining: u64 },
}

/// Discarding the rest of a rejected command, without buffering it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Skip {
    /// Literal data still to come.
    Literal { remaining: u64 },
    /// Up to the next CRLF; `tail` holds the last octets seen, to spot a literal header at
    /// the end of the line (`literals` false for plain lines).
    Line { tail: Vec<u8>, literals: bool },
}

/// A parsed literal header at the end of a line.
#[derive(Debug, Clone, Copy)]
struct LiteralHeader {
    size: u64,
    synchronizing: bool,
}

/// The sans-IO command decoder of one connection. The caller appends what it reads to a
/// `BytesMut` and calls [`decode`](Self::decode) until it returns `Ok(None)`; between calls
/// the caller may only append to the buffer. The decoder keeps the current command's bytes
/// in that buffer and consumes them when the command is complete.
#[derive(Debug, Clone)]
pub struct CommandDecoder {
    config: DecoderConfig,
    phase: Phase,
    /// Command text octets in the completed lines of the current command.
    text_len: usize,
    /// Literal octets other than APPEND messages announced so far in the current command.
    literal_total: u64,
    /// APPEND message octets announced so far in the current command.
    message_total: u64,
    /// Of those, the octets kept in the buffer.
    message_inline: u64,
    /// Where the data of each message literal handed to the caller would have started in
    /// the command's frame; the parser takes these as [`AppendContent::Streamed`].
    ///
    /// [`AppendContent::Streamed`]: super::AppendContent::Streamed
    streamed: Vec<usize>,
    skip: Option<Skip>,
}

impl Default for CommandDecoder {
    fn default() -> Self {
        CommandDecoder::new(DecoderConfig::default())
    }
}

impl CommandDecoder {
    /// A decoder with these limits.
    pub fn new(config: DecoderConfig) -> CommandDecoder {
        CommandDecoder {
            config,
            phase: Phase::Line {
                start: 0,
                scanned: 0,
            },
            text_len: 0,
            literal_total: 0,
            message_total: 0,
            message_inline: 0,
            streamed: Vec::new(),
            skip: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Switches UTF8=ACCEPT mailbox names on or off (after `ENABLE UTF8=ACCEPT`).
    pub fn set_utf8_accept(&mut self, on: bool) {
        self.config.utf8_accept = on;
    }

    /// Whether the decoder is discarding the rest of a rejected command.
    pub fn is_skipping(&self) -> bool {
        self.skip.is_some()
    }

    fn max_line(&self) -> usize {
        self.config.max_line.max(MIN_LINE)
    }

    fn reset(&mut self) {
        self.phase = Phase::Line {
            start: 0,
            scanned: 0,
        };
        self.text_len = 0;
        self.literal_total = 0;
        self.message_total = 0;
        self.message_inline = 0;
        self.streamed.clear();
    }

    /// Decodes the next command from `buf`, consuming its octets. `Ok(None)`: more input is
    /// needed. After an error the decoder is ready for the next command.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        loop {
            if !self.run_skip(buf) {
                return Ok(None);
            }
            match self.phase {
                Phase::Literal { at, remaining } => {
                    if at > buf.len() {
                        // The caller dropped bytes it should not have; start afresh.
                        self.reset();
                        continue;
                    }
                    let available = (buf.len() - at) as u64;
                    let take = available.min(remaining);
                    let at = at + take as usize;
                    if take < remaining {
                        self.phase = Phase::Literal {
                            at,
                            remaining: remaining - take,
                        };
                        return Ok(None);
                    }
                    self.phase = Phase::Line {
                        start: at,
                        scanned: at,
                    };
                }
                Phase::Message { at, remaining } => {
                    if at > buf.len() {
                        self.reset();
                        continue;
                    }
                    if remaining == 0 {
                        self.phase = Phase::Line {
                            start: at,
                            scanned: at,
                        };
                        continue;
                    }
                    let take =
                        (buf.len() - at).min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    if take == 0 {
                        return Ok(None);
                    }
                    let data = Bytes::copy_from_slice(buf.get(at..at + take).unwrap_or_default());
                    // What was read after the literal (pipelined command text) closes the gap.
                    buf.copy_within(at + take.., at);
                    buf.truncate(buf.len() - take);
                    self.phase = Phase::Message {
                        at,
                        remaining: remaining - take as u64,
                    };
                    return Ok(Some(Decoded::MessageData(data)));
                }
                Phase::Line { start, scanned } => {
                    if start > buf.len() {
                        self.reset();
                        continue;
                    }
                    if let Some(result) = self.frame_line(buf, start, scanned)? {
                        return Ok(Some(result));
                    }
                    if matches!(self.phase, Phase::Line { .. }) {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Looks for the end of the line starting at `start`. Returns a result when the command
    /// is complete or a continuation is due; `Ok(None)` after moving into a literal or when
    /// more input is needed (the phase tells which).
    fn frame_line(
        &mut self,
        buf: &mut BytesMut,
        start: usize,
        scanned: usize,
    ) -> Result<Option<Decoded>, DecodeError> {
        // A bare LF is command text; only CRLF ends a line.
        let mut from = scanned.max(start + 1);
        let lf = loop {
            let Some(i) = buf
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            else {
                break None;
            };
            let lf = from + i;
            if buf.get(lf - 1) == Some(&b'\r') {
                break Some(lf);
            }
            from = lf + 1;
        };
        let Some(lf) = lf else {
            if self.text_len + (buf.len() - start) > self.max_line() {
                let tag = command_tag(tag_window(buf));
                let tail = buf
                    .get(buf.len().saturating_sub(HEADER_WINDOW + 1).max(start)..)
                    .unwrap_or_default()
                    .to_vec();
                buf.clear();
                self.reset();
                self.skip = Some(Skip::Line {
                    tail,
                    literals: true,
                });
                return Err(line_too_long(tag));
            }
            self.phase = Phase::Line {
                start,
                scanned: buf.len(),
            };
            return Ok(None);
        };
        let line_end = lf + 1;
        self.text_len += line_end - start;
        let header = buf.get(start..lf - 1).and_then(literal_header);
        if self.text_len > self.max_line() {
            let tag = command_tag(tag_window(buf));
            buf.advance(line_end);
            self.reset();
            self.skip = skip_after(header);
            return Err(line_too_long(tag));
        }
        let Some(header) = header else {
            let frame = buf.split_to(line_end).freeze();
            let streamed = std::mem::take(&mut self.streamed);
            self.reset();
            let opts = ParseOptions {
                utf8_accept: self.config.utf8_accept,
                max_depth: self.config.max_depth,
                streamed: &streamed,
            };
            return match parse_command(&frame, opts) {
                Ok(command) => Ok(Some(Decoded::Command(command))),
                Err((tag, e)) => Err(DecodeError::Bad {
                    tag,
                    message: e.0.into_owned(),
                }),
            };
        };
        // The whole first line, as `parse_command` reads it for a command without a literal:
        // any tag that one accepts is accepted here too (the line is bounded by `max_line`).
        let Some(tag) = command_tag(buf.get(..line_end).unwrap_or_default()) else {
            buf.advance(line_end);
            self.reset();
            self.skip = skip_after(Some(header));
            return Err(DecodeError::Bad {
                tag: None,
                message: "missing or invalid tag".to_owned(),
            });
        };
        // Do not solicit (or accept) literal data for a command that cannot succeed.
        if !is_known_command(buf) {
            buf.advance(line_end);
            self.reset();
            self.skip = skip_after(Some(header));
            return Err(DecodeError::Bad {
                tag: Some(tag),
                message: "unknown command".to_owned(),
            });
        }
        let limit = if !header.synchronizing && self.config.literal_plus == LiteralPlus::Minus {
            self.config.max_literal.min(LITERAL_MINUS_MAX)
        } else {
            self.config.max_literal
        };
        // Without this a SEARCH with many literals (`BODY {1048576+}` × 100) would be
        // buffered whole, up to `max_command_literals` per connection; and so would the
        // mailbox name of an APPEND.
        let message = is_message_literal(buf, start);
        let (so_far, command_limit) = if message {
            (self.message_total, self.config.max_command_literals)
        } else {
            (
                self.literal_total,
                self.config
                    .max_command_literals
                    .min(self.config.max_other_literals),
            )
        };
        let total = so_far.saturating_add(header.size);
        if header.size > limit || total > command_limit {
            buf.advance(line_end);
            self.reset();
            self.skip = skip_after(Some(header));
            return Err(DecodeError::TooBig {
                tag: Some(tag),
                size: header.size,
                limit: if header.size > limit {
                    limit
                } else {
                    command_limit
                },
                synchronizing: header.synchronizing,
            });
        }
        if !message {
            self.literal_total = total;
        } else {
            self.message_total = total;
            let inline = self.message_inline.saturating_add(header.size);
            if inline > self.config.max_inline_messages {
                self.streamed.push(line_end);
                self.phase = Phase::Message {
                    at: line_end,
                    remaining: header.size,
                };
                return Ok(Some(Decoded::MessageLiteral {
                    tag,
                    size: header.size,
                    synchronizing: header.synchronizing,
                }));
            }
            self.message_inline = inline;
        }
        self.phase = Phase::Literal {
            at: line_end,
            remaining: header.size,
        };
        if header.synchronizing {
            return Ok(Some(Decoded::NeedContinuation {
                tag,
                literal_size: header.size,
            }));
        }
        Ok(None)
    }

    /// Advances the skip state over `buf`. Returns whether skipping is over.
    fn run_skip(&mut self, buf: &mut BytesMut) -> bool {
        loop {
            match self.skip.take() {
                None => return true,
                Some(Skip::Literal { remaining }) => {
                    let take = (buf.len() as u64).min(remaining);
                    buf.advance(take as usize);
                    if take < remaining {
                        self.skip = Some(Skip::Literal {
                            remaining: remaining - take,
                        });
                        return false;
                    }
                    self.skip = Some(Skip::Line {
                        tail: Vec::new(),
                        literals: true,
                    });
                }
                Some(Skip::Line { mut tail, literals }) => {
                    let crlf = buf.iter().enumerate().position(|(i, &b)| {
                        b == b'\n'
                            && match i.checked_sub(1) {
                                Some(prev) => buf.get(prev) == Some(&b'\r'),
                                None => tail.last() == Some(&b'\r'),
                            }
                    });
                    match crlf {
                        Some(lf) => {
                            let upto = buf.get(..=lf).unwrap_or_default();
                            if upto.len() > HEADER_WINDOW + 2 {
                                tail.clear();
                            }
                            let keep = upto.len().saturating_sub(HEADER_WINDOW + 2);
                            tail.extend_from_slice(upto.get(keep..).unwrap_or_default());
                            buf.advance(lf + 1);
                            let line = tail.get(..tail.len().saturating_sub(2)).unwrap_or_default();
                            let header = if literals { literal_header(line) } else { None };
                            self.skip = skip_after(header);
                        }
                        None => {
                            tail.extend_from_slice(buf);
                            let excess = tail.len().saturating_sub(HEADER_WINDOW + 1);
                            tail.drain(..excess);
                            buf.clear();
                            self.skip = Some(Skip::Line { tail, literals });
                            return false;
                        }
                    }
                }
            }
        }
    }

    /// Reads one plain line (an AUTHENTICATE continuation or IDLE's `DONE`), without its
    /// CRLF, at most `max_line` octets. Call only between commands. An over-long line is
    /// answered with [`DecodeError::Bad`] and skipped up to its CRLF.
    pub fn decode_line(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<u8>>, DecodeError> {
        if !self.run_skip(buf) {
            return Ok(None);
        }
        self.reset();
        let max = self.max_line();
        let window = buf.get(..buf.len().min(max + 2)).unwrap_or_default();
        if let Some(i) = window.windows(2).position(|w| w == b"\r\n") {
            let line = buf.split_to(i + 2);
            return Ok(Some(line.get(..i).unwrap_or_default().to_vec()));
        }
        if buf.len() > max + 1 {
            // Drop the line up to its CRLF, now if it is here, else as it arrives.
            self.skip = Some(Skip::Line {
                tail: Vec::new(),
                literals: false,
            });
            self.run_skip(buf);
            return Err(line_too_long(None));
        }
        Ok(None)
    }

    /// [`decode_line`](Self::decode_line) for SASL data (RFC 9051 §6.2.2): the base64 text,
    /// or `*` to cancel, as a [`Secret`](super::Secret).
    pub fn decode_sasl_line(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<super::Secret>, DecodeError> {
        Ok(self.decode_line(buf)?.map(super::Secret::new))
    }
}

/// Whether a line read with [`CommandDecoder::decode_line`] during IDLE is `DONE`
/// (RFC 9051 §6.3.13: `idle = "IDLE" CRLF "DONE"`, case-insensitive).
pub fn is_idle_done(line: &[u8]) -> bool {
    line.eq_ignore_ascii_case(b"DONE")
}

fn line_too_long(tag: Option<Tag>) -> DecodeError {
    DecodeError::Bad {
        tag,
        message: "Command line too long".to_owned(),
    }
}

/// What to skip after a rejected line that ended in `header`: a non-synchronizing literal's
/// data and the rest of the command; after a synchronizing one, nothing (the client waits
/// for a continuation that will not come, and sees the error instead).
fn skip_after(header: Option<LiteralHeader>) -> Option<Skip> {
    match header {
        Some(h) if !h.synchronizing => Some(Skip::Literal { remaining: h.size }),
        _ => None,
    }
}

/// The first [`TAG_WINDOW`] octets of `buf`.
fn tag_window(buf: &[u8]) -> &[u8] {
    buf.get(..buf.len().min(TAG_WINDOW)).unwrap_or_default()
}

/// The tag at the start of `head`, if it has a valid one followed by SP.
fn command_tag(head: &[u8]) -> Option<Tag> {
    let sp = head.iter().position(|&b| !is_tag_char(b))?;
    if head.get(sp) != Some(&b' ') {
        return None;
    }
    std::str::from_utf8(head.get(..sp)?).ok().and_then(Tag::new)
}

/// The command name after the tag at the start of `buf` (possibly empty).
fn command_name(buf: &[u8]) -> &[u8] {
    let Some(sp) = buf.iter().position(|&b| b == b' ') else {
        return &[];
    };
    let rest = buf.get(sp + 1..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|&b| !super::types::is_atom_char(b))
        .unwrap_or(rest.len());
    rest.get(..end).unwrap_or_default()
}

/// Whether the command at the start of `buf` is APPEND, the one command whose literals
/// are messages (RFC 9051 §6.3.12).
fn is_append(buf: &[u8]) -> bool {
    command_name(buf).eq_ignore_ascii_case(b"APPEND")
}

/// Whether a literal announced at the end of the line starting at `start` is an APPEND
/// message: any literal of an APPEND but a mailbox name, which can only be the first argument
/// (`tag APPEND {n}`; RFC 9051 §9: `append = "APPEND" SP mailbox 1*append-message`, and
/// flags and dates are never literals).
fn is_message_literal(buf: &[u8], start: usize) -> bool {
    if !is_append(buf) {
        return false;
    }
    if start > 0 {
        return true;
    }
    let name = command_name(buf);
    // The tag, SP, the name: where the name ends in `buf`.
    let after_name = buf
        .iter()
        .position(|&b| b == b' ')
        .map_or(buf.len(), |sp| sp + 1 + name.len());
    let rest = buf.get(after_name..).unwrap_or_default();
    !(rest.starts_with(b" {") || rest.starts_with(b" ~{"))
}

/// Whether the command at the start of `buf` (after its tag) names a command that takes
/// arguments, so a literal may follow.
fn is_known_command(buf: &[u8]) -> bool {
    const WITH_ARGUMENTS: [&[u8]; 18] = [
        b"LOGIN",
        b"AUTHENTICATE",
        b"ENABLE",
        b"ID",
        b"SELECT",
        b"EXAMINE",
        b"CREATE",
        b"DELETE",
        b"RENAME",
        b"SUBSCRIBE",
        b"UNSUBSCRIBE",
        b"LIST",
        b"LSUB",
        b"STATUS",
        b"APPEND",
        b"UID",
        b"SEARCH",
        b"COPY",
    ];
    const MORE: [&[u8]; 3] = [b"MOVE", b"FETCH", b"STORE"];
    let name = command_name(buf);
    WITH_ARGUMENTS
        .iter()
        .chain(MORE.iter())
        .any(|known| known.eq_ignore_ascii_case(name))
}

// literal  = "{" number64 ["+"] "}" CRLF *CHAR8
// literal8 = "~{" number64 ["+"] "}" CRLF *OCTET
/// The literal header ending `line` (which excludes the CRLF), looked for in its last
/// [`HEADER_WINDOW`] octets. Sizes that do not fit saturate to `u64::MAX`.
fn literal_header(line: &[u8]) -> Option<LiteralHeader> {
    let window = line.get(line.len().saturating_sub(HEADER_WINDOW)..)?;
    let inner = window.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let inner = inner.get(open + 1..)?;
    let (digits, synchronizing) = match inner.strip_suffix(b"+") {
        Some(digits) => (digits, false),
        None => (inner, true),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    Some(LiteralHeader {
        size,
        synchronizing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_headers_are_recognised_at_line_end_only() {
        let h = literal_header(b"a LOGIN {5}").unwrap();
        assert_eq!((h.size, h.synchronizing), (5, true));
        let h = literal_header(b"a APPEND x ~{12+}").unwrap();
        assert_eq!((h.size, h.synchronizing), (12, false));
        assert!(literal_header(b"a LOGIN {5} x").is_none());
        assert!(literal_header(b"a LOGIN {}").is_none());
        assert!(literal_header(b"a LOGIN {5-}").is_none());
        let h = literal_header(b"a {99999999999999999999999}").unwrap();
        assert_eq!(h.size, u64::MAX);
    }

    #[test]
    fn tags_are_read_from_the_first_line() {
        assert_eq!(command_tag(b"a1 NOOP\r\n").unwrap().as_str(), "a1");
        assert!(command_tag(b"a+ NOOP").is_none());
        assert!(command_tag(b"NOOP\r\n").is_none());
    }
}
