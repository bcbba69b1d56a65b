//! Which protocol service answers on which listener.

use std::sync::Arc;

use anyhow::Context;
use tern_common::config::{Config, Protocol};
use tern_common::listener::{BoundSocket, Runtime};
use tern_common::tls::TlsStore;
use tern_directory::Directory;
use tern_store::Store;
use tracing::warn;

/// Everything the protocol services are built from.
pub struct Services {
    smtp: Arc<tern_smtp::SmtpContext>,
    imap: Arc<tern_imap::ImapContext>,
    pop3: Arc<tern_pop3::Pop3Context>,
}

impl Services {
    pub fn new(
        config: &Config,
        store: &Store,
        directory: &Directory,
        tls: &TlsStore,
    ) -> anyhow::Result<Self> {
        let pipeline =
            tern_delivery::Pipeline::new(store.clone(), directory.clone(), config.hostname.clone())
                .with_queue_expiry(config.outbound.expire)
                // Every stored message gets the cache IMAP FETCH and SEARCH read.
                .with_message_cache(tern_imap::message::summarize);
        let filter = filter(config, store);
        let pipeline = pipeline.with_filter(filter.clone());
        let pipeline = mail_auth(config, pipeline)?;
        // One spool directory and one memory budget for the message text of every listener.
        let spooling = tern_common::body::Spooling::from_config(config)
            .context("cannot open the spool directory")?;
        Ok(Services {
            smtp: Arc::new(tern_smtp::SmtpContext::from_config(
                config,
                pipeline,
                directory.clone(),
                Some(tls.acceptor()),
                spooling.clone(),
            )),
            imap: Arc::new(tern_imap::ImapContext {
                // Moves into and out of Junk train the classifier (learn-on-move).
                filter: Some(filter),
                ..tern_imap::ImapContext::from_config(
                    config,
                    store.clone(),
                    directory.clone(),
                    Some(tls.acceptor()),
                    spooling,
                )
            }),
            pop3: Arc::new(tern_pop3::Pop3Context::from_config(
                config,
                store.clone(),
                directory.clone(),
                Some(tls.acceptor()),
            )),
        })
    }

    /// The outbound queue worker; it delivers DSNs through the same pipeline as SMTP.
    pub fn outbound(&self, config: &Config) -> anyhow::Result<Arc<tern_smtp::outbound::Outbound>> {
        let outbound = tern_smtp::outbound::Outbound::from_config(
            config,
            self.smtp.pipeline.clone(),
            // One cap on DSNs per domain for the sessions and the worker.
            Arc::clone(&self.smtp.dsn_limiter),
        )
        .map_err(anyhow::Error::msg)
        .context("cannot set up outbound delivery")?;
        Ok(Arc::new(outbound))
    }

    /// Hands each socket bound by [`bind_all`] to the service of its protocol.
    pub fn serve_all(&self, sockets: Vec<BoundSocket>, runtime: &mut Runtime) {
        for socket in sockets {
            match socket.config().protocol {
                Protocol::Smtp | Protocol::Submission | Protocol::Submissions | Protocol::Lmtp => {
                    runtime.add(
                        socket,
                        tern_smtp::REFUSAL,
                        tern_smtp::service(Arc::clone(&self.smtp)),
                    )
                }
                Protocol::Imap | Protocol::Imaps => runtime.add(
                    socket,
                    tern_imap::REFUSAL,
                    tern_imap::service(Arc::clone(&self.imap)),
                ),
                Protocol::Pop3 | Protocol::Pop3s => runtime.add(
                    socket,
                    tern_pop3::REFUSAL,
                    tern_pop3::service(Arc::clone(&self.pop3)),
                ),
                // `bind_all` binds no other protocol; were it to, the socket is closed here.
                other => {
                    warn!(protocol = other.as_str(), "no service for this protocol");
                    continue;
                }
            };
        }
    }
}

/// Binds every configured listener whose protocol this build serves, before anything else is
/// opened (privileged ports need root, which `tern serve` gives up right after); bind errors
/// (port in use, permission) stop the start-up, naming the listener.
pub async fn bind_all(config: &Config) -> anyhow::Result<Vec<BoundSocket>> {
    let mut sockets = Vec::new();
    for listener in &config.listeners {
        match listener.protocol {
            Protocol::Smtp
            | Protocol::Submission
            | Protocol::Submissions
            | Protocol::Lmtp
            | Protocol::Imap
            | Protocol::Imaps
            | Protocol::Pop3
            | Protocol::Pop3s => {
                // The socket logs its bound address ("listening").
                let socket = BoundSocket::bind(listener)
                    .await
                    .with_context(|| format!("listener {}", listener.name))?;
                sockets.push(socket);
            }
            _ => warn!(
                listener = %listener.name,
                protocol = listener.protocol.as_str(),
                bind = %listener.bind,
                "protocol not available in this build; listener not started"
            ),
        }
    }
    Ok(sockets)
}

/// Email authentication (issue 7): DKIM keys from the data directory for signing and ARC sealing,
/// and the verifier on the shared resolver settings. A broken key file stops the start-up (mail
/// would silently go out unsigned otherwise); a domain without keys is logged.
fn mail_auth(
    config: &Config,
    pipeline: tern_delivery::Pipeline,
) -> anyhow::Result<tern_delivery::Pipeline> {
    let settings = &config.mail_auth;
    let mut pipeline = pipeline;
    if settings.sign {
        let signers = tern_delivery::DkimSigners::load(&config.data_dir, &settings.dkim_selector)
            .context("cannot load the DKIM keys")?;
        for domain in &config.domains {
            if signers.signing_domain(domain).is_none() {
                tracing::info!(
                    domain = %domain,
                    "no DKIM key: mail from this domain is sent unsigned (tern dkim generate)"
                );
            }
        }
        pipeline = pipeline.with_dkim(signers);
    }
    if settings.verify {
        let resolver = tern_common::dns::resolver(&config.dns)
            .context("cannot set up the resolver for mail authentication")?;
        pipeline = pipeline.with_authenticator(tern_delivery::Authenticator::new(
            resolver,
            settings.clone(),
            &config.hostname,
        ));
    }
    Ok(pipeline)
}

/// The spam and virus filter of the delivery pipeline (issue 8), with the shared resolver for DNSBL
/// zones when any are configured.
fn filter(config: &Config, store: &Store) -> tern_filter::Filter {
    let settings = &config.filter;
    let filter = tern_filter::Filter::new(
        settings.clone(),
        store.clone(),
        &config.hostname,
        &config.domains,
    );
    if settings.clamd.is_none() {
        tracing::info!("no clamd configured (filter.clamd): messages are not virus-scanned");
    }
    if settings.dnsbl_zones.is_empty() {
        return filter;
    }
    match tern_common::dns::shared_resolver(&config.dns) {
        Ok(resolver) => filter.with_dns(Arc::new(tern_filter::ResolverLookup(resolver))),
        Err(e) => {
            warn!(error = %e, "DNSBL zones configured but no resolver; they are not queried");
            filter
        }
    }
}
