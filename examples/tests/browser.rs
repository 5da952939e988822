//! The blog in a real browser: headless Chromium, driven through
//! chromedriver (WebDriver), adds, views, edits, deletes and pages through
//! posts, checks that a `<script>` title stays text, and opens the stats page,
//! asserting what a person would see. Screenshots of each step land in
//! `target/browser-screenshots/` for a look.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`cargo xtask test`
//! installs them); without them it fails saying so.

mod common;

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::RunningBlog;
use examples::blog::PER_PAGE;
use fantoccini::{Client, ClientBuilder, Locator};
use rc::testing::RedisServer;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Bound of the whole browser session.
const SESSION_LIMIT: Duration = Duration::from_secs(180);

/// chromedriver on a free loopback port, in a process group of its own so
/// that dropping this kills it and every browser it started.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        for tool in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: `cargo xtask test` installs it, or run \
                 `apt-get install -y chromium chromium-driver`"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let driver = Driver { child, port };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Its group's id is its pid (`process_group(0)`): chromedriver and
        // the browsers it started, and nothing else.
        if let Ok(group) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group only.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `target/browser-screenshots/`, emptied.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the screenshot dir");
    dir
}

/// A browser session and where its screenshots go.
struct Browser {
    client: Client,
    base: String,
    shots: PathBuf,
}

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

impl Browser {
    async fn open(driver: &Driver, base: String, profile: &Path) -> Res<Browser> {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,1200",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await?;
        client
            .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(20)),
                Some(Duration::ZERO),
            ))
            .await?;
        Ok(Browser {
            client,
            base,
            shots: screenshot_dir(),
        })
    }

    async fn goto(&self, path: &str) -> Res {
        Ok(self.client.goto(&format!("{}{path}", self.base)).await?)
    }

    /// The visible text of the first element matching `css`.
    async fn text(&self, css: &str) -> Res<String> {
        Ok(self.client.find(Locator::Css(css)).await?.text().await?)
    }

    /// The visible texts of every element matching `css`.
    async fn texts(&self, css: &str) -> Res<Vec<String>> {
        let mut out = Vec::new();
        for e in self.client.find_all(Locator::Css(css)).await? {
            out.push(e.text().await?);
        }
        Ok(out)
    }

    /// Clicks what `css` finds and waits for the page it leads to.
    async fn click(&self, css: &str) -> Res {
        let from = self.url().await?;
        self.client.find(Locator::Css(css)).await?.click().await?;
        self.left(&from).await
    }

    /// Follows the link reading `text` and waits for its page.
    async fn click_link(&self, text: &str) -> Res {
        let from = self.url().await?;
        self.client
            .find(Locator::LinkText(text))
            .await?
            .click()
            .await?;
        self.left(&from).await
    }

    /// Replaces the text of the field `css` with `value`, as typed.
    async fn fill(&self, css: &str, value: &str) -> Res {
        let field = self.client.find(Locator::Css(css)).await?;
        field.clear().await?;
        field.send_keys(value).await?;
        Ok(())
    }

    /// The current value of the field `css`.
    async fn value(&self, css: &str) -> Res<String> {
        let field = self.client.find(Locator::Css(css)).await?;
        Ok(field.prop("value").await?.unwrap_or_default())
    }

    async fn path(&self) -> Res<String> {
        Ok(self.client.current_url().await?.path().to_owned())
    }

    async fn url(&self) -> Res<String> {
        Ok(self.client.current_url().await?.to_string())
    }

    async fn shot(&self, name: &str) -> Res {
        let png = self.client.screenshot().await?;
        std::fs::write(self.shots.join(format!("{name}.png")), png)?;
        Ok(())
    }

    /// Waits (bounded) until the browser left the page at `from` (a full
    /// URL: a form posted back to its own URL counts) and loaded the next.
    async fn left(&self, from: &str) -> Res {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self
                .client
                .execute("return document.readyState", vec![])
                .await?;
            if self.url().await? != from && ready == "complete" {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("still on {from} (or loading) after 20 s").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What a person does, step by step.
async fn scenario(b: &Browser, blog: &RunningBlog) -> Res {
    // An empty blog says so.
    b.goto("/").await?;
    assert_eq!(b.client.title().await?, "Posts · rc blog");
    assert!(b.text("main").await?.contains("No posts yet"));
    b.shot("01-empty-list").await?;

    // A post without a title comes back with an error, and the text kept.
    b.click_link("New post").await?;
    b.fill("#content", "Typed before the title.").await?;
    b.click("button[type=submit]").await?;
    assert_eq!(b.text(".error").await?, "A post needs a title.");
    assert_eq!(b.value("#content").await?, "Typed before the title.");
    b.shot("02-form-error").await?;

    // With a title it is published and shown.
    b.fill("#title", "Hello from Chromium").await?;
    b.fill("#content", "First line.\nSecond line, with rc caching it.")
        .await?;
    b.click("button[type=submit]").await?;
    let post_path = b.path().await?;
    assert!(post_path.starts_with("/post/"), "on {post_path}");
    assert_eq!(b.text("h1").await?, "Hello from Chromium");
    assert_eq!(
        b.text(".content").await?,
        "First line.\nSecond line, with rc caching it."
    );
    b.shot("03-post").await?;

    // Edit: the form holds the post; saving shows the change.
    b.click_link("Edit").await?;
    assert_eq!(b.value("#title").await?, "Hello from Chromium");
    b.fill("#title", "Hello again, edited").await?;
    b.shot("04-edit-form").await?;
    b.click("button[type=submit]").await?;
    assert_eq!(b.path().await?, post_path);
    assert_eq!(b.text("h1").await?, "Hello again, edited");
    assert!(b.text(".meta").await?.contains("edited"));

    // Markup typed by a user is shown as typed, never run or rendered.
    let evil = "<script>document.title='pwned'</script>";
    b.goto("/new").await?;
    b.fill("#title", evil).await?;
    b.fill("#content", "<b>not bold</b> & <i>not italic</i>")
        .await?;
    b.click("button[type=submit]").await?;
    assert_eq!(b.text("h1").await?, evil);
    assert_eq!(b.client.title().await?, format!("{evil} · rc blog"));
    assert_eq!(
        b.text(".content").await?,
        "<b>not bold</b> & <i>not italic</i>"
    );
    assert!(
        b.client
            .find_all(Locator::Css(".content b"))
            .await?
            .is_empty()
    );
    b.shot("05-escaped").await?;

    // Enough posts for two pages (added over HTTP, it is quicker).
    for n in 1..=PER_PAGE {
        blog.add(
            &format!("Note {n}: what the cache saw today"),
            "A short note.",
        );
    }
    b.goto("/").await?;
    let first_page = b.texts(".posts li a").await?;
    assert_eq!(first_page.len(), PER_PAGE);
    assert_eq!(
        first_page[0],
        format!("Note {PER_PAGE}: what the cache saw today")
    );
    let pager = b.text(".pager").await?;
    assert!(pager.contains("Page 1 of 2"), "{pager}");
    assert!(pager.contains("Older"), "{pager}");
    b.shot("06-list-page-1").await?;
    b.click_link("Older →").await?;
    let second_page = b.texts(".posts li a").await?;
    assert_eq!(second_page, [evil, "Hello again, edited"]);
    assert!(b.text(".pager").await?.contains("Page 2 of 2"));
    b.shot("07-list-page-2").await?;

    // Delete (confirming the browser's question): gone from the list.
    b.click_link("Hello again, edited").await?;
    let from = b.url().await?;
    b.client
        .find(Locator::Css("button.danger"))
        .await?
        .click()
        .await?;
    b.client.accept_alert().await?;
    b.left(&from).await?;
    assert_eq!(b.path().await?, "/");
    b.goto("/?page=2").await?;
    let second_page = b.texts(".posts li a").await?;
    assert_eq!(second_page, [evil]);
    b.goto(&post_path).await?;
    assert_eq!(b.text("h1").await?, "Not found");
    b.shot("08-deleted-post").await?;

    // Traffic for the chart, then the stats page: a chart with its lines,
    // and Redis up and in use.
    for _ in 0..50 {
        blog.get("/");
        blog.get("/?page=2");
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(11) {
        blog.get("/");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.goto("/stats").await?;
    assert_eq!(b.text("h1").await?, "Cache stats");
    let lines = b
        .client
        .find_all(Locator::Css("svg.chart polyline"))
        .await?;
    assert_eq!(lines.len(), 4, "hits, misses, errors and hit ratio lines");
    let servers = b.text("table.servers").await?;
    assert!(
        servers.contains("up") && servers.contains("in use"),
        "{servers}"
    );
    b.shot("09-stats").await?;
    Ok(())
}

#[test]
fn a_person_uses_the_blog_in_chromium() {
    let server = RedisServer::start();
    let blog = RunningBlog::start(&server.url());
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("a temp dir for the browser profile");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome: Res = rt.block_on(async {
        let b = Browser::open(&driver, format!("http://{}", blog.addr), profile.path()).await?;
        let run = tokio::time::timeout(SESSION_LIMIT, scenario(&b, &blog)).await;
        // Close the session (and its browser) whatever happened.
        let _ = tokio::time::timeout(Duration::from_secs(10), b.client.close()).await;
        run.map_err(|_| format!("the session took over {SESSION_LIMIT:?}"))?
    });
    drop(driver);
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
