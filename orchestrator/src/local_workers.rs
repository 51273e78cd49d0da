//! `--with-workers N`: worker processes on this machine for the length of
//! one command, so that a single command runs the whole job. They are
//! ordinary `worker --role all` processes (the binary next to this one) and
//! are stopped with SIGTERM, like any deployment would stop them.

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct LocalWorkers {
    children: Vec<Child>,
}

pub fn worker_binary() -> anyhow::Result<PathBuf> {
    sibling_binary("worker")
}

/// The binary `name` next to this one (the orchestrator's worker, a
/// benchmark's orchestrator and worker).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating this binary")?;
    let path = me.with_file_name(name);
    anyhow::ensure!(
        path.exists(),
        "this needs the {name} binary next to {} ({}); build it with `cargo build --release --bins`",
        me.display(),
        path.display()
    );
    Ok(path)
}

impl LocalWorkers {
    pub fn start(count: usize, concurrency: Option<usize>) -> anyhow::Result<LocalWorkers> {
        LocalWorkers::start_with_env(count, concurrency, &[])
    }

    /// Like [`LocalWorkers::start`], with extra environment for the workers
    /// (a benchmark points them at its own database and queue prefix).
    pub fn start_with_env(
        count: usize,
        concurrency: Option<usize>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<LocalWorkers> {
        let binary = worker_binary()?;
        let mut children = Vec::with_capacity(count);
        for _ in 0..count {
            let mut command = Command::new(&binary);
            command.arg("--role").arg("all");
            if let Some(c) = concurrency {
                command.arg("--concurrency").arg(c.to_string());
            }
            // The orchestrator's own metrics address is not theirs: they
            // would all try to bind it.
            command.env_remove("METRICS_ADDR");
            command.envs(env.iter().copied());
            command.kill_on_drop(true);
            children.push(
                command
                    .spawn()
                    .with_context(|| format!("starting {}", binary.display()))?,
            );
        }
        eprintln!("started {count} local worker process(es)");
        Ok(LocalWorkers { children })
    }

    /// Process ids of the workers still running.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(|c| c.id()).collect()
    }

    /// SIGTERM to every worker, then wait for them (killing any that take
    /// longer than `grace`).
    pub async fn stop(mut self, grace: Duration) {
        for child in &self.children {
            if let Some(pid) = child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
        }
        for child in &mut self.children {
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}
