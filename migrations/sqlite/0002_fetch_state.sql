-- What scheduling and conditional GET need per source.
ALTER TABLE sources ADD COLUMN http_status INTEGER;
ALTER TABLE sources ADD COLUMN next_due_at INTEGER;
-- Hash of the last body that was processed, so an identical body is not parsed again.
ALTER TABLE sources ADD COLUMN body_hash TEXT;
-- Where the feed moved to by permanent redirects (301, 308).
ALTER TABLE sources ADD COLUMN moved_to TEXT;
-- Set when the source is disabled (410 Gone); cleared by a successful fetch.
ALTER TABLE sources ADD COLUMN disabled_reason TEXT;
