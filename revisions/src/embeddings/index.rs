//! The last phase, per embedding table: delete the vectors whose source row
//! is gone, then build the ANN index (`EMBEDDING_INDEX`) if it is not there
//! yet — after the bulk load, as pgvector advises, and with the memory and
//! parallel workers a fast build needs. A re-run finds the index in place
//! (inserts and updates maintain it) and only prunes.
//!
//! The index uses cosine distance and is named `data_<name>_embedding_idx`.
//! Vectors of more than 2,000 dimensions (pgvector's limit for `vector` in
//! an index) are indexed as `halfvec`, which `orchestrator search` matches.

use super::tables::EmbeddingTable;
use super::tasks::Source;
use shared::exec::{Completed, TaskContext};
use anyhow::Context as _;
use shared::config::AnnIndex;
use sqlx::{Connection, PgConnection};
use std::time::Instant;

/// Largest dimension pgvector indexes as `vector`; `halfvec` goes to 4,000.
pub const MAX_VECTOR_INDEX_DIMS: usize = 2000;
pub const MAX_HALFVEC_INDEX_DIMS: usize = 4000;

pub async fn finish(ctx: TaskContext<'_>, source: Source) -> anyhow::Result<Completed> {
    let config = ctx.config;
    let table = EmbeddingTable::for_source(config, source)?;
    let q = table.qualified();
    let dims = match table.dimensions(ctx.conn).await? {
        Some(d) if d > 0 => d as usize,
        _ => anyhow::bail!(
            "{q} does not exist (or has no vector dimension); the prepare task creates it"
        ),
    };
    let mut tx = ctx.conn.begin().await?;
    // Source rows deleted since their vectors were made.
    let pruned = sqlx::query(&format!(
        "DELETE FROM {q} e
          WHERE e.metadata_ ? '{key}'
            AND NOT EXISTS (SELECT 1 FROM {src} s WHERE s.id = (e.metadata_ ->> '{key}')::bigint)",
        key = table.id_key(),
        src = table.source_table()
    ))
    .execute(&mut *tx)
    .await
    .with_context(|| format!("deleting vectors of deleted rows from {q}"))?
    .rows_affected();
    if pruned > 0 {
        tracing::info!("{q}: deleted {pruned} vector(s) whose source row is gone");
    }
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {q}"))
        .fetch_one(&mut *tx)
        .await?;
    let built = build_index(&mut tx, &table, dims, rows, config).await?;
    if built || pruned > 0 {
        sqlx::query(&format!("ANALYZE {q}"))
            .execute(&mut *tx)
            .await?;
    }
    ctx.task.complete(tx, rows).await
}

/// The access method of an existing index, if any.
async fn existing_method(conn: &mut PgConnection, index: &str) -> anyhow::Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT am.amname::text FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.oid = to_regclass($1)",
    )
    .bind(index)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Builds the index unless one of the wanted kind is there; returns whether it built.
pub async fn build_index(
    conn: &mut PgConnection,
    table: &EmbeddingTable,
    dims: usize,
    rows: i64,
    config: &shared::Config,
) -> anyhow::Result<bool> {
    let settings = &config.embedding;
    let q = table.qualified();
    let index = format!("public.{}", table.index_name());
    let method = match settings.index {
        AnnIndex::Hnsw => "hnsw",
        AnnIndex::IvfFlat => "ivfflat",
        AnnIndex::DiskAnn => "diskann",
    };
    match existing_method(conn, &index).await? {
        Some(m) if m == method => {
            tracing::info!("{index} ({method}) is in place; inserts keep it up to date");
            return Ok(false);
        }
        Some(other) => {
            tracing::info!("{index} is {other} but EMBEDDING_INDEX is {method}: rebuilding it");
            sqlx::query(&format!("DROP INDEX {index}"))
                .execute(&mut *conn)
                .await?;
        }
        None => {}
    }
    // The column, or its halfvec cast where vectors are too long to index as they are.
    let (column, ops_type) = if dims <= MAX_VECTOR_INDEX_DIMS || settings.index == AnnIndex::DiskAnn
    {
        ("embedding".to_string(), "vector")
    } else if dims <= MAX_HALFVEC_INDEX_DIMS {
        (format!("(embedding::halfvec({dims}))"), "halfvec")
    } else {
        anyhow::bail!(
            "{q} holds {dims}-dimension vectors; pgvector indexes at most {MAX_HALFVEC_INDEX_DIMS} (as halfvec). \
             Choose a smaller EMBEDDING_DIMENSIONS (the text-embedding-3 models accept one)"
        );
    };
    let statement = match settings.index {
        AnnIndex::Hnsw => format!(
            "CREATE INDEX {name} ON {q} USING hnsw ({column} {ops_type}_cosine_ops) WITH (m = {m}, ef_construction = {ef})",
            name = table.index_name(),
            m = settings.hnsw_m,
            ef = settings.hnsw_ef_construction
        ),
        AnnIndex::IvfFlat => {
            let lists = ivfflat_lists(rows);
            format!(
                "CREATE INDEX {name} ON {q} USING ivfflat ({column} {ops_type}_cosine_ops) WITH (lists = {lists})",
                name = table.index_name()
            )
        }
        AnnIndex::DiskAnn => {
            let extension = diskann_extension(conn).await?;
            tracing::info!("building a diskann index with the {extension} extension");
            format!(
                "CREATE INDEX {name} ON {q} USING diskann (embedding vector_cosine_ops)",
                name = table.index_name()
            )
        }
    };
    sqlx::query("SELECT set_config('maintenance_work_mem', $1, true)")
        .bind(&settings.index_maintenance_work_mem)
        .execute(&mut *conn)
        .await
        .with_context(|| {
            format!(
                "INDEX_MAINTENANCE_WORK_MEM = {:?} is not a memory size PostgreSQL accepts",
                settings.index_maintenance_work_mem
            )
        })?;
    // As many parallel workers as the server allows for maintenance.
    sqlx::query(
        "SELECT set_config('max_parallel_maintenance_workers',
                 greatest(1, least(current_setting('max_worker_processes')::int, current_setting('max_parallel_workers')::int) - 1)::text, true)",
    )
    .execute(&mut *conn)
    .await?;
    let started = Instant::now();
    sqlx::query(&statement)
        .execute(&mut *conn)
        .await
        .with_context(|| format!("building {index} ({method}) on {rows} rows"))?;
    tracing::info!(
        "built {index} ({method}) on {rows} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(true)
}

/// pgvector's advice: rows / 1000 up to a million rows, √rows above.
pub fn ivfflat_lists(rows: i64) -> i64 {
    if rows <= 1_000_000 {
        (rows / 1000).max(1)
    } else {
        (rows as f64).sqrt() as i64
    }
}

/// `pg_diskann` or `vectorscale`, installed (or installable) on the server.
async fn diskann_extension(conn: &mut PgConnection) -> anyhow::Result<String> {
    let installed: Option<String> = sqlx::query_scalar(
        "SELECT extname::text FROM pg_extension WHERE extname IN ('pg_diskann', 'vectorscale') ORDER BY extname LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(name) = installed {
        return Ok(name);
    }
    let available: Option<String> = sqlx::query_scalar(
        "SELECT name::text FROM pg_available_extensions WHERE name IN ('pg_diskann', 'vectorscale') ORDER BY name LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    match available {
        Some(name) => {
            sqlx::query(&format!("CREATE EXTENSION IF NOT EXISTS {name} CASCADE"))
                .execute(&mut *conn)
                .await
                .with_context(|| format!("creating the {name} extension"))?;
            Ok(name)
        }
        None => anyhow::bail!(
            "EMBEDDING_INDEX=diskann needs the pg_diskann or vectorscale extension, and this PostgreSQL server has neither; \
             install one of them on the server, or set EMBEDDING_INDEX=hnsw (the default) or ivfflat"
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ivfflat_lists_follow_pgvector_advice() {
        assert_eq!(super::ivfflat_lists(0), 1);
        assert_eq!(super::ivfflat_lists(100_000), 100);
        assert_eq!(super::ivfflat_lists(4_000_000), 2000);
    }
}
