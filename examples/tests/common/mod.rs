//! What the blog's tests share: the blog served in-process on a free
//! loopback port, and a tiny HTTP client.

#![allow(dead_code)] // each test file uses part of it

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use examples::blog::{self, Blog, Db};

/// The blog served on a free port by a runtime of its own; stopped on drop.
pub struct RunningBlog {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Stops the server when sent to (or dropped).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RunningBlog {
    /// The blog on `redis_url`, never starting a private redis-server.
    pub fn start(redis_url: &str) -> RunningBlog {
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

    pub fn get(&self, path: &str) -> Reply {
        http(self.addr, "GET", path, None)
    }

    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect();
        http(self.addr, "POST", path, Some(&body.join("&")))
    }

    /// The cache's counters and where it caches, from `/stats.json`.
    pub fn stats(&self) -> serde_json::Value {
        let reply = self.get("/stats.json");
        assert_eq!(reply.status, 200, "{reply:?}");
        serde_json::from_str(&reply.body).unwrap()
    }

    /// The cache's hit counter.
    pub fn hits(&self) -> u64 {
        self.stats()["hits"].as_u64().expect("stats has hits")
    }

    /// Whether it caches in Redis now (else in memory).
    pub fn in_redis(&self) -> bool {
        self.stats()["in_redis"]
            .as_bool()
            .expect("stats has in_redis")
    }

    /// Adds a post; returns its id (from the redirect to its page).
    pub fn add(&self, title: &str, content: &str) -> i64 {
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
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// One HTTP/1.1 request on a fresh connection, with 10 s timeouts.
pub fn http(addr: SocketAddr, method: &str, path: &str, form: Option<&str>) -> Reply {
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
