//! IMAP4rev1 `\Recent` (RFC 3501 §2.3.2) as one session sees it. IMAP4rev2 removed it (RFC
//! 9051 Appendix E): a session that ENABLEd IMAP4rev2 tracks nothing, so its set stays empty.
//!
//! RFC 3501 §2.3.2: "Message is "recently" arrived in this mailbox. This session is the first
//! session to have been notified about this message". The store keeps per mailbox the highest
//! UID some session has claimed (`Store::claim_recent`); a SELECT claims what lies above it,
//! and so does the selected session whenever new messages show up, so every message is recent
//! in exactly one session. EXAMINE must not take the flag away (§6.3.2): it only looks, and
//! sees every unclaimed message as recent.

use tern_store::{RecentClaim, Uid};

/// The UIDs that are recent in this session.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recent {
    /// Disjoint inclusive UID ranges, ascending (each claim lies above the previous one).
    ranges: Vec<(u32, u32)>,
}

impl Recent {
    /// Everything above `mark`: what an EXAMINE session sees as recent.
    pub(crate) fn above(mark: u32) -> Recent {
        let mut recent = Recent::default();
        recent.add(mark, u32::MAX);
        recent
    }

    /// Adds the UIDs of a claim.
    pub(crate) fn claimed(&mut self, claim: RecentClaim) {
        self.add(claim.after, claim.through);
    }

    /// Adds `after + 1 ..= through`.
    fn add(&mut self, after: u32, through: u32) {
        let Some(first) = after.checked_add(1).filter(|&first| first <= through) else {
            return;
        };
        match self.ranges.last_mut() {
            Some(last) if last.1.saturating_add(1) >= first => last.1 = last.1.max(through),
            _ => self.ranges.push((first, through)),
        }
    }

    pub(crate) fn contains(&self, uid: Uid) -> bool {
        let uid = uid.get();
        self.ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&uid))
    }

    /// How many of `uids` (ascending) are recent: the `* n RECENT` count (RFC 3501 §7.3.2).
    pub(crate) fn count(&self, uids: &[Uid]) -> u32 {
        self.ranges
            .iter()
            .map(|&(lo, hi)| {
                let start = uids.partition_point(|u| u.get() < lo);
                let end = uids.partition_point(|u| u.get() <= hi);
                end.saturating_sub(start) as u32
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uids(values: &[u32]) -> Vec<Uid> {
        values.iter().filter_map(|&v| Uid::new(v)).collect()
    }

    #[test]
    fn claims_add_up_and_count_only_known_uids() {
        let mut recent = Recent::default();
        assert_eq!(recent.count(&uids(&[1, 2, 3])), 0);
        recent.claimed(RecentClaim {
            after: 2,
            through: 2,
        });
        assert!(recent.ranges.is_empty());
        recent.claimed(RecentClaim {
            after: 2,
            through: 4,
        });
        // Another session claimed 5; this one claims 6 and 7 later.
        recent.claimed(RecentClaim {
            after: 5,
            through: 7,
        });
        let known = uids(&[1, 2, 3, 5, 6, 7, 8]);
        assert_eq!(recent.count(&known), 3);
        let flags: Vec<bool> = known.iter().map(|u| recent.contains(*u)).collect();
        assert_eq!(flags, [false, false, true, false, true, true, false]);
        recent.claimed(RecentClaim {
            after: 7,
            through: 9,
        });
        assert_eq!(recent.ranges, [(3, 4), (6, 9)]);
    }

    #[test]
    fn examine_sees_everything_above_the_mark() {
        let recent = Recent::above(2);
        assert_eq!(recent.count(&uids(&[1, 2, 3, 4_000_000_000])), 2);
        assert!(Recent::above(u32::MAX).ranges.is_empty());
    }
}
