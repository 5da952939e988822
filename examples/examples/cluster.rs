//! A cache cluster: keys spread over several Redis servers, multi-key calls
//! sent to all of them at once.
//!
//! Run: `cargo run --example cluster`. The hosts are the comma-separated
//! URLs of `REDIS_URLS`; without it, four databases (0 to 3) of the one
//! server at `REDIS_URL` (default `redis://127.0.0.1:6379`) stand in for four
//! servers.

use rc::{Cache, CacheCluster, HostConfig, Promise};

/// The cluster's host map: a name for each server, and where it is.
fn hosts() -> Result<Vec<(String, HostConfig)>, rc::Error> {
    if let Ok(urls) = std::env::var("REDIS_URLS") {
        let urls = urls.split(',').map(str::trim).filter(|u| !u.is_empty());
        return urls
            .enumerate()
            .map(|(i, url)| Ok((format!("cache{:02}", i + 1), HostConfig::from_url(url)?)))
            .collect();
    }
    let url = examples::redis_url();
    let server = HostConfig::from_url(&url)?;
    Ok((0..4)
        .map(|db| (format!("cache{:02}", db + 1), server.clone().db(db)))
        .collect())
}

#[rc::cache(expire = 60)]
fn profile(user_id: u32) -> String {
    format!("profile of user {user_id}")
}

fn main() -> Result<(), rc::Error> {
    examples::init_logs();
    let hosts = hosts()?;
    const NAMESPACE: &str = "rc-example:cluster:";

    // A cluster is built like a single cache and gives a `Cache`: every verb,
    // decorated function and batch works the same. The default router is
    // rc's CRC32 (see the custom_router example for others).
    let cache: Cache = CacheCluster::builder()
        .hosts(hosts.clone())
        .namespace(NAMESPACE)
        .max_concurrency(64) // how many servers a multi-key call talks to at once
        .build()?;

    // One set_many / get_many: one pipelined round trip per server, all
    // servers in parallel.
    let keys: Vec<String> = (0..20).map(|i| format!("user:{i}")).collect();
    cache.set_many(keys.iter().zip(0..20u32), None)?;
    let values: Vec<Option<u32>> = cache.get_many(&keys)?;
    println!("get_many of 20 keys -> {values:?}");
    assert_eq!(values, (0..20).map(Some).collect::<Vec<_>>());

    // Where did they go? Ask each server on its own.
    for (name, host) in &hosts {
        let single = Cache::builder()
            .host_config(host.clone())
            .namespace(NAMESPACE)
            .build()?;
        let here = single
            .get_many::<u32, _, _>(&keys)?
            .into_iter()
            .flatten()
            .count();
        println!("  {name} ({}) holds {here} of them", host.address());
    }

    // Decorated functions on a cluster; a batch fetches from all servers at once.
    cache.clone().install_default();
    let batch = cache.batch();
    let profiles: Vec<Promise<String>> = (0..8).map(|id| batch_profile(&batch, id)).collect();
    batch.run();
    let first = profiles.into_iter().next().and_then(Promise::into_value);
    println!("batch of 8 profiles, first -> {first:?}");
    assert_eq!(first.as_deref(), Some("profile of user 0"));

    let deleted = cache.delete_many(&keys)?;
    println!("delete_many of 20 keys -> {deleted}");
    assert_eq!(deleted, 20);
    println!("cluster: ok");
    Ok(())
}
