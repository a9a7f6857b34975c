-- What each feed file was last written from: a digest of its settings, its head and its
-- entries as state holds them. A run whose feeds would come out the same renders none of them.
CREATE TABLE published_feeds (
    path   TEXT PRIMARY KEY,
    digest TEXT NOT NULL
) WITHOUT ROWID;
