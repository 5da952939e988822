//! The Rust side of `cargo xtask interop`: rc for Rust and Python rc 0.3.1
//! (`interop/rc_side.py`, run under Python 2.7) on the same redis-servers.
//!
//! Starts real redis-servers (loopback TCP and unix sockets, stopped at the
//! end), writes its entries, runs the Python side once with a plan, reads
//! what Python wrote, and compares:
//! - placement: the server of every key under both routers, on host maps
//!   with string names (rc's own 4 servers x 4 dbs fixture among them),
//!   integer names and both, and on the real servers;
//! - values crossed each way (`set`, `set_many`, `get`, `get_many`, single
//!   server and clusters), TTLs;
//! - decorated functions (`module`, `name`, `key_prefix`, `python_args`):
//!   each side hits the other's entries, and the keys are byte for byte rc's.
//!
//! Usage: `rc-interop --python <python2.7> --site <dir with rc and redis> --script <rc_side.py>`.
//! Prints the counts; exits non-zero on any mismatch.

mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use rc::testing::RedisServer;
use rc::{Cache, CacheCluster, ConsistentHashRouter, HostConfig, HostName};
use serde_json::{Value, json};

use values::{Rng, Val};

/// Keys placed per host map and router.
const PLACED_KEYS: usize = 20_000;
/// Generated JSON documents crossed each way, per cache.
const GENERATED: usize = 200;
/// Decorated calls computed by each side.
const DECORATED_CALLS: usize = 600;
/// Expiry of Rust's and Python's writes, seconds (told apart by the TTL check).
const RUST_EXPIRE: u64 = 1000;
const PY_EXPIRE: u64 = 500;
/// Prefix of every value key (not of decorated keys, which must be rc's).
const NAMESPACE: &str = "interop:";
/// Longest the Python side may run.
const PYTHON_DEADLINE: Duration = Duration::from_secs(90);

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    match run() {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("interop: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Counts what matched and records what did not.
#[derive(Default)]
struct Report {
    counts: BTreeMap<String, usize>,
    mismatches: Vec<String>,
}

impl Report {
    fn ok(&mut self, what: &str, n: usize) {
        *self.counts.entry(what.to_owned()).or_default() += n;
    }

    fn check(&mut self, what: &str, ok: bool, detail: impl FnOnce() -> String) {
        if ok {
            self.ok(what, 1);
        } else {
            self.mismatches.push(format!("{what}: {}", detail()));
        }
    }

    fn count(&self, prefix: &str) -> usize {
        self.counts
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }
}

struct Args {
    python: PathBuf,
    site: PathBuf,
    script: PathBuf,
}

fn args() -> Result<Args> {
    let mut python = None;
    let mut site = None;
    let mut script = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--python" => python = Some(value.into()),
            "--site" => site = Some(value.into()),
            "--script" => script = Some(value.into()),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    let need = "usage: rc-interop --python <python2.7> --site <dir> --script <rc_side.py>";
    Ok(Args {
        python: python.ok_or(need)?,
        site: site.ok_or(need)?,
        script: script.ok_or(need)?,
    })
}

/// A host map: names (integers or strings) and configs, as both sides take it.
struct HostMap {
    name: &'static str,
    hosts: Vec<(HostName, HostConfig)>,
}

impl HostMap {
    fn plan(&self) -> Value {
        let hosts: Vec<Value> = self
            .hosts
            .iter()
            .map(|(name, cfg)| {
                let name = if name.is_int() {
                    json!(name.as_str().parse::<i64>().expect("an integer name"))
                } else {
                    json!(name.as_str())
                };
                let cfg = match &cfg.unix_socket_path {
                    Some(path) => json!({"unix_socket_path": path, "db": cfg.db}),
                    None => json!({"host": cfg.host, "port": cfg.port, "db": cfg.db}),
                };
                json!([name, cfg])
            })
            .collect();
        json!({"name": self.name, "hosts": hosts})
    }

    fn builder(&self, ketama: bool) -> rc::ClusterBuilder {
        let b = CacheCluster::builder().hosts(self.hosts.iter().cloned());
        if ketama {
            b.router(ConsistentHashRouter::new)
        } else {
            b
        }
    }
}

fn run() -> Result<usize> {
    let args = args()?;
    let started = Instant::now();
    let mut report = Report::default();

    // rc's own fixture: 4 unix-socket servers x 4 dbs; 3 TCP servers x 4 dbs
    // under integer names; one more server for a single-server cache.
    let servers: Vec<RedisServer> = std::thread::scope(|s| {
        let unix = |u| s.spawn(move || RedisServer::builder().unix_socket(u).start());
        let handles: Vec<_> = [true, true, true, true, false, false, false, true]
            .into_iter()
            .map(unix)
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (fixture_servers, rest) = servers.split_at(4);
    let (int_servers, single_server) = (&rest[..3], &rest[3]);
    let fixture = HostMap {
        name: "rc-fixture",
        hosts: (0..16)
            .map(|i| {
                let socket = fixture_servers[i / 4].socket_path().unwrap();
                let cfg = HostConfig::new().unix_socket_path(socket).db(i as i64 % 4);
                (HostName::from(format!("cache-server-{i}")), cfg)
            })
            .collect(),
    };
    let ints = HostMap {
        name: "int-names",
        hosts: (0..12)
            .map(|i| {
                let port = int_servers[i / 4].port().unwrap();
                let cfg = HostConfig::new()
                    .host("127.0.0.1")
                    .port(port)
                    .db(i as i64 % 4);
                (HostName::from(i as i64), cfg)
            })
            .collect(),
    };
    let strings = HostMap {
        name: "string-names",
        hosts: (1..=5)
            .map(|i| {
                let cfg = HostConfig::new().host(format!("redis-host{i:02}"));
                (HostName::from(format!("cache{i:02}")), cfg)
            })
            .collect(),
    };
    let mixed = HostMap {
        name: "mixed-names",
        hosts: [
            HostName::from(2),
            HostName::from("a"),
            HostName::from(-1),
            HostName::from("B"),
            HostName::from(10),
            HostName::from("2x"),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, HostConfig::new().port(7000 + i as u16)))
        .collect(),
    };
    let one = HostMap {
        name: "one-host",
        hosts: vec![(HostName::from("solo"), HostConfig::new())],
    };
    let placement_maps = [&fixture, &ints, &strings, &mixed, &one];

    let mut rng = Rng::new(0x5eed_f1a7);
    let keys: Vec<String> = (0..PLACED_KEYS)
        .map(|i| match i % 6 {
            _ if i == 0 => String::new(),
            0 => format!("user:{}", rng.next()),
            1 => format!("blog.models get_post {}", rng.below(100_000)),
            2 => rng.text(6),
            3 => format!("中文キー{}", rng.below(1000)),
            4 => format!("😀 {} 👍🏽", rng.text(3)),
            _ => rng.text(20),
        })
        .collect();

    // (b) Rust's entries, before Python runs.
    let single = Cache::builder()
        .host_config(single_server.host_config())
        .namespace(NAMESPACE)
        .build()
        .map_err(|e| e.to_string())?;
    let value_maps = [(&fixture, false), (&ints, true)];
    let mut caches = vec![("single".to_owned(), single.clone())];
    for (map, ketama) in value_maps {
        let cache = map
            .builder(ketama)
            .namespace(NAMESPACE)
            .build()
            .map_err(|e| e.to_string())?;
        caches.push((format!("{}/{}", map.name, router_name(ketama)), cache));
    }
    let table = values::table();
    let generated: Vec<Value> = (0..GENERATED).map(|_| rng.json(4)).collect();
    let rust_expire = Some(Duration::from_secs(RUST_EXPIRE));
    for (name, cache) in &caches {
        write_table(cache, "rs", &table, rust_expire).map_err(|e| format!("{name}: {e}"))?;
        let items = generated
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("rs:gen:{i}"), v));
        cache
            .set_many(items, rust_expire)
            .map_err(|e| format!("{name}: {e}"))?;
    }

    // (c) decorated calls computed by Rust, on the fixture cluster.
    fixture
        .builder(false)
        .build()
        .map_err(|e| e.to_string())?
        .install_default();
    let rust_calls: Vec<Call> = (0..DECORATED_CALLS)
        .map(|i| Call::random(&mut rng, 2 * i))
        .collect();
    let py_calls: Vec<Call> = (0..DECORATED_CALLS)
        .map(|i| Call::random(&mut rng, 2 * i + 1))
        .collect();
    for (i, call) in rust_calls.iter().enumerate() {
        CURRENT.store(i, SeqCst);
        call.call();
    }

    // The Python side.
    let plan = json!({
        "keys": keys,
        "placement_maps": placement_maps.iter().map(|m| m.plan()).collect::<Vec<_>>(),
        "single": single_server.socket_path().unwrap(),
        "namespace": NAMESPACE,
        "value_maps": value_maps.iter().map(|(m, ketama)| {
            let mut p = m.plan();
            p["router"] = json!(router_name(*ketama));
            p
        }).collect::<Vec<_>>(),
        "expire": PY_EXPIRE,
        "rust_expire": RUST_EXPIRE,
        "generated": generated,
        "decorated": {
            "map": { "hosts": fixture.plan()["hosts"], "router": "crc32" },
            "rust": rust_calls.iter().map(Call::plan).collect::<Vec<_>>(),
            "python": py_calls.iter().map(Call::plan).collect::<Vec<_>>(),
        },
    });
    let py = run_python(&args, &plan)?;
    let versions = &py["versions"];
    for m in py["mismatches"].as_array().into_iter().flatten() {
        report
            .mismatches
            .push(format!("python side: {}", m.as_str().unwrap_or("?")));
    }
    if let Some(counts) = py["counts"].as_object() {
        for (what, n) in counts {
            report.ok(what, n.as_u64().unwrap_or(0) as usize);
        }
    }

    // (a) placement: routers side by side.
    for map in placement_maps {
        for ketama in [false, true] {
            let label = format!("{}/{}", map.name, router_name(ketama));
            let backend = map
                .builder(ketama)
                .build_backend()
                .map_err(|e| e.to_string())?;
            let theirs = py["placement"][&label]
                .as_array()
                .ok_or(format!("python gave no placement for {label}"))?;
            if theirs.len() != keys.len() {
                return Err(format!("python placed {} keys for {label}", theirs.len()));
            }
            for (key, their) in keys.iter().zip(theirs) {
                let ours = backend.host_for_key(key);
                report.check("placed", ours == their.as_str(), || {
                    format!("{label}: key {key:?} on {ours:?} in Rust, {their} in Python")
                });
            }
        }
    }

    // (b) Python's entries, read here.
    let ids: Vec<usize> = (0..table.len()).collect();
    for (name, cache) in &caches {
        let what = format!("python->rust {name}");
        read_table(cache, "py", &table, &what, &mut report).map_err(|e| format!("{name}: {e}"))?;
        let keys: Vec<String> = (0..GENERATED).map(|i| format!("py:gen:{i}")).collect();
        let got: Vec<Option<Value>> = cache.get_many(&keys).map_err(|e| format!("{name}: {e}"))?;
        for (i, (got, want)) in got.iter().zip(&generated).enumerate() {
            report.check(&what, got.as_ref() == Some(want), || {
                format!("py:gen:{i}: got {got:?}, want {want}")
            });
        }
    }
    let ttl: u64 = single_server
        .cli(&["TTL", &format!("{NAMESPACE}py:val:0")])
        .parse()
        .unwrap_or(0);
    report.check(
        "ttl python->rust",
        ttl <= PY_EXPIRE && ttl > PY_EXPIRE - 60,
        || format!("TTL of py:val:0 is {ttl}, Python gave {PY_EXPIRE}"),
    );

    // (a) placement on the servers: each of Python's entries is on the host
    // Rust's router names, and on no other.
    for (map, ketama) in value_maps {
        let backend = map
            .builder(ketama)
            .build_backend()
            .map_err(|e| e.to_string())?;
        let mut conns = Vec::new();
        for (name, cfg) in &map.hosts {
            let conn = connect(cfg).map_err(|e| format!("host {name:?}: {e}"))?;
            conns.push((name.as_str().to_owned(), conn));
        }
        let keys = ids
            .iter()
            .map(|i| format!("{NAMESPACE}py:val:{i}"))
            .chain((0..GENERATED).map(|i| format!("{NAMESPACE}py:gen:{i}")));
        for key in keys {
            let predicted = backend.host_for_key(&key).unwrap_or("?").to_owned();
            let mut on = Vec::new();
            for (name, conn) in &mut conns {
                let n: i64 = rc::redis::cmd("EXISTS")
                    .arg(&key)
                    .query(conn)
                    .map_err(|e| format!("host {name}: {e}"))?;
                if n == 1 {
                    on.push(name.clone());
                }
            }
            report.check("placed on real servers", on == [predicted.clone()], || {
                format!(
                    "{}: {key:?} is on {on:?}, Rust's router says {predicted}",
                    map.name
                )
            });
        }
    }

    // (c) decorated calls Python computed: hits here, with Python's values.
    for (i, call) in py_calls.iter().enumerate() {
        CURRENT.store(i, SeqCst);
        let before = RAN.load(SeqCst);
        let got = call.call();
        let want = json!({"by": "python", "fn": call.name(), "i": i});
        report.check(
            "decorated python->rust",
            RAN.load(SeqCst) == before && got == want,
            || {
                format!(
                    "{call:?}: got {got} (body ran: {})",
                    RAN.load(SeqCst) != before
                )
            },
        );
    }
    // ... and every decorated entry in Redis is under the key rc gives.
    let theirs: BTreeSet<String> = py["decorated_keys"]
        .as_array()
        .ok_or("python gave no decorated keys")?
        .iter()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let mut ours = BTreeSet::new();
    for (name, cfg) in &fixture.hosts {
        let mut conn = connect(cfg).map_err(|e| format!("host {name:?}: {e}"))?;
        let keys: Vec<Vec<u8>> = rc::redis::cmd("KEYS")
            .arg("*")
            .query(&mut conn)
            .map_err(|e| format!("host {name:?}: {e}"))?;
        for key in keys {
            let key = String::from_utf8(key).map_err(|e| format!("a key is not UTF-8: {e}"))?;
            if key.starts_with("blog.models ") || key.starts_with("v2 blog.models ") {
                ours.insert(key);
            }
        }
    }
    for key in ours.symmetric_difference(&theirs) {
        let side = if ours.contains(key) {
            "in Redis only"
        } else {
            "rc's key, not in Redis"
        };
        report
            .mismatches
            .push(format!("decorated key {key:?}: {side}"));
    }
    report.ok(
        "decorated keys byte-identical",
        ours.intersection(&theirs).count(),
    );

    print_summary(&report, versions, started.elapsed());
    Ok(report.mismatches.len())
}

/// A plain connection to one host, for looking at what is stored where.
fn connect(cfg: &HostConfig) -> Result<rc::redis::Connection> {
    let client = cfg.client().map_err(|e| e.to_string())?;
    client.get_connection().map_err(|e| e.to_string())
}

fn router_name(ketama: bool) -> &'static str {
    if ketama { "ketama" } else { "crc32" }
}

/// Writes the table under `<side>:val:<id>`: odd ids with `set`, even ids
/// with `set_many` (one per Rust type).
fn write_table(
    cache: &Cache,
    side: &str,
    table: &[Val],
    expire: Option<Duration>,
) -> rc::Result<()> {
    let key = |i: usize| format!("{side}:val:{i}");
    let (mut json, mut floats, mut bigs) = (Vec::new(), Vec::new(), Vec::new());
    for (i, v) in table.iter().enumerate() {
        match (i % 2, v) {
            (1, Val::Json(v)) => {
                cache.set(&key(i), v, expire)?;
            }
            (1, Val::Float(v)) => {
                cache.set(&key(i), v, expire)?;
            }
            (1, Val::Big(v)) => {
                cache.set(&key(i), v, expire)?;
            }
            (_, Val::Json(v)) => json.push((key(i), v)),
            (_, Val::Float(v)) => floats.push((key(i), v)),
            (_, Val::Big(v)) => bigs.push((key(i), v)),
        }
    }
    cache.set_many(json, expire)?;
    cache.set_many(floats, expire)?;
    cache.set_many(bigs, expire)?;
    Ok(())
}

/// Reads `<side>:val:<id>` (even ids with `get`, odd ids with `get_many`)
/// and compares each with the table.
fn read_table(
    cache: &Cache,
    side: &str,
    table: &[Val],
    what: &str,
    report: &mut Report,
) -> rc::Result<()> {
    let key = |i: usize| format!("{side}:val:{i}");
    let by_many = |pick: fn(&Val) -> bool| -> Vec<usize> {
        (0..table.len())
            .filter(|i| i % 2 == 1 && pick(&table[*i]))
            .collect()
    };
    let json_ids = by_many(|v| matches!(v, Val::Json(_)));
    let float_ids = by_many(|v| matches!(v, Val::Float(_)));
    let big_ids = by_many(|v| matches!(v, Val::Big(_)));
    let json: Vec<Option<Value>> = cache.get_many(json_ids.iter().map(|&i| key(i)))?;
    let floats: Vec<Option<f64>> = cache.get_many(float_ids.iter().map(|&i| key(i)))?;
    let bigs: Vec<Option<i128>> = cache.get_many(big_ids.iter().map(|&i| key(i)))?;
    let mut many: BTreeMap<usize, Got> = BTreeMap::new();
    many.extend(json_ids.into_iter().zip(json.into_iter().map(Got::Json)));
    many.extend(
        float_ids
            .into_iter()
            .zip(floats.into_iter().map(Got::Float)),
    );
    many.extend(big_ids.into_iter().zip(bigs.into_iter().map(Got::Big)));
    for (i, want) in table.iter().enumerate() {
        let got = match (many.remove(&i), want) {
            (Some(got), _) => got,
            (None, Val::Json(_)) => Got::Json(cache.get(&key(i))?),
            (None, Val::Float(_)) => Got::Float(cache.get(&key(i))?),
            (None, Val::Big(_)) => Got::Big(cache.get(&key(i))?),
        };
        let ok = match (&got, want) {
            (Got::Json(Some(g)), Val::Json(w)) => g == w,
            (Got::Float(Some(g)), Val::Float(w)) => {
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan())
            }
            (Got::Big(Some(g)), Val::Big(w)) => g == w,
            _ => false,
        };
        report.check(what, ok, || {
            format!("{}: got {got:?}, want {want:?}", key(i))
        });
    }
    Ok(())
}

#[derive(Debug)]
enum Got {
    Json(Option<Value>),
    Float(Option<f64>),
    Big(Option<i128>),
}

/// Runs `rc_side.py` with the plan on stdin; its report from stdout.
fn run_python(args: &Args, plan: &Value) -> Result<Value> {
    let mut child = Command::new(&args.python)
        .arg(&args.script)
        .env("PYTHONPATH", &args.site)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", args.python.display()))?;
    let mut stdin = child.stdin.take().expect("piped");
    let text = plan.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).map(|_| out)
    });
    let deadline = Instant::now() + PYTHON_DEADLINE;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the Python side ran over {PYTHON_DEADLINE:?}; killed"
                ));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    writer
        .join()
        .expect("writer thread")
        .map_err(|e| format!("cannot send the plan to Python: {e}"))?;
    let out = reader
        .join()
        .expect("reader thread")
        .map_err(|e| format!("cannot read Python's report: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the Python side failed ({status}); its error is above"
        ));
    }
    serde_json::from_str(&out).map_err(|e| format!("bad report from Python ({e}): {out:.200}"))
}

fn print_summary(report: &Report, versions: &Value, took: Duration) {
    let v = |k: &str| versions[k].as_str().unwrap_or("?").to_owned();
    println!(
        "interop: rc for Rust vs Python rc {} (redis-py {}, Python {}), {:.1}s",
        v("rc"),
        v("redis"),
        v("python"),
        took.as_secs_f64()
    );
    for (what, n) in &report.counts {
        println!("  {n:>7}  {what}");
    }
    println!(
        "  keys placed: {} (routers compared), {} (checked on the servers)",
        report.count("placed") - report.count("placed on real servers"),
        report.count("placed on real servers")
    );
    println!(
        "  values crossed: Rust -> Python {}, Python -> Rust {}",
        report.count("rust->python"),
        report.count("python->rust")
    );
    println!(
        "  decorated: Rust -> Python {}, Python -> Rust {}, keys byte-identical {}",
        report.count("decorated rust->python"),
        report.count("decorated python->rust"),
        report.count("decorated keys byte-identical")
    );
    println!("  mismatches: {}", report.mismatches.len());
    for m in report.mismatches.iter().take(30) {
        println!("    {m}");
    }
    if report.mismatches.len() > 30 {
        println!("    ... and {} more", report.mismatches.len() - 30);
    }
}

/// Which call the Python or Rust side is making (the values tell them apart).
static CURRENT: AtomicUsize = AtomicUsize::new(0);
/// How often a Rust body ran.
static RAN: AtomicUsize = AtomicUsize::new(0);

fn body(name: &str) -> Value {
    RAN.fetch_add(1, SeqCst);
    json!({"by": "rust", "fn": name, "i": CURRENT.load(SeqCst)})
}

/// Python: `@cache.cache()` on `get_post(post_id)` in `blog.models`.
#[rc::cache(module = "blog.models", name = "get_post", python_args)]
fn get_post(post_id: i64) -> Value {
    let _ = post_id;
    body("get_post")
}

/// Python: `@cache.cache()` on `search(q, page, exact, ratio, owner)`.
#[rc::cache(module = "blog.models", name = "search", python_args)]
fn search(q: &str, page: i64, exact: bool, ratio: f64, owner: Option<i64>) -> Value {
    let _ = (q, page, exact, ratio, owner);
    body("search")
}

/// Python: `@cache.cache(key_prefix='v2')` on `tagged(tag, weight)`.
#[rc::cache(
    key_prefix = "v2",
    module = "blog.models",
    name = "tagged",
    python_args
)]
fn tagged(tag: &str, weight: Option<f64>) -> Value {
    let _ = (tag, weight);
    body("tagged")
}

/// One decorated call; `unique` makes its key differ from every other call's.
#[derive(Debug)]
enum Call {
    GetPost(i64),
    Search(String, i64, bool, f64, Option<i64>),
    Tagged(String, Option<f64>),
}

impl Call {
    fn random(rng: &mut Rng, unique: usize) -> Call {
        let sign = if rng.below(2) == 0 { 1 } else { -1 };
        let unique_int = sign * (rng.below(1 << 40) as i64 * 4096 + unique as i64);
        match rng.below(3) {
            0 => Call::GetPost(unique_int),
            1 => Call::Search(
                rng.text(8),
                unique_int,
                rng.below(2) == 0,
                rng.float(),
                (rng.below(3) > 0).then(|| rng.next() as i64 >> rng.below(64)),
            ),
            _ => Call::Tagged(
                format!("{}#{unique}", rng.text(6)),
                (rng.below(4) > 0).then(|| rng.float()),
            ),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Call::GetPost(..) => "get_post",
            Call::Search(..) => "search",
            Call::Tagged(..) => "tagged",
        }
    }

    fn call(&self) -> Value {
        match self {
            Call::GetPost(id) => get_post(*id),
            Call::Search(q, page, exact, ratio, owner) => search(q, *page, *exact, *ratio, *owner),
            Call::Tagged(tag, weight) => tagged(tag, *weight),
        }
    }

    /// `[name, [args]]`, floats as their bits (JSON has no NaN or infinity).
    fn plan(&self) -> Value {
        let float = |x: f64| json!({"f64": x.to_bits()});
        let args = match self {
            Call::GetPost(id) => json!([id]),
            Call::Search(q, page, exact, ratio, owner) => {
                json!([q, page, exact, float(*ratio), owner])
            }
            Call::Tagged(tag, weight) => json!([tag, weight.map(float)]),
        };
        json!([self.name(), args])
    }
}
