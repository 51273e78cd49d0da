//! Revision 7a35c0d9d159 (extensions), the base of the current original
//! chain: the `vector` (pgvector) and `age` (Apache AGE) extensions, and
//! `pg_diskann` where the server has it.
//!
//! The planner looks at `pg_available_extensions` and says which will be
//! created and which the server does not have; `vector` and `age` are
//! required (the later revisions need them), `pg_diskann` is optional. One
//! task creates them in the transaction that completes it and logs which it
//! created and which were there already. Its downgrade leaves the
//! extensions in place, as the original's does (the default of
//! [`crate::Planner::downgrade`]: nothing to do).

use crate::revision::{Executor, Planner, Revision};
use serde::{Deserialize, Serialize};
use shared::catalogue::Role;
use shared::exec::{Completed, Permanent, TaskContext};
use shared::plan::{Direction, Phase, PlanContext};
use sqlx::{Connection, Executor as _};

pub const REVISION: Revision = Revision {
    id: shared::catalogue::EXTENSIONS,
    name: "extensions",
    summary: "the vector and age extensions (and pg_diskann where the server has it)",
    planner: &ExtensionsPlanner,
    executor: |_| Box::new(ExtensionsExecutor),
};

/// Extensions the chain needs, in creation order.
pub const REQUIRED: [&str; 2] = ["vector", "age"];
/// Extensions created only where the server has them.
pub const OPTIONAL: [&str; 1] = ["pg_diskann"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExtensionsTask {
    Create {
        /// In creation order; every one available on the server at planning.
        extensions: Vec<String>,
    },
}

/// What to create, from what the server offers: `(create, absent)`, or the
/// error naming the required extensions the server lacks.
pub fn choose(available: &[String]) -> Result<(Vec<String>, Vec<String>), String> {
    let has = |name: &str| available.iter().any(|a| a == name);
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|r| !has(r)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "this PostgreSQL server does not have the {} extension(s) ({} not in pg_available_extensions); \
             install them on the server (scripts/services.sh and docker/ set one up), then run the command again",
            missing.join(" and "),
            missing.join(", ")
        ));
    }
    let (create, absent): (Vec<&str>, Vec<&str>) = REQUIRED
        .iter()
        .chain(OPTIONAL.iter())
        .copied()
        .partition(|name| has(name));
    Ok((
        create.into_iter().map(String::from).collect(),
        absent.into_iter().map(String::from).collect(),
    ))
}

/// The statement that creates one extension (run by the executor, printed
/// by `upgrade --sql`).
pub fn create_sql(name: &str) -> String {
    format!("CREATE EXTENSION IF NOT EXISTS {name} CASCADE")
}

struct ExtensionsPlanner;

#[async_trait::async_trait]
impl Planner for ExtensionsPlanner {
    /// Offline, what the server has is not known: the required extensions,
    /// and the optional ones as comments (online, created where the server
    /// has them). The downgrade leaves them: no statement.
    fn offline_sql(&self, direction: Direction) -> Option<String> {
        match direction {
            Direction::Upgrade => {
                let required = REQUIRED.iter().map(|name| format!("{};\n", create_sql(name)));
                let optional = OPTIONAL.iter().map(|name| {
                    format!("-- only where the server has it (online, pg_available_extensions decides):\n-- {};\n", create_sql(name))
                });
                Some(required.chain(optional).collect())
            }
            Direction::Downgrade => Some(
                "-- nothing: the downgrade leaves the extensions, as the original's does\n".into(),
            ),
            Direction::Rerun => None,
        }
    }

    async fn upgrade(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        let wanted: Vec<&str> = REQUIRED.iter().chain(OPTIONAL.iter()).copied().collect();
        let available: Vec<String> = sqlx::query_scalar(
            "SELECT name::text FROM pg_available_extensions WHERE name = ANY($1)",
        )
        .bind(&wanted)
        .fetch_all(ctx.pool)
        .await?;
        let (create, absent) = choose(&available).map_err(anyhow::Error::msg)?;
        shared::say!(
            "extensions: creating {} (where not there yet); absent on this server: {}",
            create.join(", "),
            if absent.is_empty() {
                "none".to_string()
            } else {
                absent.join(", ")
            }
        );
        Ok(Phase::single(
            "create extensions",
            Role::Seed,
            format!("create extensions {}", create.join(", ")),
            &ExtensionsTask::Create { extensions: create },
        ))
    }
}

struct ExtensionsExecutor;

#[async_trait::async_trait]
impl Executor for ExtensionsExecutor {
    async fn execute(&self, ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
        let ExtensionsTask::Create { extensions } = ctx.task.typed()?;
        let mut tx = ctx.conn.begin().await?;
        let present: Vec<String> =
            sqlx::query_scalar("SELECT extname::text FROM pg_extension WHERE extname = ANY($1)")
                .bind(&extensions)
                .fetch_all(&mut *tx)
                .await?;
        let mut created = Vec::new();
        for name in &extensions {
            // Only names of REQUIRED and OPTIONAL reach here: check, since
            // an identifier cannot be a bind parameter.
            if !REQUIRED.contains(&name.as_str()) && !OPTIONAL.contains(&name.as_str()) {
                return Err(Permanent::new(format!("{name:?} is not an extension of revision 7a35c0d9d159")).into());
            }
            if present.contains(name) {
                continue;
            }
            (&mut *tx)
                .execute(create_sql(name).as_str())
                .await
                .map_err(|e| Permanent::new(format!("creating extension {name}: {e}")))?;
            created.push(name.as_str());
        }
        tracing::info!(
            "revision 7a35c0d9d159: created extension(s) {}; already there: {}",
            if created.is_empty() { "none".to_string() } else { created.join(", ") },
            if present.is_empty() { "none".to_string() } else { present.join(", ") }
        );
        ctx.task.complete(tx, 0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pg_diskann_is_created_where_the_server_has_it_and_reported_absent_elsewhere() {
        assert_eq!(
            choose(&names(&["age", "pg_diskann", "vector"])),
            Ok((names(&["vector", "age", "pg_diskann"]), vec![]))
        );
        assert_eq!(
            choose(&names(&["vector", "age"])),
            Ok((names(&["vector", "age"]), names(&["pg_diskann"])))
        );
    }

    #[test]
    fn a_server_without_age_is_refused_naming_it() {
        let e = choose(&names(&["vector"])).unwrap_err();
        assert!(e.contains("age"), "{e}");
        assert!(!e.contains("vector extension"), "{e}");
    }
}
