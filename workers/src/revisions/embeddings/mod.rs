//! Revision cc30da9b96c1 (embeddings): vectors for every product, review and
//! memory, made by `embed` workers that any number of processes share.
//!
//! Task kinds, in the phases the planner orders them:
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

use crate::runtime::{Completed, TaskContext};
use serde::Deserialize;
use sqlx::Connection;

pub mod index;
pub mod sources;
pub mod tables;
pub mod write;

pub use tables::EmbeddingTable;

pub const KINDS: &[&str] = &["prepare", "embed", "finish", "downgrade"];

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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedPayload {
    pub source: Source,
    pub from: Option<serde_json::Value>,
    pub to: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishPayload {
    pub source: Source,
}

pub async fn execute(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    match ctx.task.kind.as_str() {
        "prepare" => tables::prepare(ctx).await,
        "embed" => {
            let payload: EmbedPayload = ctx.task.payload()?;
            match payload.source {
                Source::Products | Source::Reviews => sources::embed_documents(ctx, &payload).await,
                Source::Memories => sources::embed_memories(ctx, &payload).await,
            }
        }
        "finish" => {
            let payload: FinishPayload = ctx.task.payload()?;
            index::finish(ctx, payload.source).await
        }
        "downgrade" => downgrade(ctx).await,
        other => anyhow::bail!("revision cc30da9b96c1 has no task kind {other:?}"),
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
