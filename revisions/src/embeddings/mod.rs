//! Revision cc30da9b96c1 (embeddings): vectors for every product, review and
//! memory, made by `embed` workers that any number of processes share.
//!
//! Task kinds ([`EmbeddingsTask`]), in the phases the planner (`plan.rs`)
//! orders them:
//! 1. `prepare` (one task): the `vector` extension and the two embedding
//!    tables, with the dimension the provider makes; a table or memory
//!    column of another dimension stops the run here, before any spend.
//! 2. `embed` (one task per range of source ids): read the rows, build their
//!    texts ([`embedding::text`]), skip the rows whose content hash is
//!    unchanged, call the provider for the rest *outside* any transaction,
//!    then write every vector in bulk ([`write`]) in the transaction that
//!    completes the task — a crash before the commit leaves nothing, a
//!    redelivery after it finds the task done.
//! 3. `finish` (one task per embedding table): delete vectors whose source
//!    row is gone, then build the ANN index if it is not there ([`index`]).
//!
//! `downgrade` drops the embedding tables and clears the memories' vectors.

use crate::{Executor, Revision};
use serde::Deserialize;
use shared::exec::{Completed, TaskContext};
use shared::Config;
use sqlx::Connection;
use std::sync::Arc;

pub mod index;
mod plan;
pub mod sources;
pub mod tables;
pub mod write;

pub use tables::EmbeddingTable;

pub const REVISION: Revision = Revision {
    id: shared::catalogue::EMBEDDINGS,
    planner: &plan::EmbeddingsPlanner,
    executor: |config| Box::new(EmbeddingsExecutor::new(config)),
};

/// The embeddings revision's tasks, shared by planner and executor.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EmbeddingsTask {
    Prepare,
    Embed(EmbedPayload),
    Finish(FinishPayload),
    Downgrade,
}

/// Which rows an embed or finish task works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Products,
    Reviews,
    Memories,
}

/// A half-open range of source ids, `[from, to)`; `None` is unbounded.
/// Integers for products and reviews, uuid strings for memories.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedPayload {
    pub source: Source,
    pub from: Option<serde_json::Value>,
    pub to: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FinishPayload {
    pub source: Source,
}

/// The embedding provider of a worker process: made on first use (a worker
/// that never takes an embed task never loads a model), then kept, so the
/// local model's weights load once and HTTP connections are reused.
pub struct Embedder {
    settings: shared::config::EmbeddingConfig,
    made: tokio::sync::OnceCell<Arc<dyn embedding::Embedder>>,
}

impl Embedder {
    pub fn new(config: &Config) -> Embedder {
        Embedder {
            settings: config.embedding.clone(),
            made: tokio::sync::OnceCell::new(),
        }
    }

    /// The provider `EMBEDDING_PROVIDER` names.
    pub async fn get(&self) -> anyhow::Result<Arc<dyn embedding::Embedder>> {
        let made = self
            .made
            .get_or_try_init(|| async {
                let settings = self.settings.clone();
                // Loading a local model reads and converts its weights: not on the async threads.
                tokio::task::spawn_blocking(move || embedding::from_config(&settings))
                    .await
                    .map_err(|e| anyhow::anyhow!("loading the embedding provider panicked: {e}"))?
            })
            .await?;
        Ok(made.clone())
    }
}

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

/// Drops both embedding tables (with their indexes) and clears the memories'
/// vectors, in one transaction.
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
        sqlx::query(&format!(
            "UPDATE {memory} SET vector = NULL WHERE vector IS NOT NULL"
        ))
        .execute(&mut *tx)
        .await?;
    }
    ctx.task.complete(tx, 0).await
}
