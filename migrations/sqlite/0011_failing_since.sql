-- When a source's current run of failures began (Unix milliseconds); NULL while it succeeds.
-- `fetch` reports, and exits 3 for, sources failing for longer than `fetch.alert_after`.
ALTER TABLE sources ADD COLUMN failing_since INTEGER;
