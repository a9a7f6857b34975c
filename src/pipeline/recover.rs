//! The archive and the state rebuild each other: `gazette rebuild` recovers records from the
//! files, `gazette verify` compares the two (and `--repair` re-renders missing files and adopts
//! orphans), and rows written before the record held whole articles are completed from their
//! files once.
//!
//! A record recovered from a file has no content hash (a bilingual file does not hold the
//! entry's own text) and, unless the file names its `guid`, no key but its path. The first fetch
//! that sees its entry recognises it by link and adopts it (see `prepare`), so nothing is
//! archived twice, rewritten, or asked of the LLM again.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::extract::canonical_link;
use crate::files;
use crate::normalize;
use crate::publish::{archive, feeds};
use crate::store::{ArticleRecord, FILE_KEY_PREFIX, Store};

/// Files read and written per transaction, which bounds memory on any archive size.
const BATCH: usize = 500;

/// What `rebuild` did.
#[derive(Debug, Default)]
pub struct RebuildReport {
    /// Records recovered from files state did not know.
    pub recovered: usize,
    /// Files state already knew, left as they were.
    pub known: usize,
    /// Files that could not be recovered, with why.
    pub skipped: Vec<(String, String)>,
}

/// One disagreement between the archive and the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// State has the article; its file is gone.
    Missing(String),
    /// A file state knows nothing of.
    Orphan(String),
    /// The file reads back but differs from what state renders: edited by hand.
    Edited(String),
    /// The file is not an archive file (broken front matter, no link line).
    Unreadable(String, String),
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Missing(path) => write!(f, "missing: {path} (state has it; the file is gone)"),
            Finding::Orphan(path) => write!(f, "orphan: {path} (state does not know this file)"),
            Finding::Edited(path) => write!(
                f,
                "edited: {path} (differs from state; left as it is, never overwritten)"
            ),
            Finding::Unreadable(path, why) => write!(f, "unreadable: {path}: {why}"),
        }
    }
}

/// What `verify` found, and what `--repair` fixed.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Records compared with their files.
    pub checked: usize,
    /// What still disagrees.
    pub findings: Vec<Finding>,
    /// What `--repair` fixed.
    pub repaired: Vec<Finding>,
}

/// Recovers a record for every archive file state does not know.
pub async fn rebuild(settings: &Settings, store: &Store) -> Result<RebuildReport> {
    let known = store.all_paths().await?;
    let removed: HashSet<String> = store.removed_sources().await?.into_iter().collect();
    let dir = settings.archive_dir.clone();
    let files = super::off_thread(&settings.archive_dir, move || {
        crate::format::list_files(&dir)
    })
    .await?;
    let mut report = RebuildReport::default();
    let unknown: Vec<String> = files
        .into_iter()
        .filter(|f| {
            let is_known = known.contains(f);
            report.known += usize::from(is_known);
            !is_known
        })
        .collect();
    drop(known);
    for batch in unknown.chunks(BATCH) {
        let outcome = recover_batch(settings, store, batch, &removed, false).await?;
        report.recovered += outcome.recovered;
        report.skipped.extend(outcome.skipped);
    }
    info!(
        recovered = report.recovered,
        known = report.known,
        skipped = report.skipped.len(),
        "state rebuilt from the archive"
    );
    Ok(report)
}

/// Reads, recovers and stores one batch of files in one transaction. `skip_copies` leaves out a
/// file whose link an archived article of its source already has: a copy made by hand, which
/// adopting would publish twice.
async fn recover_batch(
    settings: &Settings,
    store: &Store,
    paths: &[String],
    removed: &HashSet<String>,
    skip_copies: bool,
) -> Result<RebuildReport> {
    let owned: Vec<String> = paths.to_vec();
    let shared = std::sync::Arc::new(settings.clone());
    let recovered = super::off_thread(&settings.archive_dir, move || {
        Ok(owned
            .into_iter()
            .map(|path| {
                let result = recover_file(&shared, &path);
                (path, result)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    let mut report = RebuildReport::default();
    let mut tx = store.begin().await?;
    for (path, result) in recovered {
        let mut record = match result {
            Ok(record) => record,
            Err(why) => {
                warn!(path = %path, "not recovered: {why}");
                report.skipped.push((path, why.to_string()));
                continue;
            }
        };
        if removed.contains(&record.source) {
            report
                .skipped
                .push((path, format!("its source {} was removed", record.source)));
            continue;
        }
        if skip_copies && !record.doc.link.is_empty() {
            let copy_of = Store::path_with_link(&mut tx, &record.source, &record.doc.link).await?;
            if let Some(original) = copy_of {
                report
                    .skipped
                    .push((path, format!("a copy of {original} (the same link)")));
                continue;
            }
        }
        // Two files naming the same guid (copied by hand): the second keeps its path as key.
        if Store::article(&mut tx, &record.source, &record.key)
            .await?
            .is_some()
        {
            record.key = path_key(&record.path);
        }
        Store::write_article(&mut tx, &record, true).await?;
        report.recovered += 1;
    }
    tx.commit().await?;
    Ok(report)
}

/// The key of a record known only by its file, until a fetch adopts it.
fn path_key(path: &str) -> String {
    format!("{FILE_KEY_PREFIX}{path}")
}

/// Why an archive file gives no record.
#[derive(Debug, thiserror::Error)]
enum NotRecovered {
    #[error("{0}")]
    Unreadable(#[from] std::io::Error),
    #[error("{0}")]
    NotAnArchiveFile(#[from] archive::ReadError),
    #[error("no configured source matches its path or its author")]
    NoSource,
}

/// A record from one archive file, or why there is none.
fn recover_file(
    settings: &Settings,
    path: &str,
) -> std::result::Result<ArticleRecord, NotRecovered> {
    let full = settings.archive_dir.join(path);
    let text = std::fs::read_to_string(&full)?;
    let modified = std::fs::metadata(&full)
        .and_then(|m| m.modified())
        .map(DateTime::<Utc>::from)
        .ok();
    let doc = archive::read(&text, &settings.labels, &[])?;
    let source = settings
        .path_template
        .source_of(path)
        .or_else(|| {
            // A template without `{source}`: the author key names the source when only one
            // source has it.
            let mut by_author = settings.sources.iter().filter(|s| s.author == doc.author);
            match (by_author.next(), by_author.next()) {
                (Some(only), None) => Some(only.id.clone()),
                _ => None,
            }
        })
        .ok_or(NotRecovered::NoSource)?;
    // With `archive.identity_keys` the file names the entry's guid, or says it had none (its
    // key is then its link); without, the record is known by its path until a fetch adopts it.
    let (key, guid) = match archive::read_identity(&text) {
        Some(Some(guid)) => (guid.clone(), Some(guid)),
        Some(None) if !doc.link.is_empty() => (doc.link.clone(), None),
        _ => (path_key(path), None),
    };
    let original = doc.translations.is_empty().then(|| doc.original.clone());
    Ok(ArticleRecord {
        atom_id: normalize::atom_id(&source, &key, guid.as_deref().unwrap_or_default()),
        guid,
        key,
        path: path.to_owned(),
        content_hash: String::new(),
        canonical: canonical_link(&doc.link),
        original,
        enriched_by: None,
        bylines: Vec::new(),
        enclosures: Vec::new(),
        published: None,
        updated: None,
        first_seen: doc.date,
        // The file's own time stands for when it last changed, which state no longer knows.
        updated_at: modified.unwrap_or(doc.date).max(doc.date),
        entry: None,
        fingerprint: None,
        rebuilt: true,
        source,
        doc,
    })
}

/// Compares every record with its file and every file with state.
pub async fn verify(settings: &Settings, store: &Store, repair: bool) -> Result<VerifyReport> {
    let removed: HashSet<String> = store.removed_sources().await?.into_iter().collect();
    let mut report = VerifyReport::default();
    let mut after = String::new();
    loop {
        let records = store.records_after(&after, BATCH, None, false).await?;
        let Some(last) = records.last() else {
            break;
        };
        after = last.path.clone();
        report.checked += records.len();
        let shared = std::sync::Arc::new(settings.clone());
        let findings = super::off_thread(&settings.archive_dir, move || {
            Ok(records
                .iter()
                .filter_map(|record| {
                    check_record(&shared, record)
                        .map(|(finding, expected)| (record.source.clone(), finding, expected))
                })
                .collect::<Vec<_>>())
        })
        .await?;
        for (source, finding, expected) in findings {
            // A removed source's files may be gone: they left the feeds with it.
            if removed.contains(&source) && matches!(finding, Finding::Missing(_)) {
                continue;
            }
            match (&finding, repair) {
                (Finding::Missing(path), true) => {
                    let full = settings.archive_dir.join(path);
                    let bytes = expected.unwrap_or_default();
                    super::off_thread(&full, {
                        let (root, full) = (settings.archive_dir.clone(), full.clone());
                        move || files::write_atomic(&root, &full, bytes.as_bytes())
                    })
                    .await?;
                    report.repaired.push(finding);
                }
                _ => report.findings.push(finding),
            }
        }
    }
    let orphans = feeds::unknown_files(settings, store).await?;
    if repair && !orphans.is_empty() {
        for batch in orphans.chunks(BATCH) {
            let outcome = recover_batch(settings, store, batch, &removed, true).await?;
            let skipped: HashSet<&String> = outcome.skipped.iter().map(|(p, _)| p).collect();
            for path in batch {
                if skipped.contains(path) {
                    report.findings.push(Finding::Orphan(path.clone()));
                } else {
                    report.repaired.push(Finding::Orphan(path.clone()));
                }
            }
        }
    } else {
        report
            .findings
            .extend(orphans.into_iter().map(Finding::Orphan));
    }
    Ok(report)
}

/// How a record's file disagrees with it, with the bytes state renders for it.
fn check_record(settings: &Settings, record: &ArticleRecord) -> Option<(Finding, Option<String>)> {
    let expected = archive::render_article(settings, record.guid.as_deref(), &record.doc);
    let full = settings.archive_dir.join(&record.path);
    match std::fs::read_to_string(&full) {
        Ok(text) if text == expected => None,
        Ok(text) => Some(match archive::read(&text, &settings.labels, &[]) {
            Ok(_) => (Finding::Edited(record.path.clone()), None),
            Err(e) => (
                Finding::Unreadable(record.path.clone(), e.to_string()),
                None,
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some((Finding::Missing(record.path.clone()), Some(expected)))
        }
        Err(e) => Some((
            Finding::Unreadable(record.path.clone(), e.to_string()),
            None,
        )),
    }
}

/// Completes rows written before the record held whole articles, from their files; a row
/// whose file is gone or unreadable stays as it is (and `verify` reports it).
pub async fn complete_records(settings: &Settings, store: &Store) -> Result<usize> {
    let mut completed = 0;
    let mut unusable = HashSet::new();
    loop {
        let rows = store.incomplete_paths(BATCH + unusable.len()).await?;
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|(_, _, path)| !unusable.contains(path))
            .collect();
        if rows.is_empty() {
            break;
        }
        let shared = std::sync::Arc::new(settings.clone());
        let read = super::off_thread(&settings.archive_dir, move || {
            Ok(rows
                .into_iter()
                .map(|(source, key, path)| {
                    let doc = std::fs::read_to_string(shared.archive_dir.join(&path))
                        .ok()
                        .and_then(|text| archive::read(&text, &shared.labels, &[]).ok());
                    (source, key, path, doc)
                })
                .collect::<Vec<_>>())
        })
        .await?;
        let mut tx = store.begin().await?;
        for (source, key, path, doc) in read {
            match doc {
                Some(doc) => {
                    Store::complete_from_file(&mut tx, &source, &key, &doc).await?;
                    completed += 1;
                }
                None => {
                    warn!(path = %path, "the record cannot be completed: its file is missing or unreadable");
                    unusable.insert(path);
                }
            }
        }
        tx.commit().await?;
    }
    if completed > 0 {
        info!(completed, "records completed from their files");
    }
    Ok(completed)
}

/// Refuses to work on an archive whose state is empty: a fetch would archive every entry again
/// over the files (bilingual ones would lose their sections), and the feeds would lose what
/// they published. Unless this database began the archive (it saw it empty): then the files
/// are those of its own run, killed before it recorded them.
pub async fn ensure_state_knows_archive(settings: &Settings, store: &Store) -> Result<()> {
    if store.has_articles().await? {
        return Ok(());
    }
    let dir = settings.archive_dir.clone();
    let files = match super::off_thread(&settings.archive_dir, move || {
        crate::format::list_files(&dir)
    })
    .await
    {
        Ok(files) => files,
        // An archive folder that cannot be listed fails the writes, source by source, with
        // their own errors; it holds nothing this check could protect.
        Err(e) => {
            warn!(error = %e, "the archive folder cannot be listed");
            return Ok(());
        }
    };
    if files.is_empty() {
        return store.mark_archive_started(&chrono::Utc::now()).await;
    }
    // A run of this database was killed after writing files and before recording them: the
    // next run takes them up as it archives their entries again.
    if store.archive_started().await? {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "the archive {} holds {} articles but the state database {} knows none (lost or \
         replaced?); run `gazette rebuild` to recover the state from the archive first",
        settings.archive_dir.display(),
        files.len(),
        settings.state_url,
    )))
}

/// File work off the async worker threads.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Document, Section};
    use std::path::Path;

    fn settings(dir: &Path) -> Settings {
        let text = "[[sources]]\nid = \"ex\"\nurl = \"feed.xml\"\n";
        let path = dir.join("gazette.toml");
        std::fs::write(&path, text).expect("config");
        Settings::load(&path).expect("settings")
    }

    fn doc(title: &str) -> Document {
        Document {
            link: format!("https://example.org/{title}"),
            date: DateTime::parse_from_rfc3339("2024-05-13T09:00:53.911Z")
                .expect("date")
                .with_timezone(&Utc),
            description: "d".to_owned(),
            tags: vec!["world".to_owned()],
            author: "ex".to_owned(),
            translations: vec![],
            original: Section {
                language: "en".to_owned(),
                title: title.to_owned(),
                body: "Body.".to_owned(),
            },
        }
    }

    /// Rows from before the record held whole articles are completed from their files, once;
    /// a row whose file is gone is left alone without stopping the others.
    #[tokio::test]
    async fn old_rows_are_completed_from_their_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = settings(dir.path());
        let store = Store::open(&settings.state_url).await.expect("state");
        let mut tx = store.begin().await.expect("tx");
        for title in ["kept", "gone"] {
            let path = format!("ex/2024/05/13/{title}.md");
            let file = settings.archive_dir.join(&path);
            crate::files::write_atomic(
                &settings.archive_dir,
                &file,
                archive::render(&doc(title), &settings.labels).as_bytes(),
            )
            .expect("file");
            let record = recover_file(&settings, &path).expect("recovered");
            Store::write_article(&mut tx, &record, true)
                .await
                .expect("row");
        }
        tx.commit().await.expect("commit");
        sqlx::query("UPDATE articles SET sections = NULL, section_count = NULL, tags = NULL, description = ''")
            .execute(store.pool())
            .await
            .expect("make the rows old");
        sqlx::query("DELETE FROM article_tags")
            .execute(store.pool())
            .await
            .expect("old rows had no tag index");
        std::fs::remove_file(settings.archive_dir.join("ex/2024/05/13/gone.md")).expect("rm");

        assert_eq!(
            complete_records(&settings, &store).await.expect("complete"),
            1
        );
        let kept = store
            .record_by_path("ex/2024/05/13/kept.md")
            .await
            .expect("query")
            .expect("row");
        assert_eq!(kept.doc, doc("kept"));
        assert_eq!(complete_records(&settings, &store).await.expect("again"), 0);
        let items = feeds::items(&settings, &store, feeds::Feed::Tag("world"))
            .await
            .expect("tag feed");
        assert_eq!(
            items.len(),
            1,
            "the completed row is back in its tag's feed"
        );
    }

    /// A state written by the release before the record held whole articles (migrations up
    /// to 0006) upgrades in place: its rows survive the new table, are completed from their
    /// files, and the archive and the state agree.
    #[tokio::test]
    async fn a_state_from_before_the_record_upgrades() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = settings(dir.path());
        let db = dir.path().join("state/gazette.db");
        let pool = crate::store::sqlite_state_before(&db, "0007").await;
        let path = "ex/2024/05/13/kept.md";
        let doc = doc("kept");
        crate::files::write_atomic(
            &settings.archive_dir,
            &settings.archive_dir.join(path),
            archive::render(&doc, &settings.labels).as_bytes(),
        )
        .expect("file");
        // The row as the old release wrote it.
        sqlx::query(
            "INSERT INTO articles (source, key, path, content_hash, atom_id, title, link, date,
                                   first_seen, updated_at, language, canonical)
             VALUES ('ex', 'k', ?, 'h', 'urn:x', 'kept', ?, ?, ?, ?, 'en', ?)",
        )
        .bind(path)
        .bind(&doc.link)
        .bind(doc.date.timestamp_millis())
        .bind(doc.date.timestamp_millis())
        .bind(doc.date.timestamp_millis())
        .bind(&doc.link)
        .execute(&pool)
        .await
        .expect("old row");
        pool.close().await;

        let store = Store::open(&settings.state_url).await.expect("upgraded");
        assert_eq!(
            complete_records(&settings, &store).await.expect("complete"),
            1
        );
        let record = store
            .record_by_path(path)
            .await
            .expect("query")
            .expect("the row survived the new table");
        assert_eq!(
            (record.key.as_str(), record.atom_id.as_str()),
            ("k", "urn:x")
        );
        assert_eq!(record.doc, doc);
        assert_eq!(record.original.as_ref(), Some(&doc.original));
        let report = verify(&settings, &store, false).await.expect("verify");
        assert_eq!(report.findings, Vec::new());
        let items = feeds::items(&settings, &store, feeds::Feed::Tag("world"))
            .await
            .expect("tag feed");
        assert_eq!(items.len(), 1);
    }
}
