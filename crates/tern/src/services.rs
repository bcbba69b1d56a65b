//! Which protocol service answers on which listener.

use std::sync::Arc;

use anyhow::Context;
use tern_common::config::{Config, Protocol};
use tern_common::listener::Runtime;
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
    pub fn new(config: &Config, store: &Store, directory: &Directory, tls: &TlsStore) -> Self {
        let pipeline =
            tern_delivery::Pipeline::new(store.clone(), directory.clone(), config.hostname.clone())
                .with_queue_expiry(config.outbound.expire);
        let filter = filter(config, store);
        let pipeline = pipeline.with_filter(filter.clone());
        Services {
            smtp: Arc::new(tern_smtp::SmtpContext::from_config(
                config,
                pipeline,
                directory.clone(),
                Some(tls.acceptor()),
            )),
            imap: Arc::new(tern_imap::ImapContext {
                // Moves into and out of Junk train the classifier (learn-on-move).
                filter: Some(filter),
                ..tern_imap::ImapContext::from_config(
                    config,
                    store.clone(),
                    directory.clone(),
                    Some(tls.acceptor()),
                )
            }),
            pop3: Arc::new(tern_pop3::Pop3Context::from_config(
                config,
                store.clone(),
                directory.clone(),
                Some(tls.acceptor()),
            )),
        }
    }

    /// The outbound queue worker; it delivers DSNs through the same pipeline as SMTP.
    pub fn outbound(&self, config: &Config) -> anyhow::Result<Arc<tern_smtp::outbound::Outbound>> {
        let outbound =
            tern_smtp::outbound::Outbound::from_config(config, self.smtp.pipeline.clone())
                .map_err(anyhow::Error::msg)
                .context("cannot set up outbound delivery")?;
        Ok(Arc::new(outbound))
    }

    /// Binds every configured listener whose protocol this build serves; bind errors (port in
    /// use, permission) stop the start-up, naming the listener.
    pub async fn bind_all(&self, config: &Config, runtime: &mut Runtime) -> anyhow::Result<()> {
        for listener in &config.listeners {
            let bound = match listener.protocol {
                Protocol::Smtp | Protocol::Submission | Protocol::Submissions | Protocol::Lmtp => {
                    Some(
                        runtime
                            .bind(
                                listener,
                                tern_smtp::REFUSAL,
                                tern_smtp::service(Arc::clone(&self.smtp)),
                            )
                            .await,
                    )
                }
                Protocol::Imap | Protocol::Imaps => Some(
                    runtime
                        .bind(
                            listener,
                            tern_imap::REFUSAL,
                            tern_imap::service(Arc::clone(&self.imap)),
                        )
                        .await,
                ),
                Protocol::Pop3 | Protocol::Pop3s => Some(
                    runtime
                        .bind(
                            listener,
                            tern_pop3::REFUSAL,
                            tern_pop3::service(Arc::clone(&self.pop3)),
                        )
                        .await,
                ),
                _ => None,
            };
            match bound {
                // The runtime logs each bound address ("listening").
                Some(result) => {
                    result.with_context(|| format!("listener {}", listener.name))?;
                }
                None => warn!(
                    listener = %listener.name,
                    protocol = listener.protocol.as_str(),
                    bind = %listener.bind,
                    "protocol not available in this build; listener not started"
                ),
            }
        }
        Ok(())
    }
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
