//! Parallel guesses through [`Directory::authenticate`]: the throttle admits each attempt
//! before its password is hashed, and an attempt admitted while the key's tarpit is active
//! pushes the key's "not before" instant one delay further (`Throttle::admit`). So guesses sent
//! over many connections at once are verified one delay apart, not all at once before the
//! first of their failures is recorded.

use std::time::{Duration, Instant};

use super::*;

#[tokio::test]
async fn parallel_wrong_passwords_under_an_active_tarpit_are_verified_one_delay_apart() {
    // The tarpit of (alice, IP) starts at 2 failures, 50 ms first delay.
    let (_dir, d) = throttled_directory(2, 0).await;
    for i in 0..2 {
        guess(&d, "alice@example.test", &format!("guess {i}"), IP).await;
    }
    let attempts: Vec<_> = (0..5)
        .map(|i| {
            let d = d.clone();
            tokio::spawn(async move {
                let result = d
                    .authenticate("alice@example.test", &secret(&format!("parallel {i}")), IP)
                    .await;
                (result, Instant::now())
            })
        })
        .collect();
    let mut done = Vec::new();
    for attempt in attempts {
        let (result, at) = attempt.await.unwrap();
        assert_eq!(result, Err(AuthError::Failed));
        done.push(at);
    }
    done.sort();
    // Five attempts admitted together start at least one 50 ms delay apart each.
    let spread = done[4] - done[0];
    assert!(
        spread >= Duration::from_millis(190),
        "parallel guesses were verified together (within {spread:?})"
    );
    assert_eq!(d.stats().auth_failures, 7);
}
