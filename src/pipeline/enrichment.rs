//! The enrichment pass: articles archived without their sections get them, and their files are
//! rewritten in place in the bilingual form. Failures back off and are retried on later runs,
//! up to `enrich.max_attempts`; answers are cached, so nothing is paid for twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tracing::{info, warn};

use super::Pipeline;
use crate::enrich::{self, Answer, EnrichError, Enricher, Outcome, Request, Usage};
use crate::error::{Error, Result};
use crate::files;
use crate::model::Document;
use crate::publish::archive;
use crate::store::{CachedAnswer, PendingEnrichment, Store};

/// Which pending articles a pass takes on.
#[derive(Debug, Clone, Default)]
pub struct EnrichOptions {
    /// Only these sources; all when empty.
    pub sources: Vec<String>,
    /// Also articles that ran out of attempts, and those still backing off.
    pub retry_failed: bool,
    /// Print the requests instead of making them; change nothing.
    pub dry_run: bool,
    /// First queue the archived articles that have no sections yet (enrichment enabled later,
    /// or another model), of the chosen sources.
    pub all: bool,
    /// With `all`: only articles dated this or later.
    pub since: Option<DateTime<Utc>>,
    /// With `all`: also articles whose sections another model or prompt version wrote.
    pub redo: bool,
}

/// What a pass did.
#[derive(Debug, Default)]
pub struct EnrichReport {
    pub enriched: usize,
    pub failed: usize,
    /// Articles left pending because the token budget had no room for their request.
    pub over_budget: usize,
    /// Requests a dry run would make.
    pub requests: Vec<serde_json::Value>,
}

/// How one article's attempt ended.
enum Attempt {
    Enriched,
    Failed,
    /// Not asked: the budget had no room; it stays pending.
    OverBudget,
}

impl Pipeline {
    /// Enriches pending articles (nothing when enrichment is not configured).
    pub async fn enrich_pending(&self, options: &EnrichOptions) -> Result<EnrichReport> {
        let Some(enricher) = self.enricher() else {
            return Ok(EnrichReport::default());
        };
        let now = self.clock().now();
        let opted_out: Vec<&str> = self
            .settings()
            .sources
            .iter()
            .filter(|s| !s.enrich)
            .map(|s| s.id.as_str())
            .collect();
        // The sources asked for that enrich, all of them when none is named.
        let eligible: Vec<String> = self
            .settings()
            .sources
            .iter()
            .filter(|s| !opted_out.contains(&s.id.as_str()))
            .filter(|s| options.sources.is_empty() || options.sources.contains(&s.id))
            .map(|s| s.id.clone())
            .collect();
        if eligible.is_empty() {
            return Ok(EnrichReport::default());
        }
        if options.all && !options.dry_run {
            let _turn = self.write_turn.lock().await;
            let queued = self
                .store()
                .queue_unenriched(
                    &eligible,
                    options.since.as_ref(),
                    options.redo.then(|| enricher.label()).as_deref(),
                    &now,
                )
                .await?;
            info!(
                queued,
                "archived articles without sections queued for enrichment"
            );
        }
        let pending: Vec<PendingEnrichment> = self
            .store()
            .pending_enrichments(
                &eligible,
                &now,
                options.retry_failed,
                options.retry_failed,
                enricher.config().max_per_run,
            )
            .await?;

        let mut report = EnrichReport::default();
        if options.dry_run {
            for item in &pending {
                match self.request_for(enricher, item).await {
                    Ok((_, request, _)) => report.requests.push(enricher.describe(&request)),
                    Err(e) => {
                        warn!(source = %item.source, key = %item.key, error = %e, "no request")
                    }
                }
            }
            return Ok(report);
        }
        self.attempt_all(enricher, pending, &mut report).await?;
        Ok(report)
    }

    /// A worker's enrichment pass: it leases due enrichments of any source for `lease` (see
    /// [`Store::claim_enrichments`]), so that LLM work spreads over all workers, and asks
    /// about those.
    pub async fn enrich_leased(&self, worker: &str, lease: Duration) -> Result<EnrichReport> {
        let Some(enricher) = self.enricher() else {
            return Ok(EnrichReport::default());
        };
        let now = self.clock().now();
        let pending = {
            let _turn = self.write_turn.lock().await;
            self.store()
                .claim_enrichments(worker, &now, lease, enricher.config().max_per_run)
                .await?
        };
        let mut report = EnrichReport::default();
        self.attempt_all(enricher, pending, &mut report).await?;
        Ok(report)
    }

    async fn attempt_all(
        &self,
        enricher: &Enricher,
        pending: Vec<PendingEnrichment>,
        report: &mut EnrichReport,
    ) -> Result<()> {
        // Owned items keep the future `Send` (see `refresh_all_with`).
        let order = InOrder::default();
        let order = &order;
        let attempts: Vec<Result<Attempt>> = futures::stream::iter(pending.into_iter().enumerate())
            .map(|(place, item)| async move {
                let turn = order.turn(place).await;
                self.enrich_one(enricher, &item, turn).await
            })
            .buffer_unordered(enricher.config().concurrency)
            .collect()
            .await;
        for attempt in attempts {
            match attempt? {
                Attempt::Enriched => report.enriched += 1,
                Attempt::Failed => report.failed += 1,
                Attempt::OverBudget => report.over_budget += 1,
            }
        }
        Ok(())
    }

    /// The article's document to enrich (its own text as the original section) and the
    /// request made from it, from the record.
    async fn request_for(
        &self,
        enricher: &Enricher,
        item: &PendingEnrichment,
    ) -> Result<(Document, Request, Option<String>)> {
        let mut conn = self.store().pool().acquire().await?;
        let record = Store::record(&mut conn, &item.source, &item.key).await?;
        drop(conn);
        let Some(record) = record else {
            return Err(Error::Refused(format!(
                "source {}: article {} is no longer archived",
                item.source, item.key
            )));
        };
        let Some(original) = record.original else {
            return Err(Error::Refused(format!(
                "{}: its own text is not in state (it was rebuilt from an enriched file)",
                record.path
            )));
        };
        let doc = Document {
            translations: Vec::new(),
            original,
            ..record.doc
        };
        let request = enricher.request(&item.source, &item.key, &doc);
        Ok((doc, request, record.guid))
    }

    /// `turn`: this item's place in the pass, held until its budget is reserved.
    async fn enrich_one(
        &self,
        enricher: &Enricher,
        item: &PendingEnrichment,
        turn: Turn<'_>,
    ) -> Result<Attempt> {
        let cache_key = enricher.cache_key(&item.content_hash);
        let (doc, request, guid) = match self.request_for(enricher, item).await {
            Ok(found) => found,
            Err(e) => {
                // An article that cannot be asked about fails alone, not the whole pass.
                let failed = EnrichError::Failed(format!("nothing to ask: {e}"));
                return self
                    .record_failed_attempt(enricher, item, &failed, Usage::default())
                    .await;
            }
        };
        let (result, usage, paid) = match self.store().cached_answer(&cache_key).await? {
            Some(cached) => match serde_json::from_str::<Answer>(&cached.answer) {
                Ok(answer) => (Ok(answer), Usage::default(), false),
                Err(e) => (
                    Err(EnrichError::Invalid(e.to_string())),
                    Usage::default(),
                    false,
                ),
            },
            None => match self
                .ask_within_budget(enricher, &request, Some(turn))
                .await?
            {
                Some(Outcome { result, usage }) => (result, usage, true),
                None => return Ok(Attempt::OverBudget),
            },
        };
        let now = self.clock().now();
        let answer = match result {
            Ok(answer) => answer,
            Err(e) => return self.record_failed_attempt(enricher, item, &e, usage).await,
        };

        let enriched = enrich::apply(&doc, &answer, enricher.targets(), enricher.titles_only());
        let path = self.settings().archive_dir.join(&item.path);
        let _turn = self.write_turn.lock().await;
        if paid {
            // The answer is kept before the file changes: should anything below fail, the next
            // attempt applies it again instead of asking with the summary as the body.
            let cached = CachedAnswer {
                answer: serde_json::to_string(&answer).unwrap_or_default(),
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            };
            let mut tx = self.store().begin().await?;
            Store::cache_answer(&mut tx, &cache_key, &cached, &now).await?;
            tx.commit().await?;
        }
        if self.writes_files() {
            let bytes = archive::render_article(self.settings(), guid.as_deref(), &enriched);
            let written = path.clone();
            let root = self.settings().archive_dir.clone();
            super::off_thread(&path, move || {
                files::write_atomic(&root, &written, bytes.as_bytes())
            })
            .await?;
        }
        let mut tx = self.store().begin().await?;
        let label = enricher.label();
        Store::update_document(
            &mut tx,
            &item.source,
            &item.key,
            &enriched,
            Some(&label),
            &now,
            self.rendering,
        )
        .await?;
        let tokens = (usage.prompt_tokens, usage.completion_tokens);
        Store::mark_enriched(
            &mut tx,
            &item.source,
            &item.key,
            &item.content_hash,
            tokens,
            &now,
        )
        .await?;
        tx.commit().await?;
        info!(source = %item.source, key = %item.key, path = %path.display(), "enriched");
        Ok(Attempt::Enriched)
    }
}

impl Pipeline {
    /// Asks the provider within `enrich.daily_token_budget` and `monthly_token_budget`: the
    /// request's largest possible cost is reserved in state before it starts, and set right
    /// when it ends, so that no request starts that could pass a budget, whatever else is in
    /// flight here or in other workers. `None` when a budget has no room for it.
    pub(super) async fn ask_within_budget(
        &self,
        enricher: &Enricher,
        request: &Request,
        turn: Option<Turn<'_>>,
    ) -> Result<Option<Outcome>> {
        let config = enricher.config();
        if config.daily_token_budget.is_none() && config.monthly_token_budget.is_none() {
            drop(turn);
            return Ok(Some(enricher.enrich(request).await));
        }
        // A newer article of this pass found no room: this older one waits with it.
        if turn.as_ref().is_some_and(Turn::budget_spent) {
            return Ok(None);
        }
        let now = self.clock().now();
        let reserved = largest_cost(enricher, request);
        let room = self
            .store()
            .reserve_tokens(
                &now,
                reserved,
                config.daily_token_budget,
                config.monthly_token_budget,
            )
            .await?;
        if !room {
            if let Some(turn) = &turn {
                turn.spend_budget();
            }
            return Ok(None);
        }
        // The next article may reserve now; the answer is awaited side by side.
        drop(turn);
        let outcome = enricher.enrich(request).await;
        let spent = outcome
            .usage
            .prompt_tokens
            .saturating_add(outcome.usage.completion_tokens);
        // A failure that reports no cost keeps its reservation: it may have been charged.
        let cost = if spent == 0 && outcome.result.is_err() {
            reserved
        } else {
            spent
        };
        self.store().settle_tokens(&now, cost - reserved).await?;
        Ok(Some(outcome))
    }

    async fn record_failed_attempt(
        &self,
        enricher: &Enricher,
        item: &PendingEnrichment,
        error: &EnrichError,
        usage: Usage,
    ) -> Result<Attempt> {
        let now = self.clock().now();
        let next = next_attempt(now, enricher, item.attempts, error.retry_after());
        warn!(source = %item.source, key = %item.key, error = %error, next = %next, "enrichment failed");
        let _turn = self.write_turn.lock().await;
        self.store()
            .mark_enrichment_failed(
                &item.source,
                &item.key,
                &error.to_string(),
                &next,
                enricher.config().max_attempts,
                (usage.prompt_tokens, usage.completion_tokens),
                &now,
            )
            .await?;
        Ok(Attempt::Failed)
    }
}

/// The most a request can cost: its prompt (a token covers at least one byte of it) and the
/// longest answer asked for, twice over for the `openai` provider, which sends an invalid
/// answer back once with the prompt, the answer and what is wrong with it.
fn largest_cost(enricher: &Enricher, request: &Request) -> i64 {
    let prompt = i64::try_from(enricher.describe(request).to_string().len()).unwrap_or(i64::MAX);
    let answer = i64::try_from(enricher.config().max_tokens).unwrap_or(i64::MAX);
    let (prompts, answers) = match enricher.config().provider {
        Some(crate::config::Provider::Command) => (1, 1),
        _ => (2, 3),
    };
    // The repair message is a sentence of its own.
    const REPAIR: i64 = 512;
    prompt
        .saturating_mul(prompts)
        .saturating_add(answer.saturating_mul(answers))
        .saturating_add(REPAIR)
}

/// The back-off doubles per attempt from `enrich.backoff`, up to a day, never sooner than the
/// provider asked.
fn next_attempt(
    now: DateTime<Utc>,
    enricher: &Enricher,
    attempts: u32,
    retry_after: Option<Duration>,
) -> DateTime<Utc> {
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    let backoff = enricher
        .config()
        .backoff
        .saturating_mul(1 << attempts.min(16))
        .min(DAY)
        .max(retry_after.unwrap_or_default());
    now + chrono::Duration::from_std(backoff).unwrap_or(chrono::Duration::MAX)
}

/// The order of a pass's budget reservations: its articles come newest first, and each takes
/// its turn to reserve in that order; once one finds no room, the older ones after it wait too,
/// so that an older article never takes room that answers coming back free while a newer one
/// waits (the requests themselves run side by side).
#[derive(Debug)]
struct InOrder {
    next: tokio::sync::watch::Sender<usize>,
    spent: std::sync::atomic::AtomicBool,
}

impl Default for InOrder {
    fn default() -> Self {
        Self {
            next: tokio::sync::watch::Sender::new(0),
            spent: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl InOrder {
    /// Waits until every article before `place` has had its turn.
    async fn turn(&self, place: usize) -> Turn<'_> {
        let mut next = self.next.subscribe();
        // The sender lives as long as `self`: the wait ends when the turn comes.
        let _ = next.wait_for(|next| *next >= place).await;
        Turn(self)
    }
}

/// One article's turn; the next article's comes when it is dropped, however the article's
/// attempt went on or ended.
#[derive(Debug)]
pub(super) struct Turn<'a>(&'a InOrder);

impl Turn<'_> {
    fn budget_spent(&self) -> bool {
        self.0.spent.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn spend_budget(&self) {
        self.0
            .spent
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.next.send_modify(|next| *next += 1);
    }
}
