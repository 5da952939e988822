//! The rc tutorial: a blog whose pages are cached in Redis.
//!
//! Run it from the repository root with `cargo run --release --example blog`
//! and open the address it prints. The app (database, model, caching, pages)
//! is in `examples/src/blog/`; this file only chooses where things are:
//!
//! - `REDIS_URL`: the Redis to cache in (default `redis://127.0.0.1:6379`).
//!   When nothing answers there, the blog starts a private `redis-server` for
//!   the run if one is installed, else caches in its own memory until that
//!   Redis answers. A Redis that refuses it (password, db) stops it with an error.
//! - `PORT`: the port to serve on, on 127.0.0.1 (default 3000).
//! - `BLOG_DB`: an SQLite file to keep the posts in (default: in memory, so
//!   they are gone when the program stops, as in the Python tutorial).
//! - `RUST_LOG`: what to log (default `info`).

use std::process::ExitCode;

use examples::blog::{self, Blog, Db};

#[tokio::main]
async fn main() -> ExitCode {
    examples::init_logs();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blog: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 3000,
    };
    let db = Db::open(std::env::var("BLOG_DB").ok().as_deref())?;
    let blog = Blog::connect(db, &examples::redis_url(), true).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            format!("cannot listen on 127.0.0.1:{port} ({e}); choose another with PORT=...")
        })?;
    tracing::info!(
        "blog: running at http://{}/ (Ctrl-C to stop)",
        listener.local_addr()?
    );
    // On Ctrl-C or SIGTERM the server stops, and so does a private
    // redis-server, when the blog (holding it) is dropped.
    axum::serve(listener, blog::app(blog))
        .with_graceful_shutdown(stopped())
        .await?;
    tracing::info!("blog: stopped");
    Ok(())
}

/// Resolves on Ctrl-C (or SIGTERM, on unix).
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
