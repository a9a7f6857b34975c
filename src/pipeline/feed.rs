//! The merged feed, built from state and the archive files it points at.

use tracing::warn;

use super::Pipeline;
use crate::error::Result;
use crate::publish::{self, archive, atom};

impl Pipeline {
    /// Rebuilds the merged feed from state; returns whether the file changed.
    pub async fn publish_feed(&self) -> Result<bool> {
        let settings = self.settings();
        let rows = self.store().newest(settings.feed.max_entries).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let path = settings.archive_dir.join(&row.path);
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "archived file is missing; left out of the feed");
                    continue;
                }
            };
            let doc = match archive::read(&text, &settings.labels, &[]) {
                Ok(doc) => doc,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "archived file is unreadable; left out of the feed");
                    continue;
                }
            };
            let source_id = row.source;
            items.push(atom::FeedItem {
                atom_id: row.atom_id,
                doc,
                updated: row.updated_at,
                source: atom::SourceInfo {
                    id: row
                        .source_feed_id
                        .unwrap_or_else(|| format!("urn:gazette:source:{source_id}")),
                    title: row.source_title.unwrap_or_else(|| source_id.clone()),
                    link: row.source_link,
                },
            });
        }
        let bytes = atom::render(&settings.feed, &items);
        publish::write_atomic(&settings.feed_path, &bytes)
    }
}
