-- Scale-out: the publisher syncs the configured sources into state, and workers lease the due
-- ones. With one process (`--role all`) these stay empty or unused.

-- The source's settings as the publisher last synced them (JSON); NULL for a source state
-- remembers but the config no longer lists, which no worker claims.
ALTER TABLE sources ADD COLUMN config TEXT;
-- Which worker holds the source, and until when (Unix milliseconds): a lease that ran out is
-- claimable again, so a worker that died costs at most one lease period.
ALTER TABLE sources ADD COLUMN lease_owner TEXT;
ALTER TABLE sources ADD COLUMN lease_until INTEGER;
CREATE INDEX sources_by_due ON sources (next_due_at) WHERE config IS NOT NULL;

-- Every process that works on this state, and its last sign of life.
CREATE TABLE workers (
    id           TEXT PRIMARY KEY NOT NULL,
    role         TEXT NOT NULL,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
