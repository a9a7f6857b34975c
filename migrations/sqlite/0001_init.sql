-- One row per configured source: what the last fetch saw, and the validators later fetches send.
CREATE TABLE sources (
    id                   TEXT PRIMARY KEY NOT NULL,
    url                  TEXT NOT NULL,
    feed_id              TEXT,
    feed_title           TEXT,
    feed_link            TEXT,
    last_fetch_at        INTEGER,
    last_status          TEXT,
    last_error           TEXT,
    etag                 TEXT,
    last_modified        TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);

-- One row per archived article. Dates are Unix milliseconds (UTC), so they sort as numbers.
CREATE TABLE articles (
    source       TEXT NOT NULL,
    key          TEXT NOT NULL,
    path         TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL,
    atom_id      TEXT NOT NULL,
    title        TEXT NOT NULL,
    link         TEXT NOT NULL,
    date         INTEGER NOT NULL,
    first_seen   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (source, key)
);

-- The merged feed takes the newest N by date without scanning the table.
CREATE INDEX articles_by_date ON articles (date DESC, updated_at DESC);
