//! Moving state from one database to another (SQLite to PostgreSQL when one machine is no
//! longer enough, and back): every row of every table, in one transaction on the target, which
//! must be empty. Tables the target's own triggers keep (the tag index, the change counter,
//! the token totals) are not copied: inserting the rows they follow rebuilds them there.

use futures::TryStreamExt as _;
use sqlx::{AnyConnection, Row as _};

use super::packed::MaybePacked;
use super::{Backend, Store, numbered_rows};
use crate::error::{Error, Result};

/// What the target's triggers rebuild, and the migrations' own bookkeeping.
const NOT_COPIED: &[&str] = &[
    "_sqlx_migrations",
    "article_tags",
    "state_version",
    "enrichment_tokens",
];

/// Rows per insert: well under both databases' limits on bound values (SQLite 32,766,
/// PostgreSQL 65,535) for the widest table.
const VALUES_PER_STATEMENT: usize = 30_000;

/// How many rows of each table were copied, in copy order.
#[derive(Debug, Default)]
pub struct Copied {
    pub tables: Vec<(String, u64)>,
}

/// A value as both databases store it.
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

struct Column {
    name: String,
    integer: bool,
}

impl Store {
    /// Copies every row of this state into `target`, an empty state of the same schema
    /// version (just opened, so migrated); nothing is written unless all of it is.
    pub async fn copy_into(&self, target: &Store) -> Result<Copied> {
        let mut tx = target.begin().await?;
        let held: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM sources) + (SELECT COUNT(*) FROM articles)",
        )
        .fetch_one(&mut *tx)
        .await?;
        if held > 0 {
            return Err(Error::Refused(
                "the target already holds state (sources or articles); state is copied into an \
                 empty database only"
                    .to_owned(),
            ));
        }
        // Opening the empty target marked its (empty) search index made; the source's rows
        // come instead, and the mark goes again below.
        sqlx::query("DELETE FROM state_meta WHERE key = 'search_indexed'")
            .execute(&mut *tx)
            .await?;
        let mut copied = Copied::default();
        for table in tables(&mut tx, target.backend).await? {
            let columns = columns(&mut tx, target.backend, &table).await?;
            let rows = self.copy_table(&mut tx, &table, &columns).await?;
            copied.tables.push((table, rows));
        }
        // The target's search index is made from the articles when it is next opened.
        sqlx::query("DELETE FROM state_meta WHERE key = 'search_indexed'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(copied)
    }

    async fn copy_table(
        &self,
        target: &mut AnyConnection,
        table: &str,
        columns: &[Column],
    ) -> Result<u64> {
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let list = names.join(", ");
        let select = format!("SELECT {list} FROM {table}");
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&self.pool);
        let per_statement = (VALUES_PER_STATEMENT / columns.len().max(1)).max(1);
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(per_statement);
        let mut count = 0;
        while let Some(row) = rows.try_next().await? {
            let mut values = Vec::with_capacity(columns.len());
            for (i, column) in columns.iter().enumerate() {
                values.push(read_value(&row, i, column)?);
            }
            batch.push(values);
            if batch.len() == per_statement {
                count += insert(target, table, &list, columns.len(), &mut batch).await?;
            }
        }
        count += insert(target, table, &list, columns.len(), &mut batch).await?;
        Ok(count)
    }
}

/// Reads a column as the target stores it; SQLite's loose typing may give either kind, and a
/// text column may hold packed values (see `packed`), which are copied as their text.
fn read_value(row: &sqlx::any::AnyRow, i: usize, column: &Column) -> Result<Value> {
    let int = row.try_get::<Option<i64>, _>(i);
    let text = || {
        row.try_get::<Option<MaybePacked>, _>(i)
            .map(|v| v.map(|v| v.0))
    };
    Ok(match (column.integer, int) {
        (true, Ok(v)) => Value::Int(v),
        (true, Err(_)) => {
            let text = text()?;
            Value::Int(match text {
                None => None,
                Some(t) => Some(t.trim().parse().map_err(|_| {
                    Error::Schema(format!("column {} holds {t:?}, not a number", column.name))
                })?),
            })
        }
        (false, Ok(v)) => Value::Text(v.map(|n| n.to_string())),
        (false, Err(_)) => Value::Text(text()?),
    })
}

async fn insert(
    target: &mut AnyConnection,
    table: &str,
    list: &str,
    width: usize,
    batch: &mut Vec<Vec<Value>>,
) -> Result<u64> {
    if batch.is_empty() {
        return Ok(0);
    }
    let row = format!("({})", vec!["?"; width].join(", "));
    let sql = format!(
        "INSERT INTO {table} ({list}) VALUES {}",
        numbered_rows(Backend::of(target), &row, batch.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for values in batch.drain(..) {
        for value in values {
            query = match value {
                Value::Int(v) => query.bind(v),
                Value::Text(v) => query.bind(v),
            };
        }
    }
    Ok(query.execute(target).await?.rows_affected())
}

/// The target's tables that hold copied rows, in a stable order.
async fn tables(conn: &mut AnyConnection, backend: Backend) -> Result<Vec<String>> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
             ORDER BY table_name"
        }
    };
    let names: Vec<String> = sqlx::query_scalar(sql).fetch_all(conn).await?;
    Ok(names
        .into_iter()
        // The search index is made again from the articles when the target is next opened.
        .filter(|n| !NOT_COPIED.contains(&n.as_str()) && !n.starts_with("search"))
        .collect())
}

/// A table's columns on the target, and which hold integers (PostgreSQL will not take text
/// for them, not even a NULL bound as text).
async fn columns(conn: &mut AnyConnection, backend: Backend, table: &str) -> Result<Vec<Column>> {
    let sql = match backend {
        Backend::Sqlite => "SELECT name, type FROM pragma_table_info($1) ORDER BY cid",
        Backend::Postgres => {
            "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT) FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
        }
    };
    let rows: Vec<(String, String)> = sqlx::query_as(sql).bind(table).fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(name, kind)| Column {
            integer: kind.eq_ignore_ascii_case("integer") || kind.eq_ignore_ascii_case("bigint"),
            name,
        })
        .collect())
}
