-- Facts about the state database itself. `archive_started`: this database has seen its archive
-- empty, so archive files it does not know are a killed run's, not the sign of a lost state.
CREATE TABLE state_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
