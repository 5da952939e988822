//! Test helpers for rc.
//!
//! - [`RedisServer`]: a throwaway real `redis-server` (free TCP port or unix
//!   socket, in its own temp dir), with fault helpers for reliability tests.
#![deny(missing_docs)]

mod server;

pub use server::{RedisServer, RedisServerBuilder};
