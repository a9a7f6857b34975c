//! Is the state database whole? A cheap look at every open (the file's header and size), and
//! SQLite's own page checks on demand: `quick_check` for `check` and the daemon's start,
//! `integrity_check` as well for `verify`. Never on every cron `fetch`: they read the whole
//! file.

use std::path::Path;

use sqlx::ConnectOptions as _;

use super::{Backend, Store};
use crate::error::{DAMAGED_STATE_WAY_OUT as WAY_OUT, Error, Result};

const HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Refuses a state file that cannot be a whole SQLite database: empty, of another kind, or
/// cut short (its size is not a whole number of its pages). A missing file is fine: it is
/// created. Reads the first 100 bytes and the size; blocking.
pub fn check_file(path: &Path) -> Result<()> {
    let damaged = |what: String| Error::Damaged(format!("{}: {what}; {WAY_OUT}", path.display()));
    let size = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    if size == 0 {
        return Err(damaged(
            "the file is empty, not a state database".to_owned(),
        ));
    }
    let mut head = [0u8; 100];
    let read = {
        use std::io::Read as _;
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut read = 0;
        while read < head.len() {
            match file.read(&mut head[read..]) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        read
    };
    if read < HEADER.len() || &head[..HEADER.len()] != HEADER {
        return Err(damaged(
            "not an SQLite database (another kind of file)".to_owned(),
        ));
    }
    // Bytes 16–17: the page size, big-endian; 1 stands for 65,536.
    let page = match u16::from_be_bytes([head[16], head[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    if read < head.len() || page < 512 || !page.is_power_of_two() || size % page != 0 {
        return Err(damaged(format!(
            "cut short or damaged ({size} bytes, not a whole number of {page}-byte pages)"
        )));
    }
    Ok(())
}

impl Store {
    /// Writes a consistent copy of the database to `to` (`VACUUM INTO`: one read transaction,
    /// so writers go on meanwhile), then opens the copy and runs `quick_check` on it.
    pub async fn backup(&self, to: &Path) -> Result<()> {
        if self.backend == Backend::Postgres {
            return Err(Error::Refused(
                "`gazette backup` copies SQLite state; back up PostgreSQL state with pg_dump"
                    .to_owned(),
            ));
        }
        if to.exists() {
            return Err(Error::io(
                to,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a backup is never written over an existing file",
                ),
            ));
        }
        let target = to.to_str().ok_or_else(|| {
            Error::io(
                to,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a UTF-8 path"),
            )
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await
            .map_err(damage_or)?;
        let copy = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(to)
            .read_only(true);
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect_with(sqlx::any::AnyConnectOptions::from_url(
                &copy.to_url_lossy(),
            )?)
            .await?;
        let checked = Store {
            writer: pool.clone(),
            pool,
            backend: Backend::Sqlite,
            checkpoints: Default::default(),
        }
        .check_integrity(false)
        .await;
        checked.map_err(|e| Error::Damaged(format!("{}: the copy is not whole: {e}", to.display())))
    }

    /// `PRAGMA quick_check`, and `integrity_check` too when `full`: `Ok` when SQLite finds the
    /// pages whole, else the damage it found, with the way out. PostgreSQL checks its own pages
    /// (and is backed up and repaired with its own tools): there, whether it answers.
    pub async fn check_integrity(&self, full: bool) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            return Ok(());
        }
        let pragmas: &[(&str, &'static str)] = if full {
            &[
                ("quick_check", "PRAGMA quick_check"),
                ("integrity_check", "PRAGMA integrity_check"),
            ]
        } else {
            &[("quick_check", "PRAGMA quick_check")]
        };
        for (pragma, statement) in pragmas {
            let found: Vec<String> = sqlx::query_scalar(*statement)
                .fetch_all(&self.pool)
                .await
                .map_err(damage_or)?;
            if found != ["ok"] {
                let shown: Vec<&str> = found.iter().take(3).map(String::as_str).collect();
                return Err(Error::Damaged(format!(
                    "the state database is damaged ({pragma}: {}); {WAY_OUT}",
                    shown.join("; ")
                )));
            }
        }
        Ok(())
    }
}

/// A database error that says the file is damaged (SQLite's CORRUPT and NOTADB) becomes
/// [`Error::Damaged`], with the way out; any other stays what it is.
pub fn damage_or(error: sqlx::Error) -> Error {
    let damaged = matches!(&error, sqlx::Error::Database(e)
        if matches!(e.code().as_deref(), Some("11" | "26")));
    if damaged {
        // The message already says the way out (see `Error::State`).
        Error::Damaged(Error::State(error).to_string())
    } else {
        Error::State(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheap_check_tells_each_kind_of_bad_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        assert!(check_file(&path).is_ok(), "a missing file is created");
        let message = |bytes: &[u8]| {
            std::fs::write(&path, bytes).expect("write");
            check_file(&path).expect_err("refused").to_string()
        };
        assert!(message(b"").contains("empty"));
        assert!(message(b"name,count\nx,1\n").contains("not an SQLite database"));
        let mut header = HEADER.to_vec();
        header.resize(100, 0);
        header[16..18].copy_from_slice(&4096u16.to_be_bytes());
        let mut cut = header.clone();
        cut.resize(4096 + 1000, 0);
        assert!(message(&cut).contains("cut short"));
        assert!(message(&cut).contains("gazette rebuild"));
        let mut whole = header;
        whole.resize(4096 * 2, 0);
        std::fs::write(&path, &whole).expect("write");
        assert!(check_file(&path).is_ok());
    }
}
