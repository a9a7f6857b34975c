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
    /// Records whose archive file the publisher has yet to write.
    pub unrendered: i64,
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
    /// is claimed no more. `shared`: the rest of the config that workers read their sources
    /// with (TOML). One transaction.
    pub async fn sync_sources(
        &self,
        sources: &[(String, String, String)],
        shared: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO state_meta (key, value) VALUES ('shared_config', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(shared)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE sources SET config = NULL WHERE config IS NOT NULL")
            .execute(&mut *tx)
            .await?;
        for (id, url, config) in sources {
            // As the fetcher counts its per-host limit: host and port.
            let host = url::Url::parse(url).ok().and_then(|u| {
                let port = u.port_or_known_default().unwrap_or(0);
                Some(format!("{}:{port}", u.host_str()?.to_ascii_lowercase()))
            });
            sqlx::query(
                "INSERT INTO sources (id, url, config, host) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET config = excluded.config, host = excluded.host",
            )
            .bind(id)
            .bind(url)
            .bind(config)
            .bind(host)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The config the publisher last synced for the workers (see [`Store::sync_sources`]).
    pub async fn shared_config(&self) -> Result<Option<String>> {
        let value = sqlx::query_scalar("SELECT value FROM state_meta WHERE key = 'shared_config'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(value)
    }

    /// Claims up to `limit` synced sources that are due at `now` and not leased by another
    /// worker, for `lease`, at most `per_host` of one host. On PostgreSQL, rows another
    /// transaction holds are skipped, not waited for.
    ///
    /// A host is worked on by one worker at a time: no source is claimed whose host another
    /// worker holds a lease on. So each worker's `fetch.per_host` limit is the host's limit
    /// across all workers, with no budget shared over the network. A claim takes whole hosts,
    /// the longest due first, at most `per_host` sources of each (the caller passes a few
    /// times its limit): enough to keep the worker busy, and the other hosts left to the
    /// other workers instead of one worker taking one source of every host.
    /// Claims are writing transactions, which take turns (`Store::begin`), so two workers
    /// cannot take two sources of one host at the same moment.
    pub async fn claim_due(
        &self,
        worker: &str,
        now: &DateTime<Utc>,
        lease: Duration,
        limit: usize,
        per_host: usize,
    ) -> Result<Vec<Claimed>> {
        let skip_locked = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "WITH ranked AS (
                SELECT id, COALESCE(host, id) AS host_key,
                       MIN(COALESCE(next_due_at, 0)) OVER (PARTITION BY COALESCE(host, id))
                           AS host_due,
                       ROW_NUMBER() OVER (PARTITION BY COALESCE(host, id)
                                          ORDER BY COALESCE(next_due_at, 0), id) AS nth
                FROM sources
                WHERE config IS NOT NULL AND removed_at IS NULL AND disabled_reason IS NULL
                  AND COALESCE(next_due_at, 0) <= $3
                  AND (lease_until IS NULL OR lease_until <= $3)
                  AND NOT EXISTS (SELECT 1 FROM sources other
                                  WHERE other.host = sources.host
                                    AND other.lease_owner IS NOT NULL
                                    AND other.lease_owner <> $1
                                    AND other.lease_until > $3))
             UPDATE sources SET lease_owner = $1, lease_until = $2
             WHERE id IN (SELECT id FROM sources
                          WHERE id IN (SELECT id FROM ranked WHERE nth <= $5
                                       ORDER BY host_due, host_key, nth LIMIT $4)
                          {skip_locked})
             RETURNING id, config"
        );
        let mut tx = self.begin().await?;
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(to_millis(now).saturating_add(millis(lease)))
            .bind(to_millis(now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(per_host.max(1)).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut claimed: Vec<Claimed> = rows
            .into_iter()
            .filter_map(|(id, config)| {
                Some(Claimed {
                    id,
                    config: config?,
                })
            })
            .collect();
        claimed.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(claimed)
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
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, role = excluded.role",
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

    /// Forgets a process that stopped.
    pub async fn forget_worker(&self, worker: &str) -> Result<()> {
        sqlx::query("DELETE FROM workers WHERE id = $1")
            .bind(worker)
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
        let (due, leased, pending, unrendered): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT
                (SELECT COUNT(*) FROM sources WHERE config IS NOT NULL AND removed_at IS NULL
                   AND disabled_reason IS NULL AND COALESCE(next_due_at, 0) <= $1
                   AND (lease_until IS NULL OR lease_until <= $1)),
                (SELECT COUNT(*) FROM sources WHERE lease_until > $1),
                (SELECT COUNT(*) FROM enrichments WHERE status = 'pending'),
                (SELECT COUNT(*) FROM render_queue)",
        )
        .bind(to_millis(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(Queue {
            due,
            leased,
            pending_enrichments: pending,
            unrendered,
        })
    }
}
