//! What the `Received:` header says about a TLS connection.

use tokio_rustls::rustls::ProtocolVersion;
use tokio_rustls::server::TlsStream;

/// What the `Received:` header says about a TLS connection: protocol version and cipher suite,
/// e.g. `TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384` (RFC 8314 §7 asks for both).
pub(crate) fn describe_tls<S>(stream: &TlsStream<S>) -> String {
    let conn = stream.get_ref().1;
    let version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "TLS".to_owned(),
    };
    match conn.negotiated_cipher_suite() {
        Some(suite) => format!("{version} with cipher {:?}", suite.suite()),
        None => version,
    }
}
