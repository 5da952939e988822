//! The `#[rc::cache]` attribute. Use it through the `rc` crate, which
//! re-exports it as `rc::cache` and holds the user guide; this crate is an
//! implementation detail and its generated code names the runtime only
//! through `::rc`.
#![deny(missing_docs)]

mod args;
mod errors;
mod expand;
mod lifetimes;

use proc_macro::TokenStream;

/// Caches a function's result in Redis, keyed by its name and arguments.
///
/// ```text
/// #[rc::cache(expire = 3600)]
/// pub fn load(name: &str, offset: u32) -> Post { /* .. */ }
/// ```
///
/// (Runnable examples live in the `rc` crate's guide: this crate cannot
/// name `::rc` from its own doc tests.)
///
/// # Arguments
///
/// All optional, in any order:
///
/// | argument | meaning |
/// |---|---|
/// | `key_prefix = "v2"` | first word of every key; a string literal or a `&str` constant. Change it to orphan all old results. |
/// | `expire = 3600` | expiry in whole seconds (an integer literal ≥ 1, or a `u64` expression); default: the cache's default expiry. |
/// | `include_self = true` | put `self` (by `Display`) first in the key; only on methods. |
/// | `cache = EXPR` | the cache to use: EXPR is a `Cache` (or derefs to one, e.g. a `LazyLock<Cache>` static or `self.cache`) for a sync fn, an `AsyncCache` for an `async fn`. Default: the installed default cache, or uncached if none is installed. |
/// | `skip(a, b)` | arguments left out of the key (connections, handles, ...). |
/// | `single_flight = false` | concurrent misses of one key each run the function (default: they share one run, and a miss whose key another process is computing waits for its value). |
/// | `stale_while_revalidate = 30` | seconds (integer ≥ 0, or a `u64` expression; 0 is off): for this long past its expiry a value is returned at once while one caller, across processes, recomputes it in the background (a thread for a sync fn, a task on the current tokio runtime for an `async fn`). The background run owns its arguments: a borrowed argument `&T` is copied with `ToOwned` (so `T::Owned: Send + 'static`), others must be `Send + 'static`; not on methods or with `&mut` arguments. |
/// | `stale_if_error = 3600` | seconds (as above): when a `Result` function returns `Err` and its value expired no longer ago than this, the call returns that value instead (counted in `Stats::stale_served`). |
/// | `expire_jitter = 0.1` | a fraction in `[0, 1)`: each stored expiry is shortened by a random part of up to this fraction, so keys written together do not expire together. |
///
/// `single_flight`, `stale_while_revalidate`, `stale_if_error` and
/// `expire_jitter` default to the cache's own defaults (`CacheBuilder`
/// methods of the same names); the attribute overrides them. With a stale
/// window, values are stored for `expire` plus the longest window, and a
/// read takes the key's time left with it (`GET` and `PTTL` pipelined: one
/// round trip); the values keep rc's plain format.
/// | `module = "blog.models"` | the module part of the key instead of the Rust module path, e.g. to share the entries of a Python rc function. |
/// | `name = "get_post"` | the function part of the key instead of the function's name. |
/// | `python_args` | arguments written in the key as Python rc writes them (`True`, `None`, `1.0`, strings as is): see `rc::PythonArg` for the types that map exactly. With `module` and `name`, the key is byte for byte the Python twin's. |
///
/// # Key
///
/// `[key_prefix ]<module_path or module> <fn name or name> <arg> <arg> ..`: every argument not
/// skipped, in order, formatted by `Display` (so each must implement
/// `Display`), with a space in an argument written `%20` and a `%` written
/// `%25` so that distinct argument lists never share a key. With
/// `python_args`, each is written by `rc::PythonArg` instead, unescaped, as
/// rc 0.3.1 writes it. `self` is not part of the key unless `include_self = true`.
/// Two methods of the same name in one module share keys unless given
/// different `key_prefix`es.
///
/// # Generated items
///
/// Next to the function (as sibling items, so in an `impl` block they are
/// associated functions; not usable inside `impl Trait for` blocks, where
/// extra items are not allowed), with the same visibility, generics and
/// `#[cfg]`s:
///
/// * `fn <name>(..)` — the same signature; the body runs on a cache miss (or
///   when no cache is available), unchanged, so `return` and `?` behave as
///   before. A return type that resolves to a `Result` (`Result`,
///   `io::Result`, `anyhow::Result`, any alias) caches only `Ok` values; the
///   compiler decides, not the type's spelling, and a generic return type
///   `T` is cached whole. The cached type must implement
///   `serde::Serialize + serde::de::DeserializeOwned`.
/// * `fn invalidate_<name>(..) -> bool` — the same arguments (methods take
///   `&self`); deletes the cached value for them, `true` if one was deleted
///   (a Redis error is logged and gives `false`). `async` for an `async fn`.
/// * `fn try_invalidate_<name>(..) -> rc::Result<bool>` — the same, telling
///   "nothing cached" (`Ok(false)`) from a failure (`Err`, also when there is
///   no cache to use). `async` for an `async fn`.
/// * `fn batch_<name>(batch: &rc::Batch<'_>, ..) -> rc::Promise<T>` — records
///   the call in a batch (`&rc::AsyncBatch<'_>` for an `async fn`; this
///   function itself is not `async`); the promise resolves when the batch
///   runs. The batch's own cache is used, whatever `cache =` says. Borrowed
///   arguments must outlive the batch. For an `async fn`, the body's future
///   must be `Send`.
///
/// # Limitations
///
/// * Not inside `impl Trait for Type` blocks: the generated siblings are not
///   members of the trait (error E0407). Cache an inherent method and call it.
/// * `cache = self.field` needs a `&self` receiver: with `&mut self` or
///   `self: Arc<Self>` the body moves `self` while the cache borrows it.
/// * Arguments are plain identifiers (`mut x` is fine); destructure in the body.
///
/// # Errors
///
/// Misuse is a compile error on the offending token, every one of them
/// reported (not only the first); the function and stand-ins for its
/// generated siblings are still emitted, so callers see no follow-up errors.
/// Misuses: an unknown argument, a
/// non-integer `expire`, `skip` of an argument that does not exist,
/// `include_self` without `self`, an argument pattern that is not a plain
/// identifier, the attribute on something else than a function, a `const fn`.
/// Type errors point at the culprit too: an argument or `Self` without
/// `Display`, a return type that cannot be serialized, a `cache =` of the
/// wrong kind.
#[proc_macro_attribute]
pub fn cache(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attr.into(), item.into()).into()
}
