-- The whole article, so that every output is built from state and the archive can be rendered
-- again (or rebuilt into state) without fetching anything.
--
-- The table is made anew rather than altered: SQLite reads a row's columns in order, and the
-- large ones (the sections, the entry as fetched) must come last, or every lookup of a small
-- column written after them would read through their overflow pages.
CREATE TABLE articles_new (
    source       TEXT NOT NULL,
    key          TEXT NOT NULL,
    path         TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL,        -- of what the file was made from; '' when unknown
    atom_id      TEXT NOT NULL,
    -- The entry's own guid/id; NULL when it has none (its key is then its link, or a hash).
    guid         TEXT,
    -- 1 when the record was recovered from the archive: it is known by its file until a fetch
    -- sees the entry again and adopts it.
    rebuilt      INTEGER NOT NULL DEFAULT 0,
    -- Of every setting that shaped the file; NULL when unknown (rebuilt, or written before this).
    fingerprint  TEXT,
    title        TEXT NOT NULL,
    link         TEXT NOT NULL,
    date         INTEGER NOT NULL,
    first_seen   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    -- The dates the feed gave, Unix milliseconds.
    published    INTEGER,
    updated      INTEGER,
    language     TEXT,
    canonical    TEXT,
    description  TEXT NOT NULL DEFAULT '',
    author       TEXT NOT NULL DEFAULT '',
    -- JSON list in file order; `article_tags` indexes the same tags for the tag feeds.
    tags         TEXT,
    bylines      TEXT,
    enclosures   TEXT,
    -- The model and prompt version that wrote the LLM sections; NULL when there are none, or
    -- when they were recovered from a file.
    enriched_by  TEXT,
    -- JSON list of the file's sections in file order (translations, then the original
    -- language's). NULL only on rows written before this migration, until they are read back
    -- from their files.
    sections     TEXT,
    -- JSON section: the entry's own text as normalized, before any LLM section replaced it.
    -- NULL when it is the file's one section (stored once, in `sections`), or, beside LLM
    -- sections, unknown (a record rebuilt from a bilingual file).
    original     TEXT,
    -- JSON: the entry as fetched (before rewrites) and what its feed gave it, to render it again.
    entry        TEXT,
    PRIMARY KEY (source, key)
);
INSERT INTO articles_new (source, key, path, content_hash, atom_id, title, link, date, first_seen,
                          updated_at, language, canonical, bylines, enclosures)
SELECT source, key, path, content_hash, atom_id, title, link, date, first_seen, updated_at,
       language, canonical, bylines, enclosures
FROM articles;
DROP TABLE articles;
ALTER TABLE articles_new RENAME TO articles;
CREATE INDEX articles_by_canonical ON articles (canonical);

-- Feeds order by date, then path: both are recovered from the archive, so a rebuilt state
-- orders the feeds as before.
CREATE INDEX articles_by_date ON articles (date DESC, path);
CREATE INDEX articles_by_source_date ON articles (source, date DESC, path);
-- Records waiting for a fetch to adopt them, by link: empty but after a rebuild, so it costs
-- an insert nothing.
CREATE INDEX articles_rebuilt_by_link ON articles (source, link) WHERE rebuilt = 1;
-- Rows written before this migration, completed from their files once; empty afterwards, so
-- looking for them costs nothing on every run.
CREATE INDEX articles_incomplete ON articles (path) WHERE sections IS NULL;

-- One row per tag of an article, in the order the tag feeds read them: one B-tree, and the
-- rows of a tag in date order, so a tag feed reads only the rows it shows.
CREATE TABLE article_tags (
    tag    TEXT NOT NULL,
    date   INTEGER NOT NULL,
    path   TEXT NOT NULL,
    source TEXT NOT NULL,
    key    TEXT NOT NULL,
    PRIMARY KEY (tag, date DESC, path)
) WITHOUT ROWID;
-- Kept in step with `articles.tags` by the database itself: no extra statement per article.
CREATE TRIGGER article_tags_insert AFTER INSERT ON articles WHEN NEW.tags IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO article_tags (tag, date, path, source, key)
    SELECT value, NEW.date, NEW.path, NEW.source, NEW.key FROM json_each(NEW.tags);
END;
CREATE TRIGGER article_tags_update AFTER UPDATE OF source, key, tags, date, path ON articles
WHEN OLD.tags IS NOT NEW.tags OR OLD.date <> NEW.date OR OLD.path <> NEW.path
     OR OLD.source <> NEW.source OR OLD.key <> NEW.key
BEGIN
    DELETE FROM article_tags
    WHERE tag IN (SELECT value FROM json_each(OLD.tags)) AND date = OLD.date AND path = OLD.path;
    INSERT OR IGNORE INTO article_tags (tag, date, path, source, key)
    SELECT value, NEW.date, NEW.path, NEW.source, NEW.key FROM json_each(COALESCE(NEW.tags, '[]'));
END;
CREATE TRIGGER article_tags_delete AFTER DELETE ON articles
BEGIN
    DELETE FROM article_tags
    WHERE tag IN (SELECT value FROM json_each(OLD.tags)) AND date = OLD.date AND path = OLD.path;
END;

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
