//! Revision cc30da9b96c1 (embeddings): vectors for every product, review and
//! memory, made by `embed` workers that any number of processes share.
//!
//! Task kinds ([`EmbeddingsTask`]), in the phases the planner (`plan.rs`)
//! orders them:
//! 1. `prepare` (one task): the `vector` extension and the two embedding
//!    tables, with the dimension the provider makes; a table or memory
//!    column of another dimension stops the run here, before any spend.
//! 2. `embed` (one task per range of source ids): read the rows, build their
//!    texts ([`providers::embed::text`]), skip the rows whose content hash is
//!    unchanged, call the provider for the rest *outside* any transaction,
//!    then write every vector in bulk ([`write`]) in the transaction that
//!    completes the task — a crash before the commit leaves nothing, a
//!    redelivery after it finds the task done.
//! 3. `finish` (one task per embedding table): delete vectors whose source
//!    row is gone, then build the ANN index if it is not there ([`index`]).
//!
//! `downgrade` drops the embedding tables and clears the memories' vectors.

use crate::revision::{Executor, Revision};
use crate::seed::memories::{ORIGIN_KEY, ORIGIN_SEED, VECTOR_KEY, VECTOR_PIPELINE};
use shared::exec::{Completed, TaskContext};
use shared::Config;
use sqlx::Connection;

mod embedder;
pub mod index;
mod plan;
pub mod sources;
pub mod tables;
mod tasks;
pub mod write;

pub use embedder::Embedder;
pub use tables::EmbeddingTable;
pub use tasks::{EmbedPayload, EmbeddingsTask, FinishPayload, Source};

pub const REVISION: Revision = Revision {
    id: shared::catalogue::EMBEDDINGS,
    name: "embeddings",
    summary: "vectors for products, reviews and memories, with an ANN index",
    planner: &plan::EmbeddingsPlanner,
    executor: |config| Box::new(EmbeddingsExecutor::new(config)),
};

/// Built once per worker process; owns the process's embedder.
pub struct EmbeddingsExecutor {
    embedder: Embedder,
}

impl EmbeddingsExecutor {
    pub fn new(config: &Config) -> EmbeddingsExecutor {
        EmbeddingsExecutor {
            embedder: Embedder::new(config),
        }
    }
}

#[async_trait::async_trait]
impl Executor for EmbeddingsExecutor {
    async fn execute(&self, ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
        match ctx.task.typed()? {
            EmbeddingsTask::Prepare => tables::prepare(ctx, &self.embedder).await,
            EmbeddingsTask::Embed(payload) => match payload.source {
                Source::Products | Source::Reviews => {
                    sources::embed_documents(ctx, &self.embedder, &payload).await
                }
                Source::Memories => sources::embed_memories(ctx, &self.embedder, &payload).await,
            },
            EmbeddingsTask::Finish(payload) => index::finish(ctx, payload.source).await,
            EmbeddingsTask::Downgrade => downgrade(ctx).await,
        }
    }
}

/// Drops both embedding tables (with their indexes) and clears the vectors
/// it wrote into the memories, in one transaction.
async fn downgrade(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    let config = ctx.config;
    let mut tx = ctx.conn.begin().await?;
    for table in [
        EmbeddingTable::products(config),
        EmbeddingTable::reviews(config),
    ] {
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", table.qualified()))
            .execute(&mut *tx)
            .await?;
    }
    let memory = tables::memory_table(config);
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&memory)
        .fetch_one(&mut *tx)
        .await?;
    if exists {
        // Only the vectors the pipeline wrote (or of the seed's own
        // memories): the shop's memory layer writes vectors of its own.
        sqlx::query(&format!(
            "UPDATE {memory} SET vector = NULL, payload = payload - '{VECTOR_KEY}'
              WHERE vector IS NOT NULL
                AND (payload->>'{VECTOR_KEY}' = '{VECTOR_PIPELINE}' OR payload->>'{ORIGIN_KEY}' = '{ORIGIN_SEED}')"
        ))
        .execute(&mut *tx)
        .await?;
    }
    ctx.task.complete(tx, 0).await
}
