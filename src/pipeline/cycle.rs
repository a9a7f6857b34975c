//! One run cycle: refresh the due sources, enrich, prune old state, publish the feeds. Cron
//! (`gazette fetch`) runs it once; the daemon runs it whenever a source is due. Both get the
//! same options, the same deadline and the same order, so they cannot drift apart.

use std::time::Duration;

use tracing::info;

use super::{EnrichOptions, EnrichReport, Pipeline, Refresh, RunOptions, SourceReport};
use crate::config::Source;
use crate::error::Result;
use crate::schedule::{self, Due};
use crate::store::Pruned;

/// What a cycle is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct CycleOptions {
    /// Fetch sources that are not due, and disabled ones.
    pub force: bool,
    /// Hold new articles for enrichment (`enrich.hold`) and run the enrichment pass; without
    /// it articles are archived as they come and stay pending for a later pass.
    pub enrich: bool,
}

impl Default for CycleOptions {
    fn default() -> Self {
        Self {
            force: false,
            enrich: true,
        }
    }
}

/// What a cycle did. One stage failing does not stop the next: a failed enrichment pass still
/// lets the feed be published. Failures are the caller's to report, once each.
#[derive(Debug)]
pub struct CycleReport {
    /// One per source asked for, sorted by source id.
    pub sources: Vec<SourceReport>,
    /// `None` when enrichment is not configured or not asked for.
    pub enrichment: Option<Result<EnrichReport>>,
    pub pruned: Result<Pruned>,
    /// Whether any feed file changed.
    pub feed: Result<bool>,
}

impl CycleReport {
    /// Sources that failed.
    pub fn failed(&self) -> usize {
        self.sources.iter().filter(|r| r.outcome.is_err()).count()
    }

    /// Sources that were fetched (not skipped as not due or disabled).
    pub fn fetched(&self) -> usize {
        self.sources
            .iter()
            .filter(|r| !matches!(r.outcome, Ok(Refresh::NotDue(_) | Refresh::Disabled(_))))
            .count()
    }

    /// Articles archived for the first time.
    pub fn new_articles(&self) -> usize {
        self.sum(|counts| counts.new)
    }

    /// Archived articles whose files changed.
    pub fn updated_articles(&self) -> usize {
        self.sum(|counts| counts.updated)
    }

    fn sum(&self, count: impl Fn(&super::Counts) -> usize) -> usize {
        self.sources
            .iter()
            .map(|r| match &r.outcome {
                Ok(Refresh::Archived(counts)) => count(counts),
                _ => 0,
            })
            .sum()
    }
}

impl Pipeline {
    /// Refreshes `sources` (those due, or all with `force`) within `fetch.run_deadline`, then
    /// enriches their pending articles, prunes old state and writes the feeds. `on_done` sees
    /// each source's report as it finishes (for progress).
    pub async fn run_cycle(
        &self,
        sources: &[Source],
        options: CycleOptions,
        on_done: impl Fn(&SourceReport),
    ) -> CycleReport {
        let deadline = tokio::time::Instant::now() + self.settings().fetch.run_deadline;
        let run = RunOptions {
            force: options.force,
            deadline: Some(deadline),
            no_enrich: !options.enrich,
        };
        // Each source's failure is the caller's to tell, once: `fetch` prints it in its
        // summary, the daemon logs it.
        let mut reports = self.refresh_all_with(sources, run, on_done).await;
        reports.sort_by(|a, b| a.source.cmp(&b.source));

        let enrichment = if options.enrich && self.enricher().is_some() {
            // Only the sources asked for: `fetch SOURCE` enriches that source's articles.
            let everything = sources.len() == self.settings().sources.len();
            let enrich = EnrichOptions {
                sources: if everything {
                    Vec::new()
                } else {
                    sources.iter().map(|s| s.id.clone()).collect()
                },
                ..EnrichOptions::default()
            };
            Some(self.enrich_pending(&enrich).await)
        } else {
            None
        };

        let pruned = self.prune().await;
        // Records that workers sharing this state wrote get their files first (none when
        // this process is the only one).
        let feed = match crate::publish::render::render_pending(self.settings(), self.store()).await
        {
            Ok(_) => self.publish_feed().await,
            Err(e) => Err(e),
        };
        if let Ok(true) = &feed {
            info!("feed published");
        }
        CycleReport {
            sources: reports,
            enrichment,
            pruned,
            feed,
        }
    }

    /// How long until the first of `sources` is due: zero when one is due now, `None` when
    /// none will be (all disabled). A source whose state cannot be read counts as due.
    pub async fn next_due_in(&self, sources: &[Source]) -> Option<Duration> {
        let now = self.clock().now();
        let mut soonest: Option<Duration> = None;
        for source in sources {
            let state = self.store().source_state(&source.id).await.ok().flatten();
            let wait = match schedule::due(
                &source.location.to_string(),
                state.as_ref().map(Into::into),
                now,
            ) {
                Due::Now => Duration::ZERO,
                Due::At(at) => (at - now).to_std().unwrap_or_default(),
                Due::Disabled(_) => continue,
            };
            soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
        }
        soonest
    }
}
