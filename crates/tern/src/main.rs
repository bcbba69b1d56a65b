//! `tern`: the mail server binary and its administration CLI.
//!
//! Implementation notes:
//! - Every subcommand finds its configuration the same way ([`settings::load`]) so that
//!   `tern user add` works on the very store `tern serve` uses.
//! - Passwords never come from the command line (they would show up in `ps` and shell
//!   history): a prompt, `--password-file`, or standard input.
#![forbid(unsafe_code)]

mod admin;
mod cli;
mod dkim;
mod doctor;
mod logging;
mod password;
mod perms;
mod privileges;
mod queue;
mod serve;
mod services;
mod settings;
mod spam;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Everything tern creates — the data directory, the database and its log, blob and spool
    // files, DKIM keys — is for the tern user alone, also files that SQLite or an admin
    // command creates and whatever a later change forgets to give an explicit mode.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tern: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Serve(args) => serve::run(&cli.global, args).await,
        cli::Command::Config(cli::ConfigCommand::Check { file }) => {
            settings::check(&cli.global, file)
        }
        cli::Command::Domain(cmd) => admin::domain(&cli.global, cmd).await,
        cli::Command::User(cmd) => admin::user(&cli.global, cmd).await,
        cli::Command::Alias(cmd) => admin::alias(&cli.global, cmd).await,
        cli::Command::Queue(cmd) => queue::run(&cli.global, cmd).await,
        cli::Command::Spam(cmd) => spam::run(&cli.global, cmd).await,
        cli::Command::Dkim(cmd) => dkim::run(&cli.global, cmd),
        cli::Command::Doctor(args) => doctor::run(&cli.global, &args),
    }
}
