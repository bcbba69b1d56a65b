//! Shared ground for every Tern crate: configuration, address types, secrets, TLS, the
//! listener runtime, and message text on its way in (`body`: spool files under a memory budget).
//!
//! Implementation notes:
//! - Nothing here touches the store or speaks a mail protocol; protocol crates plug their
//!   sessions into the listener runtime.
#![forbid(unsafe_code)]

pub mod address;
pub mod body;
pub mod config;
pub mod disk;
pub mod dns;
pub mod listener;
pub mod secret;
pub mod session;
pub mod stream;
pub mod tls;

pub use address::{Address, AddressError, Domain};
pub use secret::Secret;
