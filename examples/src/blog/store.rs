//! Where the blog caches: the Redis at `REDIS_URL`; else a private
//! `redis-server` started for the run; else this process's memory until that
//! Redis answers, then Redis, with no restart.
//!
//! A Redis that answers but refuses the blog (wrong password, bad db, not a
//! Redis URL) is a configuration error: [`connect`] returns it, and the blog
//! exits saying what to fix, rather than hiding it behind the fallback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rc::testing::RedisServer;
use rc::{AsyncBackend, AsyncCache, AsyncRedisBackend, BoxFuture, CacheOptions, SetItem};
use rc::{Error, HostConfig, MemoryBackend, Timeouts};

/// How often the watcher pings the Redis at `REDIS_URL`.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// A configuration the blog cannot start with; its text says what to fix.
#[derive(Debug)]
pub struct SetupError(String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// The cache's byte store: Redis, or memory until Redis answers.
///
/// It is the [`AsyncBackend`] of the blog's cache and sends each command to
/// whichever store is in use; the watcher task of [`connect`] switches it
/// to Redis (once) and logs Redis going away and coming back.
pub struct Store {
    redis: Arc<AsyncRedisBackend>,
    memory: MemoryBackend,
    on_redis: AtomicBool,
    /// Last seen state of Redis, for the stats page and the logs.
    redis_up: AtomicBool,
    /// The private server, if one was started; stopped when the store goes.
    private: Option<RedisServer>,
}

/// One line of the stats page's "servers" table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// What it is (`Redis at REDIS_URL`, `private redis-server`, `memory`).
    pub role: &'static str,
    /// Its address (never with a password).
    pub address: String,
    /// Up (answering, in use) or not.
    pub up: bool,
    /// What it is doing, in words.
    pub note: String,
}

impl Store {
    fn current(&self) -> &dyn AsyncBackend {
        if self.on_redis.load(Ordering::Acquire) {
            &*self.redis
        } else {
            &self.memory
        }
    }

    /// True when caching in Redis (the one at `REDIS_URL` or the private one).
    pub fn in_redis(&self) -> bool {
        self.on_redis.load(Ordering::Acquire)
    }

    /// The state of each store, for the stats page.
    pub fn servers(&self) -> Vec<ServerState> {
        let up = self.redis_up.load(Ordering::Acquire);
        let role = if self.private.is_some() {
            "private redis-server"
        } else {
            "Redis at REDIS_URL"
        };
        let redis = ServerState {
            role,
            address: self.redis.address().to_owned(),
            up,
            note: match (self.in_redis(), up) {
                (true, true) => "in use".to_owned(),
                (true, false) => "down: pages are computed uncached until it is back".to_owned(),
                (false, _) => "not answering: checked every second".to_owned(),
            },
        };
        let mut servers = vec![redis];
        if !self.in_redis() {
            servers.push(ServerState {
                role: "memory",
                address: "this process".to_owned(),
                up: true,
                note: "in use until Redis answers".to_owned(),
            });
        }
        servers
    }

    /// Follows Redis forever: switches from memory to it when it answers,
    /// and logs it going away and coming back (once per change).
    async fn watch(self: Arc<Self>, namespace: String) {
        let mut ticks = tokio::time::interval(WATCH_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let answered = self.redis.ping().await;
            let was_up = self.redis_up.swap(answered.is_ok(), Ordering::AcqRel);
            let address = self.redis.address();
            match (&answered, was_up, self.in_redis()) {
                (Ok(()), _, false) => match forget(&self.redis, &namespace).await {
                    Ok(()) => {
                        self.on_redis.store(true, Ordering::Release);
                        tracing::info!("blog: Redis at {address} answers now: caching there");
                    }
                    Err(e) => {
                        self.redis_up.store(false, Ordering::Release);
                        tracing::warn!("blog: Redis at {address} answers but cannot be used: {e}");
                    }
                },
                (Ok(()), false, true) => tracing::info!("blog: Redis at {address} is back"),
                (Err(e), true, true) => tracing::warn!(
                    "blog: Redis at {address} went away ({e}); pages are computed uncached until it is back"
                ),
                _ => {}
            }
        }
    }
}

/// Deletes the keys under `namespace` before the blog starts caching in
/// Redis: posts changed while it cached in memory may be there in an older
/// version (from an earlier run on the same `BLOG_DB`).
async fn forget(redis: &AsyncRedisBackend, namespace: &str) -> Result<(), Error> {
    let host = redis.address();
    let wrap = |e| Error::redis(host, e, Timeouts::default().response);
    let client = redis.client(namespace)?;
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .map_err(wrap)?;
    let keys: Vec<String> = {
        use futures_util::StreamExt;
        let iter = rc::redis::AsyncCommands::scan_match(&mut con, format!("{namespace}*"))
            .await
            .map_err(wrap)?;
        iter.collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(wrap)?
    };
    if !keys.is_empty() {
        rc::redis::cmd("UNLINK")
            .arg(&keys)
            .query_async::<()>(&mut con)
            .await
            .map_err(wrap)?;
    }
    Ok(())
}

/// The cache for the blog, with `options`, and its store.
///
/// `url` is `REDIS_URL`. When nothing answers there and `private_server` is
/// true and `redis-server` is installed, a private one is started for the
/// run (on a unix socket in a temp dir; stopped when the store is dropped).
/// Otherwise the blog caches in memory and switches to the Redis at `url`
/// as soon as it answers. Must run inside a Tokio runtime (the watcher is a task).
pub async fn connect(
    url: &str,
    options: CacheOptions,
    private_server: bool,
) -> Result<(AsyncCache, Arc<Store>), SetupError> {
    let host = HostConfig::from_url(url).map_err(|e| {
        SetupError(format!(
            "REDIS_URL={:?} is not a Redis URL ({e}); write it like redis://127.0.0.1:6379/0",
            redact(url)
        ))
    })?;
    let redis = backend(&host)?;
    let mut private = None;
    let mut on_redis = true;
    let redis = match redis.ping().await {
        Ok(()) => {
            tracing::info!("blog: caching in Redis at {}", redis.address());
            redis
        }
        Err(e) if !nothing_answers(&e) => {
            return Err(SetupError(format!(
                "the Redis at REDIS_URL ({}) answered but refused the blog: {e}\n\
                 check the password, user and db number in REDIS_URL",
                redis.address()
            )));
        }
        Err(e) => match private_server.then(start_private).flatten() {
            Some(server) => {
                let started = backend(&server.host_config())?;
                tracing::info!(
                    "blog: nothing answers at {} ({e}); started a private redis-server for this \
                     run at {} (stopped when the blog stops)",
                    redis.address(),
                    started.address()
                );
                private = Some(server);
                started
            }
            None => {
                tracing::warn!(
                    "blog: nothing answers at {} ({e}); caching in this process's memory until it does",
                    redis.address()
                );
                on_redis = false;
                redis
            }
        },
    };
    let store = Arc::new(Store {
        redis,
        memory: MemoryBackend::new(),
        on_redis: AtomicBool::new(on_redis),
        redis_up: AtomicBool::new(on_redis),
        private,
    });
    let backend: Arc<dyn AsyncBackend> = Arc::<Store>::clone(&store);
    let cache = options
        .build_async(backend)
        .map_err(|e| SetupError(format!("bad cache options: {e}")))?;
    tokio::spawn(Arc::clone(&store).watch(cache.namespace().to_owned()));
    Ok((cache, store))
}

fn backend(host: &HostConfig) -> Result<Arc<AsyncRedisBackend>, SetupError> {
    AsyncRedisBackend::new(host, Timeouts::default())
        .map(Arc::new)
        .map_err(|e| SetupError(format!("cannot use REDIS_URL: {e}")))
}

/// True when `e` means no server is there (refused, timed out, no socket),
/// rather than a server that answered with an error (auth, db index).
fn nothing_answers(e: &Error) -> bool {
    match e {
        Error::Timeout { .. } | Error::HostDown { .. } => true,
        Error::Redis { source, .. } => {
            source.is_connection_refusal() || source.is_timeout() || source.is_io_error()
        }
        _ => false,
    }
}

/// A private `redis-server` on a unix socket, if one is installed and starts.
fn start_private() -> Option<RedisServer> {
    match RedisServer::builder().unix_socket(true).try_start() {
        Ok(server) => Some(server),
        Err(e) => {
            tracing::info!("blog: no private redis-server ({e})");
            None
        }
    }
}

/// `url` with any password replaced by `***`, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Sends every command to the store in use.
impl AsyncBackend for Store {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, rc::Result<Option<Vec<u8>>>> {
        self.current().get(key)
    }
    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> BoxFuture<'a, Vec<rc::Result<Option<Vec<u8>>>>> {
        self.current().get_many(keys)
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        expire: Duration,
    ) -> BoxFuture<'a, rc::Result<bool>> {
        self.current().set(key, value, expire)
    }
    fn set_many<'a>(&'a self, items: &'a [SetItem]) -> BoxFuture<'a, rc::Result<bool>> {
        self.current().set_many(items)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, rc::Result<bool>> {
        self.current().delete(key)
    }
    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, rc::Result<u64>> {
        self.current().delete_many(keys)
    }
    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, rc::Result<Option<Duration>>> {
        self.current().ttl(key)
    }
    fn ping(&self) -> BoxFuture<'_, rc::Result<()>> {
        self.current().ping()
    }
    fn client(&self, key: &str) -> rc::Result<rc::redis::Client> {
        self.current().client(key)
    }
    fn lease_many<'a>(
        &'a self,
        keys: &'a [&'a str],
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Vec<rc::Result<bool>>> {
        self.current().lease_many(keys, token, ttl)
    }
    fn set_many_leased<'a>(
        &'a self,
        items: &'a [SetItem],
        token: &'a str,
    ) -> BoxFuture<'a, rc::Result<bool>> {
        self.current().set_many_leased(items, token)
    }
    fn release_leases<'a>(
        &'a self,
        keys: &'a [&'a str],
        token: &'a str,
    ) -> BoxFuture<'a, rc::Result<()>> {
        self.current().release_leases(keys, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(redact("redis://:pw@h:6379/1"), "redis://***@h:6379/1");
        assert_eq!(redact("redis://u:p@ss@h"), "redis://***@h");
        assert_eq!(redact("localhost:6379"), "localhost:6379");
    }
}
