//! `gazette run`: signals wired to the daemon, in the role asked for.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use gazette::config::Settings;
use gazette::daemon::{Event, Role};

use super::writer_lock;

pub(crate) async fn run_daemon(
    settings: Settings,
    config_path: PathBuf,
    listen: Option<String>,
    role: Role,
) -> Result<ExitCode> {
    // A publisher waits for the lock as a standby; a worker writes no archive.
    let _lock = match role {
        Role::All => match writer_lock(&settings).await? {
            Ok(lock) => Some(lock),
            Err(code) => return Ok(code),
        },
        Role::Worker | Role::Publisher => None,
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
    let clock = gazette::clock::Clock::system();
    let options = gazette::daemon::DaemonOptions {
        config_path,
        listen,
        clock: clock.clone(),
    };
    match role {
        Role::All => {
            gazette::daemon::run(settings, options, shutdown, reload_rx, |e| print(role, e)).await?
        }
        Role::Publisher => {
            gazette::daemon::publisher::run(settings, options, shutdown, reload_rx, |e| {
                print(role, e)
            })
            .await?
        }
        Role::Worker => {
            gazette::daemon::worker::run(settings, clock, shutdown, |e| print(role, e)).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What an operator (and a test) reads on stdout as the process goes.
fn print(role: Role, event: Event) {
    match event {
        Event::Listening(addr) => println!("listening on http://{addr}"),
        Event::Working { worker } => println!("worker {worker} started"),
        Event::Publishing => println!("publishing: this process writes the archive"),
        Event::Standby { holder } => println!(
            "standby: {} writes the archive",
            holder.as_deref().unwrap_or("another process")
        ),
        Event::Rendered { records, files } => {
            println!("rendered {records} records ({files} files changed)");
        }
        Event::FeedsWritten => println!("feeds written"),
        // A worker's round (the daemon's cycles are in its log).
        Event::Cycle {
            fetched,
            failed,
            new,
        } if role == Role::Worker => {
            println!("round: {fetched} fetched, {failed} failed, {new} new");
        }
        _ => {}
    }
}
