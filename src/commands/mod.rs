//! What each subcommand does; `main` only parses arguments and sets up logging.

mod archive;
mod daemon;
mod inspect;
mod runs;
mod sources;

pub(crate) use archive::{backup, migrate_state, rebuild, remove, sync, verify};
pub(crate) use daemon::run_daemon;
pub(crate) use inspect::{StatusView, check, preview, preview_extract, search, status};
pub(crate) use runs::{FetchOptions, backfill, build, enrich, fetch, list_due};
pub(crate) use sources::{add, export, import};

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use gazette::config::Settings;
use gazette::daemon::{ArchiveWriter, sweep_temp_files};
use gazette::fetch::Fetcher;
use gazette::pipeline::Pipeline;
use gazette::store::Store;
use gazette::store::redacted;

/// Exit code when at least one source failed and the others were processed.
pub(crate) const EXIT_SOURCES_FAILED: u8 = 3;
/// Exit code when another process (the daemon, another `fetch`) holds the archive's lock.
pub(crate) const EXIT_LOCKED: u8 = 4;

/// An error's text without the `source ID: ` it starts with, for a line that begins with the
/// id already.
pub(crate) fn without_source<'a>(id: &str, message: &'a str) -> &'a str {
    message
        .strip_prefix("source ")
        .and_then(|rest| rest.strip_prefix(id))
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(message)
}

pub(crate) fn load(path: &Path) -> Result<Settings> {
    if !path.exists() {
        anyhow::bail!(
            "no config file at {}: name yours with --config or GAZETTE_CONFIG, or create this \
             one; the smallest is one source:\n\n[[sources]]\nid = \"example\"\n\
             url = \"https://example.org/feed.xml\"\n\n(`gazette check` then shows what the \
             defaults make of it; `gazette add URL` and `gazette import FILE.opml` add more)",
            path.display()
        );
    }
    Ok(Settings::load(path)?)
}

pub(crate) async fn open_pipeline(settings: Settings) -> Result<Pipeline> {
    let store = open_store(&settings).await?;
    gazette::pipeline::recover::complete_records(&settings, &store)
        .await
        .context("completing records from the archive")?;
    let fetcher = Fetcher::new(&settings.fetch)?;
    Ok(Pipeline::new(Arc::new(settings), store, fetcher)?)
}

/// Takes the archive's writer lock, or says who holds it.
pub(crate) async fn writer_lock(
    settings: &Settings,
) -> Result<std::result::Result<ArchiveWriter, ExitCode>> {
    let taken = ArchiveWriter::take(settings, settings.lock_timeout)
        .await
        .with_context(|| {
            format!(
                "opening the state database {}",
                redacted(&settings.state_url)
            )
        })?;
    match taken {
        Ok(lock) => {
            sweep_temp_files(settings).await;
            Ok(Ok(lock))
        }
        Err(busy) => {
            eprintln!("gazette: {busy}");
            Ok(Err(ExitCode::from(EXIT_LOCKED)))
        }
    }
}

pub(crate) async fn open_store(settings: &Settings) -> Result<Store> {
    Store::open(&settings.state_url).await.with_context(|| {
        format!(
            "opening the state database {}",
            redacted(&settings.state_url)
        )
    })
}
