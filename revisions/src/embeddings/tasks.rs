//! The embeddings revision's tasks ([`EmbeddingsTask`]), shared by the
//! planner (`plan.rs`) and the executor (`mod.rs`).

use serde::{Deserialize, Serialize};

/// The embeddings revision's tasks, shared by planner and executor.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EmbeddingsTask {
    Prepare,
    Embed(EmbedPayload),
    Finish(FinishPayload),
    Downgrade,
}

/// Which rows an embed or finish task works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Products,
    Reviews,
    Memories,
}

/// A half-open range of source ids, `[from, to)`; `None` is unbounded.
/// Integers for products and reviews, uuid strings for memories.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedPayload {
    pub source: Source,
    pub from: Option<serde_json::Value>,
    pub to: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FinishPayload {
    pub source: Source,
}
