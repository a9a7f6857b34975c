-- A feed's history (RFC 5005), as `gazette backfill` walked it: each document from the
-- subscription document (position 0) back through `prev-archive` or `next` links. Validators
-- and the body hash make the next walk conditional, and `older` (the link followed from the
-- page) lets a page that answers 304 be passed without its body.
CREATE TABLE history_pages (
    source        TEXT NOT NULL,
    url           TEXT NOT NULL,
    position      INTEGER NOT NULL,
    etag          TEXT,
    last_modified TEXT,
    body_hash     TEXT,
    older         TEXT,
    entries       INTEGER NOT NULL,
    fetched_at    INTEGER NOT NULL,
    PRIMARY KEY (source, url)
);

-- How each source's last backfill ended: how many pages it walked, why it stopped, and
-- whether the feed says it is complete (it lists every entry there is).
CREATE TABLE backfills (
    source      TEXT PRIMARY KEY NOT NULL,
    finished_at INTEGER NOT NULL,
    pages       INTEGER NOT NULL,
    ended       TEXT NOT NULL,
    complete    INTEGER NOT NULL
);

-- The identity policy (`identity` in the config) the source's article keys were made under;
-- NULL for `auto`, the rule before there was a choice. When the config names another, the
-- keys are made again from the entries state keeps, so that no article is archived twice.
ALTER TABLE sources ADD COLUMN identity TEXT;
