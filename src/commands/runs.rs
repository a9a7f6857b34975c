//! Commands that write: `fetch`, `fetch --due`, `enrich`, `build`.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::Utc;
use gazette::config::Settings;
use gazette::format::format_date;
use gazette::pipeline::{CycleOptions, Ended, EnrichOptions, EnrichReport, Refresh, recover};
use gazette::schedule::{self, Due};

use super::{EXIT_SOURCES_FAILED, open_pipeline, open_store, without_source, writer_lock};

/// How `fetch` runs and reports.
pub(crate) struct FetchOptions {
    pub(crate) force: bool,
    pub(crate) enrich: bool,
    pub(crate) per_source: bool,
}

pub(crate) async fn fetch(
    settings: Settings,
    ids: &[String],
    fetch: FetchOptions,
) -> Result<ExitCode> {
    let FetchOptions {
        force,
        enrich,
        per_source,
    } = fetch;
    let sources = settings.select_sources(ids).map_err(anyhow::Error::msg)?;
    let _lock = match writer_lock(&settings).await? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let pipeline = open_pipeline(settings).await?;
    recover::ensure_state_knows_archive(pipeline.settings(), pipeline.store()).await?;
    let interactive = std::io::stdout().is_terminal();
    let bar = interactive.then(|| {
        let bar = indicatif::ProgressBar::new(sources.len() as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} sources {msg}")
        {
            bar.set_style(style);
        }
        bar
    });
    let cycle = pipeline
        .run_cycle(&sources, CycleOptions { force, enrich }, |report| {
            if let Some(bar) = &bar {
                bar.set_message(report.source.clone());
                bar.inc(1);
            }
        })
        .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    let failed = cycle.failed();
    let (new, updated) = (cycle.new_articles(), cycle.updated_articles());
    let every_line = interactive || per_source;
    let mut out = std::io::stdout().lock();
    for report in &cycle.sources {
        let line = match &report.outcome {
            Ok(Refresh::Archived(c)) => format!(
                "{} new, {} updated, {} unchanged, {} skipped",
                c.new, c.updated, c.unchanged, c.skipped
            ),
            Ok(Refresh::NotModified) => "not modified (HTTP 304)".to_owned(),
            Ok(Refresh::SameBody) => "unchanged (same body as last time)".to_owned(),
            Ok(Refresh::NotDue(at)) => format!("not due until {}", format_date(at)),
            Ok(Refresh::Disabled(reason)) => {
                format!("disabled ({reason}); fix its url or fetch with --force")
            }
            // The line starts with the source's id; the message need not say it again.
            Err(e) => format!("failed: {}", without_source(&report.source, &e.to_string())),
        };
        if every_line || report.outcome.is_err() {
            writeln!(out, "{}: {line}", report.source)?;
        }
    }
    if let Some(enrichment) = cycle.enrichment {
        let report = enrichment.context("enriching articles")?;
        writeln!(out, "{}", enrich_summary(&report))?;
    }
    cycle.pruned.context("pruning old state")?;
    let feed_changed = cycle.feed.context("writing the merged feed")?;
    // Sources failing for long, though backing off and not fetched now: a dead feed must not
    // go unnoticed because its retries are far apart. Those that failed now are told above.
    let alert_after = pipeline.settings().fetch.alert_after;
    let since = Utc::now() - chrono::Duration::from_std(alert_after).unwrap_or_default();
    let ids: Vec<String> = sources.iter().map(|s| s.id.clone()).collect();
    let long_failing = pipeline.store().failing_since(&ids, &since).await?;
    for (id, since, error) in &long_failing {
        let told = cycle
            .sources
            .iter()
            .any(|r| r.source == *id && r.outcome.is_err());
        if !told {
            writeln!(
                out,
                "{id}: failing since {}: {}",
                format_date(since),
                without_source(id, error)
            )?;
        }
    }
    let long = if long_failing.is_empty() {
        String::new()
    } else {
        format!(
            ", {} failing for more than {}",
            long_failing.len(),
            humantime::format_duration(alert_after)
        )
    };
    writeln!(
        out,
        "{} sources, {} new, {} updated, {} failed{long}; feed {} {}",
        cycle.sources.len(),
        new,
        updated,
        failed,
        pipeline.settings().feed_path.display(),
        if feed_changed { "written" } else { "unchanged" }
    )?;
    pipeline.store().clone().close().await;
    Ok(if failed > 0 || !long_failing.is_empty() {
        ExitCode::from(EXIT_SOURCES_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn enrich_summary(report: &EnrichReport) -> String {
    format!(
        "enrichment: {} enriched, {} failed (retried on a later run)",
        report.enriched, report.failed
    )
}

pub(crate) async fn backfill(settings: Settings, id: &str, max_pages: u32) -> Result<ExitCode> {
    let sources = settings
        .select_sources(&[id.to_owned()])
        .map_err(anyhow::Error::msg)?;
    let Some(source) = sources.first() else {
        anyhow::bail!("there is no source {id:?} in the config");
    };
    let _lock = match writer_lock(&settings).await? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let pipeline = open_pipeline(settings.clone()).await?;
    recover::ensure_state_knows_archive(pipeline.settings(), pipeline.store()).await?;
    let report = pipeline
        .backfill(source, max_pages)
        .await
        .with_context(|| format!("{id}: backfilling"))?;
    let feed_changed = pipeline
        .publish_feed()
        .await
        .context("writing the merged feed")?;
    let c = &report.counts;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{id}: {} pages walked ({} read, {} unchanged); {} new, {} updated, {} unchanged, {} skipped",
        report.pages,
        report.read,
        report.pages - report.read,
        c.new,
        c.updated,
        c.unchanged,
        c.skipped
    )?;
    if report.removed > 0 {
        writeln!(
            out,
            "{id}: {} articles removed: the complete feed no longer lists them",
            report.removed
        )?;
    }
    let oldest = report
        .oldest
        .as_ref()
        .map_or_else(|| "no articles".to_owned(), format_date);
    let ended = report.ended.describe();
    let ended = without_source(id, &ended);
    writeln!(out, "{id}: {ended}; oldest article {oldest}")?;
    if feed_changed {
        writeln!(out, "feeds written")?;
    }
    Ok(match report.ended {
        Ended::Failed(_) => ExitCode::from(EXIT_SOURCES_FAILED),
        _ => ExitCode::SUCCESS,
    })
}

pub(crate) async fn enrich(settings: Settings, options: EnrichOptions) -> Result<ExitCode> {
    if settings.enrich.provider.is_none() {
        anyhow::bail!(
            "{}: enrichment is not configured (no [enrich] provider)",
            settings.config_path.display()
        );
    }
    let _lock = match writer_lock(&settings).await? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let pipeline = open_pipeline(settings).await?;
    recover::ensure_state_knows_archive(pipeline.settings(), pipeline.store()).await?;
    let report = pipeline
        .enrich_pending(&options)
        .await
        .context("enriching articles")?;
    let mut out = std::io::stdout().lock();
    if options.dry_run {
        for request in &report.requests {
            writeln!(out, "{request}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{}", enrich_summary(&report))?;
    let changed = pipeline
        .publish_feed()
        .await
        .context("writing the merged feed")?;
    writeln!(
        out,
        "feed {} {}",
        pipeline.settings().feed_path.display(),
        if changed { "written" } else { "unchanged" }
    )?;
    Ok(if report.failed > 0 {
        ExitCode::from(EXIT_SOURCES_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) async fn list_due(settings: Settings, ids: &[String]) -> Result<ExitCode> {
    let sources = settings.select_sources(ids).map_err(anyhow::Error::msg)?;
    let store = open_store(&settings).await?;
    let now = Utc::now();
    let mut out = std::io::stdout().lock();
    for source in &sources {
        let state = store.source_state(&source.id).await?;
        let configured = source.location.to_string();
        let when = match schedule::due(&configured, state.as_ref().map(Into::into), now) {
            Due::Disabled(reason) => format!("disabled ({reason})"),
            Due::At(at) => format!("due at {}", format_date(&at)),
            Due::Now if state.is_none() => "due now (never fetched)".to_owned(),
            Due::Now => "due now".to_owned(),
        };
        writeln!(out, "{}: {when}", source.id)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn build(
    settings: Settings,
    rerender: bool,
    site: Option<std::path::PathBuf>,
) -> Result<ExitCode> {
    let _lock = match writer_lock(&settings).await? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let pipeline = open_pipeline(settings).await?;
    if rerender {
        recover::ensure_state_knows_archive(pipeline.settings(), pipeline.store()).await?;
        let changed = pipeline
            .rerender_all()
            .await
            .context("rendering the archive again")?;
        println!("{changed} archive files rendered again");
    }
    let changed = pipeline
        .publish_feed()
        .await
        .context("writing the merged feed")?;
    println!(
        "feed {} {}",
        pipeline.settings().feed_path.display(),
        if changed { "written" } else { "unchanged" }
    );
    if let Some(dir) = site {
        let built =
            gazette::publish::site::build::write_site(pipeline.settings(), pipeline.store(), &dir)
                .await
                .with_context(|| format!("writing the site into {}", dir.display()))?;
        println!(
            "site {}: {} files, {} written, {} removed",
            dir.display(),
            built.files,
            built.written,
            built.removed
        );
    }
    Ok(ExitCode::SUCCESS)
}
