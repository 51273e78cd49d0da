//! Revision f41ba96cab17 (graph): the Apache AGE graph `product_review_graph`
//! that the shop queries, built by `graph` workers.
//!
//! - vertices `Product {id, name, category}`, `Review {id, product_id,
//!   feature_id, sentiment, text}`, `Feature {id, name, categories}`;
//! - edges `HAS_FEATURE` (product → feature, one per `product_features`
//!   row), `HAS_REVIEW` (product → review), and `positive_sentiment` /
//!   `negative_sentiment` / `neutral_sentiment` (review → feature, with
//!   `{sentiment, product_id, feature_id}`), see [`elements`].
//!
//! Never Cypher per row and never data in query text: the build writes the
//! label tables in bulk with computed graph ids ([`build`]); a re-run
//! changes only what differs ([`update`]). Phases and tasks: `plan.rs`.
//! The database's default `search_path` is left alone; the shop sets its
//! own, and the server preloads AGE (`scripts/services.sh`, the compose
//! image), as Azure's managed PostgreSQL does. The one database default the
//! build sets is `age.enable_containment = off` (`GRAPH_PROPERTY_MATCH`,
//! see [`build::index`] for why the shop's query needs it to be fast).
//!
//! `downgrade` drops the graph.

use crate::revision::{Executor, Revision};
use shared::exec::{Completed, TaskContext};
use sqlx::{Connection, Executor as _};

pub mod build;
pub mod elements;
pub mod labels;
mod plan;
pub mod tasks;
pub mod update;

pub use labels::GRAPH_NAME;
pub use tasks::{GraphTask, Slice, Source};

pub const REVISION: Revision = Revision {
    id: shared::catalogue::GRAPH,
    name: "graph",
    summary: "Apache AGE graph of products, reviews and features",
    planner: &plan::GraphPlanner,
    executor: |_| Box::new(GraphExecutor),
};

const DOWNGRADE_SQL: &str = include_str!("f41ba96cab17.downgrade.sql");

struct GraphExecutor;

#[async_trait::async_trait]
impl Executor for GraphExecutor {
    async fn execute(&self, ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
        match ctx.task.typed()? {
            GraphTask::Prepare => build::prepare(ctx).await,
            GraphTask::Vertices(slice) => build::vertices(ctx, slice).await,
            GraphTask::Edges(slice) => build::edges(ctx, slice).await,
            GraphTask::Index(payload) => build::index(ctx, payload).await,
            GraphTask::Publish(payload) => build::publish(ctx, payload).await,
            GraphTask::PrepareUpdate => update::prepare(ctx).await,
            GraphTask::Diff(slice) => update::diff(ctx, slice).await,
            GraphTask::Apply => update::apply(ctx).await,
            GraphTask::Downgrade => downgrade(ctx).await,
        }
    }
}

async fn downgrade(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    let mut tx = ctx.conn.begin().await?;
    (&mut *tx)
        .execute(DOWNGRADE_SQL)
        .await
        .map_err(|e| anyhow::anyhow!("revision f41ba96cab17 downgrade: {e}"))?;
    ctx.task.complete(tx, 0).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_published_graph_carries_the_mark_incremental_re_runs_look_for() {
        let publish = include_str!("f41ba96cab17.publish.sql");
        assert!(
            publish.contains(&format!("IS '{}'", super::labels::BUILT_MARK)),
            "f41ba96cab17.publish.sql must comment the schema with BUILT_MARK"
        );
    }
}
