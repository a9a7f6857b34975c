-- A feed's history (RFC 5005), as `gazette backfill` walked it: each document from the
-- subscription document (position 0) back through `prev-archive` or `next` links. Validators
-- and the body hash make the next walk conditional, and `older` (the link followed from the
-- page) lets a page that answers 304 be passed without its body.
CREATE TABLE history_pages (
    source        TEXT COLLATE "C" NOT NULL,
    url           TEXT COLLATE "C" NOT NULL,
    position      BIGINT NOT NULL,
    etag          TEXT COLLATE "C",
    last_modified TEXT COLLATE "C",
    body_hash     TEXT COLLATE "C",
    older         TEXT COLLATE "C",
    entries       BIGINT NOT NULL,
    fetched_at    BIGINT NOT NULL,
    PRIMARY KEY (source, url)
);

-- How each source's last backfill ended: how many pages it walked, why it stopped, and
-- whether the feed says it is complete (it lists every entry there is; 0/1, bound as an
-- integer).
CREATE TABLE backfills (
    source      TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    finished_at BIGINT NOT NULL,
    pages       BIGINT NOT NULL,
    ended       TEXT COLLATE "C" NOT NULL,
    complete    BIGINT NOT NULL
);

-- The identity policy (`identity` in the config) the source's article keys were made under;
-- NULL for `auto`, the rule before there was a choice. When the config names another, the
-- keys are made again from the entries state keeps, so that no article is archived twice.
ALTER TABLE sources ADD COLUMN identity TEXT COLLATE "C";
