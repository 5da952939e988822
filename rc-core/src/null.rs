//! [`NullBackend`]: a byte store that stores nothing.

use std::time::Duration;

use crate::backend::{Backend, SetItem};
use crate::error::Result;

/// A store that keeps nothing: reads miss, writes and deletes report
/// success. The store of `rc::testing::NullCache`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullBackend;

impl Backend for NullBackend {
    fn get(&self, _key: &str) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn get_many(&self, keys: &[&str]) -> Vec<Result<Option<Vec<u8>>>> {
        keys.iter().map(|_| Ok(None)).collect()
    }
    fn set(&self, _key: &str, _value: &[u8], _expire: Duration) -> Result<bool> {
        Ok(true)
    }
    fn set_many(&self, _items: &[SetItem]) -> Result<bool> {
        Ok(true)
    }
    fn delete(&self, _key: &str) -> Result<bool> {
        Ok(true)
    }
    fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        Ok(keys.len() as u64)
    }
    fn ttl(&self, _key: &str) -> Result<Option<Duration>> {
        Ok(None)
    }
    fn ping(&self) -> Result<()> {
        Ok(())
    }
}

crate::backend::async_via_sync!(NullBackend);
