//! The archive's one writer when state is on PostgreSQL, where processes on several machines
//! share it and a lock file beside a database file cannot exist: a session-level advisory lock,
//! held by a connection of its own for as long as the holder lives. PostgreSQL releases it when
//! that connection ends, the holder's death included.

use std::time::Duration;

use sqlx::{AnyConnection, Connection as _};

use crate::error::Result;

/// The advisory lock key of the archive writer ("gzta"); not the write-transaction lock's.
const ARCHIVE_LOCK: i64 = 0x677a_7461;

/// Held while it lives.
#[derive(Debug)]
pub struct ArchiveLock {
    session: AnyConnection,
}

/// Who holds the lock, as its session names itself: the process id, and the host when it is
/// another.
pub struct Holder(pub Option<String>);

impl ArchiveLock {
    /// Takes the lock, asking again until `wait` has passed; the holder when another session
    /// held it all that time.
    pub async fn take(url: &str, wait: Duration) -> Result<std::result::Result<Self, Holder>> {
        sqlx::any::install_default_drivers();
        let mut session = AnyConnection::connect(url).await?;
        let host = this_host();
        // What another process shows as the holder while this one holds it.
        sqlx::query("SELECT set_config('application_name', $1, false)")
            .bind(session_name(std::process::id(), &host))
            .execute(&mut session)
            .await?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(ARCHIVE_LOCK)
                .fetch_one(&mut session)
                .await?;
            if taken {
                return Ok(Ok(Self { session }));
            }
            if tokio::time::Instant::now() >= deadline {
                let holder = holder(&mut session, &host).await;
                session.close().await?;
                return Ok(Err(Holder(holder)));
            }
            // An advisory lock cannot be awaited with a deadline; asking again is how its
            // release is seen.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl ArchiveLock {
    /// Whether the session holding the lock still answers (the lock ends with it).
    pub async fn alive(&mut self) -> bool {
        sqlx::query("SELECT 1")
            .execute(&mut self.session)
            .await
            .is_ok()
    }
}

/// This machine's name, as processes sharing a state tell each other apart.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

fn session_name(pid: u32, host: &str) -> String {
    format!("gazette pid {pid} host {host}")
}

/// The holder's own words, from the session that holds the lock.
async fn holder(session: &mut AnyConnection, host: &str) -> Option<String> {
    // A bigint advisory key shows in `pg_locks` as its high and low 32 bits.
    let name: Option<String> = sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0
           AND l.objid = CAST($1 AS oid) AND l.database =
               (SELECT oid FROM pg_database WHERE datname = current_database())
         LIMIT 1",
    )
    .bind(ARCHIVE_LOCK)
    .fetch_optional(session)
    .await
    .ok()
    .flatten();
    let rest = name?.strip_prefix("gazette pid ")?.to_owned();
    let (pid, their_host) = rest.split_once(" host ")?;
    Some(if their_host == host {
        format!("pid {pid}")
    } else {
        format!("pid {pid} on {their_host}")
    })
}
