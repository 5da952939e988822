//! The byte store behind a cache front.
//!
//! A backend moves bytes: it knows nothing of namespaces, serializers or
//! default expiries, which the front ([`Cache`](crate::Cache) /
//! [`AsyncCache`](crate::AsyncCache)) owns. The single Redis server, the
//! cluster, the in-process fake and the null store all implement these traits,
//! so every feature works on each of them.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::Result;

/// A boxed future, as returned by [`AsyncBackend`] methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A value read with the time its key has left (`None` inside: no expiry);
/// `None`: the key is missing.
pub type ValueTtl = Option<(Vec<u8>, Option<Duration>)>;

/// One entry of a multi-key write: key, encoded value, expiry.
pub type SetItem = (String, Vec<u8>, Duration);

/// A blocking byte store.
///
/// Keys arrive complete (namespace included). Every write carries an expiry.
pub trait Backend: Send + Sync + 'static {
    /// Reads one key.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Reads many keys in one round trip per server; results in key order.
    ///
    /// The outcome is per key so a sharded store can fail one server's keys
    /// and still return the others.
    fn get_many(&self, keys: &[&str]) -> Vec<Result<Option<Vec<u8>>>>;

    /// Writes one key with an expiry; true when stored.
    fn set(&self, key: &str, value: &[u8], expire: Duration) -> Result<bool>;

    /// Writes many keys in one round trip per server; true when all were stored.
    fn set_many(&self, items: &[SetItem]) -> Result<bool>;

    /// Deletes one key; true when it existed.
    fn delete(&self, key: &str) -> Result<bool>;

    /// Deletes many keys; returns how many existed.
    fn delete_many(&self, keys: &[&str]) -> Result<u64>;

    /// The time `key` has left; `None` when it is missing or never expires.
    fn ttl(&self, key: &str) -> Result<Option<Duration>>;

    /// Checks that every server answers.
    fn ping(&self) -> Result<()>;

    /// Reads one key and the time it has left (`None`: no expiry), in one
    /// round trip where the store allows; for `stale_while_revalidate` and
    /// `stale_if_error`. The default asks [`get`](Self::get) then [`ttl`](Self::ttl).
    fn get_with_ttl(&self, key: &str) -> Result<ValueTtl> {
        match self.get(key)? {
            Some(v) => Ok(Some((v, self.ttl(key)?))),
            None => Ok(None),
        }
    }

    /// The `redis` crate's client for the server that holds `key`, for
    /// commands rc does not send. A store without Redis behind it has none.
    fn client(&self, key: &str) -> Result<redis::Client> {
        let _ = key;
        Err(no_redis())
    }

    /// Takes a lease on each key that has none out, for `ttl`: a decorated
    /// call that missed takes one before computing, and stores with
    /// [`set_many_leased`](Self::set_many_leased) only if no write or delete
    /// of the key voided it meanwhile (writes and deletes void the leases on
    /// their keys). `Ok(false)`: another caller holds the key's lease.
    ///
    /// The default grants every lease and [`set_many_leased`](Self::set_many_leased)
    /// stores unconditionally: a store without leases has no protection
    /// against a slow computation storing a value older than a delete.
    fn lease_many(&self, keys: &[&str], token: &str, ttl: Duration) -> Vec<Result<bool>> {
        let _ = (token, ttl);
        keys.iter().map(|_| Ok(true)).collect()
    }

    /// Stores each item whose key's lease is still `token`'s, and gives the
    /// lease back; true when all were stored.
    fn set_many_leased(&self, items: &[SetItem], token: &str) -> Result<bool> {
        let _ = token;
        self.set_many(items)
    }

    /// Gives back the leases `token` holds on `keys` without storing (the
    /// result was bypassed, an `Err`, or could not be encoded).
    fn release_leases(&self, keys: &[&str], token: &str) -> Result<()> {
        let _ = (keys, token);
        Ok(())
    }
}

pub(crate) fn no_redis() -> crate::Error {
    crate::Error::config("this cache's store is not a Redis server: it has no client")
}

/// The async twin of [`Backend`], with the same verbs.
pub trait AsyncBackend: Send + Sync + 'static {
    /// Reads one key.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>>;

    /// Reads many keys; per-key outcome, in key order.
    fn get_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Vec<Result<Option<Vec<u8>>>>>;

    /// Writes one key with an expiry; true when stored.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        expire: Duration,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Writes many keys; true when all were stored.
    fn set_many<'a>(&'a self, items: &'a [SetItem]) -> BoxFuture<'a, Result<bool>>;

    /// Deletes one key; true when it existed.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// Deletes many keys; returns how many existed.
    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<u64>>;

    /// The time `key` has left; `None` when it is missing or never expires.
    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Duration>>>;

    /// Checks that every server answers.
    fn ping(&self) -> BoxFuture<'_, Result<()>>;

    /// Reads one key and the time it has left (see [`Backend::get_with_ttl`]).
    fn get_with_ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<ValueTtl>> {
        Box::pin(async move {
            match self.get(key).await? {
                Some(v) => Ok(Some((v, self.ttl(key).await?))),
                None => Ok(None),
            }
        })
    }

    /// The `redis` crate's client for the server that holds `key`, for
    /// commands rc does not send. A store without Redis behind it has none.
    fn client(&self, key: &str) -> Result<redis::Client> {
        let _ = key;
        Err(no_redis())
    }

    /// Takes leases (see [`Backend::lease_many`]); the default grants all.
    fn lease_many<'a>(
        &'a self,
        keys: &'a [&'a str],
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Vec<Result<bool>>> {
        let _ = (token, ttl);
        Box::pin(std::future::ready(keys.iter().map(|_| Ok(true)).collect()))
    }

    /// Leased stores (see [`Backend::set_many_leased`]); the default stores all.
    fn set_many_leased<'a>(
        &'a self,
        items: &'a [SetItem],
        token: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        let _ = token;
        self.set_many(items)
    }

    /// Gives back leases (see [`Backend::release_leases`]).
    fn release_leases<'a>(
        &'a self,
        keys: &'a [&'a str],
        token: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        let _ = (keys, token);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Implements [`AsyncBackend`] for an in-process store whose [`Backend`]
/// methods never block on I/O, by answering with ready futures.
macro_rules! async_via_sync {
    ($ty:ty) => {
        impl $crate::backend::AsyncBackend for $ty {
            fn get<'a>(
                &'a self,
                key: &'a str,
            ) -> $crate::BoxFuture<'a, $crate::Result<Option<Vec<u8>>>> {
                Box::pin(std::future::ready($crate::Backend::get(self, key)))
            }
            fn get_many<'a>(
                &'a self,
                keys: &'a [&'a str],
            ) -> $crate::BoxFuture<'a, Vec<$crate::Result<Option<Vec<u8>>>>> {
                Box::pin(std::future::ready($crate::Backend::get_many(self, keys)))
            }
            fn set<'a>(
                &'a self,
                key: &'a str,
                value: &'a [u8],
                expire: std::time::Duration,
            ) -> $crate::BoxFuture<'a, $crate::Result<bool>> {
                Box::pin(std::future::ready($crate::Backend::set(
                    self, key, value, expire,
                )))
            }
            fn set_many<'a>(
                &'a self,
                items: &'a [$crate::SetItem],
            ) -> $crate::BoxFuture<'a, $crate::Result<bool>> {
                Box::pin(std::future::ready($crate::Backend::set_many(self, items)))
            }
            fn delete<'a>(&'a self, key: &'a str) -> $crate::BoxFuture<'a, $crate::Result<bool>> {
                Box::pin(std::future::ready($crate::Backend::delete(self, key)))
            }
            fn delete_many<'a>(
                &'a self,
                keys: &'a [&'a str],
            ) -> $crate::BoxFuture<'a, $crate::Result<u64>> {
                Box::pin(std::future::ready($crate::Backend::delete_many(self, keys)))
            }
            fn ttl<'a>(
                &'a self,
                key: &'a str,
            ) -> $crate::BoxFuture<'a, $crate::Result<Option<std::time::Duration>>> {
                Box::pin(std::future::ready($crate::Backend::ttl(self, key)))
            }
            fn ping(&self) -> $crate::BoxFuture<'_, $crate::Result<()>> {
                Box::pin(std::future::ready($crate::Backend::ping(self)))
            }
            fn get_with_ttl<'a>(
                &'a self,
                key: &'a str,
            ) -> $crate::BoxFuture<'a, $crate::Result<$crate::ValueTtl>> {
                Box::pin(std::future::ready($crate::Backend::get_with_ttl(self, key)))
            }
            fn lease_many<'a>(
                &'a self,
                keys: &'a [&'a str],
                token: &'a str,
                ttl: std::time::Duration,
            ) -> $crate::BoxFuture<'a, Vec<$crate::Result<bool>>> {
                Box::pin(std::future::ready($crate::Backend::lease_many(
                    self, keys, token, ttl,
                )))
            }
            fn set_many_leased<'a>(
                &'a self,
                items: &'a [$crate::SetItem],
                token: &'a str,
            ) -> $crate::BoxFuture<'a, $crate::Result<bool>> {
                Box::pin(std::future::ready($crate::Backend::set_many_leased(
                    self, items, token,
                )))
            }
            fn release_leases<'a>(
                &'a self,
                keys: &'a [&'a str],
                token: &'a str,
            ) -> $crate::BoxFuture<'a, $crate::Result<()>> {
                Box::pin(std::future::ready($crate::Backend::release_leases(
                    self, keys, token,
                )))
            }
        }
    };
}
pub(crate) use async_via_sync;
