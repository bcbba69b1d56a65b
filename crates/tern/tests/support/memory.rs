//! Watching a server's memory while hostile clients hold message text in flight (the SMTP
//! DATA/BDAT and IMAP APPEND memory tests).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::TestServer;

/// Fails the test once the server's peak memory passes `limit_kib`, after telling the
/// clients to stop (`stop`), so their threads do not outlive the failure.
pub struct MemoryWatch<'a> {
    pub server: &'a TestServer,
    pub stop: &'a AtomicBool,
    pub limit_kib: u64,
}

impl MemoryWatch<'_> {
    /// The server's peak memory so far, in KiB; fails the test past the limit. `what` says
    /// when.
    pub fn check(&self, what: &str) -> u64 {
        let (rss, peak) = self.server.memory_kib();
        if peak >= self.limit_kib {
            self.stop.store(true, Ordering::SeqCst);
            panic!(
                "{what}: server peak memory {} MiB (now {} MiB), limit {} MiB",
                peak / 1024,
                rss / 1024,
                self.limit_kib / 1024
            );
        }
        peak
    }

    /// Checks the memory every `poll` until all `clients` have sent their text (`sent`
    /// counts them) and the server holds that many spool files with at least `expected`
    /// octets in all; fails the test after `within`. Returns the peak.
    pub fn until_spooled(
        &self,
        what: &str,
        sent: &AtomicUsize,
        clients: usize,
        expected: u64,
        within: Duration,
        poll: Duration,
    ) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let peak = self.check(what);
            let (files, spooled) = self.server.open_spool_files();
            let done = sent.load(Ordering::SeqCst);
            if done == clients && files == clients && spooled >= expected {
                return peak;
            }
            if Instant::now() > deadline {
                self.stop.store(true, Ordering::SeqCst);
                panic!(
                    "{what}: the server did not take in the text: {done} of {clients} clients \
                     done, {files} spool files, {} MiB spooled, peak {} MiB",
                    spooled >> 20,
                    peak / 1024
                );
            }
            thread::sleep(poll);
        }
    }
}
