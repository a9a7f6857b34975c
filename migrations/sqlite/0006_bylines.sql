-- The entry's own authors and attached files, as JSON lists, for the feeds and pages: the
-- archive file keeps only the source's author key. NULL when the entry has none.
ALTER TABLE articles ADD COLUMN bylines TEXT;
ALTER TABLE articles ADD COLUMN enclosures TEXT;
