//! The SQLite database of the blog.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

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
                 updated_ts INTEGER
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
    pub(crate) async fn run<T, F>(&self, f: F) -> rusqlite::Result<T>
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
