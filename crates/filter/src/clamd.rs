//! A native clamd client: the `INSTREAM` command over a unix socket or TCP.
//!
//! Protocol (clamd(8), "INSTREAM"): send `zINSTREAM\0` (the `z` prefix asks for NUL-terminated
//! replies), then the data as chunks — each a 4-byte big-endian length followed by that many
//! bytes — and a zero-length chunk to end the stream. clamd answers one line:
//! `stream: OK`, `stream: <signature> FOUND`, `INSTREAM size limit exceeded. ERROR` (more than its
//! `StreamMaxLength`; it may close the connection before reading everything) or `<reason> ERROR`.

use std::path::PathBuf;
use std::time::Duration;

use tern_common::config::ClamdAddress;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// Bytes per INSTREAM chunk; clamd's default `StreamMaxLength` is far larger and its chunk limit
/// is its `StreamMaxLength`, so any size below that works. 64 KiB keeps syscalls few.
const CHUNK: usize = 64 * 1024;
/// Longest reply accepted (a signature name is well below 200 bytes).
const MAX_REPLY: usize = 4096;

/// What clamd said about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanResult {
    /// No signature matched.
    Clean,
    /// A signature matched; its name.
    Infected(String),
}

/// Why a scan gave no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClamdError {
    /// Connecting to clamd failed (not running, wrong address, permissions).
    #[error("cannot connect to clamd at {address}: {source}")]
    Connect {
        /// The configured address.
        address: String,
        /// The error.
        source: std::io::Error,
    },
    /// Reading or writing failed after connecting.
    #[error("clamd connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// Connecting or scanning took longer than the configured timeout.
    #[error("clamd timed out after {0:?}")]
    Timeout(Duration),
    /// The message is larger than clamd's `StreamMaxLength`.
    #[error("clamd refused the stream as too large (raise StreamMaxLength or lower max_scan_size)")]
    SizeLimit,
    /// clamd answered with an error.
    #[error("clamd error: {0}")]
    Error(String),
    /// clamd answered something this client does not understand.
    #[error("unexpected clamd reply: {0:?}")]
    Protocol(String),
}

/// Talks to one clamd.
#[derive(Debug, Clone)]
pub struct Clamd {
    address: ClamdAddress,
    timeout: Duration,
}

impl Clamd {
    /// A client for clamd at `address`; `timeout` bounds connecting and, separately, each scan.
    pub fn new(address: ClamdAddress, timeout: Duration) -> Clamd {
        Clamd { address, timeout }
    }

    /// Scans `data` with INSTREAM.
    pub async fn scan(&self, data: &[u8]) -> Result<ScanResult, ClamdError> {
        match &self.address {
            ClamdAddress::Unix(path) => {
                let stream = self.connect(UnixStream::connect(path), path).await?;
                self.scan_on(stream, data).await
            }
            ClamdAddress::Tcp(addr) => {
                let stream = self
                    .connect(TcpStream::connect(addr.as_str()), &PathBuf::from(addr))
                    .await?;
                // Small request header and chunk framing: do not wait for Nagle.
                stream.set_nodelay(true)?;
                self.scan_on(stream, data).await
            }
        }
    }

    async fn connect<S>(
        &self,
        connecting: impl Future<Output = std::io::Result<S>>,
        shown: &std::path::Path,
    ) -> Result<S, ClamdError> {
        match tokio::time::timeout(self.timeout, connecting).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(source)) => Err(ClamdError::Connect {
                address: shown.display().to_string(),
                source,
            }),
            Err(_) => Err(ClamdError::Timeout(self.timeout)),
        }
    }

    async fn scan_on<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        data: &[u8],
    ) -> Result<ScanResult, ClamdError> {
        tokio::time::timeout(self.timeout, instream(stream, data))
            .await
            .map_err(|_| ClamdError::Timeout(self.timeout))?
    }
}

/// Runs one INSTREAM exchange on a connected stream.
pub(crate) async fn instream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    data: &[u8],
) -> Result<ScanResult, ClamdError> {
    let sent = send(&mut stream, data).await;
    // When clamd stops reading (size limit) the write fails, but its reply is usually waiting: read
    // it before reporting the write error.
    let mut reply = Vec::new();
    let read = read_reply(&mut stream, &mut reply).await;
    match (sent, read) {
        (_, Ok(())) if !reply.is_empty() => parse_reply(&reply),
        (Err(e), _) | (Ok(()), Err(e)) => Err(ClamdError::Io(e)),
        (Ok(()), Ok(())) => Err(ClamdError::Protocol(String::new())),
    }
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8]) -> std::io::Result<()> {
    stream.write_all(b"zINSTREAM\0").await?;
    for chunk in data.chunks(CHUNK) {
        // A chunk is at most CHUNK bytes, far below u32::MAX.
        let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        stream.write_all(&len.to_be_bytes()).await?;
        stream.write_all(chunk).await?;
    }
    stream.write_all(&0u32.to_be_bytes()).await?;
    stream.flush().await
}

/// Reads up to the terminating NUL (or EOF), at most [`MAX_REPLY`] bytes.
async fn read_reply<S: AsyncRead + Unpin>(
    stream: &mut S,
    reply: &mut Vec<u8>,
) -> std::io::Result<()> {
    let mut buf = [0u8; 512];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if let Some(nul) = buf[..n].iter().position(|&b| b == 0) {
            reply.extend_from_slice(&buf[..nul]);
            return Ok(());
        }
        reply.extend_from_slice(&buf[..n]);
        if reply.len() > MAX_REPLY {
            return Ok(());
        }
    }
}

/// Parses one clamd reply to INSTREAM (without the terminating NUL or newline).
pub fn parse_reply(reply: &[u8]) -> Result<ScanResult, ClamdError> {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim_end_matches(['\0', '\n', '\r']).trim();
    // Replies to INSTREAM name the stream `stream`; with IDSESSION they carry an `<id>: ` prefix
    // first, which this client never requests.
    let body = text.strip_prefix("stream:").map(str::trim);
    match body {
        Some("OK") => Ok(ScanResult::Clean),
        Some(b) if b.ends_with(" FOUND") => {
            let sig = b.trim_end_matches(" FOUND").trim();
            if sig.is_empty() {
                Err(ClamdError::Protocol(text.to_owned()))
            } else {
                Ok(ScanResult::Infected(sig.to_owned()))
            }
        }
        Some(b) if b.ends_with(" ERROR") => {
            Err(ClamdError::Error(b.trim_end_matches(" ERROR").to_owned()))
        }
        _ if text.starts_with("INSTREAM size limit exceeded") => Err(ClamdError::SizeLimit),
        _ if text.ends_with(" ERROR") => Err(ClamdError::Error(
            text.trim_end_matches(" ERROR").to_owned(),
        )),
        _ => Err(ClamdError::Protocol(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[test]
    fn replies_parse_to_results_and_errors() {
        assert_eq!(parse_reply(b"stream: OK").ok(), Some(ScanResult::Clean));
        assert_eq!(parse_reply(b"stream: OK\n").ok(), Some(ScanResult::Clean));
        assert_eq!(
            parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND").ok(),
            Some(ScanResult::Infected("Win.Test.EICAR_HDB-1".into()))
        );
        assert!(matches!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR"),
            Err(ClamdError::SizeLimit)
        ));
        assert!(matches!(
            parse_reply(b"stream: Can't allocate memory ERROR"),
            Err(ClamdError::Error(e)) if e == "Can't allocate memory"
        ));
        assert!(matches!(
            parse_reply(b"UNKNOWN COMMAND"),
            Err(ClamdError::Protocol(_))
        ));
        assert!(matches!(
            parse_reply(b"stream:  FOUND"),
            Err(ClamdError::Protocol(_))
        ));
        assert!(matches!(parse_reply(b""), Err(ClamdError::Protocol(_))));
    }

    #[tokio::test]
    async fn instream_frames_chunks_and_a_zero_terminator() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let data = vec![b'x'; CHUNK + 10];
        let server = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            // Read until the terminator arrives, then answer.
            loop {
                let n = server.read(&mut buf).await.expect("read");
                got.extend_from_slice(&buf[..n]);
                if got.ends_with(&[0, 0, 0, 0]) && got.len() >= 10 + 4 + CHUNK + 4 + 10 + 4 {
                    break;
                }
            }
            server.write_all(b"stream: OK\0").await.expect("write");
            got
        });
        let result = instream(client, &data).await.expect("scan");
        assert_eq!(result, ScanResult::Clean);
        let got = server.await.expect("join");
        let mut expected = b"zINSTREAM\0".to_vec();
        expected.extend_from_slice(&(CHUNK as u32).to_be_bytes());
        expected.extend_from_slice(&data[..CHUNK]);
        expected.extend_from_slice(&10u32.to_be_bytes());
        expected.extend_from_slice(&data[CHUNK..]);
        expected.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn a_server_that_hangs_up_early_still_gets_its_reply_read() {
        let (client, mut server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            let mut buf = [0u8; 16];
            let _ = server.read(&mut buf).await;
            let _ = server
                .write_all(b"INSTREAM size limit exceeded. ERROR\0")
                .await;
            // Dropping `server` closes the stream while the client is still writing.
        });
        let err = instream(client, &vec![0u8; 1 << 20])
            .await
            .expect_err("refused");
        assert!(matches!(err, ClamdError::SizeLimit), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_clamd_is_a_connect_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clamd = Clamd::new(
            ClamdAddress::Unix(dir.path().join("missing.sock")),
            Duration::from_secs(2),
        );
        assert!(matches!(
            clamd.scan(b"x").await,
            Err(ClamdError::Connect { .. })
        ));
    }
}
