//! POP3 codec (RFC 1939, RFC 2449 CAPA and response codes, RFC 2595 STLS, RFC 5034 AUTH).
//!
//! [`Decoder`] turns client bytes into [`Command`]s, bounded: a command line longer than 255
//! octets (RFC 2449 §4) is answered with [`Pop3Error::LineTooLong`] and the rest of it is
//! skipped up to the next line feed without being buffered. [`Reply`] and the `encode_*`
//! functions turn replies into bytes; multi-line responses are dot-stuffed here (RFC 1939 §3).
//!
//! Nothing here panics on any input: the session feeds it raw network bytes.

use std::fmt;

use bytes::{BufMut, BytesMut};

mod encode;

pub use encode::{Reply, RespCode, encode_lines, encode_multiline_body, top_len};

/// RFC 2449 §4: a command line is at most 255 octets, terminating CRLF included.
pub const MAX_COMMAND_LINE: usize = 255;

/// RFC 1939 §3: keywords are three or four characters.
pub const MAX_KEYWORD: usize = 4;

/// RFC 1939 §3: each argument may be up to 40 characters long. Applied to message numbers,
/// line counts and mechanism names; user names, passwords and initial responses are bounded
/// by the line length only, since mail addresses and passwords are routinely longer.
pub const MAX_ARGUMENT: usize = 40;

/// Longest SASL continuation line (RFC 5034 §4 sets no limit; base64 of the directory's
/// 4096-octet message limit is 5464 octets, plus slack).
pub const MAX_SASL_LINE: usize = 8192;

/// Secret client data (PASS argument, SASL responses). `Debug` prints `[redacted]`; the bytes
/// are reached only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    /// The secret bytes. Callers must not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A POP3 command. Message numbers are as sent (0 and numbers beyond the maildrop are the
/// session's business: `-ERR no such message`); numbers too large for `u32` saturate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name` (RFC 1939 §7).
    User(String),
    /// `PASS string` (RFC 1939 §7): everything after the first space, spaces included.
    Pass(Secret),
    /// `AUTH [mechanism [initial-response]]` (RFC 5034 §4; without a mechanism, the old
    /// RFC 1734 listing form some clients still probe with).
    Auth {
        /// The mechanism name as sent.
        mechanism: Option<String>,
        /// The base64 initial response (`=` for an empty one), not decoded.
        initial_response: Option<Secret>,
    },
    /// `CAPA` (RFC 2449 §5).
    Capa,
    /// `STLS` (RFC 2595 §4).
    Stls,
    /// `STAT` (RFC 1939 §5).
    Stat,
    /// `LIST [msg]` (RFC 1939 §5).
    List(Option<u32>),
    /// `UIDL [msg]` (RFC 1939 §7).
    Uidl(Option<u32>),
    /// `RETR msg` (RFC 1939 §5).
    Retr(u32),
    /// `TOP msg n` (RFC 1939 §7).
    Top {
        /// Message number.
        msg: u32,
        /// Body lines wanted.
        lines: u32,
    },
    /// `DELE msg` (RFC 1939 §5).
    Dele(u32),
    /// `NOOP` (RFC 1939 §5).
    Noop,
    /// `RSET` (RFC 1939 §5).
    Rset,
    /// `QUIT` (RFC 1939 §4, §6).
    Quit,
}

impl Command {
    /// The command's keyword, for logs.
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth { .. } => "AUTH",
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Uidl(_) => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Top { .. } => "TOP",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
        }
    }
}

/// Why a line was not a command. The connection survives all of them; each maps to one
/// `-ERR` line ([`Pop3Error::reply`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Pop3Error {
    /// The line exceeded the limit; the codec skips the rest of it (RFC 2449 §4).
    #[error("line too long")]
    LineTooLong,
    /// The keyword is not a POP3 command we know.
    #[error("unknown command")]
    UnknownCommand,
    /// A known command with missing, extra or invalid arguments.
    #[error("{0}")]
    Syntax(&'static str),
}

impl Pop3Error {
    /// The `-ERR` reply for this error.
    pub fn reply(&self) -> Reply {
        Reply::err(match self {
            Pop3Error::LineTooLong => "Line too long",
            Pop3Error::UnknownCommand => "Unknown command",
            Pop3Error::Syntax(reason) => reason,
        })
    }
}

/// The sans-IO command decoder of one connection. Holds only the "skipping an over-long line"
/// state; the bytes themselves stay in the caller's buffer.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    /// Discarding input up to the next LF.
    skipping: bool,
}

impl Decoder {
    /// A decoder at the start of a line.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes the next command from `buf`, consuming its line. `Ok(None)`: more input is
    /// needed. An error consumes the offending line (or starts skipping it) and leaves the
    /// decoder ready for the next one.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Command>, Pop3Error> {
        match self.next_line(buf, MAX_COMMAND_LINE)? {
            Some(line) => parse_command(&line).map(Some),
            None => Ok(None),
        }
    }

    /// Decodes one SASL continuation line (RFC 5034 §4: a base64 string or `*`), at most
    /// [`MAX_SASL_LINE`] octets, without its line ending.
    pub fn decode_sasl_line(&mut self, buf: &mut BytesMut) -> Result<Option<Secret>, Pop3Error> {
        Ok(self
            .next_line(buf, MAX_SASL_LINE)?
            .map(|line| Secret::new(line.to_vec())))
    }

    /// Whether the decoder is in the middle of skipping an over-long line.
    pub fn is_skipping(&self) -> bool {
        self.skipping
    }

    /// Takes the next complete line of at most `max` octets (terminator included) off `buf`,
    /// without CRLF (a bare LF is accepted too).
    fn next_line(&mut self, buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, Pop3Error> {
        if self.skipping {
            match buf.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    let _ = buf.split_to(lf + 1);
                    self.skipping = false;
                }
                None => {
                    buf.clear();
                    return Ok(None);
                }
            }
        }
        let window = buf.len().min(max);
        match buf[..window].iter().position(|&b| b == b'\n') {
            Some(lf) => {
                let mut line = buf.split_to(lf + 1);
                line.truncate(lf);
                if line.last() == Some(&b'\r') {
                    line.truncate(lf - 1);
                }
                Ok(Some(line))
            }
            None if buf.len() >= max => {
                // RFC 2449 §4: no valid line can be this long; answer now and drop it, up to
                // its LF if that has arrived, else everything until it does.
                match buf[window..].iter().position(|&b| b == b'\n') {
                    Some(lf) => {
                        let _ = buf.split_to(window + lf + 1);
                    }
                    None => {
                        buf.clear();
                        self.skipping = true;
                    }
                }
                Err(Pop3Error::LineTooLong)
            }
            None => Ok(None),
        }
    }
}

/// Parses one command line (without CRLF).
///
/// RFC 1939 §3: `keyword [SP arg]*`, keywords case-insensitive. Arguments are separated by
/// single spaces; runs of spaces are tolerated, except inside the PASS argument.
fn parse_command(line: &[u8]) -> Result<Command, Pop3Error> {
    if line.iter().any(|&b| b == 0 || (b < 0x20 && b != b'\t')) {
        return Err(Pop3Error::Syntax("Control characters in command"));
    }
    let (keyword, rest) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &line[line.len()..]),
    };
    if keyword.is_empty() || keyword.len() > MAX_KEYWORD {
        return Err(Pop3Error::UnknownCommand);
    }
    let mut upper = [0u8; MAX_KEYWORD];
    upper[..keyword.len()].copy_from_slice(keyword);
    upper.make_ascii_uppercase();
    let args = || {
        rest.split(|&b| b == b' ')
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
    };
    let command = match &upper[..keyword.len()] {
        b"USER" => match args().as_slice() {
            [name] => Command::User(text(name)?),
            [] => return Err(Pop3Error::Syntax("USER needs a user name")),
            _ => return Err(Pop3Error::Syntax("USER takes one argument")),
        },
        // RFC 1939 §7: "the server may treat spaces in the argument as part of the password".
        b"PASS" if rest.is_empty() => return Err(Pop3Error::Syntax("PASS needs a password")),
        b"PASS" => Command::Pass(Secret::new(rest.to_vec())),
        b"AUTH" => match args().as_slice() {
            [] => Command::Auth {
                mechanism: None,
                initial_response: None,
            },
            [mech, more @ ..] if more.len() <= 1 => Command::Auth {
                mechanism: Some(short_arg(mech)?),
                initial_response: more.first().map(|r| Secret::new(r.to_vec())),
            },
            _ => return Err(Pop3Error::Syntax("AUTH takes at most two arguments")),
        },
        b"CAPA" => no_args(rest, Command::Capa)?,
        b"STLS" => no_args(rest, Command::Stls)?,
        b"STAT" => no_args(rest, Command::Stat)?,
        b"NOOP" => no_args(rest, Command::Noop)?,
        b"RSET" => no_args(rest, Command::Rset)?,
        b"QUIT" => no_args(rest, Command::Quit)?,
        b"LIST" => Command::List(optional_number(&args())?),
        b"UIDL" => Command::Uidl(optional_number(&args())?),
        b"RETR" => Command::Retr(one_number(&args())?),
        b"DELE" => Command::Dele(one_number(&args())?),
        b"TOP" => match args().as_slice() {
            [msg, lines] => Command::Top {
                msg: number(msg)?,
                lines: number(lines)?,
            },
            _ => {
                return Err(Pop3Error::Syntax(
                    "TOP needs a message number and a line count",
                ));
            }
        },
        _ => return Err(Pop3Error::UnknownCommand),
    };
    Ok(command)
}

fn no_args(rest: &[u8], command: Command) -> Result<Command, Pop3Error> {
    if rest.iter().all(|&b| b == b' ') {
        Ok(command)
    } else {
        Err(Pop3Error::Syntax("This command takes no arguments"))
    }
}

fn optional_number(args: &[&[u8]]) -> Result<Option<u32>, Pop3Error> {
    match args {
        [] => Ok(None),
        [n] => number(n).map(Some),
        _ => Err(Pop3Error::Syntax("Too many arguments")),
    }
}

fn one_number(args: &[&[u8]]) -> Result<u32, Pop3Error> {
    match args {
        [n] => number(n),
        [] => Err(Pop3Error::Syntax("Message number required")),
        _ => Err(Pop3Error::Syntax("Too many arguments")),
    }
}

/// A decimal number of at most 40 digits (RFC 1939 §3); values beyond `u32` saturate, which
/// names no message and asks for all lines.
fn number(arg: &[u8]) -> Result<u32, Pop3Error> {
    if arg.is_empty() || arg.len() > MAX_ARGUMENT || !arg.iter().all(u8::is_ascii_digit) {
        return Err(Pop3Error::Syntax("Invalid number"));
    }
    Ok(arg.iter().fold(0u32, |n, &d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    }))
}

fn short_arg(arg: &[u8]) -> Result<String, Pop3Error> {
    if arg.len() > MAX_ARGUMENT {
        return Err(Pop3Error::Syntax("Argument too long"));
    }
    text(arg)
}

fn text(arg: &[u8]) -> Result<String, Pop3Error> {
    std::str::from_utf8(arg)
        .map(str::to_owned)
        .map_err(|_| Pop3Error::Syntax("Argument is not valid UTF-8"))
}

/// Appends a SASL server challenge line `+ <base64>` (RFC 5034 §4).
pub fn encode_challenge(base64: &str, buf: &mut BytesMut) {
    buf.reserve(base64.len() + 4);
    buf.put_slice(b"+ ");
    buf.put_slice(base64.as_bytes());
    buf.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
