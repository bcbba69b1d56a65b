//! Who `tern serve` runs as (security issue 17). Started as root, it binds its listeners (ports
//! below 1024 need root or `CAP_NET_BIND_SERVICE`), then becomes an unprivileged user before it
//! opens the store, reads a key or accepts a connection: nothing derived from network input is
//! ever handled as root, and the switch cannot be undone.
//!
//! Implementation notes:
//! - The decision ([`plan`]) is made before anything is bound, so a missing user stops the
//!   start-up before a port is taken.
//! - Order of the switch: supplementary groups, then the group, then the user; each of the first
//!   two needs root, which the last one gives up. glibc applies every change to all threads of the
//!   process (the async runtime's workers already exist).
//! - The data directory must belong to the user. A missing one is created for it (only the last
//!   path component, mode 0700); one owned by anybody else stops the start-up with the `chown` to
//!   run. Tern never changes the owner of existing files itself: a recursive chown by root below a
//!   directory it does not control could be steered by symlinks.
//! - Admin commands started as root become the owner of an existing data directory
//!   ([`act_as_data_dir_owner`]): files they create (DKIM keys) must stay readable by the server.

use std::ffi::CString;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::Path;

use anyhow::{Context, bail};
use nix::unistd::{self, Gid, Uid, User};
use tern_common::config::Config;

/// The user a root `tern serve` switches to when `user` is not configured.
const DEFAULT_USER: &str = "tern";

/// A system user to run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

/// What start-up does about privileges.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Keep the current identity: not root, or root with `allow_root = true`.
    Stay { root: bool },
    /// Switch to this user once the listeners are bound.
    Switch(Account),
}

/// Decides from the configuration and the current effective uid.
pub fn plan(config: &Config) -> anyhow::Result<Plan> {
    decide(
        unistd::geteuid(),
        config.user.as_deref(),
        config.allow_root,
        lookup,
    )
}

fn lookup(name: &str) -> anyhow::Result<Option<Account>> {
    let user = User::from_name(name)
        .with_context(|| format!("cannot look up user {name:?} in the user database"))?;
    Ok(user.map(|u| Account {
        name: u.name,
        uid: u.uid,
        gid: u.gid,
    }))
}

fn decide(
    euid: Uid,
    user: Option<&str>,
    allow_root: bool,
    lookup: impl Fn(&str) -> anyhow::Result<Option<Account>>,
) -> anyhow::Result<Plan> {
    if !euid.is_root() {
        // Only root can switch users; naming ourselves is fine, anyone else is a mistake that
        // would otherwise go unnoticed until the files turn out to belong to the wrong user.
        return match user {
            None => Ok(Plan::Stay { root: false }),
            Some(name) => match lookup(name)? {
                Some(account) if account.uid == euid => Ok(Plan::Stay { root: false }),
                _ => bail!(
                    "user = {name:?} is configured, but tern serve was started as uid {euid}, not \
                     as root, and only root can switch users: start it as root (it binds its \
                     ports, then switches), start it as {name:?}, or remove the `user` setting"
                ),
            },
        };
    }
    let name = match user {
        Some(name) => name,
        None if allow_root => return Ok(Plan::Stay { root: true }),
        None => DEFAULT_USER,
    };
    match lookup(name)? {
        Some(account) if account.uid.is_root() => {
            if allow_root {
                Ok(Plan::Stay { root: true })
            } else {
                bail!(
                    "user = {name:?} is root (uid 0): set `user` to an unprivileged user, or \
                     allow_root = true to run as root on purpose"
                )
            }
        }
        Some(account) => Ok(Plan::Switch(account)),
        None if user.is_some() => bail!(
            "user = {name:?} is configured, but there is no such user on this system: create it \
             (useradd --system --home-dir /var/lib/tern --shell /usr/sbin/nologin {name}) or set \
             `user` to an existing unprivileged user"
        ),
        None => bail!(
            "tern serve was started as root and does not keep running as root: there is no user \
             {DEFAULT_USER:?} to switch to and `user` is not set. Create the user (useradd \
             --system --home-dir /var/lib/tern --shell /usr/sbin/nologin {DEFAULT_USER}), set \
             user = \"<name>\" in the config, or set allow_root = true to run as root anyway"
        ),
    }
}

/// Makes sure `data_dir` belongs to `account` before root is given up (see the module notes).
pub fn prepare_data_dir(data_dir: &Path, account: &Account) -> anyhow::Result<()> {
    let shown = data_dir.display();
    let meta = match std::fs::metadata(data_dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(data_dir)
                .with_context(|| {
                    format!("cannot create the data directory {shown} (does its parent exist?)")
                })?;
            std::os::unix::fs::chown(
                data_dir,
                Some(account.uid.as_raw()),
                Some(account.gid.as_raw()),
            )
            .with_context(|| {
                format!(
                    "cannot give the new data directory {shown} to user {}",
                    account.name
                )
            })?;
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read the data directory {shown}")),
    };
    if meta.uid() != account.uid.as_raw() {
        bail!(
            "the data directory {shown} belongs to uid {}, but tern serve runs as user {} (uid \
             {}), which must own it and everything in it: chown -R {}: {shown}",
            meta.uid(),
            account.name,
            account.uid,
            account.name
        );
    }
    Ok(())
}

/// Becomes `account` for good: supplementary groups, group, user, then checks that root cannot
/// be regained.
pub fn switch_to(account: &Account) -> anyhow::Result<()> {
    let name = &account.name;
    let c_name = CString::new(name.as_str())
        .with_context(|| format!("user name {name:?} contains a NUL byte"))?;
    // The user's supplementary groups (as login does), so that group-readable certificates work;
    // root's own (group 0 and others) would otherwise stay with the process.
    unistd::initgroups(&c_name, account.gid)
        .with_context(|| format!("cannot set the supplementary groups of user {name}"))?;
    unistd::setgid(account.gid)
        .with_context(|| format!("cannot switch to group {} of user {name}", account.gid))?;
    // As root, setuid sets the real, effective and saved uid alike (POSIX), so no uid 0 is left
    // to return to.
    unistd::setuid(account.uid)
        .with_context(|| format!("cannot switch to user {name} (uid {})", account.uid))?;
    let dropped = unistd::getuid() == account.uid
        && unistd::geteuid() == account.uid
        && unistd::getgid() == account.gid
        && unistd::getegid() == account.gid
        && unistd::setuid(Uid::from_raw(0)).is_err();
    if !dropped {
        bail!("switching to user {name} did not give root up for good; refusing to run");
    }
    Ok(())
}

/// Admin commands started as root act as the owner of the data directory, so that what they
/// create (DKIM keys, a new database) stays readable by the server, which runs as that user. A
/// missing or root-owned data directory leaves them root, as before.
pub fn act_as_data_dir_owner(data_dir: &Path) -> anyhow::Result<()> {
    if !unistd::geteuid().is_root() {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(data_dir) else {
        return Ok(());
    };
    let uid = Uid::from_raw(meta.uid());
    if uid.is_root() {
        return Ok(());
    }
    let shown = data_dir.display();
    let user = User::from_uid(uid)
        .with_context(|| format!("cannot look up uid {uid}, the owner of {shown}"))?
        .with_context(|| {
            format!(
                "the data directory {shown} belongs to uid {uid}, which has no user name; run \
                 the command as that uid"
            )
        })?;
    switch_to(&Account {
        name: user.name,
        uid,
        gid: user.gid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, uid: u32) -> Account {
        Account {
            name: name.to_owned(),
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(uid),
        }
    }

    /// A user database with `root`, `tern` (uid 100) and `mail` (uid 8).
    fn with_tern(name: &str) -> anyhow::Result<Option<Account>> {
        Ok(
            [account("root", 0), account("tern", 100), account("mail", 8)]
                .into_iter()
                .find(|a| a.name == name),
        )
    }

    fn without_tern(name: &str) -> anyhow::Result<Option<Account>> {
        Ok(with_tern(name)?.filter(|a| a.name != "tern"))
    }

    const ROOT: Uid = Uid::from_raw(0);

    #[test]
    fn root_without_a_user_setting_switches_to_tern() {
        let plan = decide(ROOT, None, false, with_tern).expect("plan");
        assert_eq!(plan, Plan::Switch(account("tern", 100)));
    }

    #[test]
    fn root_without_a_user_setting_or_a_tern_user_refuses_and_says_what_to_do() {
        let err = decide(ROOT, None, false, without_tern).expect_err("must refuse");
        let err = err.to_string();
        assert!(err.contains("useradd --system"), "{err}");
        assert!(err.contains("allow_root = true"), "{err}");
    }

    #[test]
    fn root_with_allow_root_stays_root_only_when_no_user_is_named() {
        assert_eq!(
            decide(ROOT, None, true, without_tern).expect("plan"),
            Plan::Stay { root: true }
        );
        assert_eq!(
            decide(ROOT, Some("mail"), true, without_tern).expect("plan"),
            Plan::Switch(account("mail", 8))
        );
    }

    #[test]
    fn a_configured_user_that_is_missing_or_root_is_refused() {
        let err = decide(ROOT, Some("nosuch"), false, with_tern).expect_err("missing");
        assert!(err.to_string().contains("no such user"), "{err}");
        let err = decide(ROOT, Some("root"), false, with_tern).expect_err("root");
        assert!(err.to_string().contains("is root"), "{err}");
    }

    #[test]
    fn a_non_root_start_stays_and_refuses_to_name_another_user() {
        let me = Uid::from_raw(8);
        assert_eq!(
            decide(me, None, false, with_tern).expect("plan"),
            Plan::Stay { root: false }
        );
        assert_eq!(
            decide(me, Some("mail"), false, with_tern).expect("plan"),
            Plan::Stay { root: false }
        );
        let err = decide(me, Some("tern"), false, with_tern).expect_err("other user");
        assert!(
            err.to_string().contains("only root can switch users"),
            "{err}"
        );
    }
}
