//! Revision ef85393336cb (seed): loads the CSV files of a data directory
//! into the application's tables. Task kinds ([`SeedTask`]), phase by phase
//! (planned by `plan.rs`):
//!
//! - `prepare`: the memory table (and, in merge mode, the staging tables);
//! - `load`: one range of records of one file ([`load`]);
//! - `finalize`: in merge mode, upserts everything from staging in one
//!   transaction ([`finalize`]) and, with `--prune`, deletes the seed's rows
//!   gone from the files; always records which ids the seed loaded, moves
//!   every id sequence past the largest id and analyses the tables;
//! - `downgrade`: empties the seeded tables, drops the memory table.
//!
//! Every task writes its effect and marks itself done in one transaction.

use crate::revision::{Executor as RevisionExecutor, Revision};
use shared::exec::{Completed, Permanent, TaskContext};
use sqlx::{Connection, Executor};
use tasks::{self as seed, DowngradePayload, Mode, PreparePayload};

mod encode;
mod finalize;
mod load;
pub(crate) mod memories;
mod plan;
mod source;
mod tables;
pub mod tasks;

pub use tasks::SeedTask;

pub const REVISION: Revision = Revision {
    id: shared::catalogue::SEED,
    name: "seed",
    summary: "load the CSV files of the data directory; preferences become memories",
    planner: &plan::SeedPlanner,
    executor: |_| Box::new(SeedExecutor),
};

struct SeedExecutor;

#[async_trait::async_trait]
impl RevisionExecutor for SeedExecutor {
    async fn execute(&self, ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
        match ctx.task.typed()? {
            SeedTask::Prepare(payload) => prepare(ctx, payload).await,
            SeedTask::Load(payload) => load::execute(ctx, payload).await,
            SeedTask::Finalize(payload) => finalize::execute(ctx, payload).await,
            SeedTask::Downgrade(payload) => downgrade(ctx, payload).await,
        }
    }
}

async fn prepare(ctx: TaskContext<'_>, payload: PreparePayload) -> anyhow::Result<Completed> {
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
    let loaded = format!(
        "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, ids int4multirange NOT NULL)",
        seed::LOADED_IDS
    );
    (&mut *tx).execute(loaded.as_str()).await?;
    if payload.mode == Mode::Merge {
        // Logged, not UNLOGGED: crash recovery empties unlogged tables, and
        // the load tasks that filled them stay done, so finalize would apply
        // a short staging table (and `--prune` delete what went missing).
        let run = ctx.task.revision_run_id;
        for table in seed::tables() {
            let staging = seed::staging_table(run, table);
            let sql = format!("DROP TABLE IF EXISTS {staging}; CREATE TABLE {staging} (LIKE public.{table}, _line bigint)");
            (&mut *tx).execute(sql.as_str()).await?;
        }
        let memories = seed::staging_memories(run);
        let sql = format!("DROP TABLE IF EXISTS {memories}; CREATE TABLE {memories} (id uuid, user_id text, data text)");
        (&mut *tx).execute(sql.as_str()).await?;
    }
    ctx.task.complete(tx, 0).await
}

async fn downgrade(ctx: TaskContext<'_>, payload: DowngradePayload) -> anyhow::Result<Completed> {
    let mut tx = ctx.conn.begin().await?;
    let truncate = format!(
        "TRUNCATE {} RESTART IDENTITY",
        seed::tables_to_empty().join(", ")
    );
    (&mut *tx).execute(truncate.as_str()).await?;
    let drop = format!(
        "DROP TABLE IF EXISTS public.{}, {}",
        payload.memory_table,
        seed::LOADED_IDS
    );
    (&mut *tx).execute(drop.as_str()).await?;
    ctx.task.complete(tx, 0).await
}
