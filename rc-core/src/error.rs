//! The one error type of rc.

use std::sync::Arc;
use std::time::Duration;

/// Boxed error produced by a [`Serializer`](crate::Serializer) or a custom backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used across rc.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in rc.
///
/// Errors that come from a server name it (`host` is the address rc dialled,
/// never a password). `Error` is `Clone`, so one failed host can fail many
/// keys of a multi-key call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis answered with an error, or the connection to it failed.
    #[error("redis at {host}: {source}")]
    Redis {
        /// The server that failed.
        host: String,
        /// The client's error.
        #[source]
        source: Arc<redis::RedisError>,
    },
    /// The server did not answer within the configured timeout.
    #[error("redis at {host}: no answer within {timeout:?}")]
    Timeout {
        /// The server that failed.
        host: String,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The server failed recently and is not retried until its backoff ends.
    #[error("redis at {host} is down (last error: {last_error}); next retry in {retry_in:?}")]
    HostDown {
        /// The server that failed.
        host: String,
        /// What went wrong the last time rc tried it.
        last_error: String,
        /// Time left until rc tries this server again.
        retry_in: Duration,
    },
    /// A value could not be encoded by the cache's serializer.
    #[error("cannot encode value with {serializer}: {source}")]
    Encode {
        /// Name of the serializer.
        serializer: &'static str,
        /// The serializer's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// Bytes stored under a key could not be decoded into the requested type.
    #[error("cannot decode the value of key {key:?} with {serializer}: {source}")]
    Decode {
        /// The full Redis key (namespace included).
        key: String,
        /// Name of the serializer.
        serializer: &'static str,
        /// The serializer's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The configuration is invalid (bad URL, port, host map, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A custom [`Backend`](crate::Backend) failed.
    #[error("backend {backend}: {source}")]
    Backend {
        /// Name of the backend.
        backend: String,
        /// The backend's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Builds an [`Error::Redis`] for `host`, turning client timeouts into [`Error::Timeout`].
    pub fn redis(host: &str, err: redis::RedisError, timeout: Duration) -> Self {
        if err.is_timeout() {
            Error::Timeout {
                host: host.to_owned(),
                timeout,
            }
        } else {
            Error::Redis {
                host: host.to_owned(),
                source: Arc::new(err),
            }
        }
    }

    /// Builds an [`Error::Config`].
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    /// True when the error says the server could not be reached or did not
    /// answer (as opposed to an error reply or a bad value).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::HostDown { .. } => true,
            Error::Redis { source, .. } => is_connection_error(source),
            _ => false,
        }
    }

    /// The server this error names, if any.
    pub fn host(&self) -> Option<&str> {
        match self {
            Error::Redis { host, .. }
            | Error::Timeout { host, .. }
            | Error::HostDown { host, .. } => Some(host),
            _ => None,
        }
    }
}

/// True for errors after which a connection must not be reused.
pub(crate) fn is_connection_error(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
}
