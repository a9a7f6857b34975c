//! Counters the daemon keeps for `/metrics`, in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the fetch latency histogram, in seconds.
const BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// How a source's fetch ended, as `/metrics` counts it; the label of each is its name there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The body was parsed; `new` and `updated` articles were written.
    Archived {
        new: usize,
        updated: usize,
    },
    NotModified,
    SameBody,
    Failed,
    /// Skipped: the source is disabled (not a fetch, so no latency).
    Disabled,
}

impl Outcome {
    const LABELS: [&'static str; 5] = [
        "archived",
        "not_modified",
        "same_body",
        "failed",
        "disabled",
    ];

    fn index(self) -> usize {
        match self {
            Outcome::Archived { .. } => 0,
            Outcome::NotModified => 1,
            Outcome::SameBody => 2,
            Outcome::Failed => 3,
            Outcome::Disabled => 4,
        }
    }
}

/// One source's fetch in a cycle (sources that were not due are not fetches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchEvent {
    pub outcome: Outcome,
    /// From the request to the stored result.
    pub elapsed: Duration,
}

#[derive(Debug, Default)]
struct Counts {
    by_outcome: [u64; 5],
    archived_articles: u64,
    updated_articles: u64,
    latency_buckets: [u64; 10],
    latency_count: u64,
    latency_sum: f64,
    cycles: u64,
}

/// Shared by the scheduler, which records, and the server, which renders.
#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
}

impl Metrics {
    /// Records one cycle's fetches.
    pub fn record(&self, events: &[FetchEvent]) {
        let mut c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.cycles += 1;
        for event in events {
            c.by_outcome[event.outcome.index()] += 1;
            match event.outcome {
                Outcome::Disabled => continue,
                Outcome::Archived { new, updated } => {
                    c.archived_articles += new as u64;
                    c.updated_articles += updated as u64;
                }
                _ => {}
            }
            observe(&mut c, event.elapsed);
        }
    }

    /// The text exposition; enrichment tokens come from state, so they survive restarts.
    pub fn render(&self, tokens: (i64, i64)) -> String {
        let c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP gazette_fetches_total Source fetches by outcome.\n# TYPE gazette_fetches_total counter\n");
        for (name, value) in Outcome::LABELS.iter().zip(c.by_outcome) {
            let _ = writeln!(out, "gazette_fetches_total{{outcome=\"{name}\"}} {value}");
        }
        out.push_str("# HELP gazette_articles_archived_total Articles archived, by kind of write.\n# TYPE gazette_articles_archived_total counter\n");
        let _ = writeln!(
            out,
            "gazette_articles_archived_total{{kind=\"new\"}} {}",
            c.archived_articles
        );
        let _ = writeln!(
            out,
            "gazette_articles_archived_total{{kind=\"updated\"}} {}",
            c.updated_articles
        );
        out.push_str("# HELP gazette_fetch_duration_seconds Time from request to stored result, per source.\n# TYPE gazette_fetch_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(c.latency_buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "gazette_fetch_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "gazette_fetch_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            c.latency_count
        );
        let _ = writeln!(out, "gazette_fetch_duration_seconds_sum {}", c.latency_sum);
        let _ = writeln!(
            out,
            "gazette_fetch_duration_seconds_count {}",
            c.latency_count
        );
        out.push_str("# HELP gazette_enrichment_tokens_total Tokens spent on enrichment.\n# TYPE gazette_enrichment_tokens_total counter\n");
        let _ = writeln!(
            out,
            "gazette_enrichment_tokens_total{{kind=\"prompt\"}} {}",
            tokens.0
        );
        let _ = writeln!(
            out,
            "gazette_enrichment_tokens_total{{kind=\"completion\"}} {}",
            tokens.1
        );
        out.push_str("# HELP gazette_cycles_total Scheduler cycles run.\n# TYPE gazette_cycles_total counter\n");
        let _ = writeln!(out, "gazette_cycles_total {}", c.cycles);
        out
    }
}

fn observe(c: &mut Counts, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
        c.latency_buckets[i] += 1;
    }
    c.latency_count += 1;
    c.latency_sum += seconds;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(outcome: Outcome, ms: u64) -> FetchEvent {
        FetchEvent {
            outcome,
            elapsed: Duration::from_millis(ms),
        }
    }

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.record(&[
            event(Outcome::Archived { new: 3, updated: 1 }, 40),
            event(Outcome::NotModified, 200),
            event(Outcome::Disabled, 0),
        ]);
        let text = metrics.render((10, 5));
        assert!(
            text.contains("gazette_fetches_total{outcome=\"archived\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gazette_fetches_total{outcome=\"not_modified\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gazette_fetches_total{outcome=\"disabled\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gazette_articles_archived_total{kind=\"new\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("gazette_fetch_duration_seconds_bucket{le=\"0.05\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gazette_fetch_duration_seconds_bucket{le=\"0.25\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("gazette_fetch_duration_seconds_count 2\n"),
            "{text}"
        );
        assert!(
            text.contains("gazette_enrichment_tokens_total{kind=\"prompt\"} 10\n"),
            "{text}"
        );
    }
}
