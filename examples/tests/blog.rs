//! End to end: the blog tutorial against a real `redis-server`, driven over
//! HTTP the way a browser would (add, view, update, delete, list, pages),
//! and how it finds Redis (picked up when it appears, misconfiguration refused).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use examples::blog::{self, Blog, Db, PER_PAGE};
use rc::testing::RedisServer;

/// The blog served on a free port by a runtime of its own; stopped on drop.
struct RunningBlog {
    addr: SocketAddr,
    /// Stops the server when sent to (or dropped).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RunningBlog {
    /// The blog on `redis_url`, never starting a private redis-server.
    fn start(redis_url: &str) -> RunningBlog {
        let url = redis_url.to_owned();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
            rt.block_on(async move {
                let db = Db::open(None).expect("an in-memory database");
                let blog = Blog::connect(db, &url, false)
                    .await
                    .expect("the blog starts");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                ready_tx.send(addr).unwrap();
                axum::serve(listener, blog::app(blog))
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the blog did not start within 30 s");
        RunningBlog {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn get(&self, path: &str) -> Reply {
        http(self.addr, "GET", path, None)
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect();
        http(self.addr, "POST", path, Some(&body.join("&")))
    }

    /// The cache's counters and where it caches, from `/stats.json`.
    fn stats(&self) -> serde_json::Value {
        let reply = self.get("/stats.json");
        assert_eq!(reply.status, 200, "{reply:?}");
        serde_json::from_str(&reply.body).unwrap()
    }

    /// The cache's hit counter.
    fn hits(&self) -> u64 {
        self.stats()["hits"].as_u64().expect("stats has hits")
    }

    /// Whether it caches in Redis now (else in memory).
    fn in_redis(&self) -> bool {
        self.stats()["in_redis"]
            .as_bool()
            .expect("stats has in_redis")
    }

    /// Adds a post; returns its id (from the redirect to its page).
    fn add(&self, title: &str, content: &str) -> i64 {
        let added = self.post("/add", &[("title", title), ("content", content)]);
        assert_eq!(added.status, 303, "{added:?}");
        let location = added.location.expect("a redirect");
        location
            .strip_prefix("/post/")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("a redirect to the post, got {location}"))
    }
}

impl Drop for RunningBlog {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
}

/// One HTTP/1.1 request on a fresh connection, with 10 s timeouts.
fn http(addr: SocketAddr, method: &str, path: &str, form: Option<&str>) -> Reply {
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).expect("connect to the blog");
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.set_write_timeout(Some(timeout)).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(body) = form {
        request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    } else {
        request.push_str("\r\n");
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the reply");

    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete HTTP reply");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let location = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| value.trim().to_owned())
    });
    Reply {
        status,
        location,
        body: body.to_owned(),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The id in the first `href="/post/N"` of the page after `title`.
fn post_id(page: &str, title: &str) -> i64 {
    let at = page.find(title).expect("the title is on the page");
    let link = page[..at]
        .rfind("href=\"/post/")
        .expect("a link to the post")
        + 12;
    let end = page[link..].find('"').unwrap();
    page[link..link + end].parse().unwrap()
}

/// The titles on a list page, in order (the text of its post links).
fn titles(page: &str) -> Vec<String> {
    page.split("<li><a href=\"/post/")
        .skip(1)
        .map(|item| {
            let start = item.find('>').unwrap() + 1;
            let end = item.find("</a>").unwrap();
            item[start..end].to_owned()
        })
        .collect()
}

#[test]
fn add_view_edit_delete_list_against_real_redis() {
    let server = RedisServer::start();
    let blog = RunningBlog::start(&server.url());
    assert!(
        blog.in_redis(),
        "the blog should cache in the test's redis-server"
    );

    // Add a post: redirected to its page; the list shows it.
    let id = blog.add("First post", "Hello, rc");
    let path = format!("/post/{id}");
    let list = blog.get("/");
    assert_eq!(list.status, 200);
    assert_eq!(post_id(&list.body, "First post"), id);

    // View it twice: the second view is served from Redis.
    let first = blog.get(&path);
    assert_eq!(first.status, 200, "{first:?}");
    assert!(first.body.contains("Hello, rc"), "{}", first.body);
    let hits_before = blog.hits();
    let second = blog.get(&path);
    assert_eq!(second.body, first.body);
    assert!(
        blog.hits() > hits_before,
        "the second view should be a cache hit"
    );
    let keys = server.cli(&["KEYS", "*"]);
    for key in [
        format!("examples::blog::model get_by_id {id}"),
        format!("examples::blog::model get_summary {id}"),
        "examples::blog::model get_all_ids".to_owned(),
    ] {
        assert!(
            keys.contains(&key),
            "{key} should be cached in Redis; keys:\n{keys}"
        );
    }

    // The edit form holds the post; saving shows the new data everywhere at once.
    let form = blog.get(&format!("{path}/edit"));
    assert!(form.body.contains("value=\"First post\""), "{}", form.body);
    assert!(form.body.contains(">Hello, rc</textarea>"), "{}", form.body);
    let updated = blog.post(
        &path,
        &[("title", "Edited title"), ("content", "New content")],
    );
    assert_eq!(updated.status, 303, "{updated:?}");
    assert_eq!(updated.location.as_deref(), Some(path.as_str()));
    let page = blog.get(&path);
    assert!(page.body.contains("Edited title") && page.body.contains("New content"));
    assert!(
        !page.body.contains("Hello, rc"),
        "stale post: {}",
        page.body
    );
    let list = blog.get("/");
    assert_eq!(
        titles(&list.body),
        ["Edited title"],
        "stale list: {}",
        list.body
    );

    // An empty title is refused on the form, with what was typed kept.
    let refused = blog.post(&path, &[("title", "  "), ("content", "kept <text>")]);
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(
        refused.body.contains("A post needs a title."),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(">kept &lt;text&gt;</textarea>"),
        "{}",
        refused.body
    );
    let refused = blog.post("/add", &[("title", ""), ("content", "draft")]);
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains(">draft</textarea>"),
        "{}",
        refused.body
    );
    assert!(
        blog.get(&path).body.contains("New content"),
        "nothing was saved"
    );

    // A second post shows up first, and the list, read in batch mode, is
    // then served from Redis: the ids and both summaries are hits.
    let second = blog.add("Second post", "more");
    let list = blog.get("/");
    assert_eq!(titles(&list.body), ["Second post", "Edited title"]);
    let hits_before = blog.hits();
    assert_eq!(blog.get("/").body, list.body);
    assert!(
        blog.hits() >= hits_before + 3,
        "ids and both summaries should be hits"
    );

    // Delete: gone from its page, the list and Redis.
    let deleted = blog.post(&format!("/post/{second}/delete"), &[]);
    assert_eq!(deleted.status, 303, "{deleted:?}");
    assert_eq!(blog.get(&format!("/post/{second}")).status, 404);
    assert_eq!(titles(&blog.get("/").body), ["Edited title"]);
    assert_eq!(
        blog.post(&format!("/post/{second}/delete"), &[]).status,
        404
    );

    // User input is escaped.
    let xss = blog.add("<script>alert(1)</script>", "\"x\" & 'y'");
    let list = blog.get("/");
    assert!(
        list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        list.body
    );
    assert!(!list.body.contains("<script>"), "{}", list.body);
    let page = blog.get(&format!("/post/{xss}"));
    assert!(
        page.body.contains("&quot;x&quot; &amp; &#39;y&#39;"),
        "{}",
        page.body
    );

    // Unknown posts are 404, and so is editing one.
    assert_eq!(blog.get("/post/999").status, 404);
    assert_eq!(
        blog.post("/post/999", &[("title", "t"), ("content", "c")])
            .status,
        404
    );

    // The stats page and the metrics answer; the metrics count per function.
    let stats = blog.get("/stats");
    assert!(
        stats.body.contains("<svg") && stats.body.contains("in use"),
        "{}",
        stats.body
    );
    let metrics = blog.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("rc_hits_total{function=\"examples::blog::model::get_summary\"}"),
        "{}",
        metrics.body
    );
}

#[test]
fn pages_of_summaries_and_a_long_post_stays_off_the_list() {
    let server = RedisServer::start();
    let blog = RunningBlog::start(&server.url());
    let total = 2 * PER_PAGE + 3;
    for n in 1..=total {
        blog.add(&format!("Post {n}"), "text");
    }
    // A 1 MB post: the list page reads its summary, never its text.
    let big = blog.add("Big post", &"x".repeat(1 << 20));

    let mut seen = Vec::new();
    let pages = (total + 1).div_ceil(PER_PAGE);
    for page in 1..=pages {
        let reply = blog.get(&format!("/?page={page}"));
        assert_eq!(reply.status, 200, "page {page}");
        assert!(
            reply.body.len() < 64 * 1024,
            "page {page} is {} bytes",
            reply.body.len()
        );
        assert!(
            reply.body.contains(&format!("Page {page} of {pages}")),
            "{}",
            reply.body
        );
        seen.extend(titles(&reply.body));
    }
    let want: Vec<String> = std::iter::once("Big post".to_owned())
        .chain((1..=total).rev().map(|n| format!("Post {n}")))
        .collect();
    assert_eq!(seen, want, "every post once, newest first");
    assert_eq!(blog.get(&format!("/?page={}", pages + 1)).status, 404);
    assert_eq!(blog.get("/?page=0").status, 404);
    let keys = server.cli(&["KEYS", "*"]);
    assert!(
        !keys.contains(&format!("get_by_id {big}")),
        "the list must not load whole posts; keys:\n{keys}"
    );
}

#[test]
fn without_redis_it_caches_in_memory_and_picks_redis_up_when_it_appears() {
    let server = RedisServer::start();
    server.stop();
    let blog = RunningBlog::start(&server.url());
    assert!(
        !blog.in_redis(),
        "nothing listens there: it must cache in memory"
    );

    let id = blog.add("Offline", "still works");
    let first = blog.get(&format!("/post/{id}"));
    assert!(first.body.contains("still works"), "{first:?}");
    let hits_before = blog.hits();
    blog.get(&format!("/post/{id}"));
    assert!(blog.hits() > hits_before, "the in-process store caches too");

    // Redis appears: the blog switches to it, with no restart.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !blog.in_redis() {
        assert!(
            Instant::now() < deadline,
            "Redis was not picked up within 20 s"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let page = blog.get(&format!("/post/{id}"));
    assert!(page.body.contains("still works"));
    let keys = server.cli(&["KEYS", "*"]);
    assert!(
        keys.contains(&format!("get_by_id {id}")),
        "cached in Redis now; keys:\n{keys}"
    );
}

#[test]
fn a_misconfigured_redis_is_an_error_not_a_fallback() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = RedisServer::builder().password("right").start();
    let port = server.port().unwrap();
    for (url, says) in [
        ("localhost:6379".to_owned(), "is not a Redis URL"),
        (
            format!("redis://:wrong@127.0.0.1:{port}"),
            "refused the blog",
        ),
        (
            format!("redis://:right@127.0.0.1:{port}/999"),
            "refused the blog",
        ),
    ] {
        let outcome = rt.block_on(Blog::connect(Db::open(None).unwrap(), &url, false));
        let err = outcome
            .err()
            .unwrap_or_else(|| panic!("{url} was accepted"));
        let msg = err.to_string();
        assert!(msg.contains(says), "{url}: {msg}");
        assert!(
            !msg.contains("wrong") && !msg.contains("right"),
            "a password in {msg}"
        );
    }
    // The right password works.
    let url = format!("redis://:right@127.0.0.1:{port}");
    let blog = rt.block_on(Blog::connect(Db::open(None).unwrap(), &url, false));
    assert!(blog.expect("the right password").store().in_redis());
}
