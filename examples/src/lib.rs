//! Support code of rc's runnable examples.
//!
//! The programs themselves are in `examples/examples/`: run one with
//! `cargo run --example NAME` (`blog` is the tutorial web app). This library
//! holds the blog app, so that its tests run the same code.

pub mod blog;

/// The Redis the examples use: `REDIS_URL`, or `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Prints log events on stderr: `info` and above by default, or what
/// `RUST_LOG` says (for example `RUST_LOG=rc=debug`). rc logs through
/// `tracing`: a server going down and coming back, and errors a cached call
/// swallowed (fail open), at most a line every few seconds.
pub fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // `try_init`: a test may have set one up already.
    // Colours on a terminal only: no escape codes in log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}
