-- Split roles: workers write article records, the publisher writes their files (SQLite's
-- 0013_rendering.sql). `revision` counts a record's changes.
ALTER TABLE articles ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
-- The records whose file does not show their latest revision: what the publisher has to
-- write. A worker adds a record's path in the transaction that writes the record; the
-- publisher removes it once the file is durable, unless the record changed meanwhile. A queue
-- of its own, not a column of the article, so that marking a file written updates no article
-- row (and none of its indexes). No foreign key: checking one per queued record cost a cold
-- run a tenth of its database time; the publisher joins the articles and clears what no
-- article holds any more.
CREATE TABLE render_queue (
    path TEXT COLLATE "C" PRIMARY KEY NOT NULL
);

-- Sources are claimed a host at a time (see `Store::claim_due`).
ALTER TABLE sources ADD COLUMN host TEXT COLLATE "C";
CREATE INDEX sources_by_host ON sources (host) WHERE lease_owner IS NOT NULL;

-- Enrichment jobs are leased like sources, so that LLM work spreads over the workers and an
-- article is asked about by one worker at a time.
ALTER TABLE enrichments ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE enrichments ADD COLUMN lease_until BIGINT;

-- Tokens spent per UTC day (days since 1970-01-01), for `[enrich]` budgets (SQLite's 0013).
CREATE TABLE token_spend (
    day    BIGINT PRIMARY KEY NOT NULL,
    tokens BIGINT NOT NULL
);

-- When a source's extraction selector last matched an article page, and last matched nothing
-- (the site changed its layout?): `status` says so when the miss is the newer.
ALTER TABLE sources ADD COLUMN selector_matched_at BIGINT;
ALTER TABLE sources ADD COLUMN selector_missed_at BIGINT;
