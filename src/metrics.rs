//! Counters the daemon keeps for `/metrics`, in the Prometheus text format (version 0.0.4),
//! encoded by `prometheus-client`. The scheduler records plain [`FetchEvent`]s; the server renders.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of what [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

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
    /// Every label, so that each series exists (at zero) before its first event: a series that
    /// appears late hides its first increase from `rate()`.
    const LABELS: [&'static str; 5] = [
        "archived",
        "not_modified",
        "same_body",
        "failed",
        "disabled",
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Archived { .. } => "archived",
            Outcome::NotModified => "not_modified",
            Outcome::SameBody => "same_body",
            Outcome::Failed => "failed",
            Outcome::Disabled => "disabled",
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

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// What state says of the work shared between processes, read when `/metrics` is asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shared {
    /// Synced sources due and not leased.
    pub due: i64,
    /// Sources leased by a worker now.
    pub leased: i64,
    /// Articles waiting for their LLM sections.
    pub pending_enrichments: i64,
    /// Processes that sent a heartbeat (workers and publishers).
    pub processes: i64,
    /// Records whose archive file the publisher has yet to write.
    pub unrendered: i64,
    /// LLM tokens spent (and reserved by requests in flight) today and this month, UTC.
    pub tokens_today: i64,
    pub tokens_this_month: i64,
    /// The configured budgets, when there are.
    pub daily_budget: Option<u64>,
    pub monthly_budget: Option<u64>,
}

/// Shared by the scheduler, which records, and the server, which renders.
#[derive(Debug)]
pub struct Metrics {
    fetches: Family<OutcomeLabel, Counter>,
    /// `kind` is `new` or `updated`.
    articles: Family<KindLabel, Counter>,
    fetch_duration: Histogram,
    cycles: Counter,
    /// Held while a cycle is recorded and while rendering, so a scrape never sees half a cycle.
    cycle: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            fetches: Family::default(),
            articles: Family::default(),
            fetch_duration: Histogram::new(BUCKETS.iter().copied()),
            cycles: Counter::default(),
            cycle: Mutex::new(()),
        };
        // Creating a series is all that is wanted here; the guard is dropped at once.
        for outcome in Outcome::LABELS {
            let _ = metrics.fetches.get_or_create(&OutcomeLabel { outcome });
        }
        for kind in ["new", "updated"] {
            let _ = metrics.articles.get_or_create(&KindLabel { kind });
        }
        metrics
    }
}

impl Metrics {
    /// Records one cycle's fetches.
    pub fn record(&self, events: &[FetchEvent]) {
        let _cycle = self
            .cycle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.cycles.inc();
        for event in events {
            self.fetches
                .get_or_create(&OutcomeLabel {
                    outcome: event.outcome.label(),
                })
                .inc();
            match event.outcome {
                Outcome::Disabled => continue,
                Outcome::Archived { new, updated } => {
                    self.articles
                        .get_or_create(&KindLabel { kind: "new" })
                        .inc_by(new as u64);
                    self.articles
                        .get_or_create(&KindLabel { kind: "updated" })
                        .inc_by(updated as u64);
                }
                _ => {}
            }
            self.fetch_duration.observe(event.elapsed.as_secs_f64());
        }
    }

    /// The text exposition; enrichment tokens (prompt, completion) come from state, so they
    /// survive restarts, and are passed in rather than counted here.
    pub fn render(&self, tokens: (i64, i64), shared: Shared) -> String {
        let _cycle = self
            .cycle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The crate appends the final period to each help text.
        let mut registry = Registry::default();
        registry.register(
            "gazette_fetches",
            "Source fetches by outcome",
            self.fetches.clone(),
        );
        registry.register(
            "gazette_articles_archived",
            "Articles archived, by kind of write",
            self.articles.clone(),
        );
        registry.register(
            "gazette_fetch_duration_seconds",
            "Time from request to stored result, per source",
            self.fetch_duration.clone(),
        );
        let spent: Family<KindLabel, Counter> = Family::default();
        for (kind, count) in [("prompt", tokens.0), ("completion", tokens.1)] {
            // Totals are sums of non-negative counts; a negative one is no count at all.
            spent
                .get_or_create(&KindLabel { kind })
                .inc_by(u64::try_from(count).unwrap_or(0));
        }
        registry.register(
            "gazette_enrichment_tokens",
            "Tokens spent on enrichment",
            spent,
        );
        registry.register(
            "gazette_cycles",
            "Scheduler cycles run",
            self.cycles.clone(),
        );
        for (name, help, value) in [
            (
                "gazette_sources_due",
                "Sources due and not leased",
                shared.due,
            ),
            (
                "gazette_sources_leased",
                "Sources a worker holds a lease on",
                shared.leased,
            ),
            (
                "gazette_enrichments_pending",
                "Articles waiting for their LLM sections",
                shared.pending_enrichments,
            ),
            (
                "gazette_processes",
                "Processes sharing the state (workers and publishers)",
                shared.processes,
            ),
            (
                "gazette_records_unrendered",
                "Article records whose archive file the publisher has yet to write",
                shared.unrendered,
            ),
            (
                "gazette_tokens_spent_today",
                "LLM tokens spent or reserved today (UTC)",
                shared.tokens_today,
            ),
            (
                "gazette_tokens_spent_this_month",
                "LLM tokens spent or reserved this month (UTC)",
                shared.tokens_this_month,
            ),
        ]
        .into_iter()
        .chain(shared.daily_budget.map(|b| {
            (
                "gazette_token_budget_daily",
                "The daily LLM token budget (enrich.daily_token_budget)",
                i64::try_from(b).unwrap_or(i64::MAX),
            )
        }))
        .chain(shared.monthly_budget.map(|b| {
            (
                "gazette_token_budget_monthly",
                "The monthly LLM token budget (enrich.monthly_token_budget)",
                i64::try_from(b).unwrap_or(i64::MAX),
            )
        })) {
            let gauge: Gauge = Gauge::default();
            gauge.set(value);
            registry.register(name, help, gauge);
        }
        let mut out = String::with_capacity(2048);
        if let Err(e) = prometheus_text::encode(&mut out, &registry) {
            // Writing to a String does not fail; should encoding ever, a partial page still
            // says more than none.
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
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

    /// The value of the sample line that starts with `series` (name and labels).
    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.record(&[
            event(Outcome::Archived { new: 3, updated: 1 }, 40),
            event(Outcome::NotModified, 200),
            event(Outcome::Disabled, 0),
        ]);
        let text = metrics.render(
            (10, 5),
            Shared {
                due: 3,
                leased: 2,
                pending_enrichments: 4,
                processes: 1,
                unrendered: 6,
                tokens_today: 7,
                tokens_this_month: 8,
                daily_budget: Some(100),
                monthly_budget: None,
            },
        );
        for (series, value) in [
            ("gazette_tokens_spent_today", "7"),
            ("gazette_token_budget_daily", "100"),
            ("gazette_records_unrendered", "6"),
            ("gazette_fetches_total{outcome=\"archived\"}", "1"),
            ("gazette_fetches_total{outcome=\"not_modified\"}", "1"),
            ("gazette_fetches_total{outcome=\"disabled\"}", "1"),
            ("gazette_fetches_total{outcome=\"failed\"}", "0"),
            ("gazette_articles_archived_total{kind=\"new\"}", "3"),
            ("gazette_articles_archived_total{kind=\"updated\"}", "1"),
            ("gazette_fetch_duration_seconds_bucket{le=\"0.05\"}", "1"),
            ("gazette_fetch_duration_seconds_bucket{le=\"0.1\"}", "1"),
            ("gazette_fetch_duration_seconds_bucket{le=\"0.25\"}", "2"),
            ("gazette_fetch_duration_seconds_bucket{le=\"60\"}", "2"),
            ("gazette_fetch_duration_seconds_bucket{le=\"+Inf\"}", "2"),
            ("gazette_fetch_duration_seconds_count", "2"),
            ("gazette_enrichment_tokens_total{kind=\"prompt\"}", "10"),
            ("gazette_enrichment_tokens_total{kind=\"completion\"}", "5"),
            ("gazette_cycles_total", "1"),
            ("gazette_sources_due", "3"),
            ("gazette_sources_leased", "2"),
            ("gazette_enrichments_pending", "4"),
            ("gazette_processes", "1"),
        ] {
            assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
        }
        let sum: f64 = sample(&text, "gazette_fetch_duration_seconds_sum")
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        assert!((sum - 0.24).abs() < 1e-9, "{text}");
    }

    #[test]
    fn every_family_has_help_and_type_once() {
        let text = Metrics::default().render((0, 0), Shared::default());
        for (name, kind, help) in [
            (
                "gazette_fetches_total",
                "counter",
                "Source fetches by outcome.",
            ),
            (
                "gazette_articles_archived_total",
                "counter",
                "Articles archived, by kind of write.",
            ),
            (
                "gazette_fetch_duration_seconds",
                "histogram",
                "Time from request to stored result, per source.",
            ),
            (
                "gazette_enrichment_tokens_total",
                "counter",
                "Tokens spent on enrichment.",
            ),
            ("gazette_cycles_total", "counter", "Scheduler cycles run."),
        ] {
            let help_line = format!("# HELP {name} {help}\n");
            let type_line = format!("# TYPE {name} {kind}\n");
            assert_eq!(
                text.matches(&help_line).count(),
                1,
                "{help_line} in\n{text}"
            );
            assert_eq!(
                text.matches(&type_line).count(),
                1,
                "{type_line} in\n{text}"
            );
        }
        // Before any cycle every outcome is there at zero, so the first failure is a rise.
        for outcome in Outcome::LABELS {
            let series = format!("gazette_fetches_total{{outcome=\"{outcome}\"}}");
            assert_eq!(sample(&text, &series), Some("0"), "{series} in\n{text}");
        }
    }

    #[test]
    fn counts_add_up_over_cycles_and_negative_token_totals_read_as_zero() {
        let metrics = Metrics::default();
        for _ in 0..3 {
            metrics.record(&[
                event(Outcome::Failed, 70_000),
                event(Outcome::Archived { new: 2, updated: 0 }, 10),
            ]);
        }
        let text = metrics.render((-1, 7), Shared::default());
        assert_eq!(sample(&text, "gazette_cycles_total"), Some("3"), "{text}");
        assert_eq!(
            sample(&text, "gazette_fetches_total{outcome=\"failed\"}"),
            Some("3")
        );
        assert_eq!(
            sample(&text, "gazette_articles_archived_total{kind=\"new\"}"),
            Some("6")
        );
        // 70 s is above the last bound: only +Inf holds those fetches.
        assert_eq!(
            sample(&text, "gazette_fetch_duration_seconds_bucket{le=\"60\"}"),
            Some("3")
        );
        assert_eq!(
            sample(&text, "gazette_fetch_duration_seconds_bucket{le=\"+Inf\"}"),
            Some("6")
        );
        assert_eq!(
            sample(&text, "gazette_enrichment_tokens_total{kind=\"prompt\"}"),
            Some("0")
        );
    }
}
