//! IMAP4rev2 codec (RFC 9051) with IMAP4rev1 compatibility (RFC 3501) and the extensions
//! Tern advertises: LITERAL+/LITERAL- (RFC 7888), SASL-IR (RFC 4959), ENABLE (RFC 5161),
//! CONDSTORE/QRESYNC (RFC 7162), SPECIAL-USE/CREATE-SPECIAL-USE (RFC 6154), LIST-EXTENDED
//! (RFC 5258), LIST-STATUS (RFC 5819), ESEARCH (RFC 4731), SEARCHRES (RFC 5182), MULTIAPPEND
//! (RFC 3502), BINARY (RFC 3516), UIDPLUS (RFC 4315), MOVE (RFC 6851), ID (RFC 2971),
//! APPENDLIMIT/TOOBIG (RFC 7889), UTF8=ACCEPT (RFC 6855) and the response codes of RFC 5530.
//!
//! Client → server: [`CommandDecoder`] frames one command at a time out of the caller's
//! buffer (literals included), asks for a `+` continuation for each synchronizing literal
//! ([`Decoded::NeedContinuation`]) and parses it into a typed [`Command`]. Large APPEND
//! messages can be handed to the caller as they arrive instead of being buffered
//! ([`DecoderConfig::max_inline_messages`], [`Decoded::MessageLiteral`]).
//! Server → client: [`encode`] / [`ResponseEncoder`] write typed [`Response`]s.
//! [`encode_command`] writes commands (for clients, tests and the round-trip fuzz target).
//!
//! A session's read loop:
//!
//! ```
//! use bytes::BytesMut;
//! use tern_proto::imap::{CommandBody, CommandDecoder, Decoded, Response, encode};
//!
//! let mut decoder = CommandDecoder::default();
//! let mut input = BytesMut::from(&b"a1 LOGIN {5}\r\n"[..]); // what the socket gave us
//! let mut output = BytesMut::new();
//! loop {
//!     match decoder.decode(&mut input) {
//!         // Synchronizing literal: the client waits for this before sending the data.
//!         Ok(Some(Decoded::NeedContinuation { .. })) => encode(&Response::ready(), &mut output),
//!         // An APPEND message past `max_inline_messages`: its octets follow as `MessageData`.
//!         Ok(Some(Decoded::MessageLiteral { synchronizing, .. })) => {
//!             if synchronizing {
//!                 encode(&Response::ready(), &mut output);
//!             }
//!         }
//!         Ok(Some(Decoded::MessageData(_octets))) => { /* to a spool file */ }
//!         Ok(Some(Decoded::Command(command))) => match command.body {
//!             // IDLE / AUTHENTICATE: read plain lines with `decoder.decode_line`.
//!             CommandBody::Idle => {}
//!             _ => { /* dispatch */ }
//!         },
//!         Ok(None) => break, // flush `output`, read more into `input`
//!         // BAD, NO [TOOBIG] or BAD [TOOBIG]; the rest of the command is skipped.
//!         Err(e) => encode(&e.response(), &mut output),
//!     }
//! }
//! assert_eq!(&output[..], b"+ Ready\r\n");
//! ```
//!
//! Invariants:
//! - Nothing here panics on any input; the session feeds it raw network bytes.
//! - Buffering is bounded: at most [`DecoderConfig::max_line`] octets of command text plus
//!   [`DecoderConfig::max_other_literals`] octets of literal data are held for one command,
//!   plus for an APPEND up to [`DecoderConfig::max_inline_messages`] (at most
//!   [`DecoderConfig::max_command_literals`]) octets of its messages; message octets past
//!   that are handed out as they arrive, never more than the buffer already holds.
//!   An over-long line or over-limit literal switches the decoder to a "skip until the end of
//!   this command" state that discards input as it arrives.
//! - The decoder's output does not depend on how the input is split into reads.
//! - Mailbox names are UTF-8 in the API; on the wire they are modified UTF-7 unless
//!   UTF8=ACCEPT is in effect ([`DecoderConfig::utf8_accept`], [`ResponseEncoder::utf8`]).

mod command;
mod decoder;
mod encode;
mod parse;
mod response;
mod types;
mod utf7;

#[cfg(test)]
mod tests;

pub use command::{
    AppendContent, AppendData, AppendDataKind, AppendMessage, Command, CommandBody, EntryType,
    FetchCommand, FetchItem, FetchItems, FetchMacro, FetchModifiers, ListCommand, ListReturnOption,
    ListSelectOption, QResyncParams, SearchCommand, SearchKey, SearchReturnOption, SelectParams,
    StoreAction, StoreCommand,
};
pub use decoder::{
    CommandDecoder, DecodeError, Decoded, DecoderConfig, LITERAL_MINUS_MAX, LiteralPlus,
    is_idle_done,
};
pub use encode::command::{encode_command, encode_command_with};
pub use encode::{ResponseEncoder, encode};
pub use response::{
    Address, BodyExtension, BodyFields, BodyStructure, Code, ContinueRequest, Data, Disposition,
    ESearch, Envelope, FetchData, ListData, ListExtendedItem, MultipartExtension, NamespaceDesc,
    Response, SinglePartExtension, SinglePartKind, Status, StatusResponse, StatusValue,
};
pub use types::{
    Date, DateTime, Flag, FlagFetch, FlagPerm, Mailbox, MailboxAttribute, ModSeq, Partial, Secret,
    Section, SectionText, SeqNum, SeqOrUid, SequenceItem, SequenceSet, StatusItem, Tag, Uid,
    UidValidity,
};
pub use utf7::{Utf7Error, decode_modified_utf7, encode_modified_utf7};
