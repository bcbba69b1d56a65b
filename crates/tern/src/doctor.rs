//! `tern doctor`: checks an installation and says, for each problem, what is wrong and what to
//! do; `--fix` repairs what can be repaired without judgement and says what it did. Exits
//! non-zero while a problem remains, so scripts and package hooks can rely on it.
//!
//! Checked so far: the configuration, the data directory's file modes (security issue 17:
//! mail, password hashes and DKIM keys belong to the tern user alone) and the free space of
//! its volume.

use std::fmt::Display;

use anyhow::bail;
use tern_common::disk::FreeSpace;

use crate::cli::{DoctorArgs, GlobalArgs};
use crate::{perms, settings};

/// At most this many paths are named per problem; the count says how many there are.
const SHOW_PATHS: usize = 10;

/// What the checks found, printed as it is found.
#[derive(Default)]
struct Report {
    problems: usize,
}

impl Report {
    fn ok(&mut self, what: impl Display) {
        println!("ok       {what}");
    }

    fn fixed(&mut self, what: impl Display) {
        println!("fixed    {what}");
    }

    fn problem(&mut self, what: impl Display) {
        self.problems += 1;
        println!("PROBLEM  {what}");
    }
}

pub fn run(global: &GlobalArgs, args: &DoctorArgs) -> anyhow::Result<()> {
    let config = settings::load(global)?;
    let mut report = Report::default();
    report.ok(format_args!(
        "configuration: {} listeners, {} domains, data in {}",
        config.listeners.len(),
        config.domains.len(),
        config.data_dir.display()
    ));
    let data_dir = &config.data_dir;
    if !data_dir.exists() {
        report.ok(format_args!(
            "data directory {} does not exist yet; tern serve creates it",
            data_dir.display()
        ));
    } else {
        modes(&mut report, data_dir, args.fix)?;
        match FreeSpace::new(data_dir, config.limits.min_free_space).check() {
            Ok(()) => report.ok("free space on the data volume is above limits.min_free_space"),
            Err(low) => report.problem(format_args!(
                "{low}: new mail is refused with temporary errors; free some space, move \
                 data_dir to a larger volume or lower limits.min_free_space"
            )),
        }
    }
    if report.problems > 0 {
        bail!(
            "{} problem{} found",
            report.problems,
            if report.problems == 1 { "" } else { "s" }
        );
    }
    println!("no problems found");
    Ok(())
}

/// Files and directories under the data directory must not be open to group or others.
fn modes(report: &mut Report, data_dir: &std::path::Path, fix: bool) -> anyhow::Result<()> {
    let (open, seen) = perms::open_entries(data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the data directory {}: {e}; run tern doctor as its owner or as root",
            data_dir.display()
        )
    })?;
    if open.is_empty() {
        report.ok(format_args!(
            "data directory {}: {seen} files and directories, none open to other users",
            data_dir.display()
        ));
        return Ok(());
    }
    let listed: Vec<String> = open
        .iter()
        .take(SHOW_PATHS)
        .map(|e| format!("  {:03o} {}", e.mode, e.path.display()))
        .collect();
    let more = open.len().saturating_sub(SHOW_PATHS);
    let listing = if more > 0 {
        format!("{}\n  … and {more} more", listed.join("\n"))
    } else {
        listed.join("\n")
    };
    if !fix {
        report.problem(format_args!(
            "{} of {seen} entries in the data directory are open to other users of this \
             machine (mail, password hashes, DKIM keys); run tern doctor --fix to make \
             directories 0700 and files 0600:\n{listing}",
            open.len()
        ));
        return Ok(());
    }
    let mut failed = Vec::new();
    for entry in &open {
        if let Err(e) = perms::restrict(entry) {
            failed.push(format!("  {}: {e}", entry.path.display()));
        }
    }
    let done = open.len() - failed.len();
    if done > 0 {
        report.fixed(format_args!(
            "took group and other permissions from {done} entries in the data directory \
             (directories 0700, files 0600 at most):\n{listing}"
        ));
    }
    if !failed.is_empty() {
        report.problem(format_args!(
            "could not restrict {} entries; run tern doctor --fix as their owner or as root:\n{}",
            failed.len(),
            failed.join("\n")
        ));
    }
    Ok(())
}
