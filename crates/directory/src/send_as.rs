//! Who may send as whom: the one ownership rule used for MAIL FROM and for the `From:` and
//! `Sender:` fields of submitted messages (RFC 6409 §6.1: the MSA may enforce the sender), and
//! the per-account send-as list an admin keeps.
//!
//! An account may send as
//! 1. its own address;
//! 2. a sub-address of it (`user+tag@`, RFC 5233, with the configured separator);
//! 3. an address on its send-as list (exactly that address, in a hosted domain).
//!
//! Nothing else: an alias that delivers to the account is not a sender identity by itself (an
//! alias `team@` reaching alice and bob would otherwise let each speak for the other), nor is
//! a catch-all. The admin puts such addresses on the list.

use tern_common::Address;
use tern_store::StoreError;

use crate::{AccountId, Directory, DirectoryError, parse_address};

impl Directory {
    /// Whether `account` may use `address` as a sender (see the module docs).
    pub async fn owns_address(
        &self,
        account: AccountId,
        address: &Address,
    ) -> Result<bool, DirectoryError> {
        if !self.is_local_domain(address.domain()).await? {
            return Ok(false);
        }
        let Some(own) = self.inner.store.account(account).await? else {
            return Ok(false);
        };
        let key = address.normalized();
        if key == own.address {
            return Ok(true);
        }
        // RFC 5233: `user+detail` is `user`'s.
        if let Some(separator) = self.config().subaddress_separator
            && let Some((user, _detail)) = address.subaddress(separator)
            && let Ok(base) = Address::new(user, address.domain().clone())
            && base.normalized() == own.address
        {
            return Ok(true);
        }
        Ok(self.inner.store.may_send_as(account, &key).await?)
    }

    /// Lets the user `account` send as `address` too. The address must be in a hosted domain
    /// (DKIM signs only for our domains, and a foreign domain's SPF and DMARC would fail the
    /// message anyway); it may belong to another account or an alias: that is the admin's call.
    pub async fn add_send_as(&self, account: &str, address: &str) -> Result<(), DirectoryError> {
        let user = self.require_user(account).await?;
        let address = parse_address(address)?;
        self.require_local(address.domain()).await?;
        let key = address.normalized();
        let already =
            || DirectoryError::AlreadyExists(format!("send-as {key} for {}", user.address));
        if self.owns_address(user.id, &address).await? {
            return Err(already());
        }
        self.inner
            .store
            .add_send_as(user.id, &key)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists => already(),
                StoreError::NotFound => DirectoryError::UnknownUser(user.address.clone()),
                e => e.into(),
            })
    }

    /// Takes `address` off the send-as list of the user `account`.
    pub async fn remove_send_as(&self, account: &str, address: &str) -> Result<(), DirectoryError> {
        let user = self.require_user(account).await?;
        let key = parse_address(address)?.normalized();
        self.inner
            .store
            .remove_send_as(user.id, &key)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => DirectoryError::NotSendAs {
                    account: user.address.clone(),
                    address: key.clone(),
                },
                e => e.into(),
            })
    }

    /// The send-as list of the user `account`, sorted (its own address is not listed).
    pub async fn send_as(&self, account: &str) -> Result<Vec<String>, DirectoryError> {
        let user = self.require_user(account).await?;
        Ok(self.inner.store.send_as(user.id).await?)
    }

    async fn require_user(&self, account: &str) -> Result<crate::Account, DirectoryError> {
        let address = parse_address(account)?;
        self.account(&address)
            .await?
            .ok_or_else(|| DirectoryError::UnknownUser(address.normalized()))
    }
}
