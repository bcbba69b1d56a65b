//! Crash safety of the real binary (issue 9): 50 concurrent SMTP sessions deliver uniquely
//! numbered messages and eight IMAP clients APPEND uniquely numbered messages, STORE flags on
//! some and UID EXPUNGE others, while `tern` is killed with SIGKILL at a random moment; after
//! every kill the server must start again without repair. Every message that got a 250 or an
//! APPEND OK must then be in the store exactly once and intact (with the UID APPENDUID named
//! and every flag whose STORE got an OK), unless its UID EXPUNGE got an OK, in which case it
//! must be gone. Messages and changes whose reply never came may or may not be there, but never
//! twice and never damaged.
//!
//! `TERN_CRASH_ROUNDS` sets the number of kills (default 20, the CI run). Every
//! [`EPOCH_ROUNDS`] rounds the store is verified and the next rounds start on a fresh data
//! directory, so long runs (`scripts/crash-run.sh 1000`) do not pile up mail.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{PASSWORD, TestServer};

const SESSIONS: usize = 50;
const IMAP_CLIENTS: usize = 8;
const DEFAULT_ROUNDS: usize = 20;
/// Rounds per data directory; the CI run (20) is one epoch.
const EPOCH_ROUNDS: usize = 25;
const USERS: [&str; 4] = ["u1", "u2", "u3", "u4"];
/// The IMAP clients' mailbox (SMTP delivers to INBOX).
const MAILBOX: &str = "Crash";
/// 58 concurrent clients from 127.0.0.1 are over the default limit of 50 per address.
const CONFIG: &str = "[limits]\nmax_connections_per_ip = 1000\n";
/// Flags whose state the IMAP clients track (the ones they APPEND with or STORE).
const TRACKED: [&str; 4] = ["\\Seen", "\\Flagged", "\\Deleted", "$Crash"];

/// The exact bytes sent for message `id`. SMTP ids ending in 7 and IMAP ids (`i…`) ending in
/// 3 or 7 are over the store's inline limit (64 KiB), so that the file-blob path is crashed too.
fn message(id: &str) -> Vec<u8> {
    let large = id.ends_with('7') || (id.starts_with('i') && id.ends_with('3'));
    let size = if large { 70_000 } else { 300 };
    let mut body = format!("X-Crash-Id: {id}\r\nSubject: crash {id}\r\n\r\n").into_bytes();
    let line: Vec<u8> = id.bytes().cycle().take(76).collect();
    while body.len() < size {
        body.extend_from_slice(&line);
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// Why a client stopped.
enum Stop {
    /// The connection broke (the kill): the reply to the last command is unknown.
    Broken,
    /// The server answered something else than success: never expected here.
    Refused(String),
}

impl From<io::Error> for Stop {
    fn from(_: io::Error) -> Stop {
        Stop::Broken
    }
}

/// One line, without its line ending; end of stream is a broken connection.
fn read_line(reader: &mut impl BufRead) -> Result<String, Stop> {
    let mut buf = Vec::new();
    if reader.read_until(b'\n', &mut buf)? == 0 {
        return Err(Stop::Broken);
    }
    Ok(String::from_utf8_lossy(&buf).trim_end().to_owned())
}

fn connect(addr: SocketAddr) -> io::Result<(BufReader<TcpStream>, TcpStream)> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    Ok((BufReader::new(stream.try_clone()?), stream))
}

// ---- SMTP ----

/// What one SMTP sender saw.
#[derive(Default)]
struct SmtpLog {
    /// Got the 250 after DATA.
    acked: Vec<String>,
    /// DATA begun, no reply (the kill came first).
    unanswered: Vec<String>,
    refusals: Vec<String>,
}

fn expect(reader: &mut impl BufRead, code: &str) -> Result<(), Stop> {
    loop {
        let line = read_line(reader)?;
        if !line.starts_with(code) {
            return Err(Stop::Refused(line));
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// Sends messages until the connection breaks or `stop` is set.
fn smtp_sender(addr: SocketAddr, prefix: String, stop: Arc<AtomicBool>) -> SmtpLog {
    let mut log = SmtpLog::default();
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut reader, mut writer)) = connect(addr) else {
            break;
        };
        let mut pending = None;
        let mut session = || -> Result<(), Stop> {
            expect(&mut reader, "220")?;
            writer.write_all(b"EHLO crash.test\r\n")?;
            expect(&mut reader, "250")?;
            for _ in 0..5 {
                let id = format!("{prefix}-{n}");
                n += 1;
                let user = USERS[n as usize % USERS.len()];
                writer.write_all(
                    format!(
                        "MAIL FROM:<s@example.org>\r\nRCPT TO:<{user}@example.test>\r\nDATA\r\n"
                    )
                    .as_bytes(),
                )?;
                expect(&mut reader, "250")?;
                expect(&mut reader, "250")?;
                expect(&mut reader, "354")?;
                let bytes = message(&id);
                pending = Some(id);
                writer.write_all(&bytes)?;
                writer.write_all(b".\r\n")?;
                expect(&mut reader, "250")?;
                // Only now is the message acknowledged.
                log.acked.extend(pending.take());
            }
            writer.write_all(b"QUIT\r\n")?;
            Ok(())
        };
        let outcome = session();
        log.unanswered.extend(pending);
        match outcome {
            Ok(()) => {}
            Err(Stop::Broken) => break,
            Err(Stop::Refused(line)) => {
                log.refusals.push(format!("SMTP: {line}"));
                break;
            }
        }
    }
    log
}

// ---- IMAP ----

/// Whether a command got its tagged OK.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    NotSent,
    /// Sent; the connection broke before the tagged reply.
    Unknown,
    Ok,
}

/// A message an IMAP client APPENDed, and what became of it.
struct Appended {
    id: String,
    user: usize,
    append: Answer,
    /// From APPENDUID.
    uid: u32,
    expunge: Answer,
    /// Tracked flags whose state is known (acknowledged); a STORE without reply removes them.
    flags: BTreeMap<&'static str, bool>,
}

#[derive(Default)]
struct ImapLog {
    messages: Vec<Appended>,
    stores_acked: usize,
    refusals: Vec<String>,
}

struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Imap {
    /// Sends `tag command`, with `literal` (LITERAL+) after it if not empty, and reads up to the
    /// tagged reply; the text after `OK`.
    fn run(&mut self, command: &str, literal: &[u8]) -> Result<String, Stop> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let mut out = format!("{tag} {command}").into_bytes();
        if !literal.is_empty() {
            out.extend_from_slice(format!(" {{{}+}}\r\n", literal.len()).as_bytes());
            out.extend_from_slice(literal);
        }
        out.extend_from_slice(b"\r\n");
        self.writer.write_all(&out)?;
        let prefix = format!("{tag} ");
        loop {
            // Untagged EXISTS/EXPUNGE/FETCH (FLAGS) of the other clients carry no literals.
            let line = read_line(&mut self.reader)?;
            if let Some(status) = line.strip_prefix(&prefix) {
                return match status.strip_prefix("OK") {
                    Some(rest) => Ok(rest.trim().to_owned()),
                    None => Err(Stop::Refused(format!("IMAP {command}: {line}"))),
                };
            }
        }
    }

    /// `UID STORE <uid> <op> (<flags>)`; the flags' state is unknown until the OK.
    fn store(
        &mut self,
        m: &mut Appended,
        op: &str,
        flags: &[&'static str],
        acked: &mut usize,
    ) -> Result<(), Stop> {
        for flag in flags {
            m.flags.remove(flag);
        }
        self.run(
            &format!("UID STORE {} {op} ({})", m.uid, flags.join(" ")),
            b"",
        )?;
        *acked += 1;
        for flag in flags {
            m.flags.insert(flag, op.starts_with('+'));
        }
        Ok(())
    }
}

/// Appends messages to [`MAILBOX`] and changes earlier ones of the same connection, until the
/// connection breaks or `stop` is set.
fn imap_client(addr: SocketAddr, user: usize, prefix: String, stop: Arc<AtomicBool>) -> ImapLog {
    let mut log = ImapLog::default();
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let Ok((reader, writer)) = connect(addr) else {
            break;
        };
        let mut imap = Imap {
            reader,
            writer,
            tag: 0,
        };
        match imap_session(&mut imap, user, &prefix, &mut n, &mut log) {
            Ok(()) => {}
            Err(Stop::Broken) => break,
            Err(Stop::Refused(line)) => {
                log.refusals.push(line);
                break;
            }
        }
    }
    log
}

fn imap_session(
    imap: &mut Imap,
    user: usize,
    prefix: &str,
    n: &mut u32,
    log: &mut ImapLog,
) -> Result<(), Stop> {
    let greeting = read_line(&mut imap.reader)?;
    if !greeting.starts_with("* OK") {
        return Err(Stop::Refused(format!("IMAP greeting: {greeting}")));
    }
    imap.run(
        &format!("LOGIN {}@example.test {PASSWORD}", USERS[user]),
        b"",
    )?;
    imap.run(&format!("SELECT {MAILBOX}"), b"")?;
    let first = log.messages.len();
    for _ in 0..20 {
        let id = format!("{prefix}-{n}");
        *n += 1;
        let seen = n.is_multiple_of(2);
        let bytes = message(&id);
        log.messages.push(Appended {
            id,
            user,
            append: Answer::Unknown,
            uid: 0,
            expunge: Answer::NotSent,
            flags: BTreeMap::new(),
        });
        let flags = if seen { "(\\Seen)" } else { "()" };
        let reply = imap.run(&format!("APPEND {MAILBOX} {flags}"), &bytes)?;
        // `[APPENDUID <uidvalidity> <uid>]` (RFC 4315 §3)
        let uid = reply
            .strip_prefix("[APPENDUID ")
            .and_then(|r| r.split([' ', ']']).nth(1))
            .and_then(|u| u.parse().ok())
            .ok_or_else(|| Stop::Refused(format!("APPEND without APPENDUID: {reply}")))?;
        let m = log.messages.last_mut().expect("just pushed");
        m.append = Answer::Ok;
        m.uid = uid;
        m.flags = TRACKED
            .into_iter()
            .map(|f| (f, f == "\\Seen" && seen))
            .collect();
        // Change the message appended before this one on this connection (so acknowledged).
        let Some(k) = log.messages.len().checked_sub(2).filter(|k| *k >= first) else {
            continue;
        };
        let m = &mut log.messages[k];
        match *n % 3 {
            0 => imap.store(m, "+FLAGS", &["\\Flagged", "$Crash"], &mut log.stores_acked)?,
            1 => imap.store(m, "-FLAGS", &["\\Seen"], &mut log.stores_acked)?,
            _ => {
                imap.store(m, "+FLAGS.SILENT", &["\\Deleted"], &mut log.stores_acked)?;
                m.expunge = Answer::Unknown;
                // RFC 4315 §2.1: removes only the named messages with \Deleted.
                imap.run(&format!("UID EXPUNGE {}", m.uid), b"")?;
                m.expunge = Answer::Ok;
            }
        }
    }
    imap.run("LOGOUT", b"")?;
    Ok(())
}

// ---- rounds and epochs ----

/// What happened around one kill.
#[derive(Default)]
struct Round {
    number: usize,
    kill_ms: u64,
    smtp: SmtpLog,
    imap: ImapLog,
    /// Files in `blobs/tmp/` right after the kill: a blob being written or waiting for the writer.
    temp_files: usize,
    /// Of those, files not yet written in full.
    short_temp_files: usize,
    /// Blob files the next start removed because no committed row references them.
    orphans: Vec<String>,
    /// Warnings and errors the next start logged.
    startup_warnings: Vec<String>,
}

/// Totals over all epochs, for the summary line.
#[derive(Default)]
struct Totals {
    rounds: usize,
    smtp_acked: usize,
    appends_acked: usize,
    large_appends_acked: usize,
    stores_acked: usize,
    expunges_acked: usize,
    stored: usize,
    // The rest count rounds: with a message whose reply was lost that had been committed, or
    // had not; with blob temp files at the kill (and one cut short); with orphan blob files of
    // an uncommitted batch, or of a committed expunge not yet unlinked.
    committed_unanswered: usize,
    uncommitted_unanswered: usize,
    temp_files: usize,
    short_temp_files: usize,
    orphans_uncommitted: usize,
    orphans_expunged: usize,
}

/// A message as found in the store after an epoch.
struct Stored {
    bytes: Vec<u8>,
    uid: u32,
    flags: BTreeSet<String>,
}

type Found = HashMap<String, Vec<Stored>>;

/// Creates [`MAILBOX`] for every user, before the first start.
fn create_mailboxes(server: &TestServer) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = tern_store::Store::open(tern_store::StoreOptions::new(server.data_dir()))
            .await
            .expect("open store");
        for user in USERS {
            let account = store
                .account_by_address(&format!("{user}@example.test"))
                .await
                .expect("lookup")
                .expect("account");
            store
                .create_mailbox(account.id, MAILBOX, None)
                .await
                .expect("create mailbox");
        }
        store.close().await;
    });
}

/// Every message in the users' INBOXes and [`MAILBOX`]es, by crash id.
fn stored_messages(server: &TestServer) -> Result<(Found, Found), String> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = tern_store::Store::open(tern_store::StoreOptions::new(server.data_dir()))
            .await
            .map_err(|e| format!("the store does not open after the kills: {e}"))?;
        if let Err(e) = store.check_integrity().await {
            store.close().await;
            return Err(format!("integrity check after the kills: {e}"));
        }
        let (mut inbox, mut crash) = (Found::new(), Found::new());
        for user in USERS {
            let account = store
                .account_by_address(&format!("{user}@example.test"))
                .await
                .expect("lookup")
                .expect("account");
            for (name, found) in [("INBOX", &mut inbox), (MAILBOX, &mut crash)] {
                let mailbox = store
                    .mailbox_by_name(account.id, name)
                    .await
                    .expect("lookup")
                    .expect("mailbox");
                for record in store.messages(mailbox.id).await.expect("messages") {
                    let bytes = store.read_blob(&record.blob).await.expect("blob readable");
                    let text = String::from_utf8_lossy(&bytes);
                    let id = text
                        .lines()
                        .find_map(|l| l.strip_prefix("X-Crash-Id: "))
                        .expect("crash id header")
                        .to_owned();
                    let flags = (record.flags.system.names().map(str::to_owned))
                        .chain(record.flags.keywords.iter().cloned())
                        .collect();
                    found.entry(id).or_default().push(Stored {
                        bytes: bytes.to_vec(),
                        uid: record.uid.get(),
                        flags,
                    });
                }
            }
        }
        store.close().await;
        Ok((inbox, crash))
    })
}

/// Starts the server and notes what its store cleaned up after the previous kill.
fn launch(server: &mut TestServer, previous: Option<&mut Round>) {
    server.launch();
    let Some(round) = previous else { return };
    for line in server.log().lines() {
        if line.contains("removing orphan blob file") {
            let blob = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("blob="));
            round.orphans.extend(blob.map(str::to_owned));
        } else if line.contains(" WARN ") || line.contains(" ERROR ") {
            round.startup_warnings.push(line.to_owned());
        }
    }
}

/// Runs `rounds` kills on a fresh data directory, then verifies the store.
fn epoch(first: usize, rounds: usize, seed: &mut u64, totals: &mut Totals) {
    let mut server = TestServer::prepare(&["smtp", "imap"], &USERS, CONFIG);
    create_mailboxes(&server);
    let mut log: Vec<Round> = Vec::new();
    for number in first..first + rounds {
        launch(&mut server, log.last_mut());
        let (smtp, imap) = (server.addr("smtp"), server.addr("imap"));
        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<JoinHandle<SmtpLog>> = (0..SESSIONS)
            .map(|s| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || smtp_sender(smtp, format!("{number}.{s}"), stop))
            })
            .collect();
        let clients: Vec<JoinHandle<ImapLog>> = (0..IMAP_CLIENTS)
            .map(|c| {
                let stop = Arc::clone(&stop);
                let prefix = format!("i{number}.{c}");
                std::thread::spawn(move || imap_client(imap, c % USERS.len(), prefix, stop))
            })
            .collect();
        // xorshift: a different kill moment each round, 100–900 ms into the load.
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let kill_ms = 100 + *seed % 800;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(kill_ms) {
            std::thread::sleep(Duration::from_millis(10));
        }
        server.kill();
        stop.store(true, Ordering::Relaxed);
        // Large messages are 70 000 octets and more; a shorter temp file was cut off mid-write.
        let temp_sizes: Vec<u64> = std::fs::read_dir(server.data_dir().join("blobs/tmp"))
            .expect("blob temp directory")
            .map(|e| e.and_then(|e| e.metadata()).map_or(0, |m| m.len()))
            .collect();
        let mut round = Round {
            number,
            kill_ms,
            temp_files: temp_sizes.len(),
            short_temp_files: temp_sizes.iter().filter(|s| **s < 70_000).count(),
            ..Round::default()
        };
        for s in senders {
            let s = s.join().expect("SMTP sender");
            round.smtp.acked.extend(s.acked);
            round.smtp.unanswered.extend(s.unanswered);
            round.smtp.refusals.extend(s.refusals);
        }
        for c in clients {
            let c = c.join().expect("IMAP client");
            round.imap.messages.extend(c.messages);
            round.imap.stores_acked += c.stores_acked;
            round.imap.refusals.extend(c.refusals);
        }
        log.push(round);
    }
    // The store must open without repair, and a server must start on it again and stop cleanly.
    launch(&mut server, log.last_mut());
    server.stop();
    verify(&server, &log, totals);
}

/// Copies the data directory and config of a failed epoch for a post-mortem (the temporary
/// directory goes with `server`).
fn keep_data_dir(server: &TestServer, first_round: usize) {
    let kept = std::env::temp_dir().join(format!("tern-crash-{first_round}"));
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(server.dir.path())
        .arg(&kept)
        .status();
    eprintln!(
        "data directory and config copied to {} ({copied:?})",
        kept.display()
    );
}

/// Checks the store against what the clients were told, prints one line per round, and adds
/// up the totals. Fails listing every problem found.
fn verify(server: &TestServer, log: &[Round], totals: &mut Totals) {
    let (inbox, crash) = match stored_messages(server) {
        Ok(found) => found,
        Err(e) => {
            keep_data_dir(server, log[0].number);
            panic!("{e}");
        }
    };
    let mut problems = Vec::new();
    let mut sent = HashSet::new();
    for round in log {
        problems.extend(round.smtp.refusals.iter().cloned());
        problems.extend(round.imap.refusals.iter().cloned());
        // SMTP: every 250 exactly once and intact.
        for id in &round.smtp.acked {
            let copies = inbox.get(id).map_or(0, Vec::len);
            if copies != 1 {
                problems.push(format!(
                    "acknowledged message {id} is stored {copies} times"
                ));
            }
        }
        sent.extend(round.smtp.acked.iter().chain(&round.smtp.unanswered));
    }
    for (id, copies) in &inbox {
        if !sent.contains(id) {
            problems.push(format!("message {id} stored but never sent in full"));
        }
        if copies.len() > 1 {
            problems.push(format!("message {id} stored {} times", copies.len()));
        }
        // Delivery adds trace headers in front of the message as sent.
        if copies.iter().any(|c| !c.bytes.ends_with(&message(id))) {
            problems.push(format!("message {id} is not intact"));
        }
    }
    // IMAP: an acknowledged APPEND is there (same UID, same octets, acknowledged flags) unless
    // its UID EXPUNGE was acknowledged; what never got an answer may be there or not.
    let mut appended = HashMap::new();
    for m in log.iter().flat_map(|r| &r.imap.messages) {
        appended.insert(m.id.as_str(), m);
        let copies = crash.get(&m.id).map_or(&[][..], Vec::as_slice);
        let expected = match (m.append, m.expunge) {
            (Answer::Ok, Answer::NotSent) => Some(1),
            (Answer::Ok, Answer::Ok) => Some(0),
            _ => None,
        };
        if expected.is_some_and(|e| e != copies.len()) || copies.len() > 1 {
            problems.push(format!(
                "appended message {} is stored {} times",
                m.id,
                copies.len()
            ));
        }
        for copy in copies.iter().filter(|_| m.append == Answer::Ok) {
            if copy.uid != m.uid {
                problems.push(format!(
                    "{} has UID {}, APPENDUID said {}",
                    m.id, copy.uid, m.uid
                ));
            }
            for (flag, set) in &m.flags {
                if copy.flags.contains(*flag) != *set {
                    problems.push(format!(
                        "{}: {flag} should be {set}: {:?}",
                        m.id, copy.flags
                    ));
                }
            }
        }
    }
    for (id, copies) in &crash {
        let user = appended.get(id.as_str()).map(|m| USERS[m.user]);
        if user.is_none() {
            problems.push(format!("appended message {id} stored but never sent"));
        }
        if copies.iter().any(|c| c.bytes != message(id)) {
            problems.push(format!("appended message {id} is not byte-identical"));
        }
    }
    // Where the kills landed.
    let expunge_blobs: HashSet<String> = (appended.values())
        .filter(|m| m.expunge != Answer::NotSent)
        .map(|m| tern_store::BlobId::of(&message(&m.id)).to_string())
        .collect();
    for round in log {
        let smtp_committed = (round.smtp.unanswered.iter())
            .filter(|id| inbox.contains_key(*id))
            .count();
        let unanswered_appends: Vec<&Appended> = (round.imap.messages.iter())
            .filter(|m| m.append == Answer::Unknown)
            .collect();
        let appends_committed = (unanswered_appends.iter())
            .filter(|m| crash.contains_key(&m.id))
            .count();
        let unanswered_expunges: Vec<&Appended> = (round.imap.messages.iter())
            .filter(|m| m.expunge == Answer::Unknown)
            .collect();
        let expunges_committed = (unanswered_expunges.iter())
            .filter(|m| !crash.contains_key(&m.id))
            .count();
        let expunged_orphans = (round.orphans.iter())
            .filter(|b| expunge_blobs.contains(*b))
            .count();
        let unanswered = round.smtp.unanswered.len() + unanswered_appends.len();
        let committed = smtp_committed + appends_committed;
        totals.committed_unanswered += usize::from(committed > 0);
        totals.uncommitted_unanswered += usize::from(committed < unanswered);
        totals.temp_files += usize::from(round.temp_files > 0);
        totals.short_temp_files += usize::from(round.short_temp_files > 0);
        totals.orphans_uncommitted += usize::from(round.orphans.len() > expunged_orphans);
        totals.orphans_expunged += usize::from(expunged_orphans > 0);
        let appends_acked = (round.imap.messages.iter())
            .filter(|m| m.append == Answer::Ok)
            .count();
        let expunges_acked = (round.imap.messages.iter())
            .filter(|m| m.expunge == Answer::Ok)
            .count();
        totals.smtp_acked += round.smtp.acked.len();
        totals.appends_acked += appends_acked;
        totals.large_appends_acked += (round.imap.messages.iter())
            .filter(|m| m.append == Answer::Ok && message(&m.id).len() > 65_536)
            .count();
        totals.stores_acked += round.imap.stores_acked;
        totals.expunges_acked += expunges_acked;
        eprintln!(
            "round {}: kill at {} ms; acked {} DATA, {} APPEND, {} UID EXPUNGE; no reply for \
             {} DATA ({} committed), {} APPEND ({} committed), {} UID EXPUNGE ({} committed); \
             blob temp files {} ({} short), orphan blob files {} ({} of expunged messages)",
            round.number,
            round.kill_ms,
            round.smtp.acked.len(),
            appends_acked,
            expunges_acked,
            round.smtp.unanswered.len(),
            smtp_committed,
            unanswered_appends.len(),
            appends_committed,
            unanswered_expunges.len(),
            expunges_committed,
            round.temp_files,
            round.short_temp_files,
            round.orphans.len(),
            expunged_orphans,
        );
        for warning in &round.startup_warnings {
            eprintln!("  start after round {}: {warning}", round.number);
        }
    }
    totals.rounds += log.len();
    totals.stored += inbox.len() + crash.len();
    if !problems.is_empty() {
        keep_data_dir(server, log[0].number);
    }
    assert!(
        problems.is_empty(),
        "{} problems after rounds {}–{}:\n{}",
        problems.len(),
        log[0].number,
        log[log.len() - 1].number,
        problems.join("\n")
    );
}

#[test]
fn acknowledged_messages_survive_sigkill_exactly_once() {
    let rounds = match std::env::var("TERN_CRASH_ROUNDS") {
        Ok(v) => v.parse().expect("TERN_CRASH_ROUNDS is a number of rounds"),
        Err(_) => DEFAULT_ROUNDS,
    };
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut first = 0;
    while first < rounds {
        let n = EPOCH_ROUNDS.min(rounds - first);
        epoch(first, n, &mut seed, &mut totals);
        first += n;
    }
    let t = &totals;
    assert!(
        t.smtp_acked > 5 * rounds && t.appends_acked > rounds,
        "too little load to mean anything: {} DATA, {} APPEND acknowledged",
        t.smtp_acked,
        t.appends_acked
    );
    assert!(
        t.large_appends_acked > 0 && t.stores_acked > 0 && t.expunges_acked > 0,
        "no large APPEND, STORE or UID EXPUNGE acknowledged"
    );
    eprintln!(
        "crash test: {} rounds, {} DATA acked, {} APPEND acked ({} over 64 KiB), {} STORE \
         acked, {} UID EXPUNGE acked, {} messages stored at the ends of the epochs; 0 losses, \
         0 duplicates, 0 damaged; {:.0} s",
        t.rounds,
        t.smtp_acked,
        t.appends_acked,
        t.large_appends_acked,
        t.stores_acked,
        t.expunges_acked,
        t.stored,
        started.elapsed().as_secs_f64(),
    );
    eprintln!(
        "kills: rounds with a message whose reply was lost that was committed {}, not \
         committed {}; with blob temp files at the kill {} (a file not written in full {}); \
         with orphan blob files of an uncommitted batch {}, of a committed expunge {}",
        t.committed_unanswered,
        t.uncommitted_unanswered,
        t.temp_files,
        t.short_temp_files,
        t.orphans_uncommitted,
        t.orphans_expunged,
    );
}
