//! End to end: the blog tutorial against a real `redis-server`, driven over
//! HTTP the way a browser would (add, view, update, list).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use examples::blog::{self, Blog, Db};
use rc::testing::RedisServer;

/// The blog served on a free port by a runtime of its own; stopped on drop.
struct RunningBlog {
    addr: SocketAddr,
    /// Stops the server when sent to (or dropped).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
    /// Whether it caches in Redis (`false`: it fell back to memory).
    in_redis: bool,
}

impl RunningBlog {
    fn start(redis_url: &str) -> RunningBlog {
        let url = redis_url.to_owned();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
            rt.block_on(async move {
                let db = Db::open(None).expect("an in-memory database");
                let options = rc::CacheOptions::new().namespace(db.cache_namespace());
                let (cache, notice) = blog::connect_cache(&url, options).await;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                ready_tx.send((addr, notice.is_none())).unwrap();
                axum::serve(listener, blog::app(Blog::new(db, cache)))
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let (addr, in_redis) = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the blog did not start within 30 s");
        RunningBlog {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
            in_redis,
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

    /// The cache's hit counter, from `/stats`.
    fn hits(&self) -> u64 {
        let reply = self.get("/stats");
        assert_eq!(reply.status, 200, "{reply:?}");
        let stats: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        stats["hits"].as_u64().expect("stats has hits")
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

#[test]
fn add_view_update_list_against_real_redis() {
    let server = RedisServer::start();
    let blog = RunningBlog::start(&server.url());
    assert!(
        blog.in_redis,
        "the blog should cache in the test's redis-server"
    );

    // Add a post: redirected to the list, which shows it.
    let added = blog.post("/add", &[("title", "First post"), ("content", "Hello, rc")]);
    assert_eq!(added.status, 303, "{added:?}");
    assert_eq!(added.location.as_deref(), Some("/"));
    let list = blog.get("/");
    assert_eq!(list.status, 200);
    let id = post_id(&list.body, "First post");
    let path = format!("/post/{id}");

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
    assert!(
        keys.contains(&format!("examples::blog get_by_id {id}")),
        "post {id} should be cached in Redis; keys:\n{keys}"
    );
    assert!(keys.contains("examples::blog get_all_ids"), "keys:\n{keys}");

    // Update it: both the post page and the list show the new data at once.
    let updated = blog.post(
        &path,
        &[("title", "Edited title"), ("content", "New content")],
    );
    assert_eq!(updated.status, 303, "{updated:?}");
    let page = blog.get(&path);
    assert!(page.body.contains("Edited title"), "{}", page.body);
    assert!(page.body.contains("New content"), "{}", page.body);
    assert!(
        !page.body.contains("Hello, rc"),
        "stale post: {}",
        page.body
    );
    let list = blog.get("/");
    assert!(list.body.contains("Edited title"), "{}", list.body);
    assert!(
        !list.body.contains("First post"),
        "stale list: {}",
        list.body
    );

    // A second post shows up in the list (its ids were invalidated), and the
    // list page, loaded in batch mode, is then served from Redis.
    blog.post("/add", &[("title", "Second post"), ("content", "more")]);
    let list = blog.get("/");
    assert!(list.body.contains("Second post") && list.body.contains("Edited title"));
    let hits_before = blog.hits();
    assert_eq!(blog.get("/").body, list.body);
    assert!(
        blog.hits() >= hits_before + 3,
        "ids and both posts should be hits"
    );

    // User input is escaped.
    blog.post(
        "/add",
        &[
            ("title", "<script>alert(1)</script>"),
            ("content", "\"x\" & 'y'"),
        ],
    );
    let list = blog.get("/");
    assert!(
        list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        list.body
    );
    assert!(!list.body.contains("<script>"), "{}", list.body);

    // Unknown posts are 404, and so is updating one.
    assert_eq!(blog.get("/post/999").status, 404);
    assert_eq!(
        blog.post("/post/999", &[("title", "t"), ("content", "c")])
            .status,
        404
    );
}

#[test]
fn without_redis_the_blog_caches_in_memory() {
    // A port nobody listens on: bind one, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let blog = RunningBlog::start(&format!("redis://127.0.0.1:{port}"));
    assert!(!blog.in_redis, "nothing listens there: it must fall back");

    blog.post("/add", &[("title", "Offline"), ("content", "still works")]);
    let id = post_id(&blog.get("/").body, "Offline");
    let first = blog.get(&format!("/post/{id}"));
    assert!(first.body.contains("still works"), "{first:?}");
    let hits_before = blog.hits();
    blog.get(&format!("/post/{id}"));
    assert!(blog.hits() > hits_before, "the in-process store caches too");
}
