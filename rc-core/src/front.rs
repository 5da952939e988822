//! What a cache does on top of its byte store: namespace, serializer,
//! default expiry, bypass values and counters. Shared by the sync and async fronts.

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::Options;
use crate::backend::{ManyReplies, SetItem};
use crate::error::{Error, Result};
use crate::log_limit::LogLimit;
use crate::serializer::Codec;
use crate::stale::{CallDefaults, Plan};
use crate::stats::Counters;

/// rc's default expiry: 3 days.
pub const DEFAULT_EXPIRE: Duration = Duration::from_secs(259_200);

pub(crate) struct Front {
    pub namespace: String,
    pub codec: Codec,
    pub default_expire: Duration,
    /// Encoded bypass values, compared byte for byte with encoded results.
    pub bypass: Vec<Vec<u8>>,
    pub counters: Counters,
    /// The near cache in front of the store, if any (for its counters).
    pub local: Option<std::sync::Arc<crate::near::Near>>,
    /// Defaults of decorated calls (single flight, stale windows, jitter).
    pub calls: CallDefaults,
}

impl Front {
    /// The counters, with the near cache's.
    pub fn stats(&self) -> crate::stats::Stats {
        let mut stats = self.counters.snapshot();
        if let Some(near) = &self.local {
            near.add_stats(&mut stats);
        }
        stats
    }

    #[inline]
    pub fn full_key<'k>(&self, key: &'k str) -> Cow<'k, str> {
        if self.namespace.is_empty() {
            Cow::Borrowed(key)
        } else {
            Cow::Owned(self.prefixed(key))
        }
    }

    /// `key` after the namespace. Out of line, so that [`full_key`](Self::full_key)
    /// inlines: the call cost 25 instructions a key of a 1000-key `get_many`
    /// without a namespace (callgrind).
    #[inline(never)]
    fn prefixed(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.namespace.len() + key.len());
        k.push_str(&self.namespace);
        k.push_str(key);
        k
    }

    pub fn full_key_owned(&self, key: String) -> String {
        if self.namespace.is_empty() {
            key
        } else {
            self.full_key(&key).into_owned()
        }
    }

    pub fn expire(&self, expire: Option<Duration>) -> Result<Duration> {
        match expire {
            None => Ok(self.default_expire),
            Some(d) if d.is_zero() => Err(Error::config("expire must be greater than zero")),
            Some(d) => Ok(d),
        }
    }

    pub fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        self.codec.encode(value)
    }

    /// Direct `get`: counts, and undecodable bytes are an error.
    pub fn decode_direct<T: DeserializeOwned>(
        &self,
        key: &str,
        bytes: Option<Vec<u8>>,
    ) -> Result<Option<T>> {
        match bytes {
            None => {
                Counters::add(&self.counters.misses, 1);
                Ok(None)
            }
            Some(b) => match self.codec.decode(key, &b) {
                Ok(v) => {
                    Counters::add(&self.counters.hits, 1);
                    Ok(Some(v))
                }
                Err(e) => {
                    Counters::add(&self.counters.decode_errors, 1);
                    Err(e)
                }
            },
        }
    }

    /// Direct `get_many`: decodes each reply as its server answers; the
    /// first error in key order (a failed server, or bad bytes: an
    /// [`Error::Decode`] naming the key) is returned, as if the keys had been
    /// read one after the other. Counters are added once.
    pub fn decode_many<T: DeserializeOwned>(
        &self,
        keys: &[&str],
        replies: impl ManyReplies,
    ) -> Result<Vec<Option<T>>> {
        let mut values: Vec<Option<T>> = Vec::with_capacity(keys.len());
        values.resize_with(keys.len(), || None);
        let mut first: Option<(usize, Error)> = None;
        let mut hits = 0;
        replies.each(|pos, reply| {
            // Keys after the first error would not have been read.
            if first.as_ref().is_some_and(|(p, _)| *p < pos) {
                return;
            }
            let Some(key) = keys.get(pos) else { return };
            let read = match reply {
                Ok(Some(bytes)) => self.codec.decode(key, &bytes).map(|v| {
                    values[pos] = Some(v);
                    hits += 1;
                }),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = read {
                first = Some((pos, e));
            }
        });
        match first {
            None => {
                Counters::add(&self.counters.hits, hits);
                Counters::add(&self.counters.misses, values.len() as u64 - hits);
                Ok(values)
            }
            Some((_, e)) => {
                match e {
                    Error::Decode { .. } => Counters::add(&self.counters.decode_errors, 1),
                    _ => Counters::add(&self.counters.errors, 1),
                }
                Err(e)
            }
        }
    }

    /// Direct `get_many_results`: one result per key, in key order. A failed
    /// server fails its keys, bad bytes their key; the others decode. Counts
    /// hits, misses and decode errors per key, and one error per call when
    /// some server failed.
    pub fn decode_many_results<T: DeserializeOwned>(
        &self,
        keys: &[&str],
        replies: impl ManyReplies,
    ) -> Vec<Result<Option<T>>> {
        let mut results: Vec<Result<Option<T>>> = Vec::with_capacity(keys.len());
        results.resize_with(keys.len(), || Ok(None));
        let (mut hits, mut misses, mut bad, mut failed) = (0, 0, 0, false);
        replies.each(|pos, reply| {
            let Some(key) = keys.get(pos) else { return };
            results[pos] = match reply {
                Ok(Some(bytes)) => match self.codec.decode(key, &bytes) {
                    Ok(v) => {
                        hits += 1;
                        Ok(Some(v))
                    }
                    Err(e) => {
                        bad += 1;
                        Err(e)
                    }
                },
                Ok(None) => {
                    misses += 1;
                    Ok(None)
                }
                Err(e) => {
                    failed = true;
                    Err(e)
                }
            };
        });
        Counters::add(&self.counters.hits, hits);
        Counters::add(&self.counters.misses, misses);
        if bad > 0 {
            Counters::add(&self.counters.decode_errors, bad);
        }
        if failed {
            Counters::add(&self.counters.errors, 1);
        }
        results
    }

    /// Decodes cached bytes for a decorated call; bytes that do not decode are a miss.
    pub fn decode_hit<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Option<T> {
        match self.codec.decode(key, bytes) {
            Ok(v) => {
                Counters::add(&self.counters.hits, 1);
                Some(v)
            }
            Err(e) => {
                Counters::add(&self.counters.decode_errors, 1);
                static LIMIT: LogLimit = LogLimit::new(Duration::from_secs(10));
                if let Some(held_back) = LIMIT.allow() {
                    tracing::warn!(error = %e, similar_errors_not_logged = held_back,
                        "rc: cached bytes do not decode; recomputing");
                }
                self.missed();
                None
            }
        }
    }

    /// Decodes a stale value standing in for a failed call
    /// (`stale_if_error`), counted as served stale.
    pub fn decode_stale<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Option<T> {
        let v = self.codec.decode(key, bytes).ok()?;
        Counters::add(&self.counters.stale_served, 1);
        Some(v)
    }

    pub fn missed(&self) {
        Counters::add(&self.counters.misses, 1);
    }

    /// A decorated call's options over this cache's defaults.
    pub fn plan(&self, opts: &Options) -> Result<Plan> {
        Plan::new(&self.calls, self.default_expire, opts)
    }

    /// Encodes a computed result for storing with `plan`'s expiry (jittered,
    /// plus its stale window), or `None` when there is nothing to store
    /// (`value` is `None`), it is bypassed or cannot be encoded.
    pub fn store_item<T: Serialize + ?Sized>(
        &self,
        key: String,
        value: Option<&T>,
        plan: &Plan,
    ) -> Option<SetItem> {
        match self.encode(value?) {
            Ok(bytes) if self.bypass.contains(&bytes) => {
                Counters::add(&self.counters.bypassed, 1);
                None
            }
            Ok(bytes) => Some((key, bytes, plan.stored_ttl())),
            Err(e) => {
                self.failed_open(&e);
                None
            }
        }
    }

    /// Counts and logs an error a decorated call or batch swallowed: at most
    /// one `warn` line per 10 s per process, saying how many it stands for.
    pub fn failed_open(&self, e: &Error) {
        static LIMIT: LogLimit = LogLimit::new(Duration::from_secs(10));
        Counters::add(&self.counters.errors, 1);
        match e {
            // An outage is already logged by the host's health; stay quiet per call.
            Error::HostDown { .. } => {
                tracing::debug!(error = %e, "rc: cache unavailable, running uncached")
            }
            _ => {
                if let Some(held_back) = LIMIT.allow() {
                    tracing::warn!(error = %e, similar_errors_not_logged = held_back,
                        "rc: cache error, running uncached");
                }
            }
        }
    }

    /// Counts the outcome of a direct call.
    pub fn count<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            Counters::add(&self.counters.errors, 1);
        }
        r
    }

    pub fn stored(&self, n: usize) {
        Counters::add(&self.counters.sets, n as u64);
    }

    /// Collects `(key, value)` pairs into namespaced, encoded set items.
    pub fn encode_items<K: AsRef<str>, V: Serialize>(
        &self,
        items: impl IntoIterator<Item = (K, V)>,
        expire: Option<Duration>,
    ) -> Result<Vec<SetItem>> {
        let expire = self.expire(expire)?;
        items
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    self.full_key(k.as_ref()).into_owned(),
                    self.encode(&v)?,
                    expire,
                ))
            })
            .collect()
    }

    /// The full keys of `keys`: `keys` themselves when there is no namespace
    /// (a 1000-key `get_many` then copies no key), else prefixed into `owned`.
    pub fn full_keys<'k, K: AsRef<str>>(
        &self,
        keys: &'k [K],
        owned: &'k mut Vec<String>,
    ) -> Vec<&'k str> {
        if self.namespace.is_empty() {
            keys.iter().map(AsRef::as_ref).collect()
        } else {
            *owned = keys.iter().map(|k| self.prefixed(k.as_ref())).collect();
            owned.iter().map(String::as_str).collect()
        }
    }
}
