-- How many sections an article's file has, as SQLite's state keeps it beside its packed
-- sections, so that both answer the same queries; PostgreSQL keeps the sections as JSON text.
ALTER TABLE articles ADD COLUMN section_count INTEGER;
UPDATE articles SET section_count = json_array_length(sections::json) WHERE sections IS NOT NULL;
