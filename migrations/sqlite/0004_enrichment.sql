-- Per article: where its enrichment stands. `content_hash` is the article content it is for, so a
-- changed article is enriched again.
CREATE TABLE enrichments (
    source            TEXT NOT NULL,
    key               TEXT NOT NULL,
    content_hash      TEXT NOT NULL,
    status            TEXT NOT NULL,          -- pending, done, failed
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    last_error        TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE INDEX enrichments_due ON enrichments (status, next_attempt_at);

-- Answers by (content hash, provider, model, prompt version, languages): a re-run, a rebuild or a
-- re-fetch of the same content never pays for the same answer twice.
CREATE TABLE enrichment_cache (
    cache_key         TEXT PRIMARY KEY NOT NULL,
    answer            TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at        INTEGER NOT NULL
);

-- The article's own language, which its file does not name, for enrichment requests.
ALTER TABLE articles ADD COLUMN language TEXT;
