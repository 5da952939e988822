//! The blog of the rc tutorial: anyone can add a post, update a post, read
//! one, or list them all. Posts live in SQLite; reading them goes through rc,
//! so a page that was seen once is served from Redis.
//!
//! Read it top to bottom:
//!
//! 1. [`Db`]: the SQLite database.
//! 2. [`Post`]: the model. This is where caching happens: `get_by_id` and
//!    `get_all_ids` carry `#[rc::cache]`, and `add`/`update` invalidate what
//!    they change.
//! 3. [`connect_cache`]: Redis if it answers, else an in-process store.
//! 4. [`app`] and the handlers: the pages, one per route; the list page
//!    fetches its posts in batch mode.
//! 5. The HTML, with every piece of user input escaped.
//!
//! `examples/examples/blog.rs` puts it together and serves it. It lives in a
//! library so the end-to-end test (`examples/tests/blog.rs`) can run the very
//! same app in-process.
//!
//! ## Why async
//!
//! The cached functions are `async fn`s on an [`rc::AsyncCache`]: a cache hit
//! is then a Redis round trip on the async runtime, with no thread held while
//! it waits, which is the point of a cache in a web server. SQLite (through
//! rusqlite) only has a blocking API, so the database work, which runs on
//! cache misses only, is sent to Tokio's blocking thread pool by
//! `Db::run`. The other way round (sync `#[rc::cache]` functions on a
//! blocking [`rc::Cache`], each request wrapped in `spawn_blocking`) works
//! too, but would hold a thread for every request, hits included.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rc::{AsyncCache, CacheOptions, MemoryBackend};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// 1. The database
// ---------------------------------------------------------------------------

/// The SQLite database of the blog: one connection behind a mutex (SQLite
/// writes one at a time anyway), cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens the database at `path`, or an in-memory one (as the Python
    /// tutorial does) when `path` is `None`, and creates the tables.
    pub fn open(path: Option<&str>) -> rusqlite::Result<Db> {
        let conn = match path {
            Some(path) => Connection::open(path)?,
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS posts (
                 id         INTEGER PRIMARY KEY,
                 title      TEXT    NOT NULL,
                 content    TEXT    NOT NULL,
                 created_ts INTEGER NOT NULL,
                 updated_ts INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )?;
        // An id made once, when the database is created; see `cache_namespace`.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let fresh = format!("{:x}{:x}", nanos, std::process::id());
        conn.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('cache_id', ?1)",
            [fresh],
        )?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The namespace for this database's cache keys: `blog:<id>:`, with an id
    /// made when the database was created.
    ///
    /// Why: Redis outlives this process. Without it, a new (for example
    /// in-memory) database would reuse post id 1 while Redis still holds
    /// "post 1" of the previous database, and the blog would show posts that
    /// do not exist. With it, each database only ever sees its own keys; the
    /// old ones simply expire.
    pub fn cache_namespace(&self) -> String {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let id: String = conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'cache_id'",
                [],
                |row| row.get(0),
            )
            .unwrap_or_else(|_| "0".to_owned());
        format!("blog:{id}:")
    }

    /// Runs `f` with the connection on Tokio's blocking thread pool, so the
    /// async threads keep serving other requests meanwhile.
    async fn run<T, F>(&self, f: F) -> rusqlite::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&conn.lock().unwrap_or_else(PoisonError::into_inner)))
            .await
            .expect("a database task panicked")
    }
}

/// What every page needs: the database and the cache.
pub struct Blog {
    db: Db,
    cache: AsyncCache,
}

impl Blog {
    /// The blog on `db`, caching in `cache`.
    pub fn new(db: Db, cache: AsyncCache) -> Blog {
        Blog { db, cache }
    }
}

// ---------------------------------------------------------------------------
// 2. The model
// ---------------------------------------------------------------------------

/// A blog post. It is what gets cached, so it derives `Serialize` and
/// `Deserialize` (stored as JSON in Redis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// Its row id.
    pub id: i64,
    /// The title.
    pub title: String,
    /// The text.
    pub content: String,
    /// When it was added (Unix time).
    pub created_ts: i64,
    /// When it was last changed (Unix time).
    pub updated_ts: i64,
}

impl Post {
    /// Adds a post; returns its id.
    pub async fn add(blog: &Blog, title: String, content: String) -> rusqlite::Result<i64> {
        let now = unix_now();
        let id = blog
            .db
            .run(move |conn| {
                conn.execute(
                    "INSERT INTO posts (title, content, created_ts, updated_ts) VALUES (?1, ?2, ?3, ?3)",
                    params![title, content, now],
                )?;
                Ok(conn.last_insert_rowid())
            })
            .await?;
        // Someone may have asked for this id before it existed: that answer
        // (`None`, "no such post") is cached too, so drop it.
        Post::invalidate_get_by_id(blog, id).await;
        // The list of ids just grew.
        Post::invalidate_get_all_ids(blog).await;
        Ok(id)
    }

    /// Changes a post's title and text; returns false if there is no such post.
    pub async fn update(
        blog: &Blog,
        id: i64,
        title: String,
        content: String,
    ) -> rusqlite::Result<bool> {
        let now = unix_now();
        let changed = blog
            .db
            .run(move |conn| {
                conn.execute(
                    "UPDATE posts SET title = ?1, content = ?2, updated_ts = ?3 WHERE id = ?4",
                    params![title, content, now, id],
                )
            })
            .await?;
        // Only this post's cached value is stale now; the list of ids is not.
        // `invalidate_get_by_id` was generated by `#[rc::cache]` below and takes
        // the same arguments as `get_by_id`, so it deletes exactly that key.
        Post::invalidate_get_by_id(blog, id).await;
        Ok(changed == 1)
    }

    /// The ids of all posts, newest first.
    ///
    /// `#[rc::cache]` keeps the result in Redis for an hour, under the key
    /// `examples::blog get_all_ids` (module path, function name) in the
    /// blog's namespace. `cache = blog.cache` says which cache to use;
    /// `skip(blog)` leaves the handle out of the key. Only `Ok` results of a
    /// function returning `Result` are cached: a database error is not.
    #[rc::cache(cache = blog.cache, skip(blog), expire = 3600)]
    pub async fn get_all_ids(blog: &Blog) -> rusqlite::Result<Vec<i64>> {
        blog.db
            .run(|conn| {
                let mut stmt = conn.prepare("SELECT id FROM posts ORDER BY id DESC")?;
                let ids = stmt.query_map([], |row| row.get(0))?;
                ids.collect()
            })
            .await
    }

    /// One post, or `None` if there is no such id.
    ///
    /// Cached under `examples::blog get_by_id <id>`. Besides this function,
    /// `#[rc::cache]` generates `Post::invalidate_get_by_id(blog, id)` (used
    /// by `add` and `update`) and `Post::batch_get_by_id(&batch, blog, id)`
    /// (used by the list page).
    #[rc::cache(cache = blog.cache, skip(blog), expire = 3600)]
    pub async fn get_by_id(blog: &Blog, id: i64) -> rusqlite::Result<Option<Post>> {
        blog.db
            .run(move |conn| {
                conn.query_row(
                    "SELECT id, title, content, created_ts, updated_ts FROM posts WHERE id = ?1",
                    [id],
                    |row| {
                        Ok(Post {
                            id: row.get(0)?,
                            title: row.get(1)?,
                            content: row.get(2)?,
                            created_ts: row.get(3)?,
                            updated_ts: row.get(4)?,
                        })
                    },
                )
                .optional()
            })
            .await
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

// ---------------------------------------------------------------------------
// 3. The cache
// ---------------------------------------------------------------------------

/// A cache with `options` on the Redis at `url` if it answers; otherwise on
/// an in-process store, with a one-line notice saying so.
///
/// The blog works either way. In-process, the cache lives and dies with this
/// process and is not shared with other instances of the app.
pub async fn connect_cache(url: &str, options: CacheOptions) -> (AsyncCache, Option<String>) {
    // Building does not connect; one read does. A missing key answers
    // `Ok(None)`; a refused connection or a timeout (1 s by default) is an
    // `Err` that names the server.
    let builder = rc::Cache::builder().url(url).options(options.clone());
    let error = match builder.build_async() {
        Ok(cache) => match cache.get::<String>("rc-blog:ping").await {
            Ok(_) => return (cache, None),
            Err(e) => e,
        },
        Err(e) => e,
    };
    let fallback = options
        .build_async(Arc::new(MemoryBackend::new()))
        .expect("the options were accepted by the builder already");
    let notice = format!("note: no Redis ({error}); caching in this process's memory instead");
    (fallback, Some(notice))
}

// ---------------------------------------------------------------------------
// 4. The pages
// ---------------------------------------------------------------------------

/// The web app: its routes and handlers, sharing `blog`.
pub fn app(blog: Blog) -> Router {
    Router::new()
        .route("/", get(show_all_posts))
        .route("/add", post(add_post))
        .route("/post/{id}", get(show_post).post(edit_post))
        .route("/stats", get(stats))
        .with_state(Arc::new(blog))
}

/// The fields of the add and update forms.
#[derive(Deserialize)]
struct PostForm {
    title: String,
    content: String,
}

/// `GET /`: every post, and the form to add one.
async fn show_all_posts(State(blog): State<Arc<Blog>>) -> Result<Html<String>, AppError> {
    let blog: &Blog = &blog;
    let ids = Post::get_all_ids(blog).await?;

    // Batch mode. Calling `get_by_id` for each id would cost one Redis round
    // trip per post. Instead, record every call in a batch (each returns a
    // pending promise), then `run` it: one MGET fetches all the keys, the
    // posts missing from the cache are loaded from the database, stored with
    // one pipelined write, and every promise is resolved.
    let batch = blog.cache.batch();
    let promises: Vec<_> = ids
        .iter()
        .map(|&id| Post::batch_get_by_id(&batch, blog, id))
        .collect();
    batch.run().await;

    let mut posts = Vec::with_capacity(promises.len());
    for promise in promises {
        // `into_value` is `None` only while the batch has not run.
        let post = promise.into_value().expect("the batch has run")?;
        // A post deleted behind the cache's back would be `None`: skip it.
        posts.extend(post);
    }
    Ok(Html(all_posts_page(&posts)))
}

/// `POST /add`: adds a post, then back to the list.
async fn add_post(
    State(blog): State<Arc<Blog>>,
    Form(form): Form<PostForm>,
) -> Result<Response, AppError> {
    if form.title.trim().is_empty() {
        return Ok((StatusCode::BAD_REQUEST, "a post needs a title").into_response());
    }
    Post::add(&blog, form.title, form.content).await?;
    Ok(Redirect::to("/").into_response())
}

/// `GET /post/{id}`: one post, and the form to change it.
async fn show_post(
    State(blog): State<Arc<Blog>>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    match Post::get_by_id(&blog, id).await? {
        Some(post) => Ok(Html(post_page(&post)).into_response()),
        None => Ok(not_found()),
    }
}

/// `POST /post/{id}`: updates a post, then back to the list.
async fn edit_post(
    State(blog): State<Arc<Blog>>,
    Path(id): Path<i64>,
    Form(form): Form<PostForm>,
) -> Result<Response, AppError> {
    if form.title.trim().is_empty() {
        return Ok((StatusCode::BAD_REQUEST, "a post needs a title").into_response());
    }
    if !Post::update(&blog, id, form.title, form.content).await? {
        return Ok(not_found());
    }
    Ok(Redirect::to("/").into_response())
}

/// `GET /stats`: what the cache did so far, as JSON (hits, misses, sets, ...).
async fn stats(State(blog): State<Arc<Blog>>) -> Json<serde_json::Value> {
    let s = blog.cache.stats();
    Json(serde_json::json!({
        "hits": s.hits,
        "misses": s.misses,
        "sets": s.sets,
        "bypassed": s.bypassed,
        "errors": s.errors,
        "decode_errors": s.decode_errors,
    }))
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(page(
            "Not found",
            "<p>No such post. <a href=\"/\">All posts</a></p>",
        )),
    )
        .into_response()
}

/// A database error, shown as a 500 page (and printed for the operator).
struct AppError(rusqlite::Error);

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        AppError(e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        eprintln!("blog: database error: {}", self.0);
        (StatusCode::INTERNAL_SERVER_ERROR, "database error").into_response()
    }
}

// ---------------------------------------------------------------------------
// 5. The HTML
// ---------------------------------------------------------------------------

/// Makes user text safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page; `title` is escaped here, `body` must already be HTML.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}\n</body>\n</html>\n",
        escape(title)
    )
}

/// The title and content fields, filled with `post`'s when editing.
fn post_form(action: &str, button: &str, post: Option<&Post>) -> String {
    let (title, content) = post.map_or(("", ""), |p| (p.title.as_str(), p.content.as_str()));
    format!(
        "<form action=\"{action}\" method=\"post\">\n<dl>\n\
         <dt>Title:</dt><dd><input type=\"text\" size=\"50\" name=\"title\" value=\"{}\"></dd>\n\
         <dt>Content:</dt><dd><textarea name=\"content\" rows=\"5\" cols=\"40\">{}</textarea></dd>\n\
         <dd><input type=\"submit\" value=\"{button}\"></dd>\n</dl>\n</form>",
        escape(title),
        escape(content)
    )
}

fn all_posts_page(posts: &[Post]) -> String {
    let items: String = posts
        .iter()
        .map(|p| {
            format!(
                "<li><a href=\"/post/{}\">{}</a></li>\n",
                p.id,
                escape(&p.title)
            )
        })
        .collect();
    let body = format!(
        "<h1>Blog</h1>\n{}\n<ul>\n{items}</ul>",
        post_form("/add", "Post", None)
    );
    page("Blog", &body)
}

fn post_page(post: &Post) -> String {
    let body = format!(
        "<p><a href=\"/\">All posts</a></p>\n<h1>{}</h1>\n<p style=\"white-space: pre-wrap\">{}</p>\n\
         <p><small>added {}, last changed {}</small></p>\n{}",
        escape(&post.title),
        escape(&post.content),
        utc(post.created_ts),
        utc(post.updated_ts),
        post_form(&format!("/post/{}", post.id), "Update", Some(post))
    );
    page(&post.title, &body)
}

/// `YYYY-MM-DD HH:MM UTC` for a Unix time.
fn utc(ts: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(ts.max(0) as u64);
    // RFC 3339 is `YYYY-MM-DDTHH:MM:SSZ`; a page only needs the minutes.
    let rfc = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} {} UTC", &rfc[..10], &rfc[11..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_html_specials() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
    }
}
