//! One run at a time per database: a session-level advisory lock held on a
//! connection of its own for the whole command. If the orchestrator dies,
//! the server drops the connection and the lock with it.

use shared::backoff::{Backoff, Verdict};
use shared::db::RUN_LOCK;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, PgPool};
use std::str::FromStr;
use std::time::Duration;

pub struct RunLock {
    conn: PgConnection,
    url: String,
}

pub enum WaitPolicy {
    Wait,
    NoWait,
}

impl RunLock {
    pub async fn acquire(
        pool: &PgPool,
        config: &shared::Config,
        policy: WaitPolicy,
    ) -> anyhow::Result<RunLock> {
        // A connection outside the pool: the lock must not travel back into
        // the pool with a connection that someone else then uses.
        let url = config.database_url.expose().to_string();
        let mut conn = connect(&url).await?;
        let got = try_lock(&mut conn).await?;
        if got {
            return Ok(RunLock { conn, url });
        }
        let holder = describe_holder(pool).await;
        match policy {
            WaitPolicy::NoWait => Err(LockHeld(format!(
                "another run holds this database's run lock ({holder}); not waiting because of --no-wait"
            ))
            .into()),
            WaitPolicy::Wait => {
                shared::say!("another run holds this database's run lock ({holder}); waiting for it to finish…");
                loop {
                    let got = try_lock(&mut conn).await?;
                    if got {
                        shared::say!("run lock acquired");
                        return Ok(RunLock { conn, url });
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Checks that the lock's connection is alive. A lost connection is a
    /// lost lock: reconnect (with back-off, for a minute) and take it again;
    /// if another run took it meanwhile, stop, so two runs never overlap.
    pub async fn check(&mut self) -> anyhow::Result<()> {
        if sqlx::query("SELECT 1")
            .execute(&mut self.conn)
            .await
            .is_ok()
        {
            return Ok(());
        }
        tracing::warn!(
            "lost the run lock's database connection; reconnecting to take the lock again"
        );
        let policy = Backoff::new(Duration::from_millis(250), Duration::from_secs(5))
            .with_patience(Duration::from_secs(60));
        let mut conn = shared::backoff::retry(
            policy,
            || connect(&self.url),
            |_| Verdict::Retry,
            |e, delay| tracing::warn!("database unreachable ({e}); retrying in {delay:?}"),
        )
        .await
        .map_err(|e| e.context("the database stayed unreachable for a minute"))?;
        let got = try_lock(&mut conn).await?;
        anyhow::ensure!(
            got,
            "lost the run lock while the database connection was down, and another run holds it now; stopping"
        );
        self.conn = conn;
        tracing::info!("run lock taken again");
        Ok(())
    }

    pub async fn release(mut self) {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(RUN_LOCK.0)
            .bind(RUN_LOCK.1)
            .execute(&mut self.conn)
            .await;
        let _ = self.conn.close().await;
    }
}

async fn try_lock(conn: &mut PgConnection) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(RUN_LOCK.0)
        .bind(RUN_LOCK.1)
        .fetch_one(conn)
        .await?)
}

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    let options = PgConnectOptions::from_str(url)?.application_name(shared::db::APPLICATION_NAME);
    Ok(PgConnection::connect_with(&options).await?)
}

async fn describe_holder(pool: &PgPool) -> String {
    match shared::store::running_run(pool).await.ok().flatten() {
        Some(run) => format!(
            "run #{} `{}` started {} by {}",
            run.id, run.command, run.started, run.requested_by
        ),
        None => "a run in progress".to_string(),
    }
}

/// The run lock is held by another run and the command would not wait
/// (`--no-wait`): exit code 3.
#[derive(Debug)]
pub struct LockHeld(pub String);

impl std::fmt::Display for LockHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LockHeld {}
