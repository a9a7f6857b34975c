//! `refresh_source`: fetch -> parse -> normalize -> store -> archive, for one source; and the
//! merged feed built from state. Cron (`fetch`) and the daemon drive the same functions.
//!
//! Sources are fetched and parsed concurrently, but their writes take turns: SQLite has one
//! writer, and one transaction per source keeps each source's changes all-or-nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::config::{Settings, Source};
use crate::error::{Error, Result};
use crate::fetch::{Fetched, Fetcher};
use crate::model::Article;
use crate::normalize::{self, FeedContext};
use crate::publish::{self, archive, atom};
use crate::store::{FeedMeta, FetchRecord, Store, StoredArticle};
use crate::text;

/// Highest numeric suffix tried when slugs clash.
const MAX_PATH_SUFFIX: u32 = 1000;

/// What one source's refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub new: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Entries left out (no title and no link).
    pub skipped: usize,
}

impl Counts {
    pub fn changed(&self) -> bool {
        self.new + self.updated > 0
    }
}

/// The result of refreshing one source.
#[derive(Debug)]
pub struct SourceReport {
    pub source: String,
    pub outcome: Result<Counts>,
}

/// Everything a run needs, shared by all sources.
#[derive(Debug, Clone)]
pub struct Pipeline {
    settings: Arc<Settings>,
    store: Store,
    fetcher: Fetcher,
    write_turn: Arc<Mutex<()>>,
}

impl Pipeline {
    pub fn new(settings: Arc<Settings>, store: Store, fetcher: Fetcher) -> Self {
        Self {
            settings,
            store,
            fetcher,
            write_turn: Arc::new(Mutex::new(())),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Refreshes `sources` with at most `fetch.concurrency` in flight; one report per source,
    /// in completion order. A failing source never stops the others.
    pub async fn refresh_all(&self, sources: &[Source]) -> Vec<SourceReport> {
        futures::stream::iter(sources)
            .map(|source| async move {
                SourceReport {
                    source: source.id.clone(),
                    outcome: self.refresh_source(source).await,
                }
            })
            .buffer_unordered(self.settings.fetch.concurrency)
            .collect()
            .await
    }

    /// Fetches, parses and archives one source, and records how it went.
    #[tracing::instrument(skip_all, fields(source = %source.id, url = %source.location))]
    pub async fn refresh_source(&self, source: &Source) -> Result<Counts> {
        let result = match self.prepare(source).await {
            Ok(prepared) => {
                let _turn = self.write_turn.lock().await;
                self.commit(source, prepared).await
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(counts) => info!(
                new = counts.new,
                updated = counts.updated,
                unchanged = counts.unchanged,
                skipped = counts.skipped,
                "refreshed"
            ),
            Err(e) => {
                warn!(error = %e, "refresh failed");
                let _turn = self.write_turn.lock().await;
                if let Err(record_error) = self.record_failure(source, e).await {
                    warn!(error = %record_error, "could not record the failure");
                }
            }
        }
        result
    }

    /// Everything that needs no write lock: fetch, parse, find the entries whose hash is new,
    /// and normalize and render those. Runs concurrently across sources.
    async fn prepare(&self, source: &Source) -> Result<Prepared> {
        let fetched = self.fetcher.fetch(source).await?;
        let parsed = parse_off_thread(source, fetched).await?;
        let mut counts = Counts::default();
        let mut changed = Vec::new();
        let mut seen_keys = HashSet::new();
        let mut conn = self.store.pool().acquire().await?;
        for (index, identity) in parsed.identities.iter().enumerate() {
            let entry = &parsed.feed.entries[index];
            let identity = match identity {
                Ok(identity) => identity,
                Err(skip) => {
                    warn!(entry = %entry.id, "skipped: {skip}");
                    counts.skipped += 1;
                    continue;
                }
            };
            if !seen_keys.insert(identity.key.as_str()) {
                warn!(key = %identity.key, "skipped: the feed repeats this entry");
                counts.skipped += 1;
                continue;
            }
            let stored = Store::article(&mut conn, &source.id, &identity.key).await?;
            if stored
                .as_ref()
                .is_some_and(|s| s.content_hash == identity.content_hash)
            {
                counts.unchanged += 1;
            } else {
                changed.push((index, identity.clone(), stored));
            }
        }
        drop(conn);

        let now = Utc::now();
        let labels = self.settings.labels.clone();
        let source_owned = source.clone();
        let parsed = Arc::new(parsed);
        let shared = Arc::clone(&parsed);
        let articles = tokio::task::spawn_blocking(move || {
            changed
                .into_iter()
                .map(|(index, identity, stored)| {
                    let first_seen = stored.as_ref().map_or(now, |s| s.first_seen);
                    let entry = &shared.feed.entries[index];
                    let article = normalize::normalize(
                        entry,
                        identity,
                        &source_owned,
                        &shared.ctx,
                        first_seen,
                    );
                    let bytes = archive::render(&article.doc, &labels);
                    PreparedArticle {
                        article,
                        bytes,
                        stored,
                        first_seen,
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Error::Parse {
            source_id: source.id.clone(),
            url: source.location.to_string(),
            reason: format!("normalizing stopped: {e}"),
        })?;
        let meta = parsed.meta.clone();
        Ok(Prepared {
            counts,
            articles,
            meta,
            now,
        })
    }

    async fn record_failure(&self, source: &Source, error: &Error) -> Result<()> {
        let url = source.location.to_string();
        let message = error.to_string();
        let record = FetchRecord {
            source: &source.id,
            url: &url,
            at: Utc::now(),
            status: "failed",
            error: Some(&message),
            meta: None,
        };
        let mut tx = self.store.begin().await?;
        Store::record_fetch(&mut tx, &record).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes a source's changed articles and its fetch record in one transaction. Files are
    /// renamed into place as they are written and flushed to disk together before the
    /// transaction commits, so state never points at a file that a crash could lose.
    async fn commit(&self, source: &Source, prepared: Prepared) -> Result<Counts> {
        let Prepared {
            mut counts,
            articles,
            meta,
            now,
        } = prepared;
        let mut tx = self.store.begin().await?;
        let mut wrote = false;
        for prepared in articles {
            let PreparedArticle {
                article,
                bytes,
                stored,
                first_seen,
            } = prepared;
            let path = match &stored {
                Some(s) => PathBuf::from(&s.path),
                None => self.allocate_path(&mut tx, &article).await?,
            };
            let full = self.settings.archive_dir.join(&path);
            wrote |= publish::write_atomic_deferred(&full, bytes.as_bytes())?;
            Store::upsert_article(&mut tx, &article, &path_to_store(&path), &first_seen, &now)
                .await?;
            if stored.is_some() {
                counts.updated += 1;
            } else {
                counts.new += 1;
            }
        }
        let url = source.location.to_string();
        let record = FetchRecord {
            source: &source.id,
            url: &url,
            at: now,
            status: "ok",
            error: None,
            meta: Some(&meta),
        };
        Store::record_fetch(&mut tx, &record).await?;
        if wrote {
            publish::sync_filesystem(&self.settings.archive_dir)?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// A free path for a new article: the template's, or with `-2`, `-3`, ... on clashes. A file
    /// already on disk is free only if it holds this same article (left by an interrupted run or
    /// an archive without state).
    async fn allocate_path(
        &self,
        conn: &mut sqlx::SqliteConnection,
        article: &Article,
    ) -> Result<PathBuf> {
        let slug = text::slug(&article.doc.original.title);
        let base = self
            .settings
            .path_template
            .render(&article.source, &article.doc.date, &slug)
            .ok_or_else(|| Error::Archive {
                path: self.settings.archive_dir.clone(),
                reason: format!("the path template leaves the archive folder for slug {slug:?}"),
            })?;
        for n in 1..=MAX_PATH_SUFFIX {
            let candidate = if n == 1 {
                base.clone()
            } else {
                archive::with_suffix(&base, n)
            };
            if Store::path_taken(conn, &path_to_store(&candidate)).await? {
                continue;
            }
            if self.free_on_disk(
                &self.settings.archive_dir.join(&candidate),
                &article.doc.link,
            ) {
                return Ok(candidate);
            }
        }
        Err(Error::Archive {
            path: self.settings.archive_dir.join(base),
            reason: format!("more than {MAX_PATH_SUFFIX} articles share this path"),
        })
    }

    fn free_on_disk(&self, path: &Path, link: &str) -> bool {
        match std::fs::read_to_string(path) {
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            Ok(existing) => archive::read(&existing, &self.settings.labels, &[])
                .is_ok_and(|doc| doc.link == link),
        }
    }

    /// Rebuilds the merged feed from state; returns whether the file changed.
    pub async fn publish_feed(&self) -> Result<bool> {
        let rows = self.store.newest(self.settings.feed.max_entries).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let path = self.settings.archive_dir.join(&row.path);
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "archived file is missing; left out of the feed");
                    continue;
                }
            };
            let doc = match archive::read(&text, &self.settings.labels, &[]) {
                Ok(doc) => doc,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "archived file is unreadable; left out of the feed");
                    continue;
                }
            };
            let source_id = row.source.clone();
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
        let bytes = atom::render(&self.settings.feed, &items);
        publish::write_atomic(&self.settings.feed_path, &bytes)
    }
}

/// A parsed feed, what its entries need from it, and each entry's identity (same order).
#[derive(Debug)]
struct Parsed {
    feed: feed_rs::model::Feed,
    ctx: FeedContext,
    meta: FeedMeta,
    identities: Vec<std::result::Result<normalize::EntryIdentity, normalize::Skip>>,
}

/// A source's work, ready to be written.
#[derive(Debug)]
struct Prepared {
    counts: Counts,
    articles: Vec<PreparedArticle>,
    meta: FeedMeta,
    now: chrono::DateTime<Utc>,
}

#[derive(Debug)]
struct PreparedArticle {
    article: Article,
    bytes: String,
    stored: Option<StoredArticle>,
    first_seen: chrono::DateTime<Utc>,
}

/// Parsing is CPU work; it runs on the blocking pool so fetches keep flowing.
async fn parse_off_thread(source: &Source, fetched: Fetched) -> Result<Parsed> {
    let source = source.clone();
    let url_text = source.location.to_string();
    let source_id = source.id.clone();
    tokio::task::spawn_blocking(move || {
        let feed =
            crate::parse::parse_feed(&fetched.body, fetched.url.as_ref()).map_err(|reason| {
                Error::Parse {
                    source_id: source.id.clone(),
                    url: source.location.to_string(),
                    reason,
                }
            })?;
        let ctx = FeedContext::new(&feed, fetched.url.as_ref());
        let meta = normalize::feed_meta(&feed, &source, &ctx);
        let identities = feed
            .entries
            .iter()
            .map(|entry| normalize::identify(entry, &source, &ctx))
            .collect();
        Ok(Parsed {
            feed,
            ctx,
            meta,
            identities,
        })
    })
    .await
    .map_err(|e| Error::Parse {
        source_id,
        url: url_text,
        reason: format!("the parser stopped: {e}"),
    })?
}

/// Paths are stored with `/` whatever the platform, so a state file moves between machines.
fn path_to_store(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
