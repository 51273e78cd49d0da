//! `orchestrator bench chaos`: the run to head with faults thrown at it,
//! against the same run without them.
//!
//! 1. A generated data set (default 200,000 reviews) is brought to head in a
//!    scratch database by the real `orchestrator upgrade head` and
//!    `workers_per_role` workers of each role, with no fault: the reference
//!    digest and time.
//! 2. The same data, in a second scratch database, is brought to head again
//!    while a driver, seeded so that a failure can be replayed with
//!    `--seed`, applies at spread-out moments of the reference time: SIGKILL
//!    of a random worker (`--kills`, default 20), SIGSTOP of a worker that
//!    holds a task past its lease and then SIGCONT, a RabbitMQ restart, an
//!    immediate PostgreSQL stop and start, every pipeline connection closed,
//!    and a role's work queue deleted. Workers that exit are started again,
//!    as a supervisor (compose, systemd) would.
//! 3. Both digests ([`testkit::digest`]) are printed and must be equal; the
//!    report gives tasks run more than once, tasks taken back from stale
//!    leases, duplicate copies suppressed, and the effects applied twice:
//!    task rows counted beyond the reference run's, by kind, which must be 0.
//!
//! The providers are the in-process OpenAI-compatible fake (embeddings and
//! chat completions), whose answers depend only on the text.

use crate::scratch::{config_with, DataSet, Room};
use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use orchestrator::local_workers::sibling_binary;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use shared::catalogue::Role;
use shared::Config;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use testkit::digest::Digest;
use testkit::fake_openai::FakeOpenAi;
use tokio::process::{Child, Command};

#[derive(Debug, Clone)]
pub struct ChaosBench {
    pub reviews: usize,
    pub workers_per_role: usize,
    /// Seeds the choice, order and timing of the faults.
    pub seed: u64,
    pub kills: usize,
    /// TASK_LEASE_SECS of both runs; the stopped worker stays stopped past it.
    pub lease_secs: u64,
    /// The chaos run fails past this, as a hang.
    pub bound: Duration,
    pub broker_restart: bool,
    pub postgres_restart: bool,
    /// The fake providers' time per request, to give a small data set a run
    /// long enough for every fault.
    pub provider_delay: Duration,
    /// Keep the scratch databases, the generated files and the logs.
    pub keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    KillWorker,
    StopWorkerPastLease,
    RestartBroker,
    RestartPostgres,
    CloseConnections,
    DeleteQueue,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::KillWorker => "SIGKILL a worker",
            Fault::StopWorkerPastLease => "SIGSTOP a worker past its lease",
            Fault::RestartBroker => "restart RabbitMQ",
            Fault::RestartPostgres => "stop PostgreSQL -m immediate, start it",
            Fault::CloseConnections => "close every pipeline connection",
            Fault::DeleteQueue => "delete a role's work queue",
        })
    }
}

pub async fn chaos(config: &Config, bench: &ChaosBench) -> anyhow::Result<()> {
    let server = crate::scratch::fake_providers(bench.provider_delay).await?;
    let logs = crate::scratch::logs_dir("chaos")?;
    println!(
        "chaos run: {} generated reviews, {} worker(s) per role, seed {} (replay with --seed {}), lease {} s, logs in {}",
        bench.reviews,
        bench.workers_per_role,
        bench.seed,
        bench.seed,
        bench.lease_secs,
        logs.display()
    );

    let data = || DataSet::new(bench.reviews, 200, 0.5);
    let reference_room = Room::open(config, "chaos-reference", data()).await?;
    let reference = run_to_head(
        &reference_room,
        &server,
        bench,
        None,
        &logs.join("reference"),
    )
    .await;
    reference_room.close(bench.keep).await;
    let reference = reference.context("the fault-free reference run")?;
    println!(
        "  fault-free run:   {:>8.2} s",
        reference.elapsed.as_secs_f64()
    );

    let plan = FaultPlan::new(bench, reference.elapsed);
    let room = Room::open(config, "chaos", data()).await?;
    let chaotic = run_to_head(&room, &server, bench, Some(plan), &logs.join("chaos")).await;
    let keep = bench.keep || !matches!(&chaotic, Ok(c) if c.digest == reference.digest);
    room.close(keep).await;
    let chaotic = chaotic.context("the run with faults")?;

    println!(
        "  run with faults:  {:>8.2} s  (bound {} s; {:.2}x the fault-free run)",
        chaotic.elapsed.as_secs_f64(),
        bench.bound.as_secs(),
        chaotic.elapsed.as_secs_f64() / reference.elapsed.as_secs_f64().max(1e-9)
    );
    println!(
        "  faults applied ({} of {}):",
        chaotic.faults.len(),
        chaotic.faults.len() + chaotic.missed.len()
    );
    for line in &chaotic.faults {
        println!("    {line}");
    }
    for fault in &chaotic.missed {
        println!("    not applied, the run had ended: {fault}");
    }
    let c = &chaotic.tasks;
    println!(
        "  tasks: {} in all; {} ran more than once ({} attempts beyond the first), {} taken back from stale leases, {} duplicate copies suppressed, {} worker restarts",
        c.tasks, c.rerun_tasks, c.extra_attempts, c.taken_back, c.duplicates, chaotic.restarts
    );
    let twice = chaotic.tasks.applied_beyond(&reference.tasks);
    println!("  effects applied twice (task rows beyond the fault-free run's, by kind): {twice}");
    println!("  digest of the fault-free run:\n{}", reference.digest);
    let differences = chaotic.digest.differences(&reference.digest);
    if differences.is_empty() && twice == 0 && chaotic.missed.is_empty() {
        println!(
            "  digest of the run with faults: equal ({})",
            chaotic.digest.overall()
        );
        std::fs::remove_dir_all(&logs).ok();
        Ok(())
    } else {
        if !differences.is_empty() {
            println!("  digest of the run with faults:\n{}", chaotic.digest);
        }
        bail!(
            "{}: {} table(s) differ ({}), {twice} effects applied twice, {} fault(s) not applied (a longer run: more --reviews or --provider-delay-ms); logs kept in {}",
            if differences.is_empty() && twice == 0 {
                "the run with faults ended too soon to prove anything"
            } else {
                "the run with faults ended in another state than the fault-free run"
            },
            differences.len(),
            differences.join("; "),
            chaotic.missed.len(),
            logs.display()
        )
    }
}

/// When each fault comes: the faults in a seeded order, at seeded moments
/// spread over 10–80 % of the fault-free run's time.
struct FaultPlan {
    at: Vec<(Duration, Fault)>,
    rng: rand::rngs::StdRng,
}

impl FaultPlan {
    fn new(bench: &ChaosBench, reference: Duration) -> FaultPlan {
        let mut rng = rand::rngs::StdRng::seed_from_u64(bench.seed);
        let mut faults = vec![Fault::KillWorker; bench.kills];
        faults.extend([
            Fault::StopWorkerPastLease,
            Fault::CloseConnections,
            Fault::DeleteQueue,
        ]);
        if bench.broker_restart {
            faults.push(Fault::RestartBroker);
        }
        if bench.postgres_restart {
            faults.push(Fault::RestartPostgres);
        }
        faults.shuffle(&mut rng);
        let (from, to) = (reference.mul_f64(0.1), reference.mul_f64(0.8));
        let gap = (to - from).div_f64(faults.len().max(1) as f64);
        let at = faults
            .into_iter()
            .enumerate()
            .map(|(i, fault)| {
                let jitter = gap.mul_f64(rng.gen_range(0.0..0.5));
                (from + gap.mul_f64(i as f64) + jitter, fault)
            })
            .collect();
        FaultPlan { at, rng }
    }
}

struct RunResult {
    elapsed: Duration,
    digest: Digest,
    tasks: TaskCounts,
    faults: Vec<String>,
    /// Faults of the plan still to come when the run ended.
    missed: Vec<Fault>,
    restarts: usize,
}

async fn run_to_head(
    room: &Room,
    server: &FakeOpenAi,
    bench: &ChaosBench,
    plan: Option<FaultPlan>,
    logs: &Path,
) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(logs)?;
    let mut settings = room.fake_provider_settings(server, 384);
    settings.retain(|(k, _)| k != "RUST_LOG");
    settings.push(("RUST_LOG".into(), "info".into()));
    settings.push(("TASK_LEASE_SECS".into(), bench.lease_secs.to_string()));
    // Attempts are a hard limit, and the random kills can land on one long
    // task (the hnsw build) several times: with the default of 3 a run
    // failed that way. The run measures loss and double effects, so every
    // kill and the take-back may cost the same task an attempt.
    settings.push(("TASK_MAX_ATTEMPTS".into(), (bench.kills + 4).to_string()));
    let config = config_with(&settings)?;
    let mut fleet = Fleet::start(bench.workers_per_role, &settings, logs)?;
    let mut orchestrator = spawn(
        &sibling_binary("orchestrator")?,
        &["upgrade", "head"],
        &settings,
        &logs.join("orchestrator.log"),
    )?;
    let started = Instant::now();
    let mut faults = Vec::new();
    let result = async {
        let mut plan = plan;
        loop {
            if let Some(status) = orchestrator.try_wait()? {
                if !status.success() {
                    bail!(
                        "`orchestrator upgrade head` ended with {status}; its log ends:\n{}",
                        tail(&logs.join("orchestrator.log"), 20)
                    );
                }
                break;
            }
            if started.elapsed() > bench.bound {
                let _ = orchestrator.kill().await;
                bail!(
                    "no end after {} s: a hang; the orchestrator's log ends:\n{}",
                    bench.bound.as_secs(),
                    tail(&logs.join("orchestrator.log"), 20)
                );
            }
            fleet.restart_exited()?;
            if let Some(plan) = plan.as_mut() {
                if let Some(&(at, fault)) = plan.at.first() {
                    if started.elapsed() >= at {
                        plan.at.remove(0);
                        let applied_at = started.elapsed();
                        let what = apply(fault, &mut fleet, &config, &mut plan.rng, bench)
                            .await
                            .with_context(|| format!("applying the fault `{fault}`"))?;
                        faults.push(format!(
                            "t={:>6.2} s  {fault}: {what}",
                            applied_at.as_secs_f64()
                        ));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::Ok(
            plan.map(|p| p.at.into_iter().map(|(_, f)| f).collect())
                .unwrap_or_default(),
        )
    }
    .await;
    let elapsed = started.elapsed();
    let restarts = fleet.restarts;
    fleet.stop().await;
    let missed = result?;
    let pool = shared::db::connect(&config, 2, Duration::from_secs(60)).await?;
    let digest = testkit::digest::digest(&pool).await?;
    let tasks = TaskCounts::read(&pool).await?;
    pool.close().await;
    Ok(RunResult {
        elapsed,
        digest,
        tasks,
        faults,
        missed,
        restarts,
    })
}

/// Applies `fault`; returns what it did.
async fn apply(
    fault: Fault,
    fleet: &mut Fleet,
    config: &Config,
    rng: &mut rand::rngs::StdRng,
    bench: &ChaosBench,
) -> anyhow::Result<String> {
    match fault {
        Fault::KillWorker => {
            let i = rng.gen_range(0..fleet.workers.len());
            let pid = fleet.signal(i, Signal::SIGKILL)?;
            Ok(format!("{} (pid {pid})", fleet.workers[i].name))
        }
        Fault::StopWorkerPastLease => {
            // A worker in the middle of a task, so that its lease matters.
            let pool = shared::db::connect(config, 1, Duration::from_secs(60)).await?;
            let holders: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT worker FROM pipeline.tasks WHERE status = 'running' AND worker IS NOT NULL ORDER BY 1",
            )
            .fetch_all(&pool)
            .await?;
            pool.close().await;
            let holding: Vec<usize> = (0..fleet.workers.len())
                .filter(|&i| {
                    fleet.workers[i]
                        .pid()
                        .is_some_and(|pid| holders.iter().any(|h| h.ends_with(&format!(":{pid}"))))
                })
                .collect();
            let i = match holding.as_slice() {
                [] => rng.gen_range(0..fleet.workers.len()),
                some => some[rng.gen_range(0..some.len())],
            };
            let pid = fleet.signal(i, Signal::SIGSTOP)?;
            let stopped = Duration::from_secs(bench.lease_secs + bench.lease_secs / 2 + 2);
            tokio::time::sleep(stopped).await;
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
            Ok(format!(
                "{} (pid {pid}{}) stopped for {} s, then continued",
                fleet.workers[i].name,
                if holding.contains(&i) {
                    ", holding a task"
                } else {
                    ", no task in hand"
                },
                stopped.as_secs()
            ))
        }
        Fault::RestartBroker => {
            run_command("rabbitmqctl", &["stop_app"]).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            run_command("rabbitmqctl", &["start_app"]).await?;
            Ok("rabbitmqctl stop_app, 2 s, start_app".into())
        }
        Fault::RestartPostgres => restart_postgres(config).await,
        Fault::CloseConnections => {
            let pool = shared::db::connect(config, 1, Duration::from_secs(60)).await?;
            let closed: i64 = sqlx::query_scalar(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .fetch_one(&pool)
            .await?;
            pool.close().await;
            Ok(format!("{closed} connection(s) terminated"))
        }
        Fault::DeleteQueue => {
            let role = Role::ALL[rng.gen_range(0..Role::ALL.len())];
            let queue = shared::queue::Topology::explicit(config)
                .context("a scratch room names its QUEUE_PREFIX")?
                .work_queue(role);
            let connection = shared::queue::connect(config, "bench chaos", Duration::ZERO).await?;
            let channel = connection.create_channel().await?;
            let dropped = channel
                .queue_delete(queue.as_str().into(), Default::default())
                .await?;
            let _ = connection.close(200, "done".into()).await;
            Ok(format!("{queue}, with {dropped} message(s) in it"))
        }
    }
}

/// A local server only (`--no-postgres-restart` skips the fault otherwise).
async fn restart_postgres(config: &Config) -> anyhow::Result<String> {
    let pool = shared::db::connect(config, 1, Duration::from_secs(60)).await?;
    let done = testkit::services::restart_postgres_immediately(&pool).await;
    pool.close().await;
    done
}

async fn run_command(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .await
        .with_context(|| format!("running {program} (--no-broker-restart skips this fault)"))?;
    anyhow::ensure!(status.success(), "{program} {args:?} ended with {status}");
    Ok(())
}

/// What the tasks of a run did, from `pipeline.tasks`.
#[derive(Debug, Default)]
pub(crate) struct TaskCounts {
    tasks: i64,
    rerun_tasks: i64,
    extra_attempts: i64,
    pub(crate) taken_back: i64,
    duplicates: i64,
    /// `(revision, kind, rows_done)` of the done tasks.
    rows_by_kind: Vec<(String, String, i64)>,
}

impl TaskCounts {
    pub(crate) async fn read(pool: &sqlx::PgPool) -> anyhow::Result<TaskCounts> {
        let (tasks, rerun_tasks, extra_attempts, taken_back, duplicates): (
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE attempts > 1),
                        coalesce(sum(greatest(attempts - 1, 0)), 0)::bigint,
                        coalesce(sum(taken_back), 0)::bigint, coalesce(sum(duplicates), 0)::bigint
                   FROM pipeline.tasks",
        )
        .fetch_one(pool)
        .await?;
        let rows_by_kind = sqlx::query_as(
            "SELECT revision, kind, sum(rows_done)::bigint FROM pipeline.tasks
              WHERE status = 'done' GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .fetch_all(pool)
        .await?;
        Ok(TaskCounts {
            tasks,
            rerun_tasks,
            extra_attempts,
            taken_back,
            duplicates,
            rows_by_kind,
        })
    }

    /// Task rows this run counted beyond `reference`'s, over every kind: an
    /// effect applied twice would be counted twice.
    pub(crate) fn applied_beyond(&self, reference: &TaskCounts) -> i64 {
        self.rows_by_kind
            .iter()
            .map(|(revision, kind, rows)| {
                let theirs = reference
                    .rows_by_kind
                    .iter()
                    .find(|(r, k, _)| r == revision && k == kind)
                    .map_or(0, |(_, _, n)| *n);
                (rows - theirs).max(0)
            })
            .sum()
    }
}

/// The workers of a run, one process per slot, started again when they
/// exit, with each slot's output appended to a log file of its own.
struct Fleet {
    workers: Vec<Slot>,
    settings: Vec<(String, String)>,
    restarts: usize,
}

struct Slot {
    name: String,
    role: Role,
    log: PathBuf,
    child: Child,
}

impl Slot {
    fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Fleet {
    fn start(per_role: usize, settings: &[(String, String)], logs: &Path) -> anyhow::Result<Fleet> {
        let mut workers = Vec::new();
        for role in Role::ALL {
            for i in 1..=per_role {
                let name = format!("{role}#{i}");
                let log = logs.join(format!("worker-{role}-{i}.log"));
                let child = spawn_worker(role, settings, &log)?;
                workers.push(Slot {
                    name,
                    role,
                    log,
                    child,
                });
            }
        }
        Ok(Fleet {
            workers,
            settings: settings.to_vec(),
            restarts: 0,
        })
    }

    fn signal(&self, i: usize, signal: Signal) -> anyhow::Result<u32> {
        let pid = self.workers[i]
            .pid()
            .with_context(|| format!("{} is not running", self.workers[i].name))?;
        kill(Pid::from_raw(pid as i32), signal)?;
        Ok(pid)
    }

    fn restart_exited(&mut self) -> anyhow::Result<()> {
        for slot in &mut self.workers {
            if slot.child.try_wait()?.is_some() {
                slot.child = spawn_worker(slot.role, &self.settings, &slot.log)?;
                self.restarts += 1;
            }
        }
        Ok(())
    }

    async fn stop(self) {
        for slot in &self.workers {
            if let Some(pid) = slot.pid() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
        }
        for mut slot in self.workers {
            if tokio::time::timeout(Duration::from_secs(30), slot.child.wait())
                .await
                .is_err()
            {
                let _ = slot.child.kill().await;
            }
        }
    }
}

fn spawn_worker(role: Role, settings: &[(String, String)], log: &Path) -> anyhow::Result<Child> {
    spawn(
        &sibling_binary("worker")?,
        &["--role", role.as_str(), "--drain-secs", "10"],
        settings,
        log,
    )
}

fn spawn(
    binary: &Path,
    args: &[&str],
    settings: &[(String, String)],
    log: &Path,
) -> anyhow::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    Command::new(binary)
        .args(args)
        .envs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
