//! The part of a session loop that SMTP, IMAP and POP3 share: the stream (cleartext or TLS),
//! the read buffer, the per-command clock, writing replies within a deadline, and the
//! STARTTLS/STLS upgrade. Framing, replies and what a timeout or an interrupt means stay with
//! each protocol.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::stream::MaybeTls;

/// Whether a password may be sent on this connection: under TLS, or in cleartext from a
/// loopback peer when `allow_on_loopback` is set (a local webmail or proxy; RFC 8314 §3 wants
/// TLS on every other path, RFC 3207/RFC 9051 §6.2.3/RFC 2595 §4 keep passwords off cleartext).
pub fn passwords_allowed(tls: bool, allow_on_loopback: bool, peer: IpAddr) -> bool {
    tls || (allow_on_loopback && crate::listener::is_loopback(peer))
}

/// How long a read may wait.
#[derive(Clone, Copy, Debug)]
pub enum Wait {
    /// For the next command: the limit runs from when the server began waiting for it, not
    /// from each read, so a client trickling octets (slowloris) is cut off like an idle one.
    /// `skipping`: an over-long line is being dropped, which belongs to the command before.
    Command { skipping: bool },
    /// Each read has the whole limit (message text, literals, sessions after login).
    Read,
}

/// How a read ended.
#[derive(Debug)]
pub enum ReadOutcome<T> {
    /// Octets were appended to the read buffer.
    Data,
    /// The peer closed the connection.
    Eof,
    /// Nothing came within the limit.
    TimedOut,
    /// The interrupt future finished first (shutdown, revoked credentials, a mailbox change).
    Interrupted(T),
}

/// A session's connection.
pub struct Conn<S> {
    pub io: MaybeTls<S>,
    /// Input not yet consumed by the protocol's decoder.
    pub rbuf: BytesMut,
    /// When the server began waiting for the command now arriving.
    command_started: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(io: MaybeTls<S>, read_capacity: usize) -> Conn<S> {
        Conn {
            io,
            rbuf: BytesMut::with_capacity(read_capacity),
            command_started: Instant::now(),
        }
    }

    /// A command was taken from the buffer: whatever follows (pipelined) is the next one,
    /// timed from now.
    pub fn mark_command_start(&mut self) {
        self.command_started = Instant::now();
    }

    /// How long the next read may wait under `limit` as `wait` says; the clock of a command
    /// starts when the server waits for it with nothing buffered.
    pub fn time_left(&mut self, wait: Wait, limit: Duration) -> Duration {
        match wait {
            Wait::Command { skipping } => {
                if self.rbuf.is_empty() && !skipping {
                    self.command_started = Instant::now();
                }
                (self.command_started + limit).saturating_duration_since(Instant::now())
            }
            Wait::Read => limit,
        }
    }

    /// Reads into the read buffer (`reserve` octets of room at least), waiting at most
    /// `limit` as `wait` says, unless `interrupt` finishes first; it is polled before the
    /// read, so an interrupt that is ready wins over input that is.
    pub async fn read_more<T>(
        &mut self,
        reserve: usize,
        wait: Wait,
        limit: Duration,
        interrupt: impl Future<Output = T>,
    ) -> io::Result<ReadOutcome<T>> {
        self.rbuf.reserve(reserve);
        let limit = self.time_left(wait, limit);
        let read = tokio::select! {
            biased;
            t = interrupt => return Ok(ReadOutcome::Interrupted(t)),
            read = tokio::time::timeout(limit, self.io.read_buf(&mut self.rbuf)) => read,
        };
        match read {
            Err(_elapsed) => Ok(ReadOutcome::TimedOut),
            Ok(Ok(0)) => Ok(ReadOutcome::Eof),
            Ok(Ok(_)) => Ok(ReadOutcome::Data),
            Ok(Err(e)) => Err(e),
        }
    }

    /// Writes out and clears `wbuf` (or just flushes the stream when it is empty); fails
    /// with [`io::ErrorKind::TimedOut`] when the peer takes nothing for `timeout`, so a
    /// client that stopped reading cannot hold its session. After a failed write the
    /// connection is of no use, so the buffer is cleared then too: no goodbye is attempted.
    pub async fn flush(&mut self, wbuf: &mut BytesMut, timeout: Duration) -> io::Result<()> {
        if wbuf.is_empty() {
            return tokio::time::timeout(timeout, self.io.flush())
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading"))?;
        }
        let written = self.io.write_all_within(wbuf, timeout).await;
        wbuf.clear();
        written
    }

    /// The STARTTLS/STLS upgrade, after the reply inviting it was flushed. Input pipelined
    /// after the command came in cleartext before the handshake and may have been injected
    /// (RFC 3207 §4.2, CVE-2011-0411; RFC 9051 §6.2.1; RFC 2595 §4): it is discarded, never
    /// taken as a command. The caller resets its decoder and protocol state.
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor, timeout: Duration) -> io::Result<()> {
        if !self.rbuf.is_empty() {
            tracing::info!(
                octets = self.rbuf.len(),
                "discarding input pipelined after STARTTLS"
            );
            self.rbuf.clear();
        }
        let plain = self
            .io
            .take_plain()
            .ok_or_else(|| io::Error::other("no cleartext stream to upgrade"))?;
        let tls = crate::listener::accept_tls(acceptor, plain, timeout).await?;
        self.io = MaybeTls::Tls(Box::new(tls));
        Ok(())
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
