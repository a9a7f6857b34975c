//! `gazette run`: signals wired to the daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use gazette::config::Settings;

use super::writer_lock;

pub(crate) async fn run_daemon(
    settings: Settings,
    config_path: PathBuf,
    listen: Option<String>,
) -> Result<ExitCode> {
    gazette::serve::connections::raise_open_files_limit();
    let _lock = match writer_lock(&settings).await? {
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
        clock: gazette::clock::Clock::system(),
    };
    gazette::daemon::run(settings, options, shutdown, reload_rx, |event| {
        if let gazette::daemon::Event::Listening(addr) = event {
            println!("listening on http://{addr}");
        }
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
