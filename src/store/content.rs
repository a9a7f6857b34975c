//! State for full-text extraction and de-duplication: pages already fetched, canonical links,
//! and entries that are another source's article.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::{Backend, Store, to_millis};
use crate::error::Result;
use crate::model::Extracted;

/// An archived article found by its canonical link.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CanonicalMatch {
    pub source: String,
    pub key: String,
    pub path: String,
}

impl Store {
    /// The cached extraction of a page by these rules: `Some(None)` when the page was fetched
    /// and had no text. A page extracted by other rules is not cached for these.
    pub async fn cached_page(&self, url: &str, rules: &str) -> Result<Option<Option<Extracted>>> {
        #[derive(sqlx::FromRow)]
        struct PageRow {
            html: Option<String>,
            canonical: Option<String>,
        }
        let row = sqlx::query_as::<_, PageRow>(
            "SELECT html, canonical FROM pages WHERE url = $1 AND rules = $2",
        )
        .bind(url)
        .bind(rules)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            r.html.map(|html| Extracted {
                html,
                canonical: r.canonical,
            })
        }))
    }

    pub async fn cache_page(
        &self,
        url: &str,
        rules: &str,
        extracted: Option<&Extracted>,
        now: &DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO pages (url, html, canonical, fetched_at, rules) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (url) DO UPDATE SET html = excluded.html, canonical = excluded.canonical,
                fetched_at = excluded.fetched_at, rules = excluded.rules",
        )
        .bind(url)
        .bind(extracted.map(|e| e.html.as_str()))
        .bind(extracted.and_then(|e| e.canonical.as_deref()))
        .bind(to_millis(now))
        .bind(rules)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The first-seen article of another source for each of these canonical links that has
    /// one, in one query.
    pub async fn by_canonicals(
        conn: &mut AnyConnection,
        canonicals: &[&str],
        not_source: &str,
    ) -> Result<std::collections::HashMap<String, CanonicalMatch>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            canonical: String,
            #[sqlx(flatten)]
            target: CanonicalMatch,
        }
        if canonicals.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let list = serde_json::to_string(canonicals).unwrap_or_default();
        let backend = Backend::of(conn);
        // Without statistics on `canonical` (a cold run fills the table faster than
        // autovacuum analyzes it), PostgreSQL takes an equality to match half a percent of
        // the table, and from a few thousand articles on it scans the table for every link:
        // 22 ms per feed, two thirds of a cold run. No scan is ever the better plan here,
        // so none is considered, for this statement only (inside the commit's transaction).
        if backend == Backend::Postgres {
            sqlx::query("SELECT set_config('enable_seqscan', 'off', true)")
                .execute(&mut *conn)
                .await?;
        }
        let sql = match backend {
            Backend::Sqlite => {
                "SELECT canonical, source, key, path FROM articles
                 WHERE canonical IN (SELECT value FROM json_each($1)) AND source <> $2
                 ORDER BY first_seen DESC"
            }
            // One index lookup per link, whatever the planner believes of the table: a cold
            // run fills it faster than PostgreSQL's statistics follow, and a table believed
            // small is scanned whole for every feed.
            Backend::Postgres => {
                "SELECT a.canonical, a.source, a.key, a.path
                 FROM json_each($1) AS l,
                      LATERAL (SELECT canonical, source, key, path, first_seen FROM articles
                               WHERE canonical = l.value AND source <> $2) AS a
                 ORDER BY a.first_seen DESC"
            }
        };
        let rows = sqlx::query_as::<_, Row>(sql)
            .bind(list)
            .bind(not_source)
            .fetch_all(&mut *conn)
            .await?;
        if backend == Backend::Postgres {
            sqlx::query("SELECT set_config('enable_seqscan', 'on', true)")
                .execute(&mut *conn)
                .await?;
        }
        // Newest first, so that the first seen is inserted last and stays.
        Ok(rows.into_iter().map(|r| (r.canonical, r.target)).collect())
    }

    /// Remembers that an entry is another source's article, and the tags it brings.
    pub async fn record_alias(
        conn: &mut AnyConnection,
        source: &str,
        key: &str,
        content_hash: &str,
        target: &CanonicalMatch,
        tags: &[String],
        now: &DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO aliases (source, key, content_hash, target_source, target_key, tags, first_seen)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (source, key) DO UPDATE SET content_hash = excluded.content_hash,
                target_source = excluded.target_source, target_key = excluded.target_key,
                tags = excluded.tags, first_seen = excluded.first_seen",
        )
        .bind(source)
        .bind(key)
        .bind(content_hash)
        .bind(&target.source)
        .bind(&target.key)
        .bind(tags.join("\u{1f}"))
        .bind(to_millis(now))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Tags that duplicates from other sources brought to an article, in the order they came.
    pub async fn alias_tags(
        conn: &mut AnyConnection,
        source: &str,
        key: &str,
    ) -> Result<Vec<String>> {
        let lists = sqlx::query_scalar::<_, String>(
            "SELECT tags FROM aliases WHERE target_source = $1 AND target_key = $2 ORDER BY first_seen",
        )
        .bind(source)
        .bind(key)
        .fetch_all(conn)
        .await?;
        Ok(lists
            .iter()
            .flat_map(|tags| tags.split('\u{1f}'))
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect())
    }
}
