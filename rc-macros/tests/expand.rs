//! Every function shape `#[rc::cache]` supports compiles, keeps its
//! behaviour (`return`, `?`, `Err` not cached), caches, invalidates and
//! batches. Runs on the in-process `FakeRedisCache`; no Redis needed. The
//! generated code must also be warning-free, hence the `deny`.
#![deny(warnings, missing_docs, unused)]

use std::fmt;
use std::num::ParseIntError;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, LazyLock};

use rc::testing::FakeRedisCache;
use rc::{AsyncCache, Cache, Promise};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

static FAKE: LazyLock<Cache> = LazyLock::new(FakeRedisCache::new);
static AFAKE: LazyLock<AsyncCache> = LazyLock::new(FakeRedisCache::new_async);

/// The key of a function of this module, as the macro builds it.
fn key(rest: &str) -> String {
    format!("{} {rest}", module_path!())
}

fn cached<T: DeserializeOwned>(key_rest: &str) -> Option<T> {
    FAKE.get(&key(key_rest)).unwrap()
}

/// A value type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// Id.
    pub id: u32,
    /// Title.
    pub title: String,
}

// ---------------------------------------------------------------- free fns

static LOADS: AtomicU32 = AtomicU32::new(0);

/// Documented, public, with an expiry: the doc comment stays on the wrapper.
#[rc::cache(cache = FAKE, expire = 3600)]
pub fn load(name: &str, offset: u32) -> Post {
    LOADS.fetch_add(1, SeqCst);
    Post {
        id: offset,
        title: name.to_owned(),
    }
}

#[test]
fn free_fn_caches_invalidates_and_batches() {
    let want = Post {
        id: 10,
        title: "name".into(),
    };
    assert_eq!(load("name", 10), want);
    assert_eq!(load("name", 10), want);
    assert_eq!(LOADS.load(SeqCst), 1);
    assert_eq!(cached::<Post>("load name 10"), Some(want.clone()));

    assert!(invalidate_load("name", 10));
    assert!(!invalidate_load("name", 10));
    assert_eq!(cached::<Post>("load name 10"), None);

    let batch = FAKE.batch();
    let promises: Vec<Promise<Post>> = (10..13).map(|i| batch_load(&batch, "name", i)).collect();
    assert!(promises.iter().all(Promise::is_pending));
    batch.run();
    let ids: Vec<u32> = promises
        .into_iter()
        .map(|p| p.into_value().unwrap().id)
        .collect();
    assert_eq!(ids, [10, 11, 12]);
    assert_eq!(LOADS.load(SeqCst), 4);
    assert_eq!(load("name", 12).id, 12);
    assert_eq!(LOADS.load(SeqCst), 4);
}

static PARSES: AtomicU32 = AtomicU32::new(0);

/// `?` and an early `return` in the body behave as without the attribute;
/// only `Ok` is cached.
#[rc::cache(cache = FAKE)]
pub(crate) fn parse(s: &str) -> Result<u32, ParseIntError> {
    PARSES.fetch_add(1, SeqCst);
    let n: u32 = s.parse()?;
    if n > 100 {
        return Ok(100);
    }
    Ok(n)
}

#[test]
fn result_question_mark_and_return() {
    assert_eq!(parse("7"), Ok(7));
    assert_eq!(parse("7"), Ok(7));
    assert_eq!(PARSES.load(SeqCst), 1);
    assert_eq!(parse("700"), Ok(100));
    assert!(parse("x").is_err());
    assert!(parse("x").is_err());
    assert_eq!(PARSES.load(SeqCst), 4, "Err is not cached");
    assert_eq!(cached::<u32>("parse 7"), Some(7));

    let batch = FAKE.batch();
    let ok = batch_parse(&batch, "8");
    let err = batch_parse(&batch, "y");
    batch.run();
    assert_eq!(ok.into_value().unwrap(), Ok(8));
    assert!(err.into_value().unwrap().is_err());
}

static IO_CALLS: AtomicU32 = AtomicU32::new(0);

/// A `Result` alias (`io::Result<T>`) is a `Result` too.
#[rc::cache(cache = FAKE, key_prefix = "io")]
fn io_alias(path: &str) -> std::io::Result<String> {
    IO_CALLS.fetch_add(1, SeqCst);
    if path.is_empty() {
        return Err(std::io::Error::other("empty"));
    }
    Ok(path.to_uppercase())
}

#[test]
fn result_alias_and_key_prefix() {
    assert_eq!(io_alias("a").unwrap(), "A");
    assert_eq!(io_alias("a").unwrap(), "A");
    assert!(io_alias("").is_err());
    assert!(io_alias("").is_err());
    assert_eq!(IO_CALLS.load(SeqCst), 3);
    assert_eq!(
        FAKE.get::<String>(&format!("io {}", key("io_alias a")))
            .unwrap(),
        Some("A".into())
    );
}

/// A local `Result` alias, spelled without `Result`.
type Fallible<T> = Result<T, String>;

static ALIAS_CALLS: AtomicU32 = AtomicU32::new(0);

/// The compiler, not the spelling, decides: only `Ok` is cached.
#[rc::cache(cache = FAKE, key_prefix = "alias")]
fn fallible(n: u32) -> Fallible<u32> {
    ALIAS_CALLS.fetch_add(1, SeqCst);
    if n == 0 {
        return Err("zero".into());
    }
    Ok(n)
}

/// A generic return type is cached whole, even when it is a `Result`.
#[rc::cache(cache = FAKE, key_prefix = "whole", skip(t))]
fn whole<T: Serialize + DeserializeOwned + Clone>(n: u32, t: T) -> T {
    ALIAS_CALLS.fetch_add(100, SeqCst);
    let _ = n;
    t
}

#[test]
fn result_by_resolved_type() {
    assert_eq!(fallible(0), Err("zero".into()));
    assert_eq!(fallible(0), Err("zero".into()));
    assert_eq!(fallible(3), Ok(3));
    assert_eq!(fallible(3), Ok(3));
    assert_eq!(ALIAS_CALLS.load(SeqCst), 3, "Err is not cached, Ok is");
    assert_eq!(
        FAKE.get::<u32>(&format!("alias {}", key("fallible 3")))
            .unwrap(),
        Some(3)
    );
    assert!(try_invalidate_fallible(3).unwrap());
    assert!(!try_invalidate_fallible(0).unwrap());
    let batch = FAKE.batch();
    let p = batch_fallible(&batch, 0);
    batch.run();
    assert_eq!(p.into_value(), Some(Err("zero".to_owned())));

    let e: Result<u8, String> = Err("kept".into());
    assert_eq!(whole(1, e.clone()), e);
    assert_eq!(whole(1, Err::<u8, String>("other".into())), e, "Err cached");
    assert_eq!(ALIAS_CALLS.load(SeqCst), 104);
}

static OPTIONS: AtomicU32 = AtomicU32::new(0);

/// `Option` caches `None` too; `skip` leaves `db` out of the key; `mut` args.
#[rc::cache(cache = FAKE, skip(db))]
fn find(db: &[u32], mut id: u32) -> Option<u32> {
    OPTIONS.fetch_add(1, SeqCst);
    id += 1;
    db.iter().copied().find(|&x| x == id)
}

#[test]
fn option_skip_and_mut_argument() {
    assert_eq!(find(&[1, 2], 0), Some(1));
    assert_eq!(find(&[], 0), Some(1), "db is not in the key");
    assert_eq!(find(&[], 5), None);
    assert_eq!(find(&[6], 5), None, "None is cached");
    assert_eq!(OPTIONS.load(SeqCst), 2);
    assert!(invalidate_find(&[], 5));
    let db = vec![6];
    let batch = FAKE.batch();
    let p = batch_find(&batch, &db, 5);
    batch.run();
    assert_eq!(p.into_value(), Some(Some(6)));
}

static UNITS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = FAKE)]
fn unit(n: u8) {
    UNITS.fetch_add(u32::from(n), SeqCst);
}

#[allow(clippy::unused_unit)]
#[rc::cache(cache = FAKE, expire = 60 * 60)]
fn explicit_unit() -> () {}

#[test]
fn unit_return() {
    unit(1);
    unit(1);
    assert_eq!(UNITS.load(SeqCst), 1);
    assert!(invalidate_unit(1));
    explicit_unit();
    assert!(invalidate_explicit_unit());
    let batch = FAKE.batch();
    let p = batch_unit(&batch, 2);
    batch.run();
    assert_eq!(p.into_value(), Some(()));
}

/// Generic, with a where clause and a named lifetime.
#[rc::cache(cache = FAKE)]
fn generic<'a, T>(label: &'a str, t: T) -> Vec<T>
where
    T: fmt::Display + Clone + Serialize + DeserializeOwned,
{
    vec![t.clone(), t]
}

/// `impl Trait` arguments are in the key by `Display`.
#[rc::cache(cache = FAKE)]
fn impl_trait(d: impl fmt::Display, n: u8) -> String {
    format!("{d}/{n}")
}

/// Lifetimes of every kind.
#[rc::cache(cache = FAKE)]
fn lifetimes<'a, 'b: 'a>(a: &'a str, b: &'b str, c: &'_ str, d: &str) -> String {
    format!("{a}{b}{c}{d}")
}

/// Arguments kept out of the key: function pointers, closures, an argument
/// named `batch`.
#[rc::cache(cache = FAKE, skip(f, g))]
fn callbacks(f: fn(&str) -> usize, g: &dyn Fn(&str) -> usize, batch: u8) -> usize {
    f("ab") + g("c") + usize::from(batch)
}

fn len(s: &str) -> usize {
    s.len()
}

#[test]
fn generics_impl_trait_lifetimes() {
    assert_eq!(generic("x", 3u8), [3, 3]);
    assert_eq!(cached::<Vec<u8>>("generic x 3"), Some(vec![3, 3]));
    assert_eq!(impl_trait(String::from("s"), 1), "s/1");
    assert_eq!(cached::<String>("impl_trait s 1"), Some("s/1".into()));
    assert_eq!(lifetimes("a", "b", "c", "d"), "abcd");
    assert_eq!(callbacks(len, &len, 1), 4);
    assert_eq!(cached::<usize>("callbacks 1"), Some(4));

    let owned = String::from("o");
    let batch = FAKE.batch();
    let p1 = batch_generic(&batch, &owned, 5u8);
    let p2 = batch_impl_trait(&batch, &owned, 2);
    let p3 = batch_lifetimes(&batch, &owned, "b", &owned, "d");
    let p4 = batch_callbacks(&batch, len, &len, 0);
    batch.run();
    assert_eq!(p1.into_value(), Some(vec![5, 5]));
    assert_eq!(p2.into_value().as_deref(), Some("o/2"));
    assert_eq!(p3.into_value().as_deref(), Some("obod"));
    assert_eq!(p4.into_value(), Some(3));
    assert!(invalidate_generic("o", 5u8));
    assert!(invalidate_impl_trait("o", 2));
    assert!(invalidate_lifetimes("o", "b", "o", "d"));
    assert!(invalidate_callbacks(len, &len, 0));
}

// ----------------------------------------------------------------- methods

/// A user with a `Display` identity and its own cache.
pub struct User {
    id: u32,
    calls: AtomicU32,
    cache: Cache,
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user{}", self.id)
    }
}

impl User {
    fn new(id: u32) -> User {
        User {
            id,
            calls: AtomicU32::new(0),
            cache: FakeRedisCache::new(),
        }
    }

    /// `self` in the key.
    #[rc::cache(cache = FAKE, include_self = true)]
    pub fn greet(&self, greeting: &str) -> String {
        self.calls.fetch_add(1, SeqCst);
        format!("{greeting} {}", self.id)
    }

    /// `self` not in the key; a cache reached through `self`.
    #[rc::cache(cache = self.cache)]
    fn shared(&self, n: u32) -> u32 {
        self.calls.fetch_add(1, SeqCst);
        self.id * n
    }

    #[rc::cache(cache = FAKE, key_prefix = "mut")]
    fn bump(&mut self, by: u32) -> u32 {
        self.id += by;
        self.id
    }

    #[rc::cache(cache = FAKE, include_self = true)]
    fn arc(self: Arc<Self>, n: u32) -> u32 {
        self.calls.fetch_add(1, SeqCst);
        self.id + n
    }

    #[rc::cache(cache = FAKE, include_self = true, key_prefix = "by_value")]
    fn into_id(self) -> u32 {
        self.id
    }

    #[rc::cache(cache = FAKE, key_prefix = "assoc")]
    pub(crate) fn assoc(n: u32) -> u32 {
        n * 2
    }

    #[rc::cache(cache = FAKE, key_prefix = "self_type")]
    fn of(user: &Self) -> u32 {
        user.id
    }
}

#[test]
fn methods() {
    let u = User::new(1);
    assert_eq!(u.greet("hi"), "hi 1");
    assert_eq!(u.greet("hi"), "hi 1");
    assert_eq!(u.calls.load(SeqCst), 1);
    assert_eq!(cached::<String>("greet user1 hi"), Some("hi 1".into()));
    assert!(u.invalidate_greet("hi"));
    let batch = FAKE.batch();
    let p = u.batch_greet(&batch, "yo");
    let q = User::batch_greet(&u, &batch, "hi");
    batch.run();
    assert_eq!(p.into_value().as_deref(), Some("yo 1"));
    assert_eq!(q.into_value().as_deref(), Some("hi 1"));

    // `self` left out of the key: two users share results (rc's default).
    let v = User::new(2);
    assert_eq!(u.shared(3), 3);
    assert_eq!(u.shared(3), 3);
    assert_eq!(u.cache.get::<u32>(&key("shared 3")).unwrap(), Some(3));
    assert_eq!(v.shared(3), 6, "v has its own cache");
    assert!(u.invalidate_shared(3));
    let batch = u.cache.batch();
    let p = u.batch_shared(&batch, 4);
    batch.run();
    assert_eq!(p.into_value(), Some(4));
}

#[test]
fn mut_arc_by_value_associated() {
    let mut u = User::new(10);
    assert_eq!(u.bump(1), 11);
    assert_eq!(u.bump(1), 11, "cached");
    assert!(u.invalidate_bump(1));
    {
        let batch = FAKE.batch();
        let p = u.batch_bump(&batch, 2);
        batch.run();
        assert_eq!(p.into_value(), Some(13));
    }
    assert_eq!(u.id, 13);

    let a = Arc::new(User::new(20));
    assert_eq!(a.clone().arc(1), 21);
    assert_eq!(a.clone().arc(1), 21);
    assert_eq!(a.calls.load(SeqCst), 1);
    assert_eq!(cached::<u32>("arc user20 1"), Some(21));
    assert!(a.invalidate_arc(1));
    let batch = FAKE.batch();
    let p = a.clone().batch_arc(&batch, 2);
    batch.run();
    assert_eq!(p.into_value(), Some(22));

    assert_eq!(User::new(30).into_id(), 30);
    assert!(User::new(30).invalidate_into_id());

    assert_eq!(User::assoc(4), 8);
    assert!(User::invalidate_assoc(4));
    let batch = FAKE.batch();
    let p = User::batch_assoc(&batch, 5);
    let q = User::batch_of(&batch, &u);
    batch.run();
    assert_eq!(p.into_value(), Some(10));
    assert_eq!(q.into_value(), Some(13));
    assert_eq!(User::of(&u), 13);
}

/// A generic type with a lifetime: `impl` parameters in `batch_<fn>`.
struct Repo<'r, T> {
    items: &'r [T],
}

impl<'r, T> Repo<'r, T>
where
    T: fmt::Display + Clone + Serialize + DeserializeOwned + Send + Sync,
{
    #[rc::cache(cache = FAKE, key_prefix = "repo")]
    fn get(&self, i: usize) -> Option<T> {
        self.items.get(i).cloned()
    }

    #[rc::cache(cache = FAKE, key_prefix = "repo")]
    fn repeat(t: T, n: usize) -> Vec<T> {
        vec![t; n]
    }

    #[rc::cache(cache = AFAKE, key_prefix = "repo")]
    async fn aget(&self, i: usize) -> Option<T> {
        self.items.get(i).cloned()
    }
}

#[tokio::test]
async fn impl_generics() {
    let items = [1u8, 2, 3];
    let repo = Repo { items: &items };
    assert_eq!(repo.get(1), Some(2));
    assert_eq!(Repo::<u8>::repeat(1, 2), [1, 1]);
    assert_eq!(repo.aget(2).await, Some(3));
    let batch = FAKE.batch();
    let p = repo.batch_get(&batch, 0);
    let q = Repo::batch_repeat(&batch, 7u8, 1);
    batch.run();
    assert_eq!(p.into_value(), Some(Some(1)));
    assert_eq!(q.into_value(), Some(vec![7]));
    let abatch = AFAKE.batch();
    let r = repo.batch_aget(&abatch, 0);
    abatch.run().await;
    assert_eq!(r.into_value(), Some(Some(1)));
    assert!(repo.invalidate_aget(0).await);
}

// ------------------------------------------------------------------- async

static ASYNC_CALLS: AtomicU32 = AtomicU32::new(0);

/// `?` inside an `async fn` body: its error type is inferred as before.
#[rc::cache(cache = AFAKE, expire = 60)]
async fn fetch(name: &str) -> Result<u32, ParseIntError> {
    ASYNC_CALLS.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    let n: u32 = name.parse()?;
    if n == 0 {
        return Ok(1);
    }
    Ok(n)
}

#[rc::cache(cache = AFAKE)]
async fn async_unit(n: u32) {
    ASYNC_CALLS.fetch_add(n, SeqCst);
}

/// A user's async API.
impl User {
    #[rc::cache(cache = AFAKE, include_self = true, key_prefix = "async")]
    async fn profile(&self, tab: &str) -> Option<String> {
        self.calls.fetch_add(1, SeqCst);
        Some(format!("{tab}{}", self.id))
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[tokio::test]
async fn async_fns() {
    assert_eq!(assert_send(fetch("5")).await, Ok(5));
    assert_eq!(fetch("5").await, Ok(5));
    assert_eq!(fetch("0").await, Ok(1));
    assert!(fetch("x").await.is_err());
    assert!(fetch("x").await.is_err());
    assert_eq!(ASYNC_CALLS.load(SeqCst), 4);
    assert!(assert_send(invalidate_fetch("5")).await);
    assert!(!invalidate_fetch("5").await);

    let batch = AFAKE.batch();
    let ps: Vec<_> = ["1", "2", "z"]
        .iter()
        .map(|s| batch_fetch(&batch, s))
        .collect();
    batch.run().await;
    let got: Vec<_> = ps
        .into_iter()
        .map(|p| p.into_value().unwrap().ok())
        .collect();
    assert_eq!(got, [Some(1), Some(2), None]);

    async_unit(0).await;
    assert!(invalidate_async_unit(0).await);
    let batch = AFAKE.batch();
    let p = batch_async_unit(&batch, 0);
    batch.run().await;
    assert!(p.is_resolved());

    let u = User::new(7);
    assert_eq!(assert_send(u.profile("t")).await.as_deref(), Some("t7"));
    assert_eq!(u.profile("t").await.as_deref(), Some("t7"));
    assert_eq!(u.calls.load(SeqCst), 1);
    assert!(u.invalidate_profile("t").await);
    let batch = AFAKE.batch();
    let p = u.batch_profile(&batch, "b");
    batch.run().await;
    assert_eq!(p.into_value().flatten().as_deref(), Some("b7"));

    // Spawnable: the generated future is `Send + 'static` for owned args.
    let handle = tokio::spawn(async { fetch("9").await });
    assert_eq!(handle.await.unwrap(), Ok(9));
}

// --------------------------------------------------------- default cache

/// No `cache =`, and this test binary installs no default: calls run
/// uncached, `invalidate_` finds nothing.
#[rc::cache]
fn uncached(n: u32) -> u32 {
    n
}

#[rc::cache]
async fn uncached_async(n: u32) -> u32 {
    n
}

#[tokio::test]
async fn no_default_cache_runs_uncached() {
    assert_eq!(uncached(3), 3);
    assert!(!invalidate_uncached(3));
    let err = try_invalidate_uncached(3).unwrap_err();
    assert!(err.to_string().contains("no default cache"), "{err}");
    assert!(try_invalidate_uncached_async(4).await.is_err());
    assert_eq!(assert_send(uncached_async(4)).await, 4);
    assert_eq!(tokio::spawn(uncached_async(5)).await.unwrap(), 5);
    assert!(!invalidate_uncached_async(4).await);
}

// ---------------------------------------------------------- other attributes

/// Items under `cfg` keep it on the generated functions; other attributes
/// stay on the wrapper.
#[cfg(test)]
#[inline]
#[must_use]
#[rc::cache(cache = FAKE)]
fn with_attrs(n: u32) -> u32 {
    n
}

mod nested {
    /// Visibility is kept: `pub` items are reachable from the parent.
    #[rc::cache(cache = super::FAKE)]
    pub fn visible(n: u32) -> u32 {
        n + 1
    }

    /// `pub(super)` too.
    #[rc::cache(cache = super::FAKE)]
    pub(super) fn semi(n: u32) -> u32 {
        n + 2
    }
}

#[test]
fn attributes_and_visibility() {
    assert_eq!(with_attrs(1), 1);
    assert_eq!(nested::visible(1), 2);
    assert!(nested::invalidate_visible(1));
    assert_eq!(nested::semi(1), 3);
    let batch = FAKE.batch();
    let p = nested::batch_semi(&batch, 2);
    batch.run();
    assert_eq!(p.into_value(), Some(4));
    assert_eq!(
        FAKE.get::<u32>(&format!("{}::nested visible 1", module_path!()))
            .unwrap(),
        None
    );
}

// ---------------------------------------------- stale_while_revalidate

/// A database handle a refresh clones (skipped from the key).
#[derive(Clone)]
pub struct Db(Arc<Vec<u32>>);

/// Borrowed arguments of every kind: the refresh owns copies of them.
#[rc::cache(cache = FAKE, expire = 60, stale_while_revalidate = 30, stale_if_error = 600, expire_jitter = 0.1, skip(db, ids))]
fn refreshing<'a>(db: &Db, name: &'a str, ids: &[u32], mut n: u32, label: String) -> String {
    n += ids.iter().sum::<u32>() + db.0.len() as u32;
    format!("{name} {n} {label}")
}

/// Async, with a `?` and an early `return`.
#[rc::cache(cache = AFAKE, stale_while_revalidate = 30)]
async fn refreshing_async(name: &str, n: &u32) -> Result<String, ParseIntError> {
    if *n == 0 {
        return Ok(String::new());
    }
    let parsed: u32 = name.parse()?;
    Ok(format!("{}", parsed + n))
}

/// `stale_while_revalidate = 0` is off: the arguments need not be owned.
#[rc::cache(cache = FAKE, stale_while_revalidate = 0, skip(cell))]
fn not_refreshing(cell: &std::cell::Cell<u32>, n: u32) -> u32 {
    cell.get() + n
}

#[test]
fn stale_while_revalidate_shapes() {
    let db = Db(Arc::new(vec![1, 2]));
    assert_eq!(refreshing(&db, "a", &[1, 2], 3, "l".into()), "a 8 l");
    assert_eq!(refreshing(&db, "a", &[1, 2], 3, "l".into()), "a 8 l");
    let left = FAKE.ttl(&key("refreshing a 3 l")).unwrap();
    assert!(left.is_some(), "stored");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(refreshing_async("40", &2).await, Ok("42".into()));
        assert!(refreshing_async("x", &2).await.is_err());
        assert_eq!(refreshing_async("x", &0).await, Ok(String::new()));
    });
    assert_eq!(not_refreshing(&std::cell::Cell::new(5), 1), 6);
}
