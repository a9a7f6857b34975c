//! The archive's one writer, held while it lives: a lock file beside a SQLite state, or the
//! PostgreSQL state's own advisory lock (processes on several machines share that state, and
//! a lock file beside it cannot exist).

use std::time::Duration;

use crate::config::Settings;
use crate::error::Result;
use crate::lock::{LockBusy, WriterLock};
use crate::store::{ArchiveLock, redacted};

#[derive(Debug)]
pub enum ArchiveWriter {
    File(WriterLock),
    Database(ArchiveLock),
}

impl ArchiveWriter {
    /// Takes the writer lock of the archive `settings` name, waiting up to `wait`; who holds
    /// it when another process held it all that time.
    pub async fn take(
        settings: &Settings,
        wait: Duration,
    ) -> Result<std::result::Result<Self, LockBusy>> {
        Ok(match &settings.state_file {
            Some(state_file) => WriterLock::acquire(&WriterLock::path_for(state_file), wait)
                .await?
                .map(ArchiveWriter::File),
            None => ArchiveLock::take(&settings.state_url, wait)
                .await?
                .map(ArchiveWriter::Database)
                .map_err(|holder| {
                    LockBusy::new(
                        format!("advisory lock in {}", redacted(&settings.state_url)),
                        holder.0.as_deref(),
                        wait,
                    )
                }),
        })
    }

    /// Whether the lock is still held: a database lock lives as long as its session, which
    /// a restarted server or a broken connection ends.
    pub async fn held(&mut self) -> bool {
        match self {
            ArchiveWriter::File(_) => true,
            ArchiveWriter::Database(lock) => lock.alive().await,
        }
    }
}
