//! Free space on the data directory's volume (security issue 17).
//!
//! A full disk must not break mail halfway: a blob file cut short, a database transaction that
//! cannot commit, a queue that cannot record a retry. So below a minimum of free space new mail
//! is refused with a temporary error before any of it is read (SMTP `452 4.3.1` at MAIL,
//! RFC 5321 §4.2.2 and RFC 3463 §3.4; IMAP `NO [OVERQUOTA]` at APPEND, as Dovecot answers a
//! full disk), and what is left stays for mail already accepted: delivering the queue,
//! expunging, the database's checkpoints. Senders retry later; nothing acknowledged is lost.
//!
//! The minimum defaults to 1 GiB or 5 % of the volume, whichever is smaller (a small volume
//! still gets a useful margin). Each check is one `statvfs` call, a few microseconds, made once
//! per transaction and once more before the message is stored.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{info, warn};

/// Checks the free space of one directory's volume; cheap to clone.
#[derive(Debug, Clone)]
pub struct FreeSpace {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// `None`: [`default_min_free`] of the volume's size.
    min_free: Option<u64>,
    /// Whether the last check found too little, to log the change once rather than per message.
    low: AtomicBool,
}

/// Too little free space for new mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowSpace {
    /// Octets available to the server.
    pub available: u64,
    /// The configured (or default) minimum.
    pub required: u64,
}

impl std::fmt::Display for LowSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} MiB free on the data volume, {} MiB required (limits.min_free_space)",
            self.available >> 20,
            self.required >> 20
        )
    }
}

/// 1 GiB or 5 % of a volume of `total` octets, whichever is smaller.
pub fn default_min_free(total: u64) -> u64 {
    (1u64 << 30).min(total / 20)
}

impl FreeSpace {
    /// Watches the volume of `dir`; `min_free` in octets (`None`: [`default_min_free`], 0: no
    /// minimum).
    pub fn new(dir: impl Into<PathBuf>, min_free: Option<u64>) -> FreeSpace {
        FreeSpace {
            inner: Some(Arc::new(Inner {
                dir: dir.into(),
                min_free,
                low: AtomicBool::new(false),
            })),
        }
    }

    /// No check at all, for contexts built without a data directory.
    pub fn unchecked() -> FreeSpace {
        FreeSpace { inner: None }
    }

    /// `Err` when new mail should be refused for now. The first low reading and the recovery
    /// are logged; a volume whose figures cannot be read is logged and treated as having room
    /// (refusing all mail because `statvfs` failed would be worse than the full disk).
    pub fn check(&self) -> Result<(), LowSpace> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let stat = match rustix::fs::statvfs(&inner.dir) {
            Ok(stat) => stat,
            Err(e) => {
                warn!(dir = %inner.dir.display(), error = %e, "cannot read the free space of the data volume");
                return Ok(());
            }
        };
        let available = stat.f_bavail.saturating_mul(stat.f_frsize);
        let total = stat.f_blocks.saturating_mul(stat.f_frsize);
        let required = inner.min_free.unwrap_or_else(|| default_min_free(total));
        let low = available < required;
        if inner.low.swap(low, Ordering::Relaxed) != low {
            let space = LowSpace {
                available,
                required,
            };
            if low {
                warn!(dir = %inner.dir.display(), "refusing new mail with temporary errors: {space}; free some space");
            } else {
                info!(dir = %inner.dir.display(), "accepting new mail again: {space}");
            }
        }
        if low {
            Err(LowSpace {
                available,
                required,
            })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_minimum_is_a_gibibyte_or_five_percent() {
        assert_eq!(default_min_free(1 << 40), 1 << 30);
        assert_eq!(default_min_free(100 << 20), 5 << 20);
        assert_eq!(default_min_free(0), 0);
    }

    #[test]
    fn a_minimum_above_what_is_free_refuses_and_zero_never_does() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(FreeSpace::new(dir.path(), Some(0)).check(), Ok(()));
        let low = FreeSpace::new(dir.path(), Some(u64::MAX))
            .check()
            .unwrap_err();
        assert_eq!(low.required, u64::MAX);
        assert!(low.available > 0);
        assert_eq!(FreeSpace::unchecked().check(), Ok(()));
        // A directory that does not exist cannot be measured: treated as having room.
        let gone = FreeSpace::new(dir.path().join("missing"), Some(u64::MAX));
        assert_eq!(gone.check(), Ok(()));
    }
}
