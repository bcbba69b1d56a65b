//! Command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tern",
    version,
    about = "Tern: a complete mail server in one binary"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file. Without one (and without /etc/tern/tern.toml) Tern uses its
    /// loopback-only development profile.
    #[arg(long, short = 'c', global = true, env = "TERN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory; overrides the configuration's `data_dir`.
    #[arg(long, global = true, env = "TERN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the mail server.
    Serve(ServeArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage the domains Tern receives mail for.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage aliases (one address delivered to one or more others).
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Inspect and steer the outbound queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Train the spam classifier.
    #[command(subcommand)]
    Spam(SpamCommand),
    /// Manage DKIM signing keys.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// Check the installation and say what to do about each problem found.
    Doctor(DoctorArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Repair what is safe to repair (file modes of the data directory) and say what was done.
    #[arg(long)]
    pub fix: bool,
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Create an RSA-2048 and an Ed25519 key for DOMAIN and print the DNS TXT records to publish.
    Generate {
        domain: String,
        /// Selector; the DNS names are <SELECTOR>-rsa._domainkey.DOMAIN and
        /// <SELECTOR>-ed._domainkey.DOMAIN. Default: the configuration's mail_auth.dkim_selector
        /// ("tern").
        #[arg(long)]
        selector: Option<String>,
    },
    /// Print the DNS TXT records of DOMAIN's keys again.
    Show { domain: String },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Log line format; overrides the configuration's `log_format`.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// Keep running as root when started as root and no `user` is configured; the same as
    /// `allow_root = true`, for the configuration-less development profile.
    #[arg(long)]
    pub allow_root: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file and report every error in it.
    Check {
        /// The file to check (default: the configuration `tern` would use).
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Add a local domain.
    Add { name: String },
    /// List local domains.
    List,
    /// Remove a local domain (it must have no users or aliases left).
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from this file (first line). Without it Tern prompts on a terminal,
    /// or reads one line from standard input.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account.
    Add {
        address: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List accounts, optionally of one domain.
    List { domain: Option<String> },
    /// Change an account's password; its open sessions end within seconds.
    Passwd {
        address: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Disable an account: every login is refused and its open sessions end within seconds
    /// (mail to it is still delivered).
    Disable { address: String },
    /// Enable a disabled account again.
    Enable { address: String },
    /// Remove an account and all its mail.
    Remove { address: String },
    /// Manage the addresses an account may send as besides its own and its sub-addresses
    /// (MAIL FROM, and From:/Sender: of what it submits).
    #[command(subcommand)]
    SendAs(SendAsCommand),
}

#[derive(Debug, Subcommand)]
pub enum SendAsCommand {
    /// Let ACCOUNT send as ADDRESS. ADDRESS must be in a hosted domain; an alias reaching the
    /// account is not a sender identity until it is added here.
    Add { account: String, address: String },
    /// Stop ACCOUNT from sending as ADDRESS.
    Remove { account: String, address: String },
    /// List the addresses ACCOUNT may send as besides its own.
    List { account: String },
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Deliver mail for SOURCE to TARGET (local or external); repeat to add more targets.
    Add { source: String, target: String },
    /// List aliases, optionally of one domain.
    List { domain: Option<String> },
    /// Remove an alias (all its targets, or only TARGET).
    Remove {
        source: String,
        target: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued messages with their pending recipients and next attempt.
    List,
    /// Show one queued message: every recipient with its state, attempts and last error.
    Show { id: i64 },
    /// Make the pending recipients of one message due now.
    Retry { id: i64 },
    /// Remove a message from the queue without sending a DSN.
    Delete { id: i64 },
    /// Make every pending recipient due now.
    Flush,
}

#[derive(Debug, Subcommand)]
pub enum SpamCommand {
    /// Learn hand-sorted mail: Maildir folders, mbox files or directories of .eml files.
    Train {
        /// Spam to learn (repeatable).
        #[arg(long)]
        spam: Vec<PathBuf>,
        /// Wanted mail to learn (repeatable).
        #[arg(long)]
        ham: Vec<PathBuf>,
        /// Train this account's own classifier instead of the site-wide one.
        #[arg(long)]
        account: Option<String>,
    },
}
