//! The `gazette` command: argument parsing, logging set-up, and exit codes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use chrono::Utc;
use clap::{Parser, Subcommand};
use gazette::config::{Location, Settings, Source};
use gazette::fetch::Fetcher;
use gazette::normalize::{self, FeedContext};
use gazette::pipeline::Pipeline;
use gazette::publish::archive::format_date;
use gazette::store::Store;

/// Exit code when at least one source failed and the others were processed.
const EXIT_SOURCES_FAILED: u8 = 3;
/// Exit code for errors that stop the whole run (bad config, unusable state).
const EXIT_FATAL: u8 = 1;

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

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One pass over the sources: archive what is new or changed, then rebuild the feed.
    Fetch {
        /// Only this source (repeatable).
        #[arg(long = "source", value_name = "ID")]
        sources: Vec<String>,
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
    init_tracing(cli.verbose);
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

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,sqlx=warn",
        _ => "debug,sqlx=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Preview { location, id } => preview(&location, &id).await,
        Command::Check => check(&load(&cli.config)?),
        Command::Fetch { sources } => fetch(load(&cli.config)?, &sources).await,
        Command::Build => build(load(&cli.config)?).await,
        Command::Status { json } => status(&load(&cli.config)?, json).await,
    }
}

fn load(path: &Path) -> Result<Settings> {
    Ok(Settings::load(path)?)
}

async fn open_pipeline(settings: Settings) -> Result<Pipeline> {
    let store = Store::open(&settings.state_url)
        .await
        .with_context(|| format!("opening the state database {}", settings.state_url))?;
    let fetcher = Fetcher::new(&settings.fetch)?;
    Ok(Pipeline::new(Arc::new(settings), store, fetcher))
}

async fn fetch(settings: Settings, ids: &[String]) -> Result<ExitCode> {
    let sources = settings.select_sources(ids).map_err(anyhow::Error::msg)?;
    let pipeline = open_pipeline(settings).await?;
    let mut reports = pipeline.refresh_all(&sources).await;
    reports.sort_by(|a, b| a.source.cmp(&b.source));

    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for report in &reports {
        match &report.outcome {
            Ok(c) => writeln!(
                out,
                "{}: {} new, {} updated, {} unchanged, {} skipped",
                report.source, c.new, c.updated, c.unchanged, c.skipped
            )?,
            Err(e) => {
                failed += 1;
                writeln!(out, "{}: failed: {e}", report.source)?;
            }
        }
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

async fn build(settings: Settings) -> Result<ExitCode> {
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
    let store = Store::open(&settings.state_url)
        .await
        .with_context(|| format!("opening the state database {}", settings.state_url))?;
    let rows = store.source_status().await?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
    } else {
        for r in rows {
            writeln!(
                out,
                "{:<16} {:<8} last fetch {:<24} {} articles, {} failures in a row{}  {}",
                r.id,
                r.last_status.as_deref().unwrap_or("-"),
                r.last_fetch_at
                    .as_ref()
                    .map(format_date)
                    .unwrap_or_else(|| "never".to_owned()),
                r.articles,
                r.consecutive_failures,
                r.last_error.map(|e| format!(" ({e})")).unwrap_or_default(),
                r.url,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn preview(location: &str, id: &str) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let location = Location::parse(location, &cwd).map_err(anyhow::Error::msg)?;
    let source = Source {
        id: id.to_owned(),
        location,
        author: id.to_owned(),
        tags: Vec::new(),
        language: None,
        category_tags: true,
    };
    let fetcher = Fetcher::new(&Default::default())?;
    let fetched = fetcher.fetch(&source).await?;
    let feed = gazette::parse::parse_feed(&fetched.body, fetched.url.as_ref())
        .map_err(|reason| anyhow::anyhow!("{}: not a readable feed: {reason}", source.location))?;
    let ctx = FeedContext::new(&feed, fetched.url.as_ref());
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
        let a = normalize::normalize(entry, identity, &source, &ctx, now);
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
