use super::*;
use crate::tls::TlsStore;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio_rustls::TlsConnector;

fn conn() -> (Conn<DuplexStream>, DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(1024);
    (Conn::new(MaybeTls::Plain(ours), 1024), theirs)
}

const COMMAND: Wait = Wait::Command { skipping: false };

// Paused clock: time moves only when every task waits, so load cannot stretch the steps.
#[tokio::test(start_paused = true)]
async fn the_command_clock_runs_from_the_start_of_the_command_not_each_read() {
    let (mut conn, mut peer) = conn();
    let limit = Duration::from_secs(10);
    let never = std::future::pending::<()>;
    // A trickle: one octet every 4 s; each read finds data, but the line is not done by 10 s.
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        peer.write_all(b"x").await.unwrap();
        outcomes.push(conn.read_more(16, COMMAND, limit, never()).await.unwrap());
    }
    assert!(outcomes.iter().all(|o| matches!(o, ReadOutcome::Data)));
    // The clock started at the first read (empty buffer, 4 s in); 8 s later, 2 s are left.
    let started = tokio::time::Instant::now();
    let outcome = conn.read_more(16, COMMAND, limit, never()).await.unwrap();
    assert!(matches!(outcome, ReadOutcome::TimedOut));
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    let started = tokio::time::Instant::now();
    // Per-read waiting gives each read the whole limit.
    let outcome = conn
        .read_more(16, Wait::Read, limit, never())
        .await
        .unwrap();
    assert!(matches!(outcome, ReadOutcome::TimedOut));
    assert_eq!(started.elapsed(), limit);
    // Once the command was taken, the next one has its full time again.
    conn.rbuf.clear();
    conn.mark_command_start();
    tokio::time::sleep(Duration::from_secs(9)).await;
    peer.write_all(b"y").await.unwrap();
    let outcome = conn.read_more(16, COMMAND, limit, never()).await.unwrap();
    assert!(matches!(outcome, ReadOutcome::Data));
}

#[tokio::test(start_paused = true)]
async fn a_line_being_skipped_keeps_the_clock_of_its_command() {
    let (mut conn, _peer) = conn();
    let limit = Duration::from_secs(10);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let started = tokio::time::Instant::now();
    let skipping = Wait::Command { skipping: true };
    let outcome = conn
        .read_more(16, skipping, limit, std::future::pending::<()>())
        .await
        .unwrap();
    assert!(matches!(outcome, ReadOutcome::TimedOut));
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_wins_over_waiting_input_and_eof_is_reported() {
    let (mut conn, mut peer) = conn();
    peer.write_all(b"NOOP\r\n").await.unwrap();
    let limit = Duration::from_secs(10);
    let outcome = conn
        .read_more(16, COMMAND, limit, async { 7 })
        .await
        .unwrap();
    assert!(matches!(outcome, ReadOutcome::Interrupted(7)));
    assert!(conn.rbuf.is_empty());
    let outcome = conn
        .read_more(16, COMMAND, limit, std::future::pending::<()>())
        .await
        .unwrap();
    assert!(matches!(outcome, ReadOutcome::Data));
    assert_eq!(&conn.rbuf[..], b"NOOP\r\n");
    drop(peer);
    let outcome = conn
        .read_more(16, COMMAND, limit, std::future::pending::<()>())
        .await
        .unwrap();
    assert!(matches!(outcome, ReadOutcome::Eof));
}

#[tokio::test(start_paused = true)]
async fn flush_gives_up_on_a_peer_that_never_reads_and_clears_the_buffer() {
    let (mut conn, _peer) = conn();
    let mut wbuf = BytesMut::from(&vec![b'x'; 64 * 1024][..]);
    let err = conn
        .flush(&mut wbuf, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(wbuf.is_empty());
}

#[tokio::test]
async fn the_tls_upgrade_discards_plaintext_pipelined_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = TlsStore::self_signed(dir.path(), &["localhost".to_owned()]).unwrap();
    let der = CertificateDer::from_pem_file(&store.default_files().cert).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));

    let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
    let mut conn = Conn::new(MaybeTls::Plain(ours), 1024);
    // The injected command arrives with STARTTLS, before the handshake.
    theirs
        .write_all(b"STARTTLS\r\nRCPT TO:<injected@example.org>\r\n")
        .await
        .unwrap();
    let limit = Duration::from_secs(5);
    let outcome = conn
        .read_more(1024, COMMAND, limit, std::future::pending::<()>())
        .await
        .unwrap();
    assert!(matches!(outcome, ReadOutcome::Data));
    let _ = conn.rbuf.split_to(b"STARTTLS\r\n".len());
    let acceptor = store.acceptor();
    let server = conn.start_tls(&acceptor, limit);
    let client = async {
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, theirs).await.unwrap();
        tls.write_all(b"EHLO x\r\n").await.unwrap();
        tls.flush().await.unwrap();
        tls
    };
    let (upgraded, _client) = tokio::join!(server, client);
    upgraded.unwrap();
    assert!(conn.io.is_tls());
    let outcome = conn
        .read_more(1024, COMMAND, limit, std::future::pending::<()>())
        .await
        .unwrap();
    assert!(matches!(outcome, ReadOutcome::Data));
    // Only what came over TLS: the cleartext RCPT is gone.
    assert_eq!(&conn.rbuf[..], b"EHLO x\r\n");
}

#[test]
fn passwords_go_over_tls_or_from_loopback_when_allowed() {
    let local: IpAddr = "127.0.0.1".parse().unwrap();
    let remote: IpAddr = "192.0.2.1".parse().unwrap();
    assert!(passwords_allowed(true, false, remote));
    assert!(passwords_allowed(false, true, local));
    assert!(!passwords_allowed(false, true, remote));
    assert!(!passwords_allowed(false, false, local));
}
