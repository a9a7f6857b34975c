-- A tag's rows hold only what orders them and finds their article: no copy of its path. The
-- tag feeds read them in date order and join the article by (source, key), sorting the articles
-- of one date by path themselves. A cold run's batches enter this tree at places all over (a
-- common tag has an article on every date) and rewrite each page they touch: it took a third of
-- such a run's WAL with the path in every row.
DROP TRIGGER article_tags_insert;
DROP TRIGGER article_tags_update;
DROP TRIGGER article_tags_delete;
DROP TABLE article_tags;
CREATE TABLE article_tags (
    tag    TEXT NOT NULL,
    date   INTEGER NOT NULL,
    source TEXT NOT NULL,
    key    TEXT NOT NULL,
    PRIMARY KEY (tag, date DESC, source, key)
) WITHOUT ROWID;
INSERT OR IGNORE INTO article_tags (tag, date, source, key)
SELECT t.value, a.date, a.source, a.key FROM articles a, json_each(a.tags) t
WHERE a.tags IS NOT NULL;
CREATE TRIGGER article_tags_insert AFTER INSERT ON articles WHEN NEW.tags IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO article_tags (tag, date, source, key)
    SELECT value, NEW.date, NEW.source, NEW.key FROM json_each(NEW.tags);
END;
CREATE TRIGGER article_tags_update AFTER UPDATE OF source, key, tags, date ON articles
WHEN OLD.tags IS NOT NEW.tags OR OLD.date <> NEW.date
     OR OLD.source <> NEW.source OR OLD.key <> NEW.key
BEGIN
    DELETE FROM article_tags
    WHERE tag IN (SELECT value FROM json_each(OLD.tags)) AND date = OLD.date
      AND source = OLD.source AND key = OLD.key;
    INSERT OR IGNORE INTO article_tags (tag, date, source, key)
    SELECT value, NEW.date, NEW.source, NEW.key FROM json_each(COALESCE(NEW.tags, '[]'));
END;
CREATE TRIGGER article_tags_delete AFTER DELETE ON articles
BEGIN
    DELETE FROM article_tags
    WHERE tag IN (SELECT value FROM json_each(OLD.tags)) AND date = OLD.date
      AND source = OLD.source AND key = OLD.key;
END;
