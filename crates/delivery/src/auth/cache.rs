//! DNS answer caches for mail-auth: each entry lives until the TTL of its answer (mail-auth passes
//! the record's `valid_until`), bounded in size. mail-auth defines the [`ResolverCache`] interface
//! and ships no implementation.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

use mail_auth::{MX, RecordSet, ResolverCache, Txt};

/// Entries per cache before expired ones are dropped; if none had expired, the cache is
/// emptied (a flood of unique names must not grow memory without bound).
const MAX_ENTRIES: usize = 50_000;

/// One TTL-bounded map.
pub(crate) struct TtlCache<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for TtlCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // A poisoned lock only means another lookup panicked; the map itself is consistent.
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(v, _)| v.clone())
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (value, valid_until));
    }
}

/// The five caches mail-auth's lookups use.
#[derive(Default)]
pub(crate) struct DnsCaches {
    pub txt: TtlCache<Box<str>, Txt>,
    pub mx: TtlCache<Box<str>, RecordSet<MX>>,
    pub ipv4: TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    pub ipv6: TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    pub ptr: TtlCache<IpAddr, RecordSet<Box<str>>>,
}

/// `Parameters` for one mail-auth call with all our caches attached.
macro_rules! with_caches {
    ($caches:expr, $params:expr) => {
        mail_auth::Parameters::new($params)
            .with_txt_cache(&$caches.txt)
            .with_mx_cache(&$caches.mx)
            .with_ipv4_cache(&$caches.ipv4)
            .with_ipv6_cache(&$caches.ipv6)
            .with_ptr_cache(&$caches.ptr)
    };
}
pub(crate) use with_caches;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn entries_expire_with_their_ttl() {
        let c: TtlCache<Box<str>, u32> = TtlCache::default();
        c.insert("a.".into(), 1, Instant::now() + Duration::from_secs(60));
        c.insert("b.".into(), 2, Instant::now());
        assert_eq!(c.get("a."), Some(1));
        assert_eq!(c.get("b."), None);
        assert_eq!(c.remove("a."), Some(1));
        assert_eq!(c.get("a."), None);
    }
}
