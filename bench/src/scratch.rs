//! The scratch room of a benchmark: a generated data set in a temporary
//! folder, a database of its own on the configured server and a queue prefix
//! of its own, so that real workers and data are never touched;
//! [`Room::close`] takes it down.

use anyhow::Context as _;
use orchestrator::driver::{self, RunOptions};
use orchestrator::local_workers::LocalWorkers;
use orchestrator::plan::Direction;
use shared::catalogue;
use shared::config::{ConnectionUrl, Source};
use shared::Config;
use sqlx::Connection as _;
use std::path::PathBuf;
use std::time::Duration;
use testkit::fake_openai::{FakeOpenAi, FakeOptions};

/// The data set a benchmark generates (seed 42).
pub struct DataSet {
    pub products: usize,
    pub reviews: usize,
    pub users: usize,
    /// Share of the reviews whose feature and sentiment the files give.
    pub labelled_share: f64,
}

impl DataSet {
    /// `reviews` reviews of one product per thousand (at least 60).
    pub fn new(reviews: usize, users: usize, labelled_share: f64) -> DataSet {
        DataSet {
            products: (reviews / 1000).max(60),
            reviews,
            users,
            labelled_share,
        }
    }
}

pub struct Room {
    /// The caller's configuration, pointing at the scratch database, queue
    /// prefix and data folder.
    pub config: Config,
    pub data_dir: PathBuf,
    pub summary: datagen::GenerateSummary,
    database: String,
    /// The caller's own database, connected to again to drop the
    /// room's: a connection held for the whole run would not survive the
    /// chaos bench's PostgreSQL restart, and the drop would be lost.
    admin_url: ConnectionUrl,
}

impl Room {
    /// Generates `data` and creates the database of benchmark `name`.
    pub async fn open(config: &Config, name: &str, data: DataSet) -> anyhow::Result<Room> {
        let tag = format!("{}_{}", std::process::id(), chrono::Utc::now().timestamp());
        let data_dir = std::env::temp_dir().join(format!("agenticshop-bench-{name}-{tag}"));
        let generate = datagen::GenerateOptions {
            out_dir: data_dir.clone(),
            products: data.products,
            reviews: data.reviews,
            users: data.users,
            seed: 42,
            labelled_share: data.labelled_share,
        };
        eprintln!(
            "generating {} reviews into {}",
            data.reviews,
            data_dir.display()
        );
        let summary = tokio::task::spawn_blocking(move || datagen::generate(&generate)).await??;

        let database = format!("agenticshop_bench_{}_{tag}", name.replace('-', "_"));
        let url = shared::db::url_with_database(config.database_url.expose(), &database)?;
        let mut admin = sqlx::PgConnection::connect(config.database_url.expose())
            .await
            .with_context(|| format!("connecting to {}", config.database_url))?;
        sqlx::Executor::execute(
            &mut admin,
            format!("CREATE DATABASE \"{database}\"").as_str(),
        )
        .await?;
        let _ = admin.close().await;
        let admin_url = config.database_url.clone();
        let mut config = config.clone();
        config.database_url = ConnectionUrl::new(url);
        config.queue_prefix = Some(format!("bench-{name}-{tag}"));
        config.data_dir = data_dir.clone();
        Ok(Room {
            config,
            data_dir,
            summary,
            database,
            admin_url,
        })
    }

    /// The environment of a benchmark's orchestrator and workers: the room's
    /// database, queue prefix and data folder, with both providers (the
    /// embeddings at `dims` and the chat completions of the enrichment)
    /// answered by the in-process fake `server`.
    pub fn fake_provider_settings(
        &self,
        server: &testkit::fake_openai::FakeOpenAi,
        dims: usize,
    ) -> Vec<(String, String)> {
        [
            (
                "DATABASE_URL",
                self.config.database_url.expose().to_string(),
            ),
            (
                "QUEUE_PREFIX",
                self.config.queue_prefix.clone().unwrap_or_default(),
            ),
            ("DATA_DIR", self.data_dir.display().to_string()),
            ("EMBEDDING_PROVIDER", "openai".into()),
            ("OPENAI_BASE_URL", server.base_url()),
            ("OPENAI_API_KEY", "sk-fake".into()),
            ("EMBEDDING_DIMENSIONS", dims.to_string()),
            ("ENRICH_PROVIDER", "openai".into()),
            ("LLM_MODEL", "gpt-4o-mini".into()),
            ("RUST_LOG", "warn".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Removes the room's queues, database and data folder; with `keep`,
    /// only the queues.
    pub async fn close(self, keep: bool) {
        if let Ok(connection) =
            shared::queue::connect(&self.config, "bench clean-up", Duration::ZERO).await
        {
            let topology = shared::queue::Topology::explicit(&self.config);
            if let (Ok(channel), Some(topology)) = (connection.create_channel().await, topology) {
                topology.delete(&channel).await;
            }
            let _ = connection.close(200, "done".into()).await;
        }
        if keep {
            eprintln!(
                "kept database {} and {}",
                self.database,
                self.data_dir.display()
            );
        } else {
            let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database);
            let dropped = match sqlx::PgConnection::connect(self.admin_url.expose()).await {
                Ok(mut admin) => {
                    let dropped = sqlx::Executor::execute(&mut admin, drop.as_str()).await;
                    let _ = admin.close().await;
                    dropped.map(|_| ())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = dropped {
                eprintln!("could not drop database {}: {e}", self.database);
            }
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// The in-process fake of both providers: 384-dimension embeddings, and
/// chat completions answered from the prompt, each request taking `delay`.
pub async fn fake_providers(delay: Duration) -> anyhow::Result<FakeOpenAi> {
    let server = FakeOpenAi::start(FakeOptions {
        delay,
        dims: 384,
        record_texts: false,
    })
    .await?;
    server.answer_chat_automatically();
    Ok(server)
}

/// A folder for the logs of a benchmark's processes, named after it.
pub fn logs_dir(bench: &str) -> anyhow::Result<PathBuf> {
    let logs = std::env::temp_dir().join(format!(
        "agenticshop-bench-{bench}-logs-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&logs)?;
    Ok(logs)
}

/// The caller's environment with `settings` over it, as the orchestrator
/// would read it.
pub fn config_with(settings: &[(String, String)]) -> anyhow::Result<Config> {
    Ok(Config::from_source(&Source::from_pairs(
        std::env::vars().chain(settings.iter().cloned()),
    ))?)
}

/// A driver on the scratch database once the pipeline itself has applied
/// the extensions, schema and seed revisions (with two local workers). The
/// extensions come first, as in production: with AGE preloaded by the
/// server, the enrichment's downgrade (a DROP TABLE) needs ag_catalog.
pub async fn seeded(config: &Config, options: &RunOptions) -> anyhow::Result<driver::Driver> {
    let loaders = LocalWorkers::start_with_env(2, Some(2), &base_env(config))?;
    let mut driver = driver::start(config, options).await?;
    let setup = async {
        let path: Vec<_> = [catalogue::EXTENSIONS, catalogue::SCHEMA, catalogue::SEED]
            .iter()
            .map(|id| revisions::registry::find(id).expect("a revision of the chain"))
            .collect();
        driver
            .run_path(&path, Direction::Upgrade, &config.data_dir)
            .await
    }
    .await;
    loaders.stop(Duration::from_secs(30)).await;
    match setup {
        Ok(()) => Ok(driver),
        Err(e) => {
            driver.finish(Err(&e)).await;
            Err(e)
        }
    }
}

/// What every worker of the scratch run needs to find its database and queues.
pub fn base_env(config: &Config) -> Vec<(&'static str, &str)> {
    vec![
        ("DATABASE_URL", config.database_url.expose()),
        (
            "QUEUE_PREFIX",
            config.queue_prefix.as_deref().unwrap_or_default(),
        ),
        ("DATA_DIR", config.data_dir.to_str().unwrap_or("data")),
        ("RUST_LOG", "warn"),
    ]
}
