-- The PostgreSQL schema of Gazette's state: the same tables, columns (in the same order), keys,
-- indexes, defaults, seed rows and trigger effects as the SQLite schema the migrations
-- 0001_init.sql … 0011_failing_since.sql end with. It is that end state, made at once, not a
-- replay of each SQLite migration.
--
-- Where PostgreSQL differs:
-- * Every integer is BIGINT: Gazette binds i64 everywhere, and binds flags (`rebuilt`) as 0/1,
--   so no column is BOOLEAN. Times are Unix milliseconds, as in SQLite.
-- * Every TEXT column is COLLATE "C", so that comparisons and ORDER BY (paths, keys, ids, tags,
--   sources, URLs) go byte by byte, as SQLite's BINARY collation does, whatever the database's
--   default collation.
-- * JSON values (tags, bylines, enclosures, sections, original, entry) stay TEXT holding JSON
--   text, as Gazette writes it; the triggers read them with jsonb_array_elements_text(col::jsonb)
--   where SQLite's read them with json_each(col).
-- * The large columns of an article (sections, original, entry) are compressed with lz4 when
--   PostgreSQL moves them out of line: its default, pglz, took a third of a cold run's inserts.
-- * SQLite's `WITHOUT ROWID` has no equivalent: those tables simply have their primary key.
-- * Triggers run PL/pgSQL functions (defined below, each before its triggers).
--
-- Conflict targets: every `ON CONFLICT (…)` Gazette writes names a primary key here: sources
-- (id), articles (source, key), enrichments (source, key), published_feeds (path), state_meta
-- (key); the tag index's `INSERT OR IGNORE` is `ON CONFLICT (tag, date, path) DO NOTHING` on
-- article_tags' primary key; SQLite's `INSERT OR REPLACE` into pages, aliases and
-- enrichment_cache becomes `ON CONFLICT` on their primary keys (url; source, key; cache_key)
-- `DO UPDATE` of every other column (none of these tables has a trigger or another unique key).

-- SQLite's JSON functions that Gazette's queries use, for the JSON text it stores, so that
-- the same query text runs on both: `json_each(list)` yields a list's elements as rows with a
-- `value` column, `json_array_length(list)` counts them. PostgreSQL's own functions of these
-- names take `json`; these take `text`, which is what a bound string or a TEXT column is.
--
-- `json_each` is PL/pgSQL, with ROWS 10, so that the planner is not told the default of a
-- hundred rows (or, inlined, nothing at all): a list of a feed's keys or links is looked up
-- through the index by each element, not by scanning every article to hash-join against it.
CREATE FUNCTION json_each(list TEXT) RETURNS TABLE (value TEXT)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE ROWS 10
AS $$ BEGIN RETURN QUERY SELECT jsonb_array_elements_text(list::jsonb); END $$;

CREATE FUNCTION json_array_length(list TEXT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT jsonb_array_length(list::jsonb)::BIGINT $$;

-- One row per configured source: what the last fetch saw, and the validators later fetches send.
CREATE TABLE sources (
    id                   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    url                  TEXT COLLATE "C" NOT NULL,
    feed_id              TEXT COLLATE "C",
    feed_title           TEXT COLLATE "C",
    feed_link            TEXT COLLATE "C",
    last_fetch_at        BIGINT,
    last_status          TEXT COLLATE "C",
    last_error           TEXT COLLATE "C",
    etag                 TEXT COLLATE "C",
    last_modified        TEXT COLLATE "C",
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    http_status          BIGINT,
    next_due_at          BIGINT,
    -- Hash of the last body that was processed, so an identical body is not parsed again.
    body_hash            TEXT COLLATE "C",
    -- Where the feed moved to by permanent redirects (301, 308).
    moved_to             TEXT COLLATE "C",
    -- Set when the source is disabled (410 Gone); cleared by a successful fetch.
    disabled_reason      TEXT COLLATE "C",
    -- The delay the feed document last asked for, in seconds; 0 when it asked for none.
    feed_delay_secs      BIGINT,
    -- The fingerprint every record of the source was last brought to.
    fingerprint          TEXT COLLATE "C",
    -- Set by `gazette remove`: the source's articles leave every feed, and its files are known.
    removed_at           BIGINT,
    -- The kind of the last fetch failure (timeout, connect, http-503, ...).
    last_error_kind      TEXT COLLATE "C",
    -- When the current run of failures began; NULL while the source succeeds.
    failing_since        BIGINT
);

-- The whole article, so that every output is built from state. The large columns (sections,
-- original, entry) come last, as in SQLite.
CREATE TABLE articles (
    source       TEXT COLLATE "C" NOT NULL,
    key          TEXT COLLATE "C" NOT NULL,
    path         TEXT COLLATE "C" NOT NULL UNIQUE,
    content_hash TEXT COLLATE "C" NOT NULL,   -- of what the file was made from; '' when unknown
    atom_id      TEXT COLLATE "C" NOT NULL,
    guid         TEXT COLLATE "C",            -- the entry's own guid/id; NULL when it has none
    -- 1 when the record was recovered from the archive, until a fetch adopts it (0/1, not
    -- BOOLEAN: Gazette binds it as an integer).
    rebuilt      BIGINT NOT NULL DEFAULT 0,
    fingerprint  TEXT COLLATE "C",
    title        TEXT COLLATE "C" NOT NULL,
    link         TEXT COLLATE "C" NOT NULL,
    date         BIGINT NOT NULL,
    first_seen   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    published    BIGINT,
    updated      BIGINT,
    language     TEXT COLLATE "C",
    canonical    TEXT COLLATE "C",
    description  TEXT COLLATE "C" NOT NULL DEFAULT '',
    author       TEXT COLLATE "C" NOT NULL DEFAULT '',
    tags         TEXT COLLATE "C",            -- JSON list in file order, indexed by article_tags
    bylines      TEXT COLLATE "C",            -- JSON list; NULL when none
    enclosures   TEXT COLLATE "C",            -- JSON list; NULL when none
    enriched_by  TEXT COLLATE "C",
    sections     TEXT COMPRESSION lz4 COLLATE "C",            -- JSON list of the file's sections
    original     TEXT COMPRESSION lz4 COLLATE "C",            -- JSON section: the entry's own text
    entry        TEXT COMPRESSION lz4 COLLATE "C",            -- JSON: the entry as fetched
    PRIMARY KEY (source, key)
);
CREATE INDEX articles_by_canonical ON articles (canonical);
CREATE INDEX articles_by_date ON articles (date DESC, path);
CREATE INDEX articles_by_source_date ON articles (source, date DESC, path);
CREATE INDEX articles_rebuilt_by_link ON articles (source, link) WHERE rebuilt = 1;
CREATE INDEX articles_incomplete ON articles (path) WHERE sections IS NULL;

-- One row per tag of an article, for the tag feeds. SQLite's key is (tag, date DESC, path) in a
-- WITHOUT ROWID table; a PostgreSQL primary key cannot be descending, so it is (tag, date,
-- path): a tag feed (ORDER BY date DESC, path) reads it backwards, and only rows of one date
-- are sorted by path.
CREATE TABLE article_tags (
    tag    TEXT COLLATE "C" NOT NULL,
    date   BIGINT NOT NULL,
    path   TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    key    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tag, date, path)
);

-- Per article: where its enrichment stands.
CREATE TABLE enrichments (
    source            TEXT COLLATE "C" NOT NULL,
    key               TEXT COLLATE "C" NOT NULL,
    content_hash      TEXT COLLATE "C" NOT NULL,
    status            TEXT COLLATE "C" NOT NULL,   -- pending, done, failed
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    last_error        TEXT COLLATE "C",
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE INDEX enrichments_due ON enrichments (status, next_attempt_at);

-- Answers by (content hash, provider, model, prompt version, languages).
CREATE TABLE enrichment_cache (
    cache_key         TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    answer            TEXT COLLATE "C" NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX enrichment_cache_by_age ON enrichment_cache (created_at);

-- Article pages fetched for their full text, by URL.
CREATE TABLE pages (
    url        TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    html       TEXT COLLATE "C",   -- the extracted article HTML; NULL when the page had none
    canonical  TEXT COLLATE "C",
    fetched_at BIGINT NOT NULL,
    rules      TEXT COLLATE "C"    -- the extraction rules the page was extracted with
);
CREATE INDEX pages_by_age ON pages (fetched_at);

-- Entries that turned out to be another source's article.
CREATE TABLE aliases (
    source        TEXT COLLATE "C" NOT NULL,
    key           TEXT COLLATE "C" NOT NULL,
    content_hash  TEXT COLLATE "C" NOT NULL,
    target_source TEXT COLLATE "C" NOT NULL,
    target_key    TEXT COLLATE "C" NOT NULL,
    tags          TEXT COLLATE "C" NOT NULL DEFAULT '',   -- the duplicate's tags
    first_seen    BIGINT NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE INDEX aliases_by_target ON aliases (target_source, target_key);

-- Counts commits that change what a feed or page shows, so that rendered bytes are cached until
-- the next such commit, by this process or another.
CREATE TABLE state_version (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO state_version (id, n) VALUES (1, 0);

-- Tokens spent, kept as running totals so that `/metrics` reads one row.
CREATE TABLE enrichment_tokens (
    id                BIGINT PRIMARY KEY CHECK (id = 1),
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL
);
INSERT INTO enrichment_tokens (id, prompt_tokens, completion_tokens) VALUES (1, 0, 0);

-- What each feed file was last written from.
CREATE TABLE published_feeds (
    path   TEXT COLLATE "C" PRIMARY KEY,
    digest TEXT COLLATE "C" NOT NULL
);

-- Facts about the state database itself (`archive_started`). No row to begin with.
CREATE TABLE state_meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);

-- article_tags is kept in step with articles.tags by the database itself, row by row, with the
-- conditions of SQLite's triggers. JSON nulls in a list are skipped, as SQLite's
-- `INSERT OR IGNORE` skips the NOT NULL violation they would be.
CREATE FUNCTION article_tags_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO article_tags (tag, date, path, source, key)
    SELECT t.tag, NEW.date, NEW.path, NEW.source, NEW.key
    FROM jsonb_array_elements_text(NEW.tags::jsonb) AS t (tag)
    WHERE t.tag IS NOT NULL
    ON CONFLICT (tag, date, path) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE FUNCTION article_tags_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM article_tags
    WHERE tag IN (SELECT jsonb_array_elements_text(OLD.tags::jsonb))
      AND date = OLD.date AND path = OLD.path;
    INSERT INTO article_tags (tag, date, path, source, key)
    SELECT t.tag, NEW.date, NEW.path, NEW.source, NEW.key
    FROM jsonb_array_elements_text(COALESCE(NEW.tags, '[]')::jsonb) AS t (tag)
    WHERE t.tag IS NOT NULL
    ON CONFLICT (tag, date, path) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE FUNCTION article_tags_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM article_tags
    WHERE tag IN (SELECT jsonb_array_elements_text(OLD.tags::jsonb))
      AND date = OLD.date AND path = OLD.path;
    RETURN NULL;
END
$$;

CREATE TRIGGER article_tags_insert AFTER INSERT ON articles
    FOR EACH ROW WHEN (NEW.tags IS NOT NULL)
    EXECUTE FUNCTION article_tags_insert();
CREATE TRIGGER article_tags_update AFTER UPDATE OF source, key, tags, date, path ON articles
    FOR EACH ROW WHEN (OLD.tags IS DISTINCT FROM NEW.tags OR OLD.date <> NEW.date
                       OR OLD.path <> NEW.path OR OLD.source <> NEW.source OR OLD.key <> NEW.key)
    EXECUTE FUNCTION article_tags_update();
CREATE TRIGGER article_tags_delete AFTER DELETE ON articles
    FOR EACH ROW
    EXECUTE FUNCTION article_tags_delete();

-- state_version is bumped once per statement rather than once per row (SQLite's triggers are
-- per row): a reader only compares the number, and a statement writing many articles then
-- updates the one row once instead of making a new version of it per article. A statement
-- that changes no row may bump it too; that only costs a needless re-render, never a stale one.
-- (`INSERT … ON CONFLICT DO UPDATE` fires both the INSERT and the UPDATE statement triggers.)
CREATE FUNCTION state_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE state_version SET n = n + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER articles_changed_insert AFTER INSERT ON articles
    FOR EACH STATEMENT EXECUTE FUNCTION state_version_bump();
CREATE TRIGGER articles_changed_update AFTER UPDATE ON articles
    FOR EACH STATEMENT EXECUTE FUNCTION state_version_bump();
CREATE TRIGGER articles_changed_delete AFTER DELETE ON articles
    FOR EACH STATEMENT EXECUTE FUNCTION state_version_bump();
CREATE TRIGGER sources_changed_update AFTER UPDATE OF feed_id, feed_title, feed_link, removed_at ON sources
    FOR EACH STATEMENT EXECUTE FUNCTION state_version_bump();
CREATE TRIGGER sources_changed_insert AFTER INSERT ON sources
    FOR EACH STATEMENT EXECUTE FUNCTION state_version_bump();
CREATE TRIGGER sources_changed_delete AFTER DELETE ON sources
    FOR EACH STATEMENT EXECUTE FUNCTION state_version_bump();

-- enrichment_tokens keeps the running totals of enrichments' tokens. The triggers are per
-- statement, over the statement's transition tables, so that queueing or purging many articles
-- updates the totals row once; the totals come out as SQLite's per-row triggers leave them.
-- PostgreSQL allows no column list (SQLite: UPDATE OF prompt_tokens, completion_tokens) on a
-- trigger with transition tables, so the UPDATE one runs on every UPDATE statement and writes
-- only when the totals moved.
CREATE FUNCTION enrichment_tokens_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE enrichment_tokens t
    SET prompt_tokens = t.prompt_tokens + d.prompt_tokens,
        completion_tokens = t.completion_tokens + d.completion_tokens
    FROM (SELECT COALESCE(SUM(prompt_tokens), 0)::bigint AS prompt_tokens,
                 COALESCE(SUM(completion_tokens), 0)::bigint AS completion_tokens
          FROM new_rows) d
    WHERE d.prompt_tokens <> 0 OR d.completion_tokens <> 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION enrichment_tokens_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE enrichment_tokens t
    SET prompt_tokens = t.prompt_tokens + d.prompt_tokens,
        completion_tokens = t.completion_tokens + d.completion_tokens
    FROM (SELECT (COALESCE((SELECT SUM(prompt_tokens) FROM new_rows), 0)
                  - COALESCE((SELECT SUM(prompt_tokens) FROM old_rows), 0))::bigint AS prompt_tokens,
                 (COALESCE((SELECT SUM(completion_tokens) FROM new_rows), 0)
                  - COALESCE((SELECT SUM(completion_tokens) FROM old_rows), 0))::bigint AS completion_tokens) d
    WHERE d.prompt_tokens <> 0 OR d.completion_tokens <> 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION enrichment_tokens_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE enrichment_tokens t
    SET prompt_tokens = t.prompt_tokens - d.prompt_tokens,
        completion_tokens = t.completion_tokens - d.completion_tokens
    FROM (SELECT COALESCE(SUM(prompt_tokens), 0)::bigint AS prompt_tokens,
                 COALESCE(SUM(completion_tokens), 0)::bigint AS completion_tokens
          FROM old_rows) d
    WHERE d.prompt_tokens <> 0 OR d.completion_tokens <> 0;
    RETURN NULL;
END
$$;

CREATE TRIGGER enrichment_tokens_insert AFTER INSERT ON enrichments
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enrichment_tokens_insert();
CREATE TRIGGER enrichment_tokens_update AFTER UPDATE ON enrichments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enrichment_tokens_update();
CREATE TRIGGER enrichment_tokens_delete AFTER DELETE ON enrichments
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enrichment_tokens_delete();
