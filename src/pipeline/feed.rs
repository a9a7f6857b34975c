//! The merged feed, built from state and the archive files it points at, and what runs after it
//! changes.

use tracing::warn;

use super::Pipeline;
use crate::config::Settings;
use crate::error::Result;
use crate::model::Document;
use crate::publish::{self, archive, atom, hooks};
use crate::store::Store;

/// Which articles a feed holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FeedFilter<'a> {
    #[default]
    All,
    Source(&'a str),
    Tag(&'a str),
}

/// How many rows a tag feed looks through at most to find its entries.
const TAG_SCAN_LIMIT: usize = 5000;

/// The newest `settings.feed.max_entries` articles matching `filter`, newest first.
pub async fn feed_items(
    settings: &Settings,
    store: &Store,
    filter: FeedFilter<'_>,
) -> Result<Vec<atom::FeedItem>> {
    let wanted = settings.feed.max_entries;
    let source = match filter {
        FeedFilter::Source(id) => Some(id),
        _ => None,
    };
    let page = if matches!(filter, FeedFilter::Tag(_)) {
        wanted.max(200)
    } else {
        wanted
    };
    let mut items = Vec::with_capacity(wanted);
    let mut offset = 0;
    while items.len() < wanted && offset < TAG_SCAN_LIMIT {
        let rows = store.newest(page, source, offset).await?;
        let exhausted = rows.len() < page;
        offset += rows.len();
        for row in rows {
            let Some(doc) = read_document(settings, &row.path) else {
                continue;
            };
            if let FeedFilter::Tag(tag) = filter
                && !doc.tags.iter().any(|t| t == tag)
            {
                continue;
            }
            let source_id = row.source;
            items.push(atom::FeedItem {
                atom_id: row.atom_id,
                doc,
                updated: row.updated_at,
                path: row.path,
                source: atom::SourceInfo {
                    id: row
                        .source_feed_id
                        .unwrap_or_else(|| format!("urn:gazette:source:{source_id}")),
                    title: row.source_title.unwrap_or_else(|| source_id.clone()),
                    link: row.source_link,
                    key: source_id,
                },
                bylines: row.bylines,
                enclosures: row.enclosures,
            });
            if items.len() == wanted {
                break;
            }
        }
        if exhausted || !matches!(filter, FeedFilter::Tag(_)) {
            break;
        }
    }
    Ok(items)
}

fn read_document(settings: &Settings, rel: &str) -> Option<Document> {
    let path = settings.archive_dir.join(rel);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "archived file is missing; left out of the feed");
            return None;
        }
    };
    match archive::read(&text, &settings.labels, &[]) {
        Ok(doc) => Some(doc),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "archived file is unreadable; left out of the feed");
            None
        }
    }
}

impl Pipeline {
    /// Rebuilds the merged feed from state; returns whether the file changed. When it did, the
    /// WebSub hubs are pinged and the `on_publish` command runs; their failures are logged only.
    pub async fn publish_feed(&self) -> Result<bool> {
        let settings = self.settings();
        let items = feed_items(settings, self.store(), FeedFilter::All).await?;
        let bytes = atom::render(&settings.feed, &items);
        let changed = publish::write_atomic(&settings.feed_path, &bytes)?;
        if changed {
            hooks::after_publish(&settings.feed).await;
        }
        Ok(changed)
    }
}
