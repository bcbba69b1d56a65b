//! STLS (RFC 2595) and implicit TLS with a self-signed certificate the test client trusts.

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
    harness_with(fast_directory_config(), |ctx| {
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
async fn stls_upgrades_discards_pipelined_plaintext_and_then_allows_passwords() {
    let h = tls_harness().await;
    h.append(MSG1).await;
    let mut c = h.connect_from(REMOTE);
    c.expect("+OK").await;
    c.send(&format!("USER {USER}")).await;
    c.expect("-ERR [AUTH]").await;
    // An attacker-injected command after STLS in the same segment must not run.
    c.send_raw(b"STLS\r\nQUIT\r\n").await;
    c.expect("+OK Begin TLS negotiation").await;
    let mut t = handshake(c.stream).await;
    t.send("CAPA").await;
    t.expect("+OK Capability list follows").await;
    let caps = t.lines().await;
    assert!(caps.contains(&"USER".to_string()), "{caps:?}");
    assert!(caps.contains(&"SASL SCRAM-SHA-256 PLAIN LOGIN".to_string()));
    assert!(!caps.contains(&"STLS".to_string()), "no STLS under TLS");
    t.send("STLS").await;
    t.expect("-ERR Already using TLS").await;
    t.send(&format!("USER {USER}")).await;
    t.expect("+OK").await;
    t.send(&format!("PASS {PASSWORD}")).await;
    t.expect("+OK Logged in, 1 messages").await;
    t.send("RETR 1").await;
    t.expect(&format!("+OK {} octets", MSG1.len())).await;
    assert_eq!(unstuff(&t.raw_body().await), MSG1);
    t.send("QUIT").await;
    t.expect("+OK").await;
}

#[tokio::test]
async fn stls_forgets_a_user_given_before_the_upgrade() {
    let h = harness_with(fast_directory_config(), |ctx| ctx.tls = Some(acceptor())).await;
    let mut c = h.connect().await;
    c.send(&format!("USER {USER}")).await;
    c.expect("+OK").await;
    c.send("STLS").await;
    c.expect("+OK").await;
    let mut t = handshake(c.stream).await;
    t.send(&format!("PASS {PASSWORD}")).await;
    t.expect("-ERR Send USER first").await;
}

#[tokio::test]
async fn stls_without_a_certificate_is_refused() {
    let h = harness().await;
    let mut c = h.connect().await;
    c.send("STLS").await;
    c.expect("-ERR STLS not available").await;
    c.send("QUIT").await;
    c.expect("+OK").await;
}

#[tokio::test]
async fn implicit_tls_greets_after_the_handshake() {
    let h = tls_harness().await;
    let c = h.connect_with(REMOTE, true, CancellationToken::new());
    let mut t = handshake(c.stream).await;
    t.expect("+OK mail.example.test POP3 ready").await;
    t.send("CAPA").await;
    t.expect("+OK").await;
    assert!(!t.lines().await.contains(&"STLS".to_string()));
    let plain = base64_plain();
    t.send(&format!("AUTH PLAIN {plain}")).await;
    t.expect("+OK Logged in").await;
}

fn base64_plain() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"))
}
