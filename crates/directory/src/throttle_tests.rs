//! Throttle rules with time passed in: tarpit per (name, address), block per address,
//! forgiveness, repeats, queueing of concurrent attempts, bounded memory.

use super::*;

const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
const IP2: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
const S: Duration = Duration::from_secs(1);

fn throttle_with(config: ThrottleConfig) -> Throttle {
    Throttle::new(config)
}

/// Only the tarpit per (name, address): no address counting in the way.
fn pairs_only() -> Throttle {
    throttle_with(ThrottleConfig {
        ip_limit: 0,
        ..ThrottleConfig::default()
    })
}

/// `n` failures with distinct wrong passwords; returns the blocks they imposed.
fn fail(t: &Throttle, account: &str, ip: IpAddr, n: usize, now: Instant) -> Vec<Block> {
    (0..n)
        .filter_map(|i| {
            let guess = format!("guess-{account}-{i}");
            t.record_failure(account, ip, Some(guess.as_bytes()), now)
        })
        .collect()
}

#[test]
fn failures_from_one_address_never_delay_the_account_at_another_address() {
    let t = pairs_only();
    let now = Instant::now();
    fail(&t, "alice@example.test", IP, 50, now);
    assert_eq!(t.admit("alice@example.test", IP2, now), Ok(now));
    // With the address counted too (default limits), the other address is still untouched.
    let t = throttle_with(ThrottleConfig::default());
    let blocks = fail(&t, "alice@example.test", IP, 50, now);
    assert_eq!(blocks.len(), 1, "the failing address is blocked once");
    assert_eq!(t.admit("alice@example.test", IP2, now), Ok(now));
}

#[test]
fn the_tarpit_grows_from_the_limit_to_the_cap_and_never_refuses_a_client_that_waits() {
    let t = pairs_only();
    let mut now = Instant::now();
    let mut waits = Vec::new();
    for i in 0..12 {
        let start = t
            .admit("alice", IP, now)
            .unwrap_or_else(|r| panic!("attempt {i} refused: {r:?}"));
        waits.push((start - now).as_secs());
        // The verification happens at `start`, fails, and the client tries again at once.
        t.record_failure("alice", IP, Some(format!("guess-{i}").as_bytes()), start);
        now = start;
    }
    assert_eq!(waits, [0, 0, 0, 0, 0, 1, 2, 4, 8, 15, 15, 15]);
}

#[test]
fn a_few_wrong_passwords_then_the_right_one_is_admitted_within_a_second_and_then_at_once() {
    let t = throttle_with(ThrottleConfig::default());
    let now = Instant::now();
    fail(&t, "alice", IP, 5, now);
    let start = t.admit("alice", IP, now).expect("delayed, not refused");
    assert_eq!(start - now, S);
    t.record_success("alice", IP, start);
    for later in [start, start + S] {
        assert_eq!(t.admit("alice", IP, later), Ok(later));
    }
}

#[test]
fn parallel_first_attempts_are_bounded_before_any_failure_is_recorded() {
    let t = pairs_only();
    let now = Instant::now();
    // Fifty connections send a guess at the same instant: without a bound on attempts in
    // flight, all fifty would be verified before the first failure was recorded.
    let admitted: Vec<Result<Instant, Refusal>> =
        (0..50).map(|_| t.admit("alice", IP, now)).collect();
    assert_eq!(admitted[..5], [Ok(now); 5]);
    assert_eq!(admitted[5..], [Err(Refusal::Busy); 45]);
    // Their outcomes are recorded: the ones that asked again meet the tarpit.
    fail(&t, "alice", IP, 5, now);
    assert_eq!(t.admit("alice", IP, now), Ok(now + S));
    // An abandoned attempt stops counting, and a success clears the key.
    t.release("alice", IP);
    let later = now + 20 * S;
    assert_eq!(t.admit("alice", IP, later), Ok(later));
    t.record_success("alice", IP, later);
    assert_eq!(t.tracked().0, 0);
}

#[test]
fn attempts_in_flight_are_bounded_per_address_too() {
    let t = throttle_with(ThrottleConfig::default());
    let now = Instant::now();
    // Spraying: one attempt at each of many names, all at once. An address may have half its
    // block limit (10 by default) in flight.
    let at_once = (0..40)
        .filter(|i| t.admit(&format!("user{i}"), IP, now) == Ok(now))
        .count();
    assert_eq!(at_once, 10);
    assert_eq!(t.admit("user0", IP, now), Err(Refusal::Busy));
    // Another address is untouched; successes free their slots.
    assert_eq!(t.admit("user0", IP2, now), Ok(now));
    t.record_success("user0", IP, now);
    assert_eq!(t.admit("user40", IP, now), Ok(now));
}

#[test]
fn concurrent_attempts_on_one_key_queue_behind_each_other() {
    let t = pairs_only();
    let now = Instant::now();
    // Six failures: each further attempt puts 2 s behind itself.
    fail(&t, "alice", IP, 6, now);
    let mut starts = Vec::new();
    let refusal = loop {
        match t.admit("alice", IP, now) {
            Ok(start) => starts.push((start - now).as_secs()),
            Err(refusal) => break refusal,
        }
    };
    // Five in flight, the most one (name, address) allows: the next asks again later.
    assert_eq!(starts, [2, 4, 6, 8, 10]);
    assert_eq!(refusal, Refusal::Busy);
    // One of them fails: the next queues behind the others, with the longer gap it earned.
    t.record_failure("alice", IP, Some(b"guess-x"), now);
    assert_eq!(t.admit("alice", IP, now), Ok(now + 12 * S));
    t.release("alice", IP);
    assert_eq!(
        t.admit("alice", IP, now),
        Err(Refusal::Queued {
            retry_after: 16 * S
        })
    );
    // Queueing concerns that key only: the same name from elsewhere goes at once.
    assert_eq!(t.admit("alice", IP2, now), Ok(now));
    assert_eq!(t.admit("bob", IP, now), Ok(now));
}

#[test]
fn an_address_is_blocked_at_its_limit_reported_once_and_the_block_expires() {
    let t = throttle_with(ThrottleConfig {
        ip_limit: 6,
        ..ThrottleConfig::default()
    });
    let now = Instant::now();
    let mut blocks = Vec::new();
    for i in 0..6 {
        blocks.extend(fail(&t, &format!("user{i}"), IP, 1, now));
    }
    let window = Duration::from_secs(300);
    assert_eq!(
        blocks,
        [Block {
            failures: 6,
            window,
            duration: 300 * S
        }]
    );
    // Refused, whatever the name, even before a password is looked at.
    let blocked = Refusal::AddressBlocked {
        retry_after: 300 * S,
    };
    assert_eq!(t.admit("user0", IP, now), Err(blocked));
    assert_eq!(t.admit("alice", IP, now), Err(blocked));
    // A verification still under way when the block began does not block again.
    assert_eq!(fail(&t, "user9", IP, 1, now), []);
    assert_eq!(t.admit("alice", IP2, now), Ok(now));
    let half = now + 150 * S;
    assert_eq!(
        t.admit("alice", IP, half),
        Err(Refusal::AddressBlocked {
            retry_after: 150 * S
        })
    );
    // Over: a clean count, no tarpit.
    let over = now + 300 * S;
    assert_eq!(t.admit("alice", IP, over), Ok(over));
    assert_eq!(fail(&t, "user10", IP, 5, over), []);
}

#[test]
fn the_address_tarpit_starts_at_half_its_limit() {
    let t = throttle_with(ThrottleConfig {
        ip_limit: 6,
        ..ThrottleConfig::default()
    });
    let now = Instant::now();
    for i in 0..3 {
        fail(&t, &format!("user{i}"), IP, 1, now);
    }
    assert_eq!(t.admit("someone-new", IP, now), Ok(now + S));
    assert_eq!(t.admit("someone-new", IP2, now), Ok(now));
}

#[test]
fn a_success_forgives_that_names_failures_from_the_address_but_not_other_names() {
    let t = throttle_with(ThrottleConfig {
        ip_limit: 6,
        ..ThrottleConfig::default()
    });
    let now = Instant::now();
    fail(&t, "alice", IP, 4, now);
    fail(&t, "bob", IP, 1, now);
    t.record_success("alice", IP, now);
    // alice's four are forgiven; bob's one stays: five more to the block, not one.
    assert_eq!(fail(&t, "carol", IP, 4, now), []);
    assert_eq!(fail(&t, "dave", IP, 1, now).len(), 1);
    // A success of a name that never failed forgives nothing.
    let t = throttle_with(ThrottleConfig {
        ip_limit: 6,
        ..ThrottleConfig::default()
    });
    fail(&t, "bob", IP, 5, now);
    t.record_success("mallory", IP, now);
    assert_eq!(fail(&t, "carol", IP, 1, now).len(), 1);
}

#[test]
fn repeating_the_same_wrong_password_is_counted_once() {
    let t = throttle_with(ThrottleConfig {
        ip_limit: 6,
        ..ThrottleConfig::default()
    });
    let now = Instant::now();
    // A phone retrying an old password all day.
    for _ in 0..100 {
        assert_eq!(
            t.record_failure("alice", IP, Some(b"old password"), now),
            None
        );
    }
    assert_eq!(t.admit("alice", IP, now), Ok(now));
    assert_eq!(t.admit("bob", IP, now), Ok(now));
    // A different guess counts; so does every SCRAM failure (no password to compare).
    t.record_failure("alice", IP, Some(b"another"), now);
    t.record_failure("alice", IP, Some(b"old password"), now);
    for _ in 0..3 {
        t.record_failure("alice", IP, None, now);
    }
    assert_eq!(
        t.admit("bob", IP, now),
        Err(Refusal::AddressBlocked {
            retry_after: 300 * S
        })
    );
}

#[test]
fn failures_outside_the_window_are_forgotten() {
    let t = pairs_only();
    let now = Instant::now();
    fail(&t, "alice", IP, 4, now);
    let later = now + Duration::from_secs(5 * 60);
    fail(&t, "alice", IP, 1, later);
    assert_eq!(t.admit("alice", IP, later), Ok(later));
}

#[test]
fn ipv6_clients_in_one_64_share_a_counter() {
    let t = throttle_with(ThrottleConfig::default());
    let now = Instant::now();
    for i in 0..20u16 {
        let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i));
        fail(&t, &format!("user{i}"), ip, 1, now);
    }
    let same64 = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
    let other64 = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
    assert!(matches!(
        t.admit("x", same64, now),
        Err(Refusal::AddressBlocked { .. })
    ));
    assert_eq!(t.admit("x", other64, now), Ok(now));
}

#[test]
fn a_zero_limit_turns_that_counter_off() {
    let now = Instant::now();
    let no_account_limit = throttle_with(ThrottleConfig {
        account_limit: 0,
        ..ThrottleConfig::default()
    });
    fail(&no_account_limit, "alice", IP, 9, now);
    assert_eq!(no_account_limit.admit("alice", IP, now), Ok(now));
    let no_ip_limit = pairs_only();
    for i in 0..50 {
        fail(&no_ip_limit, &format!("user{i}"), IP, 1, now);
    }
    assert_eq!(no_ip_limit.admit("fresh", IP, now), Ok(now));
    // The other counter still works.
    fail(&no_ip_limit, "alice", IP, 5, now);
    assert_eq!(no_ip_limit.admit("alice", IP, now), Ok(now + S));
    let neither = throttle_with(ThrottleConfig {
        account_limit: 0,
        ip_limit: 0,
        ..ThrottleConfig::default()
    });
    fail(&neither, "alice", IP, 50, now);
    assert_eq!(neither.tracked(), (0, 0));
}

#[test]
fn memory_stays_bounded_under_many_keys_and_long_names() {
    let t = throttle_with(ThrottleConfig {
        max_entries: 100,
        ..ThrottleConfig::default()
    });
    let now = Instant::now();
    for i in 0..1000u32 {
        let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
        fail(
            &t,
            &format!("user{i}"),
            ip,
            1,
            now + Duration::from_millis(u64::from(i)),
        );
    }
    let (pairs, ips) = t.tracked();
    assert!(pairs <= 100 && ips <= 100, "{pairs} {ips}");
    // The most recent key survived eviction.
    let recent = PairKey::new("user999", IpAddr::V4(std::net::Ipv4Addr::from(999)));
    assert!(lock(&t.tables).pairs.entries.contains_key(&recent));
    // A name is kept to 256 octets (on a character boundary).
    let long = "é".repeat(1000);
    assert_eq!(PairKey::new(&long, IP).account.len(), 256);
}
