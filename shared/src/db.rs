//! Database helpers both sides use: connecting (with patience while the
//! server starts), the pipeline's own tables, the advisory-lock keys and the
//! notification channel.

use crate::backoff::{Backoff, Verdict};
use crate::config::Config;
use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
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

/// Errors that a retry may cure: the server is down, restarting, or the
/// connection broke.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
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

/// Creates or updates the pipeline's own tables.
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
