//! The article record: everything an archive file, a feed entry and a page are made from, so
//! that no output reads the archive back and the archive can be rendered again from state.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::packed::{Large, MaybePacked, bind_large};
use super::search::document_words;
use super::{Backend, Store, from_json_list, from_millis, json_list, numbered_rows, to_millis};
use crate::error::Result;
use crate::model::{Byline, Document, Enclosure, Section};
use crate::text::json;

/// How the key of a record known only by its archive file starts (the path follows), until a
/// fetch adopts it under the entry's own key.
pub const FILE_KEY_PREFIX: &str = "rebuilt:";

/// Everything state keeps of an archived article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleRecord {
    pub source: String,
    /// The entry's key. A record rebuilt from a file has the guid or link the file names, else
    /// [`FILE_KEY_PREFIX`] and its path.
    pub key: String,
    /// The archive file, relative to the archive folder, with `/` separators.
    pub path: String,
    pub atom_id: String,
    /// The entry's own guid/id, when it has one (and when known).
    pub guid: Option<String>,
    /// Of what the file was made from; empty when unknown (rebuilt from the archive).
    pub content_hash: String,
    /// What the file holds.
    pub doc: Document,
    /// The entry's own text before LLM sections replaced it; `None` when unknown.
    pub original: Option<Section>,
    /// The model and prompt version of the LLM sections, when state made them.
    pub enriched_by: Option<String>,
    pub bylines: Vec<Byline>,
    pub enclosures: Vec<Enclosure>,
    /// The dates the feed gave.
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    pub first_seen: DateTime<Utc>,
    /// When the file last changed.
    pub updated_at: DateTime<Utc>,
    pub canonical: String,
    /// The entry as fetched, serialized by the pipeline (`None` in lists that do not need it).
    pub entry: Option<String>,
    /// Of the settings that shaped the file; `None` when unknown.
    pub fingerprint: Option<String>,
    /// Recovered from the archive; a fetch that sees the entry adopts it.
    pub rebuilt: bool,
}

/// A record to write, and what its writer knows of it.
#[derive(Debug, Clone, Copy)]
pub struct RecordWrite<'a> {
    pub record: &'a ArticleRecord,
    /// The file's bytes changed: `updated_at` moves (the feed entry's `updated`); otherwise the
    /// stored one is kept.
    pub file_changed: bool,
    /// Its search words are written with it; when not, its writer indexes it with
    /// [`Store::index_words`] later in the same transaction.
    pub indexed: bool,
    /// Its largest columns made already, from this same record (see [`Store::encode`]).
    pub encoded: Option<&'a Encoded>,
}

/// A record's two largest columns as its row holds them (packed in SQLite, see `packed`): the
/// sections, as JSON, with their count, and the fetched entry. [`Store::encode`] makes them where a writer
/// prepares its records, so that the one writer, which every source waits for, only writes
/// them. It takes the entry over: a record written with it needs none of its own.
#[derive(Debug)]
pub struct Encoded {
    sections: Large,
    section_count: i64,
    entry: Option<Large>,
}

impl<'a> RecordWrite<'a> {
    /// A write that indexes the record's words too.
    pub fn new(record: &'a ArticleRecord, file_changed: bool) -> Self {
        Self {
            record,
            file_changed,
            indexed: true,
            encoded: None,
        }
    }
}

/// Whether the process writing a record has written its file too (one process, which writes
/// files before the state that points at them), or leaves it to the publisher (a worker, which
/// writes no file). A record whose file waits is "unrendered" until the publisher marks it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Rendering {
    #[default]
    Done,
    Pending,
}

/// A record whose file does not show its latest revision, as the publisher renders it.
#[derive(Debug, Clone)]
pub struct Unrendered {
    pub record: ArticleRecord,
    pub revision: i64,
}

/// What is known of an article already archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArticle {
    pub path: String,
    pub content_hash: String,
    pub first_seen: DateTime<Utc>,
    /// The date the article is filed under; it never changes once archived.
    pub date: DateTime<Utc>,
    /// Recovered from the archive and not yet adopted by a fetch.
    pub rebuilt: bool,
}

/// What state knows of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    New,
    Archived(StoredArticle),
    /// Another source's article; its file holds this entry.
    Alias {
        content_hash: String,
    },
}

/// Which articles a feed or a listing holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Selection<'a> {
    #[default]
    All,
    Source(&'a str),
    Tag(&'a str),
    /// Dated from `from` up to `until` (Unix milliseconds, `until` excluded): a month.
    Dated {
        from: i64,
        until: i64,
    },
}

/// An article of a feed, with its source feed's own metadata.
#[derive(Debug, Clone)]
pub struct FeedRow {
    pub record: ArticleRecord,
    pub source_feed_id: Option<String>,
    pub source_title: Option<String>,
    pub source_link: Option<String>,
}

/// The columns [`RecordRow`] reads; a query that needs the fetched entry adds it (see
/// [`RecordWithEntry`]), so a feed query never loads the fetched entries.
const RECORD_COLUMNS: &str = "a.source, a.key, a.path, a.atom_id, a.content_hash, a.title, a.link, a.date,
     a.description, a.author, a.tags, a.sections, a.original, a.enriched_by, a.bylines, a.enclosures,
     a.published, a.updated, a.first_seen, a.updated_at, COALESCE(a.canonical, '') AS canonical,
     a.fingerprint, a.rebuilt, a.guid";

/// An article as [`RECORD_COLUMNS`] selects it: times in Unix milliseconds, lists and sections
/// as the JSON [`Store::write_article`] wrote (the sections packed in SQLite).
#[derive(sqlx::FromRow)]
struct RecordRow {
    source: String,
    key: String,
    path: String,
    atom_id: String,
    content_hash: String,
    title: String,
    link: String,
    date: i64,
    description: String,
    author: String,
    tags: Option<String>,
    sections: Option<MaybePacked>,
    original: Option<MaybePacked>,
    enriched_by: Option<String>,
    bylines: Option<String>,
    enclosures: Option<String>,
    published: Option<i64>,
    updated: Option<i64>,
    first_seen: i64,
    updated_at: i64,
    canonical: String,
    fingerprint: Option<String>,
    rebuilt: i64,
    guid: Option<String>,
}

impl RecordRow {
    fn into_record(self, entry: Option<String>) -> ArticleRecord {
        let mut sections: Vec<Section> = from_json_list(self.sections.map(|s| s.0));
        let original_section = sections.pop().unwrap_or_else(|| Section {
            language: "en".to_owned(),
            title: self.title,
            body: String::new(),
        });
        // Stored only where it differs from the file's one section (see `write_article`).
        let original: Option<Section> = self
            .original
            .and_then(|json| serde_json::from_str(&json.0).ok())
            .or_else(|| sections.is_empty().then(|| original_section.clone()));
        ArticleRecord {
            source: self.source,
            key: self.key,
            path: self.path,
            atom_id: self.atom_id,
            content_hash: self.content_hash,
            doc: Document {
                link: self.link,
                date: from_millis(self.date),
                description: self.description,
                tags: from_json_list(self.tags),
                author: self.author,
                translations: sections,
                original: original_section,
            },
            original,
            enriched_by: self.enriched_by,
            bylines: from_json_list(self.bylines),
            enclosures: from_json_list(self.enclosures),
            published: self.published.map(from_millis),
            updated: self.updated.map(from_millis),
            first_seen: from_millis(self.first_seen),
            updated_at: from_millis(self.updated_at),
            canonical: self.canonical,
            entry,
            fingerprint: self.fingerprint,
            rebuilt: self.rebuilt != 0,
            guid: self.guid,
        }
    }
}

impl From<RecordRow> for ArticleRecord {
    fn from(row: RecordRow) -> Self {
        row.into_record(None)
    }
}

/// A [`RecordRow`] with the fetched entry, selected as `entry` (NULL where not wanted).
#[derive(sqlx::FromRow)]
struct RecordWithEntry {
    #[sqlx(flatten)]
    record: RecordRow,
    entry: Option<MaybePacked>,
}

impl From<RecordWithEntry> for ArticleRecord {
    fn from(row: RecordWithEntry) -> Self {
        row.record.into_record(row.entry.map(|e| e.0))
    }
}

/// Queries here are assembled from the constant column lists above, never from input, which is
/// always bound.
fn constant(query: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(query)
}

/// What [`Store::article`] and [`Store::known`] read of an archived article.
#[derive(sqlx::FromRow)]
struct StoredRow {
    path: String,
    content_hash: String,
    first_seen: i64,
    date: i64,
    rebuilt: i64,
}

impl From<StoredRow> for StoredArticle {
    fn from(row: StoredRow) -> Self {
        Self {
            path: row.path,
            content_hash: row.content_hash,
            first_seen: from_millis(row.first_seen),
            date: from_millis(row.date),
            rebuilt: row.rebuilt != 0,
        }
    }
}

impl Store {
    /// The largest columns of a record of `doc` and `entry` (the entry as fetched), ready for
    /// [`RecordWrite::encoded`].
    pub fn encode(&self, doc: &Document, entry: Option<String>) -> Encoded {
        encode(self.backend(), doc, entry)
    }
}

fn encode(backend: Backend, doc: &Document, entry: Option<String>) -> Encoded {
    Encoded {
        sections: Large::of(backend, sections_json(doc)),
        section_count: section_count(doc),
        entry: entry.map(|text| Large::of(backend, text)),
    }
}

/// How many sections `doc`'s file has, for the queries that ask (SQL does not look inside the
/// packed sections).
fn section_count(doc: &Document) -> i64 {
    i64::try_from(doc.sections().count()).unwrap_or(i64::MAX)
}

/// The sections as serde_json writes them (a list of `Section`s), the long texts escaped by
/// [`json::push_string`]: serde_json's own escaping was most of this.
fn sections_json(doc: &Document) -> String {
    let size: usize = doc
        .sections()
        .map(|s| s.language.len() + s.title.len() + s.body.len() + 48)
        .sum();
    let mut out = Vec::with_capacity(size + size / 8);
    out.push(b'[');
    for (i, section) in doc.sections().enumerate() {
        // Every field, so that one added to `Section` is not left out here.
        let Section {
            language,
            title,
            body,
        } = section;
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"language\":");
        json::push_string(&mut out, language);
        json::push_key(&mut out, "title");
        json::push_string(&mut out, title);
        json::push_key(&mut out, "body");
        json::push_string(&mut out, body);
        out.push(b'}');
    }
    out.push(b']');
    json::into_text(out)
}

/// Records per `INSERT`: 27 values each, well under SQLite's limit of 32,766 per statement, and
/// few enough distinct statement sizes for the statement cache.
const ROWS_PER_STATEMENT: usize = 64;

/// One multi-row upsert of whole records. `file_changed` moves `updated_at` (the feed entry's
/// `updated`); otherwise the stored one is kept.
async fn write_rows(
    conn: &mut AnyConnection,
    writes: &[&RecordWrite<'_>],
    file_changed: bool,
    rendering: Rendering,
) -> Result<()> {
    let backend = Backend::of(conn);
    let sql = format!(
        "INSERT INTO articles (source, key, path, content_hash, atom_id, title, link, date, first_seen,
                              updated_at, language, canonical, bylines, enclosures, description, author,
                              tags, sections, section_count, original, enriched_by, published, updated,
                              entry, fingerprint, rebuilt, guid)
         VALUES {}
         ON CONFLICT (source, key) DO UPDATE SET
            path = excluded.path, content_hash = excluded.content_hash, atom_id = excluded.atom_id,
            title = excluded.title, link = excluded.link, date = excluded.date,
            language = excluded.language, canonical = excluded.canonical,
            bylines = excluded.bylines, enclosures = excluded.enclosures,
            description = excluded.description, author = excluded.author, tags = excluded.tags,
            sections = excluded.sections, section_count = excluded.section_count,
            original = excluded.original, enriched_by = excluded.enriched_by,
            published = excluded.published, updated = excluded.updated, entry = excluded.entry,
            fingerprint = excluded.fingerprint, rebuilt = excluded.rebuilt, guid = excluded.guid,
            revision = articles.revision + 1{}",
        numbered_rows(
            backend,
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            writes.len()
        ),
        if file_changed {
            ", updated_at = excluded.updated_at"
        } else {
            ""
        }
    );
    // The large columns of records written without them made beforehand (see `Encoded`), and
    // every record's own text beside LLM sections, made before the statement, which binds
    // them by reference.
    let made: Vec<Option<Encoded>> = writes
        .iter()
        .map(|write| {
            write
                .encoded
                .is_none()
                .then(|| encode(backend, &write.record.doc, write.record.entry.clone()))
        })
        .collect();
    // A monolingual file's section is the entry's own text: stored once, in `sections`.
    // NULL beside LLM sections means unknown.
    let originals: Vec<Option<Large>> = writes
        .iter()
        .map(|write| {
            let record = write.record;
            record
                .original
                .as_ref()
                .filter(|s| !(record.doc.translations.is_empty() && **s == record.doc.original))
                .and_then(|s| serde_json::to_string(s).ok())
                .map(|json| Large::of(backend, json))
        })
        .collect();
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
    for ((write, made), original) in writes.iter().zip(&made).zip(&originals) {
        let record = write.record;
        let encoded = write.encoded.or(made.as_ref());
        let language = record
            .original
            .as_ref()
            .map_or(&record.doc.original.language, |s| &s.language);
        insert = insert
            .bind(&record.source)
            .bind(&record.key)
            .bind(&record.path)
            .bind(&record.content_hash)
            .bind(&record.atom_id)
            .bind(record.doc.title())
            .bind(&record.doc.link)
            .bind(to_millis(&record.doc.date))
            .bind(to_millis(&record.first_seen))
            .bind(to_millis(&record.updated_at))
            .bind(language)
            .bind(&record.canonical)
            .bind(json_list(&record.bylines))
            .bind(json_list(&record.enclosures))
            .bind(&record.doc.description)
            .bind(&record.doc.author)
            .bind(serde_json::to_string(&record.doc.tags).unwrap_or_default());
        insert = bind_large(insert, encoded.map(|e| &e.sections), backend)
            .bind(encoded.map(|e| e.section_count));
        insert = bind_large(insert, original.as_ref(), backend)
            .bind(&record.enriched_by)
            .bind(record.published.as_ref().map(to_millis))
            .bind(record.updated.as_ref().map(to_millis));
        insert = bind_large(insert, encoded.and_then(|e| e.entry.as_ref()), backend)
            .bind(&record.fingerprint)
            .bind(i64::from(record.rebuilt))
            .bind(&record.guid);
    }
    insert.execute(&mut *conn).await?;
    let docs: Vec<(&str, String)> = writes
        .iter()
        .filter(|write| write.indexed)
        .map(|write| {
            (
                write.record.path.as_str(),
                document_words(Backend::of(conn), &write.record.doc),
            )
        })
        .collect();
    Store::index_words(conn, &docs).await?;
    if rendering == Rendering::Pending {
        let paths: Vec<&str> = writes.iter().map(|w| w.record.path.as_str()).collect();
        queue_for_rendering(conn, &paths).await?;
    }
    Ok(())
}

/// Puts these records' paths in the publisher's queue (see `render_queue`).
async fn queue_for_rendering(conn: &mut AnyConnection, paths: &[&str]) -> Result<()> {
    let sql = format!(
        "INSERT INTO render_queue (path) VALUES {} ON CONFLICT (path) DO NOTHING",
        numbered_rows(Backend::of(conn), "(?)", paths.len())
    );
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
    for path in paths {
        insert = insert.bind(*path);
    }
    insert.execute(conn).await?;
    Ok(())
}

fn limit_of(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    pub async fn article(
        conn: &mut AnyConnection,
        source: &str,
        key: &str,
    ) -> Result<Option<StoredArticle>> {
        let row = sqlx::query_as::<_, StoredRow>(
            "SELECT path, content_hash, first_seen, date, rebuilt FROM articles WHERE source = $1 AND key = $2",
        )
        .bind(source)
        .bind(key)
        .fetch_optional(conn)
        .await?;
        Ok(row.map(StoredArticle::from))
    }

    /// What is known of each of these entries of `source`: archived, or merged into another
    /// source's article (with the content hash it had then). Keys not in the map are new. One
    /// query for a whole feed: a round trip to the database per entry costs more than the rest
    /// of an unchanged entry.
    pub async fn known_many(
        conn: &mut AnyConnection,
        source: &str,
        keys: &[&str],
    ) -> Result<HashMap<String, Known>> {
        #[derive(sqlx::FromRow)]
        struct KnownRow {
            key: String,
            is_alias: i64,
            #[sqlx(flatten)]
            article: StoredRow,
        }
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let list = serde_json::to_string(keys).unwrap_or_default();
        let rows = sqlx::query_as::<_, KnownRow>(
            "SELECT key, 0 AS is_alias, path, content_hash, first_seen, date, rebuilt
             FROM articles WHERE source = $1 AND key IN (SELECT value FROM json_each($2))
             UNION ALL
             SELECT key, 1, '', content_hash, first_seen, first_seen, 0
             FROM aliases WHERE source = $1 AND key IN (SELECT value FROM json_each($2))",
        )
        .bind(source)
        .bind(list)
        .fetch_all(conn)
        .await?;
        let mut known = HashMap::with_capacity(rows.len());
        for row in rows {
            if row.is_alias != 0 {
                // An archived article wins over an alias of the same key, as in `known`.
                known.entry(row.key).or_insert(Known::Alias {
                    content_hash: row.article.content_hash,
                });
            } else {
                known.insert(row.key, Known::Archived(row.article.into()));
            }
        }
        Ok(known)
    }

    /// [`Store::article`] for many keys of one source in one query; keys not stored are absent.
    pub async fn articles(
        conn: &mut AnyConnection,
        source: &str,
        keys: &[&str],
    ) -> Result<HashMap<String, StoredArticle>> {
        let known = Self::known_many(conn, source, keys).await?;
        Ok(known
            .into_iter()
            .filter_map(|(key, known)| match known {
                Known::Archived(article) => Some((key, article)),
                Known::Alias { .. } | Known::New => None,
            })
            .collect())
    }

    /// Which of `paths` an article holds already, in one query.
    pub async fn paths_taken(conn: &mut AnyConnection, paths: &[&str]) -> Result<HashSet<String>> {
        if paths.is_empty() {
            return Ok(HashSet::new());
        }
        let list = serde_json::to_string(paths).unwrap_or_default();
        let taken = sqlx::query_scalar::<_, String>(
            "SELECT path FROM articles WHERE path IN (SELECT value FROM json_each($1))",
        )
        .bind(list)
        .fetch_all(conn)
        .await?;
        Ok(taken.into_iter().collect())
    }

    /// The path of an article of `source` with this link, if any.
    pub async fn path_with_link(
        conn: &mut AnyConnection,
        source: &str,
        link: &str,
    ) -> Result<Option<String>> {
        let path = sqlx::query_scalar::<_, String>(
            "SELECT path FROM articles WHERE source = $1 AND link = $2 LIMIT 1",
        )
        .bind(source)
        .bind(link)
        .fetch_optional(conn)
        .await?;
        Ok(path)
    }

    pub async fn path_taken(conn: &mut AnyConnection, path: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM articles WHERE path = $1")
            .bind(path)
            .fetch_optional(conn)
            .await?;
        Ok(row.is_some())
    }

    /// Writes the whole record. `file_changed` moves `updated_at` (the feed entry's `updated`);
    /// otherwise the stored one is kept.
    pub async fn write_article(
        conn: &mut AnyConnection,
        record: &ArticleRecord,
        file_changed: bool,
    ) -> Result<()> {
        Self::write_articles(
            conn,
            &[RecordWrite::new(record, file_changed)],
            Rendering::Done,
        )
        .await
    }

    /// [`Store::write_article`] for many records, in a few multi-row statements: a statement is
    /// a round trip to the database's thread, and a cold run writes tens of thousands of records.
    pub async fn write_articles(
        conn: &mut AnyConnection,
        records: &[RecordWrite<'_>],
        rendering: Rendering,
    ) -> Result<()> {
        for file_changed in [true, false] {
            let rows: Vec<&RecordWrite> = records
                .iter()
                .filter(|write| write.file_changed == file_changed)
                .collect();
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                write_rows(conn, chunk, file_changed, rendering).await?;
            }
        }
        Ok(())
    }

    /// Replaces what the file holds (tags merged, sections written), as of `now`.
    pub async fn update_document(
        conn: &mut AnyConnection,
        source: &str,
        key: &str,
        doc: &Document,
        enriched_by: Option<&str>,
        now: &DateTime<Utc>,
        rendering: Rendering,
    ) -> Result<()> {
        let backend = Backend::of(conn);
        #[derive(sqlx::FromRow)]
        struct Current {
            path: String,
            sections: Option<MaybePacked>,
            has_original: i64,
        }
        let current = sqlx::query_as::<_, Current>(
            "SELECT path, sections, CASE WHEN original IS NULL THEN 0 ELSE 1 END AS has_original
             FROM articles WHERE source = $1 AND key = $2",
        )
        .bind(source)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(current) = current else {
            return Ok(());
        };
        // A monolingual file's one section is the entry's own text, kept only there; LLM
        // sections replacing it must not lose it.
        let original = (current.has_original == 0)
            .then(|| from_json_list::<Section>(current.sections.map(|s| s.0)))
            .filter(|sections| sections.len() == 1)
            .and_then(|sections| serde_json::to_string(sections.first()?).ok())
            .map(|first| Large::of(backend, first));
        let sections = Large::of(backend, sections_json(doc));
        let query = sqlx::query(
            "UPDATE articles SET title = $3, description = $4, tags = $5, sections = $6,
                                 section_count = $7, enriched_by = COALESCE($8, enriched_by),
                                 updated_at = $9, original = COALESCE(original, $10),
                                 revision = revision + 1
             WHERE source = $1 AND key = $2",
        )
        .bind(source)
        .bind(key)
        .bind(doc.title())
        .bind(&doc.description)
        .bind(serde_json::to_string(&doc.tags).unwrap_or_default());
        let query = bind_large(query, Some(&sections), backend)
            .bind(section_count(doc))
            .bind(enriched_by)
            .bind(to_millis(now));
        bind_large(query, original.as_ref(), backend)
            .execute(&mut *conn)
            .await?;
        let words = document_words(backend, doc);
        Store::index_words(conn, &[(current.path.as_str(), words)]).await?;
        if rendering == Rendering::Pending {
            queue_for_rendering(conn, &[current.path.as_str()]).await?;
        }
        Ok(())
    }

    /// The record of an article, without the fetched entry (only re-rendering reads that, in
    /// its own listings), so merging tags or enriching does not load it.
    pub async fn record(
        conn: &mut AnyConnection,
        source: &str,
        key: &str,
    ) -> Result<Option<ArticleRecord>> {
        let row = sqlx::query_as::<_, RecordRow>(constant(format!(
            "SELECT {RECORD_COLUMNS} FROM articles a WHERE a.source = $1 AND a.key = $2"
        )))
        .bind(source)
        .bind(key)
        .fetch_optional(conn)
        .await?;
        Ok(row.map(ArticleRecord::from))
    }

    /// The record of the article archived at `path`, for its page (without the fetched entry).
    pub async fn record_by_path(&self, path: &str) -> Result<Option<ArticleRecord>> {
        let row = sqlx::query_as::<_, RecordRow>(constant(format!(
            "SELECT {RECORD_COLUMNS} FROM articles a WHERE a.path = $1"
        )))
        .bind(path)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(ArticleRecord::from))
    }

    /// The records recovered from the archive that this entry's link identifies (several files
    /// may share a link).
    pub async fn rebuilt_by_link(
        conn: &mut AnyConnection,
        source: &str,
        link: &str,
    ) -> Result<Vec<ArticleRecord>> {
        if link.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query_as::<_, RecordRow>(constant(format!(
            "SELECT {RECORD_COLUMNS} FROM articles a WHERE a.source = $1 AND a.link = $2 AND a.rebuilt = 1
             ORDER BY a.date DESC LIMIT 100"
        )))
        .bind(source)
        .bind(link)
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().map(ArticleRecord::from).collect())
    }

    /// The link-less records recovered from the archive whose file shows this title (as its
    /// title, or as its last section's).
    pub async fn rebuilt_by_title(
        conn: &mut AnyConnection,
        source: &str,
        title: &str,
    ) -> Result<Vec<ArticleRecord>> {
        // A file with one section shows its title there too; the last section of one with more
        // is in the packed sections, which only the records themselves show.
        let rows = sqlx::query_as::<_, RecordRow>(constant(format!(
            "SELECT {RECORD_COLUMNS} FROM articles a
             WHERE a.source = $1 AND a.link = '' AND a.rebuilt = 1
               AND (a.title = $2 OR a.section_count > 1)
             ORDER BY a.date DESC"
        )))
        .bind(source)
        .bind(title)
        .fetch_all(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(ArticleRecord::from)
            .filter(|r| r.doc.title() == title || r.doc.original.title == title)
            .take(100)
            .collect())
    }

    /// Whether any of the source's records waits to be adopted by a fetch.
    pub async fn has_rebuilt(conn: &mut AnyConnection, source: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM articles WHERE source = $1 AND rebuilt = 1 LIMIT 1")
            .bind(source)
            .fetch_optional(conn)
            .await?;
        Ok(row.is_some())
    }

    /// Gives a rebuilt record the identity and fields a fetch found for it; the file's content
    /// (sections, tags, date) stays as recovered, since the file is not rewritten.
    pub async fn adopt(
        conn: &mut AnyConnection,
        rebuilt_key: &str,
        record: &ArticleRecord,
    ) -> Result<()> {
        sqlx::query("DELETE FROM articles WHERE source = $1 AND key = $2")
            .bind(&record.source)
            .bind(rebuilt_key)
            .execute(&mut *conn)
            .await?;
        Self::write_article(conn, record, true).await
    }

    /// The newest `limit` articles of a selection, newest first, skipping removed sources.
    pub async fn feed_rows(&self, selection: Selection<'_>, limit: usize) -> Result<Vec<FeedRow>> {
        self.page_rows(selection, limit, 0).await
    }

    /// [`Store::feed_rows`] from the `offset`th on: a page of a listing.
    pub async fn page_rows(
        &self,
        selection: Selection<'_>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<FeedRow>> {
        #[derive(sqlx::FromRow)]
        struct WithSource {
            #[sqlx(flatten)]
            record: RecordRow,
            source_feed_id: Option<String>,
            source_title: Option<String>,
            source_link: Option<String>,
        }
        const SOURCE_COLUMNS: &str =
            "s.feed_id AS source_feed_id, s.feed_title AS source_title, s.feed_link AS source_link";
        let columns = format!(
            "{RECORD_COLUMNS}, {SOURCE_COLUMNS}
             FROM articles a LEFT JOIN sources s ON s.id = a.source"
        );
        let live = "(s.removed_at IS NULL)";
        let query = match selection {
            Selection::All => format!(
                "SELECT {columns} WHERE {live} ORDER BY a.date DESC, a.path LIMIT $1 OFFSET $2"
            ),
            Selection::Source(_) => format!(
                "SELECT {columns} WHERE a.source = $3 AND {live}
                 ORDER BY a.date DESC, a.path LIMIT $1 OFFSET $2"
            ),
            Selection::Tag(_) => format!(
                "SELECT {RECORD_COLUMNS}, {SOURCE_COLUMNS}
                 FROM article_tags t
                 JOIN articles a ON a.source = t.source AND a.key = t.key
                 LEFT JOIN sources s ON s.id = a.source
                 WHERE t.tag = $3 AND {live}
                 ORDER BY t.date DESC, a.path LIMIT $1 OFFSET $2"
            ),
            Selection::Dated { .. } => format!(
                "SELECT {columns} WHERE a.date >= $3 AND a.date < $4 AND {live}
                 ORDER BY a.date DESC, a.path LIMIT $1 OFFSET $2"
            ),
        };
        let mut rows = sqlx::query_as::<_, WithSource>(constant(query))
            .bind(limit_of(limit))
            .bind(limit_of(offset));
        rows = match selection {
            Selection::All => rows,
            Selection::Source(id) | Selection::Tag(id) => rows.bind(id),
            Selection::Dated { from, until } => rows.bind(from).bind(until),
        };
        let rows = rows.fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|r| FeedRow {
                record: r.record.into(),
                source_feed_id: r.source_feed_id,
                source_title: r.source_title,
                source_link: r.source_link,
            })
            .collect())
    }

    /// Records in path order after `after` (exclusive), `limit` at a time, with their fetched
    /// entries when `with_entry`: for passes over the whole archive in bounded memory.
    pub async fn records_after(
        &self,
        after: &str,
        limit: usize,
        source: Option<&str>,
        with_entry: bool,
    ) -> Result<Vec<ArticleRecord>> {
        let entry = if with_entry { "a.entry" } else { "NULL" };
        let rows = sqlx::query_as::<_, RecordWithEntry>(constant(format!(
            "SELECT {RECORD_COLUMNS}, {entry} AS entry FROM articles a
             WHERE a.path > $1 AND ($3 IS NULL OR a.source = $3) ORDER BY a.path LIMIT $2"
        )))
        .bind(after)
        .bind(limit_of(limit))
        .bind(source)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(ArticleRecord::from).collect())
    }

    /// The source's records whose file was shaped by other settings than `fingerprint` (those
    /// of unknown fingerprint are left alone), at most `limit`.
    pub async fn stale_records(
        &self,
        source: &str,
        fingerprint: &str,
        limit: usize,
    ) -> Result<Vec<ArticleRecord>> {
        let rows = sqlx::query_as::<_, RecordWithEntry>(constant(format!(
            "SELECT {RECORD_COLUMNS}, a.entry FROM articles a
             WHERE a.source = $1 AND a.fingerprint IS NOT NULL AND a.fingerprint <> $2
             ORDER BY a.date DESC LIMIT $3"
        )))
        .bind(source)
        .bind(fingerprint)
        .bind(limit_of(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(ArticleRecord::from).collect())
    }

    /// Up to `limit` records whose file does not show their latest revision, in path order
    /// after `after` (exclusive): the publisher's work when workers write the records.
    pub async fn unrendered(&self, after: &str, limit: usize) -> Result<Vec<Unrendered>> {
        #[derive(sqlx::FromRow)]
        struct WithRevision {
            #[sqlx(flatten)]
            record: RecordRow,
            revision: i64,
        }
        let rows = sqlx::query_as::<_, WithRevision>(constant(format!(
            "SELECT {RECORD_COLUMNS}, a.revision FROM render_queue q
             JOIN articles a ON a.path = q.path
             WHERE q.path > $1 ORDER BY q.path LIMIT $2"
        )))
        .bind(after)
        .bind(limit_of(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Unrendered {
                record: row.record.into(),
                revision: row.revision,
            })
            .collect())
    }

    /// Empties the render queue of paths no article holds any more (a source purged, a
    /// record adopted under another key); returns how many.
    pub async fn clear_render_queue(&self) -> Result<u64> {
        // Read first: an empty queue, the usual case, costs no write.
        let queued = sqlx::query("SELECT 1 FROM render_queue LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        if queued.is_none() {
            return Ok(0);
        }
        let cleared = sqlx::query(
            "DELETE FROM render_queue
             WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.path = render_queue.path)",
        )
        .execute(&self.pool)
        .await?;
        Ok(cleared.rows_affected())
    }

    /// Records that the files of these records show these revisions: they leave the queue,
    /// unless the record changed since (a newer revision), which stays for the next pass.
    pub async fn mark_rendered(conn: &mut AnyConnection, rendered: &[&Unrendered]) -> Result<()> {
        for chunk in rendered.chunks(ROWS_PER_STATEMENT * 4) {
            let sql = format!(
                "WITH done (path, revision) AS (VALUES {})
                 DELETE FROM render_queue WHERE path IN
                   (SELECT done.path FROM done JOIN articles a
                    ON a.path = done.path AND a.revision = done.revision)",
                numbered_rows(Backend::of(conn), "(?, ?)", chunk.len())
            );
            let mut update = sqlx::query(sqlx::AssertSqlSafe(sql));
            for item in chunk {
                update = update.bind(&item.record.path).bind(item.revision);
            }
            update.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Every archived path (removed sources' included), for comparing state with the archive.
    pub async fn all_paths(&self) -> Result<std::collections::HashSet<String>> {
        let paths = sqlx::query_scalar::<_, String>("SELECT path FROM articles")
            .fetch_all(&self.pool)
            .await?;
        Ok(paths.into_iter().collect())
    }

    /// Every tag of a live source's article, sorted.
    pub async fn tags(&self) -> Result<Vec<String>> {
        let tags = sqlx::query_scalar::<_, String>(
            "SELECT DISTINCT t.tag FROM article_tags t
             WHERE NOT EXISTS (SELECT 1 FROM sources s WHERE s.id = t.source AND s.removed_at IS NOT NULL)
             ORDER BY t.tag",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(tags)
    }

    /// Whether state knows any article at all.
    pub async fn has_articles(&self) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM articles LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Rows written before the record held whole articles, which only their files complete.
    pub async fn incomplete_paths(&self, limit: usize) -> Result<Vec<(String, String, String)>> {
        #[derive(sqlx::FromRow)]
        struct IncompleteRow {
            source: String,
            key: String,
            path: String,
        }
        let rows = sqlx::query_as::<_, IncompleteRow>(
            "SELECT source, key, path FROM articles WHERE sections IS NULL ORDER BY path LIMIT $1",
        )
        .bind(limit_of(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.source, r.key, r.path))
            .collect())
    }

    /// Completes a row written before the record held whole articles from its file.
    pub async fn complete_from_file(
        conn: &mut AnyConnection,
        source: &str,
        key: &str,
        doc: &Document,
    ) -> Result<()> {
        // A monolingual file's section is the entry's own text; beside LLM sections it is not
        // in the file, and stays unknown.
        let backend = Backend::of(conn);
        let sections = Large::of(backend, sections_json(doc));
        let query = sqlx::query(
            "UPDATE articles SET description = $3, author = $4, tags = $5, sections = $6,
                                 section_count = $7
             WHERE source = $1 AND key = $2",
        )
        .bind(source)
        .bind(key)
        .bind(&doc.description)
        .bind(&doc.author)
        .bind(serde_json::to_string(&doc.tags).unwrap_or_default());
        bind_large(query, Some(&sections), backend)
            .bind(section_count(doc))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Counts commits that changed what an output shows (by any process).
    pub async fn state_version(&self) -> Result<i64> {
        let n = sqlx::query_scalar::<_, i64>("SELECT n FROM state_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}

#[cfg(test)]
impl ArticleRecord {
    /// A monolingual record of source `ex` for tests: `key` names its path, id and link,
    /// `title` is its title and its content hash.
    pub(crate) fn for_test(key: &str, title: &str) -> Self {
        let date: DateTime<Utc> = DateTime::from_timestamp(1_715_590_853, 0).expect("date");
        Self {
            source: "ex".to_owned(),
            key: key.to_owned(),
            path: format!("ex/{key}.md"),
            atom_id: format!("urn:test:{key}"),
            guid: None,
            content_hash: title.to_owned(),
            doc: Document {
                link: format!("http://127.0.0.1/{key}"),
                date,
                description: "d".to_owned(),
                tags: vec![],
                author: "ex".to_owned(),
                translations: vec![],
                original: Section {
                    language: "en".to_owned(),
                    title: title.to_owned(),
                    body: "Body.".to_owned(),
                },
            },
            original: None,
            enriched_by: None,
            bylines: vec![],
            enclosures: vec![],
            published: None,
            updated: None,
            first_seen: date,
            updated_at: date,
            canonical: String::new(),
            entry: None,
            fingerprint: None,
            rebuilt: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Section;

    /// A bilingual record with every column the encoded ones replace.
    fn record(key: &str) -> ArticleRecord {
        let plain = ArticleRecord::for_test(key, &format!("Title \"{key}\""));
        let section = |language: &str, body: &str| Section {
            language: language.to_owned(),
            title: plain.doc.original.title.clone(),
            body: body.to_owned(),
        };
        ArticleRecord {
            doc: Document {
                tags: vec!["t".to_owned()],
                translations: vec![section("de", "Text.\n\n> Zitat \\ \"quoted\"")],
                original: section("en", "Body.\n\n- a list\n- of two"),
                ..plain.doc.clone()
            },
            original: Some(section("en", "The feed's own text.")),
            enriched_by: Some("llm".to_owned()),
            published: Some(plain.doc.date),
            canonical: plain.doc.link.clone(),
            entry: Some(format!(
                "{{\"title\":\"{key}\",\"content\":\"<p>é ✓</p>\"}}"
            )),
            fingerprint: Some("f".to_owned()),
            ..plain
        }
    }

    /// The hand-written sections JSON is serde_json's, byte for byte, and reads back.
    #[test]
    fn sections_json_is_serde_jsons() {
        let mut doc = record("a").doc;
        doc.translations.push(Section {
            language: "zh".to_owned(),
            title: "标题 \"引\" \u{1}".to_owned(),
            body: "第一段。\r\n\t\\ \u{1f}\u{7f} 🙂".to_owned(),
        });
        for doc in [
            doc.clone(),
            Document {
                translations: Vec::new(),
                ..doc
            },
        ] {
            let json = sections_json(&doc);
            assert_eq!(
                json,
                serde_json::to_string(&doc.sections().collect::<Vec<_>>()).expect("json")
            );
            let read: Vec<Section> = serde_json::from_str(&json).expect("reads back");
            assert_eq!(read, doc.sections().cloned().collect::<Vec<_>>());
        }
    }

    /// A record written with its columns made beforehand (the entry moved into them) reads
    /// back as the same record written plainly.
    #[tokio::test]
    async fn encoded_columns_write_the_same_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/state/g.db", dir.path().display());
        let store = Store::open(&url).await.expect("open");
        let plain = record("a");
        let mut moved = record("b");
        let encoded = store.encode(&moved.doc, moved.entry.take());
        let mut tx = store.begin().await.expect("tx");
        let writes = [
            RecordWrite::new(&plain, true),
            RecordWrite {
                encoded: Some(&encoded),
                ..RecordWrite::new(&moved, true)
            },
        ];
        Store::write_articles(&mut tx, &writes, Rendering::Done)
            .await
            .expect("write");
        tx.commit().await.expect("commit");
        let read = store.records_after("", 10, None, true).await.expect("read");
        let [a, b] = read.as_slice() else {
            panic!("two records, got {}", read.len());
        };
        assert_eq!(a, &plain);
        assert_eq!(
            b,
            &ArticleRecord {
                entry: record("b").entry,
                ..moved
            }
        );
        let blobs: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM articles WHERE typeof(entry) = 'blob'")
                .fetch_one(store.pool())
                .await
                .expect("count");
        assert_eq!(blobs, 2, "SQLite keeps both entries packed");
        let packed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM articles
             WHERE typeof(sections) = 'blob' AND typeof(original) = 'blob' AND section_count = 2",
        )
        .fetch_one(store.pool())
        .await
        .expect("count");
        assert_eq!(
            packed, 2,
            "and both records' sections and own text, and their count"
        );
    }

    async fn scratch_store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}/state/g.db", dir.path().display());
        Store::open(&url).await.expect("open")
    }

    /// Rows written before the sections were packed hold them as JSON text: they read as
    /// they are, and LLM sections replacing their one section keep it as the entry's own text.
    #[tokio::test]
    async fn sections_written_as_text_read_and_update_as_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = scratch_store(&dir).await;
        let plain = ArticleRecord::for_test("a", "Plain");
        let mut tx = store.begin().await.expect("tx");
        Store::write_article(&mut tx, &plain, true)
            .await
            .expect("write");
        sqlx::query("UPDATE articles SET sections = $1 WHERE key = 'a'")
            .bind(sections_json(&plain.doc))
            .execute(&mut *tx)
            .await
            .expect("as text");
        tx.commit().await.expect("commit");
        let read = |store: Store| async move {
            let mut conn = store.pool().acquire().await.expect("conn");
            Store::record(&mut conn, "ex", "a")
                .await
                .expect("read")
                .expect("the record")
        };
        let before = read(store.clone()).await;
        assert_eq!(before.doc, plain.doc);

        let enriched = record("a").doc;
        let mut tx = store.begin().await.expect("tx");
        let now = plain.updated_at;
        Store::update_document(
            &mut tx,
            "ex",
            "a",
            &enriched,
            Some("llm"),
            &now,
            Rendering::Done,
        )
        .await
        .expect("update");
        tx.commit().await.expect("commit");
        let after = read(store.clone()).await;
        assert_eq!(after.doc.translations, enriched.translations);
        assert_eq!(after.original.as_ref(), Some(&plain.doc.original));
        let (kind, count): (String, i64) =
            sqlx::query_as("SELECT typeof(sections), section_count FROM articles WHERE key = 'a'")
                .fetch_one(store.pool())
                .await
                .expect("row");
        assert_eq!((kind.as_str(), count), ("blob", 2));
    }

    /// State written before the sections were packed: its migration counts each row's
    /// sections from their JSON, which the queries ask instead of reading it.
    #[tokio::test]
    async fn the_migration_counts_the_sections_of_rows_written_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/state/g.db", dir.path().display());
        let pool = super::super::sqlite_state_before(&dir.path().join("state/g.db"), "0016").await;
        let bilingual = record("b").doc;
        for (key, sections) in [
            (
                "one",
                Some(sections_json(&ArticleRecord::for_test("one", "One").doc)),
            ),
            ("two", Some(sections_json(&bilingual))),
            ("none", None),
        ] {
            sqlx::query(
                "INSERT INTO articles (source, key, path, content_hash, atom_id, title, link,
                                       date, first_seen, updated_at, sections)
                 VALUES ('ex', $1, $1, '', $1, 'T', '', 0, 0, 0, $2)",
            )
            .bind(key)
            .bind(sections)
            .execute(&pool)
            .await
            .expect("an earlier row");
        }
        pool.close().await;
        let store = Store::open(&url).await.expect("open");
        let counts: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT key, section_count FROM articles ORDER BY key")
                .fetch_all(store.pool())
                .await
                .expect("counts");
        let expected = [("none", None), ("one", Some(1)), ("two", Some(2))]
            .map(|(key, n)| (key.to_owned(), n));
        assert_eq!(counts, expected);
    }

    /// State written when tag rows held their article's path: the migration to rows that find
    /// their article by source and key keeps every tag of every article (a tag listed twice
    /// once), and the triggers keep them in step afterwards.
    #[tokio::test]
    async fn the_migration_keeps_the_tag_rows_written_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/state/g.db", dir.path().display());
        let pool = super::super::sqlite_state_before(&dir.path().join("state/g.db"), "0018").await;
        for (key, date, tags) in [
            ("one", 2, Some(r#"["world","tech"]"#)),
            ("two", 1, Some(r#"["world","world"]"#)),
            ("none", 3, None),
        ] {
            sqlx::query(
                "INSERT INTO articles (source, key, path, content_hash, atom_id, title, link,
                                       date, first_seen, updated_at, tags)
                 VALUES ('ex', $1, $1, '', $1, 'T', '', $2, 0, 0, $3)",
            )
            .bind(key)
            .bind(date)
            .bind(tags)
            .execute(&pool)
            .await
            .expect("an earlier row");
        }
        pool.close().await;
        let store = Store::open(&url).await.expect("open");
        let rows = || async {
            sqlx::query_as::<_, (String, i64, String)>(
                "SELECT tag, date, key FROM article_tags ORDER BY tag, date DESC, key",
            )
            .fetch_all(store.pool())
            .await
            .expect("tag rows")
        };
        let owned = |rows: &[(&str, i64, &str)]| -> Vec<(String, i64, String)> {
            rows.iter()
                .map(|(tag, date, key)| ((*tag).to_owned(), *date, (*key).to_owned()))
                .collect()
        };
        assert_eq!(
            rows().await,
            owned(&[("tech", 2, "one"), ("world", 2, "one"), ("world", 1, "two")])
        );
        sqlx::query("UPDATE articles SET tags = '[\"sport\"]', date = 5 WHERE key = 'two'")
            .execute(store.pool())
            .await
            .expect("update");
        sqlx::query("DELETE FROM articles WHERE key = 'one'")
            .execute(store.pool())
            .await
            .expect("delete");
        assert_eq!(rows().await, owned(&[("sport", 5, "two")]));
    }

    /// A link-less record rebuilt from a bilingual file is found by its last section's title,
    /// which only the packed sections hold, as well as by its own.
    #[tokio::test]
    async fn rebuilt_records_are_found_by_either_title() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = scratch_store(&dir).await;
        let mut bilingual = record("b");
        bilingual.doc.translations[0].title = "Titel".to_owned();
        bilingual.doc.link = String::new();
        bilingual.rebuilt = true;
        let mut other = ArticleRecord::for_test("c", "Another");
        other.doc.link = String::new();
        other.rebuilt = true;
        let mut tx = store.begin().await.expect("tx");
        for record in [&bilingual, &other] {
            Store::write_article(&mut tx, record, true)
                .await
                .expect("write");
        }
        let original_title = bilingual.doc.original.title.clone();
        for title in ["Titel", original_title.as_str()] {
            let found = Store::rebuilt_by_title(&mut tx, "ex", title)
                .await
                .expect("query");
            let keys: Vec<&str> = found.iter().map(|r| r.key.as_str()).collect();
            assert_eq!(keys, ["b"], "{title}");
        }
        let found = Store::rebuilt_by_title(&mut tx, "ex", "Another")
            .await
            .expect("query");
        assert_eq!(found.len(), 1);
        assert!(
            Store::rebuilt_by_title(&mut tx, "ex", "Nothing")
                .await
                .expect("query")
                .is_empty()
        );
    }
}
