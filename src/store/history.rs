//! A feed's history as `gazette backfill` walked it (RFC 5005): the pages it fetched, with what
//! makes the next walk conditional, and how each source's last walk ended.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::{Store, from_millis, to_millis};
use crate::error::Result;
use crate::model::Validators;

/// One document of a feed's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub url: String,
    /// 0 for the subscription document, then 1, 2, … going back.
    pub position: u32,
    /// Empty when the page's entries must be read again (some were held back).
    pub validators: Validators,
    pub body_hash: Option<String>,
    /// The older page it links to, absolute; `None` at the start of the feed's history.
    pub older: Option<String>,
    /// How many entries it listed.
    pub entries: u32,
    pub fetched_at: DateTime<Utc>,
}

/// How a source's last backfill ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Backfilled {
    pub finished_at: DateTime<Utc>,
    pub pages: u32,
    /// Why it stopped: the start of history, the page limit, a complete feed, a failure.
    pub ended: String,
    /// The feed says it lists every entry there is (`fh:complete`).
    pub complete: bool,
}

impl Store {
    /// The history pages of `source` walked before, by URL.
    pub async fn history_pages(&self, source: &str) -> Result<HashMap<String, HistoryPage>> {
        type Row = (
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
            i64,
        );
        let rows = sqlx::query_as::<_, Row>(
            "SELECT url, position, etag, last_modified, body_hash, older, entries, fetched_at
             FROM history_pages WHERE source = $1",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(url, position, etag, last_modified, body_hash, older, entries, at)| {
                    let page = HistoryPage {
                        url: url.clone(),
                        position: u32::try_from(position).unwrap_or(u32::MAX),
                        validators: Validators {
                            etag,
                            last_modified,
                        },
                        body_hash,
                        older,
                        entries: u32::try_from(entries).unwrap_or(u32::MAX),
                        fetched_at: from_millis(at),
                    };
                    (url, page)
                },
            )
            .collect())
    }

    /// Records a page walked, in the transaction that archives its entries (when it had a body
    /// to read), so that its validators never claim entries that state does not hold.
    pub async fn record_history_page(
        conn: &mut AnyConnection,
        source: &str,
        page: &HistoryPage,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO history_pages (source, url, position, etag, last_modified, body_hash, older,
                                        entries, fetched_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (source, url) DO UPDATE SET
                position = excluded.position, etag = excluded.etag,
                last_modified = excluded.last_modified, body_hash = excluded.body_hash,
                older = excluded.older, entries = excluded.entries, fetched_at = excluded.fetched_at",
        )
        .bind(source)
        .bind(&page.url)
        .bind(i64::from(page.position))
        .bind(page.validators.etag.as_deref())
        .bind(page.validators.last_modified.as_deref())
        .bind(page.body_hash.as_deref())
        .bind(page.older.as_deref())
        .bind(i64::from(page.entries))
        .bind(to_millis(&page.fetched_at))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Removes the articles of `source` that a complete feed no longer lists (`listed`: the keys
    /// it does), keeping any another source's duplicate entries point at; returns the paths of
    /// the files to delete once the transaction commits.
    pub async fn remove_unlisted(
        conn: &mut AnyConnection,
        source: &str,
        listed: &[&str],
    ) -> Result<Vec<String>> {
        let listed = serde_json::to_string(listed).unwrap_or_default();
        let gone = sqlx::query_as::<_, (String, String)>(
            "SELECT a.key, a.path FROM articles a
             WHERE a.source = $1 AND a.key NOT IN (SELECT value FROM json_each($2))
               AND NOT EXISTS (SELECT 1 FROM aliases al
                               WHERE al.target_source = a.source AND al.target_key = a.key)
             ORDER BY a.path",
        )
        .bind(source)
        .bind(&listed)
        .fetch_all(&mut *conn)
        .await?;
        if gone.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&str> = gone.iter().map(|(key, _)| key.as_str()).collect();
        let keys = serde_json::to_string(&keys).unwrap_or_default();
        for statement in [
            "DELETE FROM enrichments WHERE source = $1 AND key IN (SELECT value FROM json_each($2))",
            "DELETE FROM articles WHERE source = $1 AND key IN (SELECT value FROM json_each($2))",
        ] {
            sqlx::query(statement)
                .bind(source)
                .bind(&keys)
                .execute(&mut *conn)
                .await?;
        }
        Ok(gone.into_iter().map(|(_, path)| path).collect())
    }

    /// The date of the source's oldest article: how far back its archive reaches.
    pub async fn oldest_article(&self, source: &str) -> Result<Option<DateTime<Utc>>> {
        let oldest = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(date) FROM articles WHERE source = $1",
        )
        .bind(source)
        .fetch_one(&self.pool)
        .await?;
        Ok(oldest.map(from_millis))
    }

    /// Records how a source's backfill ended (`url`: its feed's), and makes the source known
    /// to state, as a fetch would: `status` lists what state knows of it.
    pub async fn record_backfill(
        &self,
        source: &str,
        url: &str,
        backfilled: &Backfilled,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO sources (id, url) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(source)
            .bind(url)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO backfills (source, finished_at, pages, ended, complete)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (source) DO UPDATE SET
                finished_at = excluded.finished_at, pages = excluded.pages,
                ended = excluded.ended, complete = excluded.complete",
        )
        .bind(source)
        .bind(to_millis(&backfilled.finished_at))
        .bind(i64::from(backfilled.pages))
        .bind(&backfilled.ended)
        .bind(i64::from(backfilled.complete))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How each source's last backfill ended, by source id.
    pub async fn backfills(&self) -> Result<HashMap<String, Backfilled>> {
        let rows = sqlx::query_as::<_, (String, i64, i64, String, i64)>(
            "SELECT source, finished_at, pages, ended, complete FROM backfills",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(source, at, pages, ended, complete)| {
                let backfilled = Backfilled {
                    finished_at: from_millis(at),
                    pages: u32::try_from(pages).unwrap_or(u32::MAX),
                    ended,
                    complete: complete != 0,
                };
                (source, backfilled)
            })
            .collect())
    }
}
