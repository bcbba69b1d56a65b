//! Submission (587/465): AUTH, sender ownership, remote recipients.

use tern_directory::{ThrottleConfig, encode_base64};

use super::*;

fn plain(user: &str, password: &str) -> String {
    encode_base64(format!("\0{user}\0{password}").as_bytes())
}

async fn submission(h: &Harness) -> Client<DuplexStream> {
    h.connect(Protocol::Submission, LOOPBACK).await
}

async fn logged_in(h: &Harness) -> Client<DuplexStream> {
    let mut c = submission(h).await;
    c.ehlo().await;
    c.cmd(
        &format!("AUTH PLAIN {}", plain("alice@example.test", PW)),
        "235 2.7.0",
    )
    .await;
    c
}

#[tokio::test]
async fn mail_before_auth_is_refused_with_530() {
    let h = harness().await;
    let mut c = submission(&h).await;
    let ehlo = c.ehlo().await;
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN SCRAM-SHA-256\r\n"),
        "{ehlo}"
    );
    c.cmd("MAIL FROM:<alice@example.test>", "530 5.7.0").await;
    c.cmd("RCPT TO:<bob@example.test>", "503 5.5.1").await;
}

#[tokio::test]
async fn auth_before_tls_is_refused_off_loopback() {
    let h = harness().await;
    let mut c = h.connect(Protocol::Submission, REMOTE).await;
    let ehlo = c.ehlo().await;
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    c.cmd(
        &format!("AUTH PLAIN {}", plain("alice@example.test", PW)),
        "530 5.7.0 Must issue a STARTTLS command first",
    )
    .await;
    // And on loopback only when allowed.
    let h = harness_with(|ctx| ctx.allow_plaintext_on_loopback = false).await;
    let mut c = submission(&h).await;
    assert!(!c.ehlo().await.contains("AUTH"));
    c.cmd("AUTH LOGIN", "530 5.7.0").await;
}

#[tokio::test]
async fn ipv4_mapped_loopback_counts_as_loopback_like_in_imap_and_pop3() {
    // A dual-stack `[::]` listener reports an IPv4 loopback client as `::ffff:127.0.0.1`.
    let h = harness().await;
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
    let mut c = h.connect(Protocol::Submission, mapped).await;
    assert!(c.ehlo().await.contains("AUTH PLAIN"));
    c.cmd(
        &format!("AUTH PLAIN {}", plain("alice@example.test", PW)),
        "235 2.7.0",
    )
    .await;
}

#[tokio::test]
async fn auth_plain_with_initial_response_and_continuation() {
    let h = harness().await;
    let mut c = submission(&h).await;
    c.ehlo().await;
    c.cmd(
        &format!("AUTH PLAIN {}", plain("alice@example.test", "wrong")),
        "535 5.7.8",
    )
    .await;
    c.cmd("AUTH PLAIN", "334 ").await;
    c.cmd(&plain("alice@example.test", PW), "235 2.7.0").await;
    c.cmd("AUTH PLAIN", "503 5.5.1").await;
    let ehlo = c.ehlo().await;
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
}

#[tokio::test]
async fn auth_login_and_cancellation() {
    let h = harness().await;
    let mut c = submission(&h).await;
    c.ehlo().await;
    c.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6").await;
    c.cmd("*", "501 5.0.0").await;
    c.cmd("AUTH CRAM-MD5", "504 5.5.4").await;
    c.cmd("AUTH PLAIN !!!notbase64", "501 5.5.2").await;
    c.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6").await;
    c.cmd(&encode_base64(b"alice@example.test"), "334 UGFzc3dvcmQ6")
        .await;
    c.cmd(&encode_base64(PW.as_bytes()), "235 2.7.0").await;
    c.cmd("MAIL FROM:<alice@example.test>", "250").await;
}

#[tokio::test]
async fn auth_before_ehlo_is_refused() {
    let h = harness().await;
    let mut c = submission(&h).await;
    c.cmd("AUTH PLAIN", "503 5.5.1").await;
    c.cmd("HELO client.test", "250").await;
    c.cmd("AUTH PLAIN", "503 5.5.1").await;
}

#[tokio::test]
async fn repeated_auth_failures_close_the_session() {
    let h = harness().await;
    let mut c = submission(&h).await;
    c.ehlo().await;
    let bad = format!("AUTH PLAIN {}", plain("alice@example.test", "nope"));
    c.cmd(&bad, "535 5.7.8").await;
    c.cmd(&bad, "535 5.7.8").await;
    c.cmd(&bad, "421 4.7.0").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn logins_from_a_blocked_address_get_454() {
    let config = DirectoryConfig {
        throttle: ThrottleConfig {
            account_limit: 0,
            ip_limit: 2,
            ..ThrottleConfig::default()
        },
        ..DirectoryConfig::default()
    };
    let h = harness_full(config, |ctx| ctx.max_auth_failures = 10).await;
    let mut c = submission(&h).await;
    c.ehlo().await;
    // Distinct guesses: a repeat of the same wrong password would count once.
    let bad = |guess: &str| format!("AUTH PLAIN {}", plain("alice@example.test", guess));
    c.cmd(&bad("nope-1"), "535 5.7.8").await;
    c.cmd(&bad("nope-2"), "535 5.7.8").await;
    c.cmd(&bad("nope-3"), "454 4.7.0").await;
    // Even the right password is refused while the address is blocked.
    c.cmd(
        &format!("AUTH PLAIN {}", plain("alice@example.test", PW)),
        "454 4.7.0",
    )
    .await;
}

#[tokio::test]
async fn sender_must_be_owned_by_the_account() {
    let h = harness().await;
    let mut c = logged_in(&h).await;
    c.cmd("MAIL FROM:<bob@example.test>", "553 5.7.1").await;
    c.cmd("MAIL FROM:<>", "553 5.7.1").await;
    c.cmd("MAIL FROM:<alice@remote.test>", "553 5.7.1").await;
    c.cmd("MAIL FROM:<ALICE+lists@example.test>", "250").await;
    c.cmd("RSET", "250").await;
    // An alias that includes alice is not hers to send as until an admin says so.
    c.cmd("MAIL FROM:<team@example.test>", "553 5.7.1").await;
    h.ctx
        .directory
        .add_send_as("alice@example.test", "team@example.test")
        .await
        .unwrap();
    c.cmd("MAIL FROM:<team@example.test>", "250").await;
}

#[tokio::test]
async fn submission_delivers_locally_and_queues_remote_recipients() {
    let h = harness().await;
    let mut c = logged_in(&h).await;
    c.cmd("MAIL FROM:<alice@example.test>", "250").await;
    c.cmd("RCPT TO:<friend@remote.test>", "250 2.1.5").await;
    c.cmd("RCPT TO:<nobody@example.test>", "550 5.1.1").await;
    c.cmd("RCPT TO:<bob@example.test>", "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    c.write(b"From: alice@example.test\r\nSubject: no date, no id\r\n\r\nhi\r\n")
        .await;
    c.cmd(".", "250 2.0.0").await;
    let stored = h.inbox(&h.bob).await;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].contains("with ESMTPA"), "{}", stored[0]);
    assert!(stored[0].contains("\r\nDate: "), "{}", stored[0]);
    assert!(stored[0].contains("\r\nMessage-ID: <"), "{}", stored[0]);
    assert!(
        stored[0].ends_with("From: alice@example.test\r\nSubject: no date, no id\r\n\r\nhi\r\n")
    );
    // The remote copy was queued in the same transaction, without the local Return-Path.
    let queue = h.store.queue_list().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].recipients[0].address, "friend@remote.test");
    let m = &queue[0].message;
    let blob = h.store.read_blob(&m.blob).await.unwrap();
    let sent = String::from_utf8_lossy(&blob[m.skip as usize..]).into_owned();
    assert!(sent.starts_with("Received: "), "{sent}");
    assert!(stored[0].starts_with("Return-Path: <alice@example.test>\r\n"));
    assert_eq!(
        &stored[0]["Return-Path: <alice@example.test>\r\n".len()..],
        sent
    );
}

#[tokio::test]
async fn scram_sha_256_logs_in_with_server_final_data() {
    let h = harness().await;
    let mut c = submission(&h).await;
    c.ehlo().await;
    let nonce = "rOprNGfwEbeRWgbNEkqO";
    let first_bare = format!("n=alice@example.test,r={nonce}");
    c.send(&format!(
        "AUTH SCRAM-SHA-256 {}",
        encode_base64(format!("n,,{first_bare}").as_bytes())
    ))
    .await;
    let challenge = c.expect("334 ").await;
    let server_first = decode(challenge[4..].trim_end());
    let (final_msg, expected_verifier) = scram::client_final(&first_bare, &server_first, PW);
    c.send(&encode_base64(final_msg.as_bytes())).await;
    let server_final = c.expect("334 ").await;
    assert_eq!(decode(server_final[4..].trim_end()), expected_verifier);
    c.cmd("", "235 2.7.0").await;
    c.cmd("MAIL FROM:<alice@example.test>", "250").await;
}

fn decode(b64: &str) -> String {
    let bytes = tern_directory::decode_base64_response(b64.as_bytes()).unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Just enough of a SCRAM-SHA-256 client (RFC 5802 §3) to drive the server.
mod scram {
    use aws_lc_rs::{digest, hmac, pbkdf2};
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;

    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        hmac::sign(&key, data).as_ref().to_vec()
    }

    /// The client-final message and the `v=` the server must answer with.
    pub(super) fn client_final(
        first_bare: &str,
        server_first: &str,
        password: &str,
    ) -> (String, String) {
        let field = |name: &str| {
            server_first
                .split(',')
                .find_map(|f| f.strip_prefix(name))
                .unwrap()
                .to_owned()
        };
        let (nonce, salt, iterations) = (field("r="), field("s="), field("i="));
        let salt = B64.decode(salt).unwrap();
        let iterations: u32 = iterations.parse().unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(iterations).unwrap(),
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{first_bare},{server_first},{without_proof}");
        let signature = hmac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        let verifier = hmac(&server_key, auth_message.as_bytes());
        (
            format!("{without_proof},p={}", B64.encode(proof)),
            format!("v={}", B64.encode(verifier)),
        )
    }
}

/// Submits `message` as alice to bob and remote.test; returns the reply to the final dot.
async fn submit_as_alice(h: &Harness, message: &str, bdat: bool) -> String {
    let mut c = logged_in(h).await;
    c.cmd("MAIL FROM:<alice@example.test>", "250").await;
    c.cmd("RCPT TO:<bob@example.test>", "250").await;
    c.cmd("RCPT TO:<friend@remote.test>", "250").await;
    if bdat {
        c.send(&format!("BDAT {} LAST", message.len())).await;
        c.write(message.as_bytes()).await;
        c.reply().await
    } else {
        c.cmd("DATA", "354").await;
        c.write(message.as_bytes()).await;
        c.cmd(".", "").await
    }
}

#[tokio::test]
async fn from_and_sender_must_name_addresses_the_account_may_send_as_at_data_and_bdat() {
    let h = harness().await;
    let directory = &h.ctx.directory;
    directory.add_domain("other.test").await.unwrap();
    directory
        .add_user("ceo@other.test", &tern_common::Secret::new(PW), None)
        .await
        .unwrap();
    for bdat in [false, true] {
        for (from, reply) in [
            (
                "From: bob@example.test\r\n",
                "550 5.7.1 <bob@example.test> is not an address you may send as",
            ),
            (
                "From: CEO <ceo@other.test>\r\n",
                "550 5.7.1 <ceo@other.test> is not an address you may send as",
            ),
            // The alias team@ reaches alice, but is not hers to send as.
            (
                "From: team@example.test\r\n",
                "550 5.7.1 <team@example.test>",
            ),
            (
                "From: alice@example.test\r\nSender: bob@example.test\r\n",
                "550 5.7.1 <bob@example.test>",
            ),
            (
                "From: alice@example.test\r\nFrom: bob@example.test\r\n",
                "550 5.6.0 Message has 2 From: header fields",
            ),
            ("", "550 5.6.0 Message has no From: header field"),
            (
                "From: undisclosed:;\r\n",
                "550 5.6.0 From: header field uses group syntax",
            ),
        ] {
            let message = format!("{from}Subject: s\r\n\r\nbody\r\n");
            let got = submit_as_alice(&h, &message, bdat).await;
            assert!(got.starts_with(reply), "{from:?} (BDAT {bdat}): {got}");
        }
    }
    // Nothing was stored or queued.
    assert_eq!(h.total_messages().await, 0);
    assert!(h.store.queue_list().await.unwrap().is_empty());
    for from in [
        "From: Alice <alice@example.test>\r\n",
        "From: alice+news@example.test\r\n",
    ] {
        let message = format!("{from}Subject: s\r\n\r\nbody\r\n");
        let got = submit_as_alice(&h, &message, false).await;
        assert!(got.starts_with("250 2.0.0"), "{from:?}: {got}");
    }
    directory
        .add_send_as("alice@example.test", "ceo@other.test")
        .await
        .unwrap();
    let got = submit_as_alice(&h, "From: ceo@other.test\r\n\r\nbody\r\n", true).await;
    assert!(got.starts_with("250 2.0.0"), "{got}");
    assert_eq!(h.inbox(&h.bob).await.len(), 3);
}
