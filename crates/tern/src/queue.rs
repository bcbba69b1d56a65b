//! `tern queue list|show|retry|delete|flush`: inspect and steer the outbound queue on the configured
//! store. A running server picks up `retry`/`flush` at its next poll (`outbound.poll_interval`).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tern_store::{QueueEntry, QueueId, QueueStatus, StoreError, StoreRole};

use crate::cli::{GlobalArgs, QueueCommand};
use crate::settings;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `2026-11-24 20:14:05 UTC`-style text for unix seconds (UTC, no time zone database needed).
fn time(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn not_found(id: i64) -> anyhow::Error {
    anyhow::anyhow!("no queued message {id}")
}

pub async fn run(global: &GlobalArgs, cmd: QueueCommand) -> anyhow::Result<()> {
    let config = settings::load_as_owner(global)?;
    let store = settings::open_store(&config, StoreRole::Client).await?;
    let result = command(&store, cmd).await;
    store.close().await;
    result
}

async fn command(store: &tern_store::Store, cmd: QueueCommand) -> anyhow::Result<()> {
    match cmd {
        QueueCommand::List => {
            let entries = store.queue_list().await?;
            for e in &entries {
                let pending: Vec<&str> = e
                    .recipients
                    .iter()
                    .filter(|r| r.status == QueueStatus::Pending)
                    .map(|r| r.address.as_str())
                    .collect();
                let next = e
                    .recipients
                    .iter()
                    .filter(|r| r.status == QueueStatus::Pending)
                    .map(|r| r.next_attempt)
                    .min()
                    .map_or_else(|| "-".to_owned(), time);
                println!(
                    "{}\t{}\t{} B\t<{}>\tnext {}\t{}",
                    e.message.id,
                    time(e.message.created_at),
                    e.message.size,
                    e.message.mail_from.as_deref().unwrap_or(""),
                    next,
                    pending.join(", ")
                );
            }
            let stats = store.queue_stats().await?;
            println!(
                "{} message(s), {} recipient(s) pending",
                stats.messages, stats.pending
            );
        }
        QueueCommand::Show { id } => {
            let entry = store
                .queue_entry(QueueId(id))
                .await?
                .ok_or_else(|| not_found(id))?;
            show(&entry);
        }
        QueueCommand::Retry { id } => {
            let n = store
                .queue_retry(Some(QueueId(id)), now())
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => not_found(id),
                    e => e.into(),
                })?;
            println!("message {id}: {n} recipient(s) due now");
        }
        QueueCommand::Delete { id } => {
            store
                .queue_delete(QueueId(id))
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => not_found(id),
                    e => e.into(),
                })
                .with_context(|| format!("cannot delete message {id}"))?;
            println!("deleted message {id} (no DSN sent)");
        }
        QueueCommand::Flush => {
            let n = store.queue_retry(None, now()).await?;
            println!("{n} recipient(s) due now");
        }
    }
    Ok(())
}

fn show(e: &QueueEntry) {
    let m = &e.message;
    println!("id:            {}", m.id);
    println!("from:          <{}>", m.mail_from.as_deref().unwrap_or(""));
    println!("queued:        {}", time(m.created_at));
    println!("size:          {} B", m.size);
    println!("smtputf8:      {}", m.smtputf8);
    println!("8bit:          {}", m.eight_bit);
    println!(
        "delay notice:  {}",
        if m.delay_notified { "sent" } else { "no" }
    );
    for r in &e.recipients {
        println!();
        println!("recipient:     <{}>", r.address);
        println!("status:        {}", r.status);
        println!("attempts:      {}", r.attempts);
        println!("next attempt:  {}", time(r.next_attempt));
        println!("expires:       {}", time(r.expires_at));
        if let Some(err) = &r.last_error {
            println!("last error:    {err}");
        }
        if let (Some(owner), Some(until)) = (&r.lease_owner, r.lease_until) {
            println!("leased to:     {owner} until {}", time(until));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_print_as_utc_dates() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_795_551_245), "2026-11-24 20:14:05 UTC");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
