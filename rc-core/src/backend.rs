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

/// One entry of a multi-key write: key, encoded value, expiry.
pub type SetItem = (String, Vec<u8>, Duration);

/// One key's reply to [`Backend::get_many_with_ttl`]: its bytes and the time
/// it has left (`None`: it never expires; zero: it was gone by the time its
/// expiry was read), or `None` when it is missing.
pub type ValueTtl = Option<(Vec<u8>, Option<Duration>)>;

/// A Redis server behind a store, as the near cache reaches it for its
/// invalidation connection (see `local_cache` on the builders).
#[derive(Clone)]
pub struct ServerLink {
    /// The address errors and logs name.
    pub address: String,
    /// The `redis` crate's client for the server.
    pub client: redis::Client,
    /// Connect and response timeouts of the server.
    pub timeouts: crate::host::Timeouts,
}

impl std::fmt::Debug for ServerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLink")
            .field("address", &self.address)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

/// What [`Backend::get_many_with_ttl`] does on a store that has no pipeline
/// for it: reads, then each hit's `ttl`; a hit whose `ttl` is `None` (no
/// expiry, or gone) gets zero, so the near cache does not keep it.
fn with_ttls(
    replies: Vec<Result<Option<Vec<u8>>>>,
    ttl: impl Fn(usize) -> Result<Option<Duration>>,
) -> Vec<Result<ValueTtl>> {
    replies
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r? {
            Some(bytes) => Ok(Some((bytes, Some(ttl(i)?.unwrap_or(Duration::ZERO))))),
            None => Ok(None),
        })
        .collect()
}

/// The replies of a multi-get as a cache front reads them: key by key, in
/// any order ([`each`](Self::each)), or all in key order.
pub(crate) trait ManyReplies: Send {
    /// Hands each key's outcome to `each` with its position, once per key.
    fn each(self, each: impl FnMut(usize, Result<Option<Vec<u8>>>));

    /// The outcomes in key order.
    fn into_vec(self) -> Vec<Result<Option<Vec<u8>>>>;
}

/// Replies that are here already (the async face awaited them).
impl ManyReplies for Vec<Result<Option<Vec<u8>>>> {
    fn each(self, mut each: impl FnMut(usize, Result<Option<Vec<u8>>>)) {
        for (pos, reply) in self.into_iter().enumerate() {
            each(pos, reply);
        }
    }

    fn into_vec(self) -> Vec<Result<Option<Vec<u8>>>> {
        self
    }
}

/// A blocking multi-get not sent yet: the blocking face reads when the
/// front asks, so that it decodes each server's replies as they come
/// ([`Backend::get_many_each`]).
pub(crate) struct Deferred<'a> {
    pub store: &'a dyn Backend,
    pub keys: &'a [&'a str],
}

impl ManyReplies for Deferred<'_> {
    fn each(self, mut each: impl FnMut(usize, Result<Option<Vec<u8>>>)) {
        self.store.get_many_each(self.keys, &mut each);
    }

    fn into_vec(self) -> Vec<Result<Option<Vec<u8>>>> {
        self.store.get_many(self.keys)
    }
}

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

    /// Reads many keys as [`get_many`](Self::get_many) does, handing each
    /// key's outcome to `each` with the key's position in `keys` as soon as
    /// its server has answered: once per key, servers in any order. A cache
    /// decodes straight from the replies this way, with no vector of them in
    /// between. The default calls `get_many`.
    fn get_many_each(&self, keys: &[&str], each: &mut dyn FnMut(usize, Result<Option<Vec<u8>>>)) {
        for (pos, reply) in self.get_many(keys).into_iter().enumerate() {
            each(pos, reply);
        }
    }

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

    /// Reads many keys with the time each has left, in one round trip per
    /// server: the near cache keeps a copy no longer than its key lives.
    /// The default reads, then asks each hit's [`ttl`](Self::ttl).
    fn get_many_with_ttl(&self, keys: &[&str]) -> Vec<Result<ValueTtl>> {
        with_ttls(self.get_many(keys), |i| self.ttl(keys[i]))
    }

    /// The Redis servers of this store, in the order
    /// [`server_of`](Self::server_of) counts them; empty when there is no
    /// Redis behind it (the near cache needs them).
    fn servers(&self) -> Vec<ServerLink> {
        Vec::new()
    }

    /// The index in [`servers`](Self::servers) of the server that holds `key`.
    fn server_of(&self, key: &str) -> usize {
        let _ = key;
        0
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

    /// Reads keys with the time each has left (see [`Backend::get_many_with_ttl`]).
    fn get_many_with_ttl<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Vec<Result<ValueTtl>>> {
        Box::pin(async move {
            let replies = self.get_many(keys).await;
            let mut ttls = Vec::with_capacity(keys.len());
            for (k, r) in keys.iter().zip(&replies) {
                ttls.push(match r {
                    Ok(Some(_)) => Some(self.ttl(k).await),
                    _ => None,
                });
            }
            with_ttls(replies, |i| ttls[i].clone().unwrap_or(Ok(None)))
        })
    }

    /// The Redis servers of this store (see [`Backend::servers`]).
    fn servers(&self) -> Vec<ServerLink> {
        Vec::new()
    }

    /// The index in [`servers`](Self::servers) of the server that holds `key`.
    fn server_of(&self, key: &str) -> usize {
        let _ = key;
        0
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
            fn get_many_with_ttl<'a>(
                &'a self,
                keys: &'a [&'a str],
            ) -> $crate::BoxFuture<'a, Vec<$crate::Result<$crate::ValueTtl>>> {
                Box::pin(std::future::ready($crate::Backend::get_many_with_ttl(
                    self, keys,
                )))
            }
            fn servers(&self) -> Vec<$crate::ServerLink> {
                $crate::Backend::servers(self)
            }
            fn server_of(&self, key: &str) -> usize {
                $crate::Backend::server_of(self, key)
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
