//! How the primaries are found: `CLUSTER SLOTS` on a cluster node, or
//! `SENTINEL get-master-addr-by-name` on the Sentinels, whose
//! `+switch-master` announcements are followed as they come.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use redis::{Cmd, ConnectionLike, Value};

use super::{Found, Shared};
use crate::commands::{SLOTS, Split};
use crate::error::{Error, Result};
use crate::host::{HostConfig, Timeouts};

/// What tells rc where the primaries are.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A Redis Cluster, reached first through these seed nodes.
    Cluster {
        /// The nodes given by the application (more are found through them).
        seeds: Vec<HostConfig>,
    },
    /// A primary that Sentinels watch under the name `master`.
    Sentinel {
        /// The name the Sentinels know the primary by.
        master: String,
        /// The Sentinels.
        sentinels: Vec<HostConfig>,
    },
}

impl Source {
    /// How the primaries' multi-key commands are cut.
    pub(crate) fn split(&self) -> Split {
        match self {
            Source::Cluster { .. } => Split::Slots,
            Source::Sentinel { .. } => Split::Whole,
        }
    }

    /// True on a Redis Cluster: keys are routed by hash slot.
    pub(crate) fn split_slots(&self) -> bool {
        self.split() == Split::Slots
    }

    /// What errors and logs call it.
    pub(crate) fn label(&self) -> String {
        let addresses = |hosts: &[HostConfig]| {
            hosts
                .iter()
                .map(|h| super::node_name(&h.host, h.port))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Source::Cluster { seeds } => format!("Redis Cluster (seeds {})", addresses(seeds)),
            Source::Sentinel { master, sentinels } => {
                format!(
                    "Sentinel primary {master:?} (sentinels {})",
                    addresses(sentinels)
                )
            }
        }
    }
}

/// Looks the primaries up; `known` are the `host:port` of the primaries of
/// the current layout, asked before the seeds (which may be gone).
pub(crate) fn look_up(source: &Source, known: &[String], timeouts: Timeouts) -> Result<Found> {
    match source {
        Source::Cluster { seeds } => cluster_slots(seeds, known, timeouts),
        Source::Sentinel { master, sentinels } => sentinel_primary(master, sentinels, timeouts),
    }
}

/// Sends `cmd` to `host` on a connection of its own.
fn ask(host: &HostConfig, cmd: &Cmd, timeouts: Timeouts) -> Result<Value> {
    let address = host.address();
    let mut conn = crate::connection::redis_connection(&host.client()?, &address, timeouts)?;
    conn.req_command(cmd)
        .and_then(Value::extract_error)
        .map_err(|e| Error::redis(&address, e, timeouts.response))
}

fn cluster_slots(seeds: &[HostConfig], known: &[String], timeouts: Timeouts) -> Result<Found> {
    let template = &seeds[0];
    let known = known.iter().filter_map(|name| {
        let (host, port) = name.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(template.clone().host(host).port(port.parse().ok()?))
    });
    let mut last = None;
    for node in known.chain(seeds.iter().cloned()) {
        match ask(&node, redis::cmd("CLUSTER").arg("SLOTS"), timeouts) {
            Ok(v) => match parse_slots(v, &node.host) {
                Ok(found) => return Ok(found),
                Err(why) => {
                    last = Some(Error::config(format!(
                        "node {}: unexpected CLUSTER SLOTS reply: {why}",
                        node.address()
                    )))
                }
            },
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::config("a Redis Cluster needs at least one seed node")))
}

/// Reads a `CLUSTER SLOTS` reply: per range, its first and last slot and
/// its primary (an empty host is the node that answered).
fn parse_slots(v: Value, asked: &str) -> std::result::Result<Found, String> {
    let Value::Array(ranges) = v else {
        return Err(format!("{v:?}"));
    };
    let int = |v: &Value| match v {
        Value::Int(i) => u16::try_from(*i).ok(),
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let mut found = Vec::with_capacity(ranges.len());
    for range in &ranges {
        let Value::Array(parts) = range else {
            return Err(format!("{range:?}"));
        };
        let primary = match parts.get(2) {
            Some(Value::Array(p)) => p,
            other => return Err(format!("{other:?}")),
        };
        let (Some(first), Some(last), Some(host), Some(port)) = (
            parts.first().and_then(int),
            parts.get(1).and_then(int),
            primary.first().and_then(text),
            primary.get(1).and_then(int),
        ) else {
            return Err(format!("{range:?}"));
        };
        let host = match host.as_str() {
            "" | "?" => asked.to_owned(),
            _ => host,
        };
        found.push((first, last, host, port));
    }
    if found.is_empty() {
        return Err("no slot is served".into());
    }
    Ok(found)
}

/// The primary the Sentinels name with the newest configuration epoch (a
/// Sentinel that has not heard of the latest failover yet names the old
/// primary, with an older epoch).
fn sentinel_primary(master: &str, sentinels: &[HostConfig], timeouts: Timeouts) -> Result<Found> {
    let mut best: Option<(u64, String, u16)> = None;
    let mut last = None;
    let cmd = redis::cmd("SENTINEL").arg("MASTER").arg(master).clone();
    for sentinel in sentinels {
        let fields = ask(sentinel, &cmd, timeouts).and_then(|v| {
            redis::from_redis_value::<HashMap<String, String>>(v)
                .map_err(|e| Error::redis(&sentinel.address(), e.into(), timeouts.response))
        });
        let fields = match fields {
            Ok(f) => f,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        let field = |name: &str| fields.get(name).map(String::as_str);
        let (Some(host), Some(Ok(port))) = (field("ip"), field("port").map(str::parse::<u16>))
        else {
            last = Some(Error::config(format!(
                "sentinel {}: no address for {master:?} in {fields:?}",
                sentinel.address()
            )));
            continue;
        };
        let epoch = field("config-epoch")
            .and_then(|e| e.parse().ok())
            .unwrap_or(0);
        if best.as_ref().is_none_or(|(newest, ..)| epoch > *newest) {
            best = Some((epoch, host.to_owned(), port));
        }
    }
    match best {
        Some((_, host, port)) => Ok(vec![(0, SLOTS - 1, host, port)]),
        None => Err(last.unwrap_or_else(|| Error::config("Sentinel needs at least one sentinel"))),
    }
}

/// Listens to the Sentinels' `+switch-master` (one Sentinel at a time,
/// the next when it fails) and installs each new primary of our master as
/// soon as it is announced.
pub(crate) fn subscribe<N: Send + Sync + 'static>(shared: Weak<Shared<N>>) {
    let Some((master, sentinels, timeouts)) = shared.upgrade().and_then(|s| match &s.source {
        Source::Sentinel { master, sentinels } => {
            Some((master.clone(), sentinels.clone(), s.timeouts))
        }
        Source::Cluster { .. } => None,
    }) else {
        return;
    };
    for sentinel in sentinels.iter().cycle() {
        match listen(&shared, sentinel, &master, timeouts) {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(error = %e, "rc: sentinel subscription failed; trying the next");
                std::thread::sleep(LISTEN_SLICE);
            }
        }
        if shared.strong_count() == 0 {
            return;
        }
    }
}

/// How often a subscriber checks that its cache is still there.
const LISTEN_SLICE: Duration = Duration::from_secs(1);

/// Listens on one Sentinel until the cache is gone (`Ok`) or the Sentinel fails.
fn listen<N: Send + Sync + 'static>(
    shared: &Weak<Shared<N>>,
    sentinel: &HostConfig,
    master: &str,
    timeouts: Timeouts,
) -> Result<()> {
    let address = sentinel.address();
    let err = |e| Error::redis(&address, e, timeouts.response);
    let mut conn = crate::connection::redis_connection(&sentinel.client()?, &address, timeouts)?;
    let mut pubsub = conn.as_pubsub();
    pubsub.subscribe("+switch-master").map_err(err)?;
    pubsub.set_read_timeout(Some(LISTEN_SLICE)).map_err(err)?;
    // A switch announced before this subscription is found by a lookup.
    match shared.upgrade() {
        Some(s) => s.refresh(),
        None => return Ok(()),
    }
    loop {
        match pubsub.get_message() {
            Ok(msg) => {
                let payload: String = msg.get_payload().unwrap_or_default();
                // `<master> <old ip> <old port> <new ip> <new port>`
                let parts: Vec<&str> = payload.split(' ').collect();
                let [name, _, _, host, port] = parts[..] else {
                    continue;
                };
                let Ok(port) = port.parse::<u16>() else {
                    continue;
                };
                if name != master {
                    continue;
                }
                let Some(s) = shared.upgrade() else {
                    return Ok(());
                };
                tracing::info!(master, primary = %super::node_name(host, port), "rc: sentinel switched the primary");
                if let Err(e) = s.install(vec![(0, SLOTS - 1, host.to_owned(), port)], None) {
                    tracing::warn!(error = %e, "rc: cannot use the new primary");
                }
            }
            Err(e) if e.is_timeout() => {
                if shared.strong_count() == 0 {
                    return Ok(());
                }
            }
            Err(e) => return Err(err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_slots_replies() {
        let node = |h: &str, p: i64| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("", 7001),
                node("10.0.0.3", 7003),
            ]),
        ]);
        let found = parse_slots(reply, "10.0.0.9").unwrap();
        assert_eq!(
            found,
            vec![
                (0, 5460, "10.0.0.1".to_owned(), 7000),
                (5461, 16383, "10.0.0.9".to_owned(), 7001)
            ]
        );
        assert!(parse_slots(Value::Array(vec![]), "h").is_err());
        assert!(parse_slots(Value::Int(1), "h").is_err());
        let bad = Value::Array(vec![Value::Array(vec![Value::Int(0)])]);
        assert!(parse_slots(bad, "h").is_err());
    }
}
