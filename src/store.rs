//! State in SQLite (through sqlx): what each source's last fetch saw, and every archived article
//! with the hash of what its file was made from, so an unchanged entry costs one lookup.
//!
//! Times are stored as Unix milliseconds so ordering is numeric and the `date` index serves the
//! merged feed directly.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::error::{Error, Result};
use crate::model::Article;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A handle on the state database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// What is known of an article already archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArticle {
    pub path: String,
    pub content_hash: String,
    pub first_seen: DateTime<Utc>,
}

/// An article row of the merged feed, with its source's feed metadata.
#[derive(Debug, Clone)]
pub struct FeedRow {
    pub source: String,
    pub path: String,
    pub atom_id: String,
    pub updated_at: DateTime<Utc>,
    pub source_feed_id: Option<String>,
    pub source_title: Option<String>,
    pub source_link: Option<String>,
}

/// The source feed's own metadata, for `atom:source`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedMeta {
    pub id: String,
    pub title: String,
    pub link: Option<String>,
}

/// How a fetch of a source ended.
#[derive(Debug, Clone)]
pub struct FetchRecord<'a> {
    pub source: &'a str,
    pub url: &'a str,
    pub at: DateTime<Utc>,
    /// `ok` or a short failure kind.
    pub status: &'a str,
    pub error: Option<&'a str>,
    pub meta: Option<&'a FeedMeta>,
}

/// One line of `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceStatus {
    pub id: String,
    pub url: String,
    pub last_fetch_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: i64,
    pub articles: i64,
}

pub fn to_millis(t: &DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl Store {
    /// Opens (creating if needed) the database at a `sqlite://` URL and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        if let Some(dir) = options
            .get_filename()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction. `IMMEDIATE` takes the write lock up front, so a concurrent
    /// writer (another process included) makes it wait for the busy timeout instead of failing
    /// later when a read would have to become a write.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub async fn article(
        conn: &mut SqliteConnection,
        source: &str,
        key: &str,
    ) -> Result<Option<StoredArticle>> {
        let row = sqlx::query(
            "SELECT path, content_hash, first_seen FROM articles WHERE source = ? AND key = ?",
        )
        .bind(source)
        .bind(key)
        .fetch_optional(conn)
        .await?;
        Ok(row.map(|r| StoredArticle {
            path: r.get(0),
            content_hash: r.get(1),
            first_seen: from_millis(r.get(2)),
        }))
    }

    pub async fn path_taken(conn: &mut SqliteConnection, path: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM articles WHERE path = ?")
            .bind(path)
            .fetch_optional(conn)
            .await?;
        Ok(row.is_some())
    }

    pub async fn upsert_article(
        conn: &mut SqliteConnection,
        article: &Article,
        path: &str,
        first_seen: &DateTime<Utc>,
        now: &DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO articles (source, key, path, content_hash, atom_id, title, link, date, first_seen, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (source, key) DO UPDATE SET
                path = excluded.path, content_hash = excluded.content_hash, atom_id = excluded.atom_id,
                title = excluded.title, link = excluded.link, date = excluded.date,
                updated_at = excluded.updated_at",
        )
        .bind(&article.source)
        .bind(&article.key)
        .bind(path)
        .bind(&article.content_hash)
        .bind(&article.atom_id)
        .bind(article.doc.title())
        .bind(&article.doc.link)
        .bind(to_millis(&article.doc.date))
        .bind(to_millis(first_seen))
        .bind(to_millis(now))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Records how a fetch ended; the feed metadata is kept from earlier fetches when absent.
    pub async fn record_fetch(conn: &mut SqliteConnection, record: &FetchRecord<'_>) -> Result<()> {
        let failed = record.error.is_some();
        sqlx::query(
            "INSERT INTO sources (id, url, feed_id, feed_title, feed_link, last_fetch_at, last_status, last_error, consecutive_failures)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET
                url = excluded.url,
                feed_id = COALESCE(excluded.feed_id, sources.feed_id),
                feed_title = COALESCE(excluded.feed_title, sources.feed_title),
                feed_link = COALESCE(excluded.feed_link, sources.feed_link),
                last_fetch_at = excluded.last_fetch_at,
                last_status = excluded.last_status,
                last_error = excluded.last_error,
                consecutive_failures = CASE WHEN ?10 THEN sources.consecutive_failures + 1 ELSE 0 END",
        )
        .bind(record.source)
        .bind(record.url)
        .bind(record.meta.map(|m| m.id.as_str()))
        .bind(record.meta.map(|m| m.title.as_str()))
        .bind(record.meta.and_then(|m| m.link.as_deref()))
        .bind(to_millis(&record.at))
        .bind(record.status)
        .bind(record.error)
        .bind(i64::from(failed))
        .bind(failed)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// The newest `limit` articles by date, for the merged feed.
    pub async fn newest(&self, limit: usize) -> Result<Vec<FeedRow>> {
        let rows = sqlx::query(
            "SELECT a.source, a.path, a.atom_id, a.updated_at, s.feed_id, s.feed_title, s.feed_link
             FROM articles a LEFT JOIN sources s ON s.id = a.source
             ORDER BY a.date DESC, a.updated_at DESC LIMIT ?",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| FeedRow {
                source: r.get(0),
                path: r.get(1),
                atom_id: r.get(2),
                updated_at: from_millis(r.get(3)),
                source_feed_id: r.get(4),
                source_title: r.get(5),
                source_link: r.get(6),
            })
            .collect())
    }

    /// Per-source status, for `status` and `check`.
    pub async fn source_status(&self) -> Result<Vec<SourceStatus>> {
        let rows = sqlx::query(
            "SELECT s.id, s.url, s.last_fetch_at, s.last_status, s.last_error, s.consecutive_failures,
                    (SELECT COUNT(*) FROM articles a WHERE a.source = s.id)
             FROM sources s ORDER BY s.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SourceStatus {
                id: r.get(0),
                url: r.get(1),
                last_fetch_at: r.get::<Option<i64>, _>(2).map(from_millis),
                last_status: r.get(3),
                last_error: r.get(4),
                consecutive_failures: r.get(5),
                articles: r.get(6),
            })
            .collect())
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// The file path of a `sqlite://` URL, for messages.
pub fn sqlite_path(url: &str) -> Option<&Path> {
    url.strip_prefix("sqlite://")
        .map(|rest| Path::new(rest.split('?').next().unwrap_or(rest)))
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
        let ok = FetchRecord {
            source: "a",
            url: "u",
            at,
            status: "ok",
            error: None,
            meta: Some(&meta),
        };
        let mut conn = store.pool().acquire().await.expect("connection");
        Store::record_fetch(&mut conn, &ok).await.expect("ok");
        let failed = FetchRecord {
            status: "failed",
            error: Some("boom"),
            meta: None,
            ..ok.clone()
        };
        Store::record_fetch(&mut conn, &failed)
            .await
            .expect("failed");
        Store::record_fetch(&mut conn, &failed)
            .await
            .expect("failed again");
        drop(conn);
        let status = store.source_status().await.expect("status");
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].consecutive_failures, 2);
        assert_eq!(status[0].last_error.as_deref(), Some("boom"));
        store.close().await;
        // Reopening runs no migration twice and keeps the metadata.
        let store = Store::open(&url).await.expect("reopen");
        let row = sqlx::query("SELECT feed_title FROM sources WHERE id = 'a'")
            .fetch_one(store.pool())
            .await
            .expect("row");
        assert_eq!(row.get::<String, _>(0), "X");
    }
}
