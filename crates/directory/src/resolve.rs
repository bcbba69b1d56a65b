//! Recipient resolution: which accounts (and external addresses) a mail address delivers to.
//!
//! Order for an address in a hosted domain:
//! 1. an account with exactly this address;
//! 2. an alias with this source, its targets expanded recursively (at most
//!    [`MAX_ALIAS_DEPTH`] levels; a target seen before is skipped, so loops and diamonds end);
//! 3. with sub-addressing on, the address without its detail (`user+tag` → `user`, RFC 5233),
//!    looked up as account, then alias;
//! 4. the domain's catch-all target, expanded like an alias target;
//! 5. for `postmaster` (any case), the postmaster of another hosted domain (RFC 5321 §4.5.1);
//! 6. otherwise unknown.

use std::collections::HashSet;

use tern_common::{Address, Domain};
use tracing::warn;

use crate::{AccountId, Directory, DirectoryError};

/// Alias expansion depth limit (alias → alias → …).
pub const MAX_ALIAS_DEPTH: usize = 8;

/// Where mail for one recipient address goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// Deliver into these local accounts (deduplicated, in resolution order).
    Local(Vec<AccountId>),
    /// An alias with external targets: deliver locally to `local` (possibly none) and relay
    /// to `external` (deduplicated by normalised address).
    Forward {
        local: Vec<AccountId>,
        external: Vec<Address>,
    },
    /// A hosted domain without such user: reject (SMTP 550 5.1.1).
    Unknown,
    /// The domain is not hosted here: a relaying decision for the caller.
    NotLocal,
}

#[derive(Default)]
struct Expansion {
    accounts: Vec<AccountId>,
    external: Vec<Address>,
    seen: HashSet<String>,
}

impl Expansion {
    fn push_account(&mut self, id: AccountId) {
        if !self.accounts.contains(&id) {
            self.accounts.push(id);
        }
    }
}

impl Directory {
    /// Resolves a recipient address (see the module docs for the order).
    pub async fn resolve_recipient(&self, address: &Address) -> Result<Recipient, DirectoryError> {
        if !self.is_local_domain(address.domain()).await? {
            return Ok(Recipient::NotLocal);
        }
        let mut out = Expansion::default();
        if !self.expand(address, 0, true, &mut out).await?
            && address.local().eq_ignore_ascii_case("postmaster")
        {
            out = self.other_postmaster(address.domain()).await?;
        }
        Ok(match (out.accounts.is_empty(), out.external.is_empty()) {
            (true, true) => Recipient::Unknown,
            (_, true) => Recipient::Local(out.accounts),
            _ => Recipient::Forward {
                local: out.accounts,
                external: out.external,
            },
        })
    }

    /// RFC 5321 §4.5.1: every domain we serve accepts mail for `postmaster`. A domain added
    /// without a postmaster account or alias of its own (only the first domain gets one, at
    /// first start) borrows the postmaster of the first hosted domain, by name, that has one.
    async fn other_postmaster(&self, except: &Domain) -> Result<Expansion, DirectoryError> {
        for domain in self.domains().await? {
            let Ok(name) = domain.name.parse::<Domain>() else {
                continue;
            };
            if &name == except {
                continue;
            }
            let Ok(postmaster) = Address::new("postmaster", name) else {
                continue;
            };
            // Not that domain's catch-all: a catch-all target is no postmaster.
            let mut out = Expansion::default();
            if self.expand(&postmaster, 0, false, &mut out).await? {
                return Ok(out);
            }
        }
        Ok(Expansion::default())
    }

    /// Adds what `address` delivers to into `out`; returns whether it resolved to anything.
    /// Boxed because it recurses.
    fn expand<'a>(
        &'a self,
        address: &'a Address,
        depth: usize,
        catch_all: bool,
        out: &'a mut Expansion,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<bool, DirectoryError>> + Send + 'a>> {
        Box::pin(async move {
            let key = address.normalized();
            if !out.seen.insert(key.clone()) {
                // Already expanded (alias loop or two paths to one target).
                return Ok(true);
            }
            if depth > MAX_ALIAS_DEPTH {
                warn!(address = %key, "alias expansion deeper than {MAX_ALIAS_DEPTH} levels; not followed");
                return Ok(false);
            }
            let Some(domain) = self.hosted(address.domain()).await? else {
                out.external.push(address.clone());
                return Ok(true);
            };
            if self.expand_exact(address, depth, catch_all, out).await? {
                return Ok(true);
            }
            // RFC 5233: `user+detail` delivers to `user`.
            if let Some(separator) = self.config().subaddress_separator
                && let Some((user, _detail)) = address.subaddress(separator)
                && let Ok(base) = Address::new(user, address.domain().clone())
                && out.seen.insert(base.normalized())
                && self.expand_exact(&base, depth, catch_all, out).await?
            {
                return Ok(true);
            }
            if catch_all && let Some(target) = domain.catch_all {
                match target.parse::<Address>() {
                    Ok(target) => return self.expand(&target, depth + 1, catch_all, out).await,
                    Err(e) => {
                        warn!(domain = %domain.name, %target, "invalid catch-all target: {e}")
                    }
                }
            }
            Ok(false)
        })
    }

    /// Steps 1 and 2: the account with exactly this address, else the alias's targets.
    async fn expand_exact(
        &self,
        address: &Address,
        depth: usize,
        catch_all: bool,
        out: &mut Expansion,
    ) -> Result<bool, DirectoryError> {
        if let Some(account) = self.account(address).await? {
            out.push_account(account.id);
            return Ok(true);
        }
        let targets = self.alias_targets(address).await?;
        if targets.is_empty() {
            return Ok(false);
        }
        let mut any = false;
        for target in targets {
            match target.parse::<Address>() {
                Ok(target) => {
                    if self.expand(&target, depth + 1, catch_all, out).await? {
                        any = true;
                    } else {
                        warn!(alias = %address, %target, "alias target resolves to nothing");
                    }
                }
                Err(e) => warn!(alias = %address, %target, "invalid alias target: {e}"),
            }
        }
        Ok(any)
    }
}
