//! The memory budget for message text, shared by every SMTP and IMAP session of a
//! server.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits count KiB, not octets, so one `acquire_many` (which takes a `u32`) covers any
/// message, and a budget of terabytes still fits the semaphore.
const UNIT: u64 = 1024;

/// How many octets of message text all sessions together may hold in memory: the part of
/// each message below the spool threshold while it arrives, and whole messages while the
/// delivery pipeline has them. Clones share one budget.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    units: u64,
}

impl MemoryBudget {
    /// A budget of `bytes` octets (rounded up to whole KiB, at least one).
    pub fn new(bytes: u64) -> MemoryBudget {
        // The semaphore's limit is `usize::MAX >> 3` permits, far above any real budget.
        let units =
            units_of(bytes).clamp(1, (Semaphore::MAX_PERMITS as u64).min(u64::from(u32::MAX)));
        MemoryBudget {
            permits: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// The whole budget in octets.
    pub fn total(&self) -> u64 {
        self.units * UNIT
    }

    /// The octets not held by any session now.
    pub fn available(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }

    /// Grows `charge` to cover `bytes` if the budget has room now; never waits. False leaves
    /// `charge` as it was.
    pub fn try_grow(&self, charge: &mut Charge, bytes: usize) -> bool {
        let wanted = units_of(bytes as u64);
        let held = charge.units();
        if wanted <= held {
            return true;
        }
        let Ok(more) = u32::try_from(wanted - held) else {
            return false;
        };
        match Arc::clone(&self.permits).try_acquire_many_owned(more) {
            Ok(permit) => {
                match &mut charge.permit {
                    Some(held) => held.merge(permit),
                    None => charge.permit = Some(permit),
                }
                true
            }
            Err(_) => false,
        }
    }

    /// A charge of `bytes` octets, waiting up to `within` for other sessions to release what
    /// they hold; `None` if the time ran out. A message larger than the whole budget takes
    /// all of it (the configuration keeps the budget at least as large as the size limit).
    /// Waiters are served in order, so a large message is not starved by small ones.
    pub async fn charge(&self, bytes: u64, within: Duration) -> Option<Charge> {
        let units = u32::try_from(units_of(bytes).min(self.units)).unwrap_or(u32::MAX);
        let acquire = Arc::clone(&self.permits).acquire_many_owned(units);
        match tokio::time::timeout(within, acquire).await {
            // The semaphore is never closed, so acquiring fails only by timing out.
            Ok(Ok(permit)) => Some(Charge {
                permit: Some(permit),
            }),
            Ok(Err(_)) | Err(_) => None,
        }
    }
}

/// Part of the budget held by one message; given back when dropped.
#[derive(Debug, Default)]
pub struct Charge {
    permit: Option<OwnedSemaphorePermit>,
}

impl Charge {
    fn units(&self) -> u64 {
        self.permit.as_ref().map_or(0, |p| p.num_permits() as u64)
    }

    /// The octets this charge covers.
    pub fn bytes(&self) -> u64 {
        self.units() * UNIT
    }
}

fn units_of(bytes: u64) -> u64 {
    bytes.div_ceil(UNIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_grows_while_the_budget_has_room_and_is_returned_when_dropped() {
        let budget = MemoryBudget::new(8 * 1024);
        let mut a = Charge::default();
        assert!(budget.try_grow(&mut a, 1));
        assert_eq!(a.bytes(), 1024);
        assert!(budget.try_grow(&mut a, 5000));
        assert_eq!(a.bytes(), 5 * 1024);
        assert_eq!(budget.available(), 3 * 1024);
        let mut b = Charge::default();
        assert!(!budget.try_grow(&mut b, 4 * 1024), "more than is left");
        assert_eq!(b.bytes(), 0, "a refused charge holds nothing");
        assert!(budget.try_grow(&mut b, 3 * 1024));
        drop(a);
        assert_eq!(budget.available(), 5 * 1024);
        drop(b);
        assert_eq!(budget.available(), budget.total());
    }

    #[tokio::test(start_paused = true)]
    async fn a_charge_waits_for_room_and_gives_up_after_its_time() {
        let budget = MemoryBudget::new(10 * 1024);
        let mut held = Charge::default();
        assert!(budget.try_grow(&mut held, 8 * 1024));
        assert!(
            budget
                .charge(4 * 1024, Duration::from_secs(5))
                .await
                .is_none(),
            "only 2 KiB are free"
        );
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.charge(4 * 1024, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            !waiter.is_finished(),
            "the waiter got room that was not there"
        );
        drop(held);
        let charge = waiter.await.unwrap().expect("room once the holder let go");
        assert_eq!(charge.bytes(), 4 * 1024);
    }

    #[tokio::test]
    async fn a_message_larger_than_the_budget_takes_all_of_it() {
        let budget = MemoryBudget::new(4 * 1024);
        let charge = budget.charge(1 << 20, Duration::from_secs(1)).await;
        assert_eq!(charge.map(|c| c.bytes()), Some(4 * 1024));
    }
}
