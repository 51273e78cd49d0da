//! Revision 1b33292593a9 (schema): the application's tables, as the original
//! creates them. One task each way, run by a seed worker (the role that owns
//! the application tables); the DDL and the task's completion commit
//! together, so a crash leaves either the whole schema or none.

use crate::revision::{Executor, Revision};
use serde::{Deserialize, Serialize};
use shared::exec::{Completed, TaskContext};
use sqlx::{Connection, Executor as _};

mod plan;

pub const REVISION: Revision = Revision {
    id: shared::catalogue::SCHEMA,
    name: "schema",
    summary: "tables, enum, foreign keys and indexes of the application",
    planner: &plan::SchemaPlanner,
    executor: |_| Box::new(SchemaExecutor),
};

/// The SQL that creates the application's tables (also what a test uses to
/// make a database "the original started", and what `upgrade --sql` prints).
pub const UPGRADE_SQL: &str = include_str!("1b33292593a9.upgrade.sql");
pub const DOWNGRADE_SQL: &str = include_str!("1b33292593a9.downgrade.sql");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SchemaTask {
    Upgrade,
    Downgrade,
}

struct SchemaExecutor;

#[async_trait::async_trait]
impl Executor for SchemaExecutor {
    async fn execute(&self, ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
        let sql = match ctx.task.typed()? {
            SchemaTask::Upgrade => UPGRADE_SQL,
            SchemaTask::Downgrade => DOWNGRADE_SQL,
        };
        let mut tx = ctx.conn.begin().await?;
        (&mut *tx).execute(sql).await.map_err(|e| {
            anyhow::anyhow!(
                "revision 1b33292593a9 {}: {e} (is the schema already there, made outside the pipeline?)",
                ctx.task.kind
            )
        })?;
        ctx.task.complete(tx, 0).await
    }
}
