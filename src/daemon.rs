//! `gazette run`: the scheduler and the HTTP server in one process.
//!
//! The scheduler runs the same `refresh_all` as `fetch`, whenever a source is due. Stopping is a
//! future handed in by the caller (signals in `main`, anything in tests): scheduling stops, the
//! cycle in flight gets a grace period to finish, and the server drains. Reloading is a stream of
//! requests: a new config replaces the old only when it is valid.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::fetch::Fetcher;
use crate::metrics::{FetchEvent, Metrics, Outcome};
use crate::pipeline::{EnrichOptions, Pipeline, Refresh, RunOptions, SourceReport};
use crate::serve::{self, AppState};
use crate::store::Store;

/// How the daemon was started.
#[derive(Debug)]
pub struct DaemonOptions {
    pub config_path: PathBuf,
    /// Overrides `serve.listen`.
    pub listen: Option<String>,
}

/// Runs until `shutdown` completes. `reloads` delivers SIGHUP (or a test's request) to re-read
/// the config; `on_listen` learns the bound address (the port may have been 0).
pub async fn run(
    settings: Settings,
    options: DaemonOptions,
    shutdown: impl Future<Output = ()>,
    mut reloads: mpsc::Receiver<()>,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<()> {
    let store = Store::open(&settings.state_url).await?;
    crate::pipeline::recover::complete_records(&settings, &store).await?;
    crate::pipeline::recover::ensure_state_knows_archive(&settings, &store).await?;
    let listen = options
        .listen
        .clone()
        .unwrap_or_else(|| settings.serve.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| Error::io(PathBuf::from(&listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io(PathBuf::from(&listen), e))?;
    info!(%addr, "serving");
    on_listen(addr);

    let settings = Arc::new(settings);
    let state = AppState {
        settings: Arc::new(RwLock::new(Arc::clone(&settings))),
        store: store.clone(),
        metrics: Arc::new(Metrics::default()),
        failed_cycles: Arc::new(AtomicU32::new(0)),
        cache: Arc::default(),
    };
    let stop = CancellationToken::new();
    let server = {
        let stop = stop.clone();
        let app = serve::router(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        })
    };

    let mut pipeline = build_pipeline(Arc::clone(&settings), store.clone())?;
    tokio::pin!(shutdown);
    // Set when stopping: in-flight work and open connections share one grace period.
    let mut stop_by = None;
    loop {
        let stopping = {
            let cycle = run_cycle(&pipeline, &state);
            tokio::pin!(cycle);
            tokio::select! {
                () = &mut cycle => false,
                () = &mut shutdown => {
                    let grace = pipeline.settings().serve.shutdown_grace;
                    info!(grace = %humantime::format_duration(grace), "stopping; letting the cycle in flight finish");
                    let deadline = tokio::time::Instant::now() + grace;
                    stop_by = Some(deadline);
                    if tokio::time::timeout_at(deadline, cycle).await.is_err() {
                        warn!("the cycle in flight did not finish within the grace period; it was stopped");
                    }
                    true
                }
            }
        };
        if stopping {
            break;
        }
        let pause = next_pause(&pipeline).await;
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            Some(()) = reloads.recv() => {
                match reload(&options.config_path, &store) {
                    Ok(new) => {
                        info!(sources = new.settings().sources.len(), "configuration reloaded");
                        let settings = Arc::new(new.settings().clone());
                        *state.settings.write().unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
                        pipeline = new;
                    }
                    Err(e) => error!(error = %e, "the new configuration is invalid; keeping the old one"),
                }
            }
            () = &mut shutdown => break,
        }
    }
    stop.cancel();
    // Connections get the grace period to finish; a client stuck mid-request does not hold
    // the process.
    let deadline = stop_by
        .unwrap_or_else(|| tokio::time::Instant::now() + pipeline.settings().serve.shutdown_grace);
    let abort = server.abort_handle();
    match tokio::time::timeout_at(deadline, server).await {
        Ok(Ok(Err(e))) => warn!(error = %e, "the HTTP server stopped with an error"),
        Err(_) => {
            warn!("open connections did not finish within the grace period; closing them");
            abort.abort();
        }
        _ => {}
    }
    store.close().await;
    info!("stopped");
    Ok(())
}

fn build_pipeline(settings: Arc<Settings>, store: Store) -> Result<Pipeline> {
    let fetcher = Fetcher::new(&settings.fetch)?;
    Pipeline::new(settings, store, fetcher)
}

/// A pipeline for the config at `path`; building it checks what loading cannot (the HTTP
/// client's settings, prompt files), so nothing is swapped unless all of it works.
fn reload(path: &std::path::Path, store: &Store) -> Result<Pipeline> {
    let settings = Settings::load(path)?;
    build_pipeline(Arc::new(settings), store.clone())
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

/// One pass: every due source, then enrichment, then the feed.
async fn run_cycle(pipeline: &Pipeline, state: &AppState) {
    let sources = pipeline.settings().sources.clone();
    let reports = pipeline.refresh_all(&sources, RunOptions::default()).await;
    let events: Vec<FetchEvent> = reports.iter().filter_map(fetch_event).collect();
    state.metrics.record(&events);
    let fetched: Vec<_> = reports
        .iter()
        .filter(|r| !matches!(r.outcome, Ok(Refresh::NotDue(_) | Refresh::Disabled(_))))
        .collect();
    if !fetched.is_empty() {
        let all_failed = fetched.iter().all(|r| r.outcome.is_err());
        if all_failed {
            state.failed_cycles.fetch_add(1, Ordering::Relaxed);
        } else {
            state.failed_cycles.store(0, Ordering::Relaxed);
        }
    }
    for report in &reports {
        if let Err(e) = &report.outcome {
            warn!(source = %report.source, error = %e, "source failed");
        }
    }
    if pipeline.enricher().is_some()
        && let Err(e) = pipeline.enrich_pending(&EnrichOptions::default()).await
    {
        warn!(error = %e, "enrichment pass failed");
    }
    if let Err(e) = pipeline.prune().await {
        warn!(error = %e, "pruning old state failed");
    }
    match pipeline.publish_feed().await {
        Ok(true) => info!("feed published"),
        Ok(false) => {}
        Err(e) => error!(error = %e, "the feed could not be written"),
    }
}

/// Until the next source is due, at most `serve.tick`, at least a second.
async fn next_pause(pipeline: &Pipeline) -> Duration {
    let tick = pipeline.settings().serve.tick;
    let now = Utc::now();
    let mut soonest = tick;
    for source in &pipeline.settings().sources {
        let due = match pipeline.store().source_state(&source.id).await {
            Ok(Some(state)) if state.disabled_reason.is_none() => state.next_due_at,
            Ok(Some(_)) => continue,
            _ => None,
        };
        let wait = due.map_or(Duration::ZERO, |d| (d - now).to_std().unwrap_or_default());
        soonest = soonest.min(wait);
    }
    soonest.max(Duration::from_secs(1))
}
