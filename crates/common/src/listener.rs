//! The listener runtime: binds every configured socket up front, runs one accept loop per
//! listener, enforces the connection limits (global, per listener, per IP, per IPv6 /48),
//! spawns one task per connection inside a `session` tracing span (id, listener, peer), and
//! shuts down gracefully.
//!
//! Protocol crates plug in a [`Service`]; the runtime never reads from or writes to a session's
//! socket except to send the one-line refusal of an over-limit connection. It does not perform
//! the TLS handshake of implicit-TLS listeners either: the session calls [`accept_tls`] when it
//! is ready, so the handshake runs in the session's task, span and timeout.
//!
//! Shutdown: when the token from [`Runtime::shutdown_token`] is cancelled, the accept loops stop
//! and the sockets close; sessions see [`Connection::shutdown`] cancelled and may say goodbye;
//! after `limits.shutdown_grace` the remaining sessions are dropped at their next await point.
//! [`Runtime::run`] returns once every task has ended.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{Limits, ListenerConfig, Protocol, TlsMode};

/// The future a [`Service`] returns for one connection.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A protocol's session handler. Implemented for every `Fn(Connection) -> impl Future` closure,
/// so `runtime.bind(&cfg, REFUSAL, move |conn| serve_smtp(ctx.clone(), conn))` works; a struct
/// can implement it directly by boxing its `async fn`.
pub trait Service: Send + Sync + 'static {
    /// Runs one session to completion. The connection counts against the limits until the
    /// returned future completes; tasks it spawns are not tracked.
    fn serve(&self, conn: Connection) -> BoxFuture;
}

impl<F, Fut> Service for F
where
    F: Fn(Connection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn serve(&self, conn: Connection) -> BoxFuture {
        Box::pin(self(conn))
    }
}

/// An accepted TCP connection handed to a [`Service`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Connection {
    /// The socket, still cleartext (see [`Connection::tls`]).
    pub stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// The local address the client connected to.
    pub local: SocketAddr,
    /// Unique id of this session, also recorded in its tracing span.
    pub session_id: SessionId,
    /// Name of the listener that accepted it.
    pub listener: Arc<str>,
    /// The listener's protocol.
    pub protocol: Protocol,
    /// The listener's TLS mode. For [`TlsMode::Implicit`] the session must call [`accept_tls`]
    /// before anything else.
    pub tls: TlsMode,
    /// Cancelled when the server shuts down: finish the current command, say goodbye
    /// (SMTP 421, IMAP `* BYE`) and return within the grace period.
    pub shutdown: CancellationToken,
}

/// Performs the server side of a TLS handshake, giving up after `timeout`
/// (`io::ErrorKind::TimedOut`). Generic so STARTTLS can upgrade whatever stream the session uses.
pub async fn accept_tls<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    timeout: Duration,
) -> io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("TLS handshake not completed within {timeout:?}"),
        )),
    }
}

/// A short session identifier, unique within the process and, with high probability, across
/// processes and restarts (the top 20 bits are random per process). Displays as 12 lowercase
/// base32 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    const COUNTER_BITS: u32 = 40;

    /// A fresh id.
    pub fn next() -> SessionId {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static SALT: OnceLock<u64> = OnceLock::new();
        let salt = *SALT.get_or_init(|| {
            // RandomState is seeded from the OS's random source; the pid and time only help
            // if that were ever weak.
            let mut h = std::hash::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
                h.write_u128(t.as_nanos());
            }
            h.finish() & 0xF_FFFF
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) & ((1 << Self::COUNTER_BITS) - 1);
        SessionId((salt << Self::COUNTER_BITS) | n)
    }

    /// The numeric value.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Crockford's base32 alphabet: no i, l, o, u, so ids read back unambiguously.
        const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
        let mut out = [0u8; 12];
        for (i, c) in out.iter_mut().enumerate() {
            let shift = 5 * (11 - i);
            *c = ALPHABET[((self.0 >> shift) & 31) as usize];
        }
        out.iter()
            .try_for_each(|&c| fmt::Write::write_char(f, char::from(c)))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// Errors starting the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    /// A socket could not be bound (address in use, privileged port, address not local).
    #[error("listener {name:?}: cannot bind {addr}: {source}")]
    Bind {
        /// Listener name.
        name: String,
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
}

/// A listening socket whose service does not exist yet: `tern serve` binds its (privileged)
/// ports as root, gives root up, and only then opens the store and builds the services. The
/// kernel queues connections meanwhile; nothing accepts or reads one before [`Runtime::run`].
#[derive(Debug)]
pub struct BoundSocket {
    config: ListenerConfig,
    socket: TcpListener,
    local: SocketAddr,
}

impl BoundSocket {
    /// Binds `config.bind` and logs the bound address ("listening").
    pub async fn bind(config: &ListenerConfig) -> Result<BoundSocket, ListenerError> {
        let bind_error = |source| ListenerError::Bind {
            name: config.name.clone(),
            addr: config.bind,
            source,
        };
        let socket = TcpListener::bind(config.bind).await.map_err(bind_error)?;
        let local = socket.local_addr().map_err(bind_error)?;
        tracing::info!(
            listener = %config.name,
            protocol = %config.protocol,
            tls = %config.tls,
            addr = %local,
            "listening"
        );
        Ok(BoundSocket {
            config: config.clone(),
            socket,
            local,
        })
    }

    /// The listener this socket was bound for.
    pub fn config(&self) -> &ListenerConfig {
        &self.config
    }
}

/// Binds listeners, then runs them until shutdown.
pub struct Runtime {
    listeners: Vec<Bound>,
    shared: Arc<Shared>,
    grace: Duration,
}

struct Bound {
    socket: TcpListener,
    local: SocketAddr,
    info: Arc<ListenerInfo>,
}

struct ListenerInfo {
    /// Position in registration order: the key of this listener's connection count.
    index: usize,
    /// This listener's own connection limit, if it has one.
    max_connections: Option<usize>,
    name: Arc<str>,
    protocol: Protocol,
    tls: TlsMode,
    refusal: &'static [u8],
    service: Box<dyn Service>,
}

struct Shared {
    limiter: Arc<Limiter>,
    tracker: TaskTracker,
    /// Graceful: stop accepting, sessions say goodbye.
    shutdown: CancellationToken,
    /// Hard: drop sessions still running after the grace period.
    abort: CancellationToken,
}

impl Runtime {
    /// A runtime with no listeners yet, using `max_connections`, `max_connections_per_ip`,
    /// `max_connections_per_ipv6_48` and `shutdown_grace` from `limits`.
    pub fn new(limits: &Limits) -> Runtime {
        Runtime {
            listeners: Vec::new(),
            shared: Arc::new(Shared {
                limiter: Arc::new(Limiter {
                    max_total: limits.max_connections,
                    max_per_ip: limits.max_connections_per_ip,
                    max_per_ipv6_48: limits.max_connections_per_ipv6_48,
                    state: Mutex::new(LimiterState::default()),
                }),
                tracker: TaskTracker::new(),
                shutdown: CancellationToken::new(),
                abort: CancellationToken::new(),
            }),
            grace: limits.shutdown_grace,
        }
    }

    /// Binds `config.bind` now, so a bad address fails at startup, and registers `service` for
    /// it, with the listener's own connection limit (`config.max_connections`) on top of the
    /// global ones. `refusal` is the one line written to a connection refused by a connection
    /// limit (`b"421 4.7.0 Too many connections\r\n"`); it is not sent on implicit-TLS
    /// listeners, where the client expects a handshake. Returns the bound address (the real
    /// port for port 0).
    pub async fn bind(
        &mut self,
        config: &ListenerConfig,
        refusal: &'static [u8],
        service: impl Service,
    ) -> Result<SocketAddr, ListenerError> {
        let socket = BoundSocket::bind(config).await?;
        Ok(self.add(socket, refusal, service))
    }

    /// Registers `service` for a socket bound earlier with [`BoundSocket::bind`]; see
    /// [`Runtime::bind`] for `refusal`. Returns the bound address.
    pub fn add(
        &mut self,
        socket: BoundSocket,
        refusal: &'static [u8],
        service: impl Service,
    ) -> SocketAddr {
        let BoundSocket {
            config,
            socket,
            local,
        } = socket;
        self.listeners.push(Bound {
            socket,
            local,
            info: Arc::new(ListenerInfo {
                index: self.listeners.len(),
                max_connections: config.max_connections,
                name: Arc::from(config.name.as_str()),
                protocol: config.protocol,
                tls: config.tls,
                refusal,
                service: Box::new(service),
            }),
        });
        local
    }

    /// Name and bound address of every listener, in registration order.
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.listeners
            .iter()
            .map(|l| (l.info.name.to_string(), l.local))
            .collect()
    }

    /// The bound address of the listener called `name`.
    pub fn local_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| &*l.info.name == name)
            .map(|l| l.local)
    }

    /// Cancel this token (on SIGTERM/SIGINT) to shut the runtime down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// A handle to observe the number of open connections (for metrics and tests).
    pub fn stats(&self) -> RuntimeStats {
        RuntimeStats {
            limiter: Arc::clone(&self.shared.limiter),
        }
    }

    /// Accepts connections until shutdown, then waits up to the grace period for sessions,
    /// aborts the rest, and returns when every task has ended.
    pub async fn run(self) {
        let mut loops = JoinSet::new();
        for bound in self.listeners {
            loops.spawn(accept_loop(bound, Arc::clone(&self.shared)));
        }
        let shared = self.shared;
        shared.shutdown.cancelled().await;
        // Accept loops return on cancellation; once they have, no session can be spawned after
        // the tracker closes.
        while loops.join_next().await.is_some() {}
        shared.tracker.close();
        tracing::info!(
            sessions = shared.tracker.len(),
            grace = ?self.grace,
            "shutting down: listeners closed, waiting for sessions"
        );
        if tokio::time::timeout(self.grace, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                sessions = shared.tracker.len(),
                "grace period over, aborting remaining sessions"
            );
            shared.abort.cancel();
            shared.tracker.wait().await;
        }
        tracing::info!("all sessions ended");
    }
}

/// Open-connection counts of a [`Runtime`].
#[derive(Clone)]
pub struct RuntimeStats {
    limiter: Arc<Limiter>,
}

impl RuntimeStats {
    /// Connections currently open across all listeners.
    pub fn active_connections(&self) -> usize {
        self.limiter.lock().total
    }
}

async fn accept_loop(bound: Bound, shared: Arc<Shared>) {
    let Bound {
        socket,
        local,
        info,
    } = bound;
    loop {
        let accepted = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => break,
            r = socket.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => admit(stream, peer, local, &info, &shared),
            // The peer gave up between SYN and accept: nothing to do.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                // Typically EMFILE/ENFILE: back off instead of spinning on the error.
                tracing::error!(listener = %info.name, error = %e, "accept failed");
                tokio::select! {
                    () = shared.shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
    tracing::debug!(listener = %info.name, "stopped accepting");
}

fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    listener_addr: SocketAddr,
    info: &Arc<ListenerInfo>,
    shared: &Shared,
) {
    let slot = ListenerSlot {
        index: info.index,
        max: info.max_connections,
    };
    let guard = match Limiter::acquire(&shared.limiter, peer.ip(), slot) {
        Ok(guard) => guard,
        Err(reason) => {
            tracing::debug!(listener = %info.name, %peer, reason, "connection refused");
            if info.tls != TlsMode::Implicit {
                // A fresh socket's send buffer is empty, so this short line goes out at once;
                // if it would block, the client is misbehaving and gets a plain close.
                let _ = stream.try_write(info.refusal);
            }
            return;
        }
    };
    // Mail protocols are request/response with explicit flushes; Nagle only adds latency.
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(listener_addr);
    let session_id = SessionId::next();
    let span = tracing::info_span!(
        "session",
        id = %session_id,
        listener = %info.name,
        peer = %peer,
    );
    let conn = Connection {
        stream,
        peer,
        local,
        session_id,
        listener: Arc::clone(&info.name),
        protocol: info.protocol,
        tls: info.tls,
        shutdown: shared.shutdown.child_token(),
    };
    let session = span.in_scope(|| {
        tracing::debug!(%local, "connected");
        info.service.serve(conn)
    });
    let abort = shared.abort.clone();
    shared.tracker.spawn(
        async move {
            // Held for the whole session: the slot frees when the session ends.
            let _guard = guard;
            tokio::select! {
                () = session => tracing::debug!("session ended"),
                () = abort.cancelled() => tracing::warn!("session aborted at shutdown"),
            }
        }
        .instrument(span),
    );
}

/// Connection counting for the global, per-listener, per-IP and per-IPv6-/48 limits. All
/// counts are checked and taken under one lock, so a connection either gets every slot or none.
struct Limiter {
    max_total: usize,
    max_per_ip: usize,
    max_per_ipv6_48: usize,
    state: Mutex<LimiterState>,
}

#[derive(Default)]
struct LimiterState {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    per_ipv6_48: HashMap<u128, usize>,
    per_listener: HashMap<usize, usize>,
}

/// The listener a connection arrived on, for its per-listener limit.
#[derive(Clone, Copy)]
struct ListenerSlot {
    index: usize,
    max: Option<usize>,
}

impl Limiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        // The critical sections only do arithmetic; a poisoned lock still holds valid counts.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn acquire(
        this: &Arc<Limiter>,
        ip: IpAddr,
        listener: ListenerSlot,
    ) -> Result<ConnectionGuard, &'static str> {
        let key = limit_key(ip);
        let net48 = ipv6_48(key);
        let mut state = this.lock();
        if state.total >= this.max_total {
            return Err("too many connections");
        }
        let on_listener = state.per_listener.get(&listener.index).copied();
        if listener
            .max
            .is_some_and(|max| on_listener.unwrap_or(0) >= max)
        {
            return Err("too many connections on this listener");
        }
        if state.per_ip.get(&key).copied().unwrap_or(0) >= this.max_per_ip {
            return Err("too many connections from this address");
        }
        if let Some(net) = net48 {
            if state.per_ipv6_48.get(&net).copied().unwrap_or(0) >= this.max_per_ipv6_48 {
                return Err("too many connections from this IPv6 /48");
            }
            *state.per_ipv6_48.entry(net).or_insert(0) += 1;
        }
        *state.per_ip.entry(key).or_insert(0) += 1;
        *state.per_listener.entry(listener.index).or_insert(0) += 1;
        state.total += 1;
        Ok(ConnectionGuard {
            limiter: Arc::clone(this),
            key,
            net48,
            listener: listener.index,
        })
    }
}

/// Takes one from a count, forgetting the entry at zero so the maps only hold live clients.
fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

/// One counted connection; releases its slots when dropped.
struct ConnectionGuard {
    limiter: Arc<Limiter>,
    key: IpAddr,
    net48: Option<u128>,
    listener: usize,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut state = self.limiter.lock();
        state.total = state.total.saturating_sub(1);
        release(&mut state.per_ip, &self.key);
        release(&mut state.per_listener, &self.listener);
        if let Some(net) = self.net48 {
            release(&mut state.per_ipv6_48, &net);
        }
    }
}

/// Whether a client connected from this host: `127.0.0.0/8`, `::1`, and the IPv4-mapped form
/// `::ffff:127.x.y.z` that a dual-stack (`[::]`) listener reports for IPv4 loopback clients.
/// The one judgement every protocol uses for "loopback" (plaintext logins, LMTP): the copies
/// had drifted, so `::ffff:127.0.0.1` was loopback for IMAP but not for submission.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The address a per-IP limit applies to: IPv4 as is (also when IPv4-mapped), IPv6 by /64,
/// since one subscriber usually holds a whole /64 and can rotate addresses inside it.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The /48 a native IPv6 client is in (`None` for IPv4). A /48 is what a site is typically
/// given (RFC 6177 §2 leaves it to the registries; most hand out /48 or /56), so a client that
/// rotates through the 65 536 /64s of its site still shares one cap.
fn ipv6_48(key: IpAddr) -> Option<u128> {
    match key {
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => Some(u128::from(v6) >> 80),
    }
}

#[cfg(test)]
mod tests;
