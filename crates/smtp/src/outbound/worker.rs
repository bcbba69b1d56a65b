//! The queue worker: claims due recipients, groups them by destination domain, delivers each group
//! over one connection, records the results, and sends DSNs.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tern_common::Secret;
use tern_common::config::{Config, OutboundConfig, RelayTls};
use tern_store::{AttemptOutcome, QueueEntry, QueuedMessage, QueuedRecipient, Store};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::client::{
    self, Client, ClientError, Envelope, EnvelopeRecipient, Reply, SendOutcome, Timeouts,
    TlsConnectors,
};
use super::dsn::{self, Dsn, DsnKind, DsnLimiter, DsnRecipient};
use super::routing::{self, DnsSource, HickoryDns, Hop, HopKind, RouteError};
use crate::delivery::Pipeline;

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
        Outbound::new(
            pipeline,
            config.outbound.clone(),
            config.hostname.clone(),
            Arc::new(HickoryDns(resolver)),
            dsn_limiter,
        )
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

    /// Delivers every job for one domain, sharing connections.
    async fn deliver_domain(self: Arc<Self>, domain: String, jobs: Vec<Job>) {
        let Ok(_domain_permit) = self.domain_permits(&domain).acquire_owned().await else {
            return;
        };
        let Ok(_permit) = Arc::clone(&self.global).acquire_owned().await else {
            return;
        };
        let hops = match routing::route(&domain, &self.config, self.dns.as_ref()).await {
            Ok(hops) => hops,
            Err(RouteError::Permanent(status, text)) | Err(RouteError::Temporary(status, text)) => {
                let failure = Failure::local(status.starts_with('5'), status, text);
                for job in jobs {
                    let results = job
                        .recipients
                        .iter()
                        .map(|_| Err(failure.clone()))
                        .collect();
                    self.settle(job, results).await;
                }
                return;
            }
        };
        let mut connection: Option<(Client, String)> = None;
        let mut last_error = String::from("no mail host reachable");
        let mut jobs = jobs.into_iter();
        while let Some(job) = jobs.next() {
            if connection.is_none() {
                connection = self.connect_any(&hops, &mut last_error).await;
            }
            let Some((client, host)) = connection.as_mut() else {
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
                    // RFC 3463 X.4.2: bad connection. Retry this job later; the next job reconnects.
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
        if let Some((client, _)) = connection {
            client.quit().await;
        }
    }

    /// Tries every address of every hop in order until a session is ready for MAIL.
    async fn connect_any(&self, hops: &[Hop], last_error: &mut String) -> Option<(Client, String)> {
        for hop in hops {
            for addr in &hop.addrs {
                match self.open_session(hop, *addr, true).await {
                    Ok(client) => return Some((client, hop.host.clone())),
                    Err(e) => {
                        info!(host = %hop.host, addr = %addr, error = %e, "outbound: cannot use host");
                        *last_error = format!("{} [{}]: {e}", hop.host, addr.ip());
                    }
                }
            }
        }
        None
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts::rfc5321(self.config.connect_timeout, self.config.command_timeout)
    }

    /// Connect, EHLO, TLS as the hop requires, AUTH for relays.
    async fn open_session(
        &self,
        hop: &Hop,
        addr: SocketAddr,
        try_tls: bool,
    ) -> Result<Client, ClientError> {
        let name = server_name(&hop.host, addr.ip());
        match &hop.kind {
            HopKind::Mx => {
                let mut client = Client::connect(addr, self.timeouts()).await?;
                client.hello(&self.ehlo).await?;
                if try_tls && self.config.opportunistic_tls && client.caps.has(client::STARTTLS) {
                    let upgraded = async {
                        client.starttls(&self.tls.opportunistic, name).await?;
                        client.hello(&self.ehlo).await
                    };
                    if let Err(e) = upgraded.await {
                        // RFC 7435 §4: opportunistic, so fall back to cleartext on a new connection.
                        info!(host = %hop.host, error = %e, "outbound: STARTTLS failed; retrying without TLS");
                        return Box::pin(self.open_session(hop, addr, false)).await;
                    }
                }
                Ok(client)
            }
            HopKind::Relay(relay) => {
                let connector: &TlsConnector = if relay.verify_certificate {
                    &self.tls.verified
                } else {
                    &self.tls.opportunistic
                };
                let mut client = match relay.tls {
                    RelayTls::Implicit => {
                        Client::connect_tls(addr, self.timeouts(), connector, name.clone()).await?
                    }
                    _ => Client::connect(addr, self.timeouts()).await?,
                };
                client.hello(&self.ehlo).await?;
                if relay.tls == RelayTls::StartTls {
                    if !client.caps.has(client::STARTTLS) {
                        return Err(ClientError::Io(format!(
                            "{} does not offer STARTTLS, which the route requires",
                            hop.host
                        )));
                    }
                    client.starttls(connector, name).await?;
                    client.hello(&self.ehlo).await?;
                }
                if let (Some(user), Some(file)) = (&relay.username, &relay.password_file) {
                    let Some(password) = self.passwords.get(file) else {
                        return Err(ClientError::Io("relay password not loaded".into()));
                    };
                    if !client.caps.has(client::AUTH) {
                        return Err(ClientError::Io(format!("{} does not offer AUTH", hop.host)));
                    }
                    client.auth(user, password).await?;
                }
                Ok(client)
            }
        }
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

    /// Records the results of one job: delivered, deferred with backoff, or failed (after expiry
    /// too) with a DSN; a "delayed" DSN once the message is old enough.
    async fn settle(&self, job: Job, results: Vec<Result<Accepted, Failure>>) {
        let now = unix_now();
        let m = &job.message;
        let mut outcomes = Vec::with_capacity(results.len());
        let mut bounced: Vec<(&QueuedRecipient, Failure)> = Vec::new();
        let mut delayed: Vec<(&QueuedRecipient, Failure, i64)> = Vec::new();
        let mut relayed: Vec<DsnRecipient> = Vec::new();
        for (rcpt, result) in job.recipients.iter().zip(results) {
            match result {
                Ok(accepted) => {
                    info!(queue_id = %m.id, rcpt = %rcpt.address, attempts = rcpt.attempts + 1, reply = %accepted.reply, "outbound: delivered");
                    if rcpt.notify.wants_success() && !accepted.notifies {
                        relayed.push(DsnRecipient {
                            address: rcpt.address.clone(),
                            orcpt: rcpt.orcpt.clone(),
                            status: "2.0.0".into(),
                            diagnostic: Some(accepted.reply.clone()),
                            reason: String::new(),
                            remote_mta: Some(accepted.host),
                            last_attempt: now,
                            retry_until: None,
                        });
                    }
                    outcomes.push((rcpt.id, AttemptOutcome::Delivered(accepted.reply)));
                }
                Err(f) if f.permanent || now >= rcpt.expires_at => {
                    let f = if f.permanent {
                        f
                    } else {
                        // RFC 3463 X.4.7: delivery time expired.
                        Failure {
                            permanent: true,
                            status: "5.4.7".into(),
                            reason: format!(
                                "gave up after {} attempts; last error: {}",
                                rcpt.attempts + 1,
                                f.text()
                            ),
                            ..f
                        }
                    };
                    info!(queue_id = %m.id, rcpt = %rcpt.address, status = %f.status, error = %f.text(), "outbound: failed permanently");
                    bounced.push((rcpt, f));
                }
                Err(f) => {
                    let delay = self.config.retry_delay(rcpt.attempts + 1);
                    let next = now.saturating_add(secs(delay)).min(rcpt.expires_at);
                    info!(queue_id = %m.id, rcpt = %rcpt.address, error = %f.text(), retry_in = next - now, "outbound: deferred");
                    delayed.push((rcpt, f, next));
                }
            }
        }
        let mut bytes = None;
        if !bounced.is_empty() {
            let wanted: Vec<_> = bounced
                .iter()
                .filter(|(r, _)| r.notify.wants_failure())
                .collect();
            let sent = if m.mail_from.is_none() || wanted.is_empty() {
                Ok(())
            } else if !m.sender_trust.may_receive_failure_reports() {
                // Forwarded mail whose sender failed SPF or DMARC: the reverse-path is probably
                // forged, and a bounce would be backscatter to whoever owns it.
                info!(queue_id = %m.id, trust = ?m.sender_trust, "outbound: failure DSN not sent: the sender failed SPF or DMARC");
                Ok(())
            } else {
                let original = self.original(m, &mut bytes).await;
                let recipients = wanted
                    .iter()
                    .map(|(r, f)| dsn_recipient(r, f, now, None))
                    .collect();
                self.send_dsn(m, DsnKind::Failed, recipients, &original)
                    .await
            };
            for (rcpt, f) in &bounced {
                outcomes.push(match &sent {
                    Ok(()) => (rcpt.id, AttemptOutcome::Failed(f.text())),
                    // No DSN stored: keep the recipient and try (and bounce) again later.
                    Err(e) => (
                        rcpt.id,
                        AttemptOutcome::Deferred {
                            error: format!("{}; DSN not stored: {e}", f.text()),
                            next_attempt: now.saturating_add(secs(self.config.retry_initial)),
                        },
                    ),
                });
            }
        }
        if !relayed.is_empty()
            && m.mail_from.is_some()
            && !m.sender_trust.may_receive_success_reports()
        {
            // RFC 3461 §5.2.2: a courtesy we decline for a reverse-path nobody proved, which
            // would otherwise get reports of mail it never sent.
            info!(queue_id = %m.id, trust = ?m.sender_trust, "outbound: \"relayed\" DSN not sent: the sender is neither authenticated nor SPF-verified");
        } else if !relayed.is_empty() && m.mail_from.is_some() {
            // RFC 3461 §5.2.2: NOTIFY=SUCCESS and a next hop without DSN: "relayed" is the last
            // word. The recipients are delivered whatever happens to this report.
            let original = self.original(m, &mut bytes).await;
            if let Err(e) = self.send_dsn(m, DsnKind::Relayed, relayed, &original).await {
                warn!(queue_id = %m.id, error = %e, "outbound: \"relayed\" DSN not stored; dropped");
            }
        }
        let mut delay_notified = false;
        let warn_after = secs(self.config.delay_warning);
        if !delayed.is_empty()
            && warn_after > 0
            && !m.delay_notified
            && m.mail_from.is_some()
            // As for failures: no backscatter to a reverse-path that failed SPF or DMARC.
            && m.sender_trust.may_receive_failure_reports()
            && now - m.created_at >= warn_after
        {
            let recipients: Vec<DsnRecipient> = delayed
                .iter()
                .filter(|(r, _, _)| r.notify.wants_delay())
                .map(|(r, f, _)| dsn_recipient(r, f, now, Some(r.expires_at)))
                .collect();
            if !recipients.is_empty() {
                let original = self.original(m, &mut bytes).await;
                delay_notified = self
                    .send_dsn(m, DsnKind::Delayed, recipients, &original)
                    .await
                    .is_ok();
            }
        }
        for (rcpt, f, next) in delayed {
            outcomes.push((
                rcpt.id,
                AttemptOutcome::Deferred {
                    error: f.text(),
                    next_attempt: next,
                },
            ));
        }
        match self
            .store
            .queue_complete(&self.node, m.id, outcomes, delay_notified)
            .await
        {
            Ok(true) => info!(queue_id = %m.id, "outbound: message done, removed from the queue"),
            Ok(false) => {}
            // The lease runs out and the attempt is repeated: a duplicate at worst, never a loss.
            Err(e) => warn!(queue_id = %m.id, error = %e, "outbound: cannot record results"),
        }
    }

    async fn original(&self, m: &QueuedMessage, cache: &mut Option<Bytes>) -> Bytes {
        if let Some(b) = cache {
            return b.clone();
        }
        let b = self.message_bytes(m).await.unwrap_or_default();
        *cache = Some(b.clone());
        b
    }

    /// Delivers a DSN to the envelope sender through the pipeline (local mailbox or this queue).
    async fn send_dsn(
        &self,
        m: &QueuedMessage,
        kind: DsnKind,
        recipients: Vec<DsnRecipient>,
        original: &[u8],
    ) -> Result<(), String> {
        let Some(sender) = m.mail_from.as_deref() else {
            return Ok(());
        };
        let dsn = Dsn {
            kind,
            reporting_mta: &self.hostname,
            to: sender,
            env_id: m.env_id.as_deref(),
            arrival: m.created_at,
            recipients,
            original,
            ret: m.ret,
            sender_trust: m.sender_trust,
        };
        dsn::send(
            &self.pipeline,
            &self.dsn_limiter,
            &dsn,
            format!("dsn-{}", m.id),
        )
        .await
    }
}

fn dsn_recipient(r: &QueuedRecipient, f: &Failure, now: i64, until: Option<i64>) -> DsnRecipient {
    DsnRecipient {
        address: r.address.clone(),
        orcpt: r.orcpt.clone(),
        status: f.status.clone(),
        diagnostic: f.reply.clone(),
        reason: f.reason.clone(),
        remote_mta: f.remote.clone(),
        last_attempt: now,
        retry_until: until,
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// TLS server name: the host name, or the IP address for an address literal.
fn server_name(host: &str, ip: IpAddr) -> ServerName<'static> {
    ServerName::try_from(host.to_owned()).unwrap_or(ServerName::IpAddress(ip.into()))
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
