//! TRANSACTION and UPDATE states: the maildrop snapshot, RETR/TOP bytes, DELE/RSET/QUIT,
//! error handling, pipelining, timeouts.

use super::*;

fn total() -> usize {
    MSG1.len() + MSG2.len()
}

#[tokio::test]
async fn stat_list_and_uidl_agree_with_the_store() {
    let h = Harness::with_two_messages().await;
    let status = h.store.mailbox_status(h.inbox).await.expect("status");
    let uids = h.uids().await;
    let mut c = h.login().await;
    c.send("STAT").await;
    assert_eq!(c.line().await, format!("+OK 2 {}", total()));
    c.send("LIST").await;
    c.expect(&format!("+OK 2 messages ({} octets)", total()))
        .await;
    assert_eq!(
        c.lines().await,
        [format!("1 {}", MSG1.len()), format!("2 {}", MSG2.len())]
    );
    c.send("LIST 2").await;
    assert_eq!(c.line().await, format!("+OK 2 {}", MSG2.len()));
    c.send("UIDL").await;
    c.expect("+OK").await;
    let v = status.uidvalidity.0;
    assert_eq!(
        c.lines().await,
        [format!("1 {v}.{}", uids[0]), format!("2 {v}.{}", uids[1])]
    );
    c.send("UIDL 1").await;
    assert_eq!(c.line().await, format!("+OK 1 {v}.{}", uids[0]));
    for cmd in [
        "LIST 3",
        "LIST 0",
        "UIDL 99999999999",
        "RETR 3",
        "TOP 0 1",
        "DELE 9",
    ] {
        c.send(cmd).await;
        c.expect("-ERR No such message").await;
    }
    assert_eq!(status.size_bytes, total() as u64);
}

#[tokio::test]
async fn uidl_is_stable_across_sessions_and_after_other_messages_go() {
    let h = Harness::with_two_messages().await;
    let mut c = h.login().await;
    c.send("UIDL 2").await;
    let first = c.line().await;
    let id = first.split(' ').nth(2).expect("uid string").to_owned();
    c.send("DELE 1").await;
    c.expect("+OK").await;
    c.send("QUIT").await;
    c.expect("+OK").await;
    c.closed().await;
    let mut c = h.login().await;
    c.send("UIDL 1").await;
    assert_eq!(c.line().await, format!("+OK 1 {id}"));
}

#[tokio::test]
async fn retr_is_byte_exact_after_unstuffing_and_stuffs_lines_starting_with_a_dot() {
    let h = Harness::with_two_messages().await;
    let mut c = h.login().await;
    c.send("RETR 2").await;
    c.expect(&format!("+OK {} octets", MSG2.len())).await;
    let wire = c.raw_body().await;
    assert_eq!(
        wire,
        b"From: carol@example.test\r\nSubject: two\r\n\r\nline 1\r\n..line 2 starts with a dot\r\n...\r\n..\r\nline 5\r\nline 6\r\n.\r\n"
    );
    assert_eq!(unstuff(&wire), MSG2);
    c.send("RETR 1").await;
    c.expect(&format!("+OK {} octets", MSG1.len())).await;
    assert_eq!(unstuff(&c.raw_body().await), MSG1);
}

#[tokio::test]
async fn a_message_without_final_crlf_and_a_large_message_are_terminated_properly() {
    let h = harness().await;
    h.append(b"Subject: x\r\n\r\nno final newline").await;
    let big: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("{}line {i}\r\n", if i % 7 == 0 { "." } else { "" }).into_bytes())
        .collect();
    let big = [b"Subject: big\r\n\r\n".as_slice(), &big].concat();
    h.append(&big).await;
    let mut c = h.login().await;
    c.send("RETR 1").await;
    c.expect("+OK 30 octets").await;
    assert_eq!(
        c.raw_body().await,
        b"Subject: x\r\n\r\nno final newline\r\n.\r\n"
    );
    c.send("RETR 2").await;
    c.expect(&format!("+OK {} octets", big.len())).await;
    assert_eq!(unstuff(&c.raw_body().await), big);
}

#[tokio::test]
async fn top_sends_the_header_and_the_first_n_body_lines() {
    let h = Harness::with_two_messages().await;
    let mut c = h.login().await;
    c.send("TOP 2 0").await;
    c.expect("+OK").await;
    assert_eq!(
        c.raw_body().await,
        b"From: carol@example.test\r\nSubject: two\r\n\r\n.\r\n"
    );
    c.send("TOP 2 2").await;
    c.expect("+OK").await;
    assert_eq!(
        c.raw_body().await,
        b"From: carol@example.test\r\nSubject: two\r\n\r\nline 1\r\n..line 2 starts with a dot\r\n.\r\n"
    );
    c.send("TOP 1 100").await;
    c.expect("+OK").await;
    assert_eq!(unstuff(&c.raw_body().await), MSG1);
}

#[tokio::test]
async fn dele_then_quit_removes_the_messages_with_tombstones() {
    let h = Harness::with_two_messages().await;
    h.append(b"Subject: three\r\n\r\n3\r\n").await;
    let uids = h.uids().await;
    let before = h.store.mailbox_status(h.inbox).await.expect("status");
    let mut c = h.login().await;
    c.send("DELE 1").await;
    c.expect("+OK Message 1 deleted").await;
    c.send("DELE 3").await;
    c.expect("+OK").await;
    c.send("DELE 1").await;
    c.expect("-ERR Message 1 already deleted").await;
    for cmd in ["RETR 1", "LIST 1", "UIDL 1", "TOP 1 0"] {
        c.send(cmd).await;
        c.expect("-ERR Message 1 already deleted").await;
    }
    c.send("STAT").await;
    c.expect(&format!("+OK 1 {}", MSG2.len())).await;
    c.send("LIST").await;
    c.expect("+OK 1 messages").await;
    assert_eq!(c.lines().await, [format!("2 {}", MSG2.len())]);
    c.send("QUIT").await;
    c.expect("+OK mail.example.test POP3 server signing off (1 messages left)")
        .await;
    assert!(c.closed().await.is_empty());
    assert_eq!(h.uids().await, [uids[1]]);
    let changes = h
        .store
        .changes_since(h.inbox, before.highestmodseq)
        .await
        .expect("changes");
    assert_eq!(changes.vanished, [uids[0], uids[2]], "tombstones for IMAP");
    h.store.check_integrity().await.expect("integrity");
}

#[tokio::test]
async fn dele_then_a_dropped_connection_removes_nothing() {
    let h = Harness::with_two_messages().await;
    let uids = h.uids().await;
    let mut c = h.login().await;
    c.send("DELE 1").await;
    c.expect("+OK").await;
    c.send("DELE 2").await;
    c.expect("+OK").await;
    drop(c);
    for _ in 0..100 {
        if !h.ctx.is_locked(h.account.id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!h.ctx.is_locked(h.account.id));
    assert_eq!(h.uids().await, uids);
}

#[tokio::test]
async fn rset_unmarks_every_deleted_message() {
    let h = Harness::with_two_messages().await;
    let mut c = h.login().await;
    c.send("DELE 1").await;
    c.expect("+OK").await;
    c.send("DELE 2").await;
    c.expect("+OK").await;
    c.send("STAT").await;
    c.expect("+OK 0 0").await;
    c.send("RSET").await;
    c.expect(&format!("+OK Maildrop has 2 messages ({} octets)", total()))
        .await;
    c.send("RETR 1").await;
    c.expect("+OK").await;
    c.raw_body().await;
    c.send("QUIT").await;
    c.expect("+OK").await;
    c.closed().await;
    assert_eq!(h.uids().await.len(), 2);
}

#[tokio::test]
async fn the_maildrop_is_a_snapshot_taken_at_login() {
    let h = Harness::with_two_messages().await;
    let mut c = h.login().await;
    h.append(b"Subject: late\r\n\r\nlate\r\n").await;
    c.send("STAT").await;
    c.expect(&format!("+OK 2 {}", total())).await;
    c.send("QUIT").await;
    c.expect("+OK").await;
    c.closed().await;
    let mut c = h.login().await;
    c.send("STAT").await;
    c.expect("+OK 3 ").await;
}

#[tokio::test]
async fn a_message_expunged_by_another_client_after_login_cannot_be_retrieved() {
    let h = Harness::with_two_messages().await;
    let uids = h.uids().await;
    let mut c = h.login().await;
    h.store
        .remove_messages(h.inbox, &uids[..1])
        .await
        .expect("remove");
    c.send("RETR 1").await;
    c.expect("-ERR Message was removed by another session")
        .await;
    c.send("DELE 1").await;
    c.expect("+OK").await;
    c.send("QUIT").await;
    c.expect("+OK").await;
    c.closed().await;
    assert_eq!(h.uids().await, [uids[1]]);
}

#[tokio::test]
async fn malformed_and_over_long_lines_get_err_and_the_session_continues() {
    let h = Harness::with_two_messages().await;
    let mut c = h.login().await;
    c.send("FROB").await;
    c.expect("-ERR Unknown command").await;
    c.send("RETR one").await;
    c.expect("-ERR Invalid number").await;
    c.send("STAT extra").await;
    c.expect("-ERR This command takes no arguments").await;
    c.send(&format!("NOOP {}", "x".repeat(10_000))).await;
    c.expect("-ERR Line too long").await;
    c.send_raw(b"\xff\xfe\x00garbage\r\n").await;
    c.expect("-ERR").await;
    c.send("STAT").await;
    c.expect("+OK 2 ").await;
}

#[tokio::test]
async fn twenty_protocol_errors_close_the_session_without_deleting() {
    let h = Harness::with_two_messages().await;
    let mut c = h.login().await;
    c.send("DELE 1").await;
    c.expect("+OK").await;
    let garbage = "BAD\r\n".repeat(25);
    c.send_raw(garbage.as_bytes()).await;
    let rest = c.closed().await;
    assert_eq!(rest.len(), 21, "{rest:?}");
    assert!(rest[..20].iter().all(|l| l == "-ERR Unknown command"));
    assert_eq!(rest[20], "-ERR Too many errors, closing connection");
    assert_eq!(h.uids().await.len(), 2);
}

#[tokio::test]
async fn pipelined_commands_in_one_write_get_all_replies_in_order() {
    let h = Harness::with_two_messages().await;
    let mut c = h.connect().await;
    let script = format!(
        "CAPA\r\nUSER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST 1\r\nRETR 1\r\nDELE 1\r\nBOGUS\r\nUIDL 1\r\nNOOP\r\nQUIT\r\n"
    );
    c.send_raw(script.as_bytes()).await;
    c.expect("+OK Capability list follows").await;
    c.lines().await;
    c.expect("+OK").await;
    c.expect("+OK Logged in, 2 messages").await;
    c.expect(&format!("+OK 2 {}", total())).await;
    c.expect(&format!("+OK 1 {}", MSG1.len())).await;
    c.expect(&format!("+OK {} octets", MSG1.len())).await;
    assert_eq!(unstuff(&c.raw_body().await), MSG1);
    c.expect("+OK Message 1 deleted").await;
    c.expect("-ERR Unknown command").await;
    c.expect("-ERR Message 1 already deleted").await;
    c.expect("+OK").await;
    c.expect("+OK mail.example.test POP3 server signing off (1 messages left)")
        .await;
    assert!(c.closed().await.is_empty());
    assert_eq!(h.uids().await.len(), 1);
}

#[tokio::test]
async fn an_idle_session_is_closed_silently_and_deletes_nothing() {
    let h = harness_with(fast_directory_config(), |ctx| {
        ctx.idle_timeout = Duration::from_millis(200);
    })
    .await;
    h.append(MSG1).await;
    let mut c = h.login().await;
    c.send("DELE 1").await;
    c.expect("+OK").await;
    assert!(c.closed().await.is_empty(), "RFC 1939 §3: no response");
    assert_eq!(h.uids().await.len(), 1);
    assert!(!h.ctx.is_locked(h.account.id));
}

#[tokio::test]
async fn a_command_trickled_octet_by_octet_is_logged_out_like_an_idle_session() {
    let h = harness_with(fast_directory_config(), |ctx| {
        ctx.idle_timeout = Duration::from_millis(300);
    })
    .await;
    h.append(MSG1).await;
    let mut c = h.login().await;
    c.send("DELE 1").await;
    c.expect("+OK").await;
    let started = std::time::Instant::now();
    // Each octet comes well within the timeout, the line as a whole does not (slowloris).
    for &octet in b"NOOP NOOP NOOP NOOP NOOP".iter().cycle() {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(100), c.stream.read(&mut byte));
        if let Ok(result) = read.await {
            assert_eq!(result.expect("read"), 0, "RFC 1939 §3: no response");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a trickling client is never logged out"
        );
        // The server may close between the check and this write.
        let _ = c.stream.write_all(&[octet]).await;
    }
    assert!(c.closed().await.is_empty());
    assert_eq!(h.uids().await.len(), 1);
}

#[tokio::test]
async fn server_shutdown_says_goodbye_with_sys_temp_and_deletes_nothing() {
    let h = Harness::with_two_messages().await;
    let shutdown = CancellationToken::new();
    let mut c = h.connect_with(LOOPBACK, false, shutdown.clone());
    c.expect("+OK").await;
    c.send(&format!("USER {USER}")).await;
    c.expect("+OK").await;
    c.send(&format!("PASS {PASSWORD}")).await;
    c.expect("+OK").await;
    c.send("DELE 1").await;
    c.expect("+OK").await;
    shutdown.cancel();
    assert_eq!(c.closed().await, ["-ERR [SYS/TEMP] Server shutting down"]);
    assert_eq!(h.uids().await.len(), 2);
}

#[tokio::test]
async fn draining_in_order_past_the_read_ahead_window_and_going_back_sends_every_message_exactly() {
    let h = harness().await;
    // More messages than one read-ahead batch, one too large to be read ahead with others.
    let mut bodies: Vec<Vec<u8>> = (0..40)
        .map(|i| format!("Subject: m{i}\r\n\r\n.body {i}\r\n").into_bytes())
        .collect();
    bodies[20] = [
        b"Subject: big\r\n\r\n".as_slice(),
        &vec![b'x'; 300_000],
        b"\r\n",
    ]
    .concat();
    for body in &bodies {
        h.append(body).await;
    }
    let mut c = h.login().await;
    // DELE of a message not yet retrieved: the drain skips it.
    c.send("DELE 3").await;
    c.expect("+OK").await;
    for n in (1..=40).filter(|&n| n != 3) {
        c.send(&format!("RETR {n}")).await;
        c.expect(&format!("+OK {} octets", bodies[n - 1].len()))
            .await;
        assert_eq!(unstuff(&c.raw_body().await), bodies[n - 1], "message {n}");
        c.send(&format!("DELE {n}")).await;
        c.expect("+OK").await;
    }
    c.send("RSET").await;
    c.expect("+OK").await;
    for n in [2, 1, 40, 5] {
        c.send(&format!("RETR {n}")).await;
        c.expect("+OK").await;
        assert_eq!(unstuff(&c.raw_body().await), bodies[n - 1], "message {n}");
    }
    c.send("QUIT").await;
    c.expect("+OK").await;
    c.closed().await;
    assert_eq!(h.uids().await.len(), 40);
}
