//! What a worker does with one task, per revision: one file per revision,
//! each exposing the task kinds it executes. Adding a revision is adding its
//! file and its lines in [`knows`] and [`execute`].

use crate::runtime::{Completed, TaskContext};
use futures_util::future::{BoxFuture, FutureExt};
use shared::catalogue;

pub mod noop;
pub mod schema;

/// State shared by every task of one worker process (models, clients):
/// built on first use, kept for the life of the process.
#[derive(Default)]
pub struct ProcessState {}

/// Whether this worker can execute tasks of this revision and kind.
pub fn knows(revision: &str, kind: &str) -> bool {
    match revision {
        catalogue::SCHEMA => schema::KINDS.contains(&kind),
        catalogue::BENCH_NOOP => noop::KINDS.contains(&kind),
        _ => false,
    }
}

/// Boxed so that the runtime's spawned futures are provably `Send` whatever
/// the executors borrow.
pub fn execute(ctx: TaskContext<'_>) -> BoxFuture<'_, anyhow::Result<Completed>> {
    match ctx.task.revision.as_str() {
        catalogue::SCHEMA => schema::execute(ctx).boxed(),
        catalogue::BENCH_NOOP => noop::execute(ctx).boxed(),
        other => {
            let error = anyhow::anyhow!("no executor for revision {other}");
            async move { Err(error) }.boxed()
        }
    }
}
