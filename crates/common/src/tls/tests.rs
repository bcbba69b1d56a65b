use super::*;
use crate::config::{Limits, ListenerConfig, Protocol, TlsMode};
use crate::listener::{Connection, Runtime, accept_tls};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Tern test CA");
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

/// Issues a certificate for `names`, writes `dir/<file>.{crt,key}`, returns the paths and DER.
fn leaf(ca: &Ca, dir: &Path, file: &str, names: &[&str]) -> (CertPair, CertificateDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca.issuer)
        .unwrap();
    let pair = CertPair {
        cert: dir.join(format!("{file}.crt")),
        key: dir.join(format!("{file}.key")),
    };
    fs::write(&pair.cert, cert.pem()).unwrap();
    fs::write(&pair.key, key.serialize_pem()).unwrap();
    (pair, cert.der().clone())
}

fn client(roots: &[&CertificateDer<'static>], alpn: &[&[u8]]) -> TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

/// Runs a handshake over an in-memory stream and exchanges one line; returns the leaf
/// certificate the client received.
async fn handshake(
    acceptor: &TlsAcceptor,
    connector: &TlsConnector,
    name: &str,
) -> io::Result<CertificateDer<'static>> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = async {
        let mut tls = accept_tls(acceptor, server_io, Duration::from_secs(5)).await?;
        tls.write_all(b"* OK ready\r\n").await?;
        tls.flush().await?;
        io::Result::Ok(tls)
    };
    let server_name = ServerName::try_from(name.to_owned()).map_err(io::Error::other)?;
    let client = async {
        let mut tls = connector.connect(server_name, client_io).await?;
        let mut line = [0u8; 12];
        tls.read_exact(&mut line).await?;
        assert_eq!(&line, b"* OK ready\r\n");
        io::Result::Ok(tls)
    };
    let (server, client) = tokio::join!(server, client);
    let tls = client?;
    let _server = server?;
    let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    Ok(leaf.map(|c| c.clone().into_owned()).unwrap())
}

#[tokio::test]
async fn handshake_serves_the_default_certificate_and_sni_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (default, default_der) = leaf(&ca, dir.path(), "default", &["mail.example.test"]);
    let (org, org_der) = leaf(&ca, dir.path(), "org", &["mail.example.org"]);
    let (net, net_der) = leaf(&ca, dir.path(), "net", &["*.example.net"]);
    let domains = BTreeMap::from([
        ("Mail.Example.org".to_owned(), org),
        ("*.example.net".to_owned(), net),
    ]);
    let store = TlsStore::load(default, domains).unwrap();
    let acceptor = store.acceptor();
    let connector = client(&[&ca.der], &[]);
    assert_eq!(
        handshake(&acceptor, &connector, "mail.example.test")
            .await
            .unwrap(),
        default_der
    );
    assert_eq!(
        handshake(&acceptor, &connector, "mail.example.org")
            .await
            .unwrap(),
        org_der
    );
    assert_eq!(
        handshake(&acceptor, &connector, "imap.example.net")
            .await
            .unwrap(),
        net_der
    );
    // A name with no certificate of its own gets the default, which the client rejects.
    assert!(
        handshake(&acceptor, &connector, "other.example.com")
            .await
            .is_err()
    );
}

#[test]
fn selection_prefers_exact_then_one_label_wildcard_then_default() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (default, _) = leaf(&ca, dir.path(), "d", &["d.test"]);
    let (exact, _) = leaf(&ca, dir.path(), "e", &["a.example.net"]);
    let (wild, _) = leaf(&ca, dir.path(), "w", &["*.example.net"]);
    let domains = BTreeMap::from([
        ("a.example.net".to_owned(), exact),
        ("*.example.net".to_owned(), wild),
    ]);
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let set = CertSet::load(&default, &domains, &provider).unwrap();
    let is = |name: Option<&str>, expected: &Arc<CertifiedKey>| {
        assert!(Arc::ptr_eq(&set.select(name), expected), "{name:?}");
    };
    let wildcard = &set.wildcard["example.net"];
    is(Some("a.example.net"), &set.exact["a.example.net"]);
    is(Some("A.Example.NET."), &set.exact["a.example.net"]);
    is(Some("b.example.net"), wildcard);
    is(Some("x.b.example.net"), &set.default);
    is(Some("example.net"), &set.default);
    is(None, &set.default);
}

#[tokio::test]
async fn reload_swaps_certificates_and_a_failed_reload_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (pair, first) = leaf(&ca, dir.path(), "mail", &["mail.example.test"]);
    let store = TlsStore::load(pair.clone(), BTreeMap::new()).unwrap();
    let acceptor = store.acceptor();
    let connector = client(&[&ca.der], &[]);
    assert_eq!(
        handshake(&acceptor, &connector, "mail.example.test")
            .await
            .unwrap(),
        first
    );

    let (_, second) = leaf(&ca, dir.path(), "mail", &["mail.example.test"]);
    assert_ne!(first, second);
    store.reload().unwrap();
    // The acceptor handed out before the reload serves the new certificate. A fresh client,
    // because a resumed TLS session would skip the certificate.
    let connector = client(&[&ca.der], &[]);
    assert_eq!(
        handshake(&acceptor, &connector, "mail.example.test")
            .await
            .unwrap(),
        second
    );

    fs::write(&pair.key, "garbage").unwrap();
    let err = store.reload().unwrap_err();
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");
    let connector = client(&[&ca.der], &[]);
    assert_eq!(
        handshake(&acceptor, &connector, "mail.example.test")
            .await
            .unwrap(),
        second
    );
}

#[test]
fn self_signed_certificate_is_generated_once_with_a_private_key_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let store = TlsStore::self_signed(dir.path(), &names).unwrap();
    let files = store.default_files().clone();
    assert_eq!(files.cert, dir.path().join("tls/self-signed.crt"));
    let cert = fs::read(&files.cert).unwrap();
    let key = fs::read(&files.key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&files.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = TlsStore::self_signed(dir.path(), &names).unwrap();
    assert_eq!(again.default_files(), &files);
    assert_eq!(fs::read(&files.cert).unwrap(), cert);
    assert_eq!(fs::read(&files.key).unwrap(), key);
}

#[tokio::test]
async fn self_signed_certificate_completes_a_handshake_when_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let mut tls = TlsConfig {
        self_signed: true,
        ..TlsConfig::default()
    };
    let store = TlsStore::from_config(&tls, dir.path(), &["localhost".to_owned()]).unwrap();
    let der = CertificateDer::from_pem_file(&store.default_files().cert).unwrap();
    let acceptor = store.acceptor_with_alpn(&[b"imap"]).unwrap();
    let connector = client(&[&der], &[b"imap"]);
    assert_eq!(
        handshake(&acceptor, &connector, "localhost").await.unwrap(),
        der
    );
    tls.self_signed = false;
    let err = TlsStore::from_config(&tls, dir.path(), &[]).unwrap_err();
    assert!(matches!(err, TlsError::NotConfigured), "{err}");
}

#[test]
fn missing_files_give_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let pair = CertPair {
        cert: dir.path().join("nope.crt"),
        key: dir.path().join("nope.key"),
    };
    let err = TlsStore::load(pair.clone(), BTreeMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("cannot read {}: ", pair.cert.display())),
        "{err}"
    );

    let ca = ca();
    let (good, _) = leaf(&ca, dir.path(), "good", &["a.test"]);
    let missing_key = CertPair {
        cert: good.cert.clone(),
        key: pair.key.clone(),
    };
    let err = TlsStore::load(missing_key, BTreeMap::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&pair.key.display().to_string()), "{err}");

    fs::write(&pair.cert, "not a certificate\n").unwrap();
    let empty = CertPair {
        cert: pair.cert.clone(),
        key: good.key.clone(),
    };
    let err = TlsStore::load(empty, BTreeMap::new()).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
}

#[test]
fn key_from_another_certificate_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (a, _) = leaf(&ca, dir.path(), "a", &["a.test"]);
    let (b, _) = leaf(&ca, dir.path(), "b", &["b.test"]);
    let mixed = CertPair {
        cert: a.cert,
        key: b.key.clone(),
    };
    let err = TlsStore::load(mixed, BTreeMap::new()).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().starts_with(&b.key.display().to_string()));
}

#[tokio::test]
async fn implicit_tls_session_handshakes_through_the_listener_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (pair, der) = leaf(&ca, dir.path(), "mail", &["localhost"]);
    let store = TlsStore::load(pair, BTreeMap::new()).unwrap();
    let acceptor = store.acceptor();
    let mut rt = Runtime::new(&Limits::default());
    let config = ListenerConfig {
        name: "imaps".to_owned(),
        protocol: Protocol::Imaps,
        bind: "127.0.0.1:0".parse().unwrap(),
        tls: TlsMode::Implicit,
        max_connections: None,
    };
    let addr = rt
        .bind(&config, b"", move |conn: Connection| {
            let acceptor = acceptor.clone();
            async move {
                assert_eq!(conn.tls, TlsMode::Implicit);
                if let Ok(mut tls) =
                    accept_tls(&acceptor, conn.stream, Duration::from_secs(5)).await
                {
                    let _ = tls.write_all(b"* OK ready\r\n").await;
                    let _ = tls.shutdown().await;
                }
            }
        })
        .await
        .unwrap();
    let token = rt.shutdown_token();
    let run = tokio::spawn(rt.run());
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = client(&[&ca.der], &[]);
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let mut greeting = String::new();
    tls.read_to_string(&mut greeting).await.unwrap();
    assert_eq!(greeting, "* OK ready\r\n");
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned();
    assert_eq!(leaf, Some(der));
    token.cancel();
    run.await.unwrap();
}
