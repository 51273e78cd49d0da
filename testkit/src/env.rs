//! Test harness: every test gets its own database (on the PostgreSQL with
//! pgvector and AGE that `scripts/services.sh` provides) and its own queue
//! prefix on the real RabbitMQ, and drives the real `orchestrator` and
//! `worker` binaries as a user would.
//!
//! The binaries are taken from the same target folder as the test binary
//! (`cargo build --release --bins` first; `scripts/test.sh` does it).

use anyhow::Context;
use shared::queue::Topology;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The server URL tests create their databases on: `DATABASE_URL` (as
/// written by `scripts/services.sh`), or the script's default.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| shared::config::DEFAULT_DATABASE_URL.to_string())
}

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| shared::config::DEFAULT_AMQP_URL.to_string())
}

/// Folder of the `orchestrator` and `worker` binaries built alongside the tests.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test-binary>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile folder")
        .to_path_buf();
    for bin in ["orchestrator", "worker"] {
        assert!(
            dir.join(bin).exists(),
            "{} is missing: build the binaries first (`cargo build --release --bins`, which scripts/test.sh does)",
            dir.join(bin).display()
        );
    }
    dir
}

/// The repository's root folder (for `data/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub struct TestEnv {
    pub db_name: String,
    pub database_url: String,
    pub queue_prefix: String,
    /// Whether the processes get `QUEUE_PREFIX` (`queue_prefix`); without
    /// it they derive their prefix from the database's identity.
    explicit_prefix: bool,
    pub pool: PgPool,
    /// Extra environment for every process this test starts.
    pub env: Vec<(String, String)>,
    workers: Vec<Child>,
}

impl TestEnv {
    /// A fresh database and queue prefix named after the test.
    pub async fn new(test_name: &str) -> TestEnv {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let slug: String = test_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(30)
            .collect();
        let db_name = format!("t_{slug}_{suffix}");
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("cannot reach the test PostgreSQL at {admin} ({e}); run scripts/services.sh")
        });
        sqlx::query(&format!("CREATE DATABASE \"{db_name}\""))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.ok();
        let url = shared::db::url_with_database(&admin, &db_name).expect("DATABASE_URL is a URL");
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .expect("connect to the test database");
        TestEnv {
            db_name,
            database_url: url,
            queue_prefix: format!("test-{slug}-{suffix}"),
            explicit_prefix: true,
            pool,
            env: Vec::new(),
            workers: Vec::new(),
        }
    }

    /// The topology of the test's `QUEUE_PREFIX` (see
    /// [`TestEnv::use_default_queue_prefix`] for the other case).
    pub fn topology(&self) -> Topology {
        Topology::new(&self.queue_prefix)
    }

    /// The processes of this test get no `QUEUE_PREFIX`: their queues are
    /// named after the database's identity, as a user's are by default.
    pub fn use_default_queue_prefix(&mut self) {
        self.explicit_prefix = false;
    }

    /// The topology the processes use: the test's prefix, or with the
    /// default prefix the one derived from the database's identity (`None`
    /// until the pipeline tables exist).
    pub async fn used_topology(&self) -> Option<Topology> {
        if self.explicit_prefix {
            return Some(self.topology());
        }
        let identity = shared::store::database_identity_if_made(&self.pool)
            .await
            .ok()??;
        let config = shared::Config::from_source(&shared::config::Source::from_pairs([(
            "DATABASE_URL",
            self.database_url.as_str(),
        )]))
        .expect("a configuration of defaults");
        Some(Topology::for_database(&config, identity))
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Every process of the test embeds through `server` (OpenAI's API),
    /// asking for vectors of `dims` dimensions.
    pub fn embed_with(&mut self, server: &crate::fake_openai::FakeOpenAi, dims: usize) {
        self.set_env("EMBEDDING_PROVIDER", "openai");
        self.set_env("OPENAI_BASE_URL", &server.base_url());
        self.set_env("OPENAI_API_KEY", "sk-test-not-a-secret");
        self.set_env("EMBEDDING_MODEL", "text-embedding-3-small");
        self.set_env("EMBEDDING_DIMENSIONS", &dims.to_string());
    }

    /// Every process of the test enriches through `server`'s chat
    /// completions (which answer every review by themselves).
    pub fn enrich_with(&mut self, server: &crate::fake_openai::FakeOpenAi) {
        server.answer_chat_automatically();
        self.set_env("OPENAI_BASE_URL", &server.base_url());
        self.set_env("OPENAI_API_KEY", "sk-test-not-a-secret");
        self.set_env("ENRICH_PROVIDER", "openai");
        self.set_env("LLM_MODEL", "gpt-4o-mini");
    }

    fn command(&self, binary: &str) -> Command {
        let mut command = Command::new(bin_dir().join(binary));
        command
            .current_dir(repo_root())
            .env("DATABASE_URL", &self.database_url)
            .env("AMQP_URL", amqp_url())
            .env("ENV_FILE", "/nonexistent/.env")
            .env("RUST_LOG", "info")
            .kill_on_drop(true);
        if self.explicit_prefix {
            command.env("QUEUE_PREFIX", &self.queue_prefix);
        } else {
            command.env_remove("QUEUE_PREFIX");
        }
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    /// `orchestrator data generate` of 300 products, `reviews` reviews and
    /// 200 users into a fresh temporary folder named after `name`; returns
    /// the folder and the generator's summary (rows per file).
    pub async fn generate_data(&self, name: &str, reviews: usize) -> (PathBuf, String) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
        let reviews = reviews.to_string();
        let generated = self
            .orchestrator(&[
                "data",
                "generate",
                "--out",
                dir.to_str().unwrap(),
                "--products",
                "300",
                "--reviews",
                &reviews,
                "--users",
                "200",
            ])
            .await;
        assert_success(&generated);
        (dir, String::from_utf8_lossy(&generated.stdout).to_string())
    }

    /// Runs `orchestrator <args>` to the end (at most `limit`).
    pub async fn orchestrator(&self, args: &[&str]) -> Output {
        self.orchestrator_within(args, Duration::from_secs(300))
            .await
    }

    pub async fn orchestrator_within(&self, args: &[&str], limit: Duration) -> Output {
        self.run_within("orchestrator", args, limit).await
    }

    /// Runs `worker <args>` to the end (at most `limit`): a worker expected
    /// to stop by itself (refusing its settings, `--help`).
    pub async fn worker_within(&self, args: &[&str], limit: Duration) -> Output {
        self.run_within("worker", args, limit).await
    }

    async fn run_within(&self, binary: &str, args: &[&str], limit: Duration) -> Output {
        let child = self
            .command(binary)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        tokio::time::timeout(limit, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{binary} {args:?} did not finish within {limit:?}"))
            .unwrap_or_else(|e| panic!("{binary} output: {e}"))
    }

    /// Starts `bench runtime` on this database: `tasks` no-op tasks of
    /// `sleep_ms` each, for workers the test starts itself, each marking its
    /// effect in `pipeline.noop_marks` (see [`TestEnv::noop_marks`]).
    pub fn spawn_noop_run(&self, tasks: usize, sleep_ms: u64) -> Child {
        self.spawn_noop_run_with(tasks, &["--sleep-ms", &sleep_ms.to_string()])
    }

    /// [`TestEnv::spawn_noop_run`] with other options of `bench runtime`
    /// (`--fail-attempts 1`, `--sleep-in-database`, ...).
    pub fn spawn_noop_run_with(&self, tasks: usize, options: &[&str]) -> Child {
        let tasks = tasks.to_string();
        let mut args = vec![
            "bench",
            "runtime",
            "--tasks",
            &tasks,
            "--workers",
            "0",
            "--mark",
        ];
        args.extend_from_slice(options);
        self.spawn_orchestrator(&args)
    }

    /// `(marks, distinct tasks marked)` of the no-op run: equal when no
    /// task took effect twice.
    pub async fn noop_marks(&self) -> (i64, i64) {
        sqlx::query_as("SELECT count(*), count(DISTINCT task_id) FROM pipeline.noop_marks")
            .fetch_one(&self.pool)
            .await
            .unwrap_or((0, 0))
    }

    /// Starts `orchestrator <args>` in the background.
    pub fn spawn_orchestrator(&self, args: &[&str]) -> Child {
        self.command("orchestrator")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start orchestrator")
    }

    /// Starts a `worker` process (killed when the test ends) and returns its pid.
    pub fn start_worker(&mut self, args: &[&str]) -> u32 {
        self.spawn_worker(args, Stdio::inherit())
    }

    /// [`TestEnv::start_worker`], its log (stderr) written to `log`.
    pub fn start_worker_logging_to(&mut self, args: &[&str], log: &std::path::Path) -> u32 {
        let file =
            std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        self.spawn_worker(args, Stdio::from(file))
    }

    fn spawn_worker(&mut self, args: &[&str], stderr: Stdio) -> u32 {
        let child = self
            .command("worker")
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start worker");
        let pid = child.id().expect("worker pid");
        self.workers.push(child);
        pid
    }

    /// Sends `signal` to a worker this test started.
    pub fn signal_worker(&self, pid: u32, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
            .expect("signal the worker");
    }

    /// Waits for a worker started by this test to exit; returns its exit code.
    pub async fn wait_worker(&mut self, pid: u32, limit: Duration) -> Option<i32> {
        let index = self.workers.iter().position(|c| c.id() == Some(pid))?;
        let mut child = self.workers.remove(index);
        let status = tokio::time::timeout(limit, child.wait()).await.ok()?.ok()?;
        status.code()
    }

    /// The one `bigint` a query returns (panics with the query on error).
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// What `alembic_version` holds (`None`: base, or no table).
    pub async fn current_revision(&self) -> Option<String> {
        sqlx::query_scalar("SELECT version_num FROM public.alembic_version")
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten()
    }

    /// Polls `probe` until it returns true (panics after `limit`).
    pub async fn eventually<F, Fut>(&self, what: &str, limit: Duration, mut probe: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while started.elapsed() < limit {
            if probe().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out after {limit:?} waiting for: {what}");
    }

    /// Waits (at most 120 s) until `probe`, a query of one boolean whose
    /// `$1` is the pattern of worker `pid`'s name (`%:<pid>`), holds: the
    /// moment to kill that worker in the middle of its work.
    pub async fn wait_for_worker(&self, pid: u32, what: &str, probe: &str) {
        let pattern = format!("%:{pid}");
        self.eventually(what, Duration::from_secs(120), || async {
            sqlx::query_scalar::<_, bool>(probe)
                .bind(&pattern)
                .fetch_one(&self.pool)
                .await
                .unwrap_or(false)
        })
        .await;
    }

    /// SIGKILLs worker `pid` in the middle of its work: once `done_first`
    /// tasks of `revision`'s `kind` are done and it holds another one.
    pub async fn kill_while_holding(&self, pid: u32, revision: &str, kind: &str, done_first: i64) {
        let what = format!("{done_first} {kind} task(s) done and one in worker {pid}'s hands");
        let pattern = format!("%:{pid}");
        self.eventually(&what, Duration::from_secs(120), || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT count(*) FILTER (WHERE status = 'done') >= $3
                        AND count(*) FILTER (WHERE status = 'running' AND worker LIKE $4) > 0
                   FROM pipeline.tasks WHERE revision = $1 AND kind = $2",
            )
            .bind(revision)
            .bind(kind)
            .bind(done_first)
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await
            .unwrap_or(false)
        })
        .await;
        self.signal_worker(pid, nix::sys::signal::Signal::SIGKILL);
    }

    /// Waits until at least `at_least` tasks of this database are in `status`.
    pub async fn wait_for_tasks(&self, status: &str, at_least: i64, limit: Duration) {
        let what = format!("{at_least} task(s) {status}");
        self.eventually(&what, limit, || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pipeline.tasks WHERE status = $1")
                .bind(status)
                .fetch_one(&self.pool)
                .await
                .map(|n| n >= at_least)
                .unwrap_or(false)
        })
        .await;
    }

    /// Waits until the `count(*)` query `sql` returns exactly `expected`.
    pub async fn wait_for_count(&self, sql: &str, expected: i64, limit: Duration) {
        let what = format!("{sql} = {expected}");
        self.eventually(&what, limit, || async {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&self.pool)
                .await
                .is_ok_and(|n| n == expected)
        })
        .await;
    }

    /// Messages ready in a queue of this test's topology.
    pub async fn queue_depth(&self, queue: &str) -> anyhow::Result<u32> {
        Ok(self.queue(queue).await?.message_count())
    }

    /// Consumers the broker has on `queue`.
    pub async fn queue_consumers(&self, queue: &str) -> anyhow::Result<u32> {
        Ok(self.queue(queue).await?.consumer_count())
    }

    /// `queue` as the broker has it (a passive declare).
    async fn queue(&self, queue: &str) -> anyhow::Result<lapin::Queue> {
        let connection =
            lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let declared = channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .with_context(|| format!("queue {queue}"))?;
        let _ = connection.close(200, "done".into()).await;
        Ok(declared)
    }

    /// Publishes a raw body to a role's work queue (for poison tests).
    pub async fn publish_raw(&self, role: shared::Role, body: &[u8]) -> anyhow::Result<()> {
        let connection =
            lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await?;
        self.topology().declare(&channel).await?;
        channel
            .basic_publish(
                self.topology().exchange().as_str().into(),
                role.as_str().into(),
                lapin::options::BasicPublishOptions::default(),
                body,
                lapin::BasicProperties::default().with_delivery_mode(2),
            )
            .await?
            .await?;
        let _ = connection.close(200, "done".into()).await;
        Ok(())
    }

    /// Kills every worker this test started.
    pub async fn kill_workers(&mut self) {
        for child in &mut self.workers {
            let _ = child.kill().await;
        }
        self.workers.clear();
    }

    /// Stops the workers, drops the database and deletes the queues.
    pub async fn cleanup(mut self) {
        for child in &mut self.workers {
            let _ = child.kill().await;
        }
        let topology = self.used_topology().await;
        self.pool.close().await;
        if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.db_name
            ))
            .execute(&mut conn)
            .await;
        }
        if let Ok(connection) =
            lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await
        {
            if let Ok(channel) = connection.create_channel().await {
                self.topology().delete(&channel).await;
                if let Some(used) = topology {
                    used.delete(&channel).await;
                }
            }
            let _ = connection.close(200, "done".into()).await;
        }
    }
}

/// stdout and stderr of a finished process, for assertions and messages.
/// The output of a spawned run (`TestEnv::spawn_orchestrator`, ...) once it
/// ends on its own; panics past `limit`, as a hang.
pub async fn finished(run: Child, limit: Duration) -> Output {
    tokio::time::timeout(limit, run.wait_with_output())
        .await
        .expect("the run ends on its own")
        .unwrap()
}

pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts a process succeeded, showing its output when it did not.
pub fn assert_success(output: &Output) {
    assert!(output.status.success(), "command failed:\n{}", text(output));
}
