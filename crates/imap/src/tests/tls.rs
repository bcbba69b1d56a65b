//! STARTTLS (RFC 9051 §6.2.1) and implicit TLS with a self-signed certificate the test
//! client trusts.

use std::sync::OnceLock;

use tern_common::tls::TlsStore;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;

/// One self-signed certificate for all tests (generated once), its acceptor and a client
/// that trusts it.
fn pair() -> &'static (TlsAcceptor, TlsConnector) {
    static PAIR: OnceLock<(TlsAcceptor, TlsConnector)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TlsStore::self_signed(dir.path(), &["localhost".into()]).expect("cert");
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&store.default_files().cert).expect("pem") {
            roots.add(cert.expect("cert")).expect("trust anchor");
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        (store.acceptor(), TlsConnector::from(Arc::new(config)))
    })
}

pub(crate) fn acceptor() -> TlsAcceptor {
    pair().0.clone()
}

async fn tls_harness() -> Harness {
    harness_with(|ctx| {
        ctx.tls = Some(acceptor());
        ctx.allow_plaintext_on_loopback = false;
    })
    .await
}

async fn handshake(stream: DuplexStream) -> Client<tokio_rustls::client::TlsStream<DuplexStream>> {
    let name = ServerName::try_from("localhost").expect("name");
    let tls = pair().1.connect(name, stream).await.expect("TLS handshake");
    Client::wrap(tls)
}

#[tokio::test]
async fn starttls_discards_pipelined_plaintext_and_then_allows_login() {
    let h = tls_harness().await;
    let mut c = h.connect_from(REMOTE).await;
    let lines = c.cmd("a CAPABILITY", "a OK").await;
    assert!(
        lines[0].contains(" STARTTLS") && lines[0].contains(" LOGINDISABLED"),
        "{}",
        lines[0]
    );
    // An injected command pipelined after STARTTLS must not run.
    c.send_raw(b"b STARTTLS\r\nc LOGIN alice@example.test \"correct horse battery\"\r\n")
        .await;
    c.expect("b OK").await;
    let mut t = handshake(c.stream).await;
    let lines = t.cmd("d CAPABILITY", "d OK").await;
    assert!(
        !lines[0].contains("STARTTLS") && !lines[0].contains("LOGINDISABLED"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("AUTH=PLAIN"), "{}", lines[0]);
    t.cmd("e SELECT INBOX", "e BAD").await;
    t.cmd("f STARTTLS", "f BAD").await;
    t.cmd(&format!("g LOGIN {USER} \"{PASSWORD}\""), "g OK")
        .await;
    t.cmd("h SELECT INBOX", "h OK").await;
}

#[tokio::test]
async fn starttls_without_a_certificate_is_refused() {
    let h = harness().await;
    let mut c = h.connect().await;
    c.cmd("a STARTTLS", "a BAD").await;
    c.cmd("b NOOP", "b OK").await;
}

#[tokio::test]
async fn implicit_tls_greets_after_the_handshake() {
    let h = tls_harness().await;
    let c = h.connect_with(REMOTE, true, CancellationToken::new());
    let mut t = handshake(c.stream).await;
    let greeting = t.expect("* OK [CAPABILITY").await;
    assert!(
        !greeting.contains("STARTTLS") && greeting.contains("AUTH=PLAIN"),
        "{greeting}"
    );
    t.cmd(&format!("a LOGIN {USER} \"{PASSWORD}\""), "a OK")
        .await;
}
