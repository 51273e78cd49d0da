//! Diagnostic no-op tasks: `orchestrator bench runtime` pushes them through
//! the whole path to measure the pipeline's own overhead. A payload may ask
//! for simulated work (`sleep_ms`, before the completing transaction) and a
//! visible effect (`mark`: a row in `pipeline.noop_marks`, written in that
//! transaction), which is how tests see that an effect happened exactly once,
//! and failures (`fail_attempts`), which is how they see retries.

use crate::runtime::{Completed, TaskContext};
use serde::Deserialize;
use sqlx::Connection;
use std::time::Duration;

pub const KINDS: &[&str] = &["noop"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoopPayload {
    #[serde(default)]
    sleep_ms: u64,
    #[serde(default)]
    mark: bool,
    /// Fail this many attempts before succeeding (exercises retries and
    /// dead-lettering).
    #[serde(default)]
    fail_attempts: i32,
}

pub async fn execute(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    let payload: NoopPayload = ctx.task.payload()?;
    if ctx.task.attempt <= payload.fail_attempts {
        anyhow::bail!(
            "no-op task failing on purpose (attempt {} of the {} asked to fail)",
            ctx.task.attempt,
            payload.fail_attempts
        );
    }
    if payload.sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(payload.sleep_ms)).await;
    }
    let mut tx = ctx.conn.begin().await?;
    if payload.mark {
        sqlx::query("INSERT INTO pipeline.noop_marks (task_id, worker) VALUES ($1, $2)")
            .bind(ctx.task.id)
            .bind(std::process::id().to_string())
            .execute(&mut *tx)
            .await?;
    }
    ctx.task.complete(tx, 1).await
}
