//! State in SQLite or PostgreSQL (through sqlx's `Any` driver): what each source's last fetch
//! saw, and every archived article with the hash of what its file was made from, so an unchanged
//! entry costs one lookup.
//!
//! One SQL text serves both backends wherever they agree (`$1` placeholders, `ON CONFLICT`
//! upserts, integers for flags and times); each backend has its own migrations, and the few
//! queries that differ ask [`Backend`] for their text. Nothing above the store knows which
//! backend runs.
//!
//! Times are stored as Unix milliseconds so ordering is numeric and the `date` index serves the
//! merged feed directly.
//!
//! Rows are read by column name (`sqlx::FromRow`, or `query_scalar` for one column), so a query's
//! column order does not matter and a missing or mistyped column is an error, not a panic. A row
//! whose columns need converting (milliseconds, JSON lists, saturated counts) is read into a
//! private struct beside its query; a public struct whose fields are its columns is read as it is.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::MigrateError;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, ConnectOptions as _};

use crate::error::{Error, Result};
mod archive_lock;
mod articles;
mod backend;
mod content;
mod copy;
mod enrichment;
mod history;
mod identity;
pub mod integrity;
mod leases;
mod listing;
mod lookups;
mod packed;
mod published;
mod search;
mod sources;

pub use archive_lock::{ArchiveLock, this_host};
pub use articles::{
    ArticleRecord, Encoded, FILE_KEY_PREFIX, FeedRow, Known, RecordWrite, Rendering, Selection,
    StoredArticle, Unrendered,
};
use backend::numbered_rows;
pub use backend::{Backend, redacted};
pub use content::CanonicalMatch;
pub use copy::Copied;
pub use enrichment::{CachedAnswer, EnrichmentTotals, PendingEnrichment, Spend};
pub use history::{Backfilled, HistoryPage};
pub use leases::{Claimed, Queue, WorkerRow};
pub use listing::{Counted, Neighbour};
pub use lookups::Lookups;
pub use search::document_words;
pub use sources::Pruned;

pub use crate::model::FeedMeta;
use crate::model::Validators;

/// Sources per multi-row statement: 14 parameters each, far below SQLite's limit of 32,766 and
/// PostgreSQL's of 65,535.
const SOURCES_PER_STATEMENT: usize = 256;

/// A connection to the state database, of either backend; store functions that run inside a
/// caller's transaction take one.
pub type Conn = AnyConnection;

/// A write transaction (see [`Store::begin`]).
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The connection [`Store::writer`] hands out, to begin write transactions on.
pub type Writer = sqlx::pool::PoolConnection<sqlx::Any>;

/// A handle on the state database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where write transactions run ([`Store::begin`]): on SQLite, one connection of its own,
    /// so that its page cache outlives each commit. SQLite empties a connection's cache when
    /// another connection wrote since it last read, so write transactions that took turns on
    /// the pool's connections read most of what they touched back from the WAL and the
    /// database file. On PostgreSQL, the pool.
    writer: AnyPool,
    backend: Backend,
    /// Background checkpoints of SQLite's WAL (see [`Store::checkpoint_in_background`]).
    checkpoints: Arc<Checkpoints>,
}

/// Where the background checkpoints stand.
#[derive(Debug, Default)]
struct Checkpoints {
    /// One is under way.
    running: AtomicBool,
    /// Records written since the last one began.
    written: AtomicUsize,
}

/// What a successful fetch leaves behind.
#[derive(Debug, Clone)]
pub struct SuccessRecord<'a> {
    pub source: &'a str,
    /// The configured URL, so a changed configuration can be told apart.
    pub url: &'a str,
    pub at: DateTime<Utc>,
    /// `ok`, `not-modified` or `same-body`.
    pub status: &'a str,
    pub http_status: Option<u16>,
    pub validators: &'a Validators,
    /// `None` keeps the stored hash (a 304 proves the body is the one hashed before).
    pub body_hash: Option<&'a str>,
    pub moved_to: Option<&'a str>,
    pub meta: Option<&'a FeedMeta>,
    pub next_due_at: DateTime<Utc>,
    /// What the parsed feed asked for (`Some(ZERO)`: nothing); `None` keeps the stored value.
    pub feed_delay: Option<Duration>,
}

/// What a failed fetch leaves behind.
#[derive(Debug, Clone)]
pub struct FailureRecord<'a> {
    pub source: &'a str,
    pub url: &'a str,
    pub at: DateTime<Utc>,
    pub error: &'a str,
    /// The failure's kind (`timeout`, `http-503`, ...), when it was a fetch.
    pub error_kind: Option<&'a str>,
    pub http_status: Option<u16>,
    pub next_due_at: DateTime<Utc>,
    /// Set when the failure disables the source (410 Gone).
    pub disabled_reason: Option<&'a str>,
}

/// What the last fetches left for the next one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceState {
    /// The configured URL the state belongs to.
    pub url: String,
    pub validators: Validators,
    pub body_hash: Option<String>,
    pub moved_to: Option<String>,
    pub next_due_at: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub disabled_reason: Option<String>,
    /// The delay the feed document last asked for, if any.
    pub feed_delay: Option<Duration>,
    /// The settings fingerprint all the source's records were last rendered with.
    pub fingerprint: Option<String>,
    /// The identity policy its articles' keys were made under; `None` for `auto`.
    pub identity: Option<String>,
}

/// One line of `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceStatus {
    pub id: String,
    pub url: String,
    /// Where the feed is fetched from now, after permanent redirects.
    pub moved_to: Option<String>,
    pub last_fetch_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_http_status: Option<i64>,
    pub has_validators: bool,
    pub next_due_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i64,
    pub last_error: Option<String>,
    /// What kind of failure the last error was: `timeout`, `connect`, `http-503`, ...
    pub last_error_kind: Option<String>,
    pub disabled_reason: Option<String>,
    pub articles: i64,
    /// When `gazette remove` took the source out (its files stay known).
    pub removed_at: Option<DateTime<Utc>>,
    /// The extraction selector matched nothing on the last article page it was tried on.
    pub selector_stopped_matching: bool,
    /// The date of its oldest article: how far back its archive reaches.
    pub oldest_article: Option<DateTime<Utc>>,
    /// How its last `backfill` ended, when it had one.
    pub backfill: Option<Backfilled>,
}

impl SourceStatus {
    /// A configured source state has no row for yet.
    pub fn never_fetched(id: &str, url: &str) -> Self {
        Self {
            id: id.to_owned(),
            url: url.to_owned(),
            moved_to: None,
            last_fetch_at: None,
            last_status: None,
            last_http_status: None,
            has_validators: false,
            next_due_at: None,
            consecutive_failures: 0,
            last_error: None,
            last_error_kind: None,
            disabled_reason: None,
            articles: 0,
            removed_at: None,
            selector_stopped_matching: false,
            oldest_article: None,
            backfill: None,
        }
    }
}

pub fn to_millis(t: &DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A list as a JSON column: NULL when empty, so most rows hold nothing.
fn json_list<T: serde::Serialize>(items: &[T]) -> Option<String> {
    (!items.is_empty())
        .then(|| serde_json::to_string(items).ok())
        .flatten()
}

/// A JSON list column; NULL or unreadable JSON is an empty list (the column is only ever
/// written by [`json_list`]).
fn from_json_list<T: serde::de::DeserializeOwned>(column: Option<String>) -> Vec<T> {
    column
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// What [`Store::source_state`] and [`Store::source_states`] read (a macro, so that both
/// queries stay static strings).
macro_rules! state_select {
    () => {
        "SELECT id, url, etag, last_modified, body_hash, moved_to, next_due_at, consecutive_failures,
                disabled_reason, feed_delay_secs, fingerprint, identity
         FROM sources"
    };
}

struct StateRow {
    id: String,
    state: SourceState,
}

impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for StateRow {
    fn from_row(row: &'r sqlx::any::AnyRow) -> std::result::Result<Self, sqlx::Error> {
        #[derive(sqlx::FromRow)]
        struct Columns {
            id: String,
            url: String,
            etag: Option<String>,
            last_modified: Option<String>,
            body_hash: Option<String>,
            moved_to: Option<String>,
            next_due_at: Option<i64>,
            consecutive_failures: i64,
            disabled_reason: Option<String>,
            feed_delay_secs: Option<i64>,
            fingerprint: Option<String>,
            identity: Option<String>,
        }
        let r = Columns::from_row(row)?;
        Ok(Self {
            id: r.id,
            state: SourceState {
                url: r.url,
                validators: Validators {
                    etag: r.etag,
                    last_modified: r.last_modified,
                },
                body_hash: r.body_hash,
                moved_to: r.moved_to,
                next_due_at: r.next_due_at.map(from_millis),
                consecutive_failures: u32::try_from(r.consecutive_failures).unwrap_or(u32::MAX),
                disabled_reason: r.disabled_reason,
                feed_delay: r
                    .feed_delay_secs
                    .and_then(|s| u64::try_from(s).ok())
                    .filter(|s| *s > 0)
                    .map(Duration::from_secs),
                fingerprint: r.fingerprint,
                identity: r.identity,
            },
        })
    }
}

/// Each SQLite connection's settings.
const SQLITE_SETTINGS: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = NORMAL;
     PRAGMA busy_timeout = 30000;
     PRAGMA foreign_keys = ON;
     -- A statement that writes several rows (triggers included) journals the pages it
     -- changes, to take itself back if it fails: in memory, not a temporary file.
     PRAGMA temp_store = MEMORY;
     -- The pipeline checkpoints the WAL on a connection of its own every 500 records (see
     -- `Store::checkpoint_in_background`); a commit checkpoints itself only past this many
     -- pages (16 MB, more than a batch of sources writes), a bound for every other writer.
     PRAGMA wal_autocheckpoint = 4000;";

/// Records written between background checkpoints (about 2.5 MB of rows and index pages): a
/// cold run's batches are checkpointed as they come, while a run that writes a few hundred
/// (an incremental one) leaves the WAL to the next, as before.
const CHECKPOINT_RECORDS: usize = 500;

/// The page cache of the writer's connection (8 MB): it holds what a batch of sources touches
/// (the tables' and indexes' pages it inserts into), where the default 2 MB sent half of them
/// back to the WAL at every batch.
const WRITER_CACHE: &str = "PRAGMA cache_size = -8000;";

/// The page cache of each other connection (1 MB): SQLite empties it whenever the writer
/// committed since it last read, which during a run is every batch.
const READER_CACHE: &str = "PRAGMA cache_size = -1000;";

impl Store {
    /// Opens (creating if needed) the database at a `sqlite://` or `postgres://` URL and brings
    /// its schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or_else(|| {
            Error::Schema(format!(
                "{}: not a sqlite:// or postgres:// URL",
                backend::redacted(url)
            ))
        })?;
        let (pool, writer) = match backend {
            Backend::Sqlite => Self::open_sqlite(url).await?,
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(8)
                // Every statement planned for its own arguments and the tables as they are
                // now. A plan cached while the archive was small (PostgreSQL keeps a generic
                // one after five runs, and its statistics lag a cold run) scanned every
                // article for each feed once there were thousands.
                //
                // Commits do not wait for the WAL to reach the disk: the durability SQLite's
                // WAL mode with `synchronous = NORMAL` has. An operating-system crash may lose
                // the last moment's commits, never corrupt anything, and the design expects
                // it (files are durable before the records that point at them; a lost record
                // is a file adopted or a source fetched again; a lost "rendered" mark is a
                // file rendered again to the same bytes). Waiting for the disk at each of a
                // cold run's commits cost as much as the rest of the run.
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::raw_sql(
                            "SET plan_cache_mode = force_custom_plan; SET synchronous_commit = off",
                        )
                        .execute(conn)
                        .await?;
                        Ok(())
                    })
                })
                .after_release(|conn, _| Box::pin(Self::reusable(conn)))
                .connect(url)
                .await
                .map(|pool| (pool.clone(), pool))
                .map_err(integrity::damage_or)?,
        };
        let migrator = backend.migrator();
        match migrator.run(&pool).await {
            Ok(()) => {
                let store = Self {
                    pool,
                    writer,
                    backend,
                    checkpoints: Arc::default(),
                };
                store.ensure_searchable().await?;
                Ok(store)
            }
            // A migration this binary does not know was applied: a newer Gazette wrote it, and
            // this one would misread (or damage) what it added.
            Err(MigrateError::VersionMissing(version)) => Err(Error::Schema(format!(
                "{} was written by a newer Gazette (schema version {version}; \
                 this one knows up to {}); run that version, or restore an older state",
                backend::redacted(url),
                migrator.iter().map(|m| m.version).max().unwrap_or_default()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The pool, and the writer's pool of one connection.
    async fn open_sqlite(url: &str) -> Result<(AnyPool, AnyPool)> {
        let options = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
        if let Some(dir) = options
            .get_filename()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        // An empty, foreign or cut-short file is refused before SQLite takes it for a new
        // database or fails on it later with a bare "malformed".
        let file = options.get_filename().to_path_buf();
        tokio::task::spawn_blocking(move || integrity::check_file(&file))
            .await
            .map_err(|e| Error::io(options.get_filename(), std::io::Error::other(e)))??;
        // The `Any` driver opens SQLite from a URL (file name and mode only); the settings
        // are applied to each new connection instead.
        let any = AnyConnectOptions::from_url(&options.to_url_lossy())?;
        // One connection first, by hand: the pool retries a connection whose settings fail
        // until its acquire timeout (30 s), while a damaged schema page fails them at once.
        {
            use sqlx::Connection as _;
            let mut first = AnyConnection::connect_with(&any)
                .await
                .map_err(integrity::damage_or)?;
            sqlx::raw_sql(SQLITE_SETTINGS)
                .execute(&mut first)
                .await
                .map_err(integrity::damage_or)?;
            first.close().await.map_err(integrity::damage_or)?;
        }
        let pool_of = |connections, cache: &'static str| {
            AnyPoolOptions::new()
                .max_connections(connections)
                // A connection to a file does not go stale the way one to a server does, and
                // the pool's test (a round trip to the connection's thread) would cost the
                // one writer a wait at every transaction.
                .test_before_acquire(false)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        sqlx::raw_sql(SQLITE_SETTINGS).execute(&mut *conn).await?;
                        sqlx::raw_sql(cache).execute(conn).await?;
                        Ok(())
                    })
                })
                .after_release(|conn, _| Box::pin(Self::reusable(conn)))
        };
        let writer = pool_of(1, WRITER_CACHE).connect_lazy_with(any.clone());
        let pool = pool_of(4, READER_CACHE)
            .connect_with(any)
            .await
            .map_err(integrity::damage_or)?;
        // Reads the first page's schema cookie: a damaged header shows here, once and clearly.
        sqlx::query_scalar::<_, i64>("PRAGMA schema_version")
            .fetch_one(&pool)
            .await
            .map_err(integrity::damage_or)?;
        Ok((pool, writer))
    }

    /// Whether a connection coming back to the pool may be used again: not while it is still
    /// in a transaction. A full disk or an I/O error makes SQLite roll back the whole
    /// transaction by itself; the ROLLBACK that follows then fails, and the connection would
    /// go on believing a transaction is open: every later BEGIN on it would fail ("non-zero
    /// transaction depth") long after the disk has room again.
    async fn reusable(conn: &mut AnyConnection) -> std::result::Result<bool, sqlx::Error> {
        use sqlx::Connection as _;
        if !conn.is_in_transaction() {
            return Ok(true);
        }
        // A rollback queued by a dropped transaction is done once a round trip comes back.
        conn.ping().await?;
        Ok(!conn.is_in_transaction())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// After a commit of `records` article records: once `CHECKPOINT_RECORDS` (500) have been
    /// written since the last checkpoint, copies SQLite's WAL into the database on another
    /// connection, so on another thread, while the one writer goes on. Left to the commit that
    /// crosses the threshold, the copy (read back from the WAL, written and flushed again) held
    /// up the writer's next batch. A passive checkpoint takes no lock the writer needs. At most
    /// one runs at a time; PostgreSQL has nothing to do.
    pub fn checkpoint_in_background(&self, records: usize) {
        let Checkpoints { running, written } = &*self.checkpoints;
        if self.backend != Backend::Sqlite
            || written.fetch_add(records, Ordering::AcqRel) + records < CHECKPOINT_RECORDS
            || running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        written.store(0, Ordering::Release);
        let pool = self.pool.clone();
        let checkpoints = Arc::clone(&self.checkpoints);
        tokio::spawn(async move {
            // A checkpoint that fails is left to the next one, or to the writer's own.
            if let Err(e) = sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %e, "a background checkpoint failed");
            }
            checkpoints.running.store(false, Ordering::Release);
        });
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction holding the database's one write lock from its start: a
    /// concurrent writer (another process included) waits for it instead of failing later, or
    /// deadlocking on rows both touch. SQLite's `BEGIN IMMEDIATE` takes its write lock; on
    /// PostgreSQL a transaction-scoped advisory lock stands for it.
    pub async fn begin(&self) -> Result<Tx> {
        match self.backend {
            Backend::Sqlite => Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                backend::take_write_lock(&mut tx).await?;
                Ok(tx)
            }
        }
    }

    /// A connection to begin several write transactions on in a row ([`Store::begin_on`]):
    /// SQLite's one writer's. Handing a connection back to its pool costs a trip to its thread
    /// (the pool checks it), which a cold run's hundreds of batches each paid to take it again.
    /// Other writers of this process wait while it is held.
    pub async fn writer(&self) -> Result<Writer> {
        Ok(match self.backend {
            Backend::Sqlite => self.writer.acquire().await?,
            Backend::Postgres => self.pool.acquire().await?,
        })
    }

    /// [`Store::begin`] on `conn`, a connection from [`Store::writer`].
    pub async fn begin_on<'c>(
        &self,
        conn: &'c mut AnyConnection,
    ) -> Result<sqlx::Transaction<'c, sqlx::Any>> {
        use sqlx::Connection as _;
        match self.backend {
            Backend::Sqlite => Ok(conn.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = conn.begin().await?;
                backend::take_write_lock(&mut tx).await?;
                Ok(tx)
            }
        }
    }

    /// The state a source's next fetch starts from.
    pub async fn source_state(&self, source: &str) -> Result<Option<SourceState>> {
        let row = sqlx::query_as::<_, StateRow>(concat!(state_select!(), " WHERE id = $1"))
            .bind(source)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.state))
    }

    /// [`Store::source_state`] of every source state knows, by id, in one query: a run reads
    /// them all at its start instead of one round trip per source.
    pub async fn source_states(&self) -> Result<HashMap<String, SourceState>> {
        let rows = sqlx::query_as::<_, StateRow>(state_select!())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| (r.id, r.state)).collect())
    }

    /// Records successful fetches (validators, feed metadata, next due time); clears failures.
    /// Called inside the transaction that stores the fetches' articles, so validators never
    /// claim more than what was durably archived. Many sources' records go in a few multi-row
    /// statements: a run of 304s records a
    /// thousand sources in about as many statements as it records one.
    pub async fn record_successes(
        conn: &mut AnyConnection,
        records: &[SuccessRecord<'_>],
    ) -> Result<()> {
        for chunk in records.chunks(SOURCES_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO sources (id, url, feed_id, feed_title, feed_link, last_fetch_at, last_status,
                                      last_error, http_status, etag, last_modified, body_hash, moved_to,
                                      next_due_at, consecutive_failures, disabled_reason, feed_delay_secs)
                 VALUES {}
                 ON CONFLICT (id) DO UPDATE SET
                    url = excluded.url,
                    feed_id = COALESCE(excluded.feed_id, sources.feed_id),
                    feed_title = COALESCE(excluded.feed_title, sources.feed_title),
                    feed_link = COALESCE(excluded.feed_link, sources.feed_link),
                    last_fetch_at = excluded.last_fetch_at,
                    last_status = excluded.last_status,
                    last_error = NULL,
                    last_error_kind = NULL,
                    http_status = excluded.http_status,
                    etag = excluded.etag,
                    last_modified = excluded.last_modified,
                    body_hash = COALESCE(excluded.body_hash, sources.body_hash),
                    moved_to = COALESCE(excluded.moved_to, sources.moved_to),
                    next_due_at = excluded.next_due_at,
                    consecutive_failures = 0,
                    disabled_reason = NULL,
                    failing_since = NULL,
                    feed_delay_secs = COALESCE(excluded.feed_delay_secs, sources.feed_delay_secs),
                    removed_at = NULL",
                numbered_rows(
                    Backend::of(conn),
                    "(?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, 0, NULL, ?)",
                    chunk.len()
                )
            );
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for record in chunk {
                insert = insert
                    .bind(record.source)
                    .bind(record.url)
                    .bind(record.meta.map(|m| m.id.as_str()))
                    .bind(record.meta.map(|m| m.title.as_str()))
                    .bind(record.meta.and_then(|m| m.link.as_deref()))
                    .bind(to_millis(&record.at))
                    .bind(record.status)
                    .bind(record.http_status.map(i64::from))
                    .bind(record.validators.etag.as_deref())
                    .bind(record.validators.last_modified.as_deref())
                    .bind(record.body_hash)
                    .bind(record.moved_to)
                    .bind(to_millis(&record.next_due_at))
                    .bind(
                        record
                            .feed_delay
                            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                    );
            }
            insert.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// [`Store::record_successes`] of one source.
    pub async fn record_success(
        conn: &mut AnyConnection,
        record: &SuccessRecord<'_>,
    ) -> Result<()> {
        Self::record_successes(conn, std::slice::from_ref(record)).await
    }

    /// Records a failed fetch; validators and the body hash stay as they were.
    pub async fn record_failure(
        conn: &mut AnyConnection,
        record: &FailureRecord<'_>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sources (id, url, last_fetch_at, last_status, last_error, http_status, next_due_at,
                                  consecutive_failures, disabled_reason, last_error_kind, failing_since)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $3)
             ON CONFLICT (id) DO UPDATE SET
                failing_since = COALESCE(sources.failing_since, excluded.failing_since),
                url = excluded.url,
                last_fetch_at = excluded.last_fetch_at,
                last_status = excluded.last_status,
                last_error = excluded.last_error,
                last_error_kind = excluded.last_error_kind,
                http_status = excluded.http_status,
                next_due_at = excluded.next_due_at,
                consecutive_failures = sources.consecutive_failures + 1,
                disabled_reason = excluded.disabled_reason",
        )
        .bind(record.source)
        .bind(record.url)
        .bind(to_millis(&record.at))
        .bind(if record.disabled_reason.is_some() { "disabled" } else { "failed" })
        .bind(record.error)
        .bind(record.http_status.map(i64::from))
        .bind(to_millis(&record.next_due_at))
        .bind(record.disabled_reason)
        .bind(record.error_kind)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Notes, for each `(source, fingerprint)`, that every record of the source is rendered
    /// with these settings; sources that state does not hold are left out.
    pub async fn set_source_fingerprints(
        conn: &mut AnyConnection,
        fingerprints: &[(String, String)],
    ) -> Result<()> {
        for chunk in fingerprints.chunks(SOURCES_PER_STATEMENT) {
            let sql = format!(
                "WITH v (id, fingerprint) AS (VALUES {})
                 UPDATE sources SET fingerprint = v.fingerprint FROM v WHERE sources.id = v.id",
                numbered_rows(Backend::of(conn), "(?, ?)", chunk.len())
            );
            let mut update = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (source, fingerprint) in chunk {
                update = update.bind(source.as_str()).bind(fingerprint.as_str());
            }
            update.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Forgets what a source's fetches learnt (validators, body hash, redirect target), for a
    /// source whose configured URL changed.
    pub async fn reset_source(&self, source: &str, url: &str) -> Result<()> {
        sqlx::query(
            "UPDATE sources SET url = $2, etag = NULL, last_modified = NULL, body_hash = NULL, moved_to = NULL,
                                disabled_reason = NULL, next_due_at = NULL, consecutive_failures = 0
             WHERE id = $1",
        )
        .bind(source)
        .bind(url)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether the database answers at all, for `/healthz`.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await.is_ok()
    }

    /// Per-source status, for `status` and `check`.
    pub async fn source_status(&self) -> Result<Vec<SourceStatus>> {
        #[derive(sqlx::FromRow)]
        struct StatusRow {
            id: String,
            url: String,
            moved_to: Option<String>,
            last_fetch_at: Option<i64>,
            last_status: Option<String>,
            http_status: Option<i64>,
            has_validators: i64,
            next_due_at: Option<i64>,
            consecutive_failures: i64,
            last_error: Option<String>,
            last_error_kind: Option<String>,
            disabled_reason: Option<String>,
            articles: i64,
            removed_at: Option<i64>,
            selector_missed: i64,
            oldest: Option<i64>,
        }
        let rows = sqlx::query_as::<_, StatusRow>(
            "SELECT s.id, s.url, s.moved_to, s.last_fetch_at, s.last_status, s.http_status,
                    CASE WHEN s.etag IS NOT NULL OR s.last_modified IS NOT NULL THEN 1 ELSE 0 END
                        AS has_validators, s.next_due_at,
                    s.consecutive_failures, s.last_error, s.last_error_kind, s.disabled_reason,
                    (SELECT COUNT(*) FROM articles a WHERE a.source = s.id) AS articles, s.removed_at,
                    CASE WHEN s.selector_missed_at IS NOT NULL
                              AND (s.selector_matched_at IS NULL
                                   OR s.selector_missed_at > s.selector_matched_at)
                         THEN 1 ELSE 0 END AS selector_missed,
                    (SELECT MIN(a.date) FROM articles a WHERE a.source = s.id) AS oldest
             FROM sources s ORDER BY s.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut backfills = self.backfills().await?;
        Ok(rows
            .into_iter()
            .map(|r| SourceStatus {
                backfill: backfills.remove(&r.id),
                oldest_article: r.oldest.map(from_millis),
                id: r.id,
                url: r.url,
                moved_to: r.moved_to,
                last_fetch_at: r.last_fetch_at.map(from_millis),
                last_status: r.last_status,
                last_http_status: r.http_status,
                has_validators: r.has_validators != 0,
                next_due_at: r.next_due_at.map(from_millis),
                consecutive_failures: r.consecutive_failures,
                last_error: r.last_error,
                last_error_kind: r.last_error_kind,
                disabled_reason: r.disabled_reason,
                articles: r.articles,
                removed_at: r.removed_at.map(from_millis),
                selector_stopped_matching: r.selector_missed != 0,
            })
            .collect())
    }

    /// Notes whether the source's extraction selector matched an article page at `now`.
    pub async fn note_selector(
        &self,
        source: &str,
        matched: bool,
        now: &DateTime<Utc>,
    ) -> Result<()> {
        let column = if matched {
            "selector_matched_at"
        } else {
            "selector_missed_at"
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE sources SET {column} = $2 WHERE id = $1"
        )))
        .bind(source)
        .bind(to_millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn close(self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// For tests of a migration: a SQLite state at `db` as an older Gazette left it, migrated only
/// as far as the migrations whose file names sort before `before` (such as `"0016"`).
#[cfg(test)]
pub(crate) async fn sqlite_state_before(db: &std::path::Path, before: &str) -> sqlx::SqlitePool {
    let earlier = tempfile::tempdir().expect("tempdir");
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for file in std::fs::read_dir(&all).expect("migrations").flatten() {
        if file.file_name().to_string_lossy().as_ref() < before {
            std::fs::copy(file.path(), earlier.path().join(file.file_name())).expect("copy");
        }
    }
    if let Some(folder) = db.parent() {
        std::fs::create_dir_all(folder).expect("state folder");
    }
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("an earlier state");
    sqlx::migrate::Migrator::new(earlier.path())
        .await
        .expect("earlier migrations")
        .run(&pool)
        .await
        .expect("earlier schema");
    pool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_a_real_file_and_records_fetches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/state/g.db", dir.path().display());
        let store = Store::open(&url).await.expect("open");
        let at = from_millis(1_700_000_000_000);
        let meta = FeedMeta {
            id: "urn:x".to_owned(),
            title: "X".to_owned(),
            link: None,
        };
        let validators = Validators {
            etag: Some("\"v1\"".to_owned()),
            last_modified: None,
        };
        let ok = SuccessRecord {
            source: "a",
            url: "u",
            at,
            status: "ok",
            http_status: Some(200),
            validators: &validators,
            body_hash: Some("h1"),
            moved_to: None,
            meta: Some(&meta),
            next_due_at: at,
            feed_delay: Some(Duration::from_secs(600)),
        };
        let mut conn = store.pool().acquire().await.expect("connection");
        Store::record_success(&mut conn, &ok).await.expect("ok");
        let failed = FailureRecord {
            source: "a",
            url: "u",
            at,
            error: "boom",
            error_kind: Some("http-500"),
            http_status: Some(500),
            next_due_at: at,
            disabled_reason: None,
        };
        Store::record_failure(&mut conn, &failed)
            .await
            .expect("failed");
        Store::record_failure(&mut conn, &failed)
            .await
            .expect("failed again");
        drop(conn);
        let status = store.source_status().await.expect("status");
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].consecutive_failures, 2);
        assert_eq!(status[0].last_error_kind.as_deref(), Some("http-500"));
        assert_eq!(status[0].last_error.as_deref(), Some("boom"));
        assert!(status[0].has_validators, "a failure keeps the validators");
        let state = store.source_state("a").await.expect("state").expect("row");
        assert_eq!(state.validators, validators);
        assert_eq!(state.body_hash.as_deref(), Some("h1"));
        assert_eq!(state.consecutive_failures, 2);
        assert_eq!(state.feed_delay, Some(Duration::from_secs(600)));
        // The running token totals agree with the per-article ones.
        let mut conn = store.pool().acquire().await.expect("connection");
        Store::mark_pending(&mut conn, "a", "k1", "h", &at)
            .await
            .expect("pending");
        Store::mark_enriched(&mut conn, "a", "k1", "h", (10, 5), &at)
            .await
            .expect("enriched");
        Store::mark_pending(&mut conn, "a", "k2", "h", &at)
            .await
            .expect("pending");
        drop(conn);
        store
            .mark_enrichment_failed("a", "k2", "bad", &at, 3, (7, 1), &at)
            .await
            .expect("failed");
        let totals = store.enrichment_totals().await.expect("totals");
        assert_eq!(
            store.token_totals().await.expect("tokens"),
            (totals.prompt_tokens, totals.completion_tokens)
        );
        assert_eq!(store.token_totals().await.expect("tokens"), (17, 6));
        store.close().await;
        // Reopening runs no migration twice and keeps the metadata.
        let store = Store::open(&url).await.expect("reopen");
        let title =
            sqlx::query_scalar::<_, String>("SELECT feed_title FROM sources WHERE id = 'a'")
                .fetch_one(store.pool())
                .await
                .expect("row");
        assert_eq!(title, "X");
    }
}
