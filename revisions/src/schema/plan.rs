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

#[cfg(test)]
mod tests {
    use super::*;

    /// The current AgenticShop layout, each table created by the upgrade and
    /// dropped by the downgrade; a re-run has no SQL (it is refused).
    #[test]
    fn offline_sql_creates_and_drops_every_table_of_the_current_layout() {
        let upgrade = SchemaPlanner.offline_sql(Direction::Upgrade).unwrap();
        let downgrade = SchemaPlanner.offline_sql(Direction::Downgrade).unwrap();
        for table in [
            "products",
            "users",
            "product_images",
            "features",
            "product_reviews",
            "variants",
            "variant_attributes",
            "personalized_product_sections",
            "product_features",
        ] {
            assert!(
                upgrade.contains(&format!("CREATE TABLE public.{table} (")),
                "{table} created"
            );
            assert!(
                downgrade.contains(&format!("DROP TABLE IF EXISTS public.{table};")),
                "{table} dropped"
            );
        }
        assert!(SchemaPlanner.offline_sql(Direction::Rerun).is_none());
    }
}
