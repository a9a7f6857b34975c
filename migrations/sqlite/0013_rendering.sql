-- Split roles: workers write article records, the publisher writes their files. `revision`
-- counts the record's changes; `rendered` is the revision its file shows (NULL: no file yet).
-- A record whose two differ waits for the publisher. Rows from before were written with
-- their files, so they start rendered; new rows always name both.
ALTER TABLE articles ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE articles ADD COLUMN rendered INTEGER DEFAULT 1;
CREATE INDEX articles_unrendered ON articles (path) WHERE rendered IS NULL OR rendered <> revision;

-- Sources are claimed a host at a time (see `Store::claim_due`): a host's sources go to one
-- worker while it holds any of them, so that worker's per-host limit holds for the host.
ALTER TABLE sources ADD COLUMN host TEXT;
CREATE INDEX sources_by_host ON sources (host) WHERE lease_owner IS NOT NULL;

-- Enrichment jobs are leased like sources, so that LLM work spreads over the workers and an
-- article is asked about by one worker at a time.
ALTER TABLE enrichments ADD COLUMN lease_owner TEXT;
ALTER TABLE enrichments ADD COLUMN lease_until INTEGER;
