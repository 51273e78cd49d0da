//! Cutting a table into tasks of about the same number of rows, at actual
//! ids (gaps in the ids do not make uneven tasks).

use serde_json::{json, Value};
use sqlx::PgPool;

pub async fn table_exists(pool: &PgPool, table: &str) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(pool)
        .await?)
}

/// The id at which each range starts: every `rows`-th id in order (at least
/// one range, even for an empty table).
pub async fn range_starts(
    pool: &PgPool,
    table: &str,
    rows: i64,
    uuid_ids: bool,
) -> anyhow::Result<Vec<Value>> {
    let id = if uuid_ids { "id::text" } else { "id::bigint" };
    let sql = format!(
        "SELECT {id} FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM {table}) t
          WHERE (n - 1) % $1 = 0 ORDER BY n"
    );
    let starts: Vec<Value> = if uuid_ids {
        sqlx::query_scalar::<_, String>(&sql)
            .bind(rows)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(Value::String)
            .collect()
    } else {
        sqlx::query_scalar::<_, i64>(&sql)
            .bind(rows)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|v| json!(v))
            .collect()
    };
    Ok(if starts.is_empty() {
        vec![Value::Null]
    } else {
        starts
    })
}

/// The integer ids at which each range starts, as `[from, to)` pairs: the
/// first open below and the last open above, so that rows added while
/// planning are still covered.
pub async fn integer_ranges(
    pool: &PgPool,
    table: &str,
    rows: i64,
) -> anyhow::Result<Vec<(Option<i64>, Option<i64>)>> {
    let starts: Vec<Option<i64>> = range_starts(pool, table, rows, false)
        .await?
        .iter()
        .map(Value::as_i64)
        .collect();
    Ok(starts
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let from = if i == 0 { None } else { starts[i] };
            (from, starts.get(i + 1).copied().flatten())
        })
        .collect())
}
