//! What the write turn asks state of one source's entries before writing them: which are
//! archived already, which links another source archived, which paths are taken. On SQLite
//! that is one query: every statement is a trip to the database's thread, and a cold run asks
//! for each of its sources while all of them wait for the turn.

use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;

use super::{Backend, CanonicalMatch, Store, StoredArticle, from_millis};
use crate::error::Result;

/// What [`Store::lookups`] found.
#[derive(Debug, Default)]
pub struct Lookups {
    /// The entries archived already, by key.
    pub stored: HashMap<String, StoredArticle>,
    /// The first-seen article of another source, by canonical link.
    pub duplicates: HashMap<String, CanonicalMatch>,
    /// The paths an article holds already.
    pub taken: HashSet<String>,
}

/// A row of the one query: `kind` says which of the three questions it answers.
#[derive(sqlx::FromRow)]
struct Row {
    kind: i64,
    /// The key, the canonical link or the path asked about.
    name: String,
    path: String,
    content_hash: String,
    /// The key and source of a canonical link's article.
    key: String,
    source: String,
    first_seen: i64,
    date: i64,
    rebuilt: i64,
}

const ARCHIVED: i64 = 0;
const CANONICAL: i64 = 1;
const TAKEN: i64 = 2;

impl Store {
    /// For `source`'s entries: which of `keys` state holds ([`Store::articles`]), the
    /// articles of other sources with these `canonicals` ([`Store::by_canonicals`]) and which
    /// of `paths` are taken ([`Store::paths_taken`]). Links and paths come with the key of
    /// their entry: only those of entries state does not hold need an answer, which SQLite
    /// gives for all of them in the same query, and PostgreSQL, asked in three, only for
    /// those.
    pub async fn lookups(
        conn: &mut AnyConnection,
        source: &str,
        keys: &[&str],
        canonicals: &[(&str, &str)],
        paths: &[(&str, &str)],
    ) -> Result<Lookups> {
        if Backend::of(conn) == Backend::Postgres {
            let stored = Self::articles(&mut *conn, source, keys).await?;
            let canonicals = unstored(canonicals, &stored);
            let paths = unstored(paths, &stored);
            return Ok(Lookups {
                duplicates: if canonicals.is_empty() {
                    HashMap::new()
                } else {
                    Self::by_canonicals(&mut *conn, &canonicals, source).await?
                },
                taken: Self::paths_taken(&mut *conn, &paths).await?,
                stored,
            });
        }
        let list = |items: &[&str]| serde_json::to_string(items).unwrap_or_default();
        let values = |asked: &[(&str, &str)]| -> String {
            list(&asked.iter().map(|(_, value)| *value).collect::<Vec<_>>())
        };
        let rows = sqlx::query_as::<_, Row>(
            "SELECT 0 AS kind, key AS name, path, content_hash, '' AS key, '' AS source,
                    first_seen, date, rebuilt
             FROM articles WHERE source = $1 AND key IN (SELECT value FROM json_each($2))
             UNION ALL
             SELECT 1, canonical, path, '', key, source, first_seen, 0, 0
             FROM articles WHERE canonical IN (SELECT value FROM json_each($3)) AND source <> $1
             UNION ALL
             SELECT 2, path, '', '', '', '', 0, 0, 0
             FROM articles WHERE path IN (SELECT value FROM json_each($4))
             ORDER BY kind, first_seen DESC",
        )
        .bind(source)
        .bind(list(keys))
        .bind(values(canonicals))
        .bind(values(paths))
        .fetch_all(conn)
        .await?;
        let mut found = Lookups::default();
        for row in rows {
            match row.kind {
                ARCHIVED => {
                    found.stored.insert(
                        row.name,
                        StoredArticle {
                            path: row.path,
                            content_hash: row.content_hash,
                            first_seen: from_millis(row.first_seen),
                            date: from_millis(row.date),
                            rebuilt: row.rebuilt != 0,
                        },
                    );
                }
                // Newest first, so that the first seen is inserted last and stays.
                CANONICAL => {
                    found.duplicates.insert(
                        row.name,
                        CanonicalMatch {
                            source: row.source,
                            key: row.key,
                            path: row.path,
                        },
                    );
                }
                TAKEN => {
                    found.taken.insert(row.name);
                }
                _ => {}
            }
        }
        Ok(found)
    }
}

/// The values asked for entries that `stored` does not hold.
fn unstored<'a>(
    asked: &[(&str, &'a str)],
    stored: &HashMap<String, StoredArticle>,
) -> Vec<&'a str> {
    asked
        .iter()
        .filter(|(key, _)| !stored.contains_key(*key))
        .map(|(_, value)| *value)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ArticleRecord, RecordWrite, Rendering};

    fn article(source: &str, key: &str, canonical: &str, first_seen_ms: i64) -> ArticleRecord {
        let mut record = ArticleRecord::for_test(key, key);
        record.source = source.to_owned();
        record.path = format!("{source}/{key}.md");
        record.canonical = canonical.to_owned();
        record.first_seen = from_millis(first_seen_ms);
        record
    }

    /// The one query answers as the three it stands for.
    #[tokio::test]
    async fn one_query_answers_as_the_three() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/state/g.db", dir.path().display());
        let store = Store::open(&url).await.expect("open");
        let records = [
            article("ex", "a", "https://127.0.0.1/a", 1_000),
            article("ex", "b", "https://127.0.0.1/b", 1_000),
            article("one", "c", "https://127.0.0.1/shared", 3_000),
            article("two", "d", "https://127.0.0.1/shared", 2_000),
            article("one", "e", "https://127.0.0.1/a", 5_000),
        ];
        let mut tx = store.begin().await.expect("tx");
        let writes: Vec<RecordWrite> = records.iter().map(|r| RecordWrite::new(r, true)).collect();
        Store::write_articles(&mut tx, &writes, Rendering::Done)
            .await
            .expect("write");
        let keys = ["a", "x", "c"];
        let canonicals = [
            "https://127.0.0.1/a",
            "https://127.0.0.1/shared",
            "https://127.0.0.1/none",
        ];
        let paths = ["ex/a.md", "one/c.md", "ex/new.md"];
        // Asked for entries "x" (new) and "a" (archived): SQLite answers for both.
        let of_x = |values: &[&'static str]| -> Vec<(&str, &str)> {
            values.iter().map(|v| ("x", *v)).collect()
        };
        let found = Store::lookups(&mut tx, "ex", &keys, &of_x(&canonicals), &of_x(&paths))
            .await
            .expect("lookups");
        assert_eq!(
            found.stored,
            Store::articles(&mut tx, "ex", &keys)
                .await
                .expect("articles")
        );
        assert_eq!(found.stored.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(
            found.duplicates,
            Store::by_canonicals(&mut tx, &canonicals, "ex")
                .await
                .expect("canonicals")
        );
        assert_eq!(
            found.duplicates["https://127.0.0.1/shared"].key, "d",
            "the first seen"
        );
        assert_eq!(
            found.duplicates["https://127.0.0.1/a"].key, "e",
            "of another source"
        );
        assert_eq!(
            found.taken,
            Store::paths_taken(&mut tx, &paths).await.expect("paths")
        );
        assert_eq!(found.taken.len(), 2);
        let none = Store::lookups(&mut tx, "ex", &[], &[], &[])
            .await
            .expect("nothing asked");
        assert!(none.stored.is_empty() && none.duplicates.is_empty() && none.taken.is_empty());
    }
}
