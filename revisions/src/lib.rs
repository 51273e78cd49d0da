//! Planners: for each revision, which tasks in which phases. One file per
//! revision; adding a revision is adding its file and its line in
//! [`planner`].

use crate::plan::{Phase, PlanContext};
use shared::catalogue;

pub mod embeddings;
pub mod schema;
pub mod seed;

#[async_trait::async_trait]
pub trait Planner: Send + Sync {
    async fn plan(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>>;

    /// Called after a failed run of this revision has settled (no task in
    /// flight), to undo partial effects where the revision promises all or
    /// nothing. Returns true when it undid them, in which case the next
    /// attempt starts afresh instead of resuming.
    async fn undo_partial(
        &self,
        _ctx: &PlanContext<'_>,
        _revision_run_id: i64,
    ) -> anyhow::Result<bool> {
        Ok(false)
    }
}

/// The planner of a revision, if this version ships one.
pub fn planner(revision: &str) -> Option<Box<dyn Planner>> {
    match revision {
        catalogue::SCHEMA => Some(Box::new(schema::SchemaPlanner)),
        catalogue::SEED => Some(Box::new(seed::SeedPlanner)),
        catalogue::EMBEDDINGS => Some(Box::new(embeddings::EmbeddingsPlanner)),
        _ => None,
    }
}
