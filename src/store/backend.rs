//! Which database holds state, and the little that differs between the two: migrations, the
//! write lock, and the text of the few queries SQLite and PostgreSQL spell differently.

use sqlx::AnyConnection;
use sqlx::migrate::Migrator;

use crate::error::Result;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock that serializes writing transactions on PostgreSQL, as SQLite's one write
/// lock does (any constant that no other application on the same database uses; "gzt\0").
const WRITE_LOCK: i64 = 0x677a_7400;

/// The two databases state can live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file, one machine.
    Sqlite,
    /// For several processes on several machines sharing one state.
    Postgres,
}

impl Backend {
    /// The backend a state URL names: `sqlite:` or `postgres:`/`postgresql:`.
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }

    /// The backend a connection talks to.
    pub fn of(conn: &AnyConnection) -> Self {
        if conn.backend_name() == "PostgreSQL" {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }

    pub(super) fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE,
            Self::Postgres => &POSTGRES,
        }
    }
}

/// A URL as it may be shown: without the password a PostgreSQL URL can carry.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Takes the write lock for the rest of a PostgreSQL transaction.
pub(super) async fn take_write_lock(conn: &mut AnyConnection) -> Result<()> {
    // Counted rather than selected: the function returns `void`, which the `Any` driver
    // cannot read.
    sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
        .bind(WRITE_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// `rows` copies of a row of `?` placeholders: the `VALUES` list of a multi-row statement.
/// PostgreSQL numbers them (`$1, $2, …` through all rows); SQLite keeps `?`, which it binds in
/// order, since it looks a named (`$N`) parameter up by a linear scan of the statement's names,
/// for each one bound: thousands of them made a statement's binding quadratic.
pub(super) fn numbered_rows(backend: Backend, row: &str, rows: usize) -> String {
    let mut out = String::with_capacity((row.len() + 8) * rows);
    let mut n = 0;
    for i in 0..rows {
        if i > 0 {
            out.push_str(", ");
        }
        if backend == Backend::Sqlite {
            out.push_str(row);
            continue;
        }
        for c in row.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_through_every_row() {
        assert_eq!(
            numbered_rows(Backend::Postgres, "(?, NULL, ?)", 3),
            "($1, NULL, $2), ($3, NULL, $4), ($5, NULL, $6)"
        );
        assert_eq!(
            numbered_rows(Backend::Sqlite, "(?, NULL, ?)", 2),
            "(?, NULL, ?), (?, NULL, ?)"
        );
    }

    #[test]
    fn knows_backends_by_scheme_and_hides_passwords() {
        assert_eq!(Backend::of_url("sqlite://a.db"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::of_url("postgresql://u@127.0.0.1/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("mysql://x"), None);
        assert_eq!(
            redacted("postgres://u:secret@127.0.0.1:5432/db"),
            "postgres://u:***@127.0.0.1:5432/db"
        );
    }
}
