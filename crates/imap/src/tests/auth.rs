//! Not-authenticated state: greeting, CAPABILITY, LOGIN, AUTHENTICATE (PLAIN with SASL-IR,
//! SCRAM-SHA-256), the plaintext policy, malformed input.

use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::*;

fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

#[tokio::test]
async fn greeting_and_capability_list_the_extensions() {
    let h = harness().await;
    let mut c = h.connect_with(LOOPBACK, false, CancellationToken::new());
    let greeting = c.line().await;
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 "),
        "{greeting}"
    );
    assert!(greeting.ends_with("] Tern IMAP4rev2 ready"), "{greeting}");
    let lines = c.cmd("a CAPABILITY", "a OK").await;
    let caps = &lines[0];
    for cap in [
        "IDLE",
        "UIDPLUS",
        "MOVE",
        "CONDSTORE",
        "QRESYNC",
        "SPECIAL-USE",
        "CREATE-SPECIAL-USE",
        "LITERAL+",
        "NAMESPACE",
        "ENABLE",
        "ID",
        "UNSELECT",
        "CHILDREN",
        "ESEARCH",
        "SEARCHRES",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "SASL-IR",
        "BINARY",
        "MULTIAPPEND",
        "APPENDLIMIT=",
        "STATUS=SIZE",
        "UTF8=ACCEPT",
        "AUTH=PLAIN",
        "AUTH=SCRAM-SHA-256",
    ] {
        assert!(
            caps.contains(&format!(" {cap}")),
            "{cap} missing from {caps}"
        );
    }
    assert!(!caps.contains("LOGINDISABLED"), "{caps}");
    assert!(
        !caps.contains("STARTTLS"),
        "no acceptor, no STARTTLS: {caps}"
    );
    c.send("b LOGIN alice@example.test \"correct horse battery\"")
        .await;
    c.expect("b OK [CAPABILITY IMAP4rev1 IMAP4rev2 IDLE").await;
    let lines = c.cmd("c CAPABILITY", "c OK").await;
    assert!(!lines[0].contains("AUTH="), "{}", lines[0]);
    c.send("d LOGOUT").await;
    c.expect("* BYE").await;
    c.expect("d OK").await;
    assert!(c.closed().await.is_empty());
}

#[tokio::test]
async fn login_with_a_wrong_password_fails_and_a_good_one_works() {
    let h = harness().await;
    let mut c = h.connect().await;
    c.cmd(
        "a LOGIN alice@example.test wrong",
        "a NO [AUTHENTICATIONFAILED]",
    )
    .await;
    c.cmd(
        "b LOGIN nobody@example.test wrong",
        "b NO [AUTHENTICATIONFAILED]",
    )
    .await;
    c.cmd("c SELECT INBOX", "c BAD").await;
    c.cmd(
        "d LOGIN alice@example.test \"correct horse battery\"",
        "d OK",
    )
    .await;
    c.cmd("e LOGIN alice@example.test x", "e BAD").await;
}

#[tokio::test]
async fn remote_cleartext_clients_see_logindisabled_and_cannot_send_passwords() {
    let h = harness().await;
    let mut c = h.connect_from(REMOTE).await;
    let lines = c.cmd("a CAPABILITY", "a OK").await;
    assert!(lines[0].contains(" LOGINDISABLED"), "{}", lines[0]);
    assert!(!lines[0].contains("AUTH=PLAIN"), "{}", lines[0]);
    assert!(lines[0].contains("AUTH=SCRAM-SHA-256"), "{}", lines[0]);
    c.cmd(
        "b LOGIN alice@example.test \"correct horse battery\"",
        "b NO [PRIVACYREQUIRED]",
    )
    .await;
    let plain = b64(format!("\0{USER}\0{PASSWORD}").as_bytes());
    c.cmd(
        &format!("c AUTHENTICATE PLAIN {plain}"),
        "c NO [PRIVACYREQUIRED]",
    )
    .await;
}

#[tokio::test]
async fn authenticate_plain_with_an_initial_response_logs_in() {
    let h = harness().await;
    let mut c = h.connect().await;
    let plain = b64(format!("\0{USER}\0{PASSWORD}").as_bytes());
    c.cmd(&format!("a AUTHENTICATE PLAIN {plain}"), "a OK [CAPABILITY")
        .await;
    c.cmd("b SELECT INBOX", "b OK").await;
}

#[tokio::test]
async fn authenticate_plain_without_initial_response_uses_a_continuation_and_can_be_cancelled() {
    let h = harness().await;
    let mut c = h.connect().await;
    c.send("a AUTHENTICATE PLAIN").await;
    c.expect("+ ").await;
    c.send("*").await;
    c.expect("a BAD").await;
    c.send("b AUTHENTICATE PLAIN").await;
    c.expect("+ ").await;
    c.send(&b64(format!("\0{USER}\0wrong").as_bytes())).await;
    c.expect("b NO [AUTHENTICATIONFAILED]").await;
    c.send("c AUTHENTICATE PLAIN").await;
    c.expect("+ ").await;
    c.send(&b64(format!("\0{USER}\0{PASSWORD}").as_bytes()))
        .await;
    c.expect("c OK").await;
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
    c.send(&format!(
        "a AUTHENTICATE SCRAM-SHA-256 {}",
        b64(first.as_bytes())
    ))
    .await;
    let challenge = c.expect("+ ").await;
    let server_first =
        String::from_utf8(B64.decode(&challenge[2..]).expect("base64")).expect("utf-8");
    let (last, expected_signature) = client.last(&server_first);
    c.send(&b64(last.as_bytes())).await;
    let reply = c.line().await;
    if let Some(data) = reply.strip_prefix("+ ") {
        let server_final = B64.decode(data).expect("base64");
        assert_eq!(server_final, expected_signature.as_bytes());
        c.send("").await;
        return c.line().await;
    }
    reply
}

#[tokio::test]
async fn authenticate_scram_sha256_full_exchange_works_even_from_a_remote_cleartext_client() {
    let h = harness().await;
    let mut c = h.connect_from(REMOTE).await;
    let done = scram_login(&mut c, PASSWORD).await;
    assert!(done.starts_with("a OK"), "{done}");
    c.cmd("b SELECT INBOX", "b OK").await;
}

#[tokio::test]
async fn authenticate_scram_sha256_with_a_wrong_password_fails() {
    let h = harness().await;
    let mut c = h.connect_from(REMOTE).await;
    let done = scram_login(&mut c, "wrong password!").await;
    assert!(done.starts_with("a NO [AUTHENTICATIONFAILED]"), "{done}");
}

#[tokio::test]
async fn malformed_commands_get_bad_and_the_session_continues() {
    let h = harness().await;
    let mut c = h.login().await;
    c.cmd("a FROBNICATE", "a BAD").await;
    c.cmd("b SELECT", "b BAD").await;
    c.send("+++").await;
    c.expect("* BAD").await;
    c.cmd("c FETCH 1 FLAGS", "c BAD").await;
    c.cmd("d NOOP", "d OK").await;
    // A literal over APPENDLIMIT is refused before it is sent.
    c.send("e APPEND INBOX {99999999999}").await;
    c.expect("e NO [TOOBIG]").await;
    c.cmd("f NOOP", "f OK").await;
    // An over-long line.
    c.send(&format!("g NOOP {}", "x".repeat(70_000))).await;
    c.expect("g BAD").await;
    c.cmd("h NOOP", "h OK").await;
}

#[tokio::test]
async fn before_login_only_small_literals_are_accepted_after_login_appendlimit_applies() {
    let h = harness().await;
    let mut c = h.connect().await;
    // An unauthenticated client cannot make the server buffer a large literal.
    c.send("a LOGIN {100000}").await;
    c.expect("a NO [TOOBIG]").await;
    c.send(&format!("b LOGIN {{{}}}", USER.len())).await;
    c.expect("+ ").await;
    c.send(&format!("{USER} \"{PASSWORD}\"")).await;
    c.expect_tagged("b OK").await;
    c.send("c APPEND INBOX {100000}").await;
    c.expect("+ ").await;
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    message.resize(100_000, b'x');
    message.extend_from_slice(b"\r\n");
    c.send_raw(&message).await;
    c.expect_tagged("c OK").await;
}

#[tokio::test]
async fn a_command_trickled_before_login_is_cut_off_by_the_login_timeout() {
    let h = harness_with(|ctx| ctx.login_timeout = Duration::from_millis(300)).await;
    let mut c = h.connect().await;
    let started = std::time::Instant::now();
    // Each octet comes well within the timeout, the command as a whole does not (slowloris).
    for &octet in b"a LOGIN alice@example.test secret".iter().cycle() {
        if !c.quiet().await {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a trickling client is never cut off"
        );
        // The server may close between the check and this write.
        let _ = c.stream.write_all(&[octet]).await;
    }
    c.expect("* BYE").await;
    assert!(c.closed().await.is_empty());
}

#[tokio::test]
async fn too_many_consecutive_errors_end_the_session_with_bye() {
    let h = harness().await;
    let mut c = h.connect().await;
    for i in 0..crate::DEFAULT_MAX_ERRORS - 1 {
        c.cmd(&format!("x{i} BOGUS"), &format!("x{i} BAD")).await;
    }
    c.send("last BOGUS").await;
    c.expect("last BAD").await;
    c.expect("* BYE").await;
    assert!(c.closed().await.is_empty());
}

#[tokio::test]
async fn shutdown_says_bye() {
    let h = harness().await;
    let token = CancellationToken::new();
    let mut c = h.connect_with(LOOPBACK, false, token.clone());
    c.expect("* OK").await;
    token.cancel();
    c.expect("* BYE").await;
    assert!(c.closed().await.is_empty());
}

/// Changes alice's password and runs the server's credential poll once.
async fn change_password_and_poll(h: &Harness) {
    h.ctx
        .directory
        .set_password(USER, &Secret::new("another password"))
        .await
        .expect("set password");
    let revoked = h.ctx.directory.revoke_stale_sessions().await.expect("poll");
    assert!(revoked >= 1);
}

#[tokio::test]
async fn a_password_change_ends_the_session_with_bye_expired() {
    let h = harness().await;
    let mut c = h.login().await;
    let mut bob = h.login_as(OTHER).await;
    change_password_and_poll(&h).await;
    let rest = c.closed().await;
    assert!(
        rest.iter().any(|l| l.starts_with("* BYE [EXPIRED]")),
        "{rest:?}"
    );
    bob.cmd("b NOOP", "b OK").await;
}

#[tokio::test]
async fn a_password_change_ends_an_idling_session() {
    let h = harness().await;
    let mut c = h.select().await;
    c.send("i IDLE").await;
    c.expect("+ ").await;
    change_password_and_poll(&h).await;
    let rest = c.closed().await;
    assert!(
        rest.iter().any(|l| l.starts_with("* BYE [EXPIRED]")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn commands_after_revocation_are_not_run() {
    let h = harness().await;
    let mut c = h.login().await;
    change_password_and_poll(&h).await;
    // Arrives after the revocation: the session says goodbye instead of creating it.
    c.send("a CREATE Pipelined").await;
    let rest = c.closed().await;
    assert!(rest.iter().all(|l| !l.starts_with("a OK")), "{rest:?}");
    let account = h.account.id;
    assert!(
        h.store
            .mailbox_by_name(account, "Pipelined")
            .await
            .expect("lookup")
            .is_none()
    );
}

#[tokio::test]
async fn a_password_change_stops_a_long_fetch() {
    let h = harness().await;
    let line = "y".repeat(998);
    let body = format!("Subject: big\r\n\r\n{}", format!("{line}\r\n").repeat(100));
    for _ in 0..20 {
        h.deliver(body.as_bytes()).await;
    }
    let mut c = h.select().await;
    // 2 MB of answers: the session blocks writing into the 64 KiB pipe after the first few.
    c.send("f FETCH 1:* BODY.PEEK[]").await;
    c.expect("* 1 FETCH").await;
    change_password_and_poll(&h).await;
    let rest = c.closed().await;
    let fetched = rest
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH "))
        .count();
    assert!(fetched < 19, "the FETCH ran to its end ({fetched} more)");
    assert!(
        has(&rest, "f NO [EXPIRED]"),
        "{:?}",
        &rest[rest.len().saturating_sub(3)..]
    );
    assert!(rest.iter().any(|l| l.starts_with("* BYE [EXPIRED]")));
}
