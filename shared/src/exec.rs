//! What an executor works with: the task it holds the claim of, the
//! connection that holds the claim, and the errors it may return.
//!
//! These types live in `shared` so that the worker runtime
//! (`workers/src/runtime.rs`) and the revisions (`revisions/src/*/`) both
//! depend on this module and not on each other. A [`Completed`] can only be
//! made by [`ClaimedTask::complete`], which marks the task done in the
//! transaction that holds its effect: an executor cannot report success
//! without having committed its effect and its completion together.

use crate::config::Config;
use crate::store;
use anyhow::Context as _;
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// A task this worker holds the claim of.
#[derive(Debug, Clone)]
pub struct ClaimedTask {
    pub id: i64,
    pub revision_run_id: i64,
    /// The run (`pipeline.runs`) the task belongs to.
    pub run_id: i64,
    pub revision: String,
    pub kind: String,
    pub phase: i32,
    /// The payload as stored, without its `kind` (which is in [`Self::kind`]).
    pub payload: Value,
    /// 1 for the first attempt.
    pub attempt: i32,
    pub max_attempts: i32,
}

/// Proof that a task was completed; only [`ClaimedTask::complete`] makes one.
#[derive(Debug)]
pub struct Completed {
    rows_done: i64,
}

impl Completed {
    pub fn rows_done(&self) -> i64 {
        self.rows_done
    }
}

impl From<store::ClaimedRow> for ClaimedTask {
    fn from(row: store::ClaimedRow) -> ClaimedTask {
        ClaimedTask {
            id: row.id,
            revision_run_id: row.revision_run_id,
            run_id: row.run_id,
            revision: row.revision,
            kind: row.kind,
            phase: row.phase,
            payload: row.payload,
            attempt: row.attempt,
            max_attempts: row.max_attempts,
        }
    }
}

impl ClaimedTask {
    /// Marks the task done inside `tx`, which holds the task's effect, and
    /// commits both together.
    pub async fn complete(
        &self,
        mut tx: Transaction<'_, Postgres>,
        rows_done: i64,
    ) -> anyhow::Result<Completed> {
        if !store::complete_task(&mut tx, self.id, rows_done).await? {
            tx.rollback().await.ok();
            anyhow::bail!(
                "task {} was no longer claimed by this worker; its effect was rolled back",
                self.id
            );
        }
        store::notify_task_change(&mut tx, self.revision_run_id).await?;
        tx.commit().await.context("committing the task's effect")?;
        Ok(Completed { rows_done })
    }

    /// The task as its revision's typed task enum (tagged by `kind`). A task
    /// this version cannot read is a [`Permanent`] error: no retry changes it.
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> anyhow::Result<T> {
        crate::plan::typed_task(&self.kind, &self.payload).map_err(|e| {
            Permanent::new(format!(
                "task {} (revision {}, kind {:?}) is not one this worker can execute: {e}",
                self.id, self.revision, self.kind
            ))
            .into()
        })
    }
}

/// What an executor gets: its task, the connection that holds the claim (run
/// the completing transaction on it), the pool for anything else, and the
/// configuration.
pub struct TaskContext<'a> {
    pub task: &'a ClaimedTask,
    pub conn: &'a mut PgConnection,
    pub pool: &'a PgPool,
    pub config: &'a Config,
}

/// An error that another attempt cannot cure (bad input data, a missing
/// file): the runtime fails the task at once instead of retrying it.
/// Executors return it with `Err(Permanent::new(reason).into())`, possibly
/// wrapped in context; the runtime looks for it anywhere in the chain.
#[derive(Debug)]
pub struct Permanent(String);

impl Permanent {
    pub fn new(reason: impl Into<String>) -> Permanent {
        Permanent(reason.into())
    }
}

impl std::fmt::Display for Permanent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Permanent {}

/// Not a failure: the task waits on work outside the pipeline (a provider's
/// batch job) and is to run again after about `after`, without counting an
/// attempt. The runtime puts its message through the delay queue, so no
/// consumer sleeps on it.
#[derive(Debug)]
pub struct CheckBack {
    pub after: std::time::Duration,
    pub reason: String,
}

impl std::fmt::Display for CheckBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "checking back in {:?}: {}", self.after, self.reason)
    }
}

impl std::error::Error for CheckBack {}

/// How an executor's error is to be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The database could not be reached: not the task's fault; it goes
    /// back uncounted.
    Transient,
    /// Another attempt may succeed (counted against `max_attempts`).
    Retryable,
    /// No attempt will succeed ([`Permanent`] anywhere in the chain).
    Permanent,
    /// Not a failure ([`CheckBack`]): run again later, uncounted.
    CheckBack(std::time::Duration),
}

impl FailureKind {
    pub fn of(e: &anyhow::Error) -> FailureKind {
        if let Some(wait) = e.chain().find_map(|c| c.downcast_ref::<CheckBack>()) {
            FailureKind::CheckBack(wait.after)
        } else if crate::db::is_transient_chain(e) {
            FailureKind::Transient
        } else if e.chain().any(|cause| cause.is::<Permanent>()) {
            FailureKind::Permanent
        } else {
            FailureKind::Retryable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Example {
        Upgrade,
        Load(LoadExample),
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct LoadExample {
        file: String,
    }

    fn task(kind: &str, payload: Value) -> ClaimedTask {
        ClaimedTask {
            id: 1,
            revision_run_id: 1,
            run_id: 1,
            revision: "r".into(),
            kind: kind.into(),
            phase: 0,
            payload,
            attempt: 1,
            max_attempts: 3,
        }
    }

    #[test]
    fn a_task_reads_back_as_its_typed_kind() {
        assert_eq!(
            task("upgrade", serde_json::json!({}))
                .typed::<Example>()
                .unwrap(),
            Example::Upgrade
        );
        assert_eq!(
            task("load", serde_json::json!({"file": "a.csv"}))
                .typed::<Example>()
                .unwrap(),
            Example::Load(LoadExample {
                file: "a.csv".into()
            })
        );
    }

    #[test]
    fn an_unknown_kind_or_field_is_a_permanent_error_naming_the_task() {
        let e = task("explode", serde_json::json!({}))
            .typed::<Example>()
            .unwrap_err();
        assert_eq!(FailureKind::of(&e), FailureKind::Permanent);
        assert!(e.to_string().contains("\"explode\""), "{e}");
        let e = task("load", serde_json::json!({"file": "a", "extra": 1}))
            .typed::<Example>()
            .unwrap_err();
        assert_eq!(FailureKind::of(&e), FailureKind::Permanent);
    }
}
