//! Revision 1b33292593a9 (schema): one DDL task each way.

use super::SchemaTask;
use crate::revision::Planner;
use shared::catalogue::Role;
use shared::plan::{Phase, PlanContext};

pub struct SchemaPlanner;

#[async_trait::async_trait]
impl Planner for SchemaPlanner {
    async fn upgrade(&self, _ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        Ok(Phase::single(
            "create tables",
            Role::Seed,
            "create the application tables",
            &SchemaTask::Upgrade,
        ))
    }

    async fn downgrade(&self, _ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        Ok(Phase::single(
            "drop tables",
            Role::Seed,
            "drop the application tables",
            &SchemaTask::Downgrade,
        ))
    }
}
