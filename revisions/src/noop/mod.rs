//! Diagnostic no-op tasks: `orchestrator bench runtime` pushes them through
//! the whole path to measure the pipeline's own overhead. A task may ask for
//! simulated work (`sleep_ms`, before the completing transaction, or in a
//! statement inside it with `sleep_in_database`) and a
//! visible effect (`mark`: a row in `pipeline.noop_marks`, written in that
//! transaction), which is how tests see that an effect happened exactly once,
//! and failures (`fail_attempts`, `panic`), which is how they see retries
//! and a panicking executor.
//!
//! Not a revision of the chain: it is registered as diagnostic, planned by
//! the benchmark itself, and its task rows belong to ad-hoc revision runs.

use crate::revision::{Executor, Planner, Revision};
use serde::{Deserialize, Serialize};
use shared::exec::{Completed, TaskContext};
use shared::plan::{Phase, PlanContext};
use sqlx::Connection;
use std::time::Duration;

pub const REVISION: Revision = Revision {
    id: shared::catalogue::BENCH_NOOP,
    name: "bench-noop",
    summary: "no-op tasks that measure the pipeline's own overhead (orchestrator bench runtime)",
    planner: &NoopPlanner,
    executor: |_| Box::new(NoopExecutor),
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoopTask {
    Noop(NoopWork),
}

/// What a no-op task does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopWork {
    /// Simulated work per task.
    #[serde(default)]
    pub sleep_ms: u64,
    /// Spend `sleep_ms` in one database statement (`pg_sleep`) inside the
    /// completing transaction instead of in the worker: a task that hangs in
    /// the database (exercises deadlines and `statement_timeout`).
    #[serde(default)]
    pub sleep_in_database: bool,
    /// Write a row per task into `pipeline.noop_marks`.
    #[serde(default)]
    pub mark: bool,
    /// Fail this many attempts before succeeding (exercises retries and
    /// dead-lettering).
    #[serde(default)]
    pub fail_attempts: i32,
    /// Panic inside the completing transaction, after writing the mark
    /// (exercises the runtime's handling of a panicking executor).
    #[serde(default)]
    pub panic: bool,
}

/// Nothing to plan: the benchmark stores its own phase.
struct NoopPlanner;

#[async_trait::async_trait]
impl Planner for NoopPlanner {
    async fn upgrade(&self, _ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        anyhow::bail!("the diagnostic no-op revision is planned by `orchestrator bench runtime`")
    }
}

struct NoopExecutor;

#[async_trait::async_trait]
impl Executor for NoopExecutor {
    async fn execute(&self, ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
        let NoopTask::Noop(work) = ctx.task.typed::<NoopTask>()?;
        if ctx.task.attempt <= work.fail_attempts {
            anyhow::bail!(
                "no-op task failing on purpose (attempt {} of the {} asked to fail)",
                ctx.task.attempt,
                work.fail_attempts
            );
        }
        if work.sleep_ms > 0 && !work.sleep_in_database {
            tokio::time::sleep(Duration::from_millis(work.sleep_ms)).await;
        }
        let mut tx = ctx.conn.begin().await?;
        if work.sleep_ms > 0 && work.sleep_in_database {
            sqlx::query("SELECT pg_sleep($1)")
                .bind(work.sleep_ms as f64 / 1000.0)
                .execute(&mut *tx)
                .await?;
        }
        if work.mark {
            sqlx::query("INSERT INTO pipeline.noop_marks (task_id, worker) VALUES ($1, $2)")
                .bind(ctx.task.id)
                .bind(std::process::id().to_string())
                .execute(&mut *tx)
                .await?;
        }
        if work.panic {
            panic!("no-op task panicking on purpose, transaction open");
        }
        ctx.task.complete(tx, 1).await
    }
}
