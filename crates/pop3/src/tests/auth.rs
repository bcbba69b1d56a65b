//! AUTHORIZATION state: greeting, CAPA, USER/PASS, AUTH, plaintext policy, throttling.

use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tern_directory::ThrottleConfig;
use tokio::io::{AsyncRead, AsyncWrite};

use super::*;

fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

#[tokio::test]
async fn greeting_names_the_host_and_quit_signs_off() {
    let h = harness().await;
    let mut c = h.connect().await;
    c.send("QUIT").await;
    c.expect("+OK mail.example.test POP3 server signing off")
        .await;
    assert!(c.closed().await.is_empty());
}

#[tokio::test]
async fn capa_from_a_remote_cleartext_client_offers_stls_and_scram_but_no_passwords() {
    // A TLS acceptor makes STLS available.
    let acceptor = super::tls::acceptor();
    let h = harness_with(fast_directory_config(), |ctx| ctx.tls = Some(acceptor)).await;
    let mut c = h.connect_from(REMOTE);
    c.expect("+OK").await;
    c.send("CAPA").await;
    c.expect("+OK").await;
    assert_eq!(
        c.lines().await,
        [
            "TOP",
            "UIDL",
            "SASL SCRAM-SHA-256",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "STLS",
            "IMPLEMENTATION Tern"
        ]
    );
}

#[tokio::test]
async fn capa_on_loopback_offers_user_and_plain_and_after_login_only_transaction_capabilities() {
    let h = harness().await;
    let mut c = h.connect().await;
    c.send("CAPA").await;
    c.expect("+OK").await;
    let before = c.lines().await;
    assert!(before.contains(&"USER".to_string()));
    assert!(before.contains(&"SASL SCRAM-SHA-256 PLAIN LOGIN".to_string()));
    assert!(
        !before.contains(&"STLS".to_string()),
        "no TLS acceptor, no STLS"
    );
    c.send(&format!("USER {USER}")).await;
    c.expect("+OK").await;
    c.send(&format!("PASS {PASSWORD}")).await;
    c.expect("+OK Logged in, 0 messages (0 octets)").await;
    c.send("CAPA").await;
    c.expect("+OK").await;
    assert_eq!(
        c.lines().await,
        [
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "IMPLEMENTATION Tern"
        ]
    );
}

#[tokio::test]
async fn user_pass_with_a_wrong_password_fails_with_auth_code_and_needs_user_again() {
    let h = harness().await;
    let mut c = h.connect().await;
    c.send(&format!("USER {USER}")).await;
    c.expect("+OK").await;
    c.send("PASS wrong password").await;
    c.expect("-ERR [AUTH] Authentication failed").await;
    c.send(&format!("PASS {PASSWORD}")).await;
    c.expect("-ERR Send USER first").await;
    c.send("USER nobody@example.test").await;
    c.expect("+OK").await;
    c.send(&format!("PASS {PASSWORD}")).await;
    c.expect("-ERR [AUTH] Authentication failed").await;
    c.send(&format!("USER {USER}")).await;
    c.expect("+OK").await;
    c.send(&format!("PASS {PASSWORD}")).await;
    c.expect("+OK Logged in").await;
}

#[tokio::test]
async fn passwords_are_refused_before_tls_from_a_remote_client() {
    let h = harness().await;
    let mut c = h.connect_from(REMOTE);
    c.expect("+OK").await;
    c.send(&format!("USER {USER}")).await;
    c.expect("-ERR [AUTH] Plaintext authentication disallowed")
        .await;
    c.send(&format!("PASS {PASSWORD}")).await;
    c.expect("-ERR Send USER first").await;
    let plain = b64(format!("\0{USER}\0{PASSWORD}").as_bytes());
    c.send(&format!("AUTH PLAIN {plain}")).await;
    c.expect("-ERR [AUTH] Plaintext authentication disallowed")
        .await;
    c.send("AUTH LOGIN").await;
    c.expect("-ERR [AUTH] Plaintext authentication disallowed")
        .await;
    c.send("AUTH").await;
    c.expect("+OK").await;
    assert_eq!(c.lines().await, ["SCRAM-SHA-256"]);
}

#[tokio::test]
async fn loopback_clients_need_tls_too_unless_the_operator_allows_plaintext() {
    let h = harness_with(fast_directory_config(), |ctx| {
        ctx.allow_plaintext_on_loopback = false;
    })
    .await;
    let mut c = h.connect_from(LOOPBACK);
    c.expect("+OK").await;
    c.send(&format!("USER {USER}")).await;
    c.expect("-ERR [AUTH]").await;
}

#[tokio::test]
async fn auth_plain_with_an_initial_response_logs_in() {
    let h = harness().await;
    h.append(MSG1).await;
    let mut c = h.connect().await;
    let plain = b64(format!("\0{USER}\0{PASSWORD}").as_bytes());
    c.send(&format!("AUTH PLAIN {plain}")).await;
    c.expect(&format!(
        "+OK Logged in, 1 messages ({} octets)",
        MSG1.len()
    ))
    .await;
    c.send("STAT").await;
    c.expect(&format!("+OK 1 {}", MSG1.len())).await;
}

#[tokio::test]
async fn auth_plain_with_a_continuation_logs_in_and_bad_credentials_fail() {
    let h = harness().await;
    let mut c = h.connect().await;
    c.send("AUTH PLAIN").await;
    assert_eq!(c.line().await, "+ ");
    c.send(&b64(format!("\0{USER}\0nope").as_bytes())).await;
    c.expect("-ERR [AUTH] Authentication failed").await;
    c.send("auth plain").await;
    assert_eq!(c.line().await, "+ ");
    c.send(&b64(format!("\0{USER}\0{PASSWORD}").as_bytes()))
        .await;
    c.expect("+OK Logged in").await;
}

#[tokio::test]
async fn auth_login_asks_for_user_name_then_password() {
    let h = harness().await;
    let mut c = h.connect().await;
    c.send("AUTH LOGIN").await;
    assert_eq!(c.line().await, format!("+ {}", b64(b"Username:")));
    c.send(&b64(USER.as_bytes())).await;
    assert_eq!(c.line().await, format!("+ {}", b64(b"Password:")));
    c.send(&b64(PASSWORD.as_bytes())).await;
    c.expect("+OK Logged in").await;
}

#[tokio::test]
async fn auth_can_be_cancelled_and_unknown_mechanisms_or_bad_base64_are_refused() {
    let h = harness().await;
    let mut c = h.connect().await;
    c.send("AUTH PLAIN").await;
    c.expect("+ ").await;
    c.send("*").await;
    c.expect("-ERR Authentication cancelled").await;
    c.send("AUTH CRAM-MD5").await;
    c.expect("-ERR Unsupported authentication mechanism").await;
    c.send("AUTH PLAIN !!!notbase64").await;
    c.expect("-ERR Malformed authentication data").await;
    c.send("AUTH PLAIN").await;
    c.expect("+ ").await;
    c.send(&"A".repeat(9000)).await;
    c.expect("-ERR Line too long").await;
    c.send("NOOP").await;
    c.expect("-ERR Not logged in").await;
}

/// RFC 5802 client side, enough to log in.
struct ScramClient {
    bare: String,
    password: &'static str,
}

impl ScramClient {
    fn first(user: &str, password: &'static str) -> (ScramClient, String) {
        let bare = format!("n={user},r=clientnonce0123456789");
        let first = format!("n,,{bare}");
        (ScramClient { bare, password }, first)
    }

    /// Returns the client-final message and the server signature it expects.
    fn last(&self, server_first: &str) -> (String, String) {
        let mut nonce = "";
        let mut salt = Vec::new();
        let mut iterations = 0u32;
        for attr in server_first.split(',') {
            match attr.split_at(2) {
                ("r=", v) => nonce = v,
                ("s=", v) => salt = B64.decode(v).expect("salt"),
                ("i=", v) => iterations = v.parse().expect("iterations"),
                _ => {}
            }
        }
        assert!(nonce.starts_with("clientnonce0123456789"));
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(iterations).expect("iterations > 0"),
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let mac = |key: &[u8], data: &[u8]| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
                .as_ref()
                .to_vec()
        };
        let client_key = mac(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.bare);
        let signature = mac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = mac(&salted, b"Server Key");
        let server_signature = mac(&server_key, auth_message.as_bytes());
        (
            format!("{without_proof},p={}", b64(&proof)),
            format!("v={}", b64(&server_signature)),
        )
    }
}

async fn scram_login<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Client<S>,
    password: &'static str,
) -> String {
    let (client, first) = ScramClient::first(USER, password);
    c.send(&format!("AUTH SCRAM-SHA-256 {}", b64(first.as_bytes())))
        .await;
    let challenge = c.expect("+ ").await;
    let server_first =
        String::from_utf8(B64.decode(&challenge[2..]).expect("base64")).expect("utf-8");
    let (last, expected_signature) = client.last(&server_first);
    c.send(&b64(last.as_bytes())).await;
    let reply = c.line().await;
    if let Some(data) = reply.strip_prefix("+ ") {
        // RFC 5034 §4: the server's final message comes as a challenge; answer empty.
        let server_final = B64.decode(data).expect("base64");
        assert_eq!(server_final, expected_signature.as_bytes());
        c.send("").await;
        return c.line().await;
    }
    reply
}

#[tokio::test]
async fn auth_scram_sha256_full_exchange_logs_in_even_from_a_remote_cleartext_client() {
    let h = harness().await;
    let mut c = h.connect_from(REMOTE);
    c.expect("+OK").await;
    let done = scram_login(&mut c, PASSWORD).await;
    assert!(done.starts_with("+OK Logged in"), "{done}");
    c.send("STAT").await;
    c.expect("+OK 0 0").await;
}

#[tokio::test]
async fn auth_scram_sha256_with_a_wrong_password_fails() {
    let h = harness().await;
    let mut c = h.connect_from(REMOTE);
    c.expect("+OK").await;
    let done = scram_login(&mut c, "wrong password!").await;
    assert_eq!(done, "-ERR [AUTH] Authentication failed");
}

#[tokio::test]
async fn a_blocked_address_gets_login_delay() {
    let config = DirectoryConfig {
        throttle: ThrottleConfig {
            account_limit: 0,
            ip_limit: 2,
            ..ThrottleConfig::default()
        },
        ..fast_directory_config()
    };
    let h = harness_with(config, |_| {}).await;
    let mut c = h.connect().await;
    // Distinct guesses: a repeat of the same wrong password would count once.
    for guess in ["wrong-1", "wrong-2"] {
        c.send(&format!("USER {USER}")).await;
        c.expect("+OK").await;
        c.send(&format!("PASS {guess}")).await;
        c.expect("-ERR [AUTH]").await;
    }
    c.send(&format!("USER {USER}")).await;
    c.expect("+OK").await;
    c.send(&format!("PASS {PASSWORD}")).await;
    c.expect("-ERR [LOGIN-DELAY] Too many failed logins; retry in 29")
        .await;
}

#[tokio::test]
async fn commands_of_the_wrong_state_are_refused_and_the_session_goes_on() {
    let h = harness().await;
    let mut c = h.connect().await;
    for cmd in [
        "STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "UIDL", "TOP 1 1",
    ] {
        c.send(cmd).await;
        c.expect("-ERR Not logged in").await;
    }
    c.send(&format!("USER {USER}")).await;
    c.expect("+OK").await;
    c.send(&format!("PASS {PASSWORD}")).await;
    c.expect("+OK Logged in").await;
    for cmd in ["USER x", "PASS y", "AUTH PLAIN", "STLS"] {
        c.send(cmd).await;
        c.expect("-ERR Already logged in").await;
    }
    c.send("NOOP").await;
    c.expect("+OK").await;
}

#[tokio::test]
async fn a_second_session_for_the_same_maildrop_gets_in_use_until_the_first_ends() {
    let h = harness().await;
    let mut first = h.login().await;
    assert!(h.ctx.is_locked(h.account.id));
    let mut second = h.connect().await;
    second.send(&format!("USER {USER}")).await;
    second.expect("+OK").await;
    second.send(&format!("PASS {PASSWORD}")).await;
    second
        .expect("-ERR [IN-USE] Maildrop already locked by another session")
        .await;
    first.send("QUIT").await;
    first.expect("+OK").await;
    first.closed().await;
    assert!(!h.ctx.is_locked(h.account.id));
    second.send(&format!("USER {USER}")).await;
    second.expect("+OK").await;
    second.send(&format!("PASS {PASSWORD}")).await;
    second.expect("+OK Logged in").await;
    // A dropped connection releases the lock too.
    drop(second);
    for _ in 0..100 {
        if !h.ctx.is_locked(h.account.id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!h.ctx.is_locked(h.account.id));
    let mut third = h.login().await;
    third.send("QUIT").await;
    third.expect("+OK").await;
}
