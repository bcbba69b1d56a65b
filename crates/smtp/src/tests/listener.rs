//! The service on the real listener runtime over TCP, and concurrent sessions.

use tern_common::config::{Limits, ListenerConfig};
use tern_common::listener::Runtime;
use tokio::net::TcpStream;

use super::*;
use crate::{REFUSAL, service};

#[tokio::test]
async fn service_runs_sessions_on_the_listener_runtime_and_refuses_over_the_limit() {
    let h = harness().await;
    let limits = Limits {
        max_connections_per_ip: 1,
        ..Limits::default()
    };
    let mut runtime = Runtime::new(&limits);
    let config = ListenerConfig::new(Protocol::Smtp, "127.0.0.1:0".parse().unwrap());
    let addr = runtime
        .bind(&config, REFUSAL, service(Arc::clone(&h.ctx)))
        .await
        .unwrap();
    let stop = runtime.shutdown_token();
    let running = tokio::spawn(runtime.run());

    let mut c = Client {
        stream: TcpStream::connect(addr).await.unwrap(),
        buf: Vec::new(),
        task: None,
        shutdown: CancellationToken::new(),
    };
    c.expect("220 mx.example.test ESMTP").await;
    c.ehlo().await;
    // A second connection from the same address is over the per-IP limit.
    let mut refused = Client {
        stream: TcpStream::connect(addr).await.unwrap(),
        buf: Vec::new(),
        task: None,
        shutdown: CancellationToken::new(),
    };
    assert_eq!(refused.rest().await.as_bytes(), REFUSAL);
    let reply = c
        .transaction("a@remote.test", &["alice@example.test"], &message("tcp"))
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert!(h.inbox(&h.alice).await[0].contains("from client.test (unknown [127.0.0.1])"));
    // Shutdown: the open session says goodbye.
    stop.cancel();
    c.expect("421 4.3.2").await;
    assert_eq!(c.rest().await, "");
    running.await.unwrap();
}

#[tokio::test]
async fn a_stalled_client_does_not_block_others() {
    let h = harness().await;
    let mut slow = h.mx().await;
    slow.ehlo().await;
    slow.cmd("MAIL FROM:<a@remote.test>", "250").await;
    slow.cmd("RCPT TO:<alice@example.test>", "250").await;
    slow.cmd("DATA", "354").await;
    slow.write(b"Subject: slow\r\n").await;
    // Meanwhile another client delivers.
    let mut fast = h.mx().await;
    fast.ehlo().await;
    let reply = fast
        .transaction("b@remote.test", &["bob@example.test"], &message("fast"))
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(h.inbox(&h.bob).await.len(), 1);
    slow.write(b"\r\nbody\r\n.\r\n").await;
    slow.expect("250 2.0.0").await;
    assert_eq!(h.inbox(&h.alice).await.len(), 1);
}
