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
    let mut changed = 0;
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
            })
            .collect();
        let root = settings.archive_dir.clone();
        let written = tokio::task::spawn_blocking(move || {
            let changed = files::write_all_deferred(&root, &pending)?;
            if changed.iter().any(|c| *c) {
                files::sync_filesystem(&root)?;
            }
            Ok::<_, Error>(changed)
        })
        .await
        .map_err(|e| Error::io(&settings.archive_dir, std::io::Error::other(e)))??;
        changed += written.iter().filter(|c| **c).count();
        let mut tx = store.begin().await?;
        let marked: Vec<&Unrendered> = batch.iter().collect();
        Store::mark_rendered(&mut tx, &marked).await?;
        tx.commit().await?;
    }
    if changed > 0 {
        info!(files = changed, "archive files rendered from the records");
    }
    Ok(changed)
}
