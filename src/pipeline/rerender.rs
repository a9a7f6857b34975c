//! Files rendered again from state: when the settings that shape a source's files change
//! (rewrites, extraction, tags, labels), and on `gazette build --rerender`. The record keeps the
//! entry as fetched, so the new settings apply without fetching the feed; LLM sections are kept
//! as they are.

use tracing::info;

use super::{Pipeline, off_thread};
use crate::config::Source;
use crate::error::Result;
use crate::files;
use crate::model::Document;
use crate::normalize::{self, EntryIdentity, FetchedEntry, normalize_tags};
use crate::publish::archive;
use crate::store::{ArticleRecord, RecordWrite, Selection, Store};

/// Records rendered per transaction.
const BATCH: usize = 200;

impl Pipeline {
    /// Brings the source's files in line with its current settings when they changed since its
    /// records were rendered (`rendered_with`, as the source's state had it when its refresh
    /// began); returns how many files changed. `written_new`: how many records the refresh
    /// just wrote as new, all with the current settings.
    pub async fn rerender_if_settings_changed(
        &self,
        source: &Source,
        rendered_with: Option<&str>,
        written_new: usize,
    ) -> Result<usize> {
        let fingerprint = self.fingerprint(source);
        if rendered_with == Some(fingerprint.as_str()) {
            return Ok(0);
        }
        // A source whose every record the refresh just wrote has none shaped by other
        // settings. A first run's sources have no fingerprint on record, and looking through
        // their records read back every row each one wrote (a twentieth of a cold run's CPU);
        // counting them reads their index, not their rows. (The count of a source marked
        // removed is none: its records are looked through, as before.)
        let all_just_written = written_new > 0 && {
            let records = self.store().count(Selection::Source(&source.id)).await?;
            u64::try_from(written_new).is_ok_and(|written| written == records)
        };
        let mut changed = 0;
        let mut stale = if all_just_written {
            Vec::new()
        } else {
            self.stale(source, &fingerprint).await?
        };
        while !stale.is_empty() {
            changed += self.rerender_records(source, stale).await?;
            stale = self.stale(source, &fingerprint).await?;
        }
        // Recorded with the next write rather than in a transaction of its own (one per
        // source of a first run): losing it to a crash costs only this look again.
        self.defer_fingerprint(&source.id, fingerprint);
        if changed > 0 {
            info!(source = %source.id, files = changed, "settings changed: files rendered again from state");
        }
        Ok(changed)
    }

    /// The next records of `source` shaped by other settings than `fingerprint`.
    async fn stale(&self, source: &Source, fingerprint: &str) -> Result<Vec<ArticleRecord>> {
        self.store()
            .stale_records(&source.id, fingerprint, BATCH)
            .await
    }

    /// Renders every file of the configured sources again from state; returns how many changed.
    pub async fn rerender_all(&self) -> Result<usize> {
        let mut changed = 0;
        for source in &self.settings().sources {
            let mut after = String::new();
            loop {
                let records = self
                    .store()
                    .records_after(&after, BATCH, Some(&source.id), true)
                    .await?;
                let Some(last) = records.last() else {
                    break;
                };
                after = last.path.clone();
                changed += self.rerender_records(source, records).await?;
            }
        }
        Ok(changed)
    }

    /// Renders `records` again under the source's current settings, in one transaction.
    async fn rerender_records(
        &self,
        source: &Source,
        records: Vec<ArticleRecord>,
    ) -> Result<usize> {
        let fingerprint = self.fingerprint(source);
        let mut rendered = Vec::with_capacity(records.len());
        for record in records {
            rendered.push(self.rerendered(source, record, &fingerprint).await?);
        }
        let _turn = self.write_turn.lock().await;
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        let mut changed = 0;
        for mut record in rendered {
            let brought = Store::alias_tags(&mut tx, &record.source, &record.key).await?;
            record.doc.tags =
                normalize_tags(record.doc.tags.iter().chain(&brought).map(String::as_str));
            let wrote = if self.writes_files() {
                let bytes =
                    archive::render_article(self.settings(), record.guid.as_deref(), &record.doc);
                let root = self.settings().archive_dir.clone();
                let path = root.join(&record.path);
                off_thread(&path.clone(), move || {
                    files::write_atomic_deferred(&root, &path, bytes.as_bytes())
                })
                .await?
            } else {
                // The publisher renders it; whether its bytes change is its to find out.
                true
            };
            if wrote {
                record.updated_at = now;
                changed += 1;
            }
            Store::write_articles(&mut tx, &[RecordWrite::new(&record, wrote)], self.rendering)
                .await?;
        }
        if changed > 0 && self.writes_files() {
            let dir = self.settings().archive_dir.clone();
            off_thread(&dir.clone(), move || files::sync_filesystem(&dir)).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// One record normalized again from its fetched entry under the current settings. A record
    /// without one (rebuilt from a file) keeps its document and takes only the new labels.
    async fn rerendered(
        &self,
        source: &Source,
        record: ArticleRecord,
        fingerprint: &str,
    ) -> Result<ArticleRecord> {
        let Some(fetched) = record.entry.as_deref().and_then(FetchedEntry::from_json) else {
            return Ok(ArticleRecord {
                fingerprint: record.fingerprint.as_ref().map(|_| fingerprint.to_owned()),
                ..record
            });
        };
        let full_text = match (
            &source.extract,
            normalize::entry_link(&fetched.entry, &fetched.ctx),
        ) {
            (Some(rules), Some(link)) => self.full_text(source, rules, &link).await?,
            _ => None,
        };
        let identity = EntryIdentity {
            key: record.key.clone(),
            content_hash: record.content_hash.clone(),
        };
        let fresh = normalize::normalize(
            &fetched.entry,
            identity,
            source,
            &fetched.ctx,
            record.first_seen,
            full_text.as_ref().map(|e| e.html.as_str()),
        );
        let original = fresh.doc.original.clone();
        let doc = if record.doc.translations.is_empty() {
            Document {
                // Filed under its date for good.
                date: record.doc.date,
                ..fresh.doc
            }
        } else {
            // The LLM sections stay: they were written from the same entry.
            Document {
                date: record.doc.date,
                translations: record.doc.translations.clone(),
                original: record.doc.original.clone(),
                ..fresh.doc
            }
        };
        Ok(ArticleRecord {
            doc,
            original: Some(original),
            atom_id: fresh.atom_id,
            bylines: fresh.bylines,
            enclosures: fresh.enclosures,
            fingerprint: Some(fingerprint.to_owned()),
            ..record
        })
    }
}
