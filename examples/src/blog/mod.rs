//! The blog of the rc tutorial: anyone can write a post, edit it, delete it,
//! read one, or page through them all. Posts live in SQLite; reading them
//! goes through rc, so a page that was seen once is served from Redis.
//!
//! Read it in this order:
//!
//! 1. [`Db`]: the SQLite database.
//! 2. [`model`]: [`Post`] and [`Summary`]. This is where caching happens:
//!    `get_by_id`, `get_summary` and `get_all_ids` carry `#[rc::cache]`, and
//!    `add`/`update`/`delete` invalidate what they change.
//! 3. [`store`]: where the cache lives (Redis, a private `redis-server`, or
//!    memory until Redis answers).
//! 4. [`app`] and the handlers below: one per route. The list page reads a
//!    page of summaries in batch mode: one round trip, a few bytes per post,
//!    however long the posts are.
//! 5. [`html`]: the pages, with every piece of user input escaped, and
//!    [`history`]: the stats page's chart.
//!
//! `examples/examples/blog.rs` puts it together and serves it. It lives in a
//! library so the tests (`examples/tests/blog.rs`, and the browser test
//! `examples/tests/browser.rs`) run the very same app.
//!
//! ## Why async
//!
//! The cached functions are `async fn`s on an [`rc::AsyncCache`]: a cache hit
//! is then a Redis round trip on the async runtime, with no thread held while
//! it waits, which is the point of a cache in a web server. SQLite (through
//! rusqlite) only has a blocking API, so the database work, which runs on
//! cache misses only, is sent to Tokio's blocking thread pool by `Db::run`.

mod db;
pub mod history;
pub mod html;
pub mod model;
pub mod store;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rc::AsyncCache;
use serde::Deserialize;

pub use db::Db;
use history::History;
pub use model::{Post, Summary};
pub use store::{SetupError, Store};

/// Posts per list page.
pub const PER_PAGE: usize = 10;
/// The longest title accepted, in characters.
const MAX_TITLE: usize = 200;

/// What every page needs: the database, the cache and its history.
pub struct Blog {
    db: Db,
    cache: AsyncCache,
    store: Arc<Store>,
    history: Arc<History>,
}

impl Blog {
    /// The blog on `db`, caching as [`store::connect`] decides for
    /// `redis_url` (`private_server`: may start a private `redis-server`).
    /// Keys are namespaced per database ([`Db::cache_namespace`]). Starts
    /// the tasks that watch Redis and sample the stats; call it inside a
    /// Tokio runtime.
    pub async fn connect(
        db: Db,
        redis_url: &str,
        private_server: bool,
    ) -> Result<Blog, SetupError> {
        let options = rc::CacheOptions::new().namespace(db.cache_namespace());
        let (cache, store) = store::connect(redis_url, options, private_server).await?;
        let history = Arc::new(History::default());
        let sampled = cache.clone();
        tokio::spawn(history::sample(Arc::clone(&history), move || {
            if let Some(prometheus) = prometheus() {
                prometheus.run_upkeep();
            }
            sampled.stats()
        }));
        Ok(Blog {
            db,
            cache,
            store,
            history,
        })
    }

    /// Where the cache lives now.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// The process's Prometheus recorder (installed on first use), which
/// collects rc's per-function metrics; `None` if another recorder was
/// installed first.
fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// The web app: its routes and handlers, sharing `blog`.
pub fn app(blog: Blog) -> Router {
    // Installed now, so the first calls are counted.
    prometheus();
    Router::new()
        .route("/", get(list))
        .route("/new", get(new_post))
        .route("/add", post(add_post))
        .route("/post/{id}", get(show_post).post(edit_post))
        .route("/post/{id}/edit", get(edit_form))
        .route("/post/{id}/delete", post(delete_post))
        .route("/stats", get(stats_page))
        .route("/stats.json", get(stats_json))
        .route("/metrics", get(metrics))
        .route("/style.css", get(stylesheet))
        .with_state(Arc::new(blog))
}

/// The fields of the add and edit forms.
#[derive(Deserialize)]
struct PostForm {
    title: String,
    content: String,
}

impl PostForm {
    /// What is wrong with the form, in words for the person who filled it.
    fn problem(&self) -> Option<&'static str> {
        if self.title.trim().is_empty() {
            Some("A post needs a title.")
        } else if self.title.chars().count() > MAX_TITLE {
            Some("The title is too long: 200 characters at most.")
        } else {
            None
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    page: Option<usize>,
}

type Shared = State<Arc<Blog>>;

/// `GET /?page=N`: a page of posts, newest first.
async fn list(State(blog): Shared, Query(q): Query<ListQuery>) -> Result<Response, AppError> {
    let blog: &Blog = &blog;
    let ids = Post::get_all_ids(blog).await?;
    let pages = ids.len().div_ceil(PER_PAGE).max(1);
    let page_no = q.page.unwrap_or(1);
    if page_no == 0 || page_no > pages {
        return Ok(not_found());
    }
    let on_page = &ids[(page_no - 1) * PER_PAGE..ids.len().min(page_no * PER_PAGE)];

    // Batch mode. Calling `get_summary` for each id would cost one Redis
    // round trip per post. Instead, record every call in a batch (each
    // returns a pending promise), then `run` it: one MGET fetches all the
    // keys, the summaries missing from the cache are loaded from the
    // database, stored with one pipelined write, and every promise is resolved.
    let batch = blog.cache.batch();
    let promises: Vec<_> = on_page
        .iter()
        .map(|&id| Post::batch_get_summary(&batch, blog, id))
        .collect();
    batch.run().await;
    let mut posts = Vec::with_capacity(promises.len());
    for promise in promises {
        // `into_value` is `None` only while the batch has not run.
        let summary = promise.into_value().expect("the batch has run")?;
        // A post deleted behind the cache's back would be `None`: skip it.
        posts.extend(summary);
    }
    Ok(Html(html::list_page(&posts, page_no, pages, ids.len())).into_response())
}

/// `GET /new`: the empty form.
async fn new_post() -> Html<String> {
    Html(html::form_page(None, "", "", None))
}

/// `POST /add`: adds a post and shows it; a bad form comes back with its input.
async fn add_post(State(blog): Shared, Form(form): Form<PostForm>) -> Result<Response, AppError> {
    if let Some(problem) = form.problem() {
        let page = html::form_page(None, &form.title, &form.content, Some(problem));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page)).into_response());
    }
    let id = Post::add(&blog, form.title, form.content).await?;
    Ok(Redirect::to(&format!("/post/{id}")).into_response())
}

/// `GET /post/{id}`: one post.
async fn show_post(State(blog): Shared, Path(id): Path<i64>) -> Result<Response, AppError> {
    match Post::get_by_id(&blog, id).await? {
        Some(post) => Ok(Html(html::post_page(&post)).into_response()),
        None => Ok(not_found()),
    }
}

/// `GET /post/{id}/edit`: the form, filled with the post.
async fn edit_form(State(blog): Shared, Path(id): Path<i64>) -> Result<Response, AppError> {
    match Post::get_by_id(&blog, id).await? {
        Some(p) => Ok(Html(html::form_page(Some(id), &p.title, &p.content, None)).into_response()),
        None => Ok(not_found()),
    }
}

/// `POST /post/{id}`: saves an edit and shows the post.
async fn edit_post(
    State(blog): Shared,
    Path(id): Path<i64>,
    Form(form): Form<PostForm>,
) -> Result<Response, AppError> {
    if let Some(problem) = form.problem() {
        let page = html::form_page(Some(id), &form.title, &form.content, Some(problem));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page)).into_response());
    }
    if !Post::update(&blog, id, form.title, form.content).await? {
        return Ok(not_found());
    }
    Ok(Redirect::to(&format!("/post/{id}")).into_response())
}

/// `POST /post/{id}/delete`: deletes a post, then back to the list.
async fn delete_post(State(blog): Shared, Path(id): Path<i64>) -> Result<Response, AppError> {
    if !Post::delete(&blog, id).await? {
        return Ok(not_found());
    }
    Ok(Redirect::to("/").into_response())
}

/// `GET /stats`: the chart of the last minutes, totals and servers.
async fn stats_page(State(blog): Shared) -> Html<String> {
    let stats = blog.cache.stats();
    let rates = blog.history.rates(Instant::now(), stats);
    let servers = blog.store.servers();
    Html(html::stats_page(&html::StatsView {
        stats,
        rates: &rates,
        servers: &servers,
    }))
}

/// `GET /stats.json`: the cache's counters and where it caches.
async fn stats_json(State(blog): Shared) -> Json<serde_json::Value> {
    let s = blog.cache.stats();
    Json(serde_json::json!({
        "hits": s.hits,
        "misses": s.misses,
        "sets": s.sets,
        "bypassed": s.bypassed,
        "errors": s.errors,
        "decode_errors": s.decode_errors,
        "in_redis": blog.store.in_redis(),
    }))
}

/// `GET /metrics`: rc's per-function metrics in Prometheus' text format.
async fn metrics() -> Response {
    match prometheus() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "another metrics recorder was installed in this process",
        )
            .into_response(),
    }
}

/// `GET /style.css`: the one stylesheet.
async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("blog.css"),
    )
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Html(html::not_found())).into_response()
}

/// A database error, shown as a 500 page (and logged for the operator).
struct AppError(rusqlite::Error);

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        AppError(e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!("blog: database error: {}", self.0);
        (StatusCode::INTERNAL_SERVER_ERROR, "database error").into_response()
    }
}
