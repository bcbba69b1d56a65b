//! A session's byte stream: cleartext, or TLS after STARTTLS/STLS or on an implicit-TLS port,
//! behind one type so every protocol's session loop is the same for both.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub enum MaybeTls<S> {
    /// Cleartext.
    Plain(S),
    /// After a TLS handshake.
    Tls(Box<TlsStream<S>>),
    /// Between taking the plain stream for a handshake and storing the TLS one; a failed
    /// handshake leaves the session here, and it ends.
    Gone,
}

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeTls<S> {
    /// The stream a session starts on: cleartext, or on an implicit-TLS listener (RFC 8314 §3)
    /// the result of a handshake bounded by `timeout`. An implicit-TLS listener without an
    /// acceptor is an error, never a silent fall-back to cleartext.
    pub async fn open(
        stream: S,
        implicit_tls: bool,
        acceptor: Option<&TlsAcceptor>,
        timeout: Duration,
    ) -> io::Result<MaybeTls<S>> {
        if !implicit_tls {
            return Ok(MaybeTls::Plain(stream));
        }
        let acceptor = acceptor
            .ok_or_else(|| io::Error::other("implicit-TLS listener without a certificate"))?;
        let tls = crate::listener::accept_tls(acceptor, stream, timeout).await?;
        Ok(MaybeTls::Tls(Box::new(tls)))
    }

    /// Writes all of `buf` and flushes, failing with [`io::ErrorKind::TimedOut`] when the
    /// peer takes nothing for `timeout`: a client that stopped reading must not hold its
    /// session (and connection slot) forever. Every write that makes progress restarts the
    /// timer, so a slow but live client is never cut off in the middle of a large response.
    pub async fn write_all_within(&mut self, mut buf: &[u8], timeout: Duration) -> io::Result<()> {
        let stalled = || io::Error::new(io::ErrorKind::TimedOut, "peer stopped reading");
        while !buf.is_empty() {
            match tokio::time::timeout(timeout, self.write(buf)).await {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => buf = buf.get(n..).unwrap_or_default(),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(stalled()),
            }
        }
        tokio::time::timeout(timeout, self.flush())
            .await
            .map_err(|_| stalled())?
    }
}

impl<S> MaybeTls<S> {
    /// Whether TLS is active on this stream.
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }

    /// Takes the cleartext stream out for a TLS handshake.
    pub fn take_plain(&mut self) -> Option<S> {
        match std::mem::replace(self, MaybeTls::Gone) {
            MaybeTls::Plain(s) => Some(s),
            other => {
                *self = other;
                None
            }
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "stream closed after a failed TLS upgrade",
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
            MaybeTls::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            MaybeTls::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            MaybeTls::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
            MaybeTls::Gone => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    // Paused clock: time advances only when every task waits, so a loaded machine cannot
    // stretch the slow reader's 20 ms steps past the 100 ms limit (it did, under CI load).
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_times_out_a_slow_one_does_not() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut stream = MaybeTls::Plain(ours);
        let data = vec![b'x'; 64 * 1024];
        let timeout = Duration::from_millis(100);
        // Nobody reads: the write stalls and gives up.
        let err = stream.write_all_within(&data, timeout).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // Reading slowly but steadily (1 KiB every 20 ms, 64 KiB in over a second): done.
        let reader = tokio::spawn(async move {
            let mut chunk = [0u8; 1024];
            let mut total = 0;
            while let Ok(n) = theirs.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                total += n;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            total
        });
        stream.write_all_within(&data, timeout).await.unwrap();
        drop(stream);
        // What the stalled write got in before giving up, then all of the second.
        assert!(reader.await.unwrap() > data.len());
    }
}
