//! Support code of rc's runnable examples.
//!
//! The programs themselves are in `examples/examples/`: run one with
//! `cargo run --example NAME` (`blog` is the tutorial web app). This library
//! holds the blog app, so that its end-to-end test runs the same code.

pub mod blog;
