//! [`Promise`]: the value of a decorated call recorded in a batch.

use std::sync::{Arc, Mutex, OnceLock};

type Callback<T> = Box<dyn FnOnce(&T) + Send>;

/// A value that a batch resolves when it runs.
///
/// ```
/// use rc::Promise;
/// use std::sync::{Arc, Mutex};
///
/// let p = Promise::new();
/// assert!(p.is_pending() && !p.is_resolved());
/// assert_eq!(p.value(), None);
/// let seen = Arc::new(Mutex::new(None));
/// let s = seen.clone();
/// let p = p.then(move |v: &String| *s.lock().unwrap() = Some(v.clone()));
/// p.resolve("value".to_string());
/// assert!(p.is_resolved());
/// assert_eq!(p.value().map(String::as_str), Some("value"));
/// assert_eq!(seen.lock().unwrap().as_deref(), Some("value"));
/// assert_eq!(p.into_value().as_deref(), Some("value"));
/// ```
pub struct Promise<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    value: OnceLock<T>,
    callbacks: Mutex<Vec<Callback<T>>>,
}

impl<T> Default for Promise<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value() {
            Some(v) => f.debug_tuple("Promise::Resolved").field(v).finish(),
            None => f.write_str("Promise::Pending"),
        }
    }
}

impl<T> Promise<T> {
    /// A pending promise.
    pub fn new() -> Self {
        Promise {
            shared: Arc::new(Shared {
                value: OnceLock::new(),
                callbacks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// True until the promise is resolved.
    pub fn is_pending(&self) -> bool {
        self.shared.value.get().is_none()
    }

    /// True once the promise holds its value.
    pub fn is_resolved(&self) -> bool {
        !self.is_pending()
    }

    /// The value, once resolved.
    pub fn value(&self) -> Option<&T> {
        self.shared.value.get()
    }

    /// The value, once resolved; `None` while pending (for example when the
    /// batch was dropped without running).
    pub fn into_value(self) -> Option<T> {
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => shared.value.into_inner(),
            // The batch still holds the other handle: not run yet.
            Err(_) => None,
        }
    }

    /// Calls `callback` with the value when the promise resolves, or at once
    /// if it already has; returns the promise.
    pub fn then(self, callback: impl FnOnce(&T) + Send + 'static) -> Self {
        let mut callbacks = self
            .shared
            .callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match self.shared.value.get() {
            Some(v) => {
                drop(callbacks);
                callback(v);
            }
            None => {
                callbacks.push(Box::new(callback));
                drop(callbacks);
            }
        }
        self
    }

    /// Resolves the promise and runs its callbacks; false if it was already resolved.
    pub fn resolve(&self, value: T) -> bool {
        if self.shared.value.set(value).is_err() {
            return false;
        }
        let callbacks = std::mem::take(
            &mut *self
                .shared
                .callbacks
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if let Some(v) = self.shared.value.get() {
            for cb in callbacks {
                cb(v);
            }
        }
        true
    }

    /// A second handle for the batch that resolves this promise.
    pub(crate) fn handle(&self) -> Promise<T> {
        Promise {
            shared: self.shared.clone(),
        }
    }
}
