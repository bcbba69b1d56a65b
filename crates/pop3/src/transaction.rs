//! The TRANSACTION state (RFC 1939 §5, §7) and the UPDATE state entered by QUIT (§6).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tern_proto::pop3::{Command, Reply, RespCode, encode_lines, encode_multiline_body, top_len};
use tern_store::{BlobId, Store, StoreError};
use tracing::{info, warn};

use crate::Pop3Context;
use crate::lock::MaildropLock;
use crate::maildrop::{Entry, Maildrop};

/// Read-ahead of RETR/TOP: at most this many messages per store read...
const READ_AHEAD_MESSAGES: usize = 32;
/// ...and at most this many octets (a larger message is read alone, as requested).
const READ_AHEAD_OCTETS: u64 = 256 * 1024;

/// A logged-in session's maildrop and the lock that makes it exclusive.
pub(crate) struct Transaction {
    pub(crate) address: String,
    pub(crate) maildrop: Maildrop,
    pub(crate) read_ahead: ReadAhead,
    pub(crate) _lock: MaildropLock,
}

/// Bytes of the messages following the last one retrieved, read with it in one store round
/// trip: clients drain a maildrop in order (RETR 1, DELE 1, RETR 2, ...), so the next RETR is
/// served from memory. Like the maildrop itself this is a snapshot; a message another
/// session expunges meanwhile may still be retrieved from it (its DELE then removes nothing).
#[derive(Debug, Default)]
pub(crate) struct ReadAhead {
    /// (message number, bytes), ascending.
    next: VecDeque<(u32, Bytes)>,
}

impl ReadAhead {
    /// The bytes of `msg` if read ahead; drops what comes before it (clients do not go back).
    fn take(&mut self, msg: u32) -> Option<Bytes> {
        while self.next.front().is_some_and(|(n, _)| *n < msg) {
            self.next.pop_front();
        }
        match self.next.front() {
            Some((n, _)) if *n == msg => self.next.pop_front().map(|(_, bytes)| bytes),
            _ => None,
        }
    }
}

/// Runs one TRANSACTION-state command, appending its reply to `out`.
pub(crate) async fn handle(
    store: &Store,
    tx: &mut Transaction,
    command: Command,
    out: &mut BytesMut,
) {
    let maildrop = &mut tx.maildrop;
    let reply = match command {
        // RFC 1939 §5: "+OK nn mm", count and size of the messages not marked deleted.
        Command::Stat => {
            let (count, size) = maildrop.stat();
            Reply::ok(format!("{count} {size}"))
        }
        Command::List(None) => {
            let (count, size) = maildrop.stat();
            Reply::ok(format!("{count} messages ({size} octets)")).encode(out);
            let lines: Vec<String> = maildrop
                .live()
                .map(|(n, e)| format!("{n} {}", e.size))
                .collect();
            encode_lines(lines, out);
            return;
        }
        Command::List(Some(msg)) => match maildrop.get(msg) {
            Ok(entry) => Reply::ok(format!("{msg} {}", entry.size)),
            Err(reply) => reply,
        },
        // RFC 1939 §7 UIDL.
        Command::Uidl(None) => {
            Reply::ok("Unique-ID listing follows").encode(out);
            let lines: Vec<String> = maildrop
                .live()
                .map(|(n, e)| format!("{n} {}", maildrop.unique_id(e)))
                .collect();
            encode_lines(lines, out);
            return;
        }
        Command::Uidl(Some(msg)) => match maildrop.get(msg) {
            Ok(entry) => Reply::ok(format!("{msg} {}", maildrop.unique_id(entry))),
            Err(reply) => reply,
        },
        Command::Retr(msg) => match read(store, tx, msg).await {
            Ok((size, bytes)) => {
                Reply::ok(format!("{size} octets")).encode(out);
                encode_multiline_body(&bytes, out);
                return;
            }
            Err(reply) => reply,
        },
        // RFC 1939 §7 TOP: header, blank line, then at most `lines` body lines.
        Command::Top { msg, lines } => match read(store, tx, msg).await {
            Ok((_, bytes)) => {
                Reply::ok("Top of message follows").encode(out);
                let end = top_len(&bytes, lines);
                encode_multiline_body(&bytes[..end], out);
                return;
            }
            Err(reply) => reply,
        },
        Command::Dele(msg) => match maildrop.mark_deleted(msg) {
            Ok(()) => Reply::ok(format!("Message {msg} deleted")),
            Err(reply) => reply,
        },
        Command::Noop => Reply::ok(""),
        Command::Rset => {
            maildrop.reset();
            let (count, size) = maildrop.stat();
            Reply::ok(format!("Maildrop has {count} messages ({size} octets)"))
        }
        // The dispatcher sends only the commands above here.
        other => Reply::err(format!("{} not valid here", other.keyword())),
    };
    reply.encode(out);
}

/// The size and bytes of maildrop message `msg`: from the read-ahead, or read from the store
/// together with the live messages that follow it (see [`ReadAhead`]).
async fn read(store: &Store, tx: &mut Transaction, msg: u32) -> Result<(u64, Bytes), Reply> {
    let entry = tx.maildrop.get(msg)?;
    let size = entry.size;
    if let Some(bytes) = tx.read_ahead.take(msg) {
        return Ok((size, bytes));
    }
    let mut batch: Vec<(u32, BlobId)> = vec![(msg, entry.blob.clone())];
    let mut octets = size;
    for (n, next) in tx.maildrop.live_after(msg) {
        if batch.len() >= READ_AHEAD_MESSAGES
            || octets.saturating_add(next.size) > READ_AHEAD_OCTETS
        {
            break;
        }
        octets += next.size;
        batch.push((n, next.blob.clone()));
    }
    let ids: Vec<BlobId> = batch.iter().map(|(_, blob)| blob.clone()).collect();
    let read = store.read_blobs(&ids).await;
    let entry = tx.maildrop.get(msg)?;
    let mut results = read.map_err(|e| read_error(entry, e))?.into_iter();
    let first = results.next().unwrap_or(Err(StoreError::NotFound));
    tx.read_ahead.next.clear();
    for ((n, _), result) in batch.iter().skip(1).zip(results) {
        // A message that cannot be read is left out and gets its own error when asked for.
        if let Ok(bytes) = result {
            tx.read_ahead.next.push_back((*n, bytes));
        }
    }
    first
        .map(|bytes| (size, bytes))
        .map_err(|e| read_error(entry, e))
}

/// The reply to a failed read of a maildrop message.
fn read_error(entry: &Entry, e: StoreError) -> Reply {
    match e {
        // Every copy was expunged (by IMAP) after the snapshot was taken.
        StoreError::NotFound => Reply::err("Message was removed by another session"),
        e => {
            warn!(uid = %entry.uid, error = %e, "cannot read message");
            Reply::err("Cannot read the message").with_code(RespCode::SysTemp)
        }
    }
}

/// QUIT in TRANSACTION (RFC 1939 §6): enter UPDATE, remove the messages marked deleted in
/// one durable store transaction, then answer. On failure nothing is removed and the reply
/// is `-ERR` (the session ends either way).
pub(crate) async fn update(ctx: &Pop3Context, tx: &mut Transaction) -> Reply {
    let doomed = tx.maildrop.deleted_uids();
    let (left, _) = tx.maildrop.stat();
    let signing_off =
        |extra: String| Reply::ok(format!("{} POP3 server signing off{extra}", ctx.hostname));
    if doomed.is_empty() {
        return signing_off(format!(" ({left} messages left)"));
    }
    match ctx
        .store
        .remove_messages(tx.maildrop.mailbox, &doomed)
        .await
    {
        Ok(removed) => {
            info!(user = %tx.address, deleted = removed.len(), "maildrop updated");
            signing_off(format!(" ({left} messages left)"))
        }
        Err(e) => {
            warn!(user = %tx.address, error = %e, "removing deleted messages failed");
            Reply::err("Some deleted messages not removed").with_code(RespCode::SysTemp)
        }
    }
}
