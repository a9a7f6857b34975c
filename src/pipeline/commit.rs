//! The serialized part of a refresh: the changed articles of the sources whose work is ready and
//! what their fetches learnt, written together. Files are renamed into place as they are
//! written and flushed to disk together before the transaction commits, so state (validators
//! included) never claims a file that a crash could lose. A source that fails part-way rolls
//! its batch back, so each source's changes stay all-or-nothing; the others are written again.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::prepare::{EnrichmentStep, Prepared, PreparedArticle};
use super::{Pipeline, finished, off_thread};
use crate::config::Source;
use crate::error::{Error, Result};
use crate::files;
use crate::model::{Article, FeedMeta, Validators};
use crate::normalize::normalize_tags;
use crate::publish::archive;
use crate::store::{
    ArticleRecord, CanonicalMatch, HistoryPage, Lookups, RecordWrite, Store, SuccessRecord, Writer,
};
use tokio::sync::oneshot;
use tracing::info;

/// Highest numeric suffix tried when slugs clash.
const MAX_PATH_SUFFIX: u32 = 1000;

/// What a successful fetch leaves in state besides its articles, owned so that it can wait in
/// the commit queue (see [`SuccessRecord`] for the fields).
#[derive(Debug)]
pub(super) struct Success {
    pub url: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub status: &'static str,
    pub http_status: Option<u16>,
    pub validators: Validators,
    pub body_hash: Option<String>,
    pub moved_to: Option<String>,
    pub meta: Option<FeedMeta>,
    pub next_due_at: chrono::DateTime<chrono::Utc>,
    pub feed_delay: Option<std::time::Duration>,
}

impl Success {
    fn record<'a>(&'a self, source: &'a str) -> SuccessRecord<'a> {
        SuccessRecord {
            source,
            url: &self.url,
            at: self.at,
            status: self.status,
            http_status: self.http_status,
            validators: &self.validators,
            body_hash: self.body_hash.as_deref(),
            moved_to: self.moved_to.as_deref(),
            meta: self.meta.as_ref(),
            next_due_at: self.next_due_at,
            feed_delay: self.feed_delay,
        }
    }
}

/// What the fetch behind a source's articles learnt, written with them.
#[derive(Debug)]
pub(super) enum Learnt {
    /// The source's feed: validators, next due time, the feed's own fields.
    Feed(Success),
    /// A page of the feed's history, walked by `backfill`; the source's own fetch state stays
    /// as it is.
    History(HistoryPage),
}

/// One source's work waiting for its turn to be written: its articles and what its fetch
/// learnt.
#[derive(Debug)]
pub(super) struct CommitJob {
    source: Source,
    prepared: Prepared,
    learnt: Learnt,
    reply: oneshot::Sender<Result<super::Counts>>,
    /// The source's room in the backlog of prepared articles, if it took some (see
    /// `WAITING_ARTICLES`).
    room: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What writing one source's work did.
struct SourceWritten {
    counts: super::Counts,
    /// Some file changed.
    wrote: bool,
    /// The search words of its records, by archive path, to index.
    words: Vec<(String, String)>,
}

/// What the sources of a batch wrote so far, for the rest of the batch and its end.
#[derive(Default)]
struct BatchSoFar {
    /// Each source's answer, sent once the batch commits or fails.
    replies: Vec<(
        oneshot::Sender<Result<super::Counts>>,
        Result<super::Counts>,
    )>,
    /// What their fetches learnt, recorded together after the last source: one statement for
    /// the batch rather than a trip to the database each.
    fetched: Vec<(String, Success)>,
    /// The search words by path of the sources written since the last indexing, indexed
    /// together: one statement per 500 records rather than one per source. Dropped once
    /// indexed, so that a batch that grows while its files flush holds only its new ones.
    words: Vec<(String, String)>,
    /// How many records the batch wrote so far.
    records: usize,
    /// The files they placed, which no state will point at if the batch fails.
    placed: Placed,
    /// Whether they placed files since the batch's flush under way began.
    unflushed: bool,
}

/// Records after which a batch takes no more sources from the queue and commits. A batch takes
/// whatever sources queued while it was being written, so it ends when the queue is empty, or
/// here. Each commit flushes the files to disk and writes every page the batch touched once;
/// the indexes' pages, spread over the whole archive, are most of them. Batches of the three
/// sources that had queued meanwhile committed 314 times in a cold run of 1,000 sources, and
/// the flushes and commits were a third of the write turn; taking the sources that queue
/// during the batch too cut the commits to about 115 and the run by a tenth. Sources wait
/// longer for their answer, holding only it: each one's articles are in state already.
const BATCH_RECORDS: usize = 2_000;

/// How many times a source is written again after batches rolled back by other sources'
/// failures ([`Error::RolledBack`]). Each such failure is another source's, reported as its
/// own, so a run meets few of them.
pub(super) const MAX_REWRITES: u32 = 3;

/// Batches written on the writer's connection before it goes back to its pool (see
/// [`Store::writer`]).
const WRITER_HELD_BATCHES: usize = 4;

/// Sources whose work waits to be written; whoever takes the write turn writes them all, in
/// batches of about [`BATCH_RECORDS`] at most.
pub(super) type CommitQueue = std::sync::Mutex<std::collections::VecDeque<CommitJob>>;

/// Successes that parsed nothing (a 304, the same body as before), by source id. Nobody waits
/// for them: they are written with the next batch of articles, or when
/// [`UNPARSED_BATCH`] have gathered, or at the end of the run. Losing them to a crash costs
/// only a fetch that asks again; writing each in a transaction of its own cost most of a
/// warm run.
pub(super) type Unparsed = std::sync::Mutex<Vec<(String, Success)>>;

/// Sources whose records are all rendered with the settings of a fingerprint, by source id:
/// the fingerprint is written with the next batch, or with the unparsed successes. Losing one
/// to a crash costs only a look for records to render again; a transaction of its own for
/// each source cost a first run a write turn per source.
pub(super) type Fingerprints = std::sync::Mutex<Vec<(String, String)>>;

/// Archive files of stored records that a batch rewrote with new bytes before it was rolled
/// back: state still holds their old records, so the next write of each counts as a change
/// (and moves the entry's `updated`) although the bytes on disk are the new ones already.
pub(super) type Rewritten = std::sync::Mutex<HashSet<PathBuf>>;

/// The archive files a source's commit placed, which a batch rolled back answers for.
#[derive(Default)]
struct Placed {
    /// New files: no record points at them once the batch is rolled back, so they go.
    created: Vec<PathBuf>,
    /// Files of stored records given new bytes (see [`Rewritten`]).
    rewritten: Vec<PathBuf>,
}

impl Placed {
    fn append(&mut self, other: &mut Placed) {
        self.created.append(&mut other.created);
        self.rewritten.append(&mut other.rewritten);
    }
}

/// How many unparsed successes make a transaction of their own.
const UNPARSED_BATCH: usize = 256;

/// Why unparsed successes could not be written, and whose they were.
#[derive(Debug)]
pub(super) struct Unrecorded {
    pub sources: Vec<String>,
    pub error: Error,
}

pub(super) fn locked<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pipeline {
    /// Writes a source's work together with whatever other sources queued meanwhile: their
    /// files, one flush to disk for all of them, then one transaction. A flush and a commit per
    /// source would cost more than the rest of a cold run. When one source fails part-way, the
    /// others in its batch fail with [`Error::RolledBack`], and their callers run them again.
    ///
    /// `room`, the source's room in the backlog of prepared articles, is given back as soon as
    /// its rows are in the batch's transaction: from then on its articles take no memory here,
    /// and the next sources are prepared while the batch flushes the files and commits. Held
    /// until the commit, the room of a whole batch stayed taken while it was written, and
    /// parsing waited for it.
    pub(super) async fn commit(
        &self,
        source: &Source,
        prepared: Prepared,
        learnt: Learnt,
        room: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<super::Counts> {
        let (reply, done) = oneshot::channel();
        locked(&self.commit_queue).push_back(CommitJob {
            source: source.clone(),
            prepared,
            learnt,
            reply,
            room,
        });
        let turn = Arc::clone(&self.write_turn).lock_owned().await;
        // `None` when an earlier holder of the turn wrote this job with its own. The batches
        // are written by a task of its own, so that a source given up on (the run's deadline)
        // does not break off the other sources' writes; it writes until the queue is empty, so
        // that no job waits on an owner that gave up.
        if let Some(first) = self.next_job() {
            let this = self.clone();
            tokio::spawn(async move {
                let _turn = turn;
                let mut first = Some(first);
                let mut writer = None;
                let mut batches = 0;
                while let Some(job) = first.take().or_else(|| this.next_job()) {
                    this.commit_jobs(&mut writer, job).await;
                    batches += 1;
                    // The writer's connection goes back now and then, for the process's
                    // other writers (failures, published feeds) to have their turn.
                    if batches % WRITER_HELD_BATCHES == 0 {
                        writer = None;
                    }
                }
            });
        }
        done.await.map_err(|_| {
            Error::Commit(
                "state database: the batch this source was written with stopped".to_owned(),
            )
        })?
    }

    /// The job that has waited longest in the queue.
    fn next_job(&self) -> Option<CommitJob> {
        locked(&self.commit_queue).pop_front()
    }

    /// Writes `first`, and the jobs that queue meanwhile, in one transaction on `writer`, the
    /// writer's connection, taken when `None` and given back (`None` again) when the batch
    /// fails. The batch takes jobs until the queue is empty or it holds [`BATCH_RECORDS`], and
    /// again while its files' flush to disk runs.
    async fn commit_jobs(&self, writer: &mut Option<Writer>, first: CommitJob) {
        // Every source waits for this turn: how long each batch holds it tells what bounds a
        // large run (`RUST_LOG=gazette::pipeline::commit=debug`).
        let started = std::time::Instant::now();
        let mut batch = BatchSoFar::default();
        // Taken when the batch is ready for it.
        let mut next = Some(first);
        // The unparsed successes and fingerprints waiting meanwhile ride along in the same
        // transaction.
        let unparsed = std::mem::take(&mut *locked(&self.unparsed));
        let fingerprints = std::mem::take(&mut *locked(&self.fingerprints));
        let written = async {
            let conn = match writer {
                Some(conn) => conn,
                None => writer.insert(self.store().writer().await?),
            };
            let mut tx = self.store().begin_on(conn).await?;
            // The flush of the files placed before it began (files durable before the state
            // that points at them).
            let archive_dir = self.settings().archive_dir.clone();
            let mut flush: Option<tokio::task::JoinHandle<Result<()>>> = None;
            loop {
                self.write_queued(&mut tx, &mut next, &mut batch).await?;
                if batch.unflushed {
                    // A flush under way when these files were placed may miss them: the next
                    // begins once it ends.
                    if let Some(running) = flush.take() {
                        finished(running, &archive_dir).await?;
                    }
                    let dir = archive_dir.clone();
                    flush = Some(tokio::task::spawn_blocking(move || {
                        files::sync_filesystem(&dir)
                    }));
                    batch.unflushed = false;
                }
                // Taken out of the batch: once indexed they are dropped, not held to its end.
                let words = std::mem::take(&mut batch.words);
                let unindexed: Vec<(&str, &str)> = words
                    .iter()
                    .map(|(path, words)| (path.as_str(), words.as_str()))
                    .collect();
                Store::index_words(&mut tx, &unindexed).await?;
                // The flush takes longer than the rows: the sources that queued meanwhile join
                // the batch while it runs, rather than wait for it and then make a batch (a
                // commit, a flush) of their own. Their files take one more flush, shorter.
                let flushing = flush.as_ref().is_some_and(|f| !f.is_finished());
                if !flushing
                    || batch.records >= BATCH_RECORDS
                    || locked(&self.commit_queue).is_empty()
                {
                    break;
                }
            }
            let fetched: Vec<_> = batch
                .fetched
                .iter()
                .map(|(source, success)| success.record(source))
                .collect();
            self.write_successes_in(&mut tx, &unparsed, fetched, &fingerprints)
                .await?;
            let records = batch.records;
            if let Some(running) = flush {
                finished(running, &archive_dir).await?;
            }
            tx.commit().await?;
            self.store().checkpoint_in_background(records);
            Ok::<(), Error>(())
        }
        .await;
        tracing::debug!(
            sources = batch.replies.len(),
            ok = written.is_ok(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "batch written"
        );
        // `next` is left only when the batch failed before it reached its first source (no
        // connection, no transaction): each source queued would fail the same way, one batch
        // after another (each waiting out the database's busy timeout), so they all fail with
        // it. A batch that failed later leaves the queue to the next.
        if let Some(first) = next {
            let queued = std::mem::take(&mut *locked(&self.commit_queue));
            batch.replies.extend(
                std::iter::once(first)
                    .chain(queued)
                    .map(|job| (job.reply, Ok(super::Counts::default()))),
            );
        }
        match written {
            Ok(()) => {
                for (reply, result) in batch.replies {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                // The connection goes back to its pool, which makes sure it is whole.
                *writer = None;
                // Nothing of the batch is in state; every source in it failed with the cause.
                // The unparsed successes and fingerprints wait for the next try.
                locked(&self.unparsed).extend(unparsed);
                locked(&self.fingerprints).extend(fingerprints);
                locked(&self.rewritten).extend(batch.placed.rewritten);
                self.remove_created(batch.placed.created).await;
                // A source that failed on its own keeps its error; the others fail with the
                // batch's.
                let failure = || match &e {
                    Error::RolledBack { failed, cause } => Error::RolledBack {
                        failed: failed.clone(),
                        cause: cause.clone(),
                    },
                    Error::Commit(message) => Error::Commit(message.clone()),
                    e => Error::Commit(e.to_string()),
                };
                for (reply, result) in batch.replies {
                    let _ = reply.send(result.and_then(|_| Err(failure())));
                }
            }
        }
    }

    /// Writes `next` and the jobs queued after it in `tx`, into `batch`, until the queue is
    /// empty or the batch holds [`BATCH_RECORDS`]. A source that fails fails the batch
    /// ([`Error::RolledBack`]).
    async fn write_queued(
        &self,
        tx: &mut crate::store::Conn,
        next: &mut Option<CommitJob>,
        batch: &mut BatchSoFar,
    ) -> Result<()> {
        while let Some(job) = next.take().or_else(|| {
            if batch.records < BATCH_RECORDS {
                self.next_job()
            } else {
                None
            }
        }) {
            let CommitJob {
                source,
                prepared,
                learnt,
                reply,
                room,
            } = job;
            // A lease that ran out is found before the source writes anything: it fails
            // alone, and the batch goes on.
            if self.lost_lease(&mut *tx, &source.id).await? {
                batch.replies.push((
                    reply,
                    Err(Error::LeaseLost {
                        source_id: source.id.clone(),
                    }),
                ));
                continue;
            }
            let mut placed = Placed::default();
            match self
                .commit_source(&mut *tx, &source, prepared, &learnt, &mut placed)
                .await
            {
                Ok(written) => {
                    drop(room);
                    if let Learnt::Feed(success) = learnt {
                        batch.fetched.push((source.id, success));
                    }
                    batch.unflushed |= written.wrote;
                    batch.records += written.words.len();
                    batch.words.extend(written.words);
                    batch.placed.append(&mut placed);
                    batch.replies.push((reply, Ok(written.counts)));
                }
                // Part of this source's work may be in the transaction. A savepoint per
                // source would let the batch take back just that, but it made SQLite copy
                // every page each source touched (a tenth of a cold run's writing): the
                // batch is rolled back instead, this source fails with its error, and the
                // others are written again (see `Error::RolledBack`).
                Err(e) => {
                    batch.placed.append(&mut placed);
                    let rolled_back = Error::RolledBack {
                        failed: source.id.clone(),
                        cause: e.to_string(),
                    };
                    batch.replies.push((reply, Err(e)));
                    return Err(rolled_back);
                }
            }
        }
        Ok(())
    }

    /// Writes `unparsed` successes inside `tx`, with `records` of sources written already (a
    /// worker's only for the sources whose lease it still holds: another worker has the
    /// others now), then the `fingerprints` of sources' settings.
    async fn write_successes_in<'a>(
        &self,
        tx: &mut crate::store::Conn,
        unparsed: &'a [(String, Success)],
        mut records: Vec<SuccessRecord<'a>>,
        fingerprints: &[(String, String)],
    ) -> Result<()> {
        records.reserve(unparsed.len());
        for (source, success) in unparsed {
            if self.lost_lease(&mut *tx, source).await? {
                tracing::warn!(source = %source, "the lease ran out before the fetch was recorded");
                continue;
            }
            records.push(success.record(source));
        }
        Store::record_successes(tx, &records).await?;
        // After the successes: a source's first one makes the row its fingerprint goes in.
        Store::set_source_fingerprints(tx, fingerprints).await
    }

    /// Queues `fingerprint` to be recorded as what every record of `source` is rendered with
    /// (see [`Fingerprints`]).
    pub(super) fn defer_fingerprint(&self, source: &str, fingerprint: String) {
        locked(&self.fingerprints).push((source.to_owned(), fingerprint));
    }

    /// Of the records written (`records`: each one's archive path and whether state held it
    /// already), marks as changed those whose files a rolled-back batch rewrote (see
    /// [`Rewritten`]), and notes in `placed` the stored records' files given new bytes.
    fn count_rewrites<'a>(
        &self,
        archive_dir: &Path,
        records: impl Iterator<Item = (&'a str, bool)>,
        changed: &mut [bool],
        placed: &mut Placed,
    ) {
        if !self.writes_files() {
            return;
        }
        let mut rewritten = locked(&self.rewritten);
        for ((path, was_stored), changed) in records.zip(changed.iter_mut()) {
            if !was_stored || (!*changed && rewritten.is_empty()) {
                continue;
            }
            let path = archive_dir.join(path);
            if !*changed {
                *changed = rewritten.remove(&path);
            }
            if *changed {
                placed.rewritten.push(path);
            }
        }
    }

    /// Removes archive files that a failed commit created: no record points at them, and
    /// left behind they would look like a lost state to the next run. Files that were there
    /// before are never among them.
    async fn remove_created(&self, created: Vec<PathBuf>) {
        if created.is_empty() {
            return;
        }
        let dir = self.settings().archive_dir.clone();
        let removed = off_thread(&dir, move || {
            for path in created {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&path, e)),
                }
            }
            Ok(())
        });
        if let Err(e) = removed.await {
            tracing::warn!(error = %e, "a file of a failed commit could not be removed");
        }
    }

    /// Queues a success that parsed nothing, to be written later (see [`Unparsed`]); writes
    /// the queue when [`UNPARSED_BATCH`] wait. A failed write keeps them queued for the next.
    pub(super) async fn defer(&self, source: &Source, success: Success) {
        let full = {
            let mut unparsed = locked(&self.unparsed);
            unparsed.push((source.id.clone(), success));
            unparsed.len() >= UNPARSED_BATCH
        };
        if full && let Err(e) = self.write_unparsed(true).await {
            info!(error = %e.error, sources = e.sources.len(), "fetch records wait for the next write");
        }
    }

    /// Writes the queued unparsed successes and fingerprints in one transaction. On failure
    /// they are queued again when `requeue`, dropped otherwise; either way the error names
    /// the successes' sources (fingerprints alone fail nothing: losing one costs only a look
    /// at the source's records next time).
    pub(super) async fn write_unparsed(
        &self,
        requeue: bool,
    ) -> std::result::Result<(), Unrecorded> {
        let _turn = self.write_turn.lock().await;
        let unparsed = std::mem::take(&mut *locked(&self.unparsed));
        let fingerprints = std::mem::take(&mut *locked(&self.fingerprints));
        if unparsed.is_empty() && fingerprints.is_empty() {
            return Ok(());
        }
        let written = async {
            let mut tx = self.store().begin().await?;
            self.write_successes_in(&mut tx, &unparsed, Vec::new(), &fingerprints)
                .await?;
            tx.commit().await?;
            Ok::<(), Error>(())
        }
        .await;
        let Err(error) = written else {
            return Ok(());
        };
        let sources: Vec<String> = unparsed.iter().map(|(source, _)| source.clone()).collect();
        if requeue {
            locked(&self.unparsed).extend(unparsed);
            locked(&self.fingerprints).extend(fingerprints);
        }
        if sources.is_empty() {
            info!(error = %error, "the settings' fingerprints could not be recorded");
            return Ok(());
        }
        Err(Unrecorded { sources, error })
    }

    /// Forgets a queued success of `source` (its run failed after all). The caller holds the
    /// write turn, so no write has the success in hand.
    pub(super) fn forget_unparsed(&self, source: &str) {
        locked(&self.unparsed).retain(|(id, _)| id != source);
    }

    /// Writes one source's articles and its fetch record inside `tx`; returns its counts,
    /// whether any file changed (the caller flushes files to disk before committing) and the
    /// search words of its records, which the caller indexes in the same transaction.
    async fn commit_source(
        &self,
        tx: &mut crate::store::Conn,
        source: &Source,
        prepared: Prepared,
        learnt: &Learnt,
        placed: &mut Placed,
    ) -> Result<SourceWritten> {
        let Prepared {
            mut counts,
            articles,
            now,
            ..
        } = prepared;
        let fingerprint = self.fingerprint(source);
        // Where the template puts each article `prepare` found new, computed once for the
        // lookups below and for its path.
        let new_articles = articles.iter().filter(|p| p.adopts.is_none() && p.is_new);
        let mut bases: HashMap<String, PathBuf> = new_articles
            .clone()
            .filter_map(|p| Some((p.article.key.clone(), p.base.clone()?)))
            .collect();
        // Which of those had no file when `ready` made their folders, looked for there rather
        // than here, where every source waits. An article found new only below is checked on
        // its own when its path is chosen.
        let absent: HashSet<String> = new_articles
            .filter(|p| p.base_absent)
            .filter_map(|p| p.base.as_deref().map(path_to_store))
            .collect();
        let archive_dir = self.settings().archive_dir.clone();
        // Each place as state writes paths, by entry key.
        let mut named: Vec<(String, String)> = bases
            .iter()
            .map(|(key, base)| (key.clone(), path_to_store(base)))
            .collect();
        // What state holds of these entries, which of their links another source archived
        // and which of their paths are taken: asked once for all of them under the write turn
        // (another run may have stored some since `prepare`).
        let keys: Vec<&str> = articles.iter().map(|p| p.article.key.as_str()).collect();
        let canonicals: Vec<(&str, &str)> = if self.settings().dedupe {
            articles
                .iter()
                .filter(|p| p.adopts.is_none())
                .map(|p| (p.article.key.as_str(), p.canonical.as_str()))
                // Only a real link identifies an article across sources.
                .filter(|(_, c)| c.starts_with("http://") || c.starts_with("https://"))
                .collect()
        } else {
            Vec::new()
        };
        let asked: Vec<(&str, &str)> = named
            .iter()
            .map(|(key, name)| (key.as_str(), name.as_str()))
            .collect();
        let Lookups {
            stored: mut stored_now,
            duplicates,
            taken,
        } = Store::lookups(&mut *tx, &source.id, &keys, &canonicals, &asked).await?;
        bases.retain(|key, _| !stored_now.contains_key(key));
        named.retain(|(key, _)| bases.contains_key(key));
        let mut paths = PathBook::default();
        let base_names: Vec<String> = named.into_iter().map(|(_, name)| name).collect();
        paths.taken = taken;
        paths.absent = if self.writes_files() {
            absent
        } else {
            // A worker sees no archive: state alone says which paths are taken.
            base_names
                .iter()
                .filter(|name| !paths.taken.contains(*name))
                .cloned()
                .collect()
        };
        paths.checked = base_names.into_iter().collect();
        let mut wrote = false;
        // Files to write and the records that point at them, in the same order.
        let mut writes = Vec::with_capacity(articles.len());
        let mut deferred = Vec::with_capacity(articles.len());
        // Temp files staged for articles that turn out to need none, deleted with the writes
        // on the blocking pool rather than here.
        let mut unused = Vec::new();
        for prepared in articles {
            if let Some(rebuilt) = &prepared.adopts {
                self.adopt(&mut *tx, &prepared, rebuilt, &now).await?;
                counts.unchanged += 1;
                continue;
            }
            let PreparedArticle {
                mut article,
                mut bytes,
                words,
                first_seen,
                canonical,
                enrichment,
                original,
                enriched_by,
                published,
                updated,
                entry,
                encoded,
                staged,
                ..
            } = prepared;
            let stored = stored_now.remove(&article.key);
            if stored
                .as_ref()
                .is_some_and(|s| s.content_hash == article.content_hash)
            {
                unused.extend(staged);
                counts.unchanged += 1;
                continue;
            }
            // `duplicates` holds only real links (link-less entries never merge), and only when
            // `dedupe` is on.
            if stored.is_none()
                && let Some(target) = duplicates.get(&canonical).cloned()
            {
                wrote |= self
                    .merge_tags(&mut *tx, &target, &article.doc.tags, &now)
                    .await?;
                let hash = &article.content_hash;
                Store::record_alias(
                    &mut *tx,
                    &article.source,
                    &article.key,
                    hash,
                    &target,
                    &article.doc.tags,
                    &now,
                )
                .await?;
                info!(key = %article.key, duplicate_of = %target.path, "the same article is archived from another source; tags merged");
                unused.extend(staged);
                counts.skipped += 1;
                continue;
            }
            if stored.is_some() {
                // Tags that duplicates from other sources brought survive this source's update.
                let brought = Store::alias_tags(&mut *tx, &article.source, &article.key).await?;
                let merged =
                    normalize_tags(article.doc.tags.iter().chain(&brought).map(String::as_str));
                if merged != article.doc.tags {
                    article.doc.tags = merged;
                    if self.writes_files() {
                        bytes = archive::render_article(
                            self.settings(),
                            article.guid.as_deref(),
                            &article.doc,
                        );
                    }
                }
            }
            let (path, new) = match &stored {
                Some(s) => (PathBuf::from(&s.path), false),
                None => {
                    let base = match bases.remove(&article.key) {
                        Some(base) => base,
                        None => super::prepare::base_path(self.settings(), &article)?,
                    };
                    self.allocate_path(&mut *tx, &article, base, &mut paths)
                        .await?
                }
            };
            let full = archive_dir.join(&path);
            let record = ArticleRecord {
                source: article.source,
                key: article.key,
                path: path_to_store(&path),
                atom_id: article.atom_id,
                guid: article.guid,
                content_hash: article.content_hash,
                doc: article.doc,
                original,
                enriched_by,
                bylines: article.bylines,
                enclosures: article.enclosures,
                published,
                updated,
                first_seen,
                updated_at: now,
                canonical,
                entry,
                fingerprint: Some(fingerprint.clone()),
                rebuilt: false,
            };
            writes.push(files::PendingFile {
                path: full,
                bytes,
                new,
                staged,
            });
            deferred.push((record, encoded, words, enrichment, stored.is_some()));
        }
        // The files, all in one trip to the blocking pool, written while state takes the new
        // records (a new record's row does not depend on whether its file's bytes changed);
        // then the records of files that were there before.
        let files_written = if self.writes_files() {
            placed
                .created
                .extend(writes.iter().filter(|w| w.new).map(|w| w.path.clone()));
            let root = archive_dir.clone();
            futures::future::Either::Left(off_thread(&archive_dir, move || {
                // Each takes its temp file along, and a folder made for it that it leaves empty.
                drop(unused);
                files::write_all_deferred(&root, writes)
            }))
        } else {
            // The publisher writes them; every record is a change for it to render.
            futures::future::Either::Right(std::future::ready(Ok(vec![true; writes.len()])))
        };
        let rows = |stored: bool, changed: &[bool]| -> Vec<RecordWrite> {
            deferred
                .iter()
                .enumerate()
                .filter(|(_, (.., was_stored))| *was_stored == stored)
                .map(|(i, (record, encoded, ..))| RecordWrite {
                    record,
                    file_changed: changed.get(i).copied().unwrap_or(true),
                    indexed: false,
                    encoded: encoded.as_ref(),
                })
                .collect()
        };
        Store::write_articles(&mut *tx, &rows(false, &[]), self.rendering).await?;
        let mut changed = files_written.await?;
        self.count_rewrites(
            &archive_dir,
            deferred
                .iter()
                .map(|(record, .., was_stored)| (record.path.as_str(), *was_stored)),
            &mut changed,
            placed,
        );
        Store::write_articles(&mut *tx, &rows(true, &changed), self.rendering).await?;
        let mut words = Vec::with_capacity(deferred.len());
        for ((record, _, record_words, enrichment, was_stored), changed) in
            deferred.into_iter().zip(changed)
        {
            wrote |= changed && self.writes_files();
            let (source, key, hash) = (&record.source, &record.key, &record.content_hash);
            match enrichment {
                EnrichmentStep::Off => {}
                EnrichmentStep::Pending => {
                    Store::mark_pending(&mut *tx, source, key, hash, &now).await?
                }
                EnrichmentStep::Done { paid } => {
                    let mut tokens = (0, 0);
                    if let Some((cache_key, answer)) = paid {
                        tokens = (answer.prompt_tokens, answer.completion_tokens);
                        Store::cache_answer(&mut *tx, &cache_key, &answer, &now).await?;
                    }
                    Store::mark_enriched(&mut *tx, source, key, hash, tokens, &now).await?;
                }
            }
            match (was_stored, changed) {
                (false, _) => counts.new += 1,
                (true, true) => counts.updated += 1,
                // A new hash for the same bytes (say, only the feed's `updated` moved).
                (true, false) => counts.unchanged += 1,
            }
            words.push((record.path, record_words));
        }
        // The feed's own record goes with the batch's others (see `commit_jobs`).
        if let Learnt::History(page) = learnt {
            Store::record_history_page(tx, &source.id, page).await?;
        }
        Ok(SourceWritten {
            counts,
            wrote,
            words,
        })
    }

    /// Gives a record rebuilt from the archive the identity and fields of the entry a fetch
    /// found for it. The file is not touched: it holds what was archived (LLM sections
    /// included), which is what the record recovered.
    async fn adopt(
        &self,
        conn: &mut crate::store::Conn,
        prepared: &PreparedArticle,
        rebuilt: &ArticleRecord,
        now: &chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let article = &prepared.article;
        let record = ArticleRecord {
            source: article.source.clone(),
            key: article.key.clone(),
            atom_id: article.atom_id.clone(),
            guid: article.guid.clone(),
            content_hash: article.content_hash.clone(),
            original: prepared.original.clone(),
            bylines: article.bylines.clone(),
            enclosures: article.enclosures.clone(),
            published: prepared.published,
            updated: prepared.updated,
            entry: prepared.entry.clone(),
            // The file shows the fingerprint's settings only if they did not change since it
            // was written, which nothing recorded: the next change of settings re-renders it.
            fingerprint: Some(self.fingerprint_of(&article.source)),
            rebuilt: false,
            ..rebuilt.clone()
        };
        Store::adopt(conn, &rebuilt.key, &record).await?;
        let (source, key, hash) = (&record.source, &record.key, &record.content_hash);
        if !record.doc.translations.is_empty() {
            // Its sections came back with the file: nothing to ask for.
            Store::mark_enriched(conn, source, key, hash, (0, 0), now).await?;
        } else if self.enricher().is_some()
            && self
                .settings()
                .sources
                .iter()
                .any(|s| s.id == *source && s.enrich)
        {
            Store::mark_pending(conn, source, key, hash, now).await?;
        }
        info!(key = %key, path = %record.path, "a record rebuilt from the archive adopted its entry");
        Ok(())
    }

    /// A free path for a new article: the template's (`base`), or with `-2`, `-3`, ... on
    /// clashes, and whether nothing is there. A file already on disk is free only if it holds
    /// this same article (left by an interrupted run or an archive without state). `paths`
    /// knows which paths state held when the commit began and which this commit took, so most
    /// articles need no query.
    async fn allocate_path(
        &self,
        conn: &mut crate::store::Conn,
        article: &Article,
        base: PathBuf,
        paths: &mut PathBook,
    ) -> Result<(PathBuf, bool)> {
        let settings = self.settings();
        for n in 1..=MAX_PATH_SUFFIX {
            let candidate = if n == 1 {
                base.clone()
            } else {
                crate::format::with_suffix(&base, n)
            };
            let stored = path_to_store(&candidate);
            let taken = if paths.checked.contains(&stored) {
                paths.taken.contains(&stored)
            } else {
                Store::path_taken(conn, &stored).await?
            };
            if taken {
                continue;
            }
            let absent = paths.absent.contains(&stored);
            if absent
                || !self.writes_files()
                || self
                    .free_on_disk(settings.archive_dir.join(&candidate), article)
                    .await?
            {
                paths.checked.insert(stored.clone());
                paths.taken.insert(stored);
                return Ok((candidate, absent));
            }
        }
        Err(Error::Archive {
            path: settings.archive_dir.join(base),
            reason: format!("more than {MAX_PATH_SUFFIX} articles share this path"),
        })
    }

    /// Adds `tags` to an archived article's file (first source wins, tags are merged).
    async fn merge_tags(
        &self,
        conn: &mut crate::store::Conn,
        target: &CanonicalMatch,
        tags: &[String],
        now: &chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let Some(mut record) = Store::record(conn, &target.source, &target.key).await? else {
            return Ok(false);
        };
        let guid = record.guid.clone();
        let doc = &mut record.doc;
        let merged = normalize_tags(doc.tags.iter().chain(tags).map(String::as_str));
        if merged == doc.tags {
            return Ok(false);
        }
        doc.tags = merged;
        let wrote = if self.writes_files() {
            let bytes = archive::render_article(self.settings(), guid.as_deref(), doc);
            let root = self.settings().archive_dir.clone();
            let path = root.join(&target.path);
            off_thread(&path.clone(), move || {
                files::write_atomic_deferred(&root, &path, bytes.as_bytes())
            })
            .await?
        } else {
            false
        };
        Store::update_document(
            conn,
            &target.source,
            &target.key,
            doc,
            None,
            now,
            self.rendering,
        )
        .await?;
        Ok(wrote)
    }

    /// A path is free when nothing is there, or when the file there is this article's own (same
    /// link and date) left by a run that did not commit, or by an archive kept without state.
    async fn free_on_disk(&self, path: PathBuf, article: &Article) -> Result<bool> {
        let labels = self.settings().labels.clone();
        let (link, date) = (article.doc.link.clone(), article.doc.date);
        off_thread(&path.clone(), move || {
            Ok(match std::fs::read_to_string(&path) {
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
                Ok(existing) => {
                    !link.is_empty()
                        && archive::read(&existing, &labels, &[])
                            .is_ok_and(|doc| doc.link == link && doc.date == date)
                }
            })
        })
        .await
    }
}

/// The paths a commit knows about without asking state again: those it checked (`checked`),
/// and of them the ones an article holds (`taken`), including the ones this commit took; and
/// those known to have no file on disk when the commit began (`absent`).
#[derive(Debug, Default)]
struct PathBook {
    checked: HashSet<String>,
    taken: HashSet<String>,
    absent: HashSet<String>,
}

/// Paths are stored with `/` whatever the platform, so a state file moves between machines.
fn path_to_store(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::locked;
    use crate::config::Settings;
    use crate::fetch::Fetcher;
    use crate::pipeline::{Pipeline, Refresh, RunOptions, SourceReport};
    use crate::store::Store;

    /// Source `source`'s feed: two entries titled after `edition`, and a third when `grown`.
    fn feed(source: &str, edition: &str, grown: bool) -> String {
        let count = if grown { 3 } else { 2 };
        let items: String = (1..=count)
            .map(|n| {
                format!(
                    "<item><guid>{source}{n}</guid><title>{source} {n} {edition}</title>\
                     <link>https://example.org/{source}/{n}</link>\
                     <pubDate>Mon, 13 May 2024 09:00:00 +0000</pubDate></item>"
                )
            })
            .collect();
        format!("<rss version=\"2.0\"><channel><title>{source}</title>{items}</channel></rss>")
    }

    /// A pipeline over sources a, b and c in `dir`, each a feed file of two entries.
    async fn three_sources(dir: &Path) -> Pipeline {
        let mut config = format!(
            "[state]\nurl = \"sqlite://{}/state/g.db\"\n[fetch]\nconcurrency = 3\n",
            dir.display()
        );
        for source in ["a", "b", "c"] {
            let path = dir.join(format!("{source}.xml"));
            std::fs::write(&path, feed(source, "first", false)).expect("feed");
            config.push_str(&format!(
                "[[sources]]\nid = \"{source}\"\nurl = \"{source}.xml\"\n"
            ));
        }
        let settings = Settings::from_toml(&config, &dir.join("gazette.toml")).expect("config");
        let store = Store::open(&settings.state_url).await.expect("state");
        let fetcher = Fetcher::new(&settings.fetch).expect("client");
        Pipeline::new(Arc::new(settings), store, fetcher).expect("pipeline")
    }

    /// Runs every source of `p` with the write turn held until all three wait for it, so that
    /// whoever takes it next writes them in one batch; `meanwhile` runs just before the turn
    /// is let go.
    async fn run_queued(
        p: &Pipeline,
        options: RunOptions,
        meanwhile: impl Future<Output = ()>,
    ) -> Vec<SourceReport> {
        let turn = Arc::clone(&p.write_turn).lock_owned().await;
        let run = tokio::spawn({
            let p = p.clone();
            let sources = p.settings().sources.clone();
            async move { p.refresh_all(&sources, options).await }
        });
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while locked(&p.commit_queue).len() < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the sources never queued"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        meanwhile.await;
        drop(turn);
        run.await.expect("the run")
    }

    /// Three sources written in one batch (the test holds the write turn until all three
    /// wait for it), one of which fails part-way: the batch is rolled back, the failing
    /// source reports its own error and keeps what it had, and the other two are written
    /// again, whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_failing_part_way_takes_its_batch_back_and_the_others_are_written_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = three_sources(dir.path()).await;
        let sources = p.settings().sources.clone();
        let options = RunOptions {
            force: true,
            ..RunOptions::default()
        };
        for report in p.refresh_all(&sources, options).await {
            report.outcome.expect("the first run");
        }
        // b's first article's file becomes a folder, which b's update cannot replace.
        let archive = dir.path().join("archive");
        let blocked = crate::format::list_files(&archive)
            .expect("archive")
            .into_iter()
            .find(|path| path.contains("b-1-first"))
            .map(|path| archive.join(path))
            .expect("b's first article");
        std::fs::remove_file(&blocked).expect("remove");
        std::fs::create_dir_all(blocked.join("inside")).expect("a folder in its place");
        for source in ["a", "b", "c"] {
            let path = dir.path().join(format!("{source}.xml"));
            std::fs::write(&path, feed(source, "second", true)).expect("feed");
        }

        for report in run_queued(&p, options, async {}).await {
            match (report.source.as_str(), report.outcome) {
                ("b", Err(e)) => assert!(e.to_string().contains("b-1-first"), "{e}"),
                ("b", other) => panic!("b's write must fail, got {other:?}"),
                (source, Ok(Refresh::Archived(counts))) => {
                    assert_eq!((counts.new, counts.updated), (1, 2), "{source}");
                }
                (source, other) => panic!("{source}: {other:?}"),
            }
        }
        let titles: Vec<(String, String)> =
            sqlx::query_as("SELECT source, title FROM articles ORDER BY source, key")
                .fetch_all(p.store().pool())
                .await
                .expect("titles");
        let of = |source: &str| -> Vec<&str> {
            titles
                .iter()
                .filter(|(s, _)| s == source)
                .map(|(_, t)| t.as_str())
                .collect()
        };
        assert_eq!(of("a"), ["a 1 second", "a 2 second", "a 3 second"]);
        assert_eq!(of("b"), ["b 1 first", "b 2 first"], "b as before");
        assert_eq!(of("c"), ["c 1 second", "c 2 second", "c 3 second"]);
    }

    /// When state cannot be written at all (here its connections are closed), the batch fails
    /// before its first source, and the sources queued behind it fail with it: none is left
    /// waiting for a turn that would fail the same way.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sources_queued_behind_a_batch_that_cannot_begin_fail_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = three_sources(dir.path()).await;
        let store = p.store().clone();
        let reports = run_queued(&p, RunOptions::default(), store.close()).await;
        assert_eq!(reports.len(), 3);
        for report in reports {
            let error = report
                .outcome
                .expect_err("no source can be written")
                .to_string();
            assert!(error.contains("closed"), "{}: {error}", report.source);
        }
        assert!(
            locked(&p.commit_queue).is_empty(),
            "a source was left queued"
        );
        assert!(
            !dir.path().join("archive").exists()
                || crate::format::list_files(&dir.path().join("archive"))
                    .expect("archive")
                    .is_empty(),
            "no file without its record"
        );
    }
}
