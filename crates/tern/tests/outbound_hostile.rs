//! Outbound delivery against hostile next hops and hostile DNS, through the real binary: a tern
//! on 127.0.0.2 (a.test) submits mail for domains whose MX records (served by dnsmasq) point at
//! fake MX servers in this file — a tarpit that accepts and never answers, a server answering
//! every command just before its timeout, a server slow at the end of data — and at loopback.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Dnsmasq, Instance, TestServer, submit, wait_for_messages};

/// How a fake MX behaves.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Accepts the connection and never says a word.
    Tarpit,
    /// Answers every command (and the greeting) after this delay.
    Slow(Duration),
    /// Answers at once, except the reply to the end of data, which comes after this delay.
    SlowData(Duration),
    /// Answers at once.
    Prompt,
}

/// What a fake MX saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    open: AtomicUsize,
    most_open: AtomicUsize,
    /// Messages received up to the final dot (whatever became of them afterwards).
    data_received: AtomicUsize,
    /// Messages answered with 250 after the final dot.
    delivered: AtomicUsize,
    /// How long each closed connection lasted.
    durations: Mutex<Vec<Duration>>,
}

impl Seen {
    fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

/// A fake SMTP server on `ip:port` (a thread per connection, left running until the test
/// process ends).
fn fake_mx(ip: &str, port: u16, behaviour: Behaviour) -> Arc<Seen> {
    let listener = TcpListener::bind((ip, port)).expect("bind fake MX");
    let seen = Arc::new(Seen::default());
    let shared = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = Arc::clone(&shared);
            std::thread::spawn(move || {
                let started = Instant::now();
                seen.connections.fetch_add(1, Ordering::SeqCst);
                let open = seen.open.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most_open.fetch_max(open, Ordering::SeqCst);
                let _ = converse(stream, behaviour, &seen);
                seen.open.fetch_sub(1, Ordering::SeqCst);
                seen.durations.lock().expect("lock").push(started.elapsed());
            });
        }
    });
    seen
}

fn converse(stream: TcpStream, behaviour: Behaviour, seen: &Seen) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut line = String::new();
    if let Behaviour::Tarpit = behaviour {
        // Read (and ignore) until the client gives up.
        while reader.read_line(&mut line)? > 0 {
            line.clear();
        }
        return Ok(());
    }
    let reply = |out: &mut TcpStream, text: &str, at_end_of_data: bool| {
        match behaviour {
            Behaviour::Slow(d) => std::thread::sleep(d),
            Behaviour::SlowData(d) if at_end_of_data => std::thread::sleep(d),
            _ => {}
        }
        out.write_all(format!("{text}\r\n").as_bytes())
    };
    reply(&mut out, "220 fake.test ESMTP", false)?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => reply(&mut out, "250 fake.test", false)?,
            "MAIL" | "RCPT" | "RSET" => reply(&mut out, "250 2.0.0 ok", false)?,
            "DATA" => {
                reply(&mut out, "354 go ahead", false)?;
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                }
                seen.data_received.fetch_add(1, Ordering::SeqCst);
                reply(&mut out, "250 2.0.0 queued", true)?;
                seen.delivered.fetch_add(1, Ordering::SeqCst);
            }
            "QUIT" => {
                reply(&mut out, "221 bye", false)?;
                return Ok(());
            }
            _ => reply(&mut out, "500 5.5.1 what?", false)?,
        }
    }
}

/// A port free on every address in `ips`: all fake MX hosts share the MX port.
fn port_free_on(ips: &[&str]) -> u16 {
    for _ in 0..50 {
        let probe = TcpListener::bind((ips[0], 0)).expect("bind");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        if ips.iter().all(|ip| TcpListener::bind((*ip, port)).is_ok()) {
            return port;
        }
    }
    panic!("no port free on all of {ips:?}");
}

/// Tern for a.test on 127.0.0.2 (submission and POP3), resolving through `dns`, delivering to
/// MX hosts on `mx_port`, with `outbound` added to its `[outbound]` table.
fn sender(dns: &Dnsmasq, mx_port: u16, outbound: &str) -> TestServer {
    let toml = format!(
        "[dns]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_seconds = 2\n\
         [outbound]\nmx_port = {mx_port}\npoll_interval_seconds = 1\nconnect_timeout_seconds = 5\n\
         {outbound}\n",
        dns.port
    );
    let mut server = TestServer::prepare_instance(
        &["submission", "pop3"],
        &["alice"],
        &toml,
        &Instance {
            domain: "a.test".into(),
            ip: "127.0.0.2".into(),
            ports: Vec::new(),
        },
    );
    server.launch();
    server
}

const MESSAGE: &str = "From: alice@a.test\r\nSubject: hello\r\n\r\nHello.\r\n";

fn send(server: &TestServer, to: &[&str]) {
    let v = submit(server, "127.0.0.2", "alice@a.test", to, MESSAGE, &[]);
    assert_eq!(v["refused"], serde_json::json!({}), "{v}");
}

/// Waits up to `limit` for `done`; whether it happened.
fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// Dumps the server log when the test fails.
struct LogOnPanic<'a>(&'a TestServer);

impl Drop for LogOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- tern log ----\n{}", self.0.log());
        }
    }
}

#[test]
fn a_tarpit_mx_named_by_many_domains_cannot_hold_every_outbound_connection() {
    let port = port_free_on(&["127.0.0.5", "127.0.0.6"]);
    let tarpit = fake_mx("127.0.0.5", port, Behaviour::Tarpit);
    let good = fake_mx("127.0.0.6", port, Behaviour::Prompt);
    let mut records = vec![
        "--address=/tarpit.test/127.0.0.5".to_owned(),
        "--mx-host=good.test,mx.good.test,10".to_owned(),
        "--address=/mx.good.test/127.0.0.6".to_owned(),
    ];
    for i in 1..=4 {
        records.push(format!("--mx-host=t{i}.test,tarpit.test,10"));
    }
    let dns = Dnsmasq::start(&records);
    // Three connections in all, two per destination; the tarpit keeps each for a minute.
    let a = sender(
        &dns,
        port,
        "allow_private_destinations = true\nmax_connections = 3\n\
         max_connections_per_destination = 2\ncommand_timeout_seconds = 60\n",
    );
    let _log = LogOnPanic(&a);
    // Four domains, four delivery tasks, all to the same tarpit host.
    send(&a, &["u@t1.test", "u@t2.test", "u@t3.test", "u@t4.test"]);
    assert!(
        wait_until(Duration::from_secs(10), || Seen::get(&tarpit.open) >= 2),
        "the tarpit was never reached"
    );
    let sent = Instant::now();
    send(&a, &["bob@good.test"]);
    assert!(
        wait_until(Duration::from_secs(10), || Seen::get(&good.delivered) == 1),
        "mail to good.test waited behind the tarpit ({} connections open there)",
        Seen::get(&tarpit.open)
    );
    eprintln!(
        "good.test delivered {:?} after submission, tarpit holding {} connections",
        sent.elapsed(),
        Seen::get(&tarpit.open)
    );
    assert_eq!(Seen::get(&tarpit.most_open), 2, "per-destination limit");
}

#[test]
fn a_host_answering_each_command_just_before_its_timeout_is_cut_off_at_the_attempt_deadline() {
    let port = port_free_on(&["127.0.0.5"]);
    // Each reply after 2 s, under the 3 s command timeout: greeting, EHLO, MAIL, RCPT, DATA and
    // the end of data would take 12 s.
    let slow = fake_mx("127.0.0.5", port, Behaviour::Slow(Duration::from_secs(2)));
    let dns = Dnsmasq::start(&[
        "--mx-host=slow.test,mx.slow.test,10".to_owned(),
        "--address=/mx.slow.test/127.0.0.5".to_owned(),
    ]);
    let a = sender(
        &dns,
        port,
        "allow_private_destinations = true\ncommand_timeout_seconds = 3\n\
         attempt_timeout_seconds = 5\nretry_initial_seconds = 60\nretry_max_seconds = 60\n",
    );
    let _log = LogOnPanic(&a);
    send(&a, &["bob@slow.test"]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            !slow.durations.lock().expect("lock").is_empty()
        }),
        "the first connection never ended"
    );
    let first = slow.durations.lock().expect("lock")[0];
    eprintln!("the attempt was cut off after {first:?}");
    assert!(
        first < Duration::from_secs(8),
        "the attempt ran {first:?}, past the 5 s deadline"
    );
    assert_eq!(Seen::get(&slow.delivered), 0, "nothing delivered");
    // Deferred (4xx), to be retried: still queued, with the reason.
    let listed = a.admin_ok(&["queue", "list"], None);
    assert!(
        listed.contains("1 message(s), 1 recipient(s) pending"),
        "{listed}"
    );
    let id = listed.split('\t').next().expect("id").trim().to_owned();
    let shown = a.admin_ok(&["queue", "show", &id], None);
    assert!(shown.contains("outbound.attempt_timeout"), "{shown}");
    assert!(a.log().contains("outbound: deferred"), "{}", a.log());
}

#[test]
fn a_delivery_running_longer_than_the_lease_renews_it_and_delivers_exactly_once() {
    let port = port_free_on(&["127.0.0.5"]);
    // The reply to the end of data comes after 8 s; the lease is 3 s.
    let slow = fake_mx(
        "127.0.0.5",
        port,
        Behaviour::SlowData(Duration::from_secs(8)),
    );
    let dns = Dnsmasq::start(&[
        "--mx-host=slow.test,mx.slow.test,10".to_owned(),
        "--address=/mx.slow.test/127.0.0.5".to_owned(),
    ]);
    let a = sender(
        &dns,
        port,
        "allow_private_destinations = true\nlease_seconds = 3\ncommand_timeout_seconds = 20\n",
    );
    let _log = LogOnPanic(&a);
    send(&a, &["bob@slow.test"]);
    assert!(
        wait_until(Duration::from_secs(20), || Seen::get(&slow.delivered) >= 1),
        "never delivered"
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            a.admin_ok(&["queue", "list"], None)
                .contains("0 message(s)")
        }),
        "the queue did not drain"
    );
    // A second copy would have started within a second of the lease running out.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        (Seen::get(&slow.connections), Seen::get(&slow.data_received)),
        (1, 1),
        "one connection, one transaction"
    );
}

#[test]
fn an_mx_pointing_at_loopback_is_refused_by_default_and_used_when_allowed() {
    let port = port_free_on(&["127.0.0.1"]);
    let mx = fake_mx("127.0.0.1", port, Behaviour::Prompt);
    let dns = Dnsmasq::start(&[
        "--mx-host=lo.test,mx.lo.test,10".to_owned(),
        "--address=/mx.lo.test/127.0.0.1".to_owned(),
    ]);
    let mut refusing = sender(&dns, port, "");
    {
        let _log = LogOnPanic(&refusing);
        send(&refusing, &["bob@lo.test"]);
        // A permanent failure: the DSN tells alice why.
        let got = wait_for_messages(&refusing, "127.0.0.2", "alice@a.test", 1);
        let reason = "MX for lo.test (mx.lo.test) points to 127.0.0.1, a loopback address; refused";
        assert!(got[0].contains(reason), "{}", got[0]);
        assert!(got[0].contains("Status: 5.4.4"), "{}", got[0]);
        assert!(refusing.log().contains(reason));
        assert_eq!(Seen::get(&mx.connections), 0, "never connected");
    }
    refusing.stop();
    let allowing = sender(&dns, port, "allow_private_destinations = true\n");
    let _log = LogOnPanic(&allowing);
    send(&allowing, &["bob@lo.test"]);
    assert!(
        wait_until(Duration::from_secs(15), || Seen::get(&mx.delivered) == 1),
        "not delivered although allowed"
    );
}
