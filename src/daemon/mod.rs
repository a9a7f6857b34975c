//! `gazette run`: the scheduler and the HTTP server in one process.
//!
//! The scheduler runs the same cycle as `fetch` ([`Pipeline::run_cycle`]) whenever a source is
//! due, and waits on a [`Clock`] in between (the system's, or a test's manual one). Stopping is
//! a future handed in by the caller (signals in `main`, anything in tests): scheduling stops,
//! the cycle in flight gets a grace period to finish, and the server drains. Reloading is a
//! stream of requests: a new config replaces the old only when it is valid. What happens is
//! told to the caller as [`Event`]s, so that tests wait for events, not for time.
//!
//! That is the whole job in one process (`--role all`). With state on a shared database the
//! job splits: [`worker`]s fetch and write article records, and a [`publisher`] writes the
//! archive and the feeds from them and serves HTTP.

pub mod publisher;
pub mod worker;
mod writer;

pub use writer::ArchiveWriter;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::fetch::Fetcher;
use crate::metrics::{FetchEvent, Metrics, Outcome};
use crate::pipeline::{CycleOptions, Pipeline, Refresh, SourceReport};
use crate::serve::{self, AppState};
use crate::store::Store;

/// How the daemon was started.
#[derive(Debug)]
pub struct DaemonOptions {
    pub config_path: PathBuf,
    /// Overrides `serve.listen`.
    pub listen: Option<String>,
    /// What the scheduler goes by.
    pub clock: Clock,
}

/// What the daemon tells its caller as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The server is bound (the port may have been 0).
    Listening(SocketAddr),
    /// A cycle ended: how many sources were fetched, how many of them failed, how many
    /// articles were new.
    Cycle {
        fetched: usize,
        failed: usize,
        new: usize,
    },
    /// Nothing to do until this time (on the daemon's clock), unless a reload or a stop comes.
    Waiting {
        until: chrono::DateTime<chrono::Utc>,
    },
    /// A new configuration took over, with this many sources.
    Reloaded { sources: usize },
    /// The new configuration was refused; the old one stays. The reason, as text.
    ReloadRefused(String),
    /// A worker started under this id.
    Working { worker: String },
    /// This publisher holds the archive lock and writes the archive.
    Publishing,
    /// Another process writes the archive (named when known); this publisher serves only.
    Standby { holder: Option<String> },
    /// The publisher took records the workers wrote off the render queue, their files
    /// current; `files` of them changed.
    Rendered { records: usize, files: usize },
    /// The publisher wrote the feeds from state.
    FeedsWritten,
}

/// What a `gazette run` process does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// Everything, in one process.
    #[default]
    All,
    /// Fetch, parse, normalize, extract and enrich the sources it claims; write records only.
    Worker,
    /// Write the archive and the feeds from the records, run the hooks, serve HTTP.
    Publisher,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Worker => "worker",
            Role::Publisher => "publisher",
        }
    }
}

/// Runs until `shutdown` completes. `reloads` delivers SIGHUP (or a test's request) to re-read
/// the config; `on_event` learns what happens.
pub async fn run(
    settings: Settings,
    options: DaemonOptions,
    shutdown: impl Future<Output = ()>,
    mut reloads: mpsc::Receiver<()>,
    mut on_event: impl FnMut(Event),
) -> Result<()> {
    let store = Store::open(&settings.state_url).await?;
    // A long-running process checks its pages once at start; cron runs do not (it reads the
    // whole file).
    store.check_integrity(false).await?;
    crate::pipeline::recover::complete_records(&settings, &store).await?;
    crate::pipeline::recover::ensure_state_knows_archive(&settings, &store).await?;
    sync_sources(&store, &settings).await;
    let settings = Arc::new(settings);
    let Server {
        state,
        stop,
        handle: server,
    } = Server::start(&settings, &store, options.listen.as_deref(), &mut on_event).await?;

    let clock = options.clock.clone();
    let mut pipeline = build_pipeline(Arc::clone(&settings), store.clone(), &clock)?;
    tokio::pin!(shutdown);
    // Set when stopping: in-flight work and open connections share one grace period.
    let mut stop_by = None;
    loop {
        let stopping = {
            let cycle = run_cycle(&pipeline, &state);
            tokio::pin!(cycle);
            tokio::select! {
                event = &mut cycle => {
                    on_event(event);
                    false
                }
                () = &mut shutdown => {
                    let grace = pipeline.settings().serve.shutdown_grace;
                    info!(grace = %humantime::format_duration(grace), "stopping; letting the cycle in flight finish");
                    let deadline = tokio::time::Instant::now() + grace;
                    stop_by = Some(deadline);
                    if tokio::time::timeout_at(deadline, &mut cycle).await.is_err() {
                        warn!("the cycle in flight did not finish within the grace period; it was stopped");
                    }
                    true
                }
            }
        };
        if stopping {
            break;
        }
        let until = clock.after(next_pause(&pipeline).await);
        on_event(Event::Waiting { until });
        tokio::select! {
            () = clock.sleep_until(until) => {}
            Some(()) = reloads.recv() => {
                match reload(&options.config_path, &store, &clock).await {
                    Ok(new) => {
                        let sources = new.settings().sources.len();
                        info!(sources, "configuration reloaded");
                        let settings = Arc::new(new.settings().clone());
                        server_settings(&state, &settings);
                        pipeline = new;
                        on_event(Event::Reloaded { sources });
                    }
                    Err(e) => {
                        error!(error = %e, "the new configuration is invalid; keeping the old one");
                        on_event(Event::ReloadRefused(e.to_string()));
                    }
                }
            }
            () = &mut shutdown => break,
        }
    }
    let deadline = stop_by
        .unwrap_or_else(|| tokio::time::Instant::now() + pipeline.settings().serve.shutdown_grace);
    Server {
        state,
        stop,
        handle: server,
    }
    .stop(deadline)
    .await;
    store.close().await;
    info!("stopped");
    Ok(())
}

fn server_settings(state: &AppState, settings: &Arc<Settings>) {
    *state
        .settings
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(settings);
}

/// The HTTP server of a daemon or a publisher, running.
struct Server {
    state: AppState,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `listen` (or `serve.listen`) and serves the pages, the feeds and `/metrics`.
    async fn start(
        settings: &Arc<Settings>,
        store: &Store,
        listen: Option<&str>,
        on_event: &mut impl FnMut(Event),
    ) -> Result<Self> {
        let listen = listen.unwrap_or(&settings.serve.listen).to_owned();
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| Error::io(PathBuf::from(&listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(PathBuf::from(&listen), e))?;
        info!(%addr, "serving");
        on_event(Event::Listening(addr));
        let state = AppState {
            settings: Arc::new(RwLock::new(Arc::clone(settings))),
            store: store.clone(),
            metrics: Arc::new(Metrics::default()),
            failed_cycles: Arc::new(AtomicU32::new(0)),
            cache: Arc::default(),
            site: Arc::default(),
        };
        let stop = CancellationToken::new();
        let config = &settings.serve;
        let limits = serve::connections::Limits {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
            max_header_bytes: usize::try_from(config.max_header_bytes).unwrap_or(usize::MAX),
        };
        let handle = tokio::spawn(serve::connections::serve(
            listener,
            serve::router(state.clone()),
            limits,
            stop.clone(),
        ));
        Ok(Self {
            state,
            stop,
            handle,
        })
    }

    /// Pages and feeds follow a reloaded config.
    fn replace_settings(&self, settings: &Arc<Settings>) {
        server_settings(&self.state, settings);
    }

    /// Stops accepting; open connections get until `deadline` to finish, so a client stuck
    /// mid-request does not hold the process.
    async fn stop(self, deadline: tokio::time::Instant) {
        self.stop.cancel();
        let abort = self.handle.abort_handle();
        match tokio::time::timeout_at(deadline, self.handle).await {
            Ok(Err(e)) => warn!(error = %e, "the HTTP server stopped with an error"),
            Err(_) => {
                warn!("open connections did not finish within the grace period; closing them");
                abort.abort();
            }
            _ => {}
        }
    }
}

fn build_pipeline(settings: Arc<Settings>, store: Store, clock: &Clock) -> Result<Pipeline> {
    let fetcher = Fetcher::new(&settings.fetch)?;
    Ok(Pipeline::new(settings, store, fetcher)?.with_clock(clock.clone()))
}

/// A pipeline for the config at `path`; building it checks what loading cannot (the HTTP
/// client's settings, prompt files), so nothing is swapped unless all of it works. Reading
/// the file (and prompt files) is blocking work: it runs off the async threads.
/// Stores the configured sources, as workers sharing this state claim them. A state that
/// cannot take the write now (a full disk) keeps the sources it had; the daemon goes on and
/// the next start or reload syncs again.
async fn sync_sources(store: &Store, settings: &Settings) {
    let synced = store
        .sync_sources(&settings.sources_to_sync(), &settings.shared_with_workers())
        .await;
    if let Err(e) = synced {
        warn!(error = %e, "the sources could not be synced into the state");
    }
}

async fn reload(path: &std::path::Path, store: &Store, clock: &Clock) -> Result<Pipeline> {
    let settings = reload_settings(path).await?;
    sync_sources(store, &settings).await;
    build_pipeline(Arc::new(settings), store.clone(), clock)
}

/// The config at `path`, read off the async threads.
async fn reload_settings(path: &std::path::Path) -> Result<Settings> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || Settings::load(&owned))
        .await
        .map_err(|e| Error::io(path, std::io::Error::other(e)))?
}

/// Removes the temp files a killed run left in the archive's and the feeds' temp folders;
/// the caller holds the writer lock, so none of them is being written.
pub async fn sweep_temp_files(settings: &Settings) {
    let roots = [
        settings.archive_dir.clone(),
        settings
            .feed_path
            .parent()
            .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf),
    ];
    let swept = tokio::task::spawn_blocking(move || {
        roots
            .iter()
            .map(|root| crate::files::sweep_temp(root))
            .collect::<Vec<_>>()
    })
    .await;
    for result in swept.into_iter().flatten() {
        match result {
            Ok(0) => {}
            Ok(n) => info!(files = n, "removed temp files an interrupted run left"),
            Err(e) => warn!(error = %e, "temp files could not be removed"),
        }
    }
}

/// What `/metrics` counts of a source's refresh; a source that was not due was not fetched.
fn fetch_event(report: &SourceReport) -> Option<FetchEvent> {
    let outcome = match &report.outcome {
        Ok(Refresh::NotDue(_)) => return None,
        Ok(Refresh::Archived(counts)) => Outcome::Archived {
            new: counts.new,
            updated: counts.updated,
        },
        Ok(Refresh::NotModified) => Outcome::NotModified,
        Ok(Refresh::SameBody) => Outcome::SameBody,
        Ok(Refresh::Disabled(_)) => Outcome::Disabled,
        Err(_) => Outcome::Failed,
    };
    Some(FetchEvent {
        outcome,
        elapsed: report.elapsed,
    })
}

/// One cycle of every configured source, told to `/metrics` and `/healthz`.
async fn run_cycle(pipeline: &Pipeline, state: &AppState) -> Event {
    let sources = pipeline.settings().sources.clone();
    let cycle = pipeline
        .run_cycle(&sources, CycleOptions::default(), |_| {})
        .await;
    for report in &cycle.sources {
        if let Err(e) = &report.outcome {
            warn!(source = %report.source, error = %e, "source failed");
        }
    }
    if let Some(Err(e)) = &cycle.enrichment {
        warn!(error = %e, "enrichment pass failed");
    }
    if let Err(e) = &cycle.pruned {
        warn!(error = %e, "pruning old state failed");
    }
    if let Err(e) = &cycle.feed {
        warn!(error = %e, "the feed could not be written");
    }
    let events: Vec<FetchEvent> = cycle.sources.iter().filter_map(fetch_event).collect();
    state.metrics.record(&events);
    let fetched = cycle.fetched();
    let failed = cycle.failed();
    if fetched > 0 {
        if failed == fetched {
            state.failed_cycles.fetch_add(1, Ordering::Relaxed);
        } else {
            state.failed_cycles.store(0, Ordering::Relaxed);
        }
    }
    Event::Cycle {
        fetched,
        failed,
        new: cycle.new_articles(),
    }
}

/// Until the next source is due, at most `serve.tick`, at least a second.
async fn next_pause(pipeline: &Pipeline) -> Duration {
    let tick = pipeline.settings().serve.tick;
    let due = pipeline.next_due_in(&pipeline.settings().sources).await;
    due.map_or(tick, |due| due.min(tick))
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: T) {}

    /// A library user can `tokio::spawn` the daemon.
    #[allow(dead_code)]
    fn the_daemon_future_is_send(settings: Settings, options: DaemonOptions, p: Pipeline) {
        let (_tx, rx) = mpsc::channel(1);
        is_send(p.run_cycle(&[], CycleOptions::default(), |_| {}));
        is_send(p.refresh_all(&[], crate::pipeline::RunOptions::default()));
        is_send(run(settings, options, async {}, rx, |_| {}));
    }
}
