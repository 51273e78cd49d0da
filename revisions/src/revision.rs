//! What a revision is to the rest of the code: its id, its [`Planner`] (what
//! tasks, in what phases) and its [`Executor`] (what a worker does with one
//! task). Each folder of this crate makes one [`Revision`] value; the
//! registry lists them.

use shared::exec::{Completed, TaskContext};
use shared::plan::{Direction, Phase, PlanContext};

/// A revision this version can run.
pub struct Revision {
    /// Its id in the Alembic chain, or
    /// `shared::catalogue::BENCH_NOOP` for the diagnostic one.
    pub id: &'static str,
    /// Its name (`upgrade seed`, `history`).
    pub name: &'static str,
    /// What it does, in one line (`history`, `show`).
    pub summary: &'static str,
    pub planner: &'static dyn Planner,
    /// Builds the revision's executor, once per worker process; the executor
    /// owns the clients it needs (the embedder, later the LLM client).
    pub executor: fn(&shared::Config) -> Box<dyn Executor>,
}

impl std::fmt::Debug for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.id, self.name)
    }
}

impl Revision {
    /// Plans a move of this revision.
    pub async fn plan(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        if ctx.rerun.prune && !self.planner.prunes() {
            anyhow::bail!(
                "this revision has no --prune re-run (only the seed revision deletes rows gone from its files); run it without --prune"
            );
        }
        match ctx.direction {
            Direction::Upgrade => self.planner.upgrade(ctx).await,
            Direction::Downgrade => self.planner.downgrade(ctx).await,
            Direction::Rerun if ctx.rerun.full => self.planner.rerun_full(ctx).await,
            Direction::Rerun => self.planner.rerun(ctx).await,
        }
    }
}

/// Which tasks, in which phases, a revision's move takes.
#[async_trait::async_trait]
pub trait Planner: Send + Sync {
    /// Checks, before a run that crosses this revision starts (and so before
    /// any revision of it changes anything), the settings it will need.
    fn preflight(&self, _config: &shared::Config) -> anyhow::Result<()> {
        Ok(())
    }

    async fn upgrade(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>>;

    /// The SQL of an upgrade or downgrade of this revision when it is pure
    /// DDL, for `--sql` (offline mode, no database): the very statements its
    /// executor runs, each ending with `;`, comments allowed. `None` (the
    /// default): it moves data, and cannot run offline.
    fn offline_sql(&self, _direction: Direction) -> Option<String> {
        None
    }

    /// Undoing the revision. By default nothing needs doing: the revision
    /// is recorded undone with no task (the extensions revision leaves its
    /// extensions, as the original's downgrade does). A revision whose
    /// downgrade is one task returns [`Phase::single`].
    async fn downgrade(&self, _ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        Ok(Vec::new())
    }

    /// Running an applied revision again. By default there is nothing to
    /// re-run.
    async fn rerun(&self, _ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        anyhow::bail!("this revision has nothing to re-run")
    }

    /// Whether a re-run of it takes `--prune` (reads `ctx.rerun.prune`).
    fn prunes(&self) -> bool {
        false
    }

    /// `rerun --full`: rebuilding from scratch where a re-run otherwise
    /// changes only what changed. By default there is no such thing.
    async fn rerun_full(&self, _ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        anyhow::bail!(
            "this revision has no --full re-run (only the graph revision rebuilds from scratch); run it without --full"
        )
    }

    /// Called after a failed run of this revision has settled (no task in
    /// flight), to undo partial effects where the revision promises all or
    /// nothing. Returns true when it undid them, in which case the next
    /// attempt starts afresh instead of resuming.
    async fn undo_partial(
        &self,
        _ctx: &PlanContext<'_>,
        _revision_run_id: i64,
    ) -> anyhow::Result<bool> {
        Ok(false)
    }

    /// Lines about a run of this revision beyond its tasks' states (what it
    /// cost, what failed), for `status` and the end of `upgrade`.
    async fn report(
        &self,
        _pool: &sqlx::PgPool,
        _revision_run_id: i64,
    ) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// What a worker does with one task of a revision. Built once per worker
/// process ([`Revision::executor`]).
#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// Writes the task's effect and completes it in one transaction
    /// ([`shared::exec::ClaimedTask::complete`]).
    async fn execute(&self, ctx: TaskContext<'_>) -> anyhow::Result<Completed>;
}
