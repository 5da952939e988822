//! The rc tutorial: a blog whose pages are cached in Redis.
//!
//! Run it from the repository root with `cargo run --example blog` and open
//! the address it prints. The app (database, model, caching, pages) is in
//! `examples/src/blog.rs`; this file only chooses where things are:
//!
//! - `REDIS_URL`: the Redis to cache in (default `redis://127.0.0.1:6379`).
//!   When it does not answer, the blog caches in its own memory and says so.
//! - `PORT`: the port to serve on, on 127.0.0.1 (default 3000).
//! - `BLOG_DB`: an SQLite file to keep the posts in (default: in memory, so
//!   they are gone when the program stops, as in the Python tutorial).

use examples::blog::{self, Blog, Db};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redis_url = examples::redis_url();
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 3000,
    };
    let db = Db::open(std::env::var("BLOG_DB").ok().as_deref())?;

    // Every key of this blog starts with a namespace tied to its database
    // (see `Db::cache_namespace`), so several blogs can share one Redis.
    let options = rc::CacheOptions::new().namespace(db.cache_namespace());
    let (cache, notice) = blog::connect_cache(&redis_url, options).await;
    match notice {
        Some(notice) => println!("{notice}"),
        // `address()` shows host, port and db, never the password.
        None => println!(
            "caching in Redis at {}",
            rc::HostConfig::from_url(&redis_url)?.address()
        ),
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            format!("cannot listen on 127.0.0.1:{port} ({e}); choose another with PORT=...")
        })?;
    println!(
        "blog running: open http://{}/ (Ctrl-C to stop)",
        listener.local_addr()?
    );
    axum::serve(listener, blog::app(Blog::new(db, cache))).await?;
    Ok(())
}
