//! `orchestrator bench hosts`: workers on three hosts of our own
//! ([`testkit::hosts`]: network namespaces joined by veth pairs), none of
//! which shares a data path with the orchestrator: the data comes over HTTP
//! (nginx), the services through each host's own link. Four runs to head on
//! the same generated data, each in a scratch database of its own:
//!
//! 1. one host, with every worker on it: the reference digest;
//! 2. three hosts, one worker each, no fault: the clean time;
//! 3. the same with host 2 slowed (a delay each way and packet loss): the
//!    slowdown against the clean run;
//! 4. the same with faults: host 3's link is cut while it holds an embed
//!    task, and restored after its lease has expired (the run goes on on
//!    the other two; the late worker's completions must apply nothing); and
//!    host 1's `AMQP_URL` lists two broker addresses, the first of which
//!    becomes unreachable mid-run, so that it connects to the second.
//!
//! Every other run's digest must equal the one-host run's, and no effect
//! may be applied twice. Two more clean runs, with one worker on one and on
//! two hosts, give with the clean three-host run the embed scaling figure
//! (embeddings per second of the embed phase, from the task rows). The
//! providers are the in-process fake.

use crate::chaos::{tail, TaskCounts};
use crate::scratch::{config_with, DataSet, Room};
use anyhow::{bail, Context};
use orchestrator::local_workers::sibling_binary;
use shared::Config;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use testkit::fake_openai::FakeOpenAi;
use testkit::hosts::{Forwarder, Hosts};
use tokio::process::Child;

#[derive(Debug, Clone)]
pub struct HostsBench {
    pub reviews: usize,
    pub lease_secs: u64,
    /// The fake providers' time per request.
    pub provider_delay: Duration,
    /// Host 2's extra delay each way, and its packet loss, in the slowed run.
    pub delay: Duration,
    pub loss_percent: u32,
    /// nginx's root folder and its URL (`TEST_HTTP_DATA_ROOT` / `TEST_HTTP_DATA_URL`
    /// of `REMOTE=1 scripts/services.sh`).
    pub http_root: PathBuf,
    pub http_url: String,
    /// A run fails past this, as a hang.
    pub bound: Duration,
    pub keep: bool,
}

/// The forwarders a run's hosts reach their services through.
struct Services {
    hosts: Hosts,
    /// Broker address b (service address 2): host 1's first, stopped mid-run in the faulted run.
    broker_b: Forwarder,
    _others: Vec<Forwarder>,
    broker_port: u16,
    http_port: u16,
    provider_port: u16,
}

fn socket_of(url: &str) -> anyhow::Result<SocketAddr> {
    let parsed = url::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    let host = parsed.host_str().context("a URL without a host")?;
    let port = parsed
        .port_or_known_default()
        .or(match parsed.scheme() {
            "postgres" | "postgresql" => Some(5432),
            "amqp" => Some(5672),
            _ => None,
        })
        .context("a URL without a port")?;
    (host, port)
        .to_socket_addrs()?
        .next()
        .with_context(|| format!("{host} does not resolve"))
}

/// `url` with its host replaced by `ip`.
fn via(url: &str, ip: std::net::Ipv4Addr) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url)?;
    parsed
        .set_host(Some(&ip.to_string()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(parsed.to_string())
}

impl Services {
    async fn start(
        config: &Config,
        bench: &HostsBench,
        provider_port: u16,
    ) -> anyhow::Result<Services> {
        let hosts = Hosts::create(3, 2)?;
        let db = socket_of(config.database_url.expose())?;
        let amqp = shared::amqp_url::broker_addresses(config.amqp_url.expose())
            .next()
            .context("AMQP_URL names no broker")?
            .to_string();
        let broker = socket_of(&amqp)?;
        let http = socket_of(&bench.http_url)?;
        let provider = SocketAddr::from(([127, 0, 0, 1], provider_port));
        let others = vec![
            hosts.forward(0, db.port(), db).await?,
            hosts.forward(0, broker.port(), broker).await?,
            hosts.forward(0, http.port(), http).await?,
            hosts.forward(0, provider_port, provider).await?,
        ];
        let broker_b = hosts.forward(1, broker.port(), broker).await?;
        Ok(Services {
            hosts,
            broker_b,
            _others: others,
            broker_port: broker.port(),
            http_port: http.port(),
            provider_port,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    OneHost,
    /// One worker on each of the first N hosts, for the embed scaling
    /// figure (three hosts: the clean run).
    Spread(usize),
    Clean,
    Slowed,
    Faults,
}

struct RunResult {
    elapsed: Duration,
    digest: testkit::digest::Digest,
    tasks: TaskCounts,
    notes: Vec<String>,
    /// Rows embedded, and the embed phase's time (first start to last end).
    embed: (i64, f64),
}

pub async fn hosts(config: &Config, bench: &HostsBench) -> anyhow::Result<()> {
    let server = crate::scratch::fake_providers(bench.provider_delay).await?;
    let services = Services::start(config, bench, server.port()).await?;
    let logs = crate::scratch::logs_dir("hosts")?;
    println!(
        "hosts run: 3 hosts (network namespaces {}), services at {} and {} over each host's veth; {} generated reviews over HTTP; lease {} s; logs in {}",
        services.hosts.hosts.iter().map(|h| format!("{} {}", h.name, h.address)).collect::<Vec<_>>().join(", "),
        services.hosts.service_ip(0),
        services.hosts.service_ip(1),
        bench.reviews,
        bench.lease_secs,
        logs.display()
    );
    let mut results = Vec::new();
    for scenario in [
        Scenario::OneHost,
        Scenario::Spread(1),
        Scenario::Spread(2),
        Scenario::Clean,
        Scenario::Slowed,
        Scenario::Faults,
    ] {
        let name = format!("{scenario:?}")
            .to_lowercase()
            .replace(['(', ')'], "");
        let room = Room::open(
            config,
            &format!("hosts-{name}"),
            DataSet::new(bench.reviews, 200, 0.5),
        )
        .await?;
        let served = bench
            .http_root
            .join(format!("bench-hosts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&served);
        std::os::unix::fs::symlink(&room.data_dir, &served).with_context(|| {
            format!(
                "linking the data into nginx's root {}",
                bench.http_root.display()
            )
        })?;
        let data_url = format!(
            "http://{}:{}/{}/",
            services.hosts.service_ip(0),
            services.http_port,
            served.file_name().unwrap().to_string_lossy()
        );
        let result = run(
            &room,
            &server,
            &services,
            bench,
            scenario,
            &data_url,
            &logs.join(&name),
        )
        .await;
        let _ = std::fs::remove_file(&served);
        room.close(bench.keep || result.is_err()).await;
        let result = result.with_context(|| format!("the {name} run"))?;
        results.push((scenario, result));
    }

    let reference = &results[0].1;
    let clean = results
        .iter()
        .find(|(s, _)| *s == Scenario::Clean)
        .map(|(_, r)| r.elapsed)
        .unwrap_or_default();
    let mut failures = Vec::new();
    for (scenario, result) in &results {
        let label = match scenario {
            Scenario::OneHost => "one host, every worker on it:".to_string(),
            Scenario::Spread(n) => format!("{n} host(s), one worker each, no fault:"),
            Scenario::Clean => "three hosts, one worker each, no fault:".to_string(),
            Scenario::Slowed => format!(
                "three hosts, host 2 at +{} ms each way and {} % packet loss:",
                bench.delay.as_millis(),
                bench.loss_percent
            ),
            Scenario::Faults => {
                "three hosts, host 3 cut mid-embed, host 1's first broker gone:".to_string()
            }
        };
        let mut line = format!("  {label:<72} {:>8.2} s", result.elapsed.as_secs_f64());
        if *scenario == Scenario::Slowed {
            line.push_str(&format!(
                "  (slowdown {:.2}x the clean three-host run)",
                result.elapsed.as_secs_f64() / clean.as_secs_f64().max(1e-9)
            ));
        }
        println!("{line}");
        for note in &result.notes {
            println!("    {note}");
        }
        if *scenario != Scenario::OneHost {
            let differences = result.digest.differences(&reference.digest);
            let twice = result.tasks.applied_beyond(&reference.tasks);
            println!(
                "    digest against the one-host run: {}; effects applied twice: {twice}; tasks taken back from stale leases: {}",
                if differences.is_empty() { "equal".to_string() } else { format!("DIFFERENT ({})", differences.join("; ")) },
                result.tasks.taken_back
            );
            if !differences.is_empty() || twice > 0 {
                failures.push(format!("{scenario:?}"));
            }
        }
    }
    println!(
        "  digest of the one-host run: {}",
        reference.digest.overall()
    );
    println!(
        "  embed scaling, one worker per host (fake provider, {} ms per request; embed phase, first start to last end):",
        bench.provider_delay.as_millis()
    );
    let rate = |r: &RunResult| r.embed.0 as f64 / r.embed.1.max(1e-9);
    let spread: Vec<(usize, &RunResult)> = results
        .iter()
        .filter_map(|(s, r)| match s {
            Scenario::Spread(n) => Some((*n, r)),
            Scenario::Clean => Some((3, r)),
            _ => None,
        })
        .collect();
    let base = spread.first().map(|(_, r)| rate(r)).unwrap_or(0.0);
    for (n, result) in &spread {
        let ratio = if base > 0.0 { rate(result) / base } else { 0.0 };
        println!(
            "    {n} host(s): {:>7} embeddings in {:>6.2} s = {:>7.0}/s  {ratio:.2}x of one host{}",
            result.embed.0,
            result.embed.1,
            rate(result),
            if *n > 1 {
                format!("  (target: at least {:.1}x)", 0.9 * *n as f64)
            } else {
                String::new()
            }
        );
    }
    if failures.is_empty() {
        if bench.keep {
            println!("  logs kept in {}", logs.display());
        } else {
            std::fs::remove_dir_all(&logs).ok();
        }
        Ok(())
    } else {
        bail!(
            "run(s) {} ended in another state than the one-host run, or applied an effect twice; logs kept in {}",
            failures.join(", "),
            logs.display()
        )
    }
}

/// The workers of a run: `(host index, process, log)`.
struct Workers(Vec<(usize, Child, PathBuf)>);

impl Workers {
    async fn stop(self) {
        for (_, child, _) in &self.0 {
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        for (_, mut child, _) in self.0 {
            if tokio::time::timeout(Duration::from_secs(20), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}

fn log_file(path: &Path) -> anyhow::Result<(Stdio, Stdio)> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok((Stdio::from(out.try_clone()?), Stdio::from(out)))
}

async fn run(
    room: &Room,
    server: &FakeOpenAi,
    services: &Services,
    bench: &HostsBench,
    scenario: Scenario,
    data_url: &str,
    logs: &Path,
) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(logs)?;
    let mut settings = room.fake_provider_settings(server, 384);
    settings.retain(|(k, _)| k != "RUST_LOG" && k != "DATA_DIR");
    settings.extend(
        [
            ("RUST_LOG", "info".to_string()),
            ("DATA_DIR", data_url.to_string()),
            ("TASK_LEASE_SECS", bench.lease_secs.to_string()),
            ("TASK_MAX_ATTEMPTS", "8".to_string()),
            // Many small tasks, so that every host holds some of each phase.
            ("SEED_TASK_ROWS", "500".to_string()),
            ("EMBED_TASK_ROWS", "100".to_string()),
            ("ENRICH_TASK_ROWS", "100".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let config = config_with(&settings)?;
    let hosts = &services.hosts;
    let a = hosts.service_ip(0);
    let b = hosts.service_ip(1);
    let on_host = |i: usize| -> anyhow::Result<Vec<(String, String)>> {
        let mut env = settings.clone();
        let database = via(config.database_url.expose(), a)?;
        let amqp_a = format!("amqp://guest:guest@{a}:{}/%2f", services.broker_port);
        let amqp = if scenario == Scenario::Faults && i == 0 {
            format!(
                "amqp://guest:guest@{b}:{}/%2f,{amqp_a}",
                services.broker_port
            )
        } else {
            amqp_a
        };
        let openai = format!("http://{a}:{}/v1", services.provider_port);
        env.retain(|(k, _)| k != "DATABASE_URL" && k != "OPENAI_BASE_URL");
        env.extend([
            ("DATABASE_URL".to_string(), database),
            ("AMQP_URL".to_string(), amqp),
            ("OPENAI_BASE_URL".to_string(), openai),
        ]);
        Ok(env)
    };
    let placement: Vec<usize> = match scenario {
        Scenario::OneHost => vec![0, 0, 0],
        Scenario::Spread(n) => (0..n).collect(),
        _ => vec![0, 1, 2],
    };
    if scenario == Scenario::Slowed {
        hosts.degrade(1, bench.delay, bench.loss_percent)?;
    }
    let worker = sibling_binary("worker")?;
    let mut workers = Workers(Vec::new());
    for (n, &i) in placement.iter().enumerate() {
        let log = logs.join(format!("worker-{n}-host{}.log", i + 1));
        let (out, err) = log_file(&log)?;
        let child = hosts
            .command(i, &worker)
            .args([
                "--role",
                "all",
                "--label",
                &format!("host{}", i + 1),
                "--drain-secs",
                "10",
            ])
            .envs(on_host(i)?)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .context("starting a worker with `ip netns exec` (needs root)")?;
        workers.0.push((i, child, log));
    }
    let orchestrator_log = logs.join("orchestrator.log");
    let (out, err) = log_file(&orchestrator_log)?;
    let mut orchestrator = tokio::process::Command::new(sibling_binary("orchestrator")?)
        .args(["upgrade", "head"])
        .envs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()?;
    let started = Instant::now();
    let pool = shared::db::connect(&config, 2, Duration::from_secs(60)).await?;
    let mut notes = Vec::new();
    let mut cut_at: Option<Instant> = None;
    let mut restored = false;
    let outcome = async {
        loop {
            if let Some(status) = orchestrator.try_wait()? {
                if !status.success() {
                    bail!(
                        "`orchestrator upgrade head` ended with {status}; its log ends:\n{}",
                        tail(&orchestrator_log, 20)
                    );
                }
                return anyhow::Ok(());
            }
            if started.elapsed() > bench.bound {
                let _ = orchestrator.kill().await;
                bail!("no end after {} s: a hang; the orchestrator's log ends:\n{}", bench.bound.as_secs(), tail(&orchestrator_log, 20));
            }
            if scenario == Scenario::Faults {
                if cut_at.is_none() {
                    let pid = workers.0[2].1.id().unwrap_or(0);
                    // In the middle of the embed phase: half its tasks
                    // done or in hand, and host 3 holding one of them.
                    // (Counting the running ones keeps a short phase, as in
                    // tests/tests/hosts.rs, from ending between two looks.)
                    let (holding, halfway): (i64, bool) = sqlx::query_as(
                        "SELECT count(*) FILTER (WHERE status = 'running' AND worker LIKE '%:' || $1),
                                coalesce(2 * count(*) FILTER (WHERE status IN ('done', 'running')) >= count(*), false)
                           FROM pipeline.tasks WHERE revision = $2 AND kind = 'embed'",
                    )
                    .bind(pid.to_string())
                    .bind(shared::catalogue::EMBEDDINGS)
                    .fetch_one(&pool)
                    .await
                    .unwrap_or((0, false));
                    if holding > 0 && halfway {
                        hosts.cut(2)?;
                        cut_at = Some(Instant::now());
                        services.broker_b.stop();
                        notes.push(format!(
                            "t={:>6.2} s  host 3's link cut, half the embed tasks done or in hand, while it held {holding} of them; host 1's first broker address ({b}) made unreachable",
                            started.elapsed().as_secs_f64()
                        ));
                    }
                } else if !restored && cut_at.is_some_and(|t| t.elapsed() > Duration::from_secs(bench.lease_secs * 3)) {
                    hosts.restore(2)?;
                    restored = true;
                    notes.push(format!(
                        "t={:>6.2} s  host 3's link restored, after {} s",
                        started.elapsed().as_secs_f64(),
                        bench.lease_secs * 3
                    ));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    .await;
    let elapsed = started.elapsed();
    if scenario == Scenario::Slowed {
        hosts.heal(1);
    }
    if scenario == Scenario::Faults && !restored {
        let _ = hosts.restore(2);
    }
    // The late worker gets its chance to complete what it held, which
    // must then apply nothing.
    if scenario == Scenario::Faults {
        tokio::time::sleep(Duration::from_secs(bench.lease_secs)).await;
    }
    let host1_log = workers.0[0].2.clone();
    let host3_log = workers.0.get(2).map(|w| w.2.clone());
    workers.stop().await;
    outcome?;
    if scenario == Scenario::Faults {
        if cut_at.is_none() {
            bail!("the run ended before host 3 held an embed task once half the embed phase was done or in hand: nothing was cut (more --reviews or --provider-delay-ms)");
        }
        let log = std::fs::read_to_string(&host1_log).unwrap_or_default();
        let moved = log.contains("(address 2 of 2)");
        notes.push(format!(
            "host 1 connected to its second broker address after the first became unreachable: {}",
            if moved { "yes" } else { "no" }
        ));
        if !moved {
            bail!(
                "host 1's worker never connected to its second broker address; its log: {}",
                host1_log.display()
            );
        }
        let fenced = host3_log
            .and_then(|log| std::fs::read_to_string(log).ok())
            .unwrap_or_default()
            .matches("stopped it without settling it")
            .count();
        notes.push(format!(
            "host 3's worker stopped {fenced} task(s) on its own once it could not renew their lease"
        ));
    }
    let digest = testkit::digest::digest(&pool).await?;
    let tasks = TaskCounts::read(&pool).await?;
    let embed: (i64, f64) = sqlx::query_as(
        "SELECT coalesce(sum(rows_done), 0)::bigint,
                coalesce(extract(epoch FROM max(finished_at) - min(started_at)), 0)::float8
           FROM pipeline.tasks WHERE kind = 'embed' AND status = 'done'",
    )
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    Ok(RunResult {
        elapsed,
        digest,
        tasks,
        notes,
        embed,
    })
}
