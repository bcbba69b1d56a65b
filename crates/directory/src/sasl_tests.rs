use super::*;
use crate::password::nonzero_iterations;

const RFC7677_CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC7677_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC7677_SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC7677_CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC7677_SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn pencil() -> ScramCredentials {
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    ScramCredentials::derive("pencil", &salt, nonzero_iterations(4096))
}

fn rfc_server_after_first() -> ScramServer {
    let mut server = ScramServer::with_nonce(RFC7677_SERVER_NONCE);
    server.client_first(RFC7677_CLIENT_FIRST).unwrap();
    server.server_first(&pencil()).unwrap();
    server
}

#[test]
fn scram_sha256_matches_rfc7677_test_vector() {
    let mut server = ScramServer::with_nonce(RFC7677_SERVER_NONCE);
    let first = server.client_first(RFC7677_CLIENT_FIRST).unwrap();
    assert_eq!(first.username, "user");
    assert_eq!(
        server.server_first(&pencil()).unwrap(),
        RFC7677_SERVER_FIRST
    );
    assert_eq!(
        server.client_final(RFC7677_CLIENT_FINAL).unwrap(),
        RFC7677_SERVER_FINAL
    );
    // The exchange is over: nothing more is accepted.
    assert_eq!(
        server.client_final(RFC7677_CLIENT_FINAL),
        Err(SaslError::UnexpectedStep)
    );
}

#[test]
fn scram_with_wrong_password_fails_with_invalid_proof() {
    let mut server = ScramServer::with_nonce(RFC7677_SERVER_NONCE);
    server.client_first(RFC7677_CLIENT_FIRST).unwrap();
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let other = ScramCredentials::derive("pencils", &salt, nonzero_iterations(4096));
    server.server_first(&other).unwrap();
    assert_eq!(
        server.client_final(RFC7677_CLIENT_FINAL),
        Err(SaslError::InvalidProof)
    );
}

#[test]
fn scram_tampered_client_final_is_refused() {
    let cases: [(&[u8], SaslError); 6] = [
        (
            b"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            SaslError::Malformed("channel binding does not match the gs2 header"),
        ),
        (
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            SaslError::Malformed("nonce mismatch"),
        ),
        (
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            SaslError::Malformed("missing proof"),
        ),
        (
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
            SaslError::Malformed("proof has the wrong length"),
        ),
        (
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!",
            SaslError::Malformed("proof is not base64"),
        ),
        (b"\xff\xfe", SaslError::InvalidUtf8),
    ];
    for (message, expected) in cases {
        let mut server = rfc_server_after_first();
        assert_eq!(server.client_final(message), Err(expected));
    }
}

#[test]
fn scram_malformed_client_first_is_refused_without_panic() {
    let cases: [(&[u8], SaslError); 11] = [
        (b"", SaslError::Malformed("empty SCRAM message")),
        (b"n", SaslError::Malformed("missing gs2 header")),
        (b"n,", SaslError::Malformed("missing gs2 header")),
        (
            b"x,,n=user,r=abc",
            SaslError::Malformed("invalid gs2 channel binding flag"),
        ),
        (
            b"p=tls-unique,,n=user,r=abc",
            SaslError::ChannelBindingNotSupported,
        ),
        (
            b"n,,m=ext,n=user,r=abc",
            SaslError::Malformed("unsupported mandatory extension"),
        ),
        (b"n,,r=abc", SaslError::Malformed("missing username")),
        (b"n,,n=user", SaslError::Malformed("missing nonce")),
        (
            b"n,,n=us=er,r=abc",
            SaslError::Malformed("invalid escape in saslname"),
        ),
        (b"n,a=admin,n=user,r=abc", SaslError::AuthzidNotPermitted),
        (b"n,,n=\xc3,r=abc", SaslError::InvalidUtf8),
    ];
    for (message, expected) in cases {
        let mut server = ScramServer::with_nonce("srv");
        assert_eq!(
            server.client_first(message),
            Err(expected),
            "{:?}",
            String::from_utf8_lossy(message)
        );
    }
}

#[test]
fn scram_accepts_y_flag_matching_authzid_and_escaped_names() {
    let mut server = ScramServer::with_nonce("srv");
    let first = server.client_first(b"y,a=a=2Cb,n=a=2Cb,r=abc").unwrap();
    assert_eq!(first.username, "a,b");
    let mut server = ScramServer::with_nonce("srv");
    assert_eq!(
        server
            .client_first(b"n,,n=x=3Dy,r=abc,ext=1")
            .unwrap()
            .username,
        "x=y"
    );
}

#[test]
fn scram_steps_out_of_order_are_refused() {
    let mut server = ScramServer::with_nonce("srv");
    assert_eq!(
        server.server_first(&pencil()),
        Err(SaslError::UnexpectedStep)
    );
    assert_eq!(
        server.client_final(RFC7677_CLIENT_FINAL),
        Err(SaslError::UnexpectedStep)
    );
}

#[test]
fn scram_random_nonces_differ_and_are_printable() {
    let a = ScramServer::new().unwrap();
    let b = ScramServer::new().unwrap();
    assert_ne!(a.server_nonce, b.server_nonce);
    assert!(
        a.server_nonce
            .bytes()
            .all(|c| (0x21..=0x7e).contains(&c) && c != b',')
    );
}

#[test]
fn plain_with_and_without_authzid_yields_credentials() {
    let c = parse_plain(b"\0alice@example.test\0secret").unwrap();
    assert_eq!(c.username, "alice@example.test");
    assert_eq!(c.password.expose(), "secret");
    let c = parse_plain(b"Alice@example.test\0alice@example.test\0secret").unwrap();
    assert_eq!(c.username, "alice@example.test");
}

#[test]
fn plain_malformed_messages_give_clear_errors() {
    let cases: [(&[u8], SaslError); 8] = [
        (b"", SaslError::Malformed("empty PLAIN message")),
        (
            b"alice secret",
            SaslError::Malformed("PLAIN message must have exactly two NUL separators"),
        ),
        (
            b"alice\0secret",
            SaslError::Malformed("PLAIN message must have exactly two NUL separators"),
        ),
        (
            b"\0alice\0sec\0ret",
            SaslError::Malformed("PLAIN message must have exactly two NUL separators"),
        ),
        (
            b"\0\0secret",
            SaslError::Malformed("empty authentication identity"),
        ),
        (b"\0alice\0", SaslError::Malformed("empty password")),
        (b"\0al\xffice\0secret", SaslError::InvalidUtf8),
        (b"bob\0alice\0secret", SaslError::AuthzidNotPermitted),
    ];
    for (message, expected) in cases {
        assert_eq!(parse_plain(message), Err(expected));
    }
    let long = vec![b'a'; MAX_CLIENT_MESSAGE + 1];
    assert_eq!(
        parse_plain(&long),
        Err(SaslError::Malformed("PLAIN message too long"))
    );
}

#[test]
fn login_asks_username_then_password() {
    let mut login = LoginServer::new();
    assert_eq!(login.step(None), Ok(LoginStep::Challenge(b"Username:")));
    assert_eq!(
        login.step(Some(b"alice")),
        Ok(LoginStep::Challenge(b"Password:"))
    );
    let Ok(LoginStep::Credentials(c)) = login.step(Some(b"secret")) else {
        panic!("expected credentials");
    };
    assert_eq!(
        (c.username.as_str(), c.password.expose()),
        ("alice", "secret")
    );
    assert_eq!(login.step(Some(b"more")), Err(SaslError::UnexpectedStep));
}

#[test]
fn login_accepts_username_as_initial_response() {
    let mut login = LoginServer::new();
    assert_eq!(
        login.step(Some(b"alice")),
        Ok(LoginStep::Challenge(b"Password:"))
    );
    assert!(matches!(
        login.step(Some(b"pw")),
        Ok(LoginStep::Credentials(_))
    ));
}

#[test]
fn login_malformed_responses_give_clear_errors() {
    assert_eq!(
        LoginServer::new().step(Some(b"")),
        Err(SaslError::Malformed("empty user name"))
    );
    assert_eq!(
        LoginServer::new().step(Some(b"\xff")),
        Err(SaslError::InvalidUtf8)
    );
    assert_eq!(
        LoginServer::new().step(Some(b"a\0b")),
        Err(SaslError::Malformed("NUL in LOGIN response"))
    );
    let mut login = LoginServer::new();
    login.step(Some(b"alice")).unwrap();
    assert_eq!(login.step(None), Err(SaslError::UnexpectedStep));
    let mut login = LoginServer::new();
    login.step(Some(b"alice")).unwrap();
    assert_eq!(
        login.step(Some(b"")),
        Err(SaslError::Malformed("empty password"))
    );
}

#[test]
fn base64_responses_decode_and_star_cancels() {
    assert_eq!(
        decode_base64_response(b"AGFsaWNlAHNlY3JldA=="),
        Ok(b"\0alice\0secret".to_vec())
    );
    assert_eq!(
        decode_base64_response(b"AGFsaWNlAHNlY3JldA==\r\n"),
        Ok(b"\0alice\0secret".to_vec())
    );
    assert_eq!(decode_base64_response(b"*"), Err(SaslError::Cancelled));
    assert_eq!(decode_base64_response(b"="), Ok(Vec::new()));
    assert_eq!(decode_base64_response(b""), Ok(Vec::new()));
    assert_eq!(
        decode_base64_response(b"not base64!"),
        Err(SaslError::InvalidBase64)
    );
    assert_eq!(
        decode_base64_response(b"AGFsaWNl\0"),
        Err(SaslError::InvalidBase64)
    );
    assert_eq!(encode_base64(b"Username:"), "VXNlcm5hbWU6");
}

#[test]
fn mechanism_names_are_case_insensitive() {
    assert_eq!(Mechanism::from_name("plain"), Some(Mechanism::Plain));
    assert_eq!(
        Mechanism::from_name("Scram-Sha-256"),
        Some(Mechanism::ScramSha256)
    );
    assert_eq!(Mechanism::from_name("LOGIN"), Some(Mechanism::Login));
    assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
    assert_eq!(Mechanism::ScramSha256.to_string(), "SCRAM-SHA-256");
}

#[test]
fn arbitrary_bytes_never_panic_any_mechanism() {
    // A cheap deterministic fuzz: every prefix/suffix split of some nasty inputs.
    let seeds: [&[u8]; 5] = [
        RFC7677_CLIENT_FIRST,
        RFC7677_CLIENT_FINAL,
        b"\0\0\0=,=,,=2,=3",
        b"n,a=,n=,r=",
        "é,\u{0}=2C".as_bytes(),
    ];
    for seed in seeds {
        for i in 0..=seed.len() {
            for part in [&seed[..i], &seed[i..]] {
                let _ = parse_plain(part);
                let _ = LoginServer::new().step(Some(part));
                let _ = decode_base64_response(part);
                let mut s = ScramServer::with_nonce("n");
                let _ = s.client_first(part);
                let mut s = rfc_server_after_first();
                let _ = s.client_final(part);
            }
        }
    }
}
