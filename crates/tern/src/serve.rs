//! `tern serve`: bind the listeners, give root up, open the store, prepare TLS and run until
//! SIGTERM/SIGINT.

use std::io::Write;

use anyhow::Context;
use tern_common::Secret;
use tern_common::config::{Config, LogFormat};
use tern_common::listener::Runtime;
use tern_common::tls::TlsStore;
use tern_directory::Directory;
use tern_store::StoreRole;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use crate::cli::{GlobalArgs, LogFormatArg, ServeArgs};
use crate::services::{self, Services};
use crate::{password, privileges, settings};

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    let mut config = settings::load(global)?;
    if let Some(format) = args.log_format {
        config.log_format = match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    config.allow_root |= args.allow_root;
    init_tracing(config.log_format);

    // Signals first: from here on SIGTERM means a clean shutdown, never the default kill.
    let mut hangup = signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;

    // Decided before anything is bound: a missing user must not leave ports taken.
    let plan = privileges::plan(&config)?;
    raise_file_limit(&config);
    // Bind (as root if started so), give root up, and only then open the store, read keys and
    // accept: the kernel queues early connections, nothing reads them before `runtime.run()`.
    let sockets = services::bind_all(&config).await?;
    match &plan {
        privileges::Plan::Switch(account) => {
            privileges::prepare_data_dir(&config.data_dir, account)?;
            privileges::switch_to(account)?;
            info!(user = %account.name, uid = %account.uid, "gave up root after binding");
        }
        privileges::Plan::Stay { root: true } => warn!(
            "running as root (allow_root = true): every session parses network input with full \
             control of this machine; set user = \"tern\" instead"
        ),
        privileges::Plan::Stay { root: false } => {}
    }

    let store = settings::open_store(&config, StoreRole::Owner).await?;
    crate::perms::warn_if_shared(&config.data_dir);
    let directory = settings::directory(store.clone(), &config).await?;
    ensure_postmaster(&directory, &config).await?;
    // Read after the switch (also on SIGHUP), so the user must be able to read the key files.
    let tls = tls_store(&config)?;

    let mut runtime = Runtime::new(&config.limits);
    let services = Services::new(&config, &store, &directory, &tls)?;
    services.serve_all(sockets, &mut runtime);
    let outbound = services.outbound(&config)?;
    let shutdown = runtime.shutdown_token();
    let outbound = tokio::spawn(outbound.run(shutdown.clone()));
    // Ends the sessions of accounts whose password changed or that were disabled or removed,
    // by admin commands in other processes too (security issue 17).
    let sessions = tokio::spawn(directory.clone().watch_sessions(shutdown.clone()));
    let mut running = tokio::spawn(runtime.run());
    info!(data_dir = %config.data_dir.display(), "tern is running");

    loop {
        tokio::select! {
            _ = hangup.recv() => match tls.reload() {
                Ok(()) => info!("TLS certificates reloaded"),
                Err(e) => error!("TLS reload failed, keeping the previous certificates: {e}"),
            },
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = &mut running => anyhow::bail!("the listener runtime stopped unexpectedly"),
        }
    }
    info!("shutting down: no new connections, waiting for sessions to finish");
    shutdown.cancel();
    running.await.context("listener runtime failed")?;
    outbound.await.context("outbound queue worker failed")?;
    sessions.await.context("session watcher failed")?;
    store.close().await;
    info!("stopped");
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::logging::EscapedStderr)
        // No colour codes: the writer escapes every control character, the formatter's own
        // ESC sequences too, since it cannot tell them from a client's.
        .with_ansi(false);
    match format {
        LogFormat::Json => builder.json().init(),
        _ => builder.init(),
    }
}

/// Every connection is a file descriptor, and so are the store's files and connections; the
/// usual soft limit (1,024) is far below `limits.max_connections` (10,000 by default). Past it,
/// accepts fail and the store cannot open files (a delivery gets 451, an IDLE session misses
/// its update). Raise the soft limit as far as the hard limit allows, as servers do, and say
/// so when that is still short of the configured connections.
fn raise_file_limit(config: &Config) {
    // The store, listeners, logs and outbound connections on top of client connections.
    let wanted = config.limits.max_connections as u64 + 1_024;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < wanted => warn!(
            limit,
            max_connections = config.limits.max_connections,
            "the open-file limit (ulimit -n) is below what the connection limit needs; \
             raise the hard limit or lower limits.max_connections"
        ),
        Ok(_) => {}
        Err(e) => warn!("cannot raise the open-file limit: {e}"),
    }
}

/// On an empty directory, create `postmaster@<first domain>` and print its password once:
/// a new installation is usable at once and nothing ships with a default password.
async fn ensure_postmaster(directory: &Directory, config: &Config) -> anyhow::Result<()> {
    if !directory.users(None).await?.is_empty() {
        return Ok(());
    }
    let domain = config.domains.first().unwrap_or(&config.hostname);
    let address = format!("postmaster@{domain}");
    let secret = Secret::new(password::generate()?);
    directory
        .add_user(&address, &secret, Some("Postmaster"))
        .await
        .with_context(|| format!("cannot create {address}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Created account {address} with password {} (shown only this once).",
        secret.expose()
    )?;
    out.flush()?;
    Ok(())
}

fn tls_store(config: &Config) -> anyhow::Result<TlsStore> {
    TlsStore::from_config(&config.tls, &config.data_dir, &config.self_signed_names())
        .context("cannot set up TLS")
}
