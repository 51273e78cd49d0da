//! Faults on the project's own local services, for the tests and the chaos
//! bench that must show the pipeline carrying on across them.

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sqlx::PgPool;
use std::path::Path;
use std::time::{Duration, Instant};

/// `pg_ctl stop -m immediate` is SIGQUIT to the postmaster, found as the
/// parent of a backend of `pool` (the server must be on this machine): no
/// checkpoint, so the server starts again by crash recovery. The project's
/// own `scripts/services.sh` then starts it. Returns what was done, for a
/// log line.
pub async fn restart_postgres_immediately(pool: &PgPool) -> anyhow::Result<String> {
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await?;
    let status = std::fs::read_to_string(format!("/proc/{backend}/status")).with_context(|| {
        format!("PostgreSQL's backend {backend} is not a process of this machine: stopping PostgreSQL needs a local server")
    })?;
    let postmaster: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|p| p.trim().parse().ok())
        .context("reading the postmaster's pid")?;
    kill(Pid::from_raw(postmaster), Signal::SIGQUIT)?;
    let down = Instant::now();
    while Path::new(&format!("/proc/{postmaster}")).exists()
        && down.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let script = crate::repo_root().join("scripts/services.sh");
    let output = tokio::process::Command::new("bash")
        .arg(&script)
        .env_remove("DATABASE_URL")
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} could not start PostgreSQL again: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(format!(
        "SIGQUIT to postmaster {postmaster}; down {:.1} s in all, started by scripts/services.sh",
        down.elapsed().as_secs_f64()
    ))
}
