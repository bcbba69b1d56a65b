//! SASL server mechanisms (tern-directory `sasl`: PLAIN, LOGIN, SCRAM-SHA-256) fed arbitrary
//! client messages, plus the base64 response decoding every protocol uses.
//!
//! Input: the first octet picks the mechanism and options; the rest is the client's side.
//! - PLAIN: the message. What parses has a non-empty user name and password without NUL.
//! - LOGIN: responses separated by 0xFF, optionally with no initial response. After the
//!   credentials every further step is refused.
//! - SCRAM-SHA-256: two octets give the length of the client-first message, the rest is the
//!   client-final template. With option bits the template's `@NONCE@` and `@GS2@` are replaced
//!   by the real combined nonce and the base64 gs2 header (as a real client echoes them), and a
//!   valid proof is appended. A valid proof must be accepted with the right server signature;
//!   a forged one must never be.
#![no_main]

use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use libfuzzer_sys::fuzz_target;
use tern_directory::password::ScramCredentials;
use tern_directory::sasl::{LoginServer, LoginStep, ScramServer, parse_plain};
use tern_directory::{SaslError, decode_base64_response};

fuzz_target!(|data: &[u8]| run(data));

const PASSWORD: &str = "pencil";
const SALT: &[u8] = b"fuzz salt";

fn run(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    if let Ok(decoded) = decode_base64_response(rest) {
        assert!(
            decoded.len() <= rest.len(),
            "base64 decoding grew the input"
        );
    }
    match control % 3 {
        0 => plain(rest),
        1 => login(control, rest),
        _ => scram(control, rest),
    }
}

fn plain(message: &[u8]) {
    if let Ok(credentials) = parse_plain(message) {
        assert!(!credentials.username.is_empty());
        assert!(!credentials.username.contains('\0'));
        let password = credentials.password.expose();
        assert!(!password.is_empty() && !password.contains('\0'));
    }
}

fn login(control: u8, input: &[u8]) {
    let mut server = LoginServer::new();
    if control & 8 != 0 {
        assert!(matches!(server.step(None), Ok(LoginStep::Challenge(_))));
    }
    let mut done = false;
    for response in input.split(|&b| b == 0xff) {
        let step = server.step(Some(response));
        if done {
            assert_eq!(
                step,
                Err(SaslError::UnexpectedStep),
                "step after the credentials"
            );
        }
        if let Ok(LoginStep::Credentials(c)) = &step {
            assert!(!c.username.is_empty() && !c.password.expose().is_empty());
            done = true;
        }
    }
}

fn scram(control: u8, input: &[u8]) {
    let [hi, lo, rest @ ..] = input else {
        return;
    };
    let split = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
    let (client_first, template) = rest.split_at(split);
    let iterations = NonZeroU32::MIN;
    let credentials = ScramCredentials::derive(PASSWORD, SALT, iterations);
    let Ok(mut server) = ScramServer::new() else {
        return;
    };
    if server.client_first(client_first).is_err() {
        assert_eq!(
            server.server_first(&credentials),
            Err(SaslError::UnexpectedStep)
        );
        return;
    }
    let server_first = server
        .server_first(&credentials)
        .expect("server-first after an accepted client-first");
    let Some(nonce) = server_first
        .strip_prefix(b"r=")
        .and_then(|r| r.split(|&b| b == b',').next())
    else {
        panic!("server-first without a nonce: {server_first:?}");
    };

    // The client-first message the server accepted is UTF-8 with two commas in its gs2 header.
    let first_text = std::str::from_utf8(client_first).expect("accepted client-first is UTF-8");
    let gs2_end = first_text
        .match_indices(',')
        .nth(1)
        .map(|(i, _)| i + 1)
        .expect("accepted client-first has a gs2 header");
    let (gs2, bare) = first_text.split_at(gs2_end);

    let mut without_proof = template.to_vec();
    if control & 4 != 0 {
        without_proof = replace(&without_proof, b"@NONCE@", nonce);
        without_proof = replace(&without_proof, b"@GS2@", B64.encode(gs2).as_bytes());
    }
    let signed = control & 8 != 0;
    let mut client_final = without_proof.clone();
    let mut expected_signature = None;
    if signed {
        let auth_message = [bare.as_bytes(), b",", &server_first, b",", &without_proof].concat();
        let (proof, server_signature) = client_proof(&auth_message, iterations);
        client_final.extend_from_slice(b",p=");
        client_final.extend_from_slice(B64.encode(proof).as_bytes());
        expected_signature = Some(format!("v={}", B64.encode(server_signature)));
    }
    let result = server.client_final(&client_final);
    match (&result, expected_signature) {
        (Ok(v), Some(expected)) => assert_eq!(v.as_slice(), expected.as_bytes()),
        (Ok(_), None) => panic!("a forged proof was accepted"),
        (Err(SaslError::InvalidProof), Some(_)) => panic!("a valid proof was refused"),
        (Err(_), _) => {}
    }
    assert_eq!(
        server.client_final(&client_final),
        Err(SaslError::UnexpectedStep),
        "the exchange went on after its end"
    );
}

/// RFC 5802 §3, the client's side: ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage),
/// and the ServerSignature the server must answer with.
fn client_proof(auth_message: &[u8], iterations: NonZeroU32) -> ([u8; 32], [u8; 32]) {
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        SALT,
        PASSWORD.as_bytes(),
        &mut salted,
    );
    let salted_key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&salted_key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let client_signature = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
        auth_message,
    );
    let mut proof = [0u8; 32];
    for ((p, k), s) in proof
        .iter_mut()
        .zip(client_key.as_ref())
        .zip(client_signature.as_ref())
    {
        *p = k ^ s;
    }
    let server_key = hmac::sign(&salted_key, b"Server Key");
    let server_signature = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, server_key.as_ref()),
        auth_message,
    );
    let mut signature = [0u8; 32];
    signature.copy_from_slice(server_signature.as_ref());
    (proof, signature)
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(pos) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..pos]);
        out.extend_from_slice(with);
        rest = &rest[pos + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}
