//! `gazette run --role worker`: claims due sources from the shared state in batches, refreshes
//! them with the same pipeline as one process does (fetch, parse, normalize, extract, enrich),
//! and writes article records only; the publisher writes the files. Its leases are renewed
//! while it works, so a slow source is not taken from it, and given back when its results are
//! committed. It writes no file, so it needs no archive folder, only the database.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Event;
use crate::clock::Clock;
use crate::config::{Settings, Source};
use crate::error::Result;
use crate::fetch::Fetcher;
use crate::pipeline::{Pipeline, RunOptions};
use crate::store::{Claimed, Store, this_host};

/// Runs a worker until `shutdown` completes; the batch in flight gets `serve.shutdown_grace`
/// to finish, and its leases are given back.
pub async fn run(
    settings: Settings,
    clock: Clock,
    shutdown: impl Future<Output = ()>,
    mut on_event: impl FnMut(Event),
) -> Result<()> {
    let store = Store::open(&settings.state_url).await?;
    let host = this_host();
    let worker = format!(
        "{host}-{}-{:06x}",
        std::process::id(),
        fastrand::u32(..0x100_0000)
    );
    let started = clock.now();
    store
        .heartbeat(&worker, "worker", &host, &started, &started)
        .await?;
    info!(%worker, "worker started");
    on_event(Event::Working {
        worker: worker.clone(),
    });
    let settings = Arc::new(settings);
    let fetcher = Fetcher::new(&settings.fetch)?;
    let pipeline = Pipeline::new(Arc::clone(&settings), store.clone(), fetcher)?
        .with_clock(clock.clone())
        .as_worker(&worker);
    let beat = Beat {
        store: store.clone(),
        worker: worker.clone(),
        host,
        started,
        clock: clock.clone(),
    };
    let beating = tokio::spawn(beat.clone().every(settings.poll));

    tokio::pin!(shutdown);
    loop {
        let round = one_round(&pipeline, &worker);
        tokio::pin!(round);
        let busy = tokio::select! {
            outcome = &mut round => outcome,
            () = &mut shutdown => {
                let grace = settings.serve.shutdown_grace;
                info!(grace = %humantime::format_duration(grace), "stopping; letting the batch in flight finish");
                if tokio::time::timeout(grace, &mut round).await.is_err() {
                    warn!("the batch in flight did not finish within the grace period; its leases run out");
                }
                break;
            }
        };
        let worked = matches!(busy, Ok(Some(_)));
        match busy {
            Ok(Some(event)) => on_event(event),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "the state could not be worked on; trying again"),
        }
        if !worked {
            let until = clock.after(settings.poll);
            on_event(Event::Waiting { until });
            tokio::select! {
                () = clock.sleep_until(until) => {}
                () = &mut shutdown => break,
            }
        }
    }
    beating.abort();
    if let Err(e) = store.forget_worker(&worker).await {
        warn!(error = %e, "the worker's row could not be removed");
    }
    store.close().await;
    info!("stopped");
    Ok(())
}

/// Claims a batch of due sources and refreshes them, then leases enrichments; `None` when
/// there was nothing to do.
async fn one_round(pipeline: &Pipeline, worker: &str) -> Result<Option<Event>> {
    let settings = pipeline.settings();
    let store = pipeline.store();
    let lease = settings.lease;
    // Enough to keep the worker busy between claims (a claim and a release are a round trip
    // each), few enough that other workers find work.
    let batch = settings.fetch.concurrency.saturating_mul(16).max(1);
    let claimed = store
        .claim_due(
            worker,
            &pipeline.clock().now(),
            lease,
            batch,
            settings.fetch.per_host.saturating_mul(4),
        )
        .await?;
    let mut event = None;
    if !claimed.is_empty() {
        event = Some(refresh_claimed(pipeline, worker, claimed).await?);
    }
    match pipeline.enrich_leased(worker, lease).await {
        Ok(report) if report.enriched + report.failed > 0 => {
            info!(
                enriched = report.enriched,
                failed = report.failed,
                "enrichment pass"
            );
            event.get_or_insert(Event::Cycle {
                fetched: 0,
                failed: 0,
                new: 0,
            });
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "enrichment pass failed"),
    }
    Ok(event)
}

/// Refreshes the claimed sources with their leases renewed meanwhile, then gives the leases
/// back. A source whose synced settings this worker cannot read keeps its lease until it runs
/// out (so workers do not pass it round), and says why.
async fn refresh_claimed(
    pipeline: &Pipeline,
    worker: &str,
    claimed: Vec<Claimed>,
) -> Result<Event> {
    let settings = pipeline.settings();
    let shared = pipeline.store().shared_config().await?;
    let claimed: Vec<(String, String)> = claimed
        .into_iter()
        .map(|Claimed { id, config }| (id, config))
        .collect();
    let (batch_settings, unreadable) = settings.for_worker(shared.as_deref(), &claimed)?;
    for (id, e) in unreadable {
        warn!(source = %id, error = %e, "a claimed source cannot be read");
    }
    let sources: Vec<Source> = batch_settings.sources.clone();
    let ids: Vec<String> = sources.iter().map(|s| s.id.clone()).collect();
    let renewing = CancellationToken::new();
    let renewer = tokio::spawn(renew(
        pipeline.store().clone(),
        worker.to_owned(),
        ids.clone(),
        settings.lease,
        pipeline.clock().clone(),
        renewing.clone(),
    ));
    let batch = pipeline.with_settings(batch_settings);
    let options = RunOptions {
        force: false,
        deadline: Some(tokio::time::Instant::now() + settings.fetch.run_deadline),
        no_enrich: false,
    };
    let reports = batch.refresh_all(&sources, options).await;
    renewing.cancel();
    let _ = renewer.await;
    let mut tx = pipeline.store().begin().await?;
    for id in &ids {
        Store::release_lease(&mut tx, worker, id).await?;
    }
    tx.commit().await?;
    for report in &reports {
        if let Err(e) = &report.outcome {
            warn!(source = %report.source, error = %e, "source failed");
        }
    }
    let fetched = reports
        .iter()
        .filter(|r| !matches!(r.outcome, Ok(crate::pipeline::Refresh::NotDue(_))))
        .count();
    let failed = reports.iter().filter(|r| r.outcome.is_err()).count();
    let new = reports
        .iter()
        .map(|r| match &r.outcome {
            Ok(crate::pipeline::Refresh::Archived(counts)) => counts.new,
            _ => 0,
        })
        .sum();
    Ok(Event::Cycle {
        fetched,
        failed,
        new,
    })
}

/// Extends the leases on `sources` every third of a lease until `stop`.
async fn renew(
    store: Store,
    worker: String,
    sources: Vec<String>,
    lease: Duration,
    clock: Clock,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(lease / 3) => {}
        }
        match store
            .renew_leases(&worker, &sources, &clock.now(), lease)
            .await
        {
            Ok(held) if held.len() < sources.len() => {
                warn!(
                    held = held.len(),
                    of = sources.len(),
                    "some leases ran out; their sources' results will not be kept"
                )
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "the leases could not be renewed"),
        }
    }
}

/// The worker's sign of life in state, for `status` and for telling the living from the dead.
#[derive(Clone)]
struct Beat {
    store: Store,
    worker: String,
    host: String,
    started: DateTime<Utc>,
    clock: Clock,
}

impl Beat {
    async fn every(self, period: Duration) {
        loop {
            tokio::time::sleep(period).await;
            let beat = self
                .store
                .heartbeat(
                    &self.worker,
                    "worker",
                    &self.host,
                    &self.started,
                    &self.clock.now(),
                )
                .await;
            if let Err(e) = beat {
                warn!(error = %e, "the heartbeat could not be recorded");
            }
        }
    }
}
