-- Full-text search over every article: its title, description and sections, as the words the
-- application makes of them (`text::search`: lowercased words, and CJK text as characters and
-- pairs of characters, which no tokenizer of SQLite's splits). One row per archive file, kept
-- in the transaction that writes the article; FTS5 indexes it through the triggers below.
CREATE TABLE search_docs (
    id     INTEGER PRIMARY KEY,
    path   TEXT NOT NULL UNIQUE,
    tokens TEXT NOT NULL
);
CREATE VIRTUAL TABLE search USING fts5(
    tokens, content = 'search_docs', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TRIGGER search_docs_insert AFTER INSERT ON search_docs BEGIN
    INSERT INTO search (rowid, tokens) VALUES (new.id, new.tokens);
END;
CREATE TRIGGER search_docs_delete AFTER DELETE ON search_docs BEGIN
    INSERT INTO search (search, rowid, tokens) VALUES ('delete', old.id, old.tokens);
END;
CREATE TRIGGER search_docs_update AFTER UPDATE OF tokens ON search_docs BEGIN
    INSERT INTO search (search, rowid, tokens) VALUES ('delete', old.id, old.tokens);
    INSERT INTO search (rowid, tokens) VALUES (new.id, new.tokens);
END;
-- An article that leaves (or moves to another file) takes its words along.
CREATE TRIGGER articles_leave_search_delete AFTER DELETE ON articles BEGIN
    DELETE FROM search_docs WHERE path = old.path;
END;
CREATE TRIGGER articles_leave_search_path AFTER UPDATE OF path ON articles
WHEN old.path <> new.path BEGIN
    DELETE FROM search_docs WHERE path = old.path;
END;
