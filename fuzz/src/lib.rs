//! What the session targets share: one tokio runtime per process, a "world" (a temporary store
//! and directory with two users and a few messages), and a client that feeds fuzz input to a real
//! session over `tokio::io::duplex` in the chunk size the input picks while draining what the
//! server writes.
//!
//! Design notes:
//! - A world is reused across runs and rebuilt every [`RUNS_PER_WORLD`] runs. Opening a store and
//!   adding users costs milliseconds, a run should cost well under one; rebuilding keeps what
//!   earlier inputs changed (deleted messages, new mailboxes, appended mail) from piling up, so the
//!   store stays small and runs stay fast. A crash that needs an earlier input's leftovers may then
//!   not reproduce from its artifact alone; the artifact still names the session that crashed.
//! - Password hashing is cheap here (argon2 with 64 KiB, one pass), and login throttling is off,
//!   so logging in as a start state costs microseconds and never locks the user out after an input
//!   that failed many logins.
//! - The store lives on `/dev/shm` when it exists (or under `$TERN_FUZZ_TMPDIR`): every store
//!   write is an fsync (`synchronous=FULL`), which tmpfs makes free.
//! - A session must end by itself once the client has sent everything and closed its side; if it
//!   has not within [`HANG_LIMIT`] the run panics (libFuzzer reports a crash). A session spinning
//!   without awaiting is caught by libFuzzer's own `-timeout`.
#![forbid(unsafe_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;
use tern_common::Secret;
use tern_common::tls::TlsStore;
use tern_directory::{Account, Argon2Params, Directory, DirectoryConfig, ThrottleConfig};
use tern_store::{Flags, MessageMeta, Store, StoreOptions, SystemFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// The hosted domain of every world.
pub const DOMAIN: &str = "example.test";
/// The user the authenticated start states log in as.
pub const USER: &str = "alice@example.test";
/// A second user, so cross-account names have something to find.
pub const OTHER: &str = "bob@example.test";
/// Both users' password.
pub const PASSWORD: &str = "correct horse battery";
/// The server's host name.
pub const HOSTNAME: &str = "mail.example.test";

/// Runs served by one world before it is rebuilt.
pub const RUNS_PER_WORLD: u32 = 500;
/// How long a session may take to end after the client closed its side.
pub const HANG_LIMIT: Duration = Duration::from_secs(10);
/// How long a start-state step (greeting, login, SELECT) may take.
const STEP_LIMIT: Duration = Duration::from_secs(10);

/// Messages in the user's INBOX in every world: plain text, multipart with a base64 part,
/// nested message/rfc822 and quoted-printable, so FETCH and SEARCH have structure to walk.
pub const MESSAGES: [&[u8]; 4] = [
    b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: one\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nHello Alice.\r\n",
    b"From: carol@example.test\r\nTo: alice@example.test, \"Dave D.\" <dave@example.test>\r\nCc: undisclosed-recipients:;\r\nSubject: =?utf-8?q?two_apples?=\r\nDate: Wed, 15 Nov 2023 10:00:00 +0100\r\n\r\nline 1\r\nbanana split\r\n",
    b"From: dave@example.test\r\nSubject: three\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\npreamble\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nbody part =C3=A9\r\n--b\r\nContent-Type: application/octet-stream; name=x.bin\r\nContent-Disposition: attachment; filename=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n",
    b"From: eve@example.test\r\nSubject: forwarded\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\nFrom: frank@example.test\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--\r\n--outer--\r\n",
];

/// The process's runtime. Current-thread: a run is one session and its client, and a single
/// thread keeps runs reproducible.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the fuzz harness needs a tokio runtime")
    })
}

/// A TLS acceptor with a self-signed certificate for [`HOSTNAME`], made once per process, so
/// STARTTLS/STLS are offered and the fuzzer can reach the upgrade (and the handshake on garbage).
pub fn tls() -> tokio_rustls::TlsAcceptor {
    static TLS: OnceLock<(TempDir, TlsStore)> = OnceLock::new();
    let (_, store) = TLS.get_or_init(|| {
        let dir = scratch_dir();
        let store = TlsStore::self_signed(dir.path(), &[HOSTNAME.to_owned()])
            .expect("self-signed certificate for the fuzz harness");
        (dir, store)
    });
    store.acceptor()
}

/// One fuzz input: the first octet picks the start state (its low four bits, modulo the
/// number of states) and the size of the pieces the client writes (its high four bits, see
/// [`CHUNKS`]); the rest is what the client sends.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub state: u8,
    pub chunk: usize,
    pub bytes: &'a [u8],
}

/// Write sizes an input can pick: all at once, then small sizes that split tokens, CRLFs and
/// literals, then larger ones.
pub const CHUNKS: [usize; 16] = [
    usize::MAX,
    1,
    2,
    3,
    4,
    5,
    7,
    8,
    13,
    16,
    31,
    64,
    100,
    256,
    512,
    4096,
];

impl<'a> Input<'a> {
    /// Splits `data` into control octet and client bytes; `None` for empty input.
    pub fn parse(data: &'a [u8], states: u8) -> Option<Input<'a>> {
        let (&control, bytes) = data.split_first()?;
        Some(Input {
            state: (control & 0x0f) % states.max(1),
            chunk: CHUNKS[usize::from(control >> 4)],
            bytes,
        })
    }
}

/// The store, directory and users one run sees.
pub struct World {
    pub store: Store,
    pub directory: Directory,
    pub user: Account,
    pub other: Account,
    dir: TempDir,
}

impl World {
    /// The world's scratch directory (its store lives there).
    pub fn scratch(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A fresh world: domain, both users (with their default mailboxes), an alias, [`MESSAGES`]
    /// in the user's INBOX (the second one `\Seen`), and a mailbox of the user's own.
    pub async fn new() -> World {
        let dir = scratch_dir();
        let store = Store::open(StoreOptions {
            // No batching delay: runs are sequential, nothing would join a batch.
            group_commit_window: Duration::ZERO,
            ..StoreOptions::new(dir.path())
        })
        .await
        .expect("open the fuzz store");
        let directory = Directory::new(store.clone(), directory_config()).expect("directory");
        directory.add_domain(DOMAIN).await.expect("add domain");
        let secret = Secret::new(PASSWORD);
        let user = directory
            .add_user(USER, &secret, None)
            .await
            .expect("add user");
        let other = directory
            .add_user(OTHER, &secret, None)
            .await
            .expect("add other user");
        directory
            .add_alias("team@example.test", USER)
            .await
            .expect("add alias");
        let inbox = store
            .mailbox_by_name(user.id, "INBOX")
            .await
            .expect("look up INBOX")
            .expect("every account has an INBOX")
            .id;
        for (i, raw) in MESSAGES.iter().enumerate() {
            let flags = if i == 1 {
                Flags::from_system(SystemFlags::SEEN).with_keyword("$Forwarded")
            } else {
                Flags::new()
            };
            store
                .append(
                    inbox,
                    Bytes::from_static(raw),
                    flags,
                    1_700_000_000 + i as i64 * 86_400,
                    MessageMeta::default(),
                )
                .await
                .expect("seed message");
        }
        store
            .create_mailbox(user.id, "Projects", None)
            .await
            .expect("create mailbox");
        World {
            store,
            directory,
            user,
            other,
            dir,
        }
    }
}

/// Cheap hashes and no throttling (see the module notes).
fn directory_config() -> DirectoryConfig {
    DirectoryConfig {
        argon2: Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        },
        throttle: ThrottleConfig {
            account_limit: u32::MAX,
            ip_limit: u32::MAX,
            ..ThrottleConfig::default()
        },
        ..DirectoryConfig::default()
    }
}

/// A directory under `$TERN_FUZZ_TMPDIR`, else `/dev/shm`, else the system temporary directory.
/// The last world's directory outlives the process (libFuzzer exits without running the
/// destructors of statics), so `scripts/fuzz.sh` points `TERN_FUZZ_TMPDIR` at a directory it
/// removes afterwards.
fn scratch_dir() -> TempDir {
    let parent = std::env::var_os("TERN_FUZZ_TMPDIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/dev/shm")))
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix("tern-fuzz-")
        .tempdir_in(parent)
        .expect("temporary directory for the fuzz harness")
}

/// A protocol context built over a world, rebuilt with it every [`RUNS_PER_WORLD`] runs.
/// Keep one in a `static` per target.
pub struct Fixture<C> {
    current: Option<(World, Arc<C>)>,
    runs: u32,
}

impl<C> Fixture<C> {
    pub const fn new() -> Fixture<C> {
        Fixture {
            current: None,
            runs: 0,
        }
    }

    /// The context for this run; `make` builds one over a new world when needed.
    pub fn context(&mut self, make: impl FnOnce(&World) -> C) -> Arc<C> {
        self.runs += 1;
        if self.runs > RUNS_PER_WORLD {
            self.runs = 1;
            // Drop the old world before building the next: its store's writer thread ends.
            self.current = None;
        }
        let (_, ctx) = self.current.get_or_insert_with(|| {
            let world = runtime().block_on(World::new());
            let ctx = Arc::new(make(&world));
            (world, ctx)
        });
        Arc::clone(ctx)
    }
}

impl<C> Default for Fixture<C> {
    fn default() -> Self {
        Self::new()
    }
}

/// A line the client sends to reach a start state, and the text the server's answer must
/// contain before the client goes on.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub send: &'a [u8],
    pub expect: &'a [u8],
}

/// Runs one session: `serve` gets the server end of an in-memory duplex whose buffers hold
/// `chunk` octets, so the session reads the input in pieces of at most that size. The client
/// first plays `steps` (waiting for each expected answer), then writes `input` piece by piece,
/// closes its side, and waits for the session to end. Returns everything the server wrote.
///
/// Panics (a fuzz crash) when a step's answer does not come or the session does not end within
/// [`HANG_LIMIT`] of the client closing.
pub async fn converse<F, Fut>(chunk: usize, steps: &[Step<'_>], input: &[u8], serve: F) -> Vec<u8>
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (client, server) = tokio::io::duplex(chunk.clamp(1, 1 << 16));
    let session = tokio::spawn(serve(server));
    let (mut reader, mut writer) = tokio::io::split(client);
    // Drain the server's output concurrently: with small buffers a session blocks on writing
    // until the client reads, and the client must keep writing meanwhile.
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut out = Vec::new();
    for step in steps {
        let from = out.len();
        let sent = writer.write_all(step.send).await;
        let waited = tokio::time::timeout(STEP_LIMIT, async {
            while !contains(&out[from..], step.expect) {
                match rx.recv().await {
                    Some(bytes) => out.extend_from_slice(&bytes),
                    None => return false,
                }
            }
            true
        })
        .await;
        assert!(
            sent.is_ok() && waited == Ok(true),
            "start state not reached: sent {:?}, expected {:?}, transcript {:?}",
            String::from_utf8_lossy(step.send),
            String::from_utf8_lossy(step.expect),
            String::from_utf8_lossy(&out)
        );
    }
    for piece in input.chunks(chunk.max(1)) {
        // The session may have closed the connection (QUIT, too many errors): stop writing.
        if writer.write_all(piece).await.is_err() {
            break;
        }
    }
    let _ = writer.shutdown().await;
    match tokio::time::timeout(HANG_LIMIT, session).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("session task failed: {e}"),
        Err(_) => panic!(
            "session did not end within {HANG_LIMIT:?} after the client closed; output so far {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
    // The session dropped its end: the drain task sees end of stream and stops.
    let _ = drain.await;
    while let Ok(bytes) = rx.try_recv() {
        out.extend_from_slice(&bytes);
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
