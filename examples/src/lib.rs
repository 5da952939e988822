//! Support code of rc's runnable examples.
//!
//! The programs themselves are in `examples/examples/`: run one with
//! `cargo run --example NAME` (`blog` is the tutorial web app). This library
//! holds the blog app, so that its end-to-end test runs the same code.

pub mod blog;

/// The Redis the examples use: `REDIS_URL`, or `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}
