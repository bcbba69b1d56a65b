use super::*;
use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const REFUSAL: &[u8] = b"421 4.7.0 Too many connections\r\n";

fn limits(total: usize, per_ip: usize, grace_ms: u64) -> Limits {
    Limits {
        max_connections: total,
        max_connections_per_ip: per_ip,
        shutdown_grace: Duration::from_millis(grace_ms),
        ..Limits::default()
    }
}

fn loopback(name: &str) -> ListenerConfig {
    ListenerConfig {
        name: name.to_owned(),
        protocol: Protocol::Smtp,
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls: TlsMode::None,
        max_connections: None,
    }
}

/// Greets with "hi <session id>", then echoes lines until EOF.
async fn echo(conn: Connection) {
    let (read, mut write) = conn.stream.into_split();
    let greeting = format!("hi {}\r\n", conn.session_id);
    if write.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if write
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn start(
    limits: &Limits,
) -> (
    SocketAddr,
    CancellationToken,
    RuntimeStats,
    tokio::task::JoinHandle<()>,
) {
    let mut rt = Runtime::new(limits);
    let addr = rt.bind(&loopback("echo"), REFUSAL, echo).await.unwrap();
    assert_eq!(rt.local_addrs(), [("echo".to_owned(), addr)]);
    assert_eq!(rt.local_addr("echo"), Some(addr));
    let token = rt.shutdown_token();
    let stats = rt.stats();
    (addr, token, stats, tokio::spawn(rt.run()))
}

async fn first_line(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
        .await
        .unwrap()
        .unwrap()
        == 1
    {
        buf.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
    }
    String::from_utf8(buf).unwrap()
}

async fn connect(addr: SocketAddr) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let line = first_line(&mut s).await;
    (s, line)
}

async fn wait_for_active(stats: &RuntimeStats, n: usize) {
    for _ in 0..500 {
        if stats.active_connections() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "active connections stayed at {}",
        stats.active_connections()
    );
}

#[tokio::test]
async fn echo_service_accepts_and_serves_then_stops_on_shutdown() {
    let (addr, token, stats, run) = start(&limits(10, 10, 1000)).await;
    let (mut s, greeting) = connect(addr).await;
    assert!(greeting.starts_with("hi "), "{greeting}");
    s.write_all(b"hello\n").await.unwrap();
    assert_eq!(first_line(&mut s).await, "hello\r\n");
    assert_eq!(stats.active_connections(), 1);
    drop(s);
    wait_for_active(&stats, 0).await;
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still open"
    );
}

#[tokio::test]
async fn per_ip_limit_refuses_the_extra_connection_with_the_refusal_line() {
    let (addr, token, stats, run) = start(&limits(100, 2, 100)).await;
    let (a, ga) = connect(addr).await;
    let (_b, gb) = connect(addr).await;
    assert!(ga.starts_with("hi ") && gb.starts_with("hi "));
    let (mut c, refused) = connect(addr).await;
    assert_eq!(refused.as_bytes(), REFUSAL);
    assert_eq!(
        c.read(&mut [0u8; 16]).await.unwrap(),
        0,
        "refused socket not closed"
    );
    drop(a);
    wait_for_active(&stats, 1).await;
    let (_d, again) = connect(addr).await;
    assert!(again.starts_with("hi "), "{again}");
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn global_limit_spans_all_listeners() {
    let mut rt = Runtime::new(&limits(2, 100, 100));
    let one = rt.bind(&loopback("one"), REFUSAL, echo).await.unwrap();
    let two = rt
        .bind(&loopback("two"), b"* BYE Too many connections\r\n", echo)
        .await
        .unwrap();
    let token = rt.shutdown_token();
    let run = tokio::spawn(rt.run());
    let (_a, ga) = connect(one).await;
    let (_b, gb) = connect(two).await;
    assert!(ga.starts_with("hi ") && gb.starts_with("hi "));
    assert_eq!(connect(two).await.1, "* BYE Too many connections\r\n");
    assert_eq!(connect(one).await.1.as_bytes(), REFUSAL);
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_flood_on_one_listener_stops_at_its_own_limit_and_another_listener_is_still_served() {
    let mut rt = Runtime::new(&limits(10, 100, 100));
    let smtp = ListenerConfig {
        max_connections: Some(3),
        ..loopback("smtp")
    };
    let smtp = rt.bind(&smtp, REFUSAL, echo).await.unwrap();
    let imap = rt
        .bind(&loopback("imap"), b"* BYE Too many connections\r\n", echo)
        .await
        .unwrap();
    let token = rt.shutdown_token();
    let stats = rt.stats();
    let run = tokio::spawn(rt.run());
    let mut flood = Vec::new();
    for _ in 0..3 {
        let (s, greeting) = connect(smtp).await;
        assert!(greeting.starts_with("hi "), "{greeting}");
        flood.push(s);
    }
    for _ in 0..5 {
        assert_eq!(connect(smtp).await.1.as_bytes(), REFUSAL);
    }
    let (_user, greeting) = connect(imap).await;
    assert!(greeting.starts_with("hi "), "{greeting}");
    // A freed slot on the flooded listener can be taken again.
    flood.pop();
    wait_for_active(&stats, 3).await;
    let (_again, greeting) = connect(smtp).await;
    assert!(greeting.starts_with("hi "), "{greeting}");
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn rotating_ipv6_64s_inside_one_48_share_the_48_cap() {
    let limiter = Arc::new(Limiter {
        max_total: 1000,
        max_per_ip: 2,
        max_per_ipv6_48: 5,
        state: Mutex::new(LimiterState::default()),
    });
    let slot = ListenerSlot {
        index: 0,
        max: None,
    };
    let mut held = Vec::new();
    // Each /64 stays under its own limit of 2, but the /48 as a whole stops at 5.
    for n in 0..5u16 {
        let ip: IpAddr = format!("2001:db8:1:{n:x}::1").parse().unwrap();
        held.push(Limiter::acquire(&limiter, ip, slot).unwrap());
    }
    let sixth: IpAddr = "2001:db8:1:ff::1".parse().unwrap();
    assert_eq!(
        Limiter::acquire(&limiter, sixth, slot).err(),
        Some("too many connections from this IPv6 /48")
    );
    // Another /48 and IPv4 clients are not affected.
    let other: IpAddr = "2001:db8:2::1".parse().unwrap();
    assert!(Limiter::acquire(&limiter, other, slot).is_ok());
    let v4: IpAddr = "192.0.2.1".parse().unwrap();
    assert!(Limiter::acquire(&limiter, v4, slot).is_ok());
    // A closed connection gives its /48 slot back.
    held.pop();
    assert!(Limiter::acquire(&limiter, sixth, slot).is_ok());
}

#[tokio::test]
async fn implicit_tls_listener_closes_over_limit_connections_without_plaintext() {
    let mut rt = Runtime::new(&limits(1, 1, 100));
    let cfg = ListenerConfig {
        tls: TlsMode::Implicit,
        ..loopback("imaps")
    };
    let addr = rt.bind(&cfg, REFUSAL, echo).await.unwrap();
    let token = rt.shutdown_token();
    let run = tokio::spawn(rt.run());
    let (_a, _) = connect(addr).await;
    assert_eq!(connect(addr).await.1, "");
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bind_error_names_the_listener_and_address() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let mut rt = Runtime::new(&Limits::default());
    let cfg = ListenerConfig {
        bind: addr,
        ..loopback("smtp")
    };
    let err = rt.bind(&cfg, REFUSAL, echo).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("listener \"smtp\": cannot bind {addr}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn graceful_shutdown_lets_a_session_finish_within_grace_and_aborts_an_overrunning_one() {
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let finished = Arc::new(AtomicBool::new(false));
    let aborted = Arc::new(AtomicBool::new(false));
    let mut rt = Runtime::new(&limits(10, 10, 300));
    let f = Arc::clone(&finished);
    let polite = rt
        .bind(&loopback("polite"), REFUSAL, move |mut conn: Connection| {
            let finished = Arc::clone(&f);
            async move {
                let _ = conn.stream.write_all(b"ready\r\n").await;
                conn.shutdown.cancelled().await;
                // Finish the transaction in progress, then say goodbye.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = conn.stream.write_all(b"421 shutting down\r\n").await;
                finished.store(true, Ordering::SeqCst);
            }
        })
        .await
        .unwrap();
    let a = Arc::clone(&aborted);
    let stubborn = rt
        .bind(
            &loopback("stubborn"),
            REFUSAL,
            move |mut conn: Connection| {
                let flag = SetOnDrop(Arc::clone(&a));
                async move {
                    let _flag = flag;
                    let _ = conn.stream.write_all(b"ready\r\n").await;
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
            },
        )
        .await
        .unwrap();
    let token = rt.shutdown_token();
    let run = tokio::spawn(rt.run());
    let (mut p, _) = connect(polite).await;
    let (mut s, _) = connect(stubborn).await;
    let started = tokio::time::Instant::now();
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "returned before grace: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(finished.load(Ordering::SeqCst));
    assert!(aborted.load(Ordering::SeqCst));
    assert_eq!(first_line(&mut p).await, "421 shutting down\r\n");
    assert_eq!(
        first_line(&mut s).await,
        "",
        "aborted session's socket not closed"
    );
}

#[tokio::test]
async fn shutdown_with_idle_runtime_returns_promptly() {
    let (_, token, _, run) = start(&limits(10, 10, 10_000)).await;
    token.cancel();
    tokio::time::timeout(Duration::from_secs(2), run)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn each_connection_gets_its_own_session_id() {
    let (addr, token, _, run) = start(&limits(100, 100, 1000)).await;
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let (_s, greeting) = connect(addr).await;
        assert!(seen.insert(greeting.clone()), "repeated {greeting}");
    }
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn session_ids_are_unique_and_twelve_characters() {
    let ids: Vec<SessionId> = (0..10_000).map(|_| SessionId::next()).collect();
    let unique: HashSet<SessionId> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len());
    let shown: HashSet<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), ids.len());
    assert!(
        shown
            .iter()
            .all(|s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
    );
}

#[test]
fn per_ip_limit_groups_ipv6_by_64_and_unmaps_ipv4() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
    let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(limit_key(a), limit_key(b));
    assert_ne!(limit_key(a), limit_key(c));
    let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    assert_eq!(limit_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
}

#[test]
fn loopback_includes_the_ipv4_mapped_form_a_dual_stack_listener_reports() {
    for ip in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
        assert!(is_loopback(ip.parse().unwrap()), "{ip}");
    }
    for ip in [
        "192.0.2.1",
        "::ffff:192.0.2.1",
        "2001:db8::1",
        "::",
        "0.0.0.0",
    ] {
        assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
    }
}
