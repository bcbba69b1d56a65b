//! Finding the configuration and opening the store and directory it names.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tern_common::config::{Config, StoreUrl};
use tern_directory::{Directory, DirectoryConfig};
use tern_store::{Store, StoreError, StoreOptions, StoreRole};

use crate::cli::GlobalArgs;

/// Where an installed Tern keeps its configuration when `--config` is not given.
const SYSTEM_CONFIG: &str = "/etc/tern/tern.toml";
/// The development profile's data directory, relative to the working directory.
const DEV_DATA_DIR: &str = "./tern-data";

/// The configuration file to use: `--config`/`$TERN_CONFIG`, else the system file when it
/// exists, else none (the development profile).
fn config_path(global: &GlobalArgs) -> Option<PathBuf> {
    global.config.clone().or_else(|| {
        Path::new(SYSTEM_CONFIG)
            .exists()
            .then(|| PathBuf::from(SYSTEM_CONFIG))
    })
}

/// Loads and validates the configuration, applying `--data-dir`.
pub fn load(global: &GlobalArgs) -> anyhow::Result<Config> {
    let mut config = match config_path(global) {
        Some(path) => Config::load(&path).map_err(|errors| anyhow::anyhow!("{errors}"))?,
        None => Config::development(PathBuf::from(DEV_DATA_DIR)),
    };
    if let Some(dir) = &global.data_dir {
        // The default database lives inside the data directory and moves with it.
        if config.store == StoreUrl::Sqlite(config.data_dir.join("tern.db")) {
            config.store = StoreUrl::Sqlite(dir.join("tern.db"));
        }
        config.data_dir = dir.clone();
    }
    Ok(config)
}

/// [`load`] for an admin command: started as root, it then acts as the owner of the data
/// directory (see [`crate::privileges::act_as_data_dir_owner`]).
pub fn load_as_owner(global: &GlobalArgs) -> anyhow::Result<Config> {
    let config = load(global)?;
    crate::privileges::act_as_data_dir_owner(&config.data_dir)?;
    Ok(config)
}

/// `tern config check [FILE]`: prints every error, or a one-line summary.
pub fn check(global: &GlobalArgs, file: Option<PathBuf>) -> anyhow::Result<()> {
    let Some(path) = file.or_else(|| config_path(global)) else {
        bail!("no configuration file given (and {SYSTEM_CONFIG} does not exist)");
    };
    match Config::load(&path) {
        Ok(config) => {
            println!(
                "{}: ok ({} listeners, {} domains, data in {})",
                path.display(),
                config.listeners.len(),
                config.domains.len(),
                config.data_dir.display()
            );
            Ok(())
        }
        Err(errors) => bail!("{} has errors:\n{errors}", path.display()),
    }
}

/// Opens the configured store. `tern serve` opens it as the [`StoreRole::Owner`] of the data
/// directory (a second server is refused); every admin command as a [`StoreRole::Client`], which
/// never touches the blob files the running server writes (security issue 17).
pub async fn open_store(config: &Config, role: StoreRole) -> anyhow::Result<Store> {
    let StoreUrl::Sqlite(db_path) = &config.store else {
        bail!("only the embedded SQLite store is supported so far");
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let mut options = StoreOptions::new(&config.data_dir);
    options.db_path = db_path.clone();
    options.role = role;
    match Store::open(options).await {
        Ok(store) => Ok(store),
        Err(StoreError::Locked { pid, .. }) => bail!(
            "the data directory {} is in use by another tern serve (pid {}); stop it first or \
             use another data_dir",
            config.data_dir.display(),
            pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
        ),
        Err(e) => Err(e)
            .with_context(|| format!("cannot open the store in {}", config.data_dir.display())),
    }
}

/// The directory over the store, opened as a client (admin commands).
pub async fn open_directory(config: &Config) -> anyhow::Result<Directory> {
    directory(open_store(config, StoreRole::Client).await?, config).await
}

/// The directory over `store`, with the configuration's domains present in it.
pub async fn directory(store: Store, config: &Config) -> anyhow::Result<Directory> {
    let directory = Directory::new(store, DirectoryConfig::from_auth(&config.auth))?;
    ensure_domains(&directory, config).await?;
    Ok(directory)
}

/// The configuration's `domains` are always local domains: added to the directory whenever
/// Tern opens it, so both `serve` and the admin commands see them.
async fn ensure_domains(directory: &Directory, config: &Config) -> anyhow::Result<()> {
    let known = directory.domains().await?;
    for name in &config.domains {
        if !known.iter().any(|d| &d.name == name) {
            directory.add_domain(name).await?;
            tracing::info!(domain = %name, "added local domain from the configuration");
        }
    }
    Ok(())
}
