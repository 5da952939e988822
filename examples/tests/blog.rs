//! End to end: the blog tutorial against a real `redis-server`, driven over
//! HTTP the way a browser would (add, view, update, delete, list, pages),
//! and how it finds Redis (picked up when it appears, misconfiguration refused).

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::RunningBlog;
use examples::blog::{Blog, Db, PER_PAGE};
use rc::testing::RedisServer;

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
