-- Split roles: workers write article records, the publisher writes their files. `revision`
-- counts a record's changes.
ALTER TABLE articles ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
-- The records whose file does not show their latest revision: what the publisher has to
-- write. A worker adds a record's path in the transaction that writes the record; the
-- publisher removes it once the file is durable, unless the record changed meanwhile. A queue
-- of its own, not a column of the article, so that marking a file written updates no article
-- row (and none of its indexes). No foreign key: checking one per queued record cost a cold
-- run a tenth of its database time; the publisher joins the articles and clears what no
-- article holds any more.
CREATE TABLE render_queue (
    path TEXT PRIMARY KEY NOT NULL
);

-- Sources are claimed a host at a time (see `Store::claim_due`): a host's sources go to one
-- worker while it holds any of them, so that worker's per-host limit holds for the host.
ALTER TABLE sources ADD COLUMN host TEXT;
CREATE INDEX sources_by_host ON sources (host) WHERE lease_owner IS NOT NULL;

-- Enrichment jobs are leased like sources, so that LLM work spreads over the workers and an
-- article is asked about by one worker at a time.
ALTER TABLE enrichments ADD COLUMN lease_owner TEXT;
ALTER TABLE enrichments ADD COLUMN lease_until INTEGER;

-- Tokens spent per UTC day (days since 1970-01-01), for `[enrich]` budgets: a request's
-- largest possible cost is added before it starts, in the transaction that checks the budget,
-- and set right when it ends, so that workers sharing the state never pass the budget together.
CREATE TABLE token_spend (
    day    INTEGER PRIMARY KEY NOT NULL,
    tokens INTEGER NOT NULL
);

-- When a source's extraction selector last matched an article page, and last matched nothing
-- (the site changed its layout?): `status` says so when the miss is the newer.
ALTER TABLE sources ADD COLUMN selector_matched_at INTEGER;
ALTER TABLE sources ADD COLUMN selector_missed_at INTEGER;
