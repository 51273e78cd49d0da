//! Revision 1b33292593a9: the application's tables, as the original
//! creates them. One task each way; the DDL and the task's completion
//! commit together, so a crash leaves either the whole schema or none.

use crate::runtime::{Completed, TaskContext};
use sqlx::{Connection, Executor};

pub const KINDS: &[&str] = &["upgrade", "downgrade"];

pub async fn execute(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    let sql = match ctx.task.kind.as_str() {
        "upgrade" => include_str!("../../sql/1b33292593a9.upgrade.sql"),
        "downgrade" => include_str!("../../sql/1b33292593a9.downgrade.sql"),
        other => anyhow::bail!("revision 1b33292593a9 has no task kind {other:?}"),
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
