-- Full-text search over every article: its title, description and sections, as the words the
-- application makes of them (`text::search`: lowercased words, and CJK text as characters and
-- pairs of characters, which PostgreSQL's parsers do not split), indexed as a `tsvector` of the
-- `simple` configuration. One row per archive file, kept in the transaction that writes the
-- article.
CREATE TABLE search_docs (
    path   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    tokens TEXT NOT NULL,
    vector tsvector GENERATED ALWAYS AS (to_tsvector('simple', tokens)) STORED
);
CREATE INDEX search_docs_vector ON search_docs USING GIN (vector);

-- An article that leaves (or moves to another file) takes its words along.
CREATE FUNCTION articles_leave_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM search_docs WHERE path = OLD.path;
    RETURN NULL;
END $$;
CREATE TRIGGER articles_leave_search_delete AFTER DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION articles_leave_search();
CREATE TRIGGER articles_leave_search_path AFTER UPDATE OF path ON articles
    FOR EACH ROW WHEN (OLD.path <> NEW.path) EXECUTE FUNCTION articles_leave_search();
