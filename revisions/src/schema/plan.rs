//! Revision 1b33292593a9 (schema): one DDL task each way.

use super::SchemaTask;
use crate::revision::Planner;
use shared::catalogue::Role;
use shared::plan::{Direction, Phase, PlanContext};

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

    /// What the executor runs (`super::UPGRADE_SQL`, `super::DOWNGRADE_SQL`).
    fn offline_sql(&self, direction: Direction) -> Option<String> {
        match direction {
            Direction::Upgrade => Some(super::UPGRADE_SQL.to_string()),
            Direction::Downgrade => Some(super::DOWNGRADE_SQL.to_string()),
            Direction::Rerun => None,
        }
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
