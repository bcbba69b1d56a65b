//! BDAT (RFC 3030 CHUNKING): the decision taken when the command arrives, and the reply once
//! its chunk has been read.

use crate::cmd::Outcome;
use crate::reply::{Reply, r};
use crate::state::{Flavor, SessionState};
use tern_common::body::Body;

/// How a command line parses as BDAT.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BdatLine {
    /// Another command.
    NotBdat,
    /// A BDAT command with its chunk size and end marker.
    Valid { chunk_size: usize, last: bool },
    /// A BDAT command whose chunk size cannot be read: the octets that follow cannot be
    /// delimited, so the session has to end ([`invalid_bdat`]).
    Invalid,
}

// RFC 3030 §2:
// bdat-cmd   ::= "BDAT" SP chunk-size [ SP end-marker ] CR LF
// chunk-size ::= 1*DIGIT
// end-marker ::= "LAST"
/// Parses a BDAT command line (line ending included) ourselves rather than with smtp-proto,
/// whose chunk-size parser restarts from the next digit once the value saturates (so
/// `BDAT 184467440737095516160000000010` read as a 10-octet chunk), and which answers an
/// unreadable size with a 501 after which the chunk's octets would be taken for commands
/// (the Exim CVE-2026-45185 class: a chunk size read differently from what the client
/// meant desynchronises the stream). Trailing white space is tolerated.
pub(crate) fn parse_bdat(line: &[u8]) -> BdatLine {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some((verb, rest)) = line.split_at_checked(4) else {
        return BdatLine::NotBdat;
    };
    if !verb.eq_ignore_ascii_case(b"BDAT") || !matches!(rest.first(), None | Some(b' ' | b'\t')) {
        return BdatLine::NotBdat;
    }
    let Some(rest) = rest.strip_prefix(b" ") else {
        return BdatLine::Invalid;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (size, marker) = rest.split_at(digits);
    // `str::parse` refuses a value past u64::MAX instead of saturating or wrapping.
    let chunk_size = std::str::from_utf8(size)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .and_then(|n| usize::try_from(n).ok());
    let marker = marker.trim_ascii_end();
    let last = if marker.is_empty() {
        Some(false)
    } else {
        marker
            .strip_prefix(b" ")
            .filter(|m| m.eq_ignore_ascii_case(b"LAST"))
            .map(|_| true)
    };
    match (chunk_size, last) {
        (Some(chunk_size), Some(last)) => BdatLine::Valid { chunk_size, last },
        _ => BdatLine::Invalid,
    }
}

/// The reply to a BDAT whose chunk size cannot be read. RFC 3030 §2: the chunk's octets
/// follow the command without waiting for a reply, so nothing after it can be read as a
/// command; RFC 5321 §3.8: a server that must close the connection answers 421.
pub(crate) fn invalid_bdat() -> Reply {
    Reply::new(
        421,
        [4, 5, 2],
        "Syntax: BDAT chunk-size [LAST]; chunk size unreadable, closing connection",
    )
}

/// What to do with the octets of a BDAT chunk.
#[derive(Debug)]
pub(crate) enum ChunkPlan {
    /// Append them to the transaction's message.
    Keep,
    /// Read and drop them, then send these replies (RFC 3030 §2: the chunk is consumed even
    /// when the command fails, so its octets are never taken for commands). One reply, or for
    /// a refused LMTP `BDAT LAST` one per accepted recipient (RFC 2033 §4.2).
    Discard(Vec<Reply>),
}

impl SessionState {
    pub(crate) fn handle_bdat(&mut self, size: usize, last: bool) -> Outcome {
        // The deadline is for the whole transaction, from its first chunk to its last
        // (a refused chunk outside a transaction gets one of its own).
        if self.tx.as_ref().is_none_or(|tx| tx.chunks.is_none()) {
            self.message_deadline = self.ctx.message_deadline();
        }
        let plan = self.bdat_plan(size, last);
        if matches!(plan, ChunkPlan::Discard(_)) {
            // A failed chunk fails the transaction (RFC 3030 §2); later chunks get 503.
            self.tx = None;
        }
        Outcome::Chunk { size, last, plan }
    }

    fn bdat_plan(&mut self, size: usize, last: bool) -> ChunkPlan {
        if self.helo.is_none() {
            return ChunkPlan::Discard(vec![Reply::new(
                503,
                [5, 5, 1],
                format!("Send {} first", self.hello_verb()),
            )]);
        }
        let lmtp = self.flavor == Flavor::Lmtp;
        let max = self.ctx.max_message_size;
        let Some(tx) = &mut self.tx else {
            return ChunkPlan::Discard(vec![r::bad_sequence("Need MAIL before BDAT")]);
        };
        if tx.accepted.is_empty() {
            return ChunkPlan::Discard(vec![Reply::new(554, [5, 5, 1], "No valid recipients")]);
        }
        let so_far = tx.chunks.as_ref().map_or(0, Body::received);
        if so_far.saturating_add(size as u64) > max {
            // RFC 3030 §4.2 with RFC 1870: the message would exceed the limit.
            let replies = if lmtp && last { tx.accepted.len() } else { 1 };
            return ChunkPlan::Discard(vec![r::message_too_big(); replies]);
        }
        // Memory is taken as the octets arrive (`Body`), so a huge announced size costs
        // nothing before they do.
        tx.chunks.get_or_insert_with(Body::default);
        ChunkPlan::Keep
    }

    /// The reply to a chunk that is not the last (the last one ends the message).
    pub(crate) fn chunk_received(size: usize) -> Reply {
        Reply::new(250, [2, 0, 0], format!("{size} octets received"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdat_lines_parse_per_rfc_3030_and_an_unreadable_size_is_invalid() {
        let valid = |chunk_size, last| BdatLine::Valid { chunk_size, last };
        for (line, expected) in [
            (&b"BDAT 10\r\n"[..], valid(10, false)),
            (b"bdat 0 last\r\n", valid(0, true)),
            (b"BDAT 5 LAST \r\n", valid(5, true)),
            (b"BDAT 18446744073709551615\n", valid(usize::MAX, false)),
            (
                b"BDAT 000000000000000000000000000010 LAST\r\n",
                valid(10, true),
            ),
            (b"BDAT 18446744073709551616 LAST\r\n", BdatLine::Invalid),
            (
                b"BDAT 184467440737095516160000000010 LAST\r\n",
                BdatLine::Invalid,
            ),
            (
                b"BDAT 99999999999999999999999999999 LAST\r\n",
                BdatLine::Invalid,
            ),
            (b"BDAT -1 LAST\r\n", BdatLine::Invalid),
            (b"BDAT 0x10\r\n", BdatLine::Invalid),
            (b"BDAT 1e9\r\n", BdatLine::Invalid),
            (b"BDAT\r\n", BdatLine::Invalid),
            (b"BDAT  5\r\n", BdatLine::Invalid),
            (b"BDAT 5 LASTX\r\n", BdatLine::Invalid),
            (b"BDAT 5 NOTLAST\r\n", BdatLine::Invalid),
            (b"BDATX 5\r\n", BdatLine::NotBdat),
            (b"DATA\r\n", BdatLine::NotBdat),
            (b"BDA\r\n", BdatLine::NotBdat),
        ] {
            assert_eq!(
                parse_bdat(line),
                expected,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
