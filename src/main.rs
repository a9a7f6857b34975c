//! The `gazette` command: argument parsing, logging set-up, and exit codes.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use chrono::Utc;
use clap::{Parser, Subcommand};
use gazette::config::{FetchConfig, Location, Settings, Source};
use gazette::fetch::{FetchOutcome, Fetched, Fetcher, Validators};
use gazette::lock::WriterLock;
use gazette::normalize::{self, FeedContext};
use gazette::parse::ParseLimits;
use gazette::pipeline::{EnrichOptions, EnrichReport, Pipeline, Refresh, RunOptions};
use gazette::publish::archive::format_date;
use gazette::store::Store;

/// Exit code when at least one source failed and the others were processed.
const EXIT_SOURCES_FAILED: u8 = 3;
/// Exit code for errors that stop the whole run (bad config, unusable state).
const EXIT_FATAL: u8 = 1;
/// Exit code when another process (the daemon, another `fetch`) holds the archive's lock.
const EXIT_LOCKED: u8 = 4;

#[derive(Debug, Parser)]
#[command(
    name = "gazette",
    version,
    about = "Feed aggregator: a Markdown archive and a merged Atom feed from many feeds"
)]
struct Cli {
    /// The config file; relative paths inside it resolve against its folder.
    #[arg(
        long,
        global = true,
        env = "GAZETTE_CONFIG",
        default_value = "config/gazette.toml"
    )]
    config: PathBuf,

    /// More log output (repeat for more); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Log lines as text or as JSON objects (for log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run as a daemon: fetch each source when it is due and serve the feeds over HTTP.
    Run {
        /// Address to listen on; overrides `serve.listen`.
        #[arg(long)]
        listen: Option<String>,
    },
    /// One pass over the sources: archive what is new or changed, then rebuild the feed.
    Fetch {
        /// Only this source (repeatable).
        #[arg(long = "source", value_name = "ID")]
        sources: Vec<String>,
        /// Fetch every selected source now, also those not due and those disabled.
        #[arg(long)]
        force: bool,
        /// List which sources are due and when the others are; fetch nothing.
        #[arg(long, conflicts_with = "force")]
        due: bool,
        /// Archive new articles without asking the LLM now; they stay pending for `enrich`.
        #[arg(long)]
        no_enrich: bool,
        /// Print a line for every source, also when not on a terminal (under cron only
        /// failures and the summary are printed).
        #[arg(long, env = "GAZETTE_PER_SOURCE", value_parser = clap::builder::BoolishValueParser::new())]
        per_source: bool,
    },
    /// Give pending articles their LLM sections and rewrite their files in place.
    Enrich {
        /// Only this source (repeatable).
        #[arg(long = "source", value_name = "ID")]
        sources: Vec<String>,
        /// Also retry articles that ran out of attempts or are backing off.
        #[arg(long)]
        retry_failed: bool,
        /// Print the requests it would make (as JSON lines) and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Normalize a feed and print one JSON object per article; writes nothing.
    Preview {
        /// An http(s):// or file:// URL, or a path.
        location: String,
        /// The source id the articles are shown under.
        #[arg(long, default_value = "preview")]
        id: String,
    },
    /// Rebuild the merged Atom feed from state.
    Build,
    /// Add the feeds of an OPML file (as exported by feed readers) as sources.
    Import {
        /// The OPML file.
        file: PathBuf,
    },
    /// Print the sources as OPML 2.0.
    Export,
    /// Find the feed of a web page (or take a feed URL), preview it and add it as a source.
    Add {
        /// A page that announces its feed, or the feed itself.
        url: String,
        /// Tags for the new source (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Check the config and print what a fetch would do.
    Check,
    /// Show each source's last fetch.
    Status {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gazette: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gazette: {e:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

fn init_tracing(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "info,sqlx=warn",
        _ => "debug,sqlx=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Preview { location, id } => preview(&location, &id).await,
        Command::Run { listen } => run_daemon(load(&cli.config)?, cli.config.clone(), listen).await,
        Command::Check => check(&load(&cli.config)?),
        Command::Fetch {
            sources,
            force,
            due,
            no_enrich,
            per_source,
        } => {
            let settings = load(&cli.config)?;
            if due {
                list_due(settings, &sources).await
            } else {
                let options = FetchOptions {
                    force,
                    enrich: !no_enrich,
                    per_source,
                };
                fetch(settings, &sources, options).await
            }
        }
        Command::Enrich {
            sources,
            retry_failed,
            dry_run,
        } => {
            let options = EnrichOptions {
                sources,
                retry_failed,
                dry_run,
            };
            enrich(load(&cli.config)?, options).await
        }
        Command::Build => build(load(&cli.config)?).await,
        Command::Import { file } => import(&cli.config, &file),
        Command::Export => {
            let settings = load(&cli.config)?;
            print!(
                "{}",
                gazette::opml::export(&settings.feed.title, &settings.sources)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Add { url, tags } => add(&cli.config, &url, tags).await,
        Command::Status { json } => status(&load(&cli.config)?, json).await,
    }
}

fn load(path: &Path) -> Result<Settings> {
    Ok(Settings::load(path)?)
}

async fn open_pipeline(settings: Settings) -> Result<Pipeline> {
    let store = open_store(&settings).await?;
    let fetcher = Fetcher::new(&settings.fetch)?;
    Ok(Pipeline::new(Arc::new(settings), store, fetcher)?)
}

/// Takes the archive's writer lock, or says who holds it.
fn writer_lock(settings: &Settings) -> Result<std::result::Result<WriterLock, ExitCode>> {
    match WriterLock::acquire(&settings.lock_path, settings.lock_timeout)? {
        Ok(lock) => Ok(Ok(lock)),
        Err(busy) => {
            eprintln!("gazette: {busy}");
            Ok(Err(ExitCode::from(EXIT_LOCKED)))
        }
    }
}

async fn run_daemon(
    settings: Settings,
    config_path: PathBuf,
    listen: Option<String>,
) -> Result<ExitCode> {
    let _lock = match writer_lock(&settings)? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            if reload_tx.send(()).await.is_err() {
                break;
            }
        }
    });
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    let options = gazette::daemon::DaemonOptions {
        config_path,
        listen,
    };
    gazette::daemon::run(settings, options, shutdown, reload_rx, |addr| {
        println!("listening on http://{addr}");
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// How `fetch` runs and reports.
struct FetchOptions {
    force: bool,
    enrich: bool,
    per_source: bool,
}

async fn fetch(settings: Settings, ids: &[String], fetch: FetchOptions) -> Result<ExitCode> {
    let FetchOptions {
        force,
        enrich,
        per_source,
    } = fetch;
    let sources = settings.select_sources(ids).map_err(anyhow::Error::msg)?;
    let _lock = match writer_lock(&settings)? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let deadline = tokio::time::Instant::now() + settings.fetch.run_deadline;
    let pipeline = open_pipeline(settings).await?;
    let options = RunOptions {
        force,
        deadline: Some(deadline),
        no_enrich: !enrich,
    };
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
    let mut reports = pipeline
        .refresh_all_with(&sources, options, |report| {
            if let Some(bar) = &bar {
                bar.set_message(report.source.clone());
                bar.inc(1);
            }
        })
        .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    reports.sort_by(|a, b| a.source.cmp(&b.source));

    let every_line = interactive || per_source;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for report in &reports {
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
            Err(e) => {
                failed += 1;
                format!("failed: {e}")
            }
        };
        if every_line || report.outcome.is_err() {
            writeln!(out, "{}: {line}", report.source)?;
        }
    }
    if enrich && pipeline.enricher().is_some() {
        let options = EnrichOptions {
            sources: ids.to_vec(),
            ..EnrichOptions::default()
        };
        let report = pipeline
            .enrich_pending(&options)
            .await
            .context("enriching articles")?;
        writeln!(out, "{}", enrich_summary(&report))?;
    }
    let feed_changed = pipeline
        .publish_feed()
        .await
        .context("writing the merged feed")?;
    writeln!(
        out,
        "{} sources, {} failed; feed {} {}",
        reports.len(),
        failed,
        pipeline.settings().feed_path.display(),
        if feed_changed { "written" } else { "unchanged" }
    )?;
    pipeline.store().clone().close().await;
    Ok(if failed > 0 {
        ExitCode::from(EXIT_SOURCES_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn enrich_summary(report: &EnrichReport) -> String {
    format!(
        "enrichment: {} enriched, {} failed (retried on a later run)",
        report.enriched, report.failed
    )
}

async fn enrich(settings: Settings, options: EnrichOptions) -> Result<ExitCode> {
    if settings.enrich.provider.is_none() {
        anyhow::bail!(
            "{}: enrichment is not configured (no [enrich] provider)",
            settings.config_path.display()
        );
    }
    let _lock = match writer_lock(&settings)? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let pipeline = open_pipeline(settings).await?;
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

async fn list_due(settings: Settings, ids: &[String]) -> Result<ExitCode> {
    let sources = settings.select_sources(ids).map_err(anyhow::Error::msg)?;
    let store = open_store(&settings).await?;
    let now = Utc::now();
    let mut out = std::io::stdout().lock();
    for source in &sources {
        let state = store.source_state(&source.id).await?;
        let configured = source.location.to_string();
        let state = state.filter(|s| s.url == configured);
        let when = match state {
            Some(s) if s.disabled_reason.is_some() => {
                format!("disabled ({})", s.disabled_reason.unwrap_or_default())
            }
            Some(s) => match s.next_due_at.filter(|due| *due > now) {
                Some(due) => format!("due at {}", format_date(&due)),
                None => "due now".to_owned(),
            },
            None => "due now (never fetched)".to_owned(),
        };
        writeln!(out, "{}: {when}", source.id)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn open_store(settings: &Settings) -> Result<Store> {
    Store::open(&settings.state_url)
        .await
        .with_context(|| format!("opening the state database {}", settings.state_url))
}

async fn build(settings: Settings) -> Result<ExitCode> {
    let _lock = match writer_lock(&settings)? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let pipeline = open_pipeline(settings).await?;
    let changed = pipeline
        .publish_feed()
        .await
        .context("writing the merged feed")?;
    println!(
        "feed {} {}",
        pipeline.settings().feed_path.display(),
        if changed { "written" } else { "unchanged" }
    );
    Ok(ExitCode::SUCCESS)
}

fn check(settings: &Settings) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "config   {}: ok", settings.config_path.display())?;
    writeln!(out, "archive  {}", settings.archive_dir.display())?;
    writeln!(
        out,
        "feed     {} ({} newest entries)",
        settings.feed_path.display(),
        settings.feed.max_entries
    )?;
    writeln!(out, "state    {}", settings.state_url)?;
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

async fn status(settings: &Settings, json: bool) -> Result<ExitCode> {
    let store = open_store(settings).await?;
    let rows = store.source_status().await?;
    let enrichment = store.enrichment_totals().await?;
    let enrichment_failures = store.enrichment_failures().await?;
    let mut out = std::io::stdout().lock();
    if json {
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
        });
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    } else {
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
            for (source, key, error, next) in &enrichment_failures {
                writeln!(
                    out,
                    "  {source} {key}: {error} (next attempt {})",
                    format_date(next)
                )?;
            }
        }
        let never = || "never".to_owned();
        for r in rows {
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
                writeln!(out, "  last error     {error}")?;
            }
            writeln!(out, "  articles       {}", r.articles)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn import(config: &Path, file: &Path) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let feeds =
        gazette::opml::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let outcome = gazette::config::edit::add_sources(config, &feeds)?;
    println!(
        "{}: {} sources added ({}), {} already configured",
        config.display(),
        outcome.added.len(),
        outcome.added.join(", "),
        outcome.skipped.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Fetches and parses `url` as a feed, with everything a preview shows.
async fn fetch_feed(
    fetcher: &Fetcher,
    url: &str,
) -> Result<(Fetched, Option<feed_rs::model::Feed>)> {
    let location = Location::parse(url, &std::env::current_dir()?).map_err(anyhow::Error::msg)?;
    let source = Source::adhoc("add", location);
    let fetched = match fetcher
        .fetch_source(&source, &source.location, &Validators::default())
        .await?
    {
        FetchOutcome::Body(fetched) => fetched,
        FetchOutcome::NotModified(_) => {
            anyhow::bail!("{url}: answered 304 Not Modified to an unconditional request")
        }
    };
    let parsed = gazette::parse::parse_feed(
        &fetched.body,
        fetched.content_type.as_deref(),
        fetched.meta.url.as_ref(),
        &ParseLimits::default(),
    );
    Ok((fetched, parsed.ok().map(|p| p.feed)))
}

async fn add(config: &Path, url: &str, tags: Vec<String>) -> Result<ExitCode> {
    let settings = load(config)?;
    let fetcher = Fetcher::new(&settings.fetch)?;
    let (page, feed) = fetch_feed(&fetcher, url).await?;
    let (feed_url, feed) = match feed {
        Some(feed) => (url.to_owned(), feed),
        None => {
            let base = page
                .meta
                .url
                .clone()
                .ok_or_else(|| anyhow::anyhow!("{url}: no base URL"))?;
            let html = String::from_utf8_lossy(&page.body);
            let found = gazette::opml::discover(&html, &base);
            let Some(first) = found.first() else {
                anyhow::bail!(
                    "{url}: neither a feed nor a page that announces one (<link rel=\"alternate\">)"
                );
            };
            // The page chose this address, not the operator: it goes through the SSRF guard.
            let announced = url::Url::parse(&first.url)?;
            let fetched = fetcher.fetch_content("add", &announced).await?;
            let feed = gazette::parse::parse_feed(
                &fetched.body,
                fetched.content_type.as_deref(),
                fetched.meta.url.as_ref(),
                &ParseLimits::default(),
            )
            .map(|parsed| parsed.feed)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: announced as a feed, but not readable as one: {e}",
                    first.url
                )
            })?;
            (first.url.clone(), feed)
        }
    };
    let title = feed
        .title
        .as_ref()
        .map(|t| gazette::text::html_to_text(&t.content))
        .unwrap_or_default();
    println!("feed: {feed_url}");
    println!("title: {title}");
    println!("entries: {}", feed.entries.len());
    for entry in feed.entries.iter().take(3) {
        let entry_title = entry
            .title
            .as_ref()
            .map(|t| gazette::text::html_to_text(&t.content))
            .unwrap_or_default();
        println!("  - {entry_title}");
    }
    let found = gazette::opml::FoundFeed {
        title,
        url: feed_url,
        tags: gazette::normalize::normalize_tags(tags.iter().map(String::as_str)),
    };
    let outcome = gazette::config::edit::add_sources(config, &[found])?;
    match outcome.added.first() {
        Some(id) => println!("added source {id} to {}", config.display()),
        None => println!("already configured in {}", config.display()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn preview(location: &str, id: &str) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let location = Location::parse(location, &cwd).map_err(anyhow::Error::msg)?;
    let source = Source::adhoc(id, location);
    let config = FetchConfig::default();
    let fetcher = Fetcher::new(&config)?;
    let fetched = match fetcher
        .fetch_source(&source, &source.location, &Validators::default())
        .await?
    {
        FetchOutcome::Body(fetched) => fetched,
        FetchOutcome::NotModified(_) => {
            anyhow::bail!(
                "{}: answered 304 Not Modified to an unconditional request",
                source.location
            )
        }
    };
    let base = fetched.meta.url.as_ref();
    let parsed = gazette::parse::parse_feed(
        &fetched.body,
        fetched.content_type.as_deref(),
        base,
        &ParseLimits::from_config(&config),
    )
    .map_err(|reason| anyhow::anyhow!("{}: not a readable feed: {reason}", source.location))?;
    for warning in &parsed.warnings {
        tracing::warn!(source = %source.id, "{warning}");
    }
    let feed = parsed.feed;
    let ctx = FeedContext::new(&feed, base);
    let now = Utc::now();
    let mut out = std::io::stdout().lock();
    for entry in &feed.entries {
        let identity = match normalize::identify(entry, &source, &ctx) {
            Ok(identity) => identity,
            Err(skip) => {
                tracing::warn!(source = %source.id, "skipped: {skip}");
                continue;
            }
        };
        let a = normalize::normalize(entry, identity, &source, &ctx, now, None);
        let line = serde_json::json!({
            "source": a.source,
            "key": a.key,
            "title": a.doc.title(),
            "link": a.doc.link,
            "date": format_date(&a.doc.date),
            "description": a.doc.description,
            "tags": a.doc.tags,
            "author": a.doc.author,
            "language": a.doc.original.language,
            "body": a.doc.original.body,
        });
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}
