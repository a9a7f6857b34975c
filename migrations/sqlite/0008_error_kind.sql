-- The kind of a source's last fetch failure (timeout, connect, http-503, ...), so that status
-- and the back-off rule can tell failures apart without reading the message.
ALTER TABLE sources ADD COLUMN last_error_kind TEXT;
