//! The `gazette` command: argument parsing, logging set-up, and exit codes.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use commands::{
    FetchOptions, add, backfill, backup, build, check, enrich, export, fetch, import, list_due,
    load, migrate_state, preview, preview_extract, rebuild, remove, run_daemon, search, status,
    sync, verify,
};
use gazette::pipeline::EnrichOptions;

/// jemalloc rather than glibc's malloc: the cold run allocates and frees millions of small
/// strings across threads (HTML trees, Markdown, SQL arguments), and glibc spent a fifth of that
/// run's CPU in malloc and free; jemalloc takes 15% off the run's wall time.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts (before `main`): two arenas (its default is four
/// per core, each keeping what its threads freed, which was a fifth of the cold run's peak
/// memory), freed pages returned to the system within a second instead of ten.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8] = b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// SQLite, written in C, allocates through glibc's malloc, not jemalloc. glibc gives each
/// thread that allocates an arena of its own (up to eight per core) and keeps what each one
/// freed: with the state's connection threads and the blocking pool, a tenth of a cold run's
/// peak memory (65 MiB with them, 55 MiB without). One arena serves: the state's writes take
/// turns anyway.
fn one_c_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets a tunable of the allocator; it runs first in `main`, before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// The async runtime `command` runs on. The daemon serves readers while it fetches: a thread
/// per core (tokio's default). Every other command is one pass whose CPU work runs on pools of
/// its own (parsing and normalizing on `pipeline::cpu`'s, a thread per core; files on the
/// blocking pool): its async work, waiting on the network and on state and handing work on,
/// takes one thread. More only competed with those pools and moved each wake-up between
/// threads: on a 2-core machine a cold `fetch` took 4–7% less time and CPU on one.
fn runtime_for(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match command {
        Command::Run { .. } => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().build()
}

/// Exit code for errors that stop the whole run (bad config, unusable state).
const EXIT_FATAL: u8 = 1;

/// `run --role`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    All,
    Worker,
    Publisher,
}

impl From<RoleArg> for gazette::daemon::Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::All => Self::All,
            RoleArg::Worker => Self::Worker,
            RoleArg::Publisher => Self::Publisher,
        }
    }
}

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
        /// What this process does when several share a state database: `worker`s fetch and
        /// write article records (any number, any machine), the `publisher` writes the
        /// archive and the feeds from them and serves HTTP; `all` does everything.
        #[arg(long, value_enum, default_value_t = RoleArg::All)]
        role: RoleArg,
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
    /// Archive a source's older entries by walking its feed's history (RFC 5005: archived
    /// feeds' `prev-archive` links, paged feeds' `next`); pages walked before are asked for
    /// conditionally, and a complete feed (`fh:complete`) removes what it no longer lists.
    Backfill {
        /// The source's id.
        source: String,
        /// At most this many documents, the feed itself included.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        max_pages: u32,
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
        /// Also queue archived articles that have no sections yet (enrichment enabled later).
        #[arg(long)]
        all: bool,
        /// With --all: only articles dated this day or later (YYYY-MM-DD or RFC 3339).
        #[arg(long, requires = "all", value_parser = parse_since)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// With --all: also redo articles whose sections another model or prompt version wrote.
        #[arg(long, requires = "all")]
        redo: bool,
    },
    /// Normalize a feed and print one JSON object per article; writes nothing.
    Preview {
        /// An http(s):// or file:// URL, or a path.
        location: String,
        /// The source id the articles are shown under.
        #[arg(long, default_value = "preview")]
        id: String,
        /// Resolve relative links as if the feed had been fetched from this URL (for a file
        /// saved from the web).
        #[arg(long)]
        base: Option<url::Url>,
        /// Treat LOCATION as an article's page: print the Markdown its full text would be
        /// archived as, and which rule found it.
        #[arg(long)]
        extract: bool,
        /// With `--extract`: a content selector to try (repeatable, tried in order); without
        /// one, Readability's pick of the page.
        #[arg(long = "selector", value_name = "CSS", requires = "extract")]
        selectors: Vec<String>,
        /// With `--extract`: parts of the page to leave out (repeatable).
        #[arg(long = "remove", value_name = "CSS", requires = "extract")]
        remove: Vec<String>,
    },
    /// Write the feeds from state.
    Build {
        /// First render every archive file again from state (after changing rewrites,
        /// extraction, labels).
        #[arg(long)]
        rerender: bool,
        /// Also write the reader pages into DIR as plain files (relative links, for any static
        /// host or none), with the stylesheet and the feeds; unchanged files are not rewritten.
        #[arg(long, value_name = "DIR")]
        site: Option<PathBuf>,
    },
    /// Search the archive: titles, descriptions and every section, in any language; best
    /// matches first.
    Search {
        /// The words to find (all of them); Chinese and Japanese words too.
        query: Vec<String>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
        /// At most this many results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Recreate the state database from the archive files (after it was lost).
    Rebuild,
    /// Copy the state database to FILE, consistent, while other runs (the daemon included)
    /// go on; the copy is checked before the command says it is done.
    Backup {
        /// Where the copy goes; must not exist yet.
        file: PathBuf,
    },
    /// Store the config's sources in the state, as the daemon does at start and on SIGHUP:
    /// workers sharing the state claim those, and no others.
    Sync,
    /// Copy the whole state into another, empty database: SQLite to PostgreSQL when several
    /// workers are to share it, or back. The configured state is left as it was.
    MigrateState {
        /// The target: `postgres://user@host/db`, or `sqlite://path/to/file.db`.
        #[arg(long)]
        to: String,
    },
    /// Compare the archive with the state: missing, orphan, hand-edited and unreadable files.
    /// Exits 0 only when they agree.
    Verify {
        /// Re-render missing files from state and adopt orphan files into it.
        #[arg(long)]
        repair: bool,
    },
    /// Take a source out of the config and every feed; its files stay unless --purge.
    Remove {
        /// The source's id.
        source: String,
        /// Also delete its archive files and everything state knows of it.
        #[arg(long)]
        purge: bool,
    },
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
        /// Every detail of each source (URL, redirects, validators, errors), several lines each.
        #[arg(long)]
        long: bool,
        /// Only sources whose last fetch failed, or that are disabled.
        #[arg(long)]
        failed: bool,
    },
}

/// `2024-05-13` (midnight UTC) or an RFC 3339 time.
fn parse_since(raw: &str) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{raw:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

fn main() -> ExitCode {
    one_c_heap();
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.log_format);
    gazette::files::raise_open_files_limit();
    let runtime = match runtime_for(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gazette: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // The reader of the output went away (`gazette status | head`): nothing is wrong.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gazette: {}", describe(&e));
            ExitCode::from(EXIT_FATAL)
        }
    }
}

/// An error and its causes, each said once: a message that already quotes its cause (an I/O
/// error's text after the path, a database's after "state database") does not get it again.
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Colour in the log only for a person at a terminal: cron mails, journald and log files get
/// plain text, and `NO_COLOR` (set and not empty, <https://no-color.org>) turns it off anywhere.
fn colour_wanted() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
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
        .with_ansi(colour_wanted())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Preview {
            location,
            id,
            base,
            extract,
            selectors,
            remove,
        } => {
            // The configured limits and client settings when there is a config; a preview
            // needs none.
            let fetch = if cli.config.exists() {
                load(&cli.config)?.fetch
            } else {
                gazette::config::FetchConfig::default()
            };
            if extract {
                preview_extract(&fetch, &location, &selectors, &remove).await
            } else {
                preview(&fetch, &location, &id, base.as_ref()).await
            }
        }
        Command::Run { listen, role } => {
            run_daemon(load(&cli.config)?, cli.config.clone(), listen, role.into()).await
        }
        Command::Check => check(&load(&cli.config)?).await,
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
        Command::Backfill { source, max_pages } => {
            backfill(load(&cli.config)?, &source, max_pages).await
        }
        Command::Enrich {
            sources,
            retry_failed,
            dry_run,
            all,
            since,
            redo,
        } => {
            let options = EnrichOptions {
                sources,
                retry_failed,
                dry_run,
                all,
                since,
                redo,
            };
            enrich(load(&cli.config)?, options).await
        }
        Command::Build { rerender, site } => build(load(&cli.config)?, rerender, site).await,
        Command::Search { query, json, limit } => {
            search(&load(&cli.config)?, &query.join(" "), json, limit).await
        }
        Command::Rebuild => rebuild(load(&cli.config)?).await,
        Command::Verify { repair } => verify(load(&cli.config)?, repair).await,
        Command::Backup { file } => backup(load(&cli.config)?, &file).await,
        Command::MigrateState { to } => migrate_state(load(&cli.config)?, &to).await,
        Command::Sync => sync(load(&cli.config)?).await,
        Command::Remove { source, purge } => remove(&cli.config, &source, purge).await,
        Command::Import { file } => import(&cli.config, &file),
        Command::Export => export(&load(&cli.config)?).await,
        Command::Add { url, tags } => add(&cli.config, &url, tags).await,
        Command::Status { json, long, failed } => {
            let view = commands::StatusView { json, long, failed };
            status(&load(&cli.config)?, view).await
        }
    }
}
