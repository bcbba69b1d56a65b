//! Sans-IO codecs for the protocols Tern owns the grammar of: no tokio, no store.
//! `decode` turns bytes into typed commands, `encode` turns typed replies into bytes; the
//! session crates do the I/O. Fuzz targets and property tests depend on this crate alone.
#![forbid(unsafe_code)]

pub mod imap;
pub mod pop3;
