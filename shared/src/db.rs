//! Database helpers both sides use: connecting (with patience while the
//! server starts), the pipeline's own tables, the advisory-lock keys and the
//! notification channel.

use crate::backoff::{Backoff, Verdict};
use crate::config::Config;
use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// Channel on which workers announce task state changes (payload: the
/// revision run id), so the orchestrator waits without polling hard.
pub const TASK_CHANNEL: &str = "pipeline_tasks";

/// `application_name` of every pipeline connection (visible in
/// `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "agenticshop-pipeline";

/// Key of the run lock (two-int form, so it never collides with a task lock,
/// which uses the bigint form).
pub const RUN_LOCK: (i32, i32) = (0x4147_5348, 1);

/// Opens a pool, retrying with back-off for up to `patience` while the
/// server does not answer (it may be starting or restarting).
pub async fn connect(
    config: &Config,
    max_connections: u32,
    patience: Duration,
) -> anyhow::Result<PgPool> {
    connect_with_settings(config, max_connections, patience, &[]).await
}

/// [`connect`], with server settings for every connection of the pool
/// (`("lock_timeout", "5s")`).
pub async fn connect_with_settings(
    config: &Config,
    max_connections: u32,
    patience: Duration,
    settings: &[(&str, String)],
) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(config.database_url.expose())
        .with_context(|| {
            format!(
                "DATABASE_URL {} is not a valid PostgreSQL URL",
                config.database_url
            )
        })?
        .application_name(APPLICATION_NAME)
        .options(settings.iter().map(|(k, v)| (*k, v.as_str())));
    let policy =
        Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).with_patience(patience);
    crate::backoff::retry(
        policy,
        || {
            PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.clone())
        },
        |e| {
            if is_transient(e) {
                Verdict::Retry
            } else {
                Verdict::Stop
            }
        },
        |e, delay| {
            tracing::warn!(
                "database at {} not reachable ({e}); retrying in {delay:?}",
                config.database_url
            )
        },
    )
    .await
    .map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "cannot connect to the database at {}",
            config.database_url
        ))
    })
}

/// Connections a worker process opens at most with `concurrency` slots:
/// each task's claim connection, one more per slot for what its executor and
/// lease renewal take from the pool, and two for the process itself.
pub fn worker_connections(concurrency: usize) -> u32 {
    u32::try_from(concurrency)
        .unwrap_or(u32::MAX)
        .saturating_mul(2)
        .saturating_add(2)
}

/// What the server allows, as `check_connection_budget` read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// `max_connections`.
    pub max: i64,
    /// `superuser_reserved_connections` plus `reserved_connections` (16+).
    pub reserved: i64,
    /// Client connections open now, this process's own excluded.
    pub in_use_by_others: i64,
}

impl ConnectionBudget {
    /// Connections ordinary roles may open at all.
    pub fn ceiling(&self) -> i64 {
        self.max - self.reserved
    }

    /// Connections free beside the ones open now.
    pub fn free(&self) -> i64 {
        self.ceiling() - self.in_use_by_others
    }

    /// Refuses `wanted` connections that could never all be open (more than
    /// the server allows anyone but a superuser); `Ok(Some(warning))` when
    /// they exceed what is free beside the connections open now (those may
    /// close, so this is only said). `who` is what wants them and why.
    pub fn admit(&self, wanted: u32, who: &str) -> anyhow::Result<Option<String>> {
        let wanted = i64::from(wanted);
        if wanted > self.ceiling() {
            anyhow::bail!(
                "{who} opens up to {wanted} database connections, but the server allows {} \
                 (max_connections {} less {} reserved: superuser_reserved_connections and reserved_connections); \
                 lower the setting, or raise max_connections on the server",
                self.ceiling(),
                self.max,
                self.reserved
            );
        }
        Ok((wanted > self.free()).then(|| {
            format!(
                "{who} opens up to {wanted} database connections, and only {} of the server's {} are free now \
                 ({} in use by other clients); tasks may wait for a connection",
                self.free().max(0),
                self.ceiling(),
                self.in_use_by_others
            )
        }))
    }
}

/// Reads the server's connection limits through `pool` (whose own open
/// connections are not counted as in use by others).
pub async fn connection_budget(pool: &PgPool) -> anyhow::Result<ConnectionBudget> {
    let (max, reserved, in_use): (i64, i64, i64) = sqlx::query_as(
        "SELECT current_setting('max_connections')::bigint,
                current_setting('superuser_reserved_connections')::bigint
                  + coalesce(current_setting('reserved_connections', true)::bigint, 0),
                (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
    )
    .fetch_one(pool)
    .await
    .context("reading max_connections and the connections in use")?;
    Ok(ConnectionBudget {
        max,
        reserved,
        in_use_by_others: (in_use - i64::from(pool.size())).max(0),
    })
}

/// Checks at start that `wanted` connections fit the server
/// ([`ConnectionBudget::admit`]): an error when they never can, a logged
/// warning when they do not fit beside the ones open now.
pub async fn check_connection_budget(pool: &PgPool, wanted: u32, who: &str) -> anyhow::Result<()> {
    if let Some(warning) = connection_budget(pool).await?.admit(wanted, who)? {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// Gives every statement on `conn` from now on at most `limit`
/// (`statement_timeout`), and returns the connection's backend pid, by
/// which [`terminate_backend`] can stop it from another connection.
pub async fn limit_statements(conn: &mut PgConnection, limit: Duration) -> anyhow::Result<i32> {
    let (pid, _): (i32, String) =
        sqlx::query_as("SELECT pg_backend_pid(), set_config('statement_timeout', $1, false)")
            .bind(format!("{}ms", limit.as_millis()))
            .fetch_one(conn)
            .await?;
    Ok(pid)
}

/// Ends another connection's backend (its statement, its transaction, its
/// advisory locks), waiting up to 5 s for it to be gone.
pub async fn terminate_backend(pool: &PgPool, pid: i32) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .execute(pool)
        .await
        .with_context(|| format!("terminating database backend {pid}"))?;
    Ok(())
}

/// Errors that a retry may cure: the server is down, restarting, or the
/// connection broke.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(io) if crate::backoff::is_tls_refusal(io) => false,
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // admin shutdown, crash shutdown, cannot connect now, too many connections
            Some("57P01")
                | Some("57P02")
                | Some("57P03")
                | Some("53300")
                | Some("08006")
                | Some("08001")
                | Some("08004")
        ),
        _ => false,
    }
}

/// True when the error, anywhere in its chain, is a transient database error.
pub fn is_transient_chain(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(is_transient)
    })
}

/// The same server URL with another database name.
pub fn url_with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).context("DATABASE_URL is not a URL")?;
    parsed.set_path(&format!("/{database}"));
    Ok(parsed.to_string())
}

/// `public.alembic_version`, made with the pipeline's tables (and printed
/// by `upgrade --sql` from base).
pub const ALEMBIC_VERSION_SQL: &str = include_str!("../sql/alembic_version.sql");

/// Creates or updates the pipeline's own tables and `alembic_version`.
pub async fn ensure_pipeline_schema(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
        .bind(RUN_LOCK.0)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(include_str!("../sql/pipeline.sql"))
        .execute(&mut *tx)
        .await
        .context("creating the pipeline tables")?;
    sqlx::raw_sql(ALEMBIC_VERSION_SQL)
        .execute(&mut *tx)
        .await
        .context("creating public.alembic_version")?;
    tx.commit().await?;
    Ok(())
}

/// What `public.alembic_version` holds (`None`: no table, or no row).
pub async fn current_revision<'e, E>(executor: E) -> anyhow::Result<Option<String>>
where
    E: sqlx::Executor<'e, Database = Postgres> + Copy,
{
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public.alembic_version') IS NOT NULL")
            .fetch_one(executor)
            .await?;
    if !exists {
        return Ok(None);
    }
    let version: Option<String> =
        sqlx::query_scalar("SELECT version_num FROM public.alembic_version LIMIT 1")
            .fetch_optional(executor)
            .await?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_larger_than_the_server_allows_is_refused_and_one_larger_than_what_is_free_is_warned_of(
    ) {
        let budget = ConnectionBudget {
            max: 100,
            reserved: 3,
            in_use_by_others: 90,
        };
        let err = budget
            .admit(98, "worker (--concurrency / WORKER_CONCURRENCY 48)")
            .unwrap_err()
            .to_string();
        for shown in [
            "WORKER_CONCURRENCY 48",
            "98",
            "allows 97",
            "max_connections 100",
            "3 reserved",
        ] {
            assert!(err.contains(shown), "{shown} missing: {err}");
        }
        assert!(budget.admit(97, "w").unwrap().is_some());
        let warning = budget.admit(10, "w").unwrap().unwrap();
        assert!(
            warning.contains("only 7 of the server's 97 are free"),
            "{warning}"
        );
        assert_eq!(budget.admit(7, "w").unwrap(), None);
    }

    #[test]
    fn a_worker_opens_two_connections_per_slot_and_two_more() {
        assert_eq!(worker_connections(4), 10);
        assert_eq!(worker_connections(usize::MAX), u32::MAX);
    }
}
