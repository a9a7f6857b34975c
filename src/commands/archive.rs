//! Commands between the archive and the state: `rebuild`, `verify`, `remove`, `backup`,
//! `migrate-state`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::Utc;
use gazette::config::Settings;
use gazette::pipeline::recover;
use gazette::store::{Store, redacted};

use super::{open_pipeline, open_store, writer_lock};

/// Exit code when the archive and the state disagree.
const EXIT_DISAGREE: u8 = 5;

pub(crate) async fn rebuild(settings: Settings) -> Result<ExitCode> {
    let _lock = match writer_lock(&settings).await? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let store = open_store(&settings).await?;
    let report = recover::rebuild(&settings, &store)
        .await
        .context("rebuilding the state from the archive")?;
    let mut out = std::io::stdout().lock();
    for (path, why) in &report.skipped {
        writeln!(out, "not recovered: {path}: {why}")?;
    }
    writeln!(
        out,
        "{} articles recovered from {}, {} already known, {} not recovered",
        report.recovered,
        settings.archive_dir.display(),
        report.known,
        report.skipped.len()
    )?;
    store.close().await;
    Ok(if report.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DISAGREE)
    })
}

pub(crate) async fn backup(settings: Settings, file: &std::path::Path) -> Result<ExitCode> {
    // No writer lock: the copy is one read transaction, and the daemon goes on meanwhile.
    let store = open_store(&settings).await?;
    let copied = store.backup(file).await;
    store.close().await;
    copied.with_context(|| format!("backing up {}", settings.state_url))?;
    println!("{} written and checked", file.display());
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn migrate_state(settings: Settings, to: &str) -> Result<ExitCode> {
    // The writer lock: no run changes the state while it is copied.
    let _lock = match writer_lock(&settings).await? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let shown = redacted(to);
    if redacted(&settings.state_url) == shown {
        anyhow::bail!("{shown} is the configured state itself; name another database");
    }
    let store = open_store(&settings).await?;
    let target = Store::open(to)
        .await
        .with_context(|| format!("opening the target database {shown}"))?;
    let copied = store.copy_into(&target).await;
    store.close().await;
    target.close().await;
    let copied = copied.with_context(|| format!("copying the state into {shown}"))?;
    let mut out = std::io::stdout().lock();
    for (table, rows) in &copied.tables {
        writeln!(out, "{table:<18} {rows:>9} rows")?;
    }
    writeln!(
        out,
        "copied into {shown}; to use it, set [state] url in {}",
        settings.config_path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn sync(settings: Settings) -> Result<ExitCode> {
    let store = open_store(&settings).await?;
    let sources = settings.sources_to_sync();
    let synced = store
        .sync_sources(&sources, &settings.shared_with_workers())
        .await;
    store.close().await;
    synced.context("syncing the sources into the state")?;
    println!(
        "{} sources synced into {}",
        sources.len(),
        redacted(&settings.state_url)
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn verify(settings: Settings, repair: bool) -> Result<ExitCode> {
    let _lock = match writer_lock(&settings).await? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let store = open_store(&settings).await?;
    // Damaged pages first: comparing records read from them would mislead.
    store.check_integrity(true).await?;
    let report = recover::verify(&settings, &store, repair)
        .await
        .context("comparing the archive with the state")?;
    let mut out = std::io::stdout().lock();
    for finding in &report.repaired {
        writeln!(out, "repaired {finding}")?;
    }
    for finding in &report.findings {
        writeln!(out, "{finding}")?;
    }
    writeln!(
        out,
        "{} articles checked: {} disagree, {} repaired",
        report.checked,
        report.findings.len(),
        report.repaired.len()
    )?;
    store.close().await;
    Ok(if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DISAGREE)
    })
}

pub(crate) async fn remove(config: &Path, source: &str, purge: bool) -> Result<ExitCode> {
    let settings = Settings::load(config)?;
    let _lock = match writer_lock(&settings).await? {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let store = open_store(&settings).await?;
    let paths = store.paths_of(source).await?;
    let configured = settings.sources.iter().any(|s| s.id == source);
    if !configured && paths.is_empty() {
        anyhow::bail!(
            "{}: there is no source {source:?} in the config or the state",
            config.display()
        );
    }
    // State first: should the config edit fail, the source is out of the feeds already and
    // running `remove` again finishes the job.
    store.tombstone_source(source, &Utc::now()).await?;
    if configured {
        gazette::config::edit::remove_source(config, source)?;
    }
    let mut deleted = 0;
    if purge {
        deleted = gazette::files::remove_all(&settings.archive_dir, &paths)
            .context("deleting the source's files")?;
        store.purge_source(source).await?;
    }
    store.close().await;
    // The feeds lose the source's entries now, not at the next run.
    let settings = Settings::load(config)?;
    let pipeline = open_pipeline(settings).await?;
    pipeline.publish_feed().await.context("writing the feeds")?;
    if purge {
        println!(
            "{source}: removed from the config, the state and the feeds; {deleted} files deleted"
        );
    } else {
        println!(
            "{source}: removed from the config and the feeds; its {} files stay in the archive (--purge deletes them)",
            paths.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
