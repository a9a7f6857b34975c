-- Article pages fetched for their full text, by URL, so each is fetched once.
CREATE TABLE pages (
    url        TEXT PRIMARY KEY NOT NULL,
    html       TEXT,              -- the extracted article HTML; NULL when the page had none
    canonical  TEXT,
    fetched_at INTEGER NOT NULL
);

-- The link that identifies an article across sources, for de-duplication.
ALTER TABLE articles ADD COLUMN canonical TEXT;
CREATE INDEX articles_by_canonical ON articles (canonical);

-- Entries that turned out to be another source's article: remembered so they cost nothing later.
CREATE TABLE aliases (
    source        TEXT NOT NULL,
    key           TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    target_source TEXT NOT NULL,
    target_key    TEXT NOT NULL,
    tags          TEXT NOT NULL DEFAULT '',   -- the duplicate's tags, kept on the target's file
    first_seen    INTEGER NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE INDEX aliases_by_target ON aliases (target_source, target_key);
