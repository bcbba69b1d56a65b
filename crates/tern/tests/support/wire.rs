//! A raw TCP client for hostile-client tests: it writes exactly the bytes it is given and
//! reads replies line by line with a timeout, so a test can split commands anywhere, send
//! invalid bytes, disconnect or reset at any point, and assert exact reply codes.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a read waits for the server before the test fails.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// One client connection.
pub struct Wire {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Wire {
    /// Connects to `addr` from 127.0.0.1.
    pub fn connect(addr: SocketAddr) -> Wire {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Wire::from_stream(stream)
    }

    /// Connects from `local` (any 127.0.0.0/8 address works on Linux), standing for another
    /// client IP address.
    pub fn connect_from(local: IpAddr, addr: SocketAddr) -> Wire {
        let stream = connect_from(local, addr)
            .unwrap_or_else(|e| panic!("connect {addr} from {local}: {e}"));
        Wire::from_stream(stream)
    }

    /// Connects with a small receive buffer (4 KiB), so that a server writing to a client
    /// that does not read is blocked after little data.
    pub fn connect_small_window(addr: SocketAddr) -> Wire {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let stream = runtime
            .block_on(async move {
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.set_recv_buffer_size(4096)?;
                let stream = socket.connect(addr).await?.into_std()?;
                stream.set_nonblocking(false)?;
                Ok::<_, io::Error>(stream)
            })
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Wire::from_stream(stream)
    }

    fn from_stream(stream: TcpStream) -> Wire {
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("set read timeout");
        let _ = stream.set_nodelay(true);
        let reader = BufReader::new(stream.try_clone().expect("clone socket"));
        Wire { reader, stream }
    }

    /// The socket, e.g. to clone it for a writer thread.
    pub fn socket(&self) -> &TcpStream {
        &self.stream
    }

    /// Changes how long reads wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set read timeout");
    }

    /// Writes `bytes` as they are.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream
            .write_all(bytes.as_ref())
            .expect("write to server");
    }

    /// Writes `bytes`; the error if the server has gone away.
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        self.stream.write_all(bytes.as_ref())
    }

    /// The next line without its line ending; `None` at end of stream (or a reset).
    pub fn try_line(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => Ok(None),
            Ok(_) => {
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next `n` octets as they come (an IMAP literal's data); fails the test at end of
    /// stream or on timeout.
    pub fn octets(&mut self, n: usize) -> Vec<u8> {
        let mut octets = vec![0; n];
        io::Read::read_exact(&mut self.reader, &mut octets)
            .unwrap_or_else(|e| panic!("{n} octets from the server: {e}"));
        octets
    }

    /// The next line; fails the test at end of stream or on timeout.
    pub fn line(&mut self) -> String {
        match self.try_line() {
            Ok(Some(line)) => line,
            Ok(None) => panic!("server closed the connection"),
            Err(e) => panic!("no line from the server: {e}"),
        }
    }

    /// One SMTP reply: every line of a multi-line reply (RFC 5321 §4.2.1).
    pub fn smtp_reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines;
            }
        }
    }

    /// Sends an SMTP command (CRLF added) and returns the last line of its reply.
    pub fn smtp(&mut self, command: &str) -> String {
        self.send(format!("{command}\r\n"));
        self.smtp_reply().pop().unwrap_or_default()
    }

    /// Lines up to the tagged IMAP response for `tag`: (the lines before it, the tagged line).
    pub fn imap_until(&mut self, tag: &str) -> (Vec<String>, String) {
        let prefix = format!("{tag} ");
        let mut before = Vec::new();
        loop {
            let line = self.line();
            if line.starts_with(&prefix) {
                return (before, line);
            }
            before.push(line);
        }
    }

    /// Sends `tag command` (CRLF added) and reads up to its tagged response.
    pub fn imap(&mut self, tag: &str, command: &str) -> (Vec<String>, String) {
        self.send(format!("{tag} {command}\r\n"));
        self.imap_until(tag)
    }

    /// Sends a POP3 command (CRLF added) and returns the one-line reply.
    pub fn pop3(&mut self, command: &str) -> String {
        self.send(format!("{command}\r\n"));
        self.line()
    }

    /// Reads until the server closes the connection, which must happen within `within`;
    /// returns the lines it sent before closing.
    pub fn expect_close(&mut self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "server did not close the connection within {within:?}; it sent {lines:?}"
            );
            self.set_timeout(left);
            match self.try_line() {
                Ok(None) => return lines,
                Ok(Some(line)) => lines.push(line),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!(
                        "server did not close the connection within {within:?}; it sent {lines:?}"
                    )
                }
                Err(e) => panic!("reading until close: {e}"),
            }
        }
    }

    /// Sends `unit` over and over from another thread and never reads a reply, until the
    /// server stops taking input (or `max` octets are sent). Returns the thread; it ends when
    /// the server drops the connection or [`Wire::reset`]/drop of the socket clone happens.
    pub fn flood_without_reading(
        &self,
        unit: &'static [u8],
        max: usize,
    ) -> std::thread::JoinHandle<usize> {
        let mut stream = self.stream.try_clone().expect("clone socket");
        std::thread::spawn(move || {
            let mut sent = 0;
            while sent < max && stream.write_all(unit).is_ok() {
                sent += unit.len();
            }
            sent
        })
    }

    /// Closes the connection with a RST instead of a FIN (`SO_LINGER` 0), as a crashed client
    /// or a middlebox would.
    pub fn reset(self) {
        let Wire { reader, stream } = self;
        drop(reader);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            stream.set_nonblocking(true).expect("nonblocking");
            let stream = tokio::net::TcpStream::from_std(stream).expect("tokio stream");
            stream.set_zero_linger().expect("SO_LINGER 0");
            drop(stream);
        });
    }
}

fn connect_from(local: IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let socket = match local {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(local, 0))?;
        let stream = socket.connect(addr).await?.into_std()?;
        stream.set_nonblocking(false)?;
        Ok(stream)
    })
}

/// A client at `addr` that pipelines `unit` forever and never reads the replies holds its
/// connection only until the server's timeout: once the socket buffers are full the server
/// cannot write, and must give up. The server must allow one connection per address, so
/// that the slot is seen taken (`refusal`) and then free again, within `within`.
pub fn assert_stalled_reader_is_dropped(
    addr: SocketAddr,
    prepare: impl FnOnce(&mut Wire),
    unit: &'static [u8],
    refusal: &str,
    within: Duration,
) {
    let mut wire = Wire::connect_small_window(addr);
    prepare(&mut wire);
    let started = Instant::now();
    let flood = wire.flood_without_reading(unit, 512 << 20);
    std::thread::sleep(Duration::from_millis(200));
    let mut probe = Wire::connect(addr);
    assert_eq!(
        probe.expect_close(Duration::from_secs(5)),
        [refusal],
        "the stalled client should still hold the only slot"
    );
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let mut probe = Wire::connect(addr);
        let first = probe.try_line();
        if matches!(&first, Ok(Some(line)) if line != refusal) {
            break;
        }
        assert!(
            started.elapsed() < within,
            "a client that never reads still holds its connection after {within:?}"
        );
    }
    let sent = flood.join().expect("flood thread");
    assert!(sent < 512 << 20, "the server kept reading {sent} octets");
    drop(wire);
}

/// A connection flood: `threads` threads each open and drop `per_thread` connections to `addr`
/// at once (refused or dropped by the server, whatever it does). Join the handles to wait.
pub fn connection_burst(
    addr: SocketAddr,
    threads: usize,
    per_thread: usize,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    drop(TcpStream::connect(addr));
                }
            })
        })
        .collect()
}

/// A slowloris client: sends `line` one octet per `interval`, never finishing it, until the
/// server closes the connection or `limit` has passed. Returns how many octets it sent, the
/// lines the server said and how long it took.
pub fn slowloris(
    addr: SocketAddr,
    line: &'static [u8],
    interval: Duration,
    limit: Duration,
) -> std::thread::JoinHandle<(usize, Vec<String>, Duration)> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut wire = Wire::connect(addr);
        wire.set_timeout(Duration::from_millis(50));
        let (mut sent, mut said) = (0, Vec::new());
        while started.elapsed() < limit {
            if wire.try_send(&line[sent % line.len()..][..1]).is_err() {
                break;
            }
            sent += 1;
            // Collect what the server says while we dawdle; stop at its close.
            let until = Instant::now() + interval;
            while Instant::now() < until {
                match wire.try_line() {
                    Ok(Some(l)) => said.push(l),
                    Ok(None) => return (sent, said, started.elapsed()),
                    Err(_) => {}
                }
            }
        }
        (sent, said, started.elapsed())
    })
}

/// Streams a `size`-octet command line in 64 KiB writes and returns the largest growth of the
/// server's resident memory seen meanwhile (and of its peak), in KiB.
pub fn stream_long_line(
    server: &super::TestServer,
    wire: &mut Wire,
    prefix: &[u8],
    size: usize,
) -> u64 {
    let (rss_before, peak_before) = server.memory_kib();
    wire.send(prefix);
    let chunk = vec![b'A'; 64 * 1024];
    let mut sent = prefix.len();
    let mut grown = 0;
    while sent < size {
        wire.send(&chunk);
        sent += chunk.len();
        if sent % (8 << 20) < chunk.len() {
            grown = grown.max(server.memory_kib().0.saturating_sub(rss_before));
        }
    }
    wire.send(b"\r\n");
    let (rss, peak) = server.memory_kib();
    grown
        .max(rss.saturating_sub(rss_before))
        .max(peak.saturating_sub(peak_before))
}
