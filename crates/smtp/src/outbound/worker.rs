//! The queue worker: claims due recipients, groups them by destination domain, delivers each group
//! over one connection, records the results, and sends DSNs.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tern_common::Secret;
use tern_common::config::{Config, OutboundConfig};
use tern_store::{QueueEntry, QueuedMessage, QueuedRecipient, Store};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::client::{
    self, Client, ClientError, Envelope, EnvelopeRecipient, Reply, SendOutcome, TlsConnectors,
};
use super::destination::Slots;
use super::dsn::DsnLimiter;
use super::routing::{self, DnsSource, HickoryDns, RouteError};
use crate::delivery::Pipeline;

mod connect;
mod settle;

/// Recipients claimed per round.
const BATCH: usize = 200;
/// How long in-flight deliveries may run after shutdown before they are abandoned (their leases
/// are released on the next start, so nothing is lost).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Why one recipient was not delivered in this attempt.
#[derive(Debug, Clone)]
struct Failure {
    permanent: bool,
    /// RFC 3463 status.
    status: String,
    /// The remote reply, if a server answered.
    reply: Option<String>,
    /// Our description when no server answered.
    reason: String,
    /// The server that answered.
    remote: Option<String>,
}

impl Failure {
    fn local(permanent: bool, status: &str, reason: impl Into<String>) -> Failure {
        Failure {
            permanent,
            status: status.to_owned(),
            reply: None,
            reason: reason.into(),
            remote: None,
        }
    }

    fn from_reply(reply: &Reply, host: &str) -> Failure {
        Failure {
            permanent: reply.is_permanent(),
            status: reply.status(),
            reply: Some(reply.to_string()),
            reason: reply.to_string(),
            remote: Some(host.to_owned()),
        }
    }

    fn text(&self) -> String {
        match (&self.reply, &self.remote) {
            (Some(reply), Some(host)) => format!("{host} said: {reply}"),
            _ => self.reason.clone(),
        }
    }
}

/// A recipient the next hop accepted.
#[derive(Debug, Clone)]
struct Accepted {
    /// Its reply to the end of data.
    reply: String,
    /// The server that accepted.
    host: String,
    /// It offers DSN, so it got the request and reports from now on (RFC 3461 §5.2.1).
    notifies: bool,
}

/// One message and its recipients in one destination domain.
struct Job {
    message: QueuedMessage,
    recipients: Vec<QueuedRecipient>,
}

/// An open session with a next hop and the connection slots it holds.
struct Connection {
    client: Client,
    host: String,
    /// The destination's (none for a configured relay) and the global one.
    _slots: (Option<OwnedSemaphorePermit>, OwnedSemaphorePermit),
}

/// Renews leases while it lives (see [`Outbound::keep_leases`]).
struct LeaseKeeper(JoinHandle<()>);

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The outbound queue worker. Build it once, then `tokio::spawn(outbound.run(shutdown))`.
pub struct Outbound {
    store: Store,
    pipeline: Pipeline,
    config: OutboundConfig,
    hostname: String,
    ehlo: String,
    node: String,
    dns: Arc<dyn DnsSource>,
    tls: TlsConnectors,
    /// Relay passwords by password file, read at start.
    passwords: HashMap<std::path::PathBuf, Secret>,
    wakeup: Arc<Notify>,
    global: Arc<Semaphore>,
    per_domain: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// `max_connections_per_destination` per destination address.
    per_destination: Slots,
    /// This server's listening addresses: never a destination (mail loop), unless
    /// `allow_private_destinations`.
    own: Vec<IpAddr>,
    /// Shared with the SMTP sessions, which send success DSNs.
    dsn_limiter: Arc<DsnLimiter>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    /// A worker for `pipeline`'s store (the pipeline also delivers the DSNs, as far as
    /// `dsn_limiter` allows), resolving through `dns`. `hostname` names this node (leases), the
    /// DSN Reporting-MTA and, unless `config.ehlo_name` is set, the EHLO argument. Reads relay
    /// password files now.
    pub fn new(
        pipeline: Pipeline,
        config: OutboundConfig,
        hostname: String,
        dns: Arc<dyn DnsSource>,
        dsn_limiter: Arc<DsnLimiter>,
    ) -> Result<Outbound, String> {
        let mut passwords = HashMap::new();
        for relay in config.routes.values().chain(config.smarthost.as_ref()) {
            if let Some(path) = &relay.password_file {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let line = text.lines().next().unwrap_or_default().to_owned();
                passwords.insert(path.clone(), Secret::new(line));
            }
        }
        Ok(Outbound {
            store: pipeline.store().clone(),
            wakeup: pipeline.queue_wakeup(),
            ehlo: config.ehlo_name.clone().unwrap_or_else(|| hostname.clone()),
            node: hostname.clone(),
            hostname,
            global: Arc::new(Semaphore::new(config.max_connections)),
            per_domain: Mutex::new(HashMap::new()),
            per_destination: Slots::new(config.max_connections_per_destination),
            own: Vec::new(),
            tls: TlsConnectors::new()?,
            pipeline,
            config,
            dns,
            passwords,
            dsn_limiter,
        })
    }

    /// [`Outbound::new`] from the server configuration, with a resolver built from `[dns]`.
    pub fn from_config(
        config: &Config,
        pipeline: Pipeline,
        dsn_limiter: Arc<DsnLimiter>,
    ) -> Result<Outbound, String> {
        let resolver = tern_common::dns::shared_resolver(&config.dns).map_err(|e| e.to_string())?;
        let mut outbound = Outbound::new(
            pipeline,
            config.outbound.clone(),
            config.hostname.clone(),
            Arc::new(HickoryDns(resolver)),
            dsn_limiter,
        )?;
        // A wildcard bind (0.0.0.0, ::) names no address of its own, so a public address of this
        // host is not recognised; mail sent there meets port 25, which refuses to relay for a
        // domain not ours (RFC 5321 §3.6.2), and bounces instead of looping.
        outbound.own = config
            .listeners
            .iter()
            .map(|l| l.bind.ip())
            .filter(|ip| !ip.is_unspecified())
            .collect();
        Ok(outbound)
    }

    /// Runs until `shutdown` is cancelled: releases this node's leases, then claims and delivers
    /// due recipients, sleeping until the next is due, the poll interval, or a wake-up.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.recover().await;
        let mut tasks = JoinSet::new();
        let mut worked = false;
        loop {
            while tasks.try_join_next().is_some() {}
            let claimed = match self
                .store
                .queue_claim(&self.node, unix_now(), secs(self.config.lease), BATCH)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "outbound: claim failed");
                    Vec::new()
                }
            };
            if !claimed.is_empty() {
                for (domain, jobs) in group(claimed) {
                    let me = Arc::clone(&self);
                    tasks.spawn(async move { me.deliver_domain(domain, jobs).await });
                }
                worked = true;
                continue;
            }
            if worked && tasks.is_empty() {
                self.log_size().await;
                worked = false;
            }
            let wait = match self.store.queue_next_due().await {
                Ok(Some(due)) => Duration::from_secs(u64::try_from(due - unix_now()).unwrap_or(0))
                    .clamp(Duration::from_secs(1), self.config.poll_interval),
                _ => self.config.poll_interval,
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        if !tasks.is_empty() {
            info!(
                tasks = tasks.len(),
                "outbound: waiting for deliveries in progress"
            );
            let drain = async { while tasks.join_next().await.is_some() {} };
            if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
                tasks.abort_all();
            }
        }
        info!("outbound: stopped");
    }

    /// Releases this node's leases (left by a crash: this node holds none while starting) and logs
    /// the queue size. [`Outbound::run`] does this first.
    pub async fn recover(&self) {
        match self.store.queue_release_leases(&self.node).await {
            Ok(n) if n > 0 => info!(
                recipients = n,
                "outbound: released leases of a previous run"
            ),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "outbound: cannot release leases"),
        }
        self.log_size().await;
    }

    /// Claims and delivers what is due now, waiting for the results (tests, `tern queue flush`).
    /// Returns how many recipients were attempted.
    pub async fn run_once(self: &Arc<Self>) -> usize {
        let claimed = match self
            .store
            .queue_claim(&self.node, unix_now(), secs(self.config.lease), BATCH)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "outbound: claim failed");
                return 0;
            }
        };
        let count = claimed.iter().map(|e| e.recipients.len()).sum();
        let mut tasks = JoinSet::new();
        for (domain, jobs) in group(claimed) {
            let me = Arc::clone(self);
            tasks.spawn(async move { me.deliver_domain(domain, jobs).await });
        }
        while tasks.join_next().await.is_some() {}
        count
    }

    async fn log_size(&self) {
        if let Ok(stats) = self.store.queue_stats().await {
            info!(
                messages = stats.messages,
                pending = stats.pending,
                "outbound queue size"
            );
        }
    }

    fn domain_permits(&self, domain: &str) -> Arc<Semaphore> {
        // A poisoned lock only means another task panicked while inserting; the map is fine.
        let mut map = self.per_domain.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            map.entry(domain.to_owned()).or_insert_with(|| {
                Arc::new(Semaphore::new(self.config.max_connections_per_domain))
            }),
        )
    }

    /// Delivers every job for one domain, sharing connections, within one `attempt_timeout`.
    async fn deliver_domain(self: Arc<Self>, domain: String, jobs: Vec<Job>) {
        // Held until every job is settled, also while waiting for a slot.
        let _leases = self.keep_leases(&jobs);
        let Ok(_domain_permit) = self.domain_permits(&domain).acquire_owned().await else {
            return;
        };
        let deadline = Instant::now() + self.config.attempt_timeout;
        let route = routing::route(&domain, &self.config, self.dns.as_ref(), &self.own);
        let hops = match tokio::time::timeout_at(deadline, route).await {
            Ok(Ok(hops)) => hops,
            Ok(Err(RouteError::Permanent(status, text) | RouteError::Temporary(status, text))) => {
                let failure = Failure::local(status.starts_with('5'), status, text);
                self.settle_all(jobs, &failure).await;
                return;
            }
            Err(_) => {
                let text = format!("routing {domain} took longer than outbound.attempt_timeout");
                self.settle_all(jobs, &Failure::local(false, "4.4.3", text))
                    .await;
                return;
            }
        };
        let mut connection: Option<Connection> = None;
        let mut last_error = String::from("no mail host reachable");
        let mut jobs = jobs.into_iter();
        while let Some(job) = jobs.next() {
            if connection.is_none() {
                connection = self.connect_any(&hops, deadline, &mut last_error).await;
            }
            let Some(Connection { client, host, .. }) = connection.as_mut() else {
                // RFC 3463 X.4.1: no answer from host.
                let failure = Failure::local(false, "4.4.1", last_error.clone());
                for job in std::iter::once(job).chain(jobs.by_ref()) {
                    let results = job
                        .recipients
                        .iter()
                        .map(|_| Err(failure.clone()))
                        .collect();
                    self.settle(job, results).await;
                }
                break;
            };
            let host = host.clone();
            match self.send_job(client, &host, &job).await {
                Ok(results) => self.settle(job, results).await,
                Err(e) => {
                    // RFC 3463 X.4.2: bad connection. Retry this job later; the next job reconnects
                    // (unless the attempt's deadline has passed: then it is deferred too).
                    warn!(host = %host, error = %e, "outbound: connection failed during a transaction");
                    let failure = Failure::local(false, "4.4.2", format!("{host}: {e}"));
                    let results = job
                        .recipients
                        .iter()
                        .map(|_| Err(failure.clone()))
                        .collect();
                    connection = None;
                    self.settle(job, results).await;
                }
            }
        }
        if let Some(Connection { client, .. }) = connection {
            client.quit().await;
        }
    }

    /// Settles every recipient of `jobs` with `failure`.
    async fn settle_all(&self, jobs: Vec<Job>, failure: &Failure) {
        for job in jobs {
            let results = job
                .recipients
                .iter()
                .map(|_| Err(failure.clone()))
                .collect();
            self.settle(job, results).await;
        }
    }

    /// Renews the leases on the recipients of `jobs` every third of `outbound.lease` until the
    /// returned guard is dropped, so an attempt that runs (or waits for a slot) longer than a
    /// lease is neither claimed again by this node's next round nor taken over by another
    /// node: the same message is never delivered twice at once. Settled recipients drop out by
    /// themselves (the store renews only pending ones still leased to this node).
    fn keep_leases(&self, jobs: &[Job]) -> LeaseKeeper {
        let ids: Vec<_> = jobs
            .iter()
            .flat_map(|j| j.recipients.iter().map(|r| r.id))
            .collect();
        let store = self.store.clone();
        let node = self.node.clone();
        let lease = self.config.lease;
        LeaseKeeper(tokio::spawn(async move {
            let mut tick = tokio::time::interval(lease / 3);
            // The first tick is immediate; the claim has just set the lease.
            tick.tick().await;
            loop {
                tick.tick().await;
                let until = unix_now().saturating_add(secs(lease));
                if let Err(e) = store.queue_renew_leases(&node, ids.clone(), until).await {
                    warn!(error = %e, "outbound: cannot renew leases");
                }
            }
        }))
    }

    /// One transaction for one job; Err only for connection-level failures.
    async fn send_job(
        &self,
        client: &mut Client,
        host: &str,
        job: &Job,
    ) -> Result<Vec<Result<Accepted, Failure>>, ClientError> {
        let all = |f: Failure| job.recipients.iter().map(|_| Err(f.clone())).collect();
        let message = match self.message_bytes(&job.message).await {
            Ok(m) => m,
            Err(e) => return Ok(all(Failure::local(false, "4.3.0", e))),
        };
        let m = &job.message;
        if m.smtputf8 && !client.caps.has(client::SMTPUTF8) {
            return Ok(all(Failure::local(
                true,
                "5.6.7",
                format!("{host} does not support SMTPUTF8, which this message needs (RFC 6531)"),
            )));
        }
        if m.eight_bit && !client.caps.has(client::EIGHTBITMIME) {
            return Ok(all(Failure::local(
                true,
                "5.6.3",
                format!("{host} does not accept 8-bit content (no 8BITMIME, RFC 6152)"),
            )));
        }
        if client.caps.size > 0 && message.len() > client.caps.size {
            // RFC 1870 §6: the server would refuse it.
            return Ok(all(Failure::local(
                true,
                "5.3.4",
                format!(
                    "message of {} octets exceeds the limit of {host} ({} octets)",
                    message.len(),
                    client.caps.size
                ),
            )));
        }
        let envelope = Envelope {
            mail_from: m.mail_from.as_deref(),
            recipients: job
                .recipients
                .iter()
                .map(|r| EnvelopeRecipient {
                    address: &r.address,
                    notify: r.notify,
                    orcpt: r.orcpt.as_deref(),
                })
                .collect(),
            smtputf8: m.smtputf8,
            eight_bit: m.eight_bit,
            env_id: m.env_id.as_deref(),
            ret: m.ret,
        };
        let outcome = client.send(&envelope, &message).await?;
        // RFC 3461 §5.2.1: a server offering DSN took the parameters and reports from now on.
        let notifies = client.caps.has(client::DSN);
        let to_result = |reply: &Reply| {
            if reply.is_positive() {
                Ok(Accepted {
                    reply: reply.to_string(),
                    host: host.to_owned(),
                    notifies,
                })
            } else {
                Err(Failure::from_reply(reply, host))
            }
        };
        Ok(match outcome {
            SendOutcome::Replies(replies) => replies.iter().map(to_result).collect(),
            SendOutcome::MailRejected(reply) => {
                client.rset().await?;
                job.recipients.iter().map(|_| to_result(&reply)).collect()
            }
        })
    }

    async fn message_bytes(&self, m: &QueuedMessage) -> Result<Bytes, String> {
        let blob = self
            .store
            .read_blob(&m.blob)
            .await
            .map_err(|e| format!("cannot read queued message: {e}"))?;
        let skip = usize::try_from(m.skip)
            .unwrap_or(usize::MAX)
            .min(blob.len());
        Ok(blob.slice(skip..))
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Splits claimed entries into jobs (message × domain), grouped by domain.
fn group(claimed: Vec<QueueEntry>) -> BTreeMap<String, Vec<Job>> {
    let mut out: BTreeMap<String, Vec<Job>> = BTreeMap::new();
    for entry in claimed {
        let mut by_domain: BTreeMap<String, Vec<QueuedRecipient>> = BTreeMap::new();
        for r in entry.recipients {
            by_domain.entry(r.domain.clone()).or_default().push(r);
        }
        for (domain, recipients) in by_domain {
            out.entry(domain).or_default().push(Job {
                message: entry.message.clone(),
                recipients,
            });
        }
    }
    out
}
