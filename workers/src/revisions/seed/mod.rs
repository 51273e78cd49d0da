//! Revision ef85393336cb (seed): loads the CSV files of a data directory
//! into the application's tables. Task kinds, phase by phase (planned by
//! `orchestrator/src/revisions/seed.rs`, payloads in `shared::seed`):
//!
//! - `prepare`: the memory table (and, in merge mode, the staging tables);
//! - `load`: one range of records of one file ([`load`]);
//! - `finalize`: in merge mode, upserts everything from staging in one
//!   transaction ([`finalize`]); always moves every id sequence past the
//!   largest id and analyses the tables;
//! - `downgrade`: empties the seeded tables, drops the memory table.
//!
//! Every task writes its effect and marks itself done in one transaction.

use crate::runtime::{Completed, Permanent, TaskContext};
use shared::seed::{self, DowngradePayload, Mode, PreparePayload};
use sqlx::{Connection, Executor};

mod encode;
mod finalize;
mod load;
mod tables;

pub const KINDS: &[&str] = &["prepare", "load", "finalize", "downgrade"];

pub async fn execute(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    match ctx.task.kind.as_str() {
        "prepare" => prepare(ctx).await,
        "load" => load::execute(ctx).await,
        "finalize" => finalize::execute(ctx).await,
        "downgrade" => downgrade(ctx).await,
        other => anyhow::bail!("revision ef85393336cb has no task kind {other:?}"),
    }
}

/// Namespace of memory ids: uuid v5 of `"<user id>:<index>"`, so that the
/// same preference of the same user is always the same memory.
const MEMORY_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5eed_ef85_3933_36cb_8a1e_6d65_6d6f_7279);

pub fn memory_id(user: i32, index: usize) -> uuid::Uuid {
    uuid::Uuid::new_v5(&MEMORY_NAMESPACE, format!("{user}:{index}").as_bytes())
}

/// Upserts memories from `source` (a query with columns `id`, `user_id`,
/// `data`): the payload has `data`, `user_id`, `hash` (md5 of the text) and
/// `created_at`; a memory whose text changed gets its vector cleared (the
/// embedding revision fills it again), an unchanged one is left alone.
pub fn memory_upsert_sql(memory_table: &str, source: &str) -> String {
    format!(
        "INSERT INTO public.{memory_table} AS m (id, vector, payload)
         SELECT s.id, NULL,
                jsonb_build_object('data', s.data, 'user_id', s.user_id, 'hash', md5(s.data), 'created_at', to_jsonb(now()))
           FROM ({source}) AS s
         ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload, vector = NULL
          WHERE m.payload->>'hash' IS DISTINCT FROM EXCLUDED.payload->>'hash'
             OR m.payload->>'user_id' IS DISTINCT FROM EXCLUDED.payload->>'user_id'"
    )
}

async fn prepare(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    let payload: PreparePayload = ctx.task.payload()?;
    let mut tx = ctx.conn.begin().await?;
    (&mut *tx)
        .execute("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public")
        .await
        .map_err(|e| {
            Permanent::new(format!(
                "the memory table needs the pgvector extension, which this PostgreSQL server cannot create: {e}"
            ))
        })?;
    let vector_schema: String = sqlx::query_scalar(
        "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'",
    )
    .fetch_one(&mut *tx)
    .await?;
    let create = format!(
        "CREATE TABLE IF NOT EXISTS public.{} (id uuid PRIMARY KEY, vector {vector_schema}.vector({}), payload jsonb)",
        payload.memory_table, payload.memory_dims
    );
    (&mut *tx).execute(create.as_str()).await?;
    if payload.mode == Mode::Merge {
        let run = ctx.task.revision_run_id;
        for table in seed::tables() {
            let staging = seed::staging_table(run, table);
            let sql = format!("DROP TABLE IF EXISTS {staging}; CREATE UNLOGGED TABLE {staging} (LIKE public.{table}, _line bigint)");
            (&mut *tx).execute(sql.as_str()).await?;
        }
        let memories = seed::staging_memories(run);
        let sql = format!("DROP TABLE IF EXISTS {memories}; CREATE UNLOGGED TABLE {memories} (id uuid, user_id text, data text)");
        (&mut *tx).execute(sql.as_str()).await?;
    }
    ctx.task.complete(tx, 0).await
}

async fn downgrade(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    let payload: DowngradePayload = ctx.task.payload()?;
    // Reverse load order; the dependents reference users and products (ON
    // DELETE CASCADE), so emptying those empties them too.
    let tables: Vec<String> = seed::DEPENDENTS
        .into_iter()
        .chain(seed::tables().rev())
        .map(|t| format!("public.{t}"))
        .collect();
    let mut tx = ctx.conn.begin().await?;
    let truncate = format!("TRUNCATE {} RESTART IDENTITY", tables.join(", "));
    (&mut *tx).execute(truncate.as_str()).await?;
    let drop = format!("DROP TABLE IF EXISTS public.{}", payload.memory_table);
    (&mut *tx).execute(drop.as_str()).await?;
    ctx.task.complete(tx, 0).await
}
