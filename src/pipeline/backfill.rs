//! `gazette backfill`: a feed's older entries, from the history its documents link to (RFC
//! 5005): archived feeds' `prev-archive`, paged feeds' `next` (JSON Feed's `next_url`). Each
//! page goes through the same prepare and commit as a refresh, so its entries keep their own
//! dates and identities; the page's validators are written in the transaction that archives
//! its entries, and the next walk asks for each page conditionally. The source's own fetch
//! state (validators, schedule) is not touched: its next refresh goes on as before.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tracing::{info, warn};
use url::Url;

use super::commit::{Learnt, MAX_REWRITES};
use super::{Counts, Pipeline, body_hash, off_thread};
use crate::config::{Location, Source};
use crate::error::{Error, FetchFailure, Result};
use crate::fetch::FetchOutcome;
use crate::files;
use crate::store::{Backfilled, HistoryPage, Store};

/// How a backfill ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The oldest page links to nothing older: the whole history is archived.
    StartOfHistory,
    /// The page limit was reached; older pages remain.
    PageLimit,
    /// The feed is complete (`fh:complete`): it lists every entry there is, and has no
    /// history to walk.
    Complete,
    /// A page links back to one already walked.
    Loop(String),
    /// A page could not be fetched or read; what was walked before it stays archived.
    Failed(String),
}

impl Ended {
    /// How `status` and the command say it.
    pub fn describe(&self) -> String {
        match self {
            Self::StartOfHistory => "reached the start of the feed's history".to_owned(),
            Self::PageLimit => "stopped at the page limit; older pages remain".to_owned(),
            Self::Complete => "the feed is complete (fh:complete): it lists every entry".to_owned(),
            Self::Loop(url) => format!("stopped: {url} links back to a page already walked"),
            Self::Failed(error) => format!("failed: {error}"),
        }
    }
}

/// What a backfill did.
#[derive(Debug, Clone)]
pub struct BackfillReport {
    /// Documents walked, the feed itself included.
    pub pages: u32,
    /// Of those, the ones that answered with a body that was read.
    pub read: u32,
    /// What their entries did.
    pub counts: Counts,
    /// Articles removed because a complete feed no longer lists them.
    pub removed: usize,
    pub ended: Ended,
    /// The date of the source's oldest article now.
    pub oldest: Option<DateTime<Utc>>,
}

/// One page walked: where to go next, and what its entries did.
struct Step {
    older: Option<Location>,
    read: bool,
    counts: Counts,
    complete: bool,
    /// The keys a complete feed lists, when it was read.
    listed: Option<Vec<String>>,
}

impl Pipeline {
    /// Walks `source`'s history back from its feed, at most `max_pages` documents (the feed
    /// itself included), and archives the entries not archived yet. A page that fails ends the
    /// walk (the report says how); an error is returned only when state cannot be read or
    /// written.
    pub async fn backfill(&self, source: &Source, max_pages: u32) -> Result<BackfillReport> {
        // A backfill asks for old entries: the age and per-run caps meant to keep a feed's
        // first fetch small do not hold it back.
        let mut source = source.clone();
        source.filters.max_age = None;
        source.filters.max_per_run = None;
        let walked = self.store().history_pages(&source.id).await?;
        let state = self.store().source_state(&source.id).await?;
        let feed = state
            .as_ref()
            .and_then(|s| s.moved_to.as_deref())
            .and_then(|moved| Url::parse(moved).ok())
            .map_or_else(|| source.location.clone(), Location::Http);
        let was_complete = self
            .store()
            .backfills()
            .await?
            .get(&source.id)
            .is_some_and(|b| b.complete);
        let mut report = BackfillReport {
            pages: 0,
            read: 0,
            counts: Counts::default(),
            removed: 0,
            ended: Ended::StartOfHistory,
            oldest: None,
        };
        let mut page = feed.clone();
        let mut seen = HashSet::new();
        let mut complete = false;
        // The source's schedule holds for its history too: a server that failed (or asked to
        // be left alone) is not asked for pages before the source is due again.
        let now = self.clock().now();
        let resting = state.as_ref().and_then(|s| {
            if let Some(reason) = &s.disabled_reason {
                return Some(format!(
                    "the source is disabled ({reason}); fix its url or fetch it with --force"
                ));
            }
            s.next_due_at
                .filter(|due| s.consecutive_failures > 0 && *due > now)
                .map(|due| {
                    format!(
                        "the source is backing off after {} failures; its server is not asked \
                         again before {}",
                        s.consecutive_failures,
                        crate::format::format_date(&due)
                    )
                })
        });
        report.ended = match resting {
            Some(resting) => Ended::Failed(resting),
            None => loop {
                if report.pages >= max_pages {
                    break Ended::PageLimit;
                }
                let url = page.to_string();
                if !seen.insert(url.clone()) {
                    break Ended::Loop(url);
                }
                let mut rewrites = 0;
                let walked_page = loop {
                    match self
                        .walk_page(&source, &feed, &page, report.pages, walked.get(&url))
                        .await
                    {
                        // Written with a source that failed part-way: the page is read again.
                        Err(Error::RolledBack { .. }) if rewrites < MAX_REWRITES => rewrites += 1,
                        walked_page => break walked_page,
                    }
                };
                let step = match walked_page {
                    Ok(step) => step,
                    // The page's fault: the walk ends there, and says why.
                    Err(
                        e @ (Error::Fetch { .. }
                        | Error::HttpStatus { .. }
                        | Error::BotWall { .. }
                        | Error::Parse { .. }),
                    ) => break Ended::Failed(e.to_string()),
                    // State's or the archive's: nothing more can be archived.
                    Err(e) => return Err(e),
                };
                report.pages += 1;
                report.read += u32::from(step.read);
                add(&mut report.counts, step.counts);
                if report.pages == 1 {
                    // An unchanged feed is as complete as it was when it was read.
                    complete = if step.read {
                        step.complete
                    } else {
                        was_complete
                    };
                    if complete {
                        if let Some(listed) = step.listed {
                            report.removed = self.remove_unlisted(&source, &listed).await?;
                        }
                        break Ended::Complete;
                    }
                }
                match step.older {
                    Some(older) => page = older,
                    None => break Ended::StartOfHistory,
                }
            },
        };
        if let Ended::Failed(error) = &report.ended {
            warn!(source = %source.id, %error, "backfill stopped");
        }
        self.store()
            .record_backfill(
                &source.id,
                &source.location.to_string(),
                &Backfilled {
                    finished_at: self.clock().now(),
                    pages: report.pages,
                    ended: report.ended.describe(),
                    complete,
                },
            )
            .await?;
        report.oldest = self.store().oldest_article(&source.id).await?;
        Ok(report)
    }

    /// Fetches one page of the history (conditionally when it was walked before) and archives
    /// its entries; `position`: 0 for the feed itself, then 1, 2, … going back.
    async fn walk_page(
        &self,
        source: &Source,
        feed: &Location,
        page: &Location,
        position: u32,
        before: Option<&HistoryPage>,
    ) -> Result<Step> {
        let validators = before.map(|p| p.validators.clone()).unwrap_or_default();
        let outcome = self
            .fetcher()
            .fetch_linked(source, feed, page, &validators)
            .await?;
        let unchanged = |before: &HistoryPage| Step {
            older: before
                .older
                .as_deref()
                .and_then(|older| resolve(page, older).ok()),
            read: false,
            counts: Counts::default(),
            complete: false,
            listed: None,
        };
        let fetched = match (outcome, before) {
            (FetchOutcome::NotModified(_), Some(before)) => {
                info!(page = %page, "history page not modified");
                return Ok(unchanged(before));
            }
            (FetchOutcome::NotModified(_), None) => {
                return Err(Error::Fetch {
                    source_id: source.id.clone(),
                    url: page.to_string(),
                    kind: FetchFailure::Protocol,
                    reason: "answered 304 Not Modified to an unconditional request".to_owned(),
                });
            }
            (FetchOutcome::Body(fetched), _) => fetched,
        };
        let hash = body_hash(source, &fetched.body);
        if let Some(before) = before.filter(|b| b.body_hash.as_deref() == Some(hash.as_str())) {
            return Ok(unchanged(before));
        }
        let prepared = self.prepare(source, &fetched, false).await?;
        // Relative links resolve against where the page was found (after redirects).
        let base = match (&fetched.meta.url, page) {
            (Some(url), Location::Http(_)) => Location::Http(url.clone()),
            _ => page.clone(),
        };
        let older = match prepared.paging.older.as_deref() {
            Some(href) => Some(resolve(&base, href).map_err(|reason| Error::Fetch {
                source_id: source.id.clone(),
                url: page.to_string(),
                kind: FetchFailure::Protocol,
                reason,
            })?),
            None => None,
        };
        let complete = prepared.paging.complete;
        let listed = complete.then(|| prepared.paging.listed.clone());
        let held_back = prepared.held_back;
        let record = HistoryPage {
            url: page.to_string(),
            position,
            // Held-back entries must be read again: no validators, so the next walk reads it.
            validators: if held_back {
                Default::default()
            } else {
                fetched.meta.validators.clone()
            },
            body_hash: (!held_back).then_some(hash),
            older: older.as_ref().map(ToString::to_string),
            entries: u32::try_from(prepared.paging.entries).unwrap_or(u32::MAX),
            fetched_at: prepared.now,
        };
        let counts = self
            .commit(source, prepared, Learnt::History(record), None)
            .await?;
        info!(page = %page, new = counts.new, "history page archived");
        Ok(Step {
            older,
            read: true,
            counts,
            complete,
            listed,
        })
    }

    /// Removes the source's articles that its complete feed does not list (RFC 5005: what a
    /// complete feed leaves out is no longer part of it), their files after the records. A
    /// complete feed that lists nothing removes nothing: an empty document is more likely a
    /// broken server than a feed that deleted everything.
    async fn remove_unlisted(&self, source: &Source, listed: &[String]) -> Result<usize> {
        if listed.is_empty() {
            warn!(source = %source.id, "the complete feed lists no entries; nothing removed");
            return Ok(0);
        }
        let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
        let gone = {
            let _turn = self.write_turn.lock().await;
            let mut tx = self.store().begin().await?;
            let gone = Store::remove_unlisted(&mut tx, &source.id, &listed).await?;
            tx.commit().await?;
            gone
        };
        if gone.is_empty() || !self.writes_files() {
            return Ok(gone.len());
        }
        // A crash before the files go leaves them as orphans, which `verify` lists.
        let root = self.settings().archive_dir.clone();
        let count = gone.len();
        off_thread(&root.clone(), move || files::remove_all(&root, &gone)).await?;
        info!(source = %source.id, removed = count, "articles the complete feed no longer lists were removed");
        Ok(count)
    }
}

fn add(total: &mut Counts, counts: Counts) {
    total.new += counts.new;
    total.updated += counts.updated;
    total.unchanged += counts.unchanged;
    total.skipped += counts.skipped;
}

/// `href` as written in the page at `base`, made absolute: a web page links to web pages
/// (http and https only), a file to files or web pages.
fn resolve(base: &Location, href: &str) -> std::result::Result<Location, String> {
    let base_url = match base {
        Location::Http(url) => url.clone(),
        Location::File(path) => Url::from_file_path(path)
            .map_err(|()| format!("{} is not an absolute path", path.display()))?,
    };
    let url = base_url
        .join(href.trim())
        .map_err(|e| format!("the history link {href:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(Location::Http(url)),
        "file" if matches!(base, Location::File(_)) => url
            .to_file_path()
            .map(Location::File)
            .map_err(|()| format!("the history link {href:?} names no local file")),
        other => Err(format!(
            "the history link {href:?} uses {other}:, which is not fetched"
        )),
    }
}
