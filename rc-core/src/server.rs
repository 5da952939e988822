//! [`Server`]: what the blocking and the async Redis backends both know of
//! the one server they talk to.

use std::sync::Arc;

use redis::Pipeline;

use crate::backend::ServerLink;
use crate::commands::{self, Split};
use crate::error::{Error, Result};
use crate::health::Health;
use crate::host::{HostConfig, Timeouts};
use crate::replay::{Snapshot, Unreplayed};

/// A server's address, client, timeouts, health and missed deletes.
pub(crate) struct Server {
    pub client: redis::Client,
    /// As errors name the server.
    pub address: String,
    pub timeouts: Timeouts,
    pub health: Arc<Health>,
    pub unreplayed: Arc<Unreplayed>,
    pub split: Split,
}

impl Server {
    /// The server of `host`; the host's own timeouts (redis-py's
    /// `socket_timeout`, `socket_connect_timeout`) replace `timeouts`.
    pub fn new(host: &HostConfig, timeouts: Timeouts) -> Result<Server> {
        let timeouts = host.timeouts_over(timeouts);
        timeouts.validate()?;
        let client = host.client()?;
        let address = host.address();
        let unreplayed = Unreplayed::for_server(&address);
        Ok(Server {
            client,
            address,
            timeouts,
            health: Arc::default(),
            unreplayed,
            split: Split::Whole,
        })
    }

    /// Cuts multi-key commands per hash slot: a Redis Cluster node (see [`Split`]).
    pub fn with_split(mut self, split: Split) -> Self {
        if split == Split::Asking {
            // Its replays would be sent without `ASKING`: the node's own backend replays.
            self.unreplayed = Arc::default();
        }
        self.split = split;
        self
    }

    /// A reply error, naming this server.
    pub fn redis_err(&self, e: redis::RedisError) -> Error {
        Error::redis(&self.address, e, self.timeouts.response)
    }

    /// True while this server's values must not be trusted (see [`Unreplayed`]).
    pub fn distrusted(&self) -> bool {
        self.unreplayed.pending() && self.unreplayed.distrusted()
    }

    /// The keys whose write or delete missed this server and the `DEL` to
    /// send them before anything else (none when there are none); hand the
    /// keys to [`replayed`](Self::replayed) once it is sent.
    pub fn missed_deletes(&self) -> (Snapshot, Option<Pipeline>) {
        let keys = self.unreplayed.keys();
        let del = (!keys.is_empty()).then(|| {
            commands::del(
                commands::by_slot(keys.iter().map(String::as_str), self.split),
                self.split,
            )
        });
        (keys, del)
    }

    /// Marks the deletes of [`missed_deletes`](Self::missed_deletes) done.
    pub fn replayed(&self, keys: &Snapshot) {
        if !keys.is_empty() {
            tracing::info!(keys = keys.len(), server = %self.address, "rc: replayed missed deletes");
        }
        self.unreplayed.replayed(keys);
    }

    /// How the near cache reaches this server.
    pub fn link(&self) -> ServerLink {
        ServerLink {
            address: self.address.clone(),
            client: self.client.clone(),
            timeouts: self.timeouts,
        }
    }
}
