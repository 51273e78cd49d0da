//! One run at a time per database: a session-level advisory lock held on a
//! connection of its own for the whole command. If the orchestrator dies,
//! the server drops the connection and the lock with it.

use shared::db::RUN_LOCK;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool};
use std::time::Duration;

pub struct RunLock {
    conn: PgConnection,
}

pub enum WaitPolicy {
    Wait,
    NoWait,
}

impl RunLock {
    pub async fn acquire(pool: &PgPool, config: &shared::Config, policy: WaitPolicy) -> anyhow::Result<RunLock> {
        // A connection outside the pool: the lock must not travel back into
        // the pool with a connection that someone else then uses.
        let mut conn = PgConnection::connect(config.database_url.expose()).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(RUN_LOCK.0)
            .bind(RUN_LOCK.1)
            .fetch_one(&mut conn)
            .await?;
        if got {
            return Ok(RunLock { conn });
        }
        let holder = describe_holder(pool).await;
        match policy {
            WaitPolicy::NoWait => anyhow::bail!(
                "another run holds this database's run lock ({holder}); not waiting because of --no-wait"
            ),
            WaitPolicy::Wait => {
                eprintln!("another run holds this database's run lock ({holder}); waiting for it to finish…");
                loop {
                    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                        .bind(RUN_LOCK.0)
                        .bind(RUN_LOCK.1)
                        .fetch_one(&mut conn)
                        .await?;
                    if got {
                        eprintln!("run lock acquired");
                        return Ok(RunLock { conn });
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Checks that the lock's connection is alive (a lost connection means a
    /// lost lock: another run could start).
    pub async fn check(&mut self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&mut self.conn)
            .await
            .map_err(|e| anyhow::anyhow!("lost the run lock's database connection ({e}); stopping so two runs never overlap"))?;
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

async fn describe_holder(pool: &PgPool) -> String {
    let row: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT id, command, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ') || ' by ' || requested_by
           FROM pipeline.runs WHERE status = 'running' ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .ok()
    .flatten();
    match row {
        Some((id, command, when)) => format!("run #{id} `{command}` started {when}"),
        None => "a run in progress".to_string(),
    }
}
