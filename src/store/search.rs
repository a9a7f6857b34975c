//! Full-text search over the archive (see the `search` migrations): the words of each article
//! kept beside it, written with it, and the query that ranks them.

use sqlx::AnyConnection;

use super::{ArticleRecord, Backend, Store, numbered_rows};
use crate::error::Result;
use crate::model::Document;
use crate::text::search::{IndexTokens, query_tokens};

/// Matches ranked beyond the page asked for, for those of removed sources left out after.
const CANDIDATE_MARGIN: usize = 200;

/// Rows per statement when indexing: two values each.
const DOCS_PER_STATEMENT: usize = 500;

/// What the index holds of an article: its title, description and every section, Markdown link
/// targets left out (an address's pieces are not the article's words), as `backend`'s index
/// takes them. SQLite's keeps only which articles hold a word (`detail = none`), so each word
/// goes once: the one writer looked every repeat up in its index only to drop it. PostgreSQL's
/// ranks by how often a word comes, so it takes them all.
pub fn document_words(backend: Backend, doc: &Document) -> String {
    let mut words = match backend {
        Backend::Sqlite => IndexTokens::distinct(),
        Backend::Postgres => IndexTokens::all(),
    };
    words.push(doc.title());
    words.push(&doc.description);
    for section in doc.sections() {
        words.push(&section.title);
        push_without_link_targets(&mut words, &section.body);
    }
    words.finish()
}

/// The words of `markdown` without the `(address)` of its links and pictures: the text on
/// either side of an address is a piece of its own.
fn push_without_link_targets(words: &mut IndexTokens, markdown: &str) {
    let mut rest = markdown;
    while let Some(at) = memchr::memmem::find(rest.as_bytes(), b"](") {
        words.push(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = after;
                break;
            }
        }
    }
    words.push(rest);
}

impl Store {
    /// The search words of `doc` as this state's index takes them ([`document_words`]).
    pub fn document_words(&self, doc: &Document) -> String {
        document_words(self.backend(), doc)
    }

    /// Writes (or replaces) the search words of `docs` (archive path, the words
    /// [`document_words`] made of its document), in `conn`'s transaction; also for records
    /// written without them ([`super::RecordWrite`]).
    pub async fn index_words(
        conn: &mut AnyConnection,
        docs: &[(&str, impl AsRef<str>)],
    ) -> Result<()> {
        let backend = Backend::of(conn);
        for chunk in docs.chunks(DOCS_PER_STATEMENT) {
            let tokens: Vec<&str> = chunk.iter().map(|(_, words)| words.as_ref()).collect();
            match backend {
                Backend::Postgres => {
                    let sql = format!(
                        "INSERT INTO search_docs (path, tokens) VALUES {}
                         ON CONFLICT (path) DO UPDATE SET tokens = excluded.tokens",
                        numbered_rows(backend, "(?, ?)", chunk.len())
                    );
                    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for ((path, _), tokens) in chunk.iter().zip(&tokens) {
                        insert = insert.bind(*path).bind(tokens);
                    }
                    insert.execute(&mut *conn).await?;
                }
                // The index is contentless: the old words of files it knows out first (a new
                // file's number is not looked for in the index), then each file's number, and
                // its words in under that number.
                Backend::Sqlite => {
                    let paths = serde_json::to_string(
                        &chunk.iter().map(|(path, _)| *path).collect::<Vec<_>>(),
                    )
                    .unwrap_or_default();
                    sqlx::query(
                        "DELETE FROM search WHERE rowid IN
                            (SELECT id FROM search_docs WHERE path IN (SELECT value FROM json_each($1)))",
                    )
                    .bind(&paths)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(
                        // `WHERE true`: SQLite reads an upsert after a SELECT only so.
                        "INSERT INTO search_docs (path) SELECT value FROM json_each($1) WHERE true
                         ON CONFLICT (path) DO NOTHING",
                    )
                    .bind(&paths)
                    .execute(&mut *conn)
                    .await?;
                    let sql = format!(
                        "WITH v (path, tokens) AS (VALUES {})
                         INSERT INTO search (rowid, tokens)
                         SELECT d.id, v.tokens FROM v JOIN search_docs d ON d.path = v.path",
                        numbered_rows(backend, "(?, ?)", chunk.len())
                    );
                    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for ((path, _), tokens) in chunk.iter().zip(&tokens) {
                        insert = insert.bind(*path).bind(tokens);
                    }
                    insert.execute(&mut *conn).await?;
                }
            }
        }
        Ok(())
    }

    /// Indexes, once, the articles written before search existed (or copied in by
    /// `migrate-state`, which leaves the index to the target): a mark in `state_meta` says it
    /// was done, so that opening a state costs no look over every article.
    pub(super) async fn ensure_searchable(&self) -> Result<()> {
        let done = sqlx::query("SELECT 1 FROM state_meta WHERE key = 'search_indexed'")
            .fetch_optional(&self.pool)
            .await?;
        if done.is_some() {
            return Ok(());
        }
        let indexed = self.index_unsearched(1000).await?;
        if indexed > 0 {
            tracing::info!(articles = indexed, "articles indexed for search");
        }
        sqlx::query(
            "INSERT INTO state_meta (key, value) VALUES ('search_indexed', '1')
             ON CONFLICT (key) DO NOTHING",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Indexes the articles the search index does not hold yet (all of them, the first time a
    /// state written before search is opened), `batch` at a time; returns how many.
    pub async fn index_unsearched(&self, batch: usize) -> Result<usize> {
        let mut indexed = 0;
        loop {
            let paths: Vec<String> = sqlx::query_scalar(
                "SELECT a.path FROM articles a
                 WHERE NOT EXISTS (SELECT 1 FROM search_docs d WHERE d.path = a.path)
                 ORDER BY a.path LIMIT $1",
            )
            .bind(i64::try_from(batch).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
            if paths.is_empty() {
                return Ok(indexed);
            }
            let mut records = Vec::with_capacity(paths.len());
            for path in &paths {
                records.extend(self.record_by_path(path).await?);
            }
            let docs: Vec<(&str, String)> = records
                .iter()
                .map(|r| (r.path.as_str(), self.document_words(&r.doc)))
                .collect();
            let mut tx = self.begin().await?;
            Self::index_words(&mut tx, &docs).await?;
            tx.commit().await?;
            indexed += records.len();
            // A path no record answers for (it left meanwhile) would be asked again forever.
            if records.is_empty() {
                return Ok(indexed);
            }
        }
    }

    /// The archived articles that hold every word of `query`, best first (then newest), leaving
    /// out removed sources; `limit` from `offset`. Empty for a query without words.
    pub async fn search(
        &self,
        query: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<ArticleRecord>> {
        let tokens = query_tokens(query);
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let (sql, asked) = match self.backend {
            // The best matches are picked inside the index first (FTS5's `rank`, bm25), and
            // only those are joined: joining every match before sorting cost a second and a
            // half for a word every one of 200,000 articles holds.
            Backend::Sqlite => (
                "SELECT d.path FROM
                    (SELECT rowid, rank FROM search WHERE search MATCH $1 ORDER BY rank LIMIT $4) m
                 JOIN search_docs d ON d.id = m.rowid
                 JOIN articles a ON a.path = d.path
                 LEFT JOIN sources s ON s.id = a.source
                 WHERE s.removed_at IS NULL
                 ORDER BY m.rank, a.date DESC LIMIT $2 OFFSET $3",
                // Each word quoted: a word is never read as FTS5's syntax (`AND`, `NEAR`).
                tokens
                    .iter()
                    .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Backend::Postgres => (
                "SELECT d.path FROM
                    (SELECT path, ts_rank(vector, q) AS rank
                     FROM search_docs, plainto_tsquery('simple', $1) q
                     WHERE vector @@ q ORDER BY rank DESC LIMIT $4) d
                 JOIN articles a ON a.path = d.path
                 LEFT JOIN sources s ON s.id = a.source
                 WHERE s.removed_at IS NULL
                 ORDER BY d.rank DESC, a.date DESC LIMIT $2 OFFSET $3",
                tokens.join(" "),
            ),
        };
        let paths: Vec<String> = sqlx::query_scalar(sql)
            .bind(asked)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            // Candidates: the page asked for and a margin for articles of removed sources.
            .bind(i64::try_from(offset + limit + CANDIDATE_MARGIN).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let mut records = Vec::with_capacity(paths.len());
        for path in &paths {
            records.extend(self.record_by_path(path).await?);
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Section;

    fn doc(body: &str) -> Document {
        Document {
            link: "http://127.0.0.1/a".to_owned(),
            date: chrono::DateTime::UNIX_EPOCH,
            description: "The cat".to_owned(),
            tags: vec!["pets".to_owned()],
            author: String::new(),
            translations: Vec::new(),
            original: Section {
                language: "en".to_owned(),
                title: "Cat sees dog".to_owned(),
                body: body.to_owned(),
            },
        }
    }

    #[test]
    fn sqlite_takes_each_word_once_postgres_takes_them_all() {
        let doc = doc("the cat saw the dog 猫\n\nthe cat");
        assert_eq!(
            document_words(Backend::Sqlite, &doc),
            "cat sees dog the saw 猫"
        );
        assert_eq!(
            document_words(Backend::Postgres, &doc),
            "cat sees dog the cat cat sees dog the cat saw the dog 猫 the cat"
        );
    }

    #[test]
    fn link_targets_are_not_words() {
        let linked = doc("See [the report](https://example.org/x) and ![map](/m.png).");
        assert_eq!(
            document_words(Backend::Postgres, &linked),
            "cat sees dog the cat cat sees dog see the report and map"
        );
        assert_eq!(
            document_words(Backend::Sqlite, &doc("[a](b")),
            "cat sees dog the a b"
        );
    }
}
