//! What state knows of the files around it: what each feed file was last written from (so
//! that a run with nothing new renders nothing), and whether it began its archive.

use std::collections::HashMap;

use super::Store;
use crate::error::Result;

impl Store {
    /// The digest each feed file was last written from, by path.
    pub async fn feed_digests(&self) -> Result<HashMap<String, String>> {
        let rows =
            sqlx::query_as::<_, (String, String)>("SELECT path, digest FROM published_feeds")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }

    /// Records the files just written (`written`: path and digest) and forgets those no
    /// longer written (`gone`), in one transaction.
    pub async fn set_feed_digests(
        &self,
        written: &[(String, String)],
        gone: &[String],
    ) -> Result<()> {
        if written.is_empty() && gone.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for (path, digest) in written {
            sqlx::query(
                "INSERT INTO published_feeds (path, digest) VALUES ($1, $2)
                 ON CONFLICT (path) DO UPDATE SET digest = excluded.digest",
            )
            .bind(path)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        }
        for path in gone {
            sqlx::query("DELETE FROM published_feeds WHERE path = $1")
                .bind(path)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether this database has seen its archive empty (see [`Store::mark_archive_started`]).
    pub async fn archive_started(&self) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM state_meta WHERE key = 'archive_started'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Records that the archive was empty when this database first wrote to it: its files
    /// are then this database's, even those of a run killed before it recorded them.
    pub async fn mark_archive_started(&self, now: &chrono::DateTime<chrono::Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO state_meta (key, value) VALUES ('archive_started', $1)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(now.to_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
