//! The TRANSACTION state (RFC 1939 §5, §7) and the UPDATE state entered by QUIT (§6).

use bytes::BytesMut;
use tern_proto::pop3::{Command, Reply, RespCode, encode_lines, encode_multiline_body, top_len};
use tern_store::{Store, StoreError};
use tracing::{info, warn};

use crate::Pop3Context;
use crate::lock::MaildropLock;
use crate::maildrop::{Entry, Maildrop};

/// A logged-in session's maildrop and the lock that makes it exclusive.
pub(crate) struct Transaction {
    pub(crate) address: String,
    pub(crate) maildrop: Maildrop,
    pub(crate) _lock: MaildropLock,
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
        Command::Retr(msg) => match maildrop.get(msg) {
            Ok(entry) => match read(store, entry).await {
                Ok(bytes) => {
                    Reply::ok(format!("{} octets", entry.size)).encode(out);
                    encode_multiline_body(&bytes, out);
                    return;
                }
                Err(reply) => reply,
            },
            Err(reply) => reply,
        },
        // RFC 1939 §7 TOP: header, blank line, then at most `lines` body lines.
        Command::Top { msg, lines } => match maildrop.get(msg) {
            Ok(entry) => match read(store, entry).await {
                Ok(bytes) => {
                    Reply::ok("Top of message follows").encode(out);
                    let end = top_len(&bytes, lines);
                    encode_multiline_body(&bytes[..end], out);
                    return;
                }
                Err(reply) => reply,
            },
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

/// The bytes of a maildrop message.
async fn read(store: &Store, entry: &Entry) -> Result<bytes::Bytes, Reply> {
    match store.read_blob(&entry.blob).await {
        Ok(bytes) => Ok(bytes),
        // Every copy was expunged (by IMAP) after the snapshot was taken.
        Err(StoreError::NotFound) => Err(Reply::err("Message was removed by another session")),
        Err(e) => {
            warn!(uid = %entry.uid, error = %e, "cannot read message");
            Err(Reply::err("Cannot read the message").with_code(RespCode::SysTemp))
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
