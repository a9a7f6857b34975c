//! One writer at a time: an advisory lock on a file beside the state database. The daemon holds
//! it for its lifetime and each `fetch` for its run, so two processes never write the same
//! archive; a second one waits up to a configured time, then gives up with a clear message.

use std::fs::{File, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// Held while it lives; dropping it releases the lock.
#[derive(Debug)]
pub struct WriterLock {
    file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[error(
    "another Gazette process{holder} is writing this archive (lock {lock}); gave up after {waited}"
)]
pub struct LockBusy {
    /// Which lock: the lock file's path, or the database's.
    pub lock: String,
    holder: String,
    waited: String,
}

impl LockBusy {
    /// Who holds the lock, when known.
    pub fn holder(&self) -> Option<&str> {
        self.holder
            .strip_prefix(" (")
            .and_then(|h| h.strip_suffix(')'))
    }

    /// Busy after waiting `wait` for `lock`, held by `holder` when known.
    pub fn new(lock: String, holder: Option<&str>, wait: Duration) -> Self {
        Self {
            lock,
            holder: holder.map(|h| format!(" ({h})")).unwrap_or_default(),
            waited: humantime::format_duration(wait).to_string(),
        }
    }
}

impl WriterLock {
    /// The lock file for a state database path: `gazette.db` -> `gazette.db.lock`.
    pub fn path_for(state_file: &Path) -> PathBuf {
        let mut name = state_file
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".lock");
        state_file.with_file_name(name)
    }

    /// Takes the lock, waiting up to `wait` for another holder to let go. The wait is async:
    /// the runtime's threads stay free meanwhile.
    pub async fn acquire(
        path: &Path,
        wait: Duration,
    ) -> Result<std::result::Result<Self, LockBusy>> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    let mut lock = Self { file };
                    lock.write_holder();
                    return Ok(Ok(lock));
                }
                Err(TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                    // flock(2) cannot be awaited; asking again is how the release is seen.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(TryLockError::WouldBlock) => {
                    let holder = std::fs::read_to_string(path)
                        .ok()
                        .map(|pid| pid.trim().to_owned())
                        .filter(|pid| !pid.is_empty())
                        .map(|pid| format!("pid {pid}"));
                    return Ok(Err(LockBusy::new(
                        path.display().to_string(),
                        holder.as_deref(),
                        wait,
                    )));
                }
                Err(TryLockError::Error(e)) => return Err(Error::io(path, e)),
            }
        }
    }

    /// The holder's pid, for the message another process shows.
    fn write_holder(&mut self) {
        let _ = self.file.set_len(0);
        let _ = write!(self.file, "{}", std::process::id());
        let _ = self.file.flush();
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_second_holder_waits_then_gives_up_naming_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = WriterLock::path_for(&dir.path().join("state/gazette.db"));
        assert!(path.ends_with("state/gazette.db.lock"));
        let first = WriterLock::acquire(&path, Duration::ZERO)
            .await
            .expect("io")
            .expect("free");
        let started = tokio::time::Instant::now();
        let busy = WriterLock::acquire(&path, Duration::from_millis(300))
            .await
            .expect("io")
            .expect_err("held");
        assert!(started.elapsed() >= Duration::from_millis(300));
        let message = busy.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        assert!(
            WriterLock::acquire(&path, Duration::ZERO)
                .await
                .expect("io")
                .is_ok()
        );
    }
}
