//! Sources that leave: the tombstone `gazette remove` keeps, and the purge that drops it; and
//! the pruning of state that would otherwise only grow.

use chrono::{DateTime, Utc};

use super::{Store, from_millis, to_millis};
use crate::error::Result;

/// What pruning removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub pages: u64,
    pub answers: u64,
}

impl Store {
    /// Takes a source out of every feed and keeps its articles known (a tombstone), so that its
    /// files are neither orphans nor counted as missing from state.
    pub async fn tombstone_source(&self, source: &str, now: &DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO sources (id, url, removed_at) VALUES ($1, '', $2)
             ON CONFLICT (id) DO UPDATE SET removed_at = excluded.removed_at",
        )
        .bind(source)
        .bind(to_millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A source fetched again (added back to the config) is live again.
    pub async fn revive_source(&self, source: &str) -> Result<()> {
        sqlx::query(
            "UPDATE sources SET removed_at = NULL WHERE id = $1 AND removed_at IS NOT NULL",
        )
        .bind(source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Of `sources`, those failing since before `before`: (id, since, last error), oldest
    /// first.
    pub async fn failing_since(
        &self,
        sources: &[String],
        before: &DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>, String)>> {
        let ids = serde_json::to_string(sources).unwrap_or_default();
        let rows = sqlx::query_as::<_, (String, i64, Option<String>)>(
            "SELECT s.id, s.failing_since, s.last_error FROM sources s
             WHERE s.failing_since IS NOT NULL AND s.failing_since < $1
               AND s.id IN (SELECT value FROM json_each($2))
             ORDER BY s.failing_since, s.id",
        )
        .bind(to_millis(before))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, since, error)| (id, from_millis(since), error.unwrap_or_default()))
            .collect())
    }

    /// The source feed's own title, as its last fetch found it.
    pub async fn feed_title(&self, source: &str) -> Result<Option<String>> {
        let title =
            sqlx::query_scalar::<_, Option<String>>("SELECT feed_title FROM sources WHERE id = $1")
                .bind(source)
                .fetch_optional(&self.pool)
                .await?;
        Ok(title.flatten())
    }

    /// Sources `gazette remove` took out.
    pub async fn removed_sources(&self) -> Result<Vec<String>> {
        let ids = sqlx::query_scalar::<_, String>(
            "SELECT id FROM sources WHERE removed_at IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    /// The archive paths of a source's articles.
    pub async fn paths_of(&self, source: &str) -> Result<Vec<String>> {
        let paths = sqlx::query_scalar::<_, String>(
            "SELECT path FROM articles WHERE source = $1 ORDER BY path",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await?;
        Ok(paths)
    }

    /// Forgets a source and everything of it, in one transaction.
    pub async fn purge_source(&self, source: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        for table in [
            "DELETE FROM enrichments WHERE source = $1",
            "DELETE FROM aliases WHERE source = $1",
            "DELETE FROM articles WHERE source = $1",
            "DELETE FROM history_pages WHERE source = $1",
            "DELETE FROM backfills WHERE source = $1",
            "DELETE FROM sources WHERE id = $1",
        ] {
            sqlx::query(table).bind(source).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drops fetched pages and cached LLM answers older than the given ages. The records keep
    /// what the archive needs, so these are only savings on a re-fetch.
    pub async fn prune(
        &self,
        pages_before: Option<DateTime<Utc>>,
        answers_before: Option<DateTime<Utc>>,
    ) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        if let Some(before) = pages_before {
            pruned.pages = sqlx::query("DELETE FROM pages WHERE fetched_at < $1")
                .bind(to_millis(&before))
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        if let Some(before) = answers_before {
            pruned.answers = sqlx::query("DELETE FROM enrichment_cache WHERE created_at < $1")
                .bind(to_millis(&before))
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(pruned)
    }
}
