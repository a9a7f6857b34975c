-- The whole article, so that every output is built from state and the archive can be rendered
-- again (or rebuilt into state) without fetching anything.
ALTER TABLE articles ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE articles ADD COLUMN author TEXT NOT NULL DEFAULT '';
-- JSON list in file order; `article_tags` indexes the same tags for the tag feeds.
ALTER TABLE articles ADD COLUMN tags TEXT;
-- JSON list of the file's sections in file order (translations, then the original language's).
-- NULL only on rows written before this migration, until they are read back from their files.
ALTER TABLE articles ADD COLUMN sections TEXT;
-- JSON section: the entry's own text as normalized, before any LLM section replaced it. NULL
-- when it is the file's one section (stored once, in `sections`), or, beside LLM sections,
-- unknown (a record rebuilt from a bilingual file).
ALTER TABLE articles ADD COLUMN original TEXT;
-- The model and prompt version that wrote the LLM sections; NULL when there are none, or when
-- they were recovered from a file.
ALTER TABLE articles ADD COLUMN enriched_by TEXT;
-- The dates the feed gave, Unix milliseconds.
ALTER TABLE articles ADD COLUMN published INTEGER;
ALTER TABLE articles ADD COLUMN updated INTEGER;
-- JSON: the entry as fetched (before rewrites) and what its feed gave it, to render it again.
ALTER TABLE articles ADD COLUMN entry TEXT;
-- Of every setting that shaped the file; NULL when unknown (rebuilt, or written before this).
ALTER TABLE articles ADD COLUMN fingerprint TEXT;
-- The entry's own guid/id; NULL when it has none (its key is then its link, or a hash).
ALTER TABLE articles ADD COLUMN guid TEXT;
-- 1 when the record was recovered from the archive: its key is the link until a fetch sees the
-- entry again and adopts it.
ALTER TABLE articles ADD COLUMN rebuilt INTEGER NOT NULL DEFAULT 0;

-- Feeds order by date, then path: both are recovered from the archive, so a rebuilt state
-- orders the feeds as before.
DROP INDEX articles_by_date;
CREATE INDEX articles_by_date ON articles (date DESC, path);
CREATE INDEX articles_by_source_date ON articles (source, date DESC, path);
CREATE INDEX articles_by_link ON articles (source, link);
-- Rows written before this migration, completed from their files once; empty afterwards, so
-- looking for them costs nothing on every run.
CREATE INDEX articles_incomplete ON articles (path) WHERE sections IS NULL;

CREATE TABLE article_tags (
    source TEXT NOT NULL,
    key    TEXT NOT NULL,
    tag    TEXT NOT NULL,
    date   INTEGER NOT NULL,
    path   TEXT NOT NULL,
    PRIMARY KEY (source, key, tag)
);
CREATE INDEX article_tags_by_tag ON article_tags (tag, date DESC, path);

-- The fingerprint every record of the source was last brought to, so a run checks one value
-- instead of the source's every record.
ALTER TABLE sources ADD COLUMN fingerprint TEXT;

-- Set by `gazette remove`: the source's articles leave every feed, and its files are known.
ALTER TABLE sources ADD COLUMN removed_at INTEGER;

-- The extraction rules a cached page was extracted with: other rules extract again.
ALTER TABLE pages ADD COLUMN rules TEXT;
CREATE INDEX pages_by_age ON pages (fetched_at);
CREATE INDEX enrichment_cache_by_age ON enrichment_cache (created_at);

-- Counts commits that change what a feed or page shows, so that rendered bytes are cached until
-- the next such commit, by this process or another.
CREATE TABLE state_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO state_version (id, n) VALUES (1, 0);
CREATE TRIGGER articles_changed_insert AFTER INSERT ON articles
BEGIN UPDATE state_version SET n = n + 1; END;
CREATE TRIGGER articles_changed_update AFTER UPDATE ON articles
BEGIN UPDATE state_version SET n = n + 1; END;
CREATE TRIGGER articles_changed_delete AFTER DELETE ON articles
BEGIN UPDATE state_version SET n = n + 1; END;
CREATE TRIGGER sources_changed_update AFTER UPDATE OF feed_id, feed_title, feed_link, removed_at ON sources
BEGIN UPDATE state_version SET n = n + 1; END;
CREATE TRIGGER sources_changed_insert AFTER INSERT ON sources
BEGIN UPDATE state_version SET n = n + 1; END;
CREATE TRIGGER sources_changed_delete AFTER DELETE ON sources
BEGIN UPDATE state_version SET n = n + 1; END;

-- Tokens spent, kept as running totals so that `/metrics` reads one row however many articles
-- were enriched.
CREATE TABLE enrichment_tokens (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL
);
INSERT INTO enrichment_tokens (id, prompt_tokens, completion_tokens)
SELECT 1, COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) FROM enrichments;
CREATE TRIGGER enrichment_tokens_insert AFTER INSERT ON enrichments
BEGIN
    UPDATE enrichment_tokens SET prompt_tokens = prompt_tokens + NEW.prompt_tokens,
                                 completion_tokens = completion_tokens + NEW.completion_tokens;
END;
CREATE TRIGGER enrichment_tokens_update AFTER UPDATE OF prompt_tokens, completion_tokens ON enrichments
BEGIN
    UPDATE enrichment_tokens
    SET prompt_tokens = prompt_tokens + NEW.prompt_tokens - OLD.prompt_tokens,
        completion_tokens = completion_tokens + NEW.completion_tokens - OLD.completion_tokens;
END;
CREATE TRIGGER enrichment_tokens_delete AFTER DELETE ON enrichments
BEGIN
    UPDATE enrichment_tokens SET prompt_tokens = prompt_tokens - OLD.prompt_tokens,
                                 completion_tokens = completion_tokens - OLD.completion_tokens;
END;
