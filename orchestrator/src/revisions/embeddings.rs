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

use super::Planner;
use crate::plan::{Direction, Phase, PlanContext, PlannedTask};
use serde_json::{json, Value};
use shared::catalogue::Role;
use sqlx::PgPool;

pub struct EmbeddingsPlanner;

#[async_trait::async_trait]
impl Planner for EmbeddingsPlanner {
    async fn plan(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        if ctx.direction == Direction::Downgrade {
            return Ok(vec![Phase::new(
                "drop embedding tables",
                vec![PlannedTask::new(
                    Role::Embed,
                    "downgrade",
                    "drop the embedding tables; clear the memories' vectors",
                    json!({}),
                )],
            )]);
        }
        let rows = ctx.config.embedding.task_rows;
        let memory = format!("public.{}", ctx.config.memory_table);
        let mut embed = Vec::new();
        for (source, table, what) in [
            ("products", "public.products", "products"),
            ("reviews", "public.product_reviews", "reviews"),
            ("memories", memory.as_str(), "memories"),
        ] {
            if !exists(ctx.pool, table).await? {
                anyhow::ensure!(
                    source == "memories",
                    "{table} does not exist: revision cc30da9b96c1 needs the schema and seed revisions applied first"
                );
                continue;
            }
            let bounds = range_starts(ctx.pool, table, rows, source == "memories").await?;
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
                    "embed",
                    label,
                    json!({"source": source, "from": from, "to": to}),
                ));
            }
        }
        let finish = ["products", "reviews"]
            .into_iter()
            .map(|source| {
                PlannedTask::new(
                    Role::Embed,
                    "finish",
                    format!(
                        "{source}: delete vectors of deleted rows; build the {} index",
                        ctx.config.embedding.index
                    ),
                    json!({"source": source}),
                )
            })
            .collect();
        Ok(vec![
            Phase::new(
                "prepare tables",
                vec![PlannedTask::new(
                    Role::Embed,
                    "prepare",
                    "create the embedding tables; check dimensions",
                    json!({}),
                )],
            ),
            Phase::new("embed", embed),
            Phase::new("prune and index", finish),
        ])
    }
}

fn show(bound: &Value, open: &str) -> String {
    match bound {
        Value::Null => open.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn exists(pool: &PgPool, table: &str) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(pool)
        .await?)
}

/// The id at which each range starts: every `rows`-th id in order (at least
/// one range, even for an empty table).
async fn range_starts(
    pool: &PgPool,
    table: &str,
    rows: i64,
    uuid_ids: bool,
) -> anyhow::Result<Vec<Value>> {
    let id = if uuid_ids { "id::text" } else { "id::bigint" };
    let sql = format!(
        "SELECT {id} FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM {table}) t
          WHERE (n - 1) % $1 = 0 ORDER BY n"
    );
    let starts: Vec<Value> = if uuid_ids {
        sqlx::query_scalar::<_, String>(&sql)
            .bind(rows)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(Value::String)
            .collect()
    } else {
        sqlx::query_scalar::<_, i64>(&sql)
            .bind(rows)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|v| json!(v))
            .collect()
    };
    Ok(if starts.is_empty() {
        vec![Value::Null]
    } else {
        starts
    })
}
