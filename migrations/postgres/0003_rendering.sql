-- Split roles: workers write article records, the publisher writes their files (SQLite's
-- 0013_rendering.sql). `revision` counts the record's changes; `rendered` is the revision its
-- file shows (NULL: no file yet).
ALTER TABLE articles ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE articles ADD COLUMN rendered BIGINT DEFAULT 1;
CREATE INDEX articles_unrendered ON articles (path) WHERE rendered IS NULL OR rendered <> revision;

-- Sources are claimed a host at a time (see `Store::claim_due`).
ALTER TABLE sources ADD COLUMN host TEXT COLLATE "C";
CREATE INDEX sources_by_host ON sources (host) WHERE lease_owner IS NOT NULL;

-- Enrichment jobs are leased like sources, so that LLM work spreads over the workers and an
-- article is asked about by one worker at a time.
ALTER TABLE enrichments ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE enrichments ADD COLUMN lease_until BIGINT;
