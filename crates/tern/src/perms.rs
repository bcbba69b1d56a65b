//! File modes of the data directory: mail, password hashes and DKIM keys are for the tern user
//! alone. `main` sets the umask to 077 so that what tern creates is private; a data directory
//! made earlier (by hand, by an older version, by a package script) may still be open to
//! others, which start-up reports.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use tracing::warn;

/// Logs a warning when other users may enter or read `data_dir`.
pub fn warn_if_shared(data_dir: &Path) {
    let Ok(meta) = std::fs::metadata(data_dir) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        warn!(
            data_dir = %data_dir.display(),
            mode = format_args!("{mode:03o}"),
            "the data directory is open to other users of this machine (mail, password \
             hashes, DKIM keys); restrict it with: chmod 700 {}",
            data_dir.display()
        );
    }
}
