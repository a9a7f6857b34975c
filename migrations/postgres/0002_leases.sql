-- Scale-out: the publisher syncs the configured sources into state, and workers lease the due
-- ones (SQLite's 0012_leases.sql).

-- The source's settings as the publisher last synced them (JSON); NULL for a source state
-- remembers but the config no longer lists, which no worker claims.
ALTER TABLE sources ADD COLUMN config TEXT COLLATE "C";
-- Which worker holds the source, and until when (Unix milliseconds): a lease that ran out is
-- claimable again, so a worker that died costs at most one lease period.
ALTER TABLE sources ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE sources ADD COLUMN lease_until BIGINT;
CREATE INDEX sources_by_due ON sources (next_due_at) WHERE config IS NOT NULL;

-- Every process that works on this state, and its last sign of life.
CREATE TABLE workers (
    id           TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    role         TEXT COLLATE "C" NOT NULL,
    host         TEXT COLLATE "C" NOT NULL,
    pid          BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
