//! STARTTLS (RFC 3207) and implicit TLS (RFC 8314) with a self-signed certificate.

use tern_common::tls::TlsStore;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::*;

struct Tls {
    _dir: TempDir,
    store: TlsStore,
    connector: TlsConnector,
}

fn tls() -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let store = TlsStore::self_signed(dir.path(), &["localhost".into()]).unwrap();
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&store.default_files().cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Tls {
        _dir: dir,
        store,
        connector: TlsConnector::from(Arc::new(config)),
    }
}

async fn tls_harness(tls: &Tls) -> Harness {
    let acceptor = tls.store.acceptor();
    harness_with(|ctx| {
        ctx.tls = Some(acceptor);
        ctx.allow_plaintext_on_loopback = false;
    })
    .await
}

impl Client<DuplexStream> {
    /// The client side of the handshake, after the server's `220`.
    async fn handshake(self, tls: &Tls) -> Client<TlsStream<DuplexStream>> {
        assert!(self.buf.is_empty(), "server sent more than the 220");
        let name = ServerName::try_from("localhost").unwrap();
        let stream = tls.connector.connect(name, self.stream).await.unwrap();
        Client {
            stream,
            buf: Vec::new(),
            task: self.task,
            shutdown: self.shutdown,
        }
    }
}

#[tokio::test]
async fn starttls_discards_pipelined_plaintext_and_resets_the_session() {
    let tls = tls();
    let h = tls_harness(&tls).await;
    let mut c = h.connect(Protocol::Smtp, REMOTE).await;
    let ehlo = c.ehlo().await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    c.cmd("MAIL FROM:<before@remote.test>", "250").await;
    // CVE-2011-0411: commands injected after STARTTLS in the same packet.
    c.write(
        b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.test>\r\n",
    )
    .await;
    c.expect("220 2.0.0").await;
    let mut c = c.handshake(&tls).await;
    // The injected commands were never executed: no replies to them, and the state is new.
    c.cmd("RCPT TO:<alice@example.test>", "503 5.5.1").await;
    c.cmd(
        "MAIL FROM:<a@remote.test>",
        "503 5.5.1 Send EHLO/HELO first",
    )
    .await;
    let ehlo = c.ehlo().await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    c.cmd("STARTTLS", "503 5.5.1").await;
    let reply = c
        .transaction("a@remote.test", &["alice@example.test"], &message("tls"))
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let stored = h.inbox(&h.alice).await;
    assert!(stored[0].contains("with ESMTPS"), "{}", stored[0]);
    assert!(
        stored[0].contains("(using TLSv1.3 with cipher TLS13_"),
        "{}",
        stored[0]
    );
    c.cmd("QUIT", "221").await;
}

#[tokio::test]
async fn submission_offers_auth_only_after_starttls() {
    let tls = tls();
    let h = tls_harness(&tls).await;
    let mut c = h.connect(Protocol::Submission, REMOTE).await;
    let ehlo = c.ehlo().await;
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    c.cmd("AUTH PLAIN", "530 5.7.0").await;
    c.cmd("STARTTLS", "220").await;
    let mut c = c.handshake(&tls).await;
    let ehlo = c.ehlo().await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN SCRAM-SHA-256"), "{ehlo}");
    let creds = tern_directory::encode_base64(format!("\0alice@example.test\0{PW}").as_bytes());
    c.cmd(&format!("AUTH PLAIN {creds}"), "235 2.7.0").await;
    let reply = c
        .transaction(
            "alice@example.test",
            &["bob@example.test"],
            &message_from("alice@example.test", "sub"),
        )
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert!(h.inbox(&h.bob).await[0].contains("with ESMTPSA"));
}

#[tokio::test]
async fn implicit_tls_handshakes_before_the_greeting() {
    let tls = tls();
    let h = tls_harness(&tls).await;
    let c = h
        .start(Protocol::Submissions, REMOTE, TlsMode::Implicit, "465")
        .await;
    let mut c = c.handshake(&tls).await;
    c.expect("220 mx.example.test ESMTP").await;
    let ehlo = c.ehlo().await;
    assert!(
        !ehlo.contains("STARTTLS") && ehlo.contains("AUTH"),
        "{ehlo}"
    );
}

#[tokio::test]
async fn failed_handshake_ends_the_session() {
    let tls = tls();
    let h = tls_harness(&tls).await;
    let mut c = h
        .start(Protocol::Submissions, REMOTE, TlsMode::Implicit, "465")
        .await;
    c.write(b"EHLO not-tls\r\n").await;
    // The server may answer with a TLS alert, never with a greeting.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.stream.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(!rest.starts_with(b"220"), "{rest:?}");
    tokio::time::timeout(Duration::from_secs(10), c.task.take().unwrap())
        .await
        .unwrap()
        .unwrap();
}
