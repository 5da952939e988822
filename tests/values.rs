//! Exact values against a real redis-server: every f64 bit for bit, Python's
//! `NaN`/`Infinity`, big integers, escapes and what cannot be represented,
//! and `get_many_results` keeping the good values next to a bad one.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use rc::testing::RedisServer;
use rc::{AsyncCache, Cache, CacheCluster, CborSerializer, Error, HostConfig};
use serde::{Deserialize, Serialize};

// ------------------------------------------------------------------ helpers

/// xorshift64*: a seeded, reproducible stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Floats no random draw is likely to hit: zeros, subnormals, the extremes,
/// the infinities and NaN (the sign of NaN and its payload are not kept).
const SPECIALS: [f64; 16] = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    f64::from_bits(0x000f_ffff_ffff_ffff), // the largest subnormal
    f64::MIN_POSITIVE,
    -f64::MIN_POSITIVE,
    f64::MAX,
    f64::MIN,
    f64::EPSILON,
    0.1,
    1e16,
    9_007_199_254_740_993.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
];

/// `n` floats from `seed`: the specials, then a mix of uniformly random bit
/// patterns (every exponent: subnormals, huge, NaNs), values in [0, 1) and
/// small decimals, the kinds a cache holds.
fn floats(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = Rng(seed);
    let mut v = SPECIALS.to_vec();
    while v.len() < n {
        let x = rng.next();
        v.push(match x % 4 {
            0 | 1 => f64::from_bits(rng.next()),
            2 => (rng.next() >> 11) as f64 / (1u64 << 53) as f64,
            _ => (rng.next() % 2_000_000) as f64 / 1000.0 - 1000.0,
        });
    }
    v
}

/// Bit for bit, any NaN matching any NaN.
fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

fn assert_same(sent: &[f64], back: &[Option<f64>], how: &str) {
    assert_eq!(sent.len(), back.len(), "{how}");
    let wrong: Vec<_> = sent
        .iter()
        .zip(back)
        .filter(|(a, b)| !b.is_some_and(|b| same(**a, b)))
        .map(|(a, b)| format!("{a:e} -> {b:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{how}: {} of {} floats came back changed, e.g. {:?}",
        wrong.len(),
        sent.len(),
        &wrong[..wrong.len().min(5)]
    );
}

const N: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    value: f64,
    min: Option<f64>,
    history: Vec<f64>,
    by_hour: BTreeMap<u8, f64>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Plain,
    Scaled(f64),
    Range { lo: f64, hi: f64 },
}

fn reading(value: f64) -> Reading {
    Reading {
        sensor: "t1".into(),
        value,
        min: Some(f64::NEG_INFINITY),
        history: vec![1.5, f64::NAN, f64::INFINITY, -0.0],
        by_hour: BTreeMap::from([(0, f64::NAN), (13, 2.5)]),
        kind: Kind::Range {
            lo: f64::NEG_INFINITY,
            hi: f64::INFINITY,
        },
    }
}

/// `reading` came back with every float kept (NaN as NaN).
fn assert_reading(got: &Reading, value: f64) {
    assert!(same(got.value, value), "{got:?}");
    assert_eq!(got.min, Some(f64::NEG_INFINITY));
    assert_eq!(got.history.len(), 4);
    assert!(got.history[0] == 1.5 && got.history[1].is_nan());
    assert!(got.history[2] == f64::INFINITY && same(got.history[3], -0.0));
    assert!(got.by_hour[&0].is_nan() && got.by_hour[&13] == 2.5);
    assert_eq!(
        got.kind,
        Kind::Range {
            lo: f64::NEG_INFINITY,
            hi: f64::INFINITY
        }
    );
}

// What Python 2.7.18's `json.dumps` (Python rc's JSON serializer) writes, run
// with `PYENV_VERSION=2.7.18 python2 -c 'import json; print json.dumps(..)'`.

/// `json.dumps({"a": float("nan"), "b": [float("inf"), -float("inf")], "c": 1e308, "d": u"\u00e9"})`
const PY_SAMPLE: &str = r#"{"a": NaN, "c": 1e+308, "b": [Infinity, -Infinity], "d": "\u00e9"}"#;
/// `json.dumps([2**70, -2**70, 2**64, -2**63 - 1])`
const PY_BIG_INTS: &str =
    "[1180591620717411303424, -1180591620717411303424, 18446744073709551616, -9223372036854775809]";
/// `json.dumps(u"caf\u00e9 \u4f60\u597d \U0001f680")` (non-ASCII escaped by default)
const PY_UNICODE: &str = r#""caf\u00e9 \u4f60\u597d \ud83d\ude80""#;
/// `json.dumps(u"\ud800")`: a lone surrogate, which Python strings may hold.
const PY_LONE_SURROGATE: &str = r#""\ud800""#;
/// `json.dumps({1: -0.0, 2: 5e-324, 3: 0.1, 4: 1e16})` (int keys become strings)
const PY_FLOATS: &str = r#"{"1": -0.0, "2": 5e-324, "3": 0.1, "4": 1e+16}"#;

#[derive(Debug, Deserialize)]
struct PySample {
    a: f64,
    b: Vec<f64>,
    c: f64,
    d: String,
}

/// `json.dumps` of a list nested `depth` deep around `1`.
fn py_nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn decode_error_key(err: &Error) -> &str {
    match err {
        Error::Decode { key, .. } => key,
        other => panic!("expected a decode error, got {other}"),
    }
}

// ---------------------------------------------------------------- blocking

#[test]
fn every_f64_round_trips_bit_for_bit_through_get_and_set() {
    let server = RedisServer::builder().unix_socket(true).start();
    let cache = Cache::open(&server.url()).unwrap();
    let sent = floats(0x5eed_0001, N);
    let back: Vec<Option<f64>> = sent
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let key = format!("f{i}");
            assert!(cache.set(&key, f, None).unwrap());
            cache.get::<f64>(&key).unwrap()
        })
        .collect();
    assert_same(&sent, &back, "set/get");
    // Stored as Python writes them.
    assert_eq!(server.cli(&["GET", "f1"]), "-0.0");
    assert_eq!(server.cli(&["GET", "f13"]), "Infinity");
    assert_eq!(server.cli(&["GET", "f14"]), "-Infinity");
    assert_eq!(server.cli(&["GET", "f15"]), "NaN");
    // The f32 view of the same keys: each decodes to the nearest f32.
    let as_f32 = cache.get::<f32>("f10").unwrap().unwrap();
    assert_eq!(as_f32, 0.1f32);
}

#[test]
fn every_f64_round_trips_bit_for_bit_through_set_many_and_get_many() {
    let server = RedisServer::builder().unix_socket(true).start();
    let cache = Cache::builder()
        .url(&server.url())
        .namespace("ns:")
        .build()
        .unwrap();
    let sent = floats(0x5eed_0002, N);
    let keys: Vec<String> = (0..sent.len()).map(|i| format!("g{i}")).collect();
    for (keys, values) in keys.chunks(1000).zip(sent.chunks(1000)) {
        assert!(cache.set_many(keys.iter().zip(values), None).unwrap());
    }
    let mut back = Vec::new();
    let mut results = Vec::new();
    for chunk in keys.chunks(1000) {
        back.extend(cache.get_many::<f64, _, _>(chunk).unwrap());
        results.extend(
            cache
                .get_many_results::<f64, _, _>(chunk)
                .into_iter()
                .map(Result::unwrap),
        );
    }
    assert_same(&sent, &back, "set_many/get_many");
    assert_same(&sent, &results, "get_many_results");
    // Whole vectors too (one value holding all 20,000).
    assert!(cache.set("all", &sent, None).unwrap());
    let all: Vec<f64> = cache.get("all").unwrap().unwrap();
    assert_same(
        &sent,
        &all.into_iter().map(Some).collect::<Vec<_>>(),
        "Vec<f64>",
    );
}

static FLOAT_CALLS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = cache, skip(cache))]
fn float_of(cache: &Cache, bits: u64) -> f64 {
    let _ = cache;
    FLOAT_CALLS.fetch_add(1, SeqCst);
    f64::from_bits(bits)
}

#[rc::cache(cache = cache, skip(cache))]
fn reading_of(cache: &Cache, value: f64) -> Reading {
    let _ = cache;
    FLOAT_CALLS.fetch_add(1, SeqCst);
    reading(value)
}

#[test]
fn decorated_results_keep_every_float() {
    let server = RedisServer::builder().unix_socket(true).start();
    let cache = Cache::open(&server.url()).unwrap();
    let sent = floats(0x5eed_0003, 2_000);
    let first: Vec<Option<f64>> = sent
        .iter()
        .map(|f| Some(float_of(&cache, f.to_bits())))
        .collect();
    let calls = FLOAT_CALLS.load(SeqCst);
    let second: Vec<Option<f64>> = sent
        .iter()
        .map(|f| Some(float_of(&cache, f.to_bits())))
        .collect();
    assert_eq!(FLOAT_CALLS.load(SeqCst), calls, "served from redis");
    assert_same(&sent, &first, "computed");
    assert_same(&sent, &second, "cached");
    assert_eq!(cache.stats().decode_errors, 0);

    assert_reading(&reading_of(&cache, f64::NAN), f64::NAN);
    let calls = FLOAT_CALLS.load(SeqCst);
    assert_reading(&reading_of(&cache, f64::NAN), f64::NAN);
    assert_eq!(FLOAT_CALLS.load(SeqCst), calls, "a NaN result is a hit");
}

#[test]
fn non_finite_floats_are_written_as_python_writes_them() {
    let server = RedisServer::start();
    let cache = Cache::open(&server.url()).unwrap();
    assert!(cache.set("nan", &f64::NAN, None).unwrap());
    assert_eq!(server.cli(&["GET", "nan"]), "NaN");
    assert!(cache.get::<f64>("nan").unwrap().unwrap().is_nan());
    assert!(cache.get::<f32>("nan").unwrap().unwrap().is_nan());
    assert!(
        cache
            .get::<Option<f64>>("nan")
            .unwrap()
            .unwrap()
            .unwrap()
            .is_nan()
    );

    let value = reading(f64::INFINITY);
    assert!(cache.set("r", &value, None).unwrap());
    assert_eq!(
        server.cli(&["GET", "r"]),
        r#"{"sensor":"t1","value":Infinity,"min":-Infinity,"history":[1.5,NaN,Infinity,-0.0],"by_hour":{"0":NaN,"13":2.5},"kind":{"Range":{"lo":-Infinity,"hi":Infinity}}}"#
    );
    assert_reading(&cache.get::<Reading>("r").unwrap().unwrap(), f64::INFINITY);
    let scaled = HashMap::from([("s".to_owned(), vec![Kind::Scaled(f64::NAN), Kind::Plain])]);
    assert!(cache.set("s", &scaled, None).unwrap());
    assert_eq!(
        server.cli(&["GET", "s"]),
        r#"{"s":[{"Scaled":NaN},"Plain"]}"#
    );
    let back: HashMap<String, Vec<Kind>> = cache.get("s").unwrap().unwrap();
    assert!(matches!(back["s"][..], [Kind::Scaled(x), Kind::Plain] if x.is_nan()));
    // A string "NaN" stays a string.
    assert!(cache.set("text", &"NaN", None).unwrap());
    assert_eq!(cache.get::<String>("text").unwrap().as_deref(), Some("NaN"));
    assert_eq!(cache.stats().decode_errors, 0);
}

#[test]
fn values_python_rc_writes_decode() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .url(&server.url())
        .namespace("py:")
        .build()
        .unwrap();
    let set =
        |key: &str, json: &str| assert_eq!(server.cli(&["SET", &format!("py:{key}"), json]), "OK");

    set("sample", PY_SAMPLE);
    let s: PySample = cache.get("sample").unwrap().unwrap();
    assert!(s.a.is_nan());
    assert_eq!(s.b, [f64::INFINITY, f64::NEG_INFINITY]);
    assert_eq!((s.c, s.d.as_str()), (1e308, "é"));

    set("ints", PY_BIG_INTS);
    let ints: (u128, i128, u128, i128) = cache.get("ints").unwrap().unwrap();
    assert_eq!(
        ints,
        (1 << 70, -(1 << 70), 1 << 64, i128::from(i64::MIN) - 1)
    );
    let err = cache.get::<Vec<i64>>("ints").unwrap_err();
    assert_eq!(decode_error_key(&err), "py:ints");
    let floats: Vec<f64> = cache.get("ints").unwrap().unwrap();
    assert_eq!(floats[0], 1180591620717411303424.0);

    set("unicode", PY_UNICODE);
    assert_eq!(
        cache.get::<String>("unicode").unwrap().as_deref(),
        Some("café 你好 🚀")
    );

    set("floats", PY_FLOATS);
    let f: BTreeMap<u32, f64> = cache.get("floats").unwrap().unwrap();
    assert!(same(f[&1], -0.0));
    assert_eq!((f[&2], f[&3], f[&4]), (5e-324, 0.1, 1e16));

    // Clear errors naming the key for what Rust cannot hold.
    set("surrogate", PY_LONE_SURROGATE);
    let err = cache.get::<String>("surrogate").unwrap_err();
    assert_eq!(decode_error_key(&err), "py:surrogate");
    assert!(err.to_string().contains("surrogate"), "{err}");

    set("deep127", &py_nested(127));
    assert!(
        cache
            .get::<serde_json_value::Any>("deep127")
            .unwrap()
            .is_some()
    );
    set("deep200", &py_nested(200));
    let err = cache.get::<serde_json_value::Any>("deep200").unwrap_err();
    assert_eq!(decode_error_key(&err), "py:deep200");
    assert!(err.to_string().contains("recursion limit"), "{err}");
    set("deep200nan", &py_nested(200).replace('1', "NaN"));
    let err = cache
        .get::<serde_json_value::Any>("deep200nan")
        .unwrap_err();
    assert_eq!(decode_error_key(&err), "py:deep200nan");
    assert!(err.to_string().contains("recursion limit"), "{err}");
    assert_eq!(cache.stats().decode_errors, 4);
}

/// Any JSON value, NaN included (serde_json's `Value` has no NaN).
mod serde_json_value {
    #[derive(Debug, serde::Deserialize)]
    #[serde(untagged)]
    #[allow(dead_code)]
    pub enum Any {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        List(Vec<Any>),
        Map(std::collections::BTreeMap<String, Any>),
    }
}

#[test]
fn what_json_cannot_hold_is_an_encode_error() {
    let server = RedisServer::start();
    let cache = Cache::open(&server.url()).unwrap();
    let tuple_keys = HashMap::from([((1, 2), "a")]);
    let err = cache.set("k", &tuple_keys, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Encode {
                serializer: "json",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("key must be"), "{err}");
    assert_eq!(server.cli(&["GET", "k"]), "(nil)");
    let err = cache
        .set_many([("a", HashMap::new()), ("b", tuple_keys)], None)
        .unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err}");
    assert_eq!(server.cli(&["EXISTS", "a", "b"]), "0");

    // Deeper than rc reads back: refused on the way in.
    let mut deep = serde_json::json!(1);
    for _ in 0..128 {
        deep = serde_json::json!([deep]);
    }
    let err = cache.set("deep", &deep, None).unwrap_err();
    assert!(err.to_string().contains("nesting deeper than 127"), "{err}");
    assert_eq!(server.cli(&["GET", "deep"]), "(nil)");
    let deep = deep[0].clone();
    assert!(cache.set("deep", &deep, None).unwrap());
    assert_eq!(cache.get::<serde_json::Value>("deep").unwrap(), Some(deep));

    // Integer and float keys are strings, as Python writes them.
    assert!(cache.set("ik", &BTreeMap::from([(1u8, 2)]), None).unwrap());
    assert_eq!(server.cli(&["GET", "ik"]), r#"{"1":2}"#);
    assert_eq!(
        cache.get::<BTreeMap<u8, i32>>("ik").unwrap(),
        Some(BTreeMap::from([(1, 2)]))
    );
    assert_eq!(cache.stats().sets, 2);
}

#[test]
fn one_bad_value_does_not_hide_the_others() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .url(&server.url())
        .namespace("m:")
        .build()
        .unwrap();
    cache.set("a", &1.5, None).unwrap();
    server.cli(&["SET", "m:b", "NaN"]); // Python's NaN: decodes now
    server.cli(&["SET", "m:c", "not json"]);
    server.cli(&["SET", "m:e", "[1e+2]"]);
    let keys = ["a", "b", "c", "d", "e"];

    let err = cache.get_many::<f64, _, _>(keys).unwrap_err();
    assert_eq!(decode_error_key(&err), "m:c", "the error names the bad key");
    let before = cache.stats();

    let results = cache.get_many_results::<f64, _, _>(keys);
    assert_eq!(results.len(), 5);
    assert_eq!(results[0].as_ref().unwrap(), &Some(1.5));
    assert!(results[1].as_ref().unwrap().unwrap().is_nan());
    assert_eq!(decode_error_key(results[2].as_ref().unwrap_err()), "m:c");
    assert_eq!(results[3].as_ref().unwrap(), &None);
    assert_eq!(decode_error_key(results[4].as_ref().unwrap_err()), "m:e");
    let after = cache.stats();
    assert_eq!(after.hits - before.hits, 2);
    assert_eq!(after.misses - before.misses, 1);
    assert_eq!(after.decode_errors - before.decode_errors, 2);
    assert_eq!(after.errors, before.errors);

    // Without the bad keys, get_many answers.
    let good = cache.get_many::<f64, _, _>(["a", "b", "d"]).unwrap();
    assert_eq!(good[0], Some(1.5));
    assert!(good[1].unwrap().is_nan() && good[2].is_none());
    assert!(
        cache
            .get_many_results::<f64, _, _>(Vec::<&str>::new())
            .is_empty()
    );
}

#[test]
fn a_failed_server_fails_only_its_keys() {
    let servers = [RedisServer::start(), RedisServer::start()];
    let hosts: Vec<(String, HostConfig)> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("cache{i}"), s.host_config()))
        .collect();
    let cache = CacheCluster::builder()
        .hosts(hosts)
        .connect_timeout(Duration::from_millis(200))
        .response_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    assert!(
        cache
            .set_many(keys.iter().map(|k| (k, f64::NAN)), None)
            .unwrap()
    );
    let on_first: Vec<bool> = keys
        .iter()
        .map(|k| servers[0].cli(&["EXISTS", k]) == "1")
        .collect();
    assert!(on_first.contains(&true) && on_first.contains(&false));
    servers[1].kill();
    let errors = cache.stats().errors;
    assert!(cache.get_many::<f64, _, _>(&keys).is_err());
    let results = cache.get_many_results::<f64, _, _>(&keys);
    for (r, &first) in results.iter().zip(&on_first) {
        match r {
            Ok(v) => assert!(first && v.unwrap().is_nan(), "{r:?}"),
            Err(e) => assert!(!first && e.is_unavailable(), "{e}"),
        }
    }
    assert_eq!(cache.stats().errors, errors + 2, "one per call");
}

#[test]
fn cbor_keeps_nan_infinities_and_negative_zero() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .url(&server.url())
        .serializer(CborSerializer)
        .build()
        .unwrap();
    let sent = floats(0x5eed_0004, 2_000);
    assert!(cache.set("all", &sent, None).unwrap());
    let all: Vec<f64> = cache.get("all").unwrap().unwrap();
    assert_same(
        &sent,
        &all.into_iter().map(Some).collect::<Vec<_>>(),
        "cbor",
    );
    for (i, f) in SPECIALS.iter().enumerate() {
        cache.set(&format!("s{i}"), f, None).unwrap();
    }
    let keys: Vec<String> = (0..SPECIALS.len()).map(|i| format!("s{i}")).collect();
    assert_same(
        &SPECIALS,
        &cache.get_many::<f64, _, _>(&keys).unwrap(),
        "cbor get_many",
    );
    assert!(cache.set("r", &reading(f64::NAN), None).unwrap());
    assert_reading(&cache.get::<Reading>("r").unwrap().unwrap(), f64::NAN);
    let map = HashMap::from([((1, 2), f64::NEG_INFINITY)]);
    assert!(
        cache.set("tuple-keys", &map, None).unwrap(),
        "CBOR keys may be tuples"
    );
    assert_eq!(cache.get("tuple-keys").unwrap(), Some(map));
}

// ------------------------------------------------------------------- async

#[tokio::test]
async fn async_every_f64_round_trips_bit_for_bit() {
    let server = RedisServer::builder().unix_socket(true).start();
    let cache = AsyncCache::open(&server.url()).unwrap();
    let sent = floats(0x5eed_0005, N);
    let mut back = Vec::with_capacity(N);
    for (i, f) in sent.iter().enumerate() {
        let key = format!("f{i}");
        assert!(cache.set(&key, f, None).await.unwrap());
        back.push(cache.get::<f64>(&key).await.unwrap());
    }
    assert_same(&sent, &back, "async set/get");
    let keys: Vec<String> = (0..N).map(|i| format!("f{i}")).collect();
    let mut many = Vec::new();
    let mut results = Vec::new();
    for chunk in keys.chunks(1000) {
        many.extend(cache.get_many::<f64, _, _>(chunk).await.unwrap());
        let r = cache.get_many_results::<f64, _, _>(chunk).await;
        results.extend(r.into_iter().map(Result::unwrap));
    }
    assert_same(&sent, &many, "async get_many");
    assert_same(&sent, &results, "async get_many_results");
    assert_eq!(server.cli(&["GET", "f15"]), "NaN");
}

#[tokio::test]
async fn async_python_values_and_bad_keys() {
    let server = RedisServer::start();
    let cache = AsyncCache::open(&server.url()).unwrap();
    assert!(cache.set("r", &reading(-0.0), None).await.unwrap());
    assert_reading(&cache.get::<Reading>("r").await.unwrap().unwrap(), -0.0);
    assert!(cache.set("v", &[f64::NAN], None).await.unwrap());
    server.cli(&["SET", "sample", PY_SAMPLE]);
    server.cli(&["SET", "ints", PY_BIG_INTS]);
    server.cli(&["SET", "surrogate", PY_LONE_SURROGATE]);
    server.cli(&["SET", "deep", &py_nested(129)]);
    let s: PySample = cache.get("sample").await.unwrap().unwrap();
    assert!(s.a.is_nan() && s.b == [f64::INFINITY, f64::NEG_INFINITY] && s.d == "é");
    let ints: (u128, i128, u128, i128) = cache.get("ints").await.unwrap().unwrap();
    assert_eq!(
        ints,
        (1 << 70, -(1 << 70), 1 << 64, i128::from(i64::MIN) - 1)
    );

    let err = cache.get::<String>("surrogate").await.unwrap_err();
    assert_eq!(decode_error_key(&err), "surrogate");
    let err = cache
        .get_many::<Vec<f64>, _, _>(["v", "deep", "surrogate"])
        .await
        .unwrap_err();
    assert_eq!(decode_error_key(&err), "deep", "the first bad key");
    let results = cache
        .get_many_results::<serde_json_value::Any, _, _>(["sample", "deep", "missing", "surrogate"])
        .await;
    assert!(matches!(
        results[0],
        Ok(Some(serde_json_value::Any::Map(_)))
    ));
    assert_eq!(decode_error_key(results[1].as_ref().unwrap_err()), "deep");
    assert!(matches!(results[2], Ok(None)));
    assert_eq!(
        decode_error_key(results[3].as_ref().unwrap_err()),
        "surrogate"
    );

    let err = cache
        .set("k", &HashMap::from([((1, 2), 3)]), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err}");
    assert_eq!(server.cli(&["GET", "k"]), "(nil)");
}
