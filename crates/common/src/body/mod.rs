//! Message text while it arrives (SMTP DATA after dot-unstuffing, the BDAT chunks of a
//! transaction, an IMAP APPEND literal): in memory while it is small, in a spool file once it
//! passes [`Spooling::threshold`], and whole in memory again only at the end of the message,
//! for the delivery pipeline or the store, under the server-wide [`MemoryBudget`]. One
//! [`Spooling`] serves every listener of a server, so one budget bounds them all.
//!
//! Why memory stays bounded (the threat: clients each holding a message of up to
//! `max_message_size` in memory — unauthenticated SMTP clients, 50 connections per address,
//! thousands in all, or authenticated IMAP clients with APPEND):
//! - **While text arrives**, a session holds at most `threshold` octets of it (256 KiB by
//!   default) plus one read of input (64 KiB). The in-memory part is charged to the budget as
//!   it grows; when the budget has no room, the session writes to its spool file early instead
//!   of waiting or failing, and then holds no more than the one read it is handling. So the
//!   text of all messages in progress takes at most the budget plus one read per session — the
//!   same order as the read buffer every connection has anyway — whatever their number.
//! - **At the end of the message** the pipeline needs the whole text (to parse, authenticate,
//!   filter and store it). A small message already holds the budget for what it has in memory.
//!   A spooled one lets go of everything it holds and then waits for a charge of its full size
//!   before reading the file back, so at most the budget's worth of spooled messages is in
//!   memory at once. Sessions waiting for budget hold none of it, so waiters cannot starve
//!   each other into a deadlock; the wait is bounded by the transaction's deadline (SMTP
//!   `451 4.4.5`, IMAP `NO [UNAVAILABLE]` when it runs out). The pipeline's own working
//!   copies (the message with its trace fields, the parsed structure) are a small multiple of
//!   the text it was given.
//! - Small messages, the common case, never touch the disk: no file, no extra system call,
//!   only an uncontended atomic operation on the budget's semaphore per growth of the buffer.

mod budget;
mod spool;

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use budget::Charge;
pub use budget::MemoryBudget;
pub use spool::Spool;

/// Where message text goes while it arrives; one for all sessions of a server.
#[derive(Debug, Clone)]
pub struct Spooling {
    /// Where text beyond `threshold` waits for the end of its message.
    pub spool: Arc<Spool>,
    /// Message text in memory, over all sessions.
    pub budget: MemoryBudget,
    /// Octets of one message kept in memory while it arrives. Default
    /// [`Spooling::DEFAULT_THRESHOLD`].
    pub threshold: usize,
}

impl Spooling {
    /// 256 KiB: nearly all mail is smaller (so it never touches the disk), and writes to the
    /// spool file come in pieces large enough to cost little.
    pub const DEFAULT_THRESHOLD: usize = 256 * 1024;

    /// Spooling into `spool` under a budget of `budget` octets.
    pub fn new(spool: Spool, budget: u64) -> Spooling {
        Spooling {
            spool: Arc::new(spool),
            budget: MemoryBudget::new(budget),
            threshold: Spooling::DEFAULT_THRESHOLD,
        }
    }

    /// The spooling of a server, for all its listeners: the spool directory
    /// `<data_dir>/spool` (created, and emptied of what an earlier run left there) under a
    /// budget of `limits.message_memory`.
    pub fn from_config(config: &crate::config::Config) -> io::Result<Spooling> {
        let spool = Spool::open(config.data_dir.join("spool"))?;
        Ok(Spooling::new(spool, config.limits.message_memory))
    }
}

/// The smallest buffer a message starts with: most messages fit, and a trickling client does
/// not make the buffer grow (and be charged) a few octets at a time.
const MIN_CAPACITY: usize = 8 * 1024;

/// The text of one message so far.
#[derive(Debug, Default)]
pub struct Body {
    /// Text not in the spool file yet: the whole message while it is small.
    pending: Vec<u8>,
    /// Budget held for the capacity of `pending`.
    charge: Charge,
    /// The spool file once the message outgrew the threshold (unlinked; see [`Spool`]).
    spool: Option<Arc<std::fs::File>>,
    /// Octets in the spool file.
    spooled: u64,
}

/// Why the text of a message could not be kept or given to the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Writing or reading the spool file failed (disk full, I/O error).
    #[error("spool: {0}")]
    Spool(#[from] io::Error),
    /// The memory budget had no room for the message before its deadline.
    #[error("no memory budget for a message of {0} octets before the deadline")]
    Budget(u64),
}

/// A whole message, in memory and charged to the budget until it is dropped.
#[derive(Debug)]
pub struct Message {
    pub data: Bytes,
    _charge: Charge,
}

impl Body {
    /// Octets received so far (for DATA: after dot-unstuffing).
    pub fn received(&self) -> u64 {
        self.spooled + self.pending.len() as u64
    }

    /// Where a receiver appends text, after [`Body::make_room`].
    pub fn text(&mut self) -> &mut Vec<u8> {
        &mut self.pending
    }

    /// Makes room in memory for `incoming` more octets, charging the budget for it. The
    /// pending text goes to the spool file first when the message would pass the threshold,
    /// or when the budget has no room (the incoming octets are then taken uncharged, and
    /// [`Body::settle`] writes them out at once).
    pub async fn make_room(
        &mut self,
        incoming: usize,
        spooling: &Spooling,
    ) -> Result<(), BodyError> {
        if self.pending.len() + incoming <= self.pending.capacity() {
            return Ok(());
        }
        if self.pending.len() + incoming > spooling.threshold && !self.pending.is_empty() {
            self.spill(spooling).await?;
            if incoming <= self.pending.capacity() {
                return Ok(());
            }
        }
        let needed = self.pending.len() + incoming;
        // Double, as a Vec would, but never past the threshold (unless one read is larger).
        let mut target = (2 * self.pending.capacity())
            .max(needed)
            .max(MIN_CAPACITY)
            .min(spooling.threshold.max(needed));
        if !spooling.budget.try_grow(&mut self.charge, target) {
            if !self.pending.is_empty() {
                self.spill(spooling).await?;
            }
            target = incoming;
        }
        self.pending
            .reserve_exact(target.saturating_sub(self.pending.len()));
        Ok(())
    }

    /// After text was appended: text past the threshold (one large read) goes to the spool
    /// file, and memory the budget does not cover goes there too and is freed.
    pub async fn settle(&mut self, spooling: &Spooling) -> Result<(), BodyError> {
        let uncharged = self.pending.capacity() as u64 > self.charge.bytes();
        if uncharged || self.pending.len() > spooling.threshold {
            self.spill(spooling).await?;
        }
        if uncharged {
            self.pending = Vec::new();
        }
        Ok(())
    }

    /// The whole message for the pipeline. A message still in memory is ready as it is; a
    /// spooled one waits (until `deadline`) for budget of its full size, then is read back.
    pub async fn finish(
        mut self,
        spooling: &Spooling,
        deadline: Instant,
    ) -> Result<Message, BodyError> {
        if self.spool.is_none() && self.charge.bytes() >= self.pending.len() as u64 {
            return Ok(Message {
                data: Bytes::from(self.pending),
                _charge: self.charge,
            });
        }
        self.spill(spooling).await?;
        let len = self.received();
        let Some(file) = self.spool.take() else {
            // `spill` leaves a spool file behind whenever it returns Ok.
            return Err(BodyError::Spool(io::Error::other("spool file missing")));
        };
        // Let go of everything before waiting: a waiter that held part of the budget could
        // keep another waiter from ever getting its share.
        drop(self);
        let within = deadline.saturating_duration_since(Instant::now());
        let charge = spooling
            .budget
            .charge(len, within)
            .await
            .ok_or(BodyError::Budget(len))?;
        let data = blocking(move || read_all(&file, len)).await?;
        Ok(Message {
            data: Bytes::from(data),
            _charge: charge,
        })
    }

    /// Appends the pending text to the spool file (created on first use) and empties
    /// `pending`, keeping its capacity.
    async fn spill(&mut self, spooling: &Spooling) -> Result<(), BodyError> {
        let file = match &self.spool {
            Some(file) => Arc::clone(file),
            None => {
                let spool = Arc::clone(&spooling.spool);
                let file = Arc::new(blocking(move || spool.create()).await?);
                self.spool = Some(Arc::clone(&file));
                file
            }
        };
        if self.pending.is_empty() {
            return Ok(());
        }
        let text = mem::take(&mut self.pending);
        let written = text.len() as u64;
        let mut text = blocking(move || (&*file).write_all(&text).map(|()| text)).await?;
        text.clear();
        self.pending = text;
        self.spooled += written;
        Ok(())
    }
}

/// Reads the `len` octets of a spool file.
fn read_all(mut file: &std::fs::File, len: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    file.seek(SeekFrom::Start(0))?;
    let mut data = vec![0; len];
    file.read_exact(&mut data)?;
    Ok(data)
}

/// Runs blocking file I/O off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("spool task failed: {e}")))?
}

const MAX_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);

/// The deadline of a message transaction starting now: `base`, plus one second per `rate`
/// octets of the size limit. The limit, not what the client has sent, so the allowance is
/// fixed when the transaction starts and no client can stretch it; a slow link still gets
/// the whole allowance for a small message.
pub fn deadline(base: Duration, rate: u64, max_message_size: u64) -> Instant {
    let millis = max_message_size.saturating_mul(1000) / rate.max(1);
    // At most a day, so that no configuration can overflow the clock.
    Instant::now()
        + base
            .saturating_add(Duration::from_millis(millis))
            .min(MAX_DEADLINE)
}

#[cfg(test)]
mod tests;
