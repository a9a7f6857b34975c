-- Full-text search over every article: its title, description and sections, as the words the
-- application makes of them (`text::search`: lowercased words, and CJK text as characters and
-- pairs of characters, which no tokenizer of SQLite's splits), written in the transaction that
-- writes the article. `search_docs` gives each archive file the integer the index knows it by.
CREATE TABLE search_docs (
    id   INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE
);
-- Contentless (`content = ''`): the words are indexed, not stored a second time beside the
-- article; `contentless_delete` lets a row be replaced or deleted all the same. `detail = none`:
-- only which articles hold a word, no positions, since a query asks for all its words, never a
-- phrase. Stored words and positions made indexing a cold run's 50,000 articles cost as much as
-- the rest of the run.
CREATE VIRTUAL TABLE search USING fts5(
    tokens, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0', detail = none
);
CREATE TRIGGER search_docs_delete AFTER DELETE ON search_docs BEGIN
    DELETE FROM search WHERE rowid = old.id;
END;
-- An article that leaves (or moves to another file) takes its words along.
CREATE TRIGGER articles_leave_search_delete AFTER DELETE ON articles BEGIN
    DELETE FROM search_docs WHERE path = old.path;
END;
CREATE TRIGGER articles_leave_search_path AFTER UPDATE OF path ON articles
WHEN old.path <> new.path BEGIN
    DELETE FROM search_docs WHERE path = old.path;
END;
