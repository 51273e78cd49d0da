//! Revision cc30da9b96c1 (embeddings): what the embed workers do, in which
//! order.
//!
//! - phase 1, `prepare`: one task creates the embedding tables with the
//!   provider's dimension (and stops the run on a mismatch, before any spend);
//! - phase 2, `embed`: one task per `EMBED_TASK_ROWS` source rows (products,
//!   reviews, memories), cut at actual ids so that gaps in the ids do not
//!   make uneven tasks; the first range is open below and the last open
//!   above, so rows added while planning are still covered;
//! - phase 3, `finish`: per embedding table, delete the vectors of deleted
//!   rows and build the ANN index.
//!
//! A re-run (`orchestrator rerun cc30da9b96c1`) plans the same: the workers
//! skip rows whose content hash is unchanged, so only new and changed rows
//! reach the provider. A downgrade is one task that drops the tables.

use super::tasks::{EmbedPayload, EmbeddingsTask, FinishPayload, Source};
use crate::revision::Planner;
use serde_json::{json, Value};
use shared::catalogue::Role;
use shared::config::AnnIndex;
use shared::plan::{Phase, PlanContext, PlannedTask};

pub struct EmbeddingsPlanner;

/// The source tables, in planning order; a missing memory table is skipped
/// (no user has preferences), a missing product or review table is an error.
fn source_tables(memory_table: &str) -> [(Source, String); 3] {
    [
        (Source::Products, "public.products".to_string()),
        (Source::Reviews, "public.product_reviews".to_string()),
        (Source::Memories, format!("public.{memory_table}")),
    ]
}

/// The plan, from the ids at which each source's ranges start (pure: see
/// the tests): `prepare`, one `embed` task per range, then one `finish` per
/// embedding table.
pub fn embeddings_plan(starts: &[(Source, Vec<Value>)], index: AnnIndex) -> Vec<Phase> {
    let mut embed = Vec::new();
    for (source, bounds) in starts {
        let what = match source {
            Source::Products => "products",
            Source::Reviews => "reviews",
            Source::Memories => "memories",
        };
        for (i, from) in bounds.iter().enumerate() {
            let from = if i == 0 { Value::Null } else { from.clone() };
            let to = bounds.get(i + 1).cloned().unwrap_or(Value::Null);
            let label = format!(
                "{what} ids {} to {}",
                show(&from, "start"),
                show(&to, "end")
            );
            embed.push(PlannedTask::new(
                Role::Embed,
                label,
                &EmbeddingsTask::Embed(EmbedPayload {
                    source: *source,
                    from: (!from.is_null()).then_some(from),
                    to: (!to.is_null()).then_some(to),
                }),
            ));
        }
    }
    let finish = [Source::Products, Source::Reviews]
        .into_iter()
        .map(|source| {
            PlannedTask::new(
                Role::Embed,
                format!(
                    "{}: delete vectors of deleted rows; build the {index} index",
                    json!(source).as_str().unwrap_or_default()
                ),
                &EmbeddingsTask::Finish(FinishPayload { source }),
            )
        })
        .collect();
    vec![
        Phase::new(
            "prepare tables",
            vec![PlannedTask::new(
                Role::Embed,
                "create the embedding tables; check dimensions",
                &EmbeddingsTask::Prepare,
            )],
        ),
        Phase::new("embed", embed),
        Phase::new("prune and index", finish),
    ]
}

#[async_trait::async_trait]
impl Planner for EmbeddingsPlanner {
    async fn upgrade(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        let rows = ctx.config.embedding.task_rows;
        let mut starts = Vec::new();
        for (source, table) in source_tables(&ctx.config.memory_table) {
            if !crate::ranges::table_exists(ctx.pool, &table).await? {
                anyhow::ensure!(
                    source == Source::Memories,
                    "{table} does not exist: revision cc30da9b96c1 needs the schema and seed revisions applied first"
                );
                continue;
            }
            let bounds =
                crate::ranges::range_starts(ctx.pool, &table, rows, source == Source::Memories)
                    .await?;
            starts.push((source, bounds));
        }
        Ok(embeddings_plan(&starts, ctx.config.embedding.index))
    }

    /// The same as an upgrade: the workers skip rows whose content hash is
    /// unchanged.
    async fn rerun(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        self.upgrade(ctx).await
    }

    async fn downgrade(&self, _ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        Ok(Phase::single(
            "drop embedding tables",
            Role::Embed,
            "drop the embedding tables; clear the memories' vectors",
            &EmbeddingsTask::Downgrade,
        ))
    }
}

fn show(bound: &Value, open: &str) -> String {
    match bound {
        Value::Null => open.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_start_at_actual_ids_and_are_open_at_both_ends() {
        let starts = vec![
            (Source::Products, vec![json!(1), json!(40), json!(95)]),
            (Source::Memories, vec![json!("0a"), json!("7f")]),
        ];
        let phases = embeddings_plan(&starts, AnnIndex::Hnsw);
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["prepare tables", "embed", "prune and index"]);
        let embed: Vec<(&str, &Value)> = phases[1]
            .tasks
            .iter()
            .map(|t| (t.label.as_str(), &t.payload))
            .collect();
        assert_eq!(embed.len(), 5);
        assert_eq!(embed[0].0, "products ids start to 40");
        assert_eq!(embed[0].1, &json!({"source": "products", "from": null, "to": 40}));
        assert_eq!(embed[1].0, "products ids 40 to 95");
        assert_eq!(embed[2].0, "products ids 95 to end");
        assert_eq!(embed[4].1, &json!({"source": "memories", "from": "7f", "to": null}));
        assert!(phases[1].tasks.iter().all(|t| t.kind == "embed"));
        assert_eq!(phases[2].tasks.len(), 2);
        assert!(phases[2].tasks[1].label.starts_with("reviews: "));
    }

    #[test]
    fn an_empty_table_still_gets_one_open_range() {
        let phases = embeddings_plan(&[(Source::Reviews, vec![Value::Null])], AnnIndex::Hnsw);
        assert_eq!(phases[1].tasks.len(), 1);
        assert_eq!(phases[1].tasks[0].label, "reviews ids start to end");
    }
}
