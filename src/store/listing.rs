//! What the reader pages list: how many articles a listing holds, the tags, sources and months
//! with their counts, and an article's neighbours within its source. Removed sources are left
//! out everywhere, as in the feeds.

use super::{Backend, Selection, Store, from_millis};
use crate::error::Result;
use chrono::{DateTime, Utc};

/// A name (tag, source id, month) and how many articles it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub name: String,
    pub count: u64,
}

/// An article next to another: its archive path, title and date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub path: String,
    pub title: String,
    pub date: DateTime<Utc>,
}

fn counted(rows: Vec<(String, i64)>) -> Vec<Counted> {
    rows.into_iter()
        .map(|(name, count)| Counted {
            name,
            count: u64::try_from(count).unwrap_or(0),
        })
        .collect()
}

const LIVE: &str =
    "NOT EXISTS (SELECT 1 FROM sources s WHERE s.id = a.source AND s.removed_at IS NOT NULL)";

impl Store {
    /// How many articles `selection` lists.
    pub async fn count(&self, selection: Selection<'_>) -> Result<u64> {
        let sql = match selection {
            Selection::All => format!("SELECT COUNT(*) FROM articles a WHERE {LIVE}"),
            Selection::Source(_) => {
                format!("SELECT COUNT(*) FROM articles a WHERE a.source = $1 AND {LIVE}")
            }
            Selection::Tag(_) => format!(
                "SELECT COUNT(*) FROM article_tags t JOIN articles a ON a.source = t.source AND a.key = t.key
                 WHERE t.tag = $1 AND {LIVE}"
            ),
            Selection::Dated { .. } => format!(
                "SELECT COUNT(*) FROM articles a WHERE a.date >= $1 AND a.date < $2 AND {LIVE}"
            ),
        };
        let query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
        let query = match selection {
            Selection::All => query,
            Selection::Source(id) | Selection::Tag(id) => query.bind(id),
            Selection::Dated { from, until } => query.bind(from).bind(until),
        };
        let count = query.fetch_one(&self.pool).await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Every tag with its article count, by name.
    pub async fn tag_counts(&self) -> Result<Vec<Counted>> {
        let rows = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(format!(
            "SELECT t.tag, COUNT(*) FROM article_tags t JOIN articles a ON a.source = t.source AND a.key = t.key
             WHERE {LIVE} GROUP BY t.tag ORDER BY t.tag"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(counted(rows))
    }

    /// Every source with articles, with their count, by id.
    pub async fn source_counts(&self) -> Result<Vec<Counted>> {
        let rows = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(format!(
            "SELECT a.source, COUNT(*) FROM articles a WHERE {LIVE} GROUP BY a.source ORDER BY a.source"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(counted(rows))
    }

    /// Every month (`YYYY-MM`, UTC) with articles, with their count, newest first.
    pub async fn month_counts(&self) -> Result<Vec<Counted>> {
        let month = match self.backend {
            Backend::Sqlite => "strftime('%Y-%m', a.date / 1000, 'unixepoch')",
            Backend::Postgres => {
                "to_char(to_timestamp(a.date / 1000) AT TIME ZONE 'UTC', 'YYYY-MM')"
            }
        };
        let rows = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(format!(
            "SELECT {month} AS month, COUNT(*) FROM articles a WHERE {LIVE}
             GROUP BY month ORDER BY month DESC"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(counted(rows))
    }

    /// The articles of `source` just older and just newer than the one at `path` (dated
    /// `date`), in the order the source's page lists them.
    pub async fn neighbours(
        &self,
        source: &str,
        date: &DateTime<Utc>,
        path: &str,
    ) -> Result<(Option<Neighbour>, Option<Neighbour>)> {
        let at = super::to_millis(date);
        let one = |sql: &'static str| {
            sqlx::query_as::<_, (String, String, i64)>(sql)
                .bind(source)
                .bind(at)
                .bind(path)
        };
        let older = one("SELECT path, title, date FROM articles
             WHERE source = $1 AND (date < $2 OR (date = $2 AND path > $3))
             ORDER BY date DESC, path LIMIT 1")
        .fetch_optional(&self.pool)
        .await?;
        let newer = one("SELECT path, title, date FROM articles
             WHERE source = $1 AND (date > $2 OR (date = $2 AND path < $3))
             ORDER BY date, path DESC LIMIT 1")
        .fetch_optional(&self.pool)
        .await?;
        let neighbour = |row: Option<(String, String, i64)>| {
            row.map(|(path, title, date)| Neighbour {
                path,
                title,
                date: from_millis(date),
            })
        };
        Ok((neighbour(older), neighbour(newer)))
    }

    /// Each source's feed title and site address as its last fetch found them, by source id.
    pub async fn source_meta(
        &self,
    ) -> Result<std::collections::HashMap<String, (Option<String>, Option<String>)>> {
        let rows = sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
            "SELECT id, feed_title, feed_link FROM sources",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, title, link)| (id, (title, link)))
            .collect())
    }
}
