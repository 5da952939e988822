//! [`MemoryBackend`]: an in-process byte store that honours expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::backend::{Backend, SetItem};
use crate::error::Result;

/// An in-process store with Redis's expiry semantics, for tests and for
/// running without a server (rc's `FakeRedisCache` is built on it).
///
/// Values live in this process only: two processes never share them.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    entries: Mutex<Entries>,
}

type Entries = HashMap<String, (Vec<u8>, Instant)>;

/// Value entries and, under keys of their own, the leases on them (as on
/// Redis: a write or delete voids a key's lease).
fn lease_key(key: &str) -> String {
    format!("\0lease\0{key}")
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of live (unexpired) keys.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(k, (_, exp))| *exp > now && !k.starts_with('\0'))
            .count()
    }

    /// True when no live key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Time left before `key` expires, if it is stored.
    pub fn ttl(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        self.lock()
            .get(key)
            .and_then(|(_, exp)| exp.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read(
        map: &mut HashMap<String, (Vec<u8>, Instant)>,
        key: &str,
        now: Instant,
    ) -> Option<Vec<u8>> {
        match map.get(key) {
            Some((v, exp)) if *exp > now => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    fn write(
        map: &mut HashMap<String, (Vec<u8>, Instant)>,
        key: &str,
        value: &[u8],
        expire: Duration,
        now: Instant,
    ) {
        // Expired entries would otherwise only go when read again.
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, (_, exp)| *exp > now);
        }
        let at = now
            .checked_add(expire)
            .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        map.insert(key.to_owned(), (value.to_vec(), at));
        map.remove(&lease_key(key));
    }
}

impl Backend for MemoryBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(Self::read(&mut self.lock(), key, Instant::now()))
    }

    fn get_many(&self, keys: &[&str]) -> Vec<Result<Option<Vec<u8>>>> {
        let now = Instant::now();
        let mut map = self.lock();
        keys.iter()
            .map(|k| Ok(Self::read(&mut map, k, now)))
            .collect()
    }

    fn set(&self, key: &str, value: &[u8], expire: Duration) -> Result<bool> {
        Self::write(&mut self.lock(), key, value, expire, Instant::now());
        Ok(true)
    }

    fn set_many(&self, items: &[SetItem]) -> Result<bool> {
        let now = Instant::now();
        let mut map = self.lock();
        for (k, v, e) in items {
            Self::write(&mut map, k, v, *e, now);
        }
        Ok(true)
    }

    fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.delete_many(&[key])? > 0)
    }

    fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let now = Instant::now();
        let mut map = self.lock();
        let mut n = 0;
        for k in keys {
            map.remove(&lease_key(k));
            n += u64::from(map.remove(*k).is_some_and(|(_, exp)| exp > now));
        }
        Ok(n)
    }

    fn lease_many(&self, keys: &[&str], token: &str, ttl: Duration) -> Vec<Result<bool>> {
        let now = Instant::now();
        let mut map = self.lock();
        keys.iter()
            .map(|k| {
                let lease = lease_key(k);
                let free = Self::read(&mut map, &lease, now).is_none();
                if free {
                    Self::write(&mut map, &lease, token.as_bytes(), ttl, now);
                }
                Ok(free)
            })
            .collect()
    }

    fn release_leases(&self, keys: &[&str], token: &str) -> Result<()> {
        let now = Instant::now();
        let mut map = self.lock();
        for k in keys {
            let lease = lease_key(k);
            if Self::read(&mut map, &lease, now).as_deref() == Some(token.as_bytes()) {
                map.remove(&lease);
            }
        }
        Ok(())
    }

    fn set_many_leased(&self, items: &[SetItem], token: &str) -> Result<bool> {
        let now = Instant::now();
        let mut map = self.lock();
        let mut all = true;
        for (k, v, e) in items {
            let held = Self::read(&mut map, &lease_key(k), now);
            if held.as_deref() == Some(token.as_bytes()) {
                Self::write(&mut map, k, v, *e, now);
            } else {
                all = false;
            }
        }
        Ok(all)
    }

    fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        Ok(MemoryBackend::ttl(self, key))
    }

    fn ping(&self) -> Result<()> {
        Ok(())
    }
}

crate::backend::async_via_sync!(MemoryBackend);
