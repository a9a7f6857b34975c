//! Sharing the sources between worker processes: the publisher syncs the configured sources
//! into state; a worker claims due ones for a lease period, renews the lease while it works,
//! and commits a source's results only while it still holds it. A lease that runs out (its
//! worker killed, its machine gone) makes the source claimable again; nothing is held across
//! the network longer than a lease.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::{Backend, Store, from_millis, to_millis};
use crate::error::Result;

/// A source a worker claimed: its id and its settings as the publisher synced them (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: String,
    pub config: String,
}

/// A process working on this state, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkerRow {
    pub id: String,
    pub role: String,
    pub host: String,
    pub pid: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// Sources whose lease it holds now.
    pub leases: i64,
}

/// The work waiting, as `status` and `/metrics` show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queue {
    /// Synced sources due now and not leased.
    pub due: i64,
    /// Sources leased now.
    pub leased: i64,
    /// Articles waiting for their LLM sections.
    pub pending_enrichments: i64,
}

impl WorkerRow {
    /// When the process was last heard from.
    pub fn heard_at(&self) -> DateTime<Utc> {
        from_millis(self.heartbeat_at)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Makes the configured sources the claimable ones: each listed source's settings are
    /// stored (a new source is due at once); a source no longer listed keeps its history but
    /// is claimed no more. One transaction.
    pub async fn sync_sources(&self, sources: &[(String, String, String)]) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE sources SET config = NULL WHERE config IS NOT NULL")
            .execute(&mut *tx)
            .await?;
        for (id, url, config) in sources {
            sqlx::query(
                "INSERT INTO sources (id, url, config) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET config = excluded.config",
            )
            .bind(id)
            .bind(url)
            .bind(config)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` synced sources that are due at `now` and not leased by another
    /// worker, for `lease`. On PostgreSQL, rows another worker is claiming at the same moment
    /// are skipped, not waited for; SQLite has one writer at a time anyway.
    pub async fn claim_due(
        &self,
        worker: &str,
        now: &DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        let skip_locked = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE sources SET lease_owner = $1, lease_until = $2
             WHERE id IN (SELECT id FROM sources
                          WHERE config IS NOT NULL AND removed_at IS NULL
                            AND COALESCE(next_due_at, 0) <= $3
                            AND (lease_until IS NULL OR lease_until <= $3)
                          ORDER BY COALESCE(next_due_at, 0), id LIMIT $4 {skip_locked})
             RETURNING id, config"
        );
        let mut tx = self.begin().await?;
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(to_millis(now).saturating_add(millis(lease)))
            .bind(to_millis(now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, config)| {
                Some(Claimed {
                    id,
                    config: config?,
                })
            })
            .collect())
    }

    /// Extends the worker's leases on these sources to `until`; returns the ones it still
    /// held (a lease that ran out and was claimed by another is lost for good).
    pub async fn renew_leases(
        &self,
        worker: &str,
        sources: &[String],
        now: &DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<String>> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(sources).unwrap_or_default();
        let held: Vec<String> = sqlx::query_scalar(
            "UPDATE sources SET lease_until = $1
             WHERE lease_owner = $2 AND lease_until > $3
               AND id IN (SELECT value FROM json_each($4))
             RETURNING id",
        )
        .bind(to_millis(now).saturating_add(millis(lease)))
        .bind(worker)
        .bind(to_millis(now))
        .bind(list)
        .fetch_all(&self.pool)
        .await?;
        Ok(held)
    }

    /// Whether the worker still holds the source's lease at `now`, checked inside the
    /// transaction that commits the source's results. On PostgreSQL the source's row stays
    /// locked until that transaction ends, so no claim can take it meanwhile.
    pub async fn holds_lease(
        conn: &mut AnyConnection,
        worker: &str,
        source: &str,
        now: &DateTime<Utc>,
    ) -> Result<bool> {
        let lock = match Backend::of(conn) {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE",
        };
        let held: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM sources WHERE id = $1 AND lease_owner = $2 AND lease_until > $3 {lock}"
        )))
        .bind(source)
        .bind(worker)
        .bind(to_millis(now))
        .fetch_optional(conn)
        .await?;
        Ok(held.is_some())
    }

    /// Gives the source back before its lease runs out (its work is committed or given up).
    pub async fn release_lease(conn: &mut AnyConnection, worker: &str, source: &str) -> Result<()> {
        sqlx::query(
            "UPDATE sources SET lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(source)
        .bind(worker)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Records that this process is alive (and registers it on its first beat).
    pub async fn heartbeat(
        &self,
        worker: &str,
        role: &str,
        host: &str,
        started_at: &DateTime<Utc>,
        now: &DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO workers (id, role, host, pid, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(worker)
        .bind(role)
        .bind(host)
        .bind(i64::from(std::process::id()))
        .bind(to_millis(started_at))
        .bind(to_millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets processes not heard from since `before`.
    pub async fn forget_workers(&self, before: &DateTime<Utc>) -> Result<u64> {
        let gone = sqlx::query("DELETE FROM workers WHERE heartbeat_at < $1")
            .bind(to_millis(before))
            .execute(&self.pool)
            .await?;
        Ok(gone.rows_affected())
    }

    /// Every process working on this state, with the leases each holds at `now`.
    pub async fn workers(&self, now: &DateTime<Utc>) -> Result<Vec<WorkerRow>> {
        let rows = sqlx::query_as::<_, WorkerRow>(
            "SELECT w.id, w.role, w.host, w.pid, w.started_at, w.heartbeat_at,
                    (SELECT COUNT(*) FROM sources s
                     WHERE s.lease_owner = w.id AND s.lease_until > $1) AS leases
             FROM workers w ORDER BY w.id",
        )
        .bind(to_millis(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// The work waiting at `now`.
    pub async fn queue(&self, now: &DateTime<Utc>) -> Result<Queue> {
        let (due, leased, pending): (i64, i64, i64) = sqlx::query_as(
            "SELECT
                (SELECT COUNT(*) FROM sources WHERE config IS NOT NULL AND removed_at IS NULL
                   AND COALESCE(next_due_at, 0) <= $1
                   AND (lease_until IS NULL OR lease_until <= $1)),
                (SELECT COUNT(*) FROM sources WHERE lease_until > $1),
                (SELECT COUNT(*) FROM enrichments WHERE status = 'pending')",
        )
        .bind(to_millis(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(Queue {
            due,
            leased,
            pending_enrichments: pending,
        })
    }
}
