//! `gazette run --role publisher`: serves HTTP at once, and writes the archive while it holds
//! the archive's writer lock. Several publishers may run; one holds the lock and the others
//! stand by, asking for it every `state.poll`, so one of them takes over within a lease
//! period when the holder dies (PostgreSQL ends a dead session's advisory lock).
//!
//! While it holds the lock it syncs the config's sources into state (at start and on SIGHUP),
//! renders the files of the records the workers wrote, prunes old state, writes the feeds
//! when state changed, and runs the publish hooks.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{ArchiveWriter, DaemonOptions, Event, Server, reload_settings, sync_sources};
use crate::config::Settings;
use crate::error::Result;
use crate::fetch::Fetcher;
use crate::pipeline::Pipeline;
use crate::publish::render;
use crate::store::{Store, this_host};

/// Runs until `shutdown` completes; `reloads` asks to re-read the config (SIGHUP).
pub async fn run(
    settings: Settings,
    options: DaemonOptions,
    shutdown: impl Future<Output = ()>,
    mut reloads: mpsc::Receiver<()>,
    mut on_event: impl FnMut(Event),
) -> Result<()> {
    let store = Store::open(&settings.state_url).await?;
    let mut settings = Arc::new(settings);
    let server = Server::start(&settings, &store, options.listen.as_deref(), &mut on_event).await?;
    let clock = options.clock.clone();
    let host = this_host();
    let id = format!("{host}-{}-publisher", std::process::id());
    let started = clock.now();
    let beat = |role: &'static str| {
        let (store, id, host, clock) = (store.clone(), id.clone(), host.clone(), clock.clone());
        async move {
            if let Err(e) = store
                .heartbeat(&id, role, &host, &started, &clock.now())
                .await
            {
                warn!(error = %e, "the heartbeat could not be recorded");
            }
        }
    };
    tokio::pin!(shutdown);
    let mut standing_by = false;
    'standby: loop {
        let mut writer = match ArchiveWriter::take(&settings, std::time::Duration::ZERO).await {
            Ok(Ok(writer)) => writer,
            Ok(Err(busy)) => {
                beat("standby").await;
                if !standing_by {
                    info!(%busy, "standing by: another process writes the archive");
                    on_event(Event::Standby {
                        holder: busy.holder().map(str::to_owned),
                    });
                    standing_by = true;
                }
                tokio::select! {
                    () = clock.sleep(settings.poll) => continue 'standby,
                    () = &mut shutdown => break 'standby,
                }
            }
            Err(e) => {
                warn!(error = %e, "the archive lock could not be asked for");
                tokio::select! {
                    () = clock.sleep(settings.poll) => continue 'standby,
                    () = &mut shutdown => break 'standby,
                }
            }
        };
        standing_by = false;
        info!("publishing: this process writes the archive");
        on_event(Event::Publishing);
        super::sweep_temp_files(&settings).await;
        sync_sources(&store, &settings).await;
        let mut pipeline = publishing_pipeline(&settings, &store)?;
        let mut published = Published::default();
        loop {
            beat("publisher").await;
            match publish_pass(&pipeline, &mut published).await {
                Ok(pass) => {
                    let render::Rendered { records, files } = pass.rendered;
                    if records > 0 {
                        on_event(Event::Rendered { records, files });
                    }
                    if pass.feeds {
                        on_event(Event::FeedsWritten);
                    }
                }
                Err(e) => warn!(error = %e, "publishing failed; trying again"),
            }
            let until = clock.after(settings.poll);
            tokio::select! {
                () = clock.sleep_until(until) => {}
                Some(()) = reloads.recv() => {
                    match reload_settings(&options.config_path).await {
                        Ok(new) => {
                            sync_sources(&store, &new).await;
                            settings = Arc::new(new);
                            pipeline = publishing_pipeline(&settings, &store)?;
                            server.replace_settings(&settings);
                            published = Published::default();
                            on_event(Event::Reloaded { sources: settings.sources.len() });
                        }
                        Err(e) => {
                            warn!(error = %e, "the new configuration is invalid; keeping the old one");
                            on_event(Event::ReloadRefused(e.to_string()));
                        }
                    }
                }
                () = &mut shutdown => break 'standby,
            }
            if !writer.held().await {
                warn!("the archive lock was lost with its database session; asking for it again");
                continue 'standby;
            }
        }
    }
    let deadline = tokio::time::Instant::now() + settings.serve.shutdown_grace;
    server.stop(deadline).await;
    if let Err(e) = store.forget_worker(&id).await {
        warn!(error = %e, "the publisher's row could not be removed");
    }
    store.close().await;
    info!("stopped");
    Ok(())
}

/// What the publisher runs its passes with: it fetches nothing, but prunes and publishes as
/// one process does.
fn publishing_pipeline(settings: &Arc<Settings>, store: &Store) -> Result<Pipeline> {
    let fetcher = Fetcher::new(&settings.fetch)?;
    Pipeline::new(Arc::clone(settings), store.clone(), fetcher)
}

/// The feeds as last published: of which state, and when.
#[derive(Default)]
struct Published {
    version: Option<i64>,
    at: Option<tokio::time::Instant>,
}

/// While records stream in, the feeds are written at most this often: each write builds every
/// feed from state, and doing it on every pass of a cold run took the workers' CPU.
const FEEDS_WHILE_BUSY: std::time::Duration = std::time::Duration::from_secs(5);

/// Renders what the workers wrote; when state changed since the feeds were last written,
/// prunes and writes them (and runs the hooks when one changed), at once when the workers are
/// quiet, at most every [`FEEDS_WHILE_BUSY`] while files are being rendered. Returns how many
/// files changed.
async fn publish_pass(pipeline: &Pipeline, published: &mut Published) -> Result<Pass> {
    let rendered = render::render_queue(pipeline.settings(), pipeline.store()).await?;
    let files = rendered.files;
    let version = pipeline.store().state_version().await?;
    let due = published
        .at
        .is_none_or(|at| files == 0 || at.elapsed() >= FEEDS_WHILE_BUSY);
    if published.version != Some(version) && due {
        pipeline.prune().await?;
        if pipeline.publish_feed().await? {
            info!("feed published");
        }
        *published = Published {
            version: Some(version),
            at: Some(tokio::time::Instant::now()),
        };
        return Ok(Pass {
            rendered,
            feeds: true,
        });
    }
    Ok(Pass {
        rendered,
        feeds: false,
    })
}

/// What one publishing pass did.
struct Pass {
    rendered: render::Rendered,
    /// The feeds were written from state (changed or not).
    feeds: bool,
}
