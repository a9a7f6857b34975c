//! The publisher's half of split roles: workers write article records and no file; the
//! publisher renders every record whose file does not show its latest revision. The files are
//! durable before the records are marked rendered, so a publisher killed midway renders the
//! rest on restart, and rendering again is harmless: the same bytes are not rewritten.

use tracing::info;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::files::{self, PendingFile};
use crate::publish::archive;
use crate::store::{Store, Unrendered};

/// Records rendered per transaction, which bounds memory however far behind the archive is.
const BATCH: usize = 500;

/// Writes the files of all unrendered records; returns how many files changed.
pub async fn render_pending(settings: &Settings, store: &Store) -> Result<usize> {
    Ok(render_queue(settings, store).await?.files)
}

/// What a pass over the render queue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Records taken off the queue (their files current).
    pub records: usize,
    /// Files whose bytes changed.
    pub files: usize,
}

/// [`render_pending`], telling also how many records it took off the queue.
pub async fn render_queue(settings: &Settings, store: &Store) -> Result<Rendered> {
    let mut changed = 0;
    let mut records = 0;
    let mut after = String::new();
    loop {
        let batch = store.unrendered(&after, BATCH).await?;
        let Some(last) = batch.last() else {
            break;
        };
        after = last.record.path.clone();
        let pending: Vec<PendingFile> = batch
            .iter()
            .map(|item| PendingFile {
                path: settings.archive_dir.join(&item.record.path),
                bytes: archive::render_article(
                    settings,
                    item.record.guid.as_deref(),
                    &item.record.doc,
                ),
                new: false,
                staged: None,
            })
            .collect();
        let root = settings.archive_dir.clone();
        let written = tokio::task::spawn_blocking(move || {
            let changed = files::write_all_deferred(&root, pending)?;
            if changed.iter().any(|c| *c) {
                files::sync_filesystem(&root)?;
            }
            Ok::<_, Error>(changed)
        })
        .await
        .map_err(|e| Error::io(&settings.archive_dir, std::io::Error::other(e)))??;
        changed += written.iter().filter(|c| **c).count();
        records += batch.len();
        let mut tx = store.begin().await?;
        let marked: Vec<&Unrendered> = batch.iter().collect();
        Store::mark_rendered(&mut tx, &marked).await?;
        tx.commit().await?;
    }
    if changed > 0 {
        info!(files = changed, "archive files rendered from the records");
    }
    // What is left names no article; cheap, since the queue is all but empty now.
    store.clear_render_queue().await?;
    Ok(Rendered {
        records,
        files: changed,
    })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::store::{ArticleRecord, RecordWrite, Rendering};

    async fn queued(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM render_queue")
            .fetch_one(store.pool())
            .await
            .expect("count")
    }

    /// Records a worker wrote are rendered once; one that changes is rendered again; a queued
    /// path whose article is gone leaves the queue.
    #[tokio::test]
    async fn queued_records_are_rendered_once_and_again_when_they_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gazette.toml");
        let settings = Settings::from_toml("[[sources]]\nid = \"ex\"\nurl = \"feed.xml\"\n", &path)
            .expect("settings");
        let store = Store::open(&settings.state_url).await.expect("state");
        let (a, b, gone) = (
            ArticleRecord::for_test("a", "First"),
            ArticleRecord::for_test("b", "Second"),
            ArticleRecord::for_test("c", "Third"),
        );
        let mut tx = store.begin().await.expect("tx");
        let rows = [&a, &b, &gone].map(|record| RecordWrite::new(record, true));
        Store::write_articles(&mut tx, &rows, Rendering::Pending)
            .await
            .expect("records");
        tx.commit().await.expect("commit");
        assert_eq!(queued(&store).await, 3);
        assert!(
            !settings.archive_dir.join(&a.path).exists(),
            "no file before the publisher renders"
        );
        sqlx::query("DELETE FROM articles WHERE key = 'c'")
            .execute(store.pool())
            .await
            .expect("an article removed meanwhile");

        assert_eq!(render_pending(&settings, &store).await.expect("render"), 2);
        let file = std::fs::read_to_string(settings.archive_dir.join(&a.path)).expect("file");
        assert_eq!(file, archive::render_article(&settings, None, &a.doc));
        assert_eq!(
            queued(&store).await,
            0,
            "rendered and orphaned paths leave the queue"
        );
        assert_eq!(render_pending(&settings, &store).await.expect("again"), 0);

        let mut changed = b.doc.clone();
        changed.original.title = "Second, corrected".to_owned();
        let mut tx = store.begin().await.expect("tx");
        let now = Utc::now();
        Store::update_document(&mut tx, "ex", "b", &changed, None, &now, Rendering::Pending)
            .await
            .expect("update");
        tx.commit().await.expect("commit");
        assert_eq!(queued(&store).await, 1);
        assert_eq!(render_pending(&settings, &store).await.expect("render"), 1);
        let file = std::fs::read_to_string(settings.archive_dir.join(&b.path)).expect("file");
        assert!(file.contains("Second, corrected"), "{file}");
        store.close().await;
    }
}
