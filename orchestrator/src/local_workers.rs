//! `--with-workers N`: worker processes on this machine for the length of
//! one command, so that a single command runs the whole job. They are
//! ordinary `worker --role all` processes (the binary next to this one) and
//! are stopped with SIGTERM, like any deployment would stop them.
//!
//! Their log goes through this process, so that interleaved lines can be
//! told apart: worker N is started with `--label worker-N` (its name is
//! `worker-N@host:pid`), and each line it writes to stderr is written to
//! this process's stderr prefixed with `[worker-N] `. With `LOG_FORMAT=json`
//! the lines are passed on as they are (their `worker` field says whose
//! they are); a line that is not JSON (a panic) is logged as a JSON line
//! with that `worker` field.

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shared::logging::Format;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::task::JoinHandle;

pub struct LocalWorkers {
    children: Vec<Child>,
    /// One per child: its stderr, line by line, to this process's.
    relays: Vec<JoinHandle<()>>,
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
        let mut relays = Vec::with_capacity(count);
        for n in 1..=count {
            let label = format!("worker-{n}");
            let mut command = Command::new(&binary);
            command.arg("--role").arg("all").arg("--label").arg(&label);
            if let Some(c) = concurrency {
                command.arg("--concurrency").arg(c.to_string());
            }
            // The orchestrator's own metrics address is not theirs: they
            // would all try to bind it.
            command.env_remove("METRICS_ADDR");
            command.envs(env.iter().copied());
            command.stderr(Stdio::piped());
            command.kill_on_drop(true);
            let mut child = command
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            let stderr = child.stderr.take().expect("stderr is piped");
            let name = shared::logging::worker_name(Some(&label), child.id().unwrap_or(0));
            relays.push(tokio::spawn(relay(stderr, label, name)));
            children.push(child);
        }
        shared::say!("started {count} local worker process(es)");
        Ok(LocalWorkers { children, relays })
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
        // Their last lines, up to the end of their stderr.
        for relay in self.relays {
            let _ = tokio::time::timeout(Duration::from_secs(5), relay).await;
        }
    }
}

/// Writes a local worker's stderr to this process's, line by line: text
/// lines prefixed with `[label] `, JSON lines as they are (see the module's
/// documentation). Bytes that are not UTF-8 are replaced, never a reason to
/// stop reading (a worker blocked on a full pipe would stop working).
async fn relay(stderr: ChildStderr, label: String, name: String) {
    let json = shared::logging::format() == Format::Json;
    let mut reader = BufReader::new(stderr);
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        match reader.read_until(b'\n', &mut bytes).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&bytes);
        let line = line.trim_end_matches(['\n', '\r']);
        if !json {
            eprintln!("[{label}] {line}");
        } else if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line).is_ok() {
            eprintln!("{line}");
        } else {
            tracing::warn!(worker = %name, "{line}");
        }
    }
}
