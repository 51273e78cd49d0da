//! What a worker does with one task, per revision: one file per revision,
//! each exposing the task kinds it executes. Adding a revision is adding its
//! file and its lines in [`knows`] and [`execute`].

use crate::runtime::{Completed, TaskContext};
use futures_util::future::{BoxFuture, FutureExt};
use shared::catalogue;

pub mod embeddings;
pub mod noop;
pub mod schema;
pub mod seed;

/// State shared by every task of one worker process (models, clients):
/// built on first use, kept for the life of the process.
#[derive(Default)]
pub struct ProcessState {
    /// The embedding provider: one per process, so the local model's
    /// weights load once and HTTP connections are reused across tasks.
    embedder: tokio::sync::OnceCell<std::sync::Arc<dyn providers::embed::Embedder>>,
}

impl ProcessState {
    /// The provider `EMBEDDING_PROVIDER` names, made on first use.
    pub async fn embedder(
        &self,
        config: &shared::Config,
    ) -> anyhow::Result<std::sync::Arc<dyn providers::embed::Embedder>> {
        let made = self
            .embedder
            .get_or_try_init(|| async {
                let settings = config.clone();
                // Loading a local model reads and converts its weights: not on the async threads.
                tokio::task::spawn_blocking(move || providers::embed::from_config(&settings))
                    .await
                    .map_err(|e| anyhow::anyhow!("loading the embedding provider panicked: {e}"))?
            })
            .await?;
        Ok(made.clone())
    }
}

/// Whether this worker can execute tasks of this revision and kind.
pub fn knows(revision: &str, kind: &str) -> bool {
    match revision {
        catalogue::SCHEMA => schema::KINDS.contains(&kind),
        catalogue::SEED => seed::KINDS.contains(&kind),
        catalogue::EMBEDDINGS => embeddings::KINDS.contains(&kind),
        catalogue::BENCH_NOOP => noop::KINDS.contains(&kind),
        _ => false,
    }
}

/// Boxed so that the runtime's spawned futures are provably `Send` whatever
/// the executors borrow.
pub fn execute(ctx: TaskContext<'_>) -> BoxFuture<'_, anyhow::Result<Completed>> {
    match ctx.task.revision.as_str() {
        catalogue::SCHEMA => schema::execute(ctx).boxed(),
        catalogue::SEED => seed::execute(ctx).boxed(),
        catalogue::EMBEDDINGS => embeddings::execute(ctx).boxed(),
        catalogue::BENCH_NOOP => noop::execute(ctx).boxed(),
        other => {
            let error = anyhow::anyhow!("no executor for revision {other}");
            async move { Err(error) }.boxed()
        }
    }
}
