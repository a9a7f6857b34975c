//! Commands that only look: `check`, `status`, `preview`.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::Utc;
use gazette::config::{FetchConfig, Location, Settings, Source};
use gazette::fetch::Fetcher;
use gazette::format::format_date;
use gazette::pipeline::read_feed;
use gazette::store::SourceStatus;

use super::{open_store, without_source};

pub(crate) async fn check(settings: &Settings) -> Result<ExitCode> {
    // The state's pages, when there is a state: `check` creates none.
    let state = if settings.state_file.as_ref().is_none_or(|f| f.exists()) {
        let store = open_store(settings).await?;
        let checked = store.check_integrity(false).await;
        store.close().await;
        checked?;
        "ok (quick_check)"
    } else {
        "none yet"
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "config   {}: ok", settings.config_path.display())?;
    writeln!(out, "archive  {}", settings.archive_dir.display())?;
    writeln!(
        out,
        "feed     {} ({} newest entries)",
        settings.feed_path.display(),
        settings.feed.max_entries
    )?;
    writeln!(out, "state    {}: {state}", settings.state_url)?;
    writeln!(
        out,
        "sources  {} (fetching {} at a time)",
        settings.sources.len(),
        settings.fetch.concurrency
    )?;
    for s in &settings.sources {
        writeln!(
            out,
            "  {:<16} {}  author={} tags=[{}] language={}",
            s.id,
            s.location,
            s.author,
            s.tags.join(", "),
            s.language.as_deref().unwrap_or("(from feed)")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// How `status` shows the sources.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatusView {
    pub json: bool,
    pub long: bool,
    pub failed: bool,
}

pub(crate) async fn status(settings: &Settings, view: StatusView) -> Result<ExitCode> {
    let store = open_store(settings).await?;
    let mut rows = store.source_status().await?;
    let enrichment = store.enrichment_totals().await?;
    let enrichment_failures = store.enrichment_failures().await?;
    let now = chrono::Utc::now();
    let workers = store.workers(&now).await?;
    let queue = store.queue(&now).await?;
    let spend = store.token_spend(&now).await?;
    store.close().await;
    let (daily, monthly) = (
        settings.enrich.daily_token_budget,
        settings.enrich.monthly_token_budget,
    );
    let mut out = std::io::stdout().lock();
    if view.json {
        let workers: Vec<_> = workers
            .iter()
            .map(|w| {
                serde_json::json!({"id": w.id, "role": w.role, "host": w.host, "pid": w.pid,
                    "heartbeat_at": w.heard_at(), "leases": w.leases})
            })
            .collect();
        let failures: Vec<_> = enrichment_failures
            .iter()
            .map(|(source, key, error, next)| {
                serde_json::json!({"source": source, "key": key, "error": error, "next_attempt_at": next})
            })
            .collect();
        let value = serde_json::json!({
            "sources": rows,
            "enrichment": enrichment,
            "enrichment_errors": failures,
            "workers": workers,
            "budget": {"daily": daily, "monthly": monthly,
                       "spent_today": spend.today, "spent_this_month": spend.this_month},
            "queue": {"due": queue.due, "leased": queue.leased,
                      "pending_enrichments": queue.pending_enrichments,
                      "unrendered": queue.unrendered},
        });
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Processes sharing this state (workers and publishers): only when there are any.
    if !workers.is_empty() {
        writeln!(
            out,
            "queue: {} due, {} leased, {} enrichments pending, {} files to write",
            queue.due, queue.leased, queue.pending_enrichments, queue.unrendered
        )?;
        for w in &workers {
            writeln!(
                out,
                "  {} {} on {} (pid {}): {} leases, last heard {}",
                w.role,
                w.id,
                w.host,
                w.pid,
                w.leases,
                format_date(&w.heard_at())
            )?;
        }
    }
    if settings.enrich.provider.is_some() {
        writeln!(
            out,
            "enrichment: {} enriched, {} pending, {} failed; {} prompt + {} completion tokens",
            enrichment.enriched,
            enrichment.pending,
            enrichment.failed,
            enrichment.prompt_tokens,
            enrichment.completion_tokens
        )?;
        let against = |spent: i64, budget: Option<u64>| match budget {
            Some(budget) => format!("{spent} of {budget}"),
            None => format!("{spent}, no budget"),
        };
        if daily.is_some() || monthly.is_some() {
            writeln!(
                out,
                "  tokens today (UTC): {}; this month: {}",
                against(spend.today, daily),
                against(spend.this_month, monthly)
            )?;
        }
        for (source, key, error, next) in &enrichment_failures {
            writeln!(
                out,
                "  {source} {key}: {error} (next attempt {})",
                format_date(next)
            )?;
        }
    }
    // The configured sources, in config order, those never fetched included; a source only
    // state knows (taken out of the config) is not one of them.
    let removed: Vec<SourceStatus> = rows
        .iter()
        .filter(|r| r.removed_at.is_some())
        .cloned()
        .collect();
    let configured: Vec<SourceStatus> = settings
        .sources
        .iter()
        .map(|source| {
            match rows
                .iter()
                .position(|r| r.id == source.id && r.removed_at.is_none())
            {
                Some(at) => rows.swap_remove(at),
                None => SourceStatus::never_fetched(&source.id, &source.location.to_string()),
            }
        })
        .filter(|r| !view.failed || r.consecutive_failures > 0 || r.disabled_reason.is_some())
        .collect();
    let width = configured.iter().map(|r| r.id.len()).max().unwrap_or(0);
    for r in &configured {
        if view.long {
            write_long(&mut out, r)?;
        } else {
            writeln!(out, "{}", one_line(r, width))?;
        }
    }
    if !view.failed && !removed.is_empty() {
        let listed: Vec<String> = removed
            .iter()
            .map(|r| format!("{} ({} files)", r.id, r.articles))
            .collect();
        writeln!(
            out,
            "removed, files still known: {}; `gazette remove ID --purge` deletes them",
            listed.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One source in one line: id, how its last fetch went, articles, when it is due, and the
/// error when it failed.
fn one_line(r: &SourceStatus, width: usize) -> String {
    let outcome = match (&r.disabled_reason, r.last_status.as_deref()) {
        (Some(_), _) => "disabled".to_owned(),
        (None, None) => "never fetched".to_owned(),
        (None, Some(_)) if r.consecutive_failures > 0 => {
            format!("failed {}x", r.consecutive_failures)
        }
        (None, Some(status)) => match r.last_http_status {
            Some(code) => format!("{status} ({code})"),
            None => status.to_owned(),
        },
    };
    let next = r
        .next_due_at
        .as_ref()
        .map_or_else(|| "now".to_owned(), format_date);
    let mut line = format!(
        "{:<width$}  {outcome:<18} {:>6} articles  next {next}",
        r.id, r.articles
    );
    if let Some(reason) = &r.disabled_reason {
        line.push_str(&format!("  {reason}"));
    } else if r.consecutive_failures > 0
        && let Some(error) = &r.last_error
    {
        line.push_str(&format!("  {}", without_source(&r.id, error)));
    }
    if r.selector_stopped_matching {
        line.push_str("  extract selector no longer matches (layout changed?)");
    }
    line
}

fn write_long(out: &mut impl std::io::Write, r: &SourceStatus) -> std::io::Result<()> {
    let never = || "never".to_owned();
    let http = r
        .last_http_status
        .map(|s| format!(" (HTTP {s})"))
        .unwrap_or_default();
    writeln!(
        out,
        "{}: {}{http}",
        r.id,
        r.last_status.as_deref().unwrap_or("never fetched")
    )?;
    writeln!(out, "  url            {}", r.url)?;
    if let Some(moved) = &r.moved_to {
        writeln!(
            out,
            "  moved to       {moved} (permanent redirect; fetched from here)"
        )?;
    }
    writeln!(
        out,
        "  last fetch     {}",
        r.last_fetch_at.as_ref().map_or_else(never, format_date)
    )?;
    writeln!(
        out,
        "  next due       {}",
        r.next_due_at
            .as_ref()
            .map_or_else(|| "now".to_owned(), format_date)
    )?;
    writeln!(
        out,
        "  validators     {}",
        if r.has_validators { "yes" } else { "no" }
    )?;
    writeln!(out, "  failures       {} in a row", r.consecutive_failures)?;
    if let Some(reason) = &r.disabled_reason {
        writeln!(out, "  disabled       {reason}")?;
    }
    if let Some(error) = &r.last_error {
        match &r.last_error_kind {
            Some(kind) => writeln!(out, "  last error     [{kind}] {error}")?,
            None => writeln!(out, "  last error     {error}")?,
        }
    }
    writeln!(out, "  articles       {}", r.articles)?;
    if let Some(oldest) = &r.oldest_article {
        writeln!(out, "  reaches back   {}", format_date(oldest))?;
    }
    if let Some(b) = &r.backfill {
        writeln!(
            out,
            "  backfill       {}: {} pages; {}",
            format_date(&b.finished_at),
            b.pages,
            b.ended
        )?;
    }
    Ok(())
}

/// `gazette search QUERY`: the archived articles that hold every word, best first, as lines
/// (date, title, file, the passage around the first hit) or as JSON.
pub(crate) async fn search(
    settings: &Settings,
    query: &str,
    json: bool,
    limit: usize,
) -> Result<ExitCode> {
    let store = open_store(settings).await?;
    let found = store.search(query, limit, 0).await?;
    store.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        let hits: Vec<_> = found
            .iter()
            .map(|r| {
                serde_json::json!({
                    "path": r.path,
                    "title": r.doc.title(),
                    "date": format_date(&r.doc.date),
                    "source": r.source,
                    "link": r.doc.link,
                    "snippet": gazette::publish::site::plain_snippet(r, query),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &hits)?;
        writeln!(out)?;
    } else {
        for r in &found {
            writeln!(
                out,
                "{}  {}\n  {}\n  {}",
                format_date(&r.doc.date),
                r.doc.title(),
                settings.archive_dir.join(&r.path).display(),
                gazette::publish::site::plain_snippet(r, query)
            )?;
        }
        if found.is_empty() {
            writeln!(out, "nothing archived matches {query:?}")?;
        }
    }
    Ok(if found.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) async fn preview(
    config: &FetchConfig,
    location: &str,
    id: &str,
    base: Option<&url::Url>,
) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let location = Location::parse(location, &cwd).map_err(anyhow::Error::msg)?;
    let source = Source::adhoc(id, location);
    let fetcher = Fetcher::new(config)?;
    let (_, parsed) = read_feed(&fetcher, &source, config, base).await?;
    let parsed = parsed?;
    let mut out = std::io::stdout().lock();
    for (entry, article) in parsed.articles(&source, Utc::now()) {
        let a = match article {
            Ok(article) => article,
            Err(skip) => {
                tracing::warn!(source = %source.id, "skipped: {skip}");
                continue;
            }
        };
        let line = serde_json::json!({
            "source": a.source,
            "key": a.key,
            "title": a.doc.title(),
            "link": a.doc.link,
            "date": format_date(&a.doc.date),
            "description": a.doc.description,
            "tags": a.doc.tags,
            "author": a.doc.author,
            "authors": a.bylines,
            "published": entry.published.map(|d| format_date(&d)),
            "updated": entry.updated.map(|d| format_date(&d)),
            "enclosures": a.enclosures,
            "language": a.doc.original.language,
            "body": a.doc.original.body,
        });
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `preview URL --extract`: the article page's text as it would be archived, by the first of
/// `selectors` that matches (each without the `remove` parts), else Readability's pick,
/// and which rule found it. The page is fetched like a configured source, from anywhere.
pub(crate) async fn preview_extract(
    config: &FetchConfig,
    location: &str,
    selectors: &[String],
    remove: &[String],
) -> Result<ExitCode> {
    use gazette::config::{Extract, ExtractConfig};
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let location = Location::parse(location, &cwd).map_err(anyhow::Error::msg)?;
    let source = Source::adhoc("preview", location.clone());
    let fetcher = Fetcher::new(config)?;
    let fetched = match fetcher
        .fetch_source(&source, &location, &gazette::fetch::Validators::default())
        .await?
    {
        gazette::fetch::FetchOutcome::Body(fetched) => fetched,
        gazette::fetch::FetchOutcome::NotModified(_) => {
            anyhow::bail!("{location} answered 304 Not Modified to an unconditional request")
        }
    };
    let page =
        gazette::parse::encoding::html_to_utf8(&fetched.body, fetched.content_type.as_deref());
    let base = fetched.meta.url.clone().or_else(|| match &location {
        Location::Http(url) => Some(url.clone()),
        Location::File(path) => url::Url::from_file_path(path).ok(),
    });
    let base = base.context("the page has no URL to resolve its links against")?;
    let rules = |content: Option<&String>| {
        Extract::new(&ExtractConfig {
            content: content.cloned(),
            remove: remove.to_vec(),
        })
        .map_err(anyhow::Error::msg)
    };
    // The first selector that matches; the density rule when none does (or none is given).
    let mut found = None;
    for selector in selectors {
        if let Some((extracted, gazette::extract::Rule::Selector)) =
            gazette::extract::extract_with_rule(&page, &base, &rules(Some(selector))?)
        {
            found = Some((extracted, format!("selector `{selector}` matched")));
            break;
        }
    }
    if found.is_none() {
        found = gazette::extract::extract_with_rule(&page, &base, &rules(None)?).map(
            |(extracted, _)| {
                let rule = if selectors.is_empty() {
                    "no selector: Readability's pick of the page".to_owned()
                } else {
                    "no selector matched: Readability's pick of the page".to_owned()
                };
                (extracted, rule)
            },
        );
    }
    let Some((extracted, rule)) = found else {
        eprintln!(
            "gazette: {location}: the page has no article text (the feed's content would be archived)"
        );
        return Ok(ExitCode::from(1));
    };
    let markdown = gazette::text::html_to_markdown(&extracted.html, Some(&base));
    let mut out = std::io::stdout().lock();
    writeln!(out, "rule: {rule}")?;
    if let Some(canonical) = &extracted.canonical {
        writeln!(out, "canonical: {canonical}")?;
    }
    writeln!(out)?;
    writeln!(out, "{markdown}")?;
    Ok(ExitCode::SUCCESS)
}
