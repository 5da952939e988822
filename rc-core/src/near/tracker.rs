//! One server's invalidation connection.
//!
//! A thread per server keeps a connection subscribed to the server's
//! invalidation messages: `CLIENT TRACKING on REDIRECT <itself> BCAST
//! PREFIX <namespace>`, then `SUBSCRIBE __redis__:invalidate` (RESP2, so it
//! works on the same connections as every other command and Redis 6+). While
//! it is quiet, a `PING` every [`HEARTBEAT`] checks the server still answers
//! within the response timeout. Any failure marks the server untracked
//! (its copies are no longer served) until a new connection is subscribed.

use std::sync::Weak;
use std::time::{Duration, Instant};

use redis::{Connection, Value};

use super::Near;
use crate::backend::ServerLink;
use crate::commands;
use crate::error::{Error, Result};

/// How long the connection may be quiet before it is pinged; also how soon
/// the thread notices its near cache was dropped.
const HEARTBEAT: Duration = Duration::from_millis(100);

/// First pause before reconnecting; it doubles on each failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Starts the thread that tracks server `index` for `near`.
pub(super) fn spawn(
    near: Weak<Near>,
    index: usize,
    link: ServerLink,
    prefix: String,
) -> Result<()> {
    std::thread::Builder::new()
        .name("rc-near-tracker".to_owned())
        .spawn(move || run(&near, index, &link, &prefix))
        .map(drop)
        .map_err(|e| Error::config(format!("cannot start the near cache's tracker thread: {e}")))
}

/// Why a session ended.
enum End {
    /// The near cache is gone: the thread ends.
    Dropped,
    /// No subscribed connection could be made: retry later.
    Failed(Error),
    /// The subscribed connection failed: flushed, reconnect.
    Lost(Error),
}

fn run(near: &Weak<Near>, index: usize, link: &ServerLink, prefix: &str) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let end = session(near, index, link, prefix);
        match near.upgrade() {
            Some(n) => n.untracked(index),
            None => return,
        }
        match end {
            End::Dropped => return,
            End::Lost(e) => {
                tracing::warn!(server = %link.address, error = %e,
                    "rc: near cache lost its invalidation connection; local copies of this server are not used until it is back");
            }
            // Once per outage at warn level; the retries at debug.
            End::Failed(e) if backoff == FIRST_BACKOFF => {
                tracing::warn!(server = %link.address, error = %e,
                    "rc: near cache cannot open its invalidation connection; retrying");
            }
            End::Failed(e) => {
                tracing::debug!(server = %link.address, error = %e, "rc: near cache still cannot track");
            }
        }
        // A session that ran a while was a good one: retry at once.
        if started.elapsed() > MAX_BACKOFF {
            backoff = FIRST_BACKOFF;
        }
        if !pause(near, backoff) {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Sleeps `d` in heartbeat steps; false when the near cache is gone.
fn pause(near: &Weak<Near>, d: Duration) -> bool {
    let until = Instant::now() + d;
    while near.strong_count() > 0 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(HEARTBEAT));
    }
    false
}

/// Connects, subscribes, marks the server tracked and applies invalidations
/// until the connection fails or the near cache is dropped.
fn session(near: &Weak<Near>, index: usize, link: &ServerLink, prefix: &str) -> End {
    let err = |e| Error::redis(&link.address, e, link.timeouts.response);
    let mut conn = match subscribe(link, prefix) {
        Ok(c) => c,
        Err(e) => return End::Failed(e),
    };
    let mut pubsub = conn.as_pubsub();
    if let Err(e) = pubsub.subscribe(commands::INVALIDATE_CHANNEL) {
        return End::Failed(err(e));
    }
    match near.upgrade() {
        Some(n) => n.tracking(index),
        None => return End::Dropped,
    }
    tracing::debug!(server = %link.address, "rc: near cache tracking");
    loop {
        let _ = pubsub.set_read_timeout(Some(HEARTBEAT));
        let message = match pubsub.get_message() {
            Ok(m) => m,
            Err(e) if e.is_timeout() => {
                if near.strong_count() == 0 {
                    return End::Dropped;
                }
                // Quiet: check the server still answers, within the response timeout.
                let _ = pubsub.set_read_timeout(Some(link.timeouts.response));
                if let Err(e) = pubsub.ping::<Value>() {
                    return End::Lost(err(e));
                }
                continue;
            }
            Err(e) => return End::Lost(err(e)),
        };
        let Some(near) = near.upgrade() else {
            return End::Dropped;
        };
        if message.get_channel_name() != commands::INVALIDATE_CHANNEL {
            continue;
        }
        match message.get_payload::<Option<Vec<Vec<u8>>>>() {
            // A null list: every key changed (FLUSHALL, FLUSHDB).
            Ok(None) => near.flushed(index),
            Ok(Some(keys)) => {
                // A key that is not UTF-8 is none of this cache's.
                for key in keys.iter().filter_map(|k| std::str::from_utf8(k).ok()) {
                    near.invalidate(key);
                }
            }
            Err(e) => return End::Lost(err(e)),
        }
    }
}

/// A connection to the server whose invalidations go to itself.
fn subscribe(link: &ServerLink, prefix: &str) -> Result<Connection> {
    let t = link.timeouts;
    let connect_err = |e| Error::redis(&link.address, e, t.connect);
    let err = |e| Error::redis(&link.address, e, t.response);
    let mut conn = link
        .client
        .get_connection_with_timeout(t.connect)
        .map_err(connect_err)?;
    conn.set_read_timeout(Some(t.response)).map_err(err)?;
    conn.set_write_timeout(Some(t.response)).map_err(err)?;
    let id: i64 = commands::client_id().query(&mut conn).map_err(err)?;
    commands::track_prefix(id, prefix)
        .query::<()>(&mut conn)
        .map_err(err)?;
    Ok(conn)
}
