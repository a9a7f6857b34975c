-- A record's sections (and the entry's own text beside LLM sections) are stored packed from now
-- on, like the fetched entry (see `store::packed`), so SQL no longer reads inside them. What
-- queries asked of them, how many sections the file has, is a column of its own. Rows written
-- before keep their JSON text, which reads as it is.
ALTER TABLE articles ADD COLUMN section_count INTEGER;
UPDATE articles SET section_count = json_array_length(sections) WHERE sections IS NOT NULL;
