//! Revision 1b33292593a9 (schema): one DDL task each way, run by a seed
//! worker (the role that owns the application tables).

use super::Planner;
use crate::plan::{Direction, Phase, PlanContext, PlannedTask};
use shared::catalogue::Role;

pub struct SchemaPlanner;

#[async_trait::async_trait]
impl Planner for SchemaPlanner {
    async fn plan(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        let (name, kind, label) = match ctx.direction {
            Direction::Upgrade => ("create tables", "upgrade", "create the application tables"),
            Direction::Downgrade => ("drop tables", "downgrade", "drop the application tables"),
            Direction::Rerun => {
                anyhow::bail!("revision 1b33292593a9 (schema) has nothing to re-run")
            }
        };
        Ok(vec![Phase::new(
            name,
            vec![PlannedTask::new(
                Role::Seed,
                kind,
                label,
                serde_json::json!({}),
            )],
        )])
    }
}
