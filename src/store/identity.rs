//! Article keys made again when a source's identity policy changes (`identity` in the config):
//! each record's key from the entry it keeps, so that the next fetch finds the articles it
//! archived before under the new keys instead of archiving them twice.

use std::collections::HashSet;

use sqlx::AnyConnection;

use super::Store;
use super::packed::MaybePacked;
use crate::error::Result;

/// A prefix no key starts with (a control character; PostgreSQL's text takes any but NUL),
/// for the moment between a key's old and new value: keys that trade places (A becomes B while
/// B becomes C) never clash on the way.
const MOVING: &str = "\u{1f}rekey:";

impl Store {
    /// Every article of `source`: its key and the entry it was made from, when state has it.
    pub async fn keyed_entries(
        conn: &mut AnyConnection,
        source: &str,
    ) -> Result<Vec<(String, Option<String>)>> {
        let rows = sqlx::query_as::<_, (String, Option<MaybePacked>)>(
            "SELECT key, entry FROM articles WHERE source = $1 ORDER BY first_seen, key",
        )
        .bind(source)
        .fetch_all(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(key, entry)| (key, entry.map(|e| e.0)))
            .collect())
    }

    /// Gives `source`'s articles the keys of `moves` (old key, new key), and every row that
    /// names them (pending enrichments, other sources' duplicates and this source's own)
    /// with them. A move onto a key another article keeps, or that an earlier move took, is
    /// left out; returns how many moved.
    pub async fn rekey(
        conn: &mut AnyConnection,
        source: &str,
        moves: &[(String, String)],
    ) -> Result<usize> {
        let all: HashSet<String> = Self::keyed_entries(conn, source)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let mut kept: Vec<(&str, &str)> = moves
            .iter()
            .filter(|(old, new)| old != new && all.contains(old))
            .map(|(old, new)| (old.as_str(), new.as_str()))
            .collect();
        // A key that stays taken (its move left out) may be another move's target: drop moves
        // until none lands on a key that stays or that an earlier move took.
        loop {
            let moving: HashSet<&str> = kept.iter().map(|(old, _)| *old).collect();
            let mut taken: HashSet<&str> = all
                .iter()
                .map(String::as_str)
                .filter(|k| !moving.contains(k))
                .collect();
            let before = kept.len();
            kept.retain(|(_, new)| taken.insert(new));
            if kept.len() == before {
                break;
            }
        }
        let statements = [
            "UPDATE articles SET key = $3 WHERE source = $1 AND key = $2",
            "UPDATE enrichments SET key = $3 WHERE source = $1 AND key = $2",
            "UPDATE aliases SET key = $3 WHERE source = $1 AND key = $2",
            "UPDATE aliases SET target_key = $3 WHERE target_source = $1 AND target_key = $2",
        ];
        for (from, to) in [(0, 1), (1, 2)] {
            for (old, new) in &kept {
                let keys = [
                    (*old).to_owned(),
                    format!("{MOVING}{new}"),
                    (*new).to_owned(),
                ];
                for statement in statements {
                    sqlx::query(statement)
                        .bind(source)
                        .bind(&keys[from])
                        .bind(&keys[to])
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        Ok(kept.len())
    }

    /// Records the identity policy `source`'s keys are made under now (`None`: `auto`). When
    /// keys moved, the source's validators and body hash are forgotten too, so that its next
    /// fetch reads every entry again under its new key.
    pub async fn set_identity(
        conn: &mut AnyConnection,
        source: &str,
        url: &str,
        identity: Option<&str>,
        moved: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sources (id, url, identity) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET identity = excluded.identity",
        )
        .bind(source)
        .bind(url)
        .bind(identity)
        .execute(&mut *conn)
        .await?;
        if moved {
            sqlx::query(
                "UPDATE sources SET etag = NULL, last_modified = NULL, body_hash = NULL
                 WHERE id = $1",
            )
            .bind(source)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn keys(conn: &mut AnyConnection) -> Vec<String> {
        let mut keys: Vec<String> = Store::keyed_entries(conn, "s")
            .await
            .expect("keys")
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        keys.sort();
        keys
    }

    /// Keys that trade places move; a move onto a key that stays, or onto one an earlier move
    /// took, is left out, and so is any move onto the key of one left out.
    #[tokio::test]
    async fn keys_move_without_clashing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/state/g.db", dir.path().display());
        let store = Store::open(&url).await.expect("open");
        let mut conn = store.pool().acquire().await.expect("connection");
        for key in ["a", "b", "c", "d", "e", "f"] {
            sqlx::query(
                "INSERT INTO articles (source, key, path, content_hash, atom_id, title, link, date,
                                       first_seen, updated_at)
                 VALUES ('s', $1, $2, '', '', '', '', 0, 0, 0)",
            )
            .bind(key)
            .bind(format!("{key}.md"))
            .execute(&mut *conn)
            .await
            .expect("insert");
        }
        let moves: Vec<(String, String)> = [
            ("a", "b"), // a and b trade places
            ("b", "a"),
            ("c", "x"), // c and d both want x: the first wins
            ("d", "x"),
            ("e", "d"), // d stays (its move was left out), so e stays too
            ("f", "f"),
        ]
        .iter()
        .map(|(old, new)| ((*old).to_owned(), (*new).to_owned()))
        .collect();
        let moved = Store::rekey(&mut conn, "s", &moves).await.expect("rekey");
        assert_eq!(moved, 3);
        assert_eq!(keys(&mut conn).await, ["a", "b", "d", "e", "f", "x"]);
        let path_of = |key: &'static str| {
            sqlx::query_scalar::<_, String>("SELECT path FROM articles WHERE key = $1").bind(key)
        };
        let a = path_of("a").fetch_one(&mut *conn).await.expect("a");
        let x = path_of("x").fetch_one(&mut *conn).await.expect("x");
        assert_eq!((a.as_str(), x.as_str()), ("b.md", "c.md"));
    }
}
