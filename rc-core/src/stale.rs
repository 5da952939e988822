//! Freshness of decorated calls' values: `stale_while_revalidate`,
//! `stale_if_error` and `expire_jitter`.
//!
//! Values keep rc's plain format: a value stays stored for its expiry plus
//! the longest stale window, and how stale it is comes from the time its key
//! has left (`PTTL`), read with it in one round trip. No envelope, so Python
//! rc reads these keys too (for as long as they are stored).

use std::time::Duration;

use crate::__private::Options;
use crate::error::{Error, Result};

/// A cache's defaults for its decorated calls (see [`CacheOptions`](crate::CacheOptions));
/// the attribute's options override them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallDefaults {
    pub single_flight: bool,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
    pub expire_jitter: f64,
    pub lease_wait: Duration,
}

/// How long a miss waits, by default, for another process computing its key.
pub(crate) const DEFAULT_LEASE_WAIT: Duration = Duration::from_secs(2);

impl Default for CallDefaults {
    fn default() -> Self {
        CallDefaults {
            single_flight: true,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            expire_jitter: 0.0,
            lease_wait: DEFAULT_LEASE_WAIT,
        }
    }
}

/// An expiry jitter must be a fraction in `[0, 1)`.
pub(crate) fn check_jitter(jitter: f64) -> Result<()> {
    if (0.0..1.0).contains(&jitter) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "expire_jitter must be a fraction in [0, 1), e.g. 0.1; got {jitter}"
        )))
    }
}

/// One decorated call's options, the attribute's over the cache's defaults.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// The expiry asked for, before jitter.
    pub expire: Duration,
    pub single_flight: bool,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
    pub jitter: f64,
    pub lease_wait: Duration,
    /// The function's path, the `function` label of its metrics.
    pub function: &'static str,
}

/// What a read found, by freshness.
pub(crate) enum Found {
    Fresh(Vec<u8>),
    /// Past its expiry by `past`, still stored for a stale window.
    Stale {
        bytes: Vec<u8>,
        past: Duration,
    },
    Missing,
}

impl Plan {
    pub fn new(d: &CallDefaults, default_expire: Duration, opts: &Options) -> Result<Plan> {
        let expire = opts.expire.unwrap_or(default_expire);
        if expire.is_zero() {
            return Err(Error::config("expire must be greater than zero"));
        }
        let jitter = opts.expire_jitter.unwrap_or(d.expire_jitter);
        check_jitter(jitter)?;
        Ok(Plan {
            expire,
            single_flight: opts.single_flight.unwrap_or(d.single_flight),
            stale_while_revalidate: opts
                .stale_while_revalidate
                .unwrap_or(d.stale_while_revalidate),
            stale_if_error: opts.stale_if_error.unwrap_or(d.stale_if_error),
            jitter,
            lease_wait: d.lease_wait,
            function: opts.function,
        })
    }

    /// How long a value stays stored past its expiry: the longest stale window.
    pub fn window(&self) -> Duration {
        self.stale_while_revalidate.max(self.stale_if_error)
    }

    /// The expiry to store a value with: the expiry, shortened by up to
    /// `jitter` of it at random (never longer than asked), plus the window.
    pub fn stored_ttl(&self) -> Duration {
        let expire = if self.jitter > 0.0 {
            self.expire.mul_f64(1.0 - self.jitter * unit_random())
        } else {
            self.expire
        };
        expire.max(Duration::from_millis(1)) + self.window()
    }

    /// Sorts a read by freshness from the time its key has left: fresh while
    /// more than the window is left. A key without expiry is fresh.
    pub fn sort(&self, read: Option<(Vec<u8>, Option<Duration>)>) -> Found {
        match read {
            None => Found::Missing,
            Some((bytes, Some(left))) if left <= self.window() => Found::Stale {
                bytes,
                past: self.window() - left,
            },
            Some((bytes, _)) => Found::Fresh(bytes),
        }
    }

    /// A stale value `past` its expiry may be served at once while it is refreshed.
    pub fn revalidates(&self, past: Duration) -> bool {
        !self.stale_while_revalidate.is_zero() && past <= self.stale_while_revalidate
    }

    /// A stale value `past` its expiry may stand in for a failed call.
    pub fn covers_error(&self, past: Duration) -> bool {
        !self.stale_if_error.is_zero() && past <= self.stale_if_error
    }
}

/// A number in `[0, 1)`, different at each call (std's random hash keys).
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(0u8) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(swr: u64, sie: u64, jitter: f64) -> Plan {
        let opts = Options::new()
            .expire(60)
            .stale_while_revalidate(swr)
            .stale_if_error(sie)
            .expire_jitter(jitter);
        Plan::new(&CallDefaults::default(), Duration::from_secs(1), &opts).unwrap()
    }

    #[test]
    fn freshness_from_the_time_left() {
        let p = plan(30, 3600, 0.0);
        assert_eq!(p.stored_ttl(), Duration::from_secs(3660));
        let left = |s| Some((b"v".to_vec(), Some(Duration::from_secs(s))));
        assert!(matches!(p.sort(left(3601)), Found::Fresh(_)));
        let Found::Stale { past, .. } = p.sort(left(3590)) else {
            panic!()
        };
        assert_eq!(past, Duration::from_secs(10));
        assert!(p.revalidates(past) && p.covers_error(past));
        let Found::Stale { past, .. } = p.sort(left(100)) else {
            panic!()
        };
        assert!(!p.revalidates(past) && p.covers_error(past));
        assert!(matches!(p.sort(None), Found::Missing));
        assert!(matches!(
            p.sort(Some((b"v".to_vec(), None))),
            Found::Fresh(_)
        ));
    }

    #[test]
    fn jitter_shortens_the_expiry_only() {
        let p = plan(0, 0, 0.5);
        let ttls: Vec<Duration> = (0..200).map(|_| p.stored_ttl()).collect();
        assert!(
            ttls.iter()
                .all(|t| *t > Duration::from_secs(30) && *t <= Duration::from_secs(60))
        );
        let distinct: std::collections::HashSet<_> = ttls.iter().collect();
        assert!(distinct.len() > 100, "spread: {}", distinct.len());
        assert!(
            check_jitter(1.0).is_err()
                && check_jitter(-0.1).is_err()
                && check_jitter(f64::NAN).is_err()
        );
    }
}
