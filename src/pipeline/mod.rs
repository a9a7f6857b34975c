//! `refresh_source`: fetch -> parse -> normalize -> store -> archive, for one source; and the
//! merged feed built from state. Cron (`fetch`) and the daemon drive the same functions.
//!
//! Sources are fetched and parsed concurrently, but their writes take turns: SQLite has one
//! writer, and one transaction per source keeps each source's changes all-or-nothing.

mod backfill;
mod commit;
mod cpu;
mod cycle;
mod enrichment;
mod prepare;
mod read;
pub mod recover;
mod rekey;
mod rerender;

pub use backfill::{BackfillReport, Ended};
pub use cycle::{CycleOptions, CycleReport};
pub use enrichment::{EnrichOptions, EnrichReport};
pub use read::{Parsed, parse_fetched, read_feed};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::config::{Location, Settings, Source};
use crate::enrich::Enricher;
use crate::error::{Error, FetchFailure, Result};
use crate::fetch::{FetchOutcome, Fetched, Fetcher, ResponseMeta, Validators};
use crate::normalize;
use crate::publish::{feeds, hooks};
use crate::schedule::{self, Due, Standing};
use crate::store::{FailureRecord, Rendering, SourceState, Store};
use commit::locked;

/// What one source's refresh did with the entries of a body it parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub new: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Entries left out (no title and no link, or repeated in the feed).
    pub skipped: usize,
}

/// How a source's refresh ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// The body was parsed and its entries archived as needed.
    Archived(Counts),
    /// The server answered 304 Not Modified.
    NotModified,
    /// The body was byte for byte the one processed last time; nothing was parsed.
    SameBody,
    /// Not fetched: the source is not due before this time.
    NotDue(DateTime<Utc>),
    /// Not fetched: the source is disabled (410 Gone) until its URL changes or `--force`.
    Disabled(String),
}

/// The result of refreshing one source.
#[derive(Debug)]
pub struct SourceReport {
    pub source: String,
    pub outcome: Result<Refresh>,
    /// How long the source took, fetch to stored result.
    pub elapsed: std::time::Duration,
}

/// How a run treats its sources.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Fetch sources that are not due, and disabled ones.
    pub force: bool,
    /// Sources not finished by then fail with a clear error.
    pub deadline: Option<Instant>,
    /// Archive new articles without waiting for enrichment (`enrich.hold` is not applied).
    pub no_enrich: bool,
}

/// Everything a run needs, shared by all sources.
#[derive(Debug, Clone)]
pub struct Pipeline {
    settings: Arc<Settings>,
    store: Store,
    fetcher: Fetcher,
    enricher: Option<Arc<Enricher>>,
    write_turn: Arc<Mutex<()>>,
    /// Sources being fetched and prepared, at most `fetch.concurrency` at once. A source gives
    /// its slot back when its work joins the commit queue, so that the next sources are
    /// fetched and parsed while the write turn writes it (see [`COMMIT_BACKLOG`]).
    work_slots: Arc<tokio::sync::Semaphore>,
    /// Prepared articles between their source's slot and their rows' write into a batch's
    /// transaction, at most [`WAITING_ARTICLES`]: the backlog is bounded by sources, and a
    /// source's feed may be long.
    waiting_articles: Arc<tokio::sync::Semaphore>,
    /// Sources' work waiting for the write turn (see `commit`).
    commit_queue: Arc<commit::CommitQueue>,
    /// Successes that parsed nothing, written later together (see `commit::Unparsed`).
    unparsed: Arc<commit::Unparsed>,
    /// Sources' settings fingerprints, written with them (see `commit::Fingerprints`).
    fingerprints: Arc<commit::Fingerprints>,
    /// Files rewritten by batches that were rolled back (see `commit::Rewritten`).
    rewritten: Arc<commit::Rewritten>,
    /// Failures that state could not record (a full disk, a damaged database): their count
    /// and next due time, by source id, kept here until state takes a record of the source.
    unrecorded: Arc<std::sync::Mutex<HashMap<String, Unrecorded>>>,
    /// The link labels as [`Pipeline::fingerprint`] hashes them, written out once: every
    /// source's commit asks for its fingerprint.
    labels_fingerprint: Arc<str>,
    /// Whether this process writes the files of the records it writes (`--role all`), or
    /// leaves them to the publisher (a worker).
    rendering: Rendering,
    /// The worker whose leases this pipeline's commits must hold (a worker only).
    lease_holder: Option<Arc<str>>,
    clock: Clock,
}

/// How many sources may wait for the write turn, or for the commit of the batch that wrote them,
/// per fetch slot. While the turn writes one batch, the next sources are fetched and parsed;
/// with no backlog the two took turns, each waiting for the other. A source waiting for the
/// turn holds only its prepared articles (bounded by [`WAITING_ARTICLES`]), and one waiting for
/// its batch's commit holds nothing more. With one per slot, the sources of a batch being
/// written used up the backlog until it committed, and parsing waited: two made a cold run of
/// 1,000 sources 7% faster on disk, for 5 MiB more at its peak. Three let a batch take the
/// sources that queue while its files flush (fewer, larger commits): 2–4% faster again, for
/// about 2 MiB, since the prepared articles stay bounded by [`WAITING_ARTICLES`] and a batch
/// drops its sources' search words once indexed.
const COMMIT_BACKLOG: usize = 3;

/// How many prepared articles may wait for the write turn at once, until their rows are in a
/// batch's transaction. Sixteen sources of common feeds of 50 entries fit (twice the 8 fetch
/// slots), so the backlog of a cold run is whole; sources of 200 entries wait four at a time,
/// which is what keeps a run of long feeds within its memory.
const WAITING_ARTICLES: usize = 800;

/// A failure state could not record: the count it would have stored and the next due time.
type Unrecorded = (u32, DateTime<Utc>);

impl<'a> From<&'a SourceState> for Standing<'a> {
    fn from(state: &'a SourceState) -> Self {
        Standing {
            url: &state.url,
            next_due_at: state.next_due_at,
            disabled_reason: state.disabled_reason.as_deref(),
        }
    }
}

impl Pipeline {
    /// Fails only when the configured enrichment cannot be set up (prompt files, client).
    pub fn new(settings: Arc<Settings>, store: Store, fetcher: Fetcher) -> Result<Self> {
        let enricher = Enricher::new(&settings.enrich)?;
        Ok(Self {
            labels_fingerprint: format!("{:?}", settings.labels).into(),
            work_slots: Arc::new(tokio::sync::Semaphore::new(settings.fetch.concurrency)),
            waiting_articles: Arc::new(tokio::sync::Semaphore::new(WAITING_ARTICLES)),
            settings,
            store,
            fetcher,
            enricher,
            write_turn: Arc::new(Mutex::new(())),
            commit_queue: Arc::default(),
            unparsed: Arc::default(),
            fingerprints: Arc::default(),
            rewritten: Arc::default(),
            unrecorded: Arc::default(),
            rendering: Rendering::Done,
            lease_holder: None,
            clock: Clock::system(),
        })
    }

    /// The same pipeline as a worker's: it writes article records and no file (the publisher
    /// renders them), and commits a source's results only while `worker` holds its lease.
    #[must_use]
    pub fn as_worker(mut self, worker: &str) -> Self {
        self.rendering = Rendering::Pending;
        self.lease_holder = Some(worker.into());
        self
    }

    /// The same pipeline (sharing its write turn and queues, its fetcher and its LLM client)
    /// under `settings`: a worker's batch of claimed sources, read with the publisher's shared
    /// settings (see [`Settings::for_worker`]).
    #[must_use]
    pub fn with_settings(&self, settings: Settings) -> Self {
        Self {
            labels_fingerprint: format!("{:?}", settings.labels).into(),
            settings: Arc::new(settings),
            ..self.clone()
        }
    }

    /// Whether this pipeline is a worker's whose lease on `source` ran out, checked (and on
    /// PostgreSQL the source's row locked) inside the transaction that would commit for it.
    /// Never for one process, which holds no leases.
    pub(super) async fn lost_lease(
        &self,
        conn: &mut crate::store::Conn,
        source: &str,
    ) -> Result<bool> {
        match self.lease_holder.as_deref() {
            Some(worker) => Ok(!Store::holds_lease(conn, worker, source, &self.clock.now()).await?),
            None => Ok(false),
        }
    }

    /// Whether this pipeline writes archive files itself.
    pub fn writes_files(&self) -> bool {
        self.rendering == Rendering::Done
    }

    /// The same pipeline going by `clock` (a manual one in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    pub fn enricher(&self) -> Option<&Enricher> {
        self.enricher.as_deref()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Refreshes `sources` with at most `fetch.concurrency` in flight; one report per source,
    /// in completion order. A failing source never stops the others.
    pub async fn refresh_all(&self, sources: &[Source], options: RunOptions) -> Vec<SourceReport> {
        self.refresh_all_with(sources, options, |_| {}).await
    }

    /// [`Pipeline::refresh_all`], calling `on_done` as each source finishes (for progress).
    pub async fn refresh_all_with(
        &self,
        sources: &[Source],
        options: RunOptions,
        on_done: impl Fn(&SourceReport),
    ) -> Vec<SourceReport> {
        // Every source's state in one query, not one each; if it fails, each source asks for
        // its own (and reports the failure as its own).
        let mut states = self.store.source_states().await.ok();
        // Owned sources and states: a closure over borrowed ones would make the future lose
        // `Send` (rustc's higher-ranked lifetime limits), and the daemon is spawned.
        let work: Vec<(Source, Option<Option<SourceState>>)> = sources
            .iter()
            .map(|s| (s.clone(), states.as_mut().map(|all| all.remove(&s.id))))
            .collect();
        let mut reports = futures::stream::iter(work)
            .map(|(source, known)| async move {
                let started = std::time::Instant::now();
                let refresh = self.refresh_source_from(&source, options, known);
                let outcome = match options.deadline {
                    None => refresh.await,
                    Some(deadline) => {
                        match tokio::time::timeout_at(deadline, refresh).await {
                            Ok(outcome) => outcome,
                            Err(_) => {
                                let error = Error::Fetch {
                                    source_id: source.id.clone(),
                                    url: source.location.to_string(),
                                    kind: FetchFailure::Deadline,
                                    reason: "the run's deadline passed before this source finished"
                                        .to_owned(),
                                };
                                // The failure counts like any other, so that a source that
                                // keeps running out of time backs off.
                                let state =
                                    self.store.source_state(&source.id).await.ok().flatten();
                                self.fail(&source, state.as_ref(), error).await
                            }
                        }
                    }
                };
                SourceReport {
                    source: source.id.clone(),
                    outcome,
                    elapsed: started.elapsed(),
                }
            })
            .buffer_unordered(self.settings.fetch.concurrency * (1 + COMMIT_BACKLOG))
            .inspect(|report| on_done(report))
            .collect::<Vec<_>>()
            .await;
        self.record_unparsed_now(&mut reports).await;
        reports
    }

    /// Writes the successes still queued (see `commit::Unparsed`); when that fails, their
    /// sources' reports become failures that say so.
    async fn record_unparsed_now(&self, reports: &mut [SourceReport]) {
        let Err(unrecorded) = self.write_unparsed(false).await else {
            return;
        };
        warn!(error = %unrecorded.error, sources = unrecorded.sources.len(), "fetch records could not be written");
        let message = unrecorded.error.to_string();
        for report in reports
            .iter_mut()
            .filter(|r| unrecorded.sources.contains(&r.source))
        {
            report.outcome = Err(Error::Commit(format!(
                "fetched, but state could not record it: {message}"
            )));
        }
    }

    /// Fetches, parses and archives one source if it is due (or `force`), and records how it
    /// went and when it is due next.
    pub async fn refresh_source(&self, source: &Source, options: RunOptions) -> Result<Refresh> {
        let refresh = self.refresh_source_from(source, options, None).await;
        match self.write_unparsed(false).await {
            Ok(()) => refresh,
            Err(unrecorded) => Err(Error::Commit(format!(
                "fetched, but state could not record it: {}",
                unrecorded.error
            ))),
        }
    }

    /// [`Pipeline::refresh_source`]; `known`: the source's stored state when the caller read it
    /// already (`Some(None)`: state has none).
    #[tracing::instrument(skip_all, fields(source = %source.id, url = %source.location))]
    async fn refresh_source_from(
        &self,
        source: &Source,
        options: RunOptions,
        known: Option<Option<SourceState>>,
    ) -> Result<Refresh> {
        // Never closed, so never an error; without a slot the source would still be fetched.
        let slot = self.work_slots.acquire().await.ok();
        let force = options.force;
        let state = self.state_for(source, known).await?;
        if !force {
            let configured = source.location.to_string();
            let not_fetched = match schedule::due(
                &configured,
                state.as_ref().map(Into::into),
                self.clock.now(),
            ) {
                // State could not record this source's last failure: the back-off it would
                // have recorded holds anyway, so a broken database does not make every tick
                // fetch every source again.
                Due::Now => self.unrecorded_until(&source.id).map(Refresh::NotDue),
                Due::At(at) => Some(Refresh::NotDue(at)),
                Due::Disabled(reason) => Some(Refresh::Disabled(reason)),
            };
            if let Some(refresh) = not_fetched {
                // Changed settings reach the archive on the next run, due or not.
                let rendered_with = state.as_ref().and_then(|s| s.fingerprint.as_deref());
                self.rerender_if_settings_changed(source, rendered_with, 0)
                    .await?;
                return Ok(refresh);
            }
        }
        let state = self.rekey_if_identity_changed(source, state).await?;
        let location = state
            .as_ref()
            .and_then(|s| s.moved_to.as_deref())
            .and_then(|moved| url::Url::parse(moved).ok())
            .map_or_else(|| source.location.clone(), Location::Http);
        let validators = state
            .as_ref()
            .map(|s| s.validators.clone())
            .unwrap_or_default();
        let remembered_delay = state.as_ref().and_then(|s| s.feed_delay);

        let mut slot = slot;
        let mut rewrites = 0;
        let result = loop {
            let outcome = match self
                .fetcher
                .fetch_source(source, &location, &validators)
                .await
            {
                Ok(outcome) => outcome,
                Err(e) => return self.fail(source, state.as_ref(), e).await,
            };
            let result = match outcome {
                FetchOutcome::NotModified(meta) => {
                    let validators = Validators {
                        etag: meta.validators.etag.clone().or(validators.etag.clone()),
                        last_modified: meta
                            .validators
                            .last_modified
                            .clone()
                            .or(validators.last_modified.clone()),
                    };
                    self.record_unparsed(
                        source,
                        &meta,
                        &validators,
                        "not-modified",
                        remembered_delay,
                    )
                    .await
                    .map(|()| Refresh::NotModified)
                }
                FetchOutcome::Body(fetched) => {
                    let slot = match slot.take() {
                        Some(slot) => Some(slot),
                        None => self.work_slots.acquire().await.ok(),
                    };
                    self.process_body(source, state.as_ref(), options, fetched, slot)
                        .await
                }
            };
            match result {
                // Written with a source that failed part-way: nothing of this one reached
                // state, so it is fetched and written again.
                Err(Error::RolledBack { failed, .. }) if rewrites < commit::MAX_REWRITES => {
                    rewrites += 1;
                    info!(with = %failed, "written again: the batch was rolled back");
                }
                result => break result,
            }
        };
        let result = match result {
            // Whatever the feed said, files shaped by settings that changed since are rendered
            // again from state.
            Ok(refresh) => {
                let written_new = match &refresh {
                    Refresh::Archived(counts) => counts.new,
                    _ => 0,
                };
                self.rerender_if_settings_changed(
                    source,
                    state.as_ref().and_then(|s| s.fingerprint.as_deref()),
                    written_new,
                )
                .await
                .map(|_| refresh)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(refresh) => {
                info!(?refresh, "refreshed");
                locked(&self.unrecorded).remove(&source.id);
                Ok(refresh)
            }
            Err(e) => self.fail(source, state.as_ref(), e).await,
        }
    }

    /// The source's stored state (`known`, or read now), forgotten when its configured URL
    /// changed since.
    async fn state_for(
        &self,
        source: &Source,
        known: Option<Option<SourceState>>,
    ) -> Result<Option<SourceState>> {
        let configured = source.location.to_string();
        let stored = match known {
            Some(known) => known,
            None => self.store.source_state(&source.id).await?,
        };
        match stored {
            Some(state) if state.url != configured => {
                info!(old = %state.url, new = %configured, "the configured URL changed; starting afresh");
                let _turn = self.write_turn.lock().await;
                self.store.reset_source(&source.id, &configured).await?;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    async fn process_body(
        &self,
        source: &Source,
        state: Option<&SourceState>,
        options: RunOptions,
        fetched: Fetched,
        slot: Option<tokio::sync::SemaphorePermit<'_>>,
    ) -> Result<Refresh> {
        let body_hash = body_hash(source, &fetched.body);
        if state.and_then(|s| s.body_hash.as_deref()) == Some(body_hash.as_str()) {
            self.record_unparsed(
                source,
                &fetched.meta,
                &fetched.meta.validators,
                "same-body",
                state.and_then(|s| s.feed_delay),
            )
            .await?;
            return Ok(Refresh::SameBody);
        }
        let mut prepared = self.prepare(source, &fetched, !options.no_enrich).await?;
        let root = self
            .writes_files()
            .then_some(self.settings.archive_dir.as_path());
        prepared.ready(&self.store, &self.settings, root).await?;
        let feed_delay = prepared.hints.requested(&self.settings.fetch);
        let held_back = prepared.held_back;
        let success = commit::Success {
            url: source.location.to_string(),
            at: prepared.now,
            status: "ok",
            http_status: fetched.meta.status,
            // Held-back articles must come again: no validators, so the next fetch is full.
            validators: if held_back {
                Validators::default()
            } else {
                fetched.meta.validators.clone()
            },
            body_hash: (!held_back).then_some(body_hash),
            moved_to: self.moved_to(&fetched.meta),
            meta: Some(prepared.meta.clone()),
            next_due_at: self.next_due(source, &fetched.meta, feed_delay),
            feed_delay: Some(feed_delay.unwrap_or_default()),
        };
        // Waiting for the write turn holds only the prepared articles: the body goes, and the
        // slot goes to the next source once there is room for them. A source longer than the
        // bound waits for all of it.
        let articles = prepared.articles.len().clamp(1, WAITING_ARTICLES);
        // Never closed, so never an error; the count is at most `WAITING_ARTICLES`.
        let room = match u32::try_from(articles) {
            Ok(n) => Arc::clone(&self.waiting_articles)
                .acquire_many_owned(n)
                .await
                .ok(),
            Err(_) => None,
        };
        drop(fetched);
        drop(slot);
        let counts = self
            .commit(source, prepared, commit::Learnt::Feed(success), room)
            .await?;
        Ok(Refresh::Archived(counts))
    }

    /// Records a success that parsed nothing (304, or the same body as last time), queued to
    /// be written with other sources' (see `commit::Unparsed`). `feed_delay` is what the feed
    /// asked for when it was last parsed.
    async fn record_unparsed(
        &self,
        source: &Source,
        meta: &ResponseMeta,
        validators: &Validators,
        status: &'static str,
        feed_delay: Option<Duration>,
    ) -> Result<()> {
        let success = commit::Success {
            url: source.location.to_string(),
            at: self.clock.now(),
            status,
            http_status: meta.status,
            validators: validators.clone(),
            body_hash: None,
            moved_to: self.moved_to(meta),
            meta: None,
            next_due_at: self.next_due(source, meta, feed_delay),
            feed_delay: None,
        };
        self.defer(source, success).await;
        Ok(())
    }

    /// Of every setting that shapes the source's files: its own (rewrites, extraction, tags,
    /// author, language) and the link labels. A record made under another fingerprint is
    /// rendered again.
    pub(crate) fn fingerprint(&self, source: &Source) -> String {
        let mut hasher = Sha256::new();
        hasher.update(normalize::source_fingerprint(source).as_bytes());
        hasher.update([0]);
        hasher.update(self.labels_fingerprint.as_bytes());
        hex::encode(&hasher.finalize()[..16])
    }

    /// [`Pipeline::fingerprint`] of a configured source id (an unknown id has none to match).
    pub(crate) fn fingerprint_of(&self, source: &str) -> String {
        self.settings
            .sources
            .iter()
            .find(|s| s.id == source)
            .map(|s| self.fingerprint(s))
            .unwrap_or_default()
    }

    /// Writes every configured feed file from state; returns whether any changed. When one
    /// did, the WebSub hubs are pinged and the `on_publish` command runs (their failures are
    /// logged only). Refuses to shrink the merged feed while the archive holds articles that
    /// state does not know.
    pub async fn publish_feed(&self) -> Result<bool> {
        let written = feeds::write_all(&self.settings, &self.store).await?;
        let changed = !written.changed.is_empty();
        if changed {
            hooks::after_publish(&self.settings.feed).await;
        }
        Ok(changed)
    }

    /// Drops fetched pages and cached answers older than `state.keep_pages` and
    /// `state.keep_answers`.
    pub async fn prune(&self) -> Result<crate::store::Pruned> {
        let before = |keep: Duration| {
            (!keep.is_zero())
                .then(|| chrono::Duration::from_std(keep).ok())
                .flatten()
                .map(|keep| self.clock.now() - keep)
        };
        let _turn = self.write_turn.lock().await;
        let pruned = self
            .store
            .prune(
                before(self.settings.keep_pages),
                before(self.settings.keep_answers),
            )
            .await?;
        if pruned != crate::store::Pruned::default() {
            info!(
                pages = pruned.pages,
                answers = pruned.answers,
                "old state pruned"
            );
        }
        Ok(pruned)
    }

    fn moved_to(&self, meta: &ResponseMeta) -> Option<String> {
        let moved = meta.moved_permanently_to.as_ref()?;
        info!(to = %moved, "the feed moved permanently; later fetches use the new URL");
        Some(moved.to_string())
    }

    fn next_due(
        &self,
        source: &Source,
        meta: &ResponseMeta,
        feed_delay: Option<Duration>,
    ) -> DateTime<Utc> {
        schedule::next_after_success(
            self.clock.now(),
            source.interval,
            &meta.cache,
            feed_delay,
            &self.settings.fetch,
        )
    }

    /// Records a failure (with back-off, and disabling on 410) and hands the error back.
    async fn fail(
        &self,
        source: &Source,
        state: Option<&SourceState>,
        error: Error,
    ) -> Result<Refresh> {
        // The caller reports the failure (the summary of `fetch`, the daemon's log); this is
        // the detail for `-v`.
        info!(error = %error, "refresh failed");
        let failures = state
            .map_or(0, |s| s.consecutive_failures)
            .max(self.unrecorded_failures(&source.id))
            .saturating_add(1);
        let now = self.clock.now();
        let url = source.location.to_string();
        let message = error.to_string();
        let http_status = match &error {
            Error::HttpStatus { status, .. } => Some(*status),
            _ => None,
        };
        let kind = error.fetch_failure();
        let error_kind = kind.map(|k| k.label());
        let record = FailureRecord {
            source: &source.id,
            url: &url,
            at: now,
            error: &message,
            error_kind: error_kind.as_deref(),
            http_status,
            next_due_at: schedule::next_after_failure(
                now,
                source.interval,
                failures,
                error.retry_after(),
                kind.is_some_and(|k| !k.is_transient()),
                &self.settings.fetch,
            ),
            disabled_reason: error.is_gone().then_some("gone: the server answered 410"),
        };
        let recorded = async {
            let _turn = self.write_turn.lock().await;
            // A success queued before the failure (a 304, then a failed re-render) must not
            // be written after it.
            self.forget_unparsed(&source.id);
            let mut tx = self.store.begin().await?;
            // A worker whose lease ran out leaves the source to the worker that has it now.
            if self.lost_lease(&mut tx, &source.id).await? {
                return Ok(());
            }
            Store::record_failure(&mut tx, &record).await?;
            tx.commit().await?;
            Ok::<(), Error>(())
        };
        let recorded = recorded.await;
        let mut unrecorded = locked(&self.unrecorded);
        match recorded {
            Ok(()) => {
                unrecorded.remove(&source.id);
            }
            Err(record_error) => {
                warn!(error = %record_error, "could not record the failure");
                unrecorded.insert(source.id.clone(), (failures, record.next_due_at));
            }
        }
        Err(error)
    }

    /// When a source whose failure state could not record is due again, if that is later.
    fn unrecorded_until(&self, source: &str) -> Option<DateTime<Utc>> {
        let now = self.clock.now();
        locked(&self.unrecorded)
            .get(source)
            .map(|(_, due)| *due)
            .filter(|due| *due > now)
    }

    fn unrecorded_failures(&self, source: &str) -> u32 {
        locked(&self.unrecorded)
            .get(source)
            .map_or(0, |(failures, _)| *failures)
    }
}

/// Runs blocking file work (`work`, about `path`) on tokio's blocking pool, so that the async
/// threads go on fetching and serving meanwhile. The work starts at once, not when the result
/// is first awaited, so the caller may do other work meanwhile.
fn off_thread<T: Send + 'static>(
    path: &std::path::Path,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> impl Future<Output = Result<T>> + Send + 'static {
    let running = tokio::task::spawn_blocking(work);
    let path = path.to_owned();
    async move { finished(running, &path).await }
}

/// The result of blocking work (about `path`) started on tokio's blocking pool, once it ends.
async fn finished<T>(
    running: tokio::task::JoinHandle<Result<T>>,
    path: &std::path::Path,
) -> Result<T> {
    running
        .await
        .map_err(|e| Error::io(path, std::io::Error::other(e)))?
}

/// Identifies a body as processed under this source's configuration: the same bytes under a
/// changed configuration must be processed again.
fn body_hash(source: &Source, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(normalize::source_fingerprint(source).as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hex::encode(hasher.finalize())
}
