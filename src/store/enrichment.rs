//! Enrichment state: which articles wait for their bilingual sections, what they cost, and the
//! answers already paid for.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::{Store, from_millis, to_millis};
use crate::error::Result;

/// An article whose enrichment is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEnrichment {
    pub source: String,
    pub key: String,
    pub content_hash: String,
    pub path: String,
    pub attempts: u32,
    /// The article's own language.
    pub language: String,
}

/// A cached answer and what it cost.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CachedAnswer {
    pub answer: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// Totals for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct EnrichmentTotals {
    pub pending: i64,
    pub failed: i64,
    pub enriched: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

async fn add_spend(conn: &mut AnyConnection, at: &DateTime<Utc>, tokens: i64) -> Result<()> {
    let (day, _) = day_and_month_start(at);
    sqlx::query(
        "INSERT INTO token_spend (day, tokens) VALUES ($1, $2)
         ON CONFLICT (day) DO UPDATE SET tokens = token_spend.tokens + excluded.tokens",
    )
    .bind(day)
    .bind(tokens)
    .execute(conn)
    .await?;
    Ok(())
}

/// A due enrichment as the queries here select it.
#[derive(sqlx::FromRow)]
struct PendingRow {
    source: String,
    key: String,
    content_hash: String,
    path: String,
    attempts: i64,
    language: String,
}

impl From<PendingRow> for PendingEnrichment {
    fn from(r: PendingRow) -> Self {
        Self {
            source: r.source,
            key: r.key,
            content_hash: r.content_hash,
            path: r.path,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            language: r.language,
        }
    }
}

/// Tokens spent (and reserved by requests in flight) today and this month, UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Spend {
    pub today: i64,
    pub this_month: i64,
}

/// A UTC day as `token_spend` keys it, and the first day of its month.
fn day_and_month_start(now: &DateTime<Utc>) -> (i64, i64) {
    use chrono::Datelike as _;
    let day = now.date_naive();
    let first = day.with_day(1).unwrap_or(day);
    let since_epoch = |d: chrono::NaiveDate| (d - chrono::NaiveDate::default()).num_days();
    (since_epoch(day), since_epoch(first))
}

async fn spend_in(conn: &mut AnyConnection, now: &DateTime<Utc>) -> Result<Spend> {
    let (day, month_start) = day_and_month_start(now);
    let (today, this_month): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN day = $1 THEN tokens ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(tokens), 0) AS BIGINT)
         FROM token_spend WHERE day >= $2 AND day <= $1",
    )
    .bind(day)
    .bind(month_start)
    .fetch_one(conn)
    .await?;
    Ok(Spend { today, this_month })
}

impl Store {
    /// What has been spent today and this month (UTC) at `now`.
    pub async fn token_spend(&self, now: &DateTime<Utc>) -> Result<Spend> {
        let mut conn = self.pool.acquire().await?;
        spend_in(&mut conn, now).await
    }

    /// Reserves `tokens` for a request starting at `now`, unless what is spent and reserved
    /// plus them would pass `daily` or `monthly`; whether it was reserved. Writing
    /// transactions take turns, so processes sharing the state reserve one at a time.
    pub async fn reserve_tokens(
        &self,
        now: &DateTime<Utc>,
        tokens: i64,
        daily: Option<u64>,
        monthly: Option<u64>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let spent = spend_in(&mut tx, now).await?;
        let fits = |spent: i64, budget: Option<u64>| {
            budget.is_none_or(|b| {
                spent.saturating_add(tokens) <= i64::try_from(b).unwrap_or(i64::MAX)
            })
        };
        if !(fits(spent.today, daily) && fits(spent.this_month, monthly)) {
            return Ok(false);
        }
        add_spend(&mut tx, now, tokens).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Corrects a reservation made at `reserved_at` by `delta` tokens, once the request's
    /// real cost is known (negative: it cost less than reserved).
    pub async fn settle_tokens(&self, reserved_at: &DateTime<Utc>, delta: i64) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        add_spend(&mut tx, reserved_at, delta).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks an article as waiting for enrichment of this content (again, if it changed).
    pub async fn mark_pending(
        conn: &mut AnyConnection,
        source: &str,
        key: &str,
        content_hash: &str,
        now: &DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrichments (source, key, content_hash, status, attempts, next_attempt_at, updated_at)
             VALUES ($1, $2, $3, 'pending', 0, $4, $4)
             ON CONFLICT (source, key) DO UPDATE SET
                content_hash = excluded.content_hash, status = 'pending', attempts = 0,
                next_attempt_at = excluded.next_attempt_at, last_error = NULL, updated_at = excluded.updated_at
             WHERE enrichments.content_hash <> excluded.content_hash OR enrichments.status <> 'done'",
        )
        .bind(source)
        .bind(key)
        .bind(content_hash)
        .bind(to_millis(now))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Records a successful enrichment and its cost.
    pub async fn mark_enriched(
        conn: &mut AnyConnection,
        source: &str,
        key: &str,
        content_hash: &str,
        tokens: (i64, i64),
        now: &DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrichments (source, key, content_hash, status, attempts, next_attempt_at,
                                      prompt_tokens, completion_tokens, updated_at)
             VALUES ($1, $2, $3, 'done', 0, $4, $5, $6, $4)
             ON CONFLICT (source, key) DO UPDATE SET
                content_hash = excluded.content_hash, status = 'done', last_error = NULL,
                prompt_tokens = enrichments.prompt_tokens + excluded.prompt_tokens,
                completion_tokens = enrichments.completion_tokens + excluded.completion_tokens,
                updated_at = excluded.updated_at",
        )
        .bind(source)
        .bind(key)
        .bind(content_hash)
        .bind(to_millis(now))
        .bind(tokens.0)
        .bind(tokens.1)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Records a failed attempt; after `max_attempts` the article is reported as failed.
    #[allow(clippy::too_many_arguments)]
    pub async fn mark_enrichment_failed(
        &self,
        source: &str,
        key: &str,
        error: &str,
        next_attempt_at: &DateTime<Utc>,
        max_attempts: u32,
        tokens: (i64, i64),
        now: &DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE enrichments SET
                attempts = attempts + 1,
                status = CASE WHEN attempts + 1 >= $4 THEN 'failed' ELSE 'pending' END,
                last_error = $3, next_attempt_at = $5,
                prompt_tokens = prompt_tokens + $6, completion_tokens = completion_tokens + $7,
                updated_at = $8
             WHERE source = $1 AND key = $2",
        )
        .bind(source)
        .bind(key)
        .bind(error)
        .bind(i64::from(max_attempts))
        .bind(to_millis(next_attempt_at))
        .bind(tokens.0)
        .bind(tokens.1)
        .bind(to_millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Articles whose enrichment is due, newest first, of `sources` (all when empty), at most
    /// `limit`. `include_waiting` also takes those still backing off, and `include_failed` those
    /// that ran out of attempts.
    pub async fn pending_enrichments(
        &self,
        sources: &[String],
        now: &DateTime<Utc>,
        include_waiting: bool,
        include_failed: bool,
        limit: usize,
    ) -> Result<Vec<PendingEnrichment>> {
        let rows = sqlx::query_as::<_, PendingRow>(
            "SELECT e.source, e.key, e.content_hash, a.path, e.attempts, COALESCE(a.language, 'en') AS language
             FROM enrichments e JOIN articles a ON a.source = e.source AND a.key = e.key
             WHERE (e.status = 'pending' OR ($3 AND e.status = 'failed'))
               AND ($2 OR e.next_attempt_at <= $1)
               AND e.content_hash = a.content_hash
               AND ($4 = '[]' OR e.source IN (SELECT value FROM json_each($4)))
               -- Leased to a worker (see `claim_enrichments`): that worker's.
               AND (e.lease_until IS NULL OR e.lease_until <= $1)
             ORDER BY a.date DESC LIMIT $5",
        )
        .bind(to_millis(now))
        .bind(include_waiting)
        .bind(include_failed)
        .bind(serde_json::to_string(sources).unwrap_or_else(|_| "[]".to_owned()))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(PendingEnrichment::from).collect())
    }

    /// Leases up to `limit` due enrichments, newest first, to `worker` until `now + lease`,
    /// skipping those another worker holds: each article is asked about by one worker at a
    /// time, and the work spreads over all of them.
    pub async fn claim_enrichments(
        &self,
        worker: &str,
        now: &DateTime<Utc>,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<PendingEnrichment>> {
        let skip_locked = match self.backend {
            super::Backend::Sqlite => "",
            super::Backend::Postgres => "FOR UPDATE OF e SKIP LOCKED",
        };
        let until =
            to_millis(now).saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let mut tx = self.begin().await?;
        let keys: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT e.source, e.key FROM enrichments e
             JOIN articles a ON a.source = e.source AND a.key = e.key
             WHERE e.status = 'pending' AND e.next_attempt_at <= $1
               AND e.content_hash = a.content_hash
               AND (e.lease_until IS NULL OR e.lease_until <= $1)
             ORDER BY a.date DESC LIMIT $2 {skip_locked}"
        )))
        .bind(to_millis(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(keys.len());
        for (source, key) in keys {
            let row = sqlx::query_as::<_, PendingRow>(
                "UPDATE enrichments SET lease_owner = $3, lease_until = $4
                 WHERE source = $1 AND key = $2
                 RETURNING source, key, content_hash,
                   (SELECT a.path FROM articles a WHERE a.source = $1 AND a.key = $2) AS path,
                   attempts,
                   (SELECT COALESCE(a.language, 'en') FROM articles a
                    WHERE a.source = $1 AND a.key = $2) AS language",
            )
            .bind(&source)
            .bind(&key)
            .bind(worker)
            .bind(until)
            .fetch_one(&mut *tx)
            .await?;
            claimed.push(PendingEnrichment::from(row));
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Queues the archived articles of `sources` (dated `since` or later) that have no LLM
    /// sections yet, and with `redo_unless` those whose sections another model or prompt than
    /// this one wrote (when state holds their own text); returns how many.
    pub async fn queue_unenriched(
        &self,
        sources: &[String],
        since: Option<&DateTime<Utc>>,
        redo_unless: Option<&str>,
        now: &DateTime<Utc>,
    ) -> Result<u64> {
        let queued = sqlx::query(
            "INSERT INTO enrichments (source, key, content_hash, status, attempts, next_attempt_at, updated_at)
             SELECT a.source, a.key, a.content_hash, 'pending', 0, $3, $3 FROM articles a
             WHERE a.source IN (SELECT value FROM json_each($1))
               AND a.date >= $2
               AND (a.section_count = 1
                    OR ($4 IS NOT NULL AND a.original IS NOT NULL
                        AND COALESCE(a.enriched_by, '') <> $4))
             ON CONFLICT (source, key) DO UPDATE SET
                content_hash = excluded.content_hash, status = 'pending', attempts = 0,
                next_attempt_at = excluded.next_attempt_at, last_error = NULL,
                updated_at = excluded.updated_at",
        )
        .bind(serde_json::to_string(sources).unwrap_or_else(|_| "[]".to_owned()))
        .bind(since.map_or(i64::MIN, to_millis))
        .bind(to_millis(now))
        .bind(redo_unless)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(queued)
    }

    pub async fn cached_answer(&self, cache_key: &str) -> Result<Option<CachedAnswer>> {
        let answer = sqlx::query_as::<_, CachedAnswer>(
            "SELECT answer, prompt_tokens, completion_tokens FROM enrichment_cache WHERE cache_key = $1",
        )
        .bind(cache_key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(answer)
    }

    pub async fn cache_answer(
        conn: &mut AnyConnection,
        cache_key: &str,
        answer: &CachedAnswer,
        now: &DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrichment_cache (cache_key, answer, prompt_tokens, completion_tokens, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (cache_key) DO UPDATE SET answer = excluded.answer,
                prompt_tokens = excluded.prompt_tokens,
                completion_tokens = excluded.completion_tokens, created_at = excluded.created_at",
        )
        .bind(cache_key)
        .bind(&answer.answer)
        .bind(answer.prompt_tokens)
        .bind(answer.completion_tokens)
        .bind(to_millis(now))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Tokens spent on enrichment, prompt and completion: one row, for `/metrics`.
    pub async fn token_totals(&self) -> Result<(i64, i64)> {
        #[derive(sqlx::FromRow)]
        struct TokensRow {
            prompt_tokens: i64,
            completion_tokens: i64,
        }
        let row = sqlx::query_as::<_, TokensRow>(
            "SELECT prompt_tokens, completion_tokens FROM enrichment_tokens WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.prompt_tokens, row.completion_tokens))
    }

    pub async fn enrichment_totals(&self) -> Result<EnrichmentTotals> {
        let totals = sqlx::query_as::<_, EnrichmentTotals>(
            // Counted with CASE and cast: PostgreSQL neither sums booleans nor sums integers
            // into integers.
            "SELECT CAST(COUNT(CASE WHEN status = 'pending' THEN 1 END) AS BIGINT) AS pending,
                    CAST(COUNT(CASE WHEN status = 'failed' THEN 1 END) AS BIGINT) AS failed,
                    CAST(COUNT(CASE WHEN status = 'done' THEN 1 END) AS BIGINT) AS enriched,
                    CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens,
                    CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens
             FROM enrichments",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(totals)
    }

    /// The last enrichment error per source and key, for `status`.
    pub async fn enrichment_failures(
        &self,
    ) -> Result<Vec<(String, String, String, DateTime<Utc>)>> {
        #[derive(sqlx::FromRow)]
        struct FailureRow {
            source: String,
            key: String,
            last_error: String,
            next_attempt_at: i64,
        }
        let rows = sqlx::query_as::<_, FailureRow>(
            "SELECT source, key, COALESCE(last_error, '') AS last_error, next_attempt_at FROM enrichments
             WHERE status = 'failed' OR (status = 'pending' AND last_error IS NOT NULL)
             ORDER BY source, key",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.source,
                    r.key,
                    r.last_error,
                    from_millis(r.next_attempt_at),
                )
            })
            .collect())
    }
}
