//! `tern spam train`: teaches the classifier from mail sorted by hand — Maildir folders, mbox files,
//! or directories of single-message files (`.eml`) — site-wide or for one account.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tern_filter::{Filter, LearnOutcome, SpamClass, TokenScope};
use tern_store::StoreRole;

use crate::cli::{GlobalArgs, SpamCommand};
use crate::settings;

/// Messages per store transaction: large enough that a corpus of thousands commits a handful of
/// times, small enough to keep memory bounded.
const BATCH: usize = 500;

pub async fn run(global: &GlobalArgs, cmd: SpamCommand) -> anyhow::Result<()> {
    let config = settings::load_as_owner(global)?;
    let store = settings::open_store(&config, StoreRole::Client).await?;
    let result = match cmd {
        SpamCommand::Train { spam, ham, account } => {
            let filter = Filter::new(
                config.filter.clone(),
                store.clone(),
                &config.hostname,
                &config.domains,
            );
            train(&store, &filter, &spam, &ham, account.as_deref()).await
        }
    };
    store.close().await;
    result
}

async fn train(
    store: &tern_store::Store,
    filter: &Filter,
    spam: &[PathBuf],
    ham: &[PathBuf],
    account: Option<&str>,
) -> anyhow::Result<()> {
    let scope = match account {
        Some(address) => {
            let account = store
                .account_by_address(address)
                .await?
                .with_context(|| format!("no account {address}"))?;
            TokenScope::Account(account.id)
        }
        None => TokenScope::Global,
    };
    for (paths, class, name) in [
        (spam, SpamClass::Spam, "spam"),
        (ham, SpamClass::Ham, "ham"),
    ] {
        let mut files = Vec::new();
        for path in paths {
            collect(path, &mut files).with_context(|| format!("reading {}", path.display()))?;
        }
        let mut tally = [0usize; 4]; // learned, already, relearned, skipped
        let mut batch: Vec<Vec<u8>> = Vec::new();
        for file in &files {
            let data =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            if data.starts_with(b"From ") {
                batch.extend(split_mbox(&data));
            } else {
                batch.push(data);
            }
            if batch.len() >= BATCH {
                learn(filter, scope, class, &mut batch, &mut tally).await?;
            }
        }
        learn(filter, scope, class, &mut batch, &mut tally).await?;
        println!(
            "{name}: {} learned, {} already known, {} moved from the other class, {} skipped (no header)",
            tally[0], tally[1], tally[2], tally[3]
        );
    }
    Ok(())
}

async fn learn(
    filter: &Filter,
    scope: TokenScope,
    class: SpamClass,
    batch: &mut Vec<Vec<u8>>,
    tally: &mut [usize; 4],
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let messages: Vec<(&[u8], SpamClass)> = batch.iter().map(|m| (m.as_slice(), class)).collect();
    for outcome in filter.learn_batch(scope, &messages).await? {
        let i = match outcome {
            Some(LearnOutcome::Learned) => 0,
            Some(LearnOutcome::AlreadyLearned) => 1,
            Some(LearnOutcome::Relearned) => 2,
            None => 3,
        };
        tally[i] += 1;
    }
    batch.clear();
    Ok(())
}

/// Message files under `path`: the file itself, a Maildir's `cur/` and `new/`, or every regular file
/// below a directory (hidden files and Dovecot/Maildir metadata skipped), in name order.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        out.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Maildir's tmp/ holds half-written files; dot-names are metadata or hidden folders.
        if name.starts_with('.') || name == "tmp" {
            continue;
        }
        if entry.is_dir() {
            collect(&entry, out)?;
        } else if entry.is_file() {
            out.push(entry);
        }
    }
    Ok(())
}

/// Splits an mbox (mboxo/mboxrd): a message starts at a `From ` line at the start of the file or
/// after an empty line; `>From ` quoting is undone (one level, mboxrd).
fn split_mbox(data: &[u8]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if previous_blank && line.starts_with(b"From ") {
            messages.extend(current.take());
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        previous_blank = line == b"\n" || line == b"\r\n";
        if let Some(m) = current.as_mut() {
            let unquoted = match line.strip_prefix(b">") {
                Some(rest) if rest.trim_ascii_start().is_empty() => line,
                Some(rest) if rest.starts_with(b"From ") || rest.starts_with(b">") => rest,
                _ => line,
            };
            m.extend_from_slice(unquoted);
        }
    }
    messages.extend(current);
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_splits_at_from_lines_after_blank_lines_and_unquotes() {
        let mbox = b"From a@x Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n>From here\n\n\
From b@x Mon Jan  1 00:00:00 2024\nSubject: two\n\nbody\nFrom inside is not a separator\n";
        let m = split_mbox(mbox);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], b"Subject: one\n\nbody\nFrom here\n\n");
        assert_eq!(
            m[1],
            b"Subject: two\n\nbody\nFrom inside is not a separator\n"
        );
    }

    #[test]
    fn maildir_and_plain_directories_yield_message_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["cur/2", "new/1", "tmp/x", ".dovecot.index", "sub/3.eml"] {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"Subject: x\n\nx\n").unwrap();
        }
        let mut files = Vec::new();
        collect(dir.path(), &mut files).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["cur/2", "new/1", "sub/3.eml"]);
    }
}
