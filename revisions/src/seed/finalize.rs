//! The seed's last task, in one transaction with its completion.
//!
//! Merge mode (a re-run, or a seed into tables that already hold rows): the
//! load tasks wrote into staging tables; here every table is upserted from
//! its staging table in load order — `INSERT ... ON CONFLICT (id) DO UPDATE
//! ... WHERE (row) IS DISTINCT FROM (new row)`, so changed rows are updated,
//! new rows added and unchanged rows not touched at all — then the memories,
//! then staging is dropped. Either all of it commits or none: a bad record
//! found here (a duplicate id, a foreign key pointing nowhere) leaves the
//! tables as they were, and is reported with its file and line, which
//! staging keeps in `_line`.
//!
//! `rerun seed --prune` first deletes the rows the seed loaded that are gone
//! from the files ([`prune`]), in the same transaction.
//!
//! Both modes: the ids loaded are recorded ([`seed::LOADED_IDS`]), every id
//! sequence is moved past the largest id (never backwards), so that the
//! application's own inserts do not collide, and the tables are analysed.

use super::encode::{Mapping, ERROR_CAP};
use super::load::{db_problem, describe_problem, read_header};
use super::memories::{memory_prune_sql, memory_upsert_sql};
use super::tables::{self, Table};
use super::tasks::{self as seed, FinalizePayload, Mode, SeedFile};
use shared::exec::{Completed, Permanent, TaskContext};
use super::source::RemoteFile;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use std::path::Path;

pub async fn execute(ctx: TaskContext<'_>, payload: FinalizePayload) -> anyhow::Result<Completed> {
    let run = ctx.task.revision_run_id;
    let mut tx = ctx.conn.begin().await?;
    let mut rows: i64 = 0;
    if payload.mode == Mode::Merge {
        if payload.prune {
            rows += prune(&mut tx, run, &payload.memory_table).await?;
        }
        for source in &payload.files {
            let table = tables::find(&source.table)
                .ok_or_else(|| Permanent::new(format!("unknown seed table {:?}", source.table)))?;
            rows += apply(&mut tx, ctx.pool, run, table, source).await?;
        }
        let source = format!(
            "SELECT id, user_id, data FROM {}",
            seed::staging_memories(run)
        );
        let sql = memory_upsert_sql(&payload.memory_table, &source);
        (&mut *tx).execute(sql.as_str()).await?;
    }
    record_loaded_ids(&mut tx, run, payload.mode, payload.prune).await?;
    if payload.mode == Mode::Merge {
        let mut staging: Vec<String> = seed::tables()
            .map(|t| seed::staging_table(run, t))
            .collect();
        staging.push(seed::staging_memories(run));
        let drop = format!("DROP TABLE IF EXISTS {}", staging.join(", "));
        (&mut *tx).execute(drop.as_str()).await?;
    }
    for table in seed::tables() {
        let sql = format!(
            // Never backwards: ids the shop handed out since (the
            // sequence's last value) stay used even if their rows are gone.
            "SELECT setval(s.seq, greatest(coalesce((SELECT max(id) FROM public.{table}), 0) + 1,
                                           coalesce(pg_sequence_last_value(s.seq) + 1, 1)), false)
               FROM (SELECT pg_get_serial_sequence('public.{table}', 'id')::regclass AS seq) s"
        );
        sqlx::query(&sql).execute(&mut *tx).await?;
    }
    let mut analysed: Vec<String> = seed::tables().map(|t| format!("public.{t}")).collect();
    analysed.push(format!("public.{}", payload.memory_table));
    let analyse = format!("ANALYZE {}", analysed.join(", "));
    (&mut *tx).execute(analyse.as_str()).await?;
    ctx.task.complete(tx, rows).await
}

/// `--prune`: deletes, children first, every row the seed loaded (by
/// [`seed::LOADED_IDS`]) whose id is not in this run's staging, then the
/// seed's memories (by their origin marker) not staged. Rows the shop
/// inserted itself are not in the record and are never deleted, except
/// where the shop's schema cascades (`ON DELETE CASCADE`: the personalised
/// sections of a pruned product go with it). Returns the rows deleted.
async fn prune(conn: &mut PgConnection, run: i64, memory_table: &str) -> anyhow::Result<i64> {
    let mut deleted = 0;
    let recorded: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT table_name FROM {}",
        seed::LOADED_IDS
    ))
    .fetch_all(&mut *conn)
    .await?;
    for table in seed::tables().rev() {
        if !recorded.iter().any(|t| t == table) {
            tracing::warn!(
                "--prune: no record of which public.{table} rows the seed loaded (seeded by an earlier version): none deleted; this run records them, so the next --prune can"
            );
            continue;
        }
        let staging = seed::staging_table(run, table);
        let sql = format!(
            "DELETE FROM public.{table} t
              USING {loaded} l
              WHERE l.table_name = '{table}' AND t.id <@ l.ids
                AND NOT EXISTS (SELECT 1 FROM {staging} s WHERE s.id = t.id)",
            loaded = seed::LOADED_IDS
        );
        let done = sqlx::query(&sql).execute(&mut *conn).await?.rows_affected();
        if done > 0 {
            tracing::info!("--prune: deleted {done} row(s) of public.{table} gone from its file");
        }
        deleted += done as i64;
    }
    let sql = memory_prune_sql(memory_table, &seed::staging_memories(run));
    let done = sqlx::query(&sql).execute(&mut *conn).await?.rows_affected();
    if done > 0 {
        tracing::info!("--prune: deleted {done} seeded memory(ies) gone from users.csv");
    }
    Ok(deleted + done as i64)
}

/// Records which ids of each table the seed has loaded: after a fresh load,
/// every row (the tables were empty); after a merge, the earlier record
/// plus this run's ids, or, with `--prune`, this run's ids alone (the rest
/// were just deleted).
async fn record_loaded_ids(
    conn: &mut PgConnection,
    run: i64,
    mode: Mode,
    prune: bool,
) -> anyhow::Result<()> {
    let loaded = seed::LOADED_IDS;
    for table in seed::tables() {
        let (source, keep_earlier) = match mode {
            Mode::Fresh => (format!("public.{table}"), false),
            Mode::Merge => (seed::staging_table(run, table), !prune),
        };
        let ids = format!(
            "SELECT coalesce(range_agg(int4range(id, id, '[]')), '{{}}'::int4multirange) FROM {source}"
        );
        let merged = if keep_earlier {
            format!("EXCLUDED.ids + {loaded}.ids")
        } else {
            "EXCLUDED.ids".to_string()
        };
        let sql = format!(
            "INSERT INTO {loaded} (table_name, ids) SELECT '{table}', ({ids})
             ON CONFLICT (table_name) DO UPDATE SET ids = {merged}"
        );
        sqlx::query(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Whether the enrichment's book-keeping is there (it has run at least once).
async fn enrichment_ran(conn: &mut PgConnection) -> anyhow::Result<bool> {
    let tables: Vec<String> = crate::enrichment::reviews::BOOKKEEPING
        .iter()
        .map(|t| t.to_string())
        .collect();
    let found: i64 = sqlx::query_scalar("SELECT count(to_regclass(t)) FROM unnest($1::text[]) t")
        .bind(&tables)
        .fetch_one(&mut *conn)
        .await?;
    Ok(found == tables.len() as i64)
}

/// Upserts one table from its staging table (keeping what the enrichment
/// wrote over the data's empty values, see
/// [`crate::enrichment::reviews::seed_upsert_source`]); returns the rows
/// written.
async fn apply(
    conn: &mut PgConnection,
    pool: &PgPool,
    run: i64,
    table: &'static Table,
    source: &SeedFile,
) -> anyhow::Result<i64> {
    // Only the header is read; a remote file's as it was planned.
    let planned = RemoteFile {
        bytes: match source.bytes {
            Some(bytes) => bytes,
            None => std::fs::metadata(&source.file).map_or(0, |m| m.len()),
        },
        etag: source.etag.clone(),
    };
    let header_end = source.header_end.unwrap_or(planned.bytes);
    let view = super::source::open(&source.file, &planned, std::slice::from_ref(&(0..header_end))).await?;
    let header = read_header(&view.path).await?;
    let name = seed::display_name(Path::new(&source.file));
    let mapping =
        Mapping::new(table, &name, &header.columns, &source.header).map_err(Permanent::new)?;
    let staging = seed::staging_table(run, table.name);

    let duplicates: Vec<(i32, Vec<i64>)> = sqlx::query_as(&format!(
        "SELECT id, array_agg(_line ORDER BY _line) FROM {staging} GROUP BY id HAVING count(*) > 1 ORDER BY min(_line) LIMIT {ERROR_CAP}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    if !duplicates.is_empty() {
        let mut message = format!(
            "{name} has {} duplicate id(s); each id must appear once:",
            duplicates.len()
        );
        for (id, lines) in duplicates {
            let lines: Vec<String> = lines.iter().map(i64::to_string).collect();
            message.push_str(&format!(
                "\n    {name} lines {}, column id: duplicate id {id}",
                lines.join(", ")
            ));
        }
        return Err(Permanent::new(message).into());
    }

    // Foreign keys, checked before the upsert so that every bad record (up
    // to the cap) is named, not only the first the server meets. Parents
    // were upserted earlier in this transaction.
    let mut dangling = Vec::new();
    for (_, column) in &mapping.copied {
        let Some(parent) = column.references else {
            continue;
        };
        let column = column.name;
        let shown = mapping.header_name(column);
        let found: Vec<(i64, i32)> = sqlx::query_as(&format!(
            "SELECT s._line, s.{column} FROM {staging} s
              WHERE s.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM public.{parent} p WHERE p.id = s.{column})
              ORDER BY s._line LIMIT {ERROR_CAP}"
        ))
        .fetch_all(&mut *conn)
        .await?;
        for (line, value) in found {
            dangling.push((
                line,
                format!("{name} line {line}, column {shown}: {value} points nowhere: public.{parent} has no row with id {value}"),
            ));
        }
    }
    if !dangling.is_empty() {
        dangling.sort();
        dangling.truncate(ERROR_CAP);
        let mut message = format!(
            "{name} has {} record(s) whose foreign key points nowhere:",
            dangling.len()
        );
        for (_, line) in dangling {
            message.push_str(&format!("\n    {line}"));
        }
        return Err(Permanent::new(message).into());
    }

    let columns: Vec<&str> = mapping.copied.iter().map(|(_, c)| c.name).collect();
    let list = columns.join(", ");
    let updated: Vec<&str> = columns.iter().copied().filter(|c| *c != "id").collect();
    let on_conflict = if updated.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!(
            "DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})",
            updated
                .iter()
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            updated
                .iter()
                .map(|c| format!("t.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            updated
                .iter()
                .map(|c| format!("EXCLUDED.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let source = if table.name == "product_reviews" && enrichment_ran(conn).await? {
        crate::enrichment::reviews::seed_upsert_source(&staging, &columns)
    } else {
        format!("SELECT * FROM {staging}")
    };
    let sql = format!(
        "INSERT INTO public.{table} AS t ({list}) SELECT {list} FROM ({source}) s ORDER BY id ON CONFLICT (id) {on_conflict}",
        table = table.name
    );
    match sqlx::query(&sql).execute(&mut *conn).await {
        Ok(done) => Ok(done.rows_affected() as i64),
        Err(e) => {
            let Some(problem) =
                db_problem(&e).filter(|p| p.code.starts_with("22") || p.code.starts_with("23"))
            else {
                return Err(anyhow::Error::new(e).context(format!("applying {name}")));
            };
            let lines = match &problem.key {
                Some((key_columns, values))
                    if key_columns.iter().all(|c| table.column(c).is_some()) =>
                {
                    // Column names checked against the table's layout above.
                    let filter = key_columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{c}::text = ${}", i + 1))
                        .collect::<Vec<_>>()
                        .join(" AND ");
                    // Staging is committed: look it up outside the failed transaction.
                    let lookup = format!("SELECT _line FROM {staging} WHERE {filter} ORDER BY _line LIMIT {ERROR_CAP}");
                    let mut query = sqlx::query_scalar::<_, i64>(&lookup);
                    for value in values {
                        query = query.bind(value);
                    }
                    query
                        .fetch_all(pool)
                        .await
                        .unwrap_or_default()
                        .into_iter()
                        .map(|l| l as u64)
                        .collect()
                }
                _ => Vec::new(),
            };
            Err(Permanent::new(describe_problem(&name, &problem, &lines)).into())
        }
    }
}
