//! BDAT (RFC 3030 CHUNKING): the decision taken when the command arrives, and the reply once
//! its chunk has been read.

use crate::body::Body;
use crate::cmd::Outcome;
use crate::reply::{Reply, r};
use crate::state::{Flavor, SessionState};

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
        let so_far = tx.chunks.as_ref().map_or(0, Body::len);
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
