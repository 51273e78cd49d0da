//! Configuration: one typed struct, read once at start from the environment
//! and a `.env` file, then passed down. Nothing else in the tree calls
//! `std::env::var`.
//!
//! Every setting is named after the environment variable that sets it, so an
//! error can say exactly which variable is wrong. Secrets are wrapped in
//! [`Secret`], whose `Debug` and `Display` never show the value, and URLs are
//! shown with their password masked: `orchestrator config`, logs and errors
//! can print a `Config` without leaking anything.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5433/agenticshop";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A value that must never be printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The real value, for the one place that sends it (an HTTP header).
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "(not set)"
        } else {
            "(set, redacted)"
        })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A connection URL that may carry a password: shown with the password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    pub fn new(value: impl Into<String>) -> Self {
        ConnectionUrl(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Query parameters that carry credentials (Azure SAS `sig`, `api-key`, ...).
const SECRET_QUERY_PARAMETERS: &[&str] = &[
    "api-key",
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "sig",
    "signature",
    "code",
    "password",
    "sslpassword",
];

/// Masks the password of a URL and the values of key-like query parameters;
/// a string that does not parse as a URL is masked whole, since it may be
/// anything.
pub fn redact_url(raw: &str) -> String {
    // A list of URLs (AMQP_URL's broker addresses): each part on its own,
    // or a password of the second would pass as part of the first's path.
    if raw.contains(',')
        && raw
            .split(',')
            .all(|part| url::Url::parse(part.trim()).is_ok())
    {
        return raw
            .split(',')
            .map(|part| redact_url(part.trim()))
            .collect::<Vec<_>>()
            .join(",");
    }
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            let secret = |name: &str| {
                SECRET_QUERY_PARAMETERS
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(name))
            };
            if parsed.query_pairs().any(|(name, _)| secret(&name)) {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(name, value)| {
                        let value = if secret(&name) {
                            "***".to_string()
                        } else {
                            value.into_owned()
                        };
                        (name.into_owned(), value)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => "(unparseable URL, redacted)".to_string(),
    }
}

/// True when a data directory (or a file of one) names a remote location,
/// `s3://` or `http(s)://`, rather than a path.
pub fn is_remote_data(location: &str) -> bool {
    ["s3://", "http://", "https://"]
        .iter()
        .any(|scheme| location.starts_with(scheme))
}

/// A remote data directory may not carry credentials (user info, a query
/// string such as a signature): they would be stored in every task row and
/// shown by `status`. The message shows the URL redacted.
pub fn check_remote_data(location: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(location)
        .map_err(|e| format!("{} is not a valid URL: {e}", redact_url(location)))?;
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(format!(
            "{}: a data directory URL may not carry credentials or a query string (they would be stored in \
             the task rows); give S3 credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
            redact_url(location)
        ));
    }
    if url.scheme() == "s3" && url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "{location}: an S3 data directory is s3://BUCKET/PREFIX/"
        ));
    }
    Ok(url)
}

/// What the default queue prefix starts with: with `QUEUE_PREFIX` unset,
/// the prefix is `agenticshop-<the database's identity>` (`queue::Topology`).
pub const DEFAULT_QUEUE_PREFIX: &str = "agenticshop";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {variable} = {shown:?} is not valid: {reason}")]
    Invalid {
        variable: &'static str,
        shown: String,
        reason: String,
    },
    #[error("configuration: {variable} must be set: {reason}")]
    Missing {
        variable: &'static str,
        reason: String,
    },
    #[error("configuration: .env file at {path}: {reason}")]
    DotEnv { path: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingProvider {
    Local,
    OpenAi,
    AzureOpenAi,
}

impl FromStr for EmbeddingProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Self::Local),
            "openai" => Ok(Self::OpenAi),
            "azure-openai" | "azure" => Ok(Self::AzureOpenAi),
            _ => Err("expected one of: local, openai, azure-openai".into()),
        }
    }
}

impl fmt::Display for EmbeddingProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::OpenAi => "openai",
            Self::AzureOpenAi => "azure-openai",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnIndex {
    Hnsw,
    IvfFlat,
    DiskAnn,
}

impl FromStr for AnnIndex {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hnsw" => Ok(Self::Hnsw),
            "ivfflat" => Ok(Self::IvfFlat),
            "diskann" => Ok(Self::DiskAnn),
            _ => Err("expected one of: hnsw, ivfflat, diskann".into()),
        }
    }
}

impl fmt::Display for AnnIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hnsw => "hnsw",
            Self::IvfFlat => "ivfflat",
            Self::DiskAnn => "diskann",
        })
    }
}

/// Where the graph's review-to-feature sentiment edges come from
/// (`GRAPH_SENTIMENT_EDGES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentEdges {
    /// One edge per aspect the enrichment revision wrote into
    /// `review_feature_sentiments`; a review it has no rows for keeps the
    /// edge of its `product_reviews.feature_id` / `sentiment`.
    Aspects,
    /// Only the main feature (`product_reviews.feature_id` / `sentiment`):
    /// the original's counts.
    Main,
}

impl FromStr for SentimentEdges {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "aspects" => Ok(Self::Aspects),
            "main" => Ok(Self::Main),
            _ => Err("expected aspects (one edge per aspect the enrichment found) or main (the main feature only)".into()),
        }
    }
}

impl fmt::Display for SentimentEdges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Aspects => "aspects",
            Self::Main => "main",
        })
    }
}

/// How Cypher matches a property map such as `{product_id: p.id}` in the
/// graph's database (`GRAPH_PROPERTY_MATCH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropertyMatch {
    /// As openCypher says, by equality: the graph revision sets the
    /// database's `age.enable_containment` to `off`, so that the btree
    /// indexes on edge properties answer the shop's query.
    Equality,
    /// AGE's default, `properties @> {...}`, which no btree index serves:
    /// the database's settings are left alone.
    Containment,
}

impl FromStr for PropertyMatch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "equality" => Ok(Self::Equality),
            "containment" => Ok(Self::Containment),
            _ => Err(
                "expected equality (openCypher's, indexed) or containment (AGE's default)".into(),
            ),
        }
    }
}

impl fmt::Display for PropertyMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Equality => "equality",
            Self::Containment => "containment",
        })
    }
}

/// How long a task of each kind may run before it is stopped, its attempt
/// counted (`TASK_DEADLINE_SECS`: seconds for every kind, and `kind=seconds`
/// for one, such as `3600,index=14400`). A task's kind is its typed task's
/// tag (`load`, `embed`, `index`, ... as `status` shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDeadlines {
    pub default_secs: u64,
    pub by_kind: BTreeMap<String, u64>,
}

impl TaskDeadlines {
    /// Every kind that is not named.
    pub const DEFAULT_SECS: u64 = 3600;
    /// The kinds that build indexes over whole tables (the seed's finalize,
    /// the embeddings' ANN index, the graph's label indexes) get longer.
    pub const KIND_DEFAULTS: [(&'static str, u64); 3] =
        [("finalize", 7200), ("finish", 14_400), ("index", 14_400)];

    /// The deadline of a task of `kind`.
    pub fn of(&self, kind: &str) -> std::time::Duration {
        std::time::Duration::from_secs(*self.by_kind.get(kind).unwrap_or(&self.default_secs))
    }

    /// The longest of them: no statement of a task outlives it.
    pub fn longest(&self) -> std::time::Duration {
        let secs = self
            .by_kind
            .values()
            .copied()
            .chain([self.default_secs])
            .max();
        std::time::Duration::from_secs(secs.unwrap_or(self.default_secs))
    }
}

impl Default for TaskDeadlines {
    fn default() -> Self {
        TaskDeadlines {
            default_secs: Self::DEFAULT_SECS,
            by_kind: Self::KIND_DEFAULTS
                .iter()
                .map(|(kind, secs)| (kind.to_string(), *secs))
                .collect(),
        }
    }
}

impl FromStr for TaskDeadlines {
    type Err = String;
    /// Items over the defaults: `3600` (every kind), `index=14400` (one kind).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut deadlines = TaskDeadlines::default();
        let expected = "expected seconds for every kind and kind=seconds for one, separated by commas (3600,index=14400)";
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (kind, secs) = match item.split_once('=') {
                Some((kind, secs)) => (Some(kind.trim()), secs.trim()),
                None => (None, item),
            };
            let secs: u64 = secs.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                format!("{item:?}: seconds must be a whole number above zero; {expected}")
            })?;
            match kind {
                Some(kind)
                    if !kind.is_empty()
                        && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
                {
                    deadlines.by_kind.insert(kind.to_string(), secs);
                }
                Some(kind) => return Err(format!("{kind:?} is not a task kind; {expected}")),
                None => deadlines.default_secs = secs,
            }
        }
        Ok(deadlines)
    }
}

impl fmt::Display for TaskDeadlines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.default_secs)?;
        for (kind, secs) in &self.by_kind {
            write!(f, ",{kind}={secs}")?;
        }
        Ok(())
    }
}

/// Settings of the graph revision (f41ba96cab17).
#[derive(Debug, Clone)]
pub struct GraphConfig {
    pub sentiment_edges: SentimentEdges,
    pub property_match: PropertyMatch,
    /// Source rows (reviews, products, features) per graph task.
    pub task_rows: i64,
}

/// Settings of the embedding revision and of `search`.
#[derive(Debug, Clone)]
pub struct EmbeddingConfig {
    pub provider: EmbeddingProvider,
    /// Model name (openai) or deployment name (azure-openai); informative for local.
    pub model: String,
    /// Folder holding the local model's files (`model.safetensors`, `tokenizer.json`, ...).
    pub model_dir: PathBuf,
    /// Requested output dimensions (HTTP providers that support `dimensions`).
    pub dimensions: Option<u32>,
    /// Texts per provider request.
    pub request_batch_size: usize,
    /// Provider requests in flight per worker task.
    pub requests_in_flight: usize,
    /// Source rows per embed task.
    pub task_rows: i64,
    /// Threads for the local model (0: all cores).
    pub local_threads: usize,
    pub index: AnnIndex,
    pub hnsw_m: u32,
    pub hnsw_ef_construction: u32,
    pub index_maintenance_work_mem: String,
    pub products_table: String,
    pub reviews_table: String,
    /// HTTP providers: inputs longer than this many characters are cut
    /// (the provider's own limit is in tokens, which only it can count).
    pub max_input_chars: usize,
}

/// The OpenAI-compatible and Azure OpenAI APIs: where they are, the keys,
/// and how patient to be with them. One section for embeddings and chat,
/// each with its own API version and HTTP limits.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// `OPENAI_BASE_URL`: `https://api.openai.com/v1` or any server speaking its API.
    pub base_url: String,
    pub api_key: Secret,
    /// `AZURE_OPENAI_ENDPOINT`: `https://<resource>.openai.azure.com`.
    pub azure_endpoint: String,
    pub azure_api_key: Secret,
    /// `AZURE_API_VERSION_EMBEDDING_MODEL`.
    pub azure_api_version_embedding: String,
    /// `AZURE_API_VERSION_LLM`.
    pub azure_api_version_llm: String,
    /// `EMBEDDING_HTTP_*`: embedding requests.
    pub embedding_http: HttpLimits,
    /// `LLM_HTTP_*`: chat completion requests (longer: an answer is generated).
    pub llm_http: HttpLimits,
}

/// Time-out and retry limits of one kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest wait for one response.
    pub timeout_secs: u64,
    /// Retries after the first attempt (429, 5xx, 408, time-outs, transport errors).
    pub max_retries: u32,
    /// Longest total time slept between attempts of one request.
    pub max_wait_secs: u64,
}

/// Which analyser decides the features and sentiments of reviews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrichProvider {
    /// In-process: the local MiniLM model and a sentiment lexicon; no network.
    Local,
    OpenAi,
    AzureOpenAi,
}

impl EnrichProvider {
    pub fn is_llm(self) -> bool {
        self != EnrichProvider::Local
    }
}

impl FromStr for EnrichProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Self::Local),
            "openai" => Ok(Self::OpenAi),
            "azure-openai" | "azure" => Ok(Self::AzureOpenAi),
            _ => Err("expected one of: local, openai, azure-openai".into()),
        }
    }
}

impl fmt::Display for EnrichProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::OpenAi => "openai",
            Self::AzureOpenAi => "azure-openai",
        })
    }
}

/// Which reviews the enrichment revision decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrichScope {
    /// Only what the data leaves missing: the values the CSV files carry stand.
    Missing,
    /// Every review, overwriting the data's values.
    All,
}

impl FromStr for EnrichScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "missing" => Ok(Self::Missing),
            "all" => Ok(Self::All),
            _ => Err("expected missing or all".into()),
        }
    }
}

impl fmt::Display for EnrichScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "missing",
            Self::All => "all",
        })
    }
}

/// Settings of the enrichment revision (f3e916f4940d).
#[derive(Debug, Clone)]
pub struct EnrichmentConfig {
    /// `USE_AZURE_AI_FOR_REVIEWS`, the original's switch: scope `all` with
    /// an LLM provider (Azure OpenAI unless `ENRICH_PROVIDER` names another).
    pub use_azure_ai: bool,
    /// `LLM_MODEL`: the model (OpenAI) or deployment (Azure) asked.
    pub llm_model: String,
    pub provider: EnrichProvider,
    pub scope: EnrichScope,
    /// Review ids per enrich task.
    pub task_rows: i64,
    /// Reviews in one chat request.
    pub reviews_per_request: usize,
    /// Chat requests in flight per worker process, all its tasks together
    /// (the most; rate limits lower it).
    pub concurrency: usize,
    /// Tries of one request whose answer is unusable (malformed, a review
    /// missing, an unknown sentiment) before its reviews are recorded failed.
    pub answer_tries: u32,
    /// Share of the reviews that may fail before the revision fails.
    pub max_failed_share: f64,
    /// Use the provider's Batch API (half price, answers within 24 h).
    pub batch_api: bool,
    /// How long a task waits before checking back on its batch.
    pub batch_poll_secs: u64,
    /// Threads of the local analyser's model (0: all cores).
    pub local_threads: usize,
}

/// The usual `AWS_*` variables an S3-compatible data directory is reached with.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`): a self-hosted store; empty for AWS.
    pub endpoint: String,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`).
    pub region: String,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Secret,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: ConnectionUrl,
    pub amqp_url: ConnectionUrl,
    /// `QUEUE_PREFIX`: the prefix of every exchange and queue name, when
    /// set. Unset, the prefix is derived from the database's identity
    /// (`agenticshop-<uuid>`, see `queue::Topology::for_database`), so that
    /// several databases share one broker without seeing each other's tasks.
    pub queue_prefix: Option<String>,
    /// A path, or an `s3://` / `http(s)://` URL (remote data directories).
    pub data_dir: PathBuf,
    /// The S3 settings of an `s3://` data directory, as `config` shows them
    /// (the seed's object store client reads the same `AWS_*` variables).
    pub s3: S3Settings,
    /// Attempts per task before it is dead-lettered.
    pub task_max_attempts: i32,
    /// A running task whose worker has not renewed its lease for this long
    /// is taken back (the worker renews it every quarter of it).
    pub task_lease_secs: u64,
    /// A worker's statement gives up after waiting this long for a lock
    /// (`lock_timeout`), and the task is retried: the application DDL the
    /// pipeline runs (TRUNCATE, DROP, index builds, the graph's swap) never
    /// queues behind the shop's open transaction, blocking the shop's own
    /// queries behind it in turn.
    pub task_lock_timeout_secs: u64,
    /// How long a task of each kind may run; the worker stops it then, and
    /// no statement a worker runs outlives the longest (`statement_timeout`).
    pub task_deadlines: TaskDeadlines,
    /// A task waiting this long with no message for it anywhere in sight is
    /// published again.
    pub task_reconcile_secs: u64,
    /// How often each worker reconciles the tasks of its roles
    /// (`TASK_RECONCILE_EVERY_SECS`, 10).
    pub task_reconcile_every_secs: u64,
    /// How long a publish waits for the broker's confirm before it counts
    /// as failed (`CONFIRM_TIMEOUT_SECS`, 30).
    pub confirm_timeout_secs: u64,
    /// Tasks a worker process runs at once.
    pub worker_concurrency: usize,
    /// CSV records per seed task.
    pub seed_task_rows: u64,
    pub memory_table: String,
    pub memory_dims: u32,
    pub embedding: EmbeddingConfig,
    pub openai: OpenAiConfig,
    pub enrichment: EnrichmentConfig,
    pub graph: GraphConfig,
    /// `METRICS_ADDR` (`HOST:PORT`): where a worker, or an orchestrator
    /// running a move, serves `/metrics`, `/healthz` and `/readyz`; `None`:
    /// nowhere.
    pub metrics_addr: Option<String>,
}

/// Where settings come from: a snapshot of the process environment, merged
/// with a `.env` file for names the environment does not set.
pub struct Source {
    values: BTreeMap<String, String>,
}

impl Source {
    /// The process environment plus `.env` (from the current directory or
    /// the file named by `ENV_FILE`), the environment winning.
    pub fn from_process() -> Result<Self, ConfigError> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        let env_file = std::env::var("ENV_FILE").unwrap_or_else(|_| ".env".into());
        let path = PathBuf::from(&env_file);
        if path.exists() {
            let iter = dotenvy::from_path_iter(&path).map_err(|e| ConfigError::DotEnv {
                path: env_file.clone(),
                reason: e.to_string(),
            })?;
            for item in iter {
                let (k, v) = item.map_err(|e| ConfigError::DotEnv {
                    path: env_file.clone(),
                    reason: e.to_string(),
                })?;
                values.insert(k, v);
            }
        }
        for (k, v) in std::env::vars() {
            values.insert(k, v);
        }
        Ok(Source { values })
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Source {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|s| s.as_str())
            .filter(|s| !s.trim().is_empty())
    }

    fn string(&self, name: &'static str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_string()
    }

    fn parse<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
                variable: name,
                shown: raw.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// `DATA_DIR`: a path, or a remote data directory without credentials in it.
    fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        let raw = self.string("DATA_DIR", "data");
        if is_remote_data(&raw) {
            check_remote_data(&raw).map_err(|reason| ConfigError::Invalid {
                variable: "DATA_DIR",
                shown: redact_url(&raw),
                reason,
            })?;
        }
        Ok(PathBuf::from(raw))
    }

    fn positive<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Default + Copy,
        T::Err: fmt::Display,
    {
        let value = self.parse(name, default)?;
        if value <= T::default() {
            return Err(ConfigError::Invalid {
                variable: name,
                shown: self.get(name).unwrap_or_default().to_string(),
                reason: "must be greater than zero".into(),
            });
        }
        Ok(value)
    }

    fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::Invalid {
                    variable: name,
                    shown: v,
                    reason: "expected true or false".into(),
                }),
            },
        }
    }

    fn identifier(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.string(name, default);
        let valid = !value.is_empty()
            && value.len() <= 58
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !value.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(ConfigError::Invalid {
                variable: name,
                shown: value,
                reason: "expected a lower-case SQL identifier (a-z, 0-9, _; not starting with a digit; at most 58 characters)".into(),
            });
        }
        Ok(value)
    }

    fn url(
        &self,
        name: &'static str,
        value: String,
        schemes: &[&str],
    ) -> Result<ConnectionUrl, ConfigError> {
        match url::Url::parse(&value) {
            Ok(parsed) if schemes.contains(&parsed.scheme()) => Ok(ConnectionUrl::new(value)),
            Ok(parsed) => Err(ConfigError::Invalid {
                variable: name,
                shown: redact_url(&value),
                reason: format!(
                    "scheme {:?} is not one of {}",
                    parsed.scheme(),
                    schemes.join(", ")
                ),
            }),
            Err(e) => Err(ConfigError::Invalid {
                variable: name,
                shown: "(redacted)".into(),
                reason: e.to_string(),
            }),
        }
    }

    /// `HOST:PORT` to listen on (`0.0.0.0:9100`, `localhost:0`), or `None`.
    fn listen_address(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.get(name).map(str::trim) else {
            return Ok(None);
        };
        let valid = value
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(ConfigError::Invalid {
                variable: name,
                shown: value.to_string(),
                reason: "expected HOST:PORT, such as 0.0.0.0:9100".into(),
            });
        }
        Ok(Some(value.to_string()))
    }

    /// `DATABASE_URL` when set, else one built from the original's `DB_*`
    /// variables, else the default of the local setup script.
    fn database_url(&self) -> Result<ConnectionUrl, ConfigError> {
        if let Some(url) = self.get("DATABASE_URL") {
            return self.url("DATABASE_URL", url.to_string(), &["postgres", "postgresql"]);
        }
        let any_db_var = ["DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"]
            .iter()
            .chain(DB_TLS_VARIABLES.iter().map(|(variable, _)| variable))
            .any(|n| self.get(n).is_some());
        if !any_db_var {
            return Ok(ConnectionUrl::new(DEFAULT_DATABASE_URL));
        }
        let host = self.string("DB_HOST", "127.0.0.1");
        let port: u16 = self.parse("DB_PORT", 5432)?;
        let user = self.string("DB_USER", "postgres");
        let name = self.string("DB_NAME", "agenticshop");
        let mut url = url::Url::parse("postgres://localhost").expect("static URL parses");
        url.set_host(Some(&host))
            .map_err(|e| ConfigError::Invalid {
                variable: "DB_HOST",
                shown: host.clone(),
                reason: e.to_string(),
            })?;
        let _ = url.set_port(Some(port));
        let _ = url.set_username(&user);
        if let Some(password) = self.get("DB_PASSWORD") {
            let _ = url.set_password(Some(password));
        }
        url.set_path(&name);
        for (variable, parameter) in DB_TLS_VARIABLES {
            if let Some(value) = self.get(variable) {
                if *variable == "DB_SSLMODE" && !SSL_MODES.contains(&value) {
                    return Err(ConfigError::Invalid {
                        variable,
                        shown: value.to_string(),
                        reason: format!("not one of {}", SSL_MODES.join(", ")),
                    });
                }
                url.query_pairs_mut().append_pair(parameter, value);
            }
        }
        Ok(ConnectionUrl::new(url.to_string()))
    }
}

/// The original's `DB_*` variables for TLS, with the libpq URL parameter
/// each becomes (managed servers such as Azure Database for PostgreSQL
/// require TLS).
const DB_TLS_VARIABLES: &[(&str, &str)] = &[
    ("DB_SSLMODE", "sslmode"),
    ("DB_SSLROOTCERT", "sslrootcert"),
    ("DB_SSLCERT", "sslcert"),
    ("DB_SSLKEY", "sslkey"),
];

/// libpq's `sslmode` values, as sqlx takes them.
const SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// `$HOME/.cache/agenticshop/all-MiniLM-L6-v2`, where the setup script puts
/// the local model.
fn default_model_dir(src: &Source) -> PathBuf {
    let home = src.get("HOME").unwrap_or("/root");
    PathBuf::from(home).join(".cache/agenticshop/all-MiniLM-L6-v2")
}

impl Config {
    /// Reads the configuration of this process (environment and `.env`).
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_source(&Source::from_process()?)
    }

    pub fn from_source(src: &Source) -> Result<Config, ConfigError> {
        let provider: EmbeddingProvider =
            src.parse("EMBEDDING_PROVIDER", EmbeddingProvider::Local)?;
        let default_model = match provider {
            EmbeddingProvider::Local => "all-MiniLM-L6-v2",
            EmbeddingProvider::OpenAi | EmbeddingProvider::AzureOpenAi => "text-embedding-3-small",
        };
        let dimensions = match src.get("EMBEDDING_DIMENSIONS") {
            None => None,
            Some(_) => Some(src.positive::<u32>("EMBEDDING_DIMENSIONS", 1)?),
        };
        let embedding = EmbeddingConfig {
            provider,
            model: src.string("EMBEDDING_MODEL", default_model),
            model_dir: src
                .get("EMBEDDING_MODEL_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| default_model_dir(src)),
            dimensions,
            request_batch_size: src.positive("EMBEDDING_BATCH_SIZE", 64usize)?,
            requests_in_flight: src.positive("EMBEDDING_REQUESTS_IN_FLIGHT", 4usize)?,
            task_rows: src.positive("EMBED_TASK_ROWS", 2000i64)?,
            local_threads: src.parse("EMBEDDING_THREADS", 0usize)?,
            index: src.parse("EMBEDDING_INDEX", AnnIndex::Hnsw)?,
            hnsw_m: src.positive("HNSW_M", 16u32)?,
            hnsw_ef_construction: src.positive("HNSW_EF_CONSTRUCTION", 64u32)?,
            index_maintenance_work_mem: src.string("INDEX_MAINTENANCE_WORK_MEM", "1GB"),
            products_table: src
                .identifier("DB_EMBEDDING_TABLE_FOR_PRODUCTS", "product_embeddings")?,
            reviews_table: src.identifier("DB_EMBEDDING_TABLE_FOR_REVIEWS", "review_embeddings")?,
            max_input_chars: src.positive("EMBEDDING_MAX_INPUT_CHARS", 24_000usize)?,
        };
        let openai = OpenAiConfig {
            base_url: src.string("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            api_key: Secret::new(src.string("OPENAI_API_KEY", "")),
            azure_endpoint: src.string("AZURE_OPENAI_ENDPOINT", ""),
            azure_api_key: Secret::new(src.string("AZURE_OPENAI_API_KEY", "")),
            azure_api_version_embedding: src
                .string("AZURE_API_VERSION_EMBEDDING_MODEL", "2024-02-01"),
            azure_api_version_llm: src.string("AZURE_API_VERSION_LLM", "2024-08-01-preview"),
            embedding_http: HttpLimits {
                timeout_secs: src.positive("EMBEDDING_HTTP_TIMEOUT_SECS", 60u64)?,
                max_retries: src.parse("EMBEDDING_HTTP_MAX_RETRIES", 6u32)?,
                max_wait_secs: src.positive("EMBEDDING_HTTP_MAX_WAIT_SECS", 600u64)?,
            },
            llm_http: HttpLimits {
                timeout_secs: src.positive("LLM_HTTP_TIMEOUT_SECS", 120u64)?,
                max_retries: src.parse("LLM_HTTP_MAX_RETRIES", 6u32)?,
                max_wait_secs: src.positive("LLM_HTTP_MAX_WAIT_SECS", 600u64)?,
            },
        };
        if embedding.provider == EmbeddingProvider::AzureOpenAi && openai.azure_endpoint.is_empty()
        {
            return Err(ConfigError::Missing {
                variable: "AZURE_OPENAI_ENDPOINT",
                reason: "EMBEDDING_PROVIDER=azure-openai needs the Azure OpenAI endpoint".into(),
            });
        }
        let use_azure_ai = src.boolean("USE_AZURE_AI_FOR_REVIEWS", false)?;
        let enrich_provider = src.parse(
            "ENRICH_PROVIDER",
            if use_azure_ai {
                EnrichProvider::AzureOpenAi
            } else {
                EnrichProvider::Local
            },
        )?;
        if use_azure_ai && !enrich_provider.is_llm() {
            return Err(ConfigError::Invalid {
                variable: "ENRICH_PROVIDER",
                shown: enrich_provider.to_string(),
                reason: "USE_AZURE_AI_FOR_REVIEWS=true asks for an LLM provider (azure-openai or openai)".into(),
            });
        }
        let max_failed_share: f64 = src.parse("ENRICH_MAX_FAILED_SHARE", 0.01)?;
        if !(0.0..=1.0).contains(&max_failed_share) {
            return Err(ConfigError::Invalid {
                variable: "ENRICH_MAX_FAILED_SHARE",
                shown: max_failed_share.to_string(),
                reason: "expected a share between 0 and 1 (0.01 is 1 %)".into(),
            });
        }
        let enrichment = EnrichmentConfig {
            use_azure_ai,
            llm_model: src.string("LLM_MODEL", "gpt-4o"),
            provider: enrich_provider,
            scope: src.parse(
                "ENRICH_SCOPE",
                if use_azure_ai {
                    EnrichScope::All
                } else {
                    EnrichScope::Missing
                },
            )?,
            task_rows: src.positive("ENRICH_TASK_ROWS", 1000i64)?,
            reviews_per_request: src.positive("ENRICH_REVIEWS_PER_REQUEST", 10usize)?,
            concurrency: src.positive("ENRICH_CONCURRENCY", 4usize)?,
            answer_tries: src.positive("ENRICH_ANSWER_TRIES", 3u32)?,
            max_failed_share,
            batch_api: src.boolean("ENRICH_BATCH_API", false)?,
            batch_poll_secs: src.positive("ENRICH_BATCH_POLL_SECS", 60u64)?,
            local_threads: src.parse("ENRICH_THREADS", 0usize)?,
        };
        let amqp_url = ConnectionUrl::new(src.string("AMQP_URL", DEFAULT_AMQP_URL));
        for address in crate::amqp_url::broker_addresses(amqp_url.expose()) {
            src.url("AMQP_URL", address.to_string(), &["amqp", "amqps"])?;
            // The TLS files the URL names are read now, so that a wrong path
            // stops the process at start rather than at every reconnection.
            crate::amqp_url::tls_config(address).map_err(|e| ConfigError::Invalid {
                variable: "AMQP_URL",
                shown: amqp_url.redacted(),
                reason: format!("{e:#}"),
            })?;
        }
        let queue_prefix = src.get("QUEUE_PREFIX").map(str::to_string);
        if let Some(prefix) = &queue_prefix {
            if !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(ConfigError::Invalid {
                    variable: "QUEUE_PREFIX",
                    shown: prefix.clone(),
                    reason: "expected letters, digits, '_', '-' or '.'".into(),
                });
            }
        }
        let memory_table = src.identifier("MEM0_MEMORY_TABLE_NAME", "memories")?;
        crate::table_names::check(&crate::table_names::configured(
            &memory_table,
            &embedding.products_table,
            &embedding.reviews_table,
        ))
        .map_err(|refused| ConfigError::Invalid {
            variable: refused.variable,
            shown: refused.value,
            reason: refused.reason,
        })?;
        Ok(Config {
            database_url: src.database_url()?,
            amqp_url,
            queue_prefix,
            data_dir: src.data_dir()?,
            s3: S3Settings {
                endpoint: src.string("AWS_ENDPOINT_URL", &src.string("AWS_ENDPOINT", "")),
                region: src.string("AWS_REGION", &src.string("AWS_DEFAULT_REGION", "")),
                access_key_id: Secret::new(src.string("AWS_ACCESS_KEY_ID", "")),
                secret_access_key: Secret::new(src.string("AWS_SECRET_ACCESS_KEY", "")),
                session_token: Secret::new(src.string("AWS_SESSION_TOKEN", "")),
            },
            task_max_attempts: src.positive("TASK_MAX_ATTEMPTS", 3i32)?,
            task_lease_secs: src.positive("TASK_LEASE_SECS", 60u64)?,
            task_lock_timeout_secs: src.positive("TASK_LOCK_TIMEOUT_SECS", 5u64)?,
            task_deadlines: src.parse("TASK_DEADLINE_SECS", TaskDeadlines::default())?,
            task_reconcile_secs: src.positive("TASK_RECONCILE_SECS", 90u64)?,
            task_reconcile_every_secs: src.positive("TASK_RECONCILE_EVERY_SECS", 10u64)?,
            confirm_timeout_secs: src.positive("CONFIRM_TIMEOUT_SECS", 30u64)?,
            worker_concurrency: src.positive("WORKER_CONCURRENCY", 4usize)?,
            seed_task_rows: src.positive("SEED_TASK_ROWS", 50_000u64)?,
            memory_table,
            memory_dims: src.positive("MEM0_EMBEDDING_MODEL_DIMS", 384u32)?,
            embedding,
            openai,
            enrichment,
            graph: GraphConfig {
                sentiment_edges: src.parse("GRAPH_SENTIMENT_EDGES", SentimentEdges::Aspects)?,
                property_match: src.parse("GRAPH_PROPERTY_MATCH", PropertyMatch::Equality)?,
                task_rows: src.positive("GRAPH_TASK_ROWS", 50_000i64)?,
            },
            metrics_addr: src.listen_address("METRICS_ADDR")?,
        })
    }

    /// The effective configuration as `(variable, shown value)` lines, every
    /// secret redacted: what `orchestrator config` prints.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let e = &self.embedding;
        let o = &self.openai;
        vec![
            ("DATABASE_URL", self.database_url.redacted()),
            ("AMQP_URL", self.amqp_url.redacted()),
            (
                "QUEUE_PREFIX",
                self.queue_prefix.clone().unwrap_or_else(|| {
                    format!("(unset: {}-<database identity>)", DEFAULT_QUEUE_PREFIX)
                }),
            ),
            ("DATA_DIR", self.data_dir.display().to_string()),
            (
                "AWS_ENDPOINT_URL",
                if self.s3.endpoint.is_empty() {
                    "(not set: AWS)".into()
                } else {
                    redact_url(&self.s3.endpoint)
                },
            ),
            (
                "AWS_REGION",
                if self.s3.region.is_empty() {
                    "(not set)".into()
                } else {
                    self.s3.region.clone()
                },
            ),
            ("AWS_ACCESS_KEY_ID", self.s3.access_key_id.to_string()),
            (
                "AWS_SECRET_ACCESS_KEY",
                self.s3.secret_access_key.to_string(),
            ),
            ("AWS_SESSION_TOKEN", self.s3.session_token.to_string()),
            ("TASK_MAX_ATTEMPTS", self.task_max_attempts.to_string()),
            ("TASK_LEASE_SECS", self.task_lease_secs.to_string()),
            (
                "TASK_LOCK_TIMEOUT_SECS",
                self.task_lock_timeout_secs.to_string(),
            ),
            ("TASK_DEADLINE_SECS", self.task_deadlines.to_string()),
            ("TASK_RECONCILE_SECS", self.task_reconcile_secs.to_string()),
            (
                "TASK_RECONCILE_EVERY_SECS",
                self.task_reconcile_every_secs.to_string(),
            ),
            (
                "CONFIRM_TIMEOUT_SECS",
                self.confirm_timeout_secs.to_string(),
            ),
            ("WORKER_CONCURRENCY", self.worker_concurrency.to_string()),
            ("SEED_TASK_ROWS", self.seed_task_rows.to_string()),
            ("MEM0_MEMORY_TABLE_NAME", self.memory_table.clone()),
            ("MEM0_EMBEDDING_MODEL_DIMS", self.memory_dims.to_string()),
            ("EMBEDDING_PROVIDER", e.provider.to_string()),
            ("EMBEDDING_MODEL", e.model.clone()),
            ("EMBEDDING_MODEL_DIR", e.model_dir.display().to_string()),
            (
                "EMBEDDING_DIMENSIONS",
                e.dimensions
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "(provider default)".into()),
            ),
            ("EMBEDDING_BATCH_SIZE", e.request_batch_size.to_string()),
            (
                "EMBEDDING_REQUESTS_IN_FLIGHT",
                e.requests_in_flight.to_string(),
            ),
            ("EMBED_TASK_ROWS", e.task_rows.to_string()),
            (
                "EMBEDDING_THREADS",
                if e.local_threads == 0 {
                    "(all cores)".into()
                } else {
                    e.local_threads.to_string()
                },
            ),
            ("EMBEDDING_INDEX", e.index.to_string()),
            ("HNSW_M", e.hnsw_m.to_string()),
            ("HNSW_EF_CONSTRUCTION", e.hnsw_ef_construction.to_string()),
            (
                "INDEX_MAINTENANCE_WORK_MEM",
                e.index_maintenance_work_mem.clone(),
            ),
            ("DB_EMBEDDING_TABLE_FOR_PRODUCTS", e.products_table.clone()),
            ("DB_EMBEDDING_TABLE_FOR_REVIEWS", e.reviews_table.clone()),
            ("EMBEDDING_MAX_INPUT_CHARS", e.max_input_chars.to_string()),
            ("OPENAI_BASE_URL", redact_url(&o.base_url)),
            ("OPENAI_API_KEY", o.api_key.to_string()),
            (
                "AZURE_OPENAI_ENDPOINT",
                if o.azure_endpoint.is_empty() {
                    "(not set)".into()
                } else {
                    redact_url(&o.azure_endpoint)
                },
            ),
            ("AZURE_OPENAI_API_KEY", o.azure_api_key.to_string()),
            (
                "AZURE_API_VERSION_EMBEDDING_MODEL",
                o.azure_api_version_embedding.clone(),
            ),
            ("AZURE_API_VERSION_LLM", o.azure_api_version_llm.clone()),
            (
                "EMBEDDING_HTTP_TIMEOUT_SECS",
                o.embedding_http.timeout_secs.to_string(),
            ),
            (
                "EMBEDDING_HTTP_MAX_RETRIES",
                o.embedding_http.max_retries.to_string(),
            ),
            (
                "EMBEDDING_HTTP_MAX_WAIT_SECS",
                o.embedding_http.max_wait_secs.to_string(),
            ),
            ("LLM_HTTP_TIMEOUT_SECS", o.llm_http.timeout_secs.to_string()),
            ("LLM_HTTP_MAX_RETRIES", o.llm_http.max_retries.to_string()),
            (
                "LLM_HTTP_MAX_WAIT_SECS",
                o.llm_http.max_wait_secs.to_string(),
            ),
            (
                "USE_AZURE_AI_FOR_REVIEWS",
                self.enrichment.use_azure_ai.to_string(),
            ),
            ("LLM_MODEL", self.enrichment.llm_model.clone()),
            ("ENRICH_PROVIDER", self.enrichment.provider.to_string()),
            ("ENRICH_SCOPE", self.enrichment.scope.to_string()),
            ("ENRICH_TASK_ROWS", self.enrichment.task_rows.to_string()),
            (
                "ENRICH_REVIEWS_PER_REQUEST",
                self.enrichment.reviews_per_request.to_string(),
            ),
            (
                "ENRICH_CONCURRENCY",
                self.enrichment.concurrency.to_string(),
            ),
            (
                "ENRICH_ANSWER_TRIES",
                self.enrichment.answer_tries.to_string(),
            ),
            (
                "ENRICH_MAX_FAILED_SHARE",
                self.enrichment.max_failed_share.to_string(),
            ),
            ("ENRICH_BATCH_API", self.enrichment.batch_api.to_string()),
            (
                "ENRICH_BATCH_POLL_SECS",
                self.enrichment.batch_poll_secs.to_string(),
            ),
            ("ENRICH_THREADS", self.enrichment.local_threads.to_string()),
            (
                "GRAPH_SENTIMENT_EDGES",
                self.graph.sentiment_edges.to_string(),
            ),
            (
                "GRAPH_PROPERTY_MATCH",
                self.graph.property_match.to_string(),
            ),
            ("GRAPH_TASK_ROWS", self.graph.task_rows.to_string()),
            (
                "METRICS_ADDR",
                self.metrics_addr
                    .clone()
                    .unwrap_or_else(|| "(not set: no metrics server)".into()),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_variables_build_the_database_url_and_the_password_never_shows() {
        let src = Source::from_pairs([
            ("DB_HOST", "db.example"),
            ("DB_PORT", "6543"),
            ("DB_USER", "shop"),
            ("DB_PASSWORD", "hunter2"),
            ("DB_NAME", "shopdb"),
        ]);
        let config = Config::from_source(&src).unwrap();
        assert_eq!(
            config.database_url.expose(),
            "postgres://shop:hunter2@db.example:6543/shopdb"
        );
        let printed = format!("{config:?} {:?}", config.describe());
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn db_tls_variables_become_the_urls_ssl_parameters() {
        let src = Source::from_pairs([
            ("DB_HOST", "shop.postgres.database.azure.com"),
            ("DB_SSLMODE", "verify-full"),
            ("DB_SSLROOTCERT", "/etc/ssl/azure root.pem"),
            ("DB_SSLCERT", "/etc/ssl/client.pem"),
            ("DB_SSLKEY", "/etc/ssl/client.key"),
        ]);
        let config = Config::from_source(&src).unwrap();
        let url = url::Url::parse(config.database_url.expose()).unwrap();
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            query,
            [
                ("sslmode", "verify-full"),
                ("sslrootcert", "/etc/ssl/azure root.pem"),
                ("sslcert", "/etc/ssl/client.pem"),
                ("sslkey", "/etc/ssl/client.key"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let err = Config::from_source(&Source::from_pairs([("DB_SSLMODE", "on")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("DB_SSLMODE") && err.contains("verify-full"),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_setting_names_its_variable() {
        let src = Source::from_pairs([("WORKER_CONCURRENCY", "lots")]);
        let err = Config::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("WORKER_CONCURRENCY"), "{err}");
        let src = Source::from_pairs([("DB_EMBEDDING_TABLE_FOR_REVIEWS", "x; drop table")]);
        let err = Config::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("DB_EMBEDDING_TABLE_FOR_REVIEWS"), "{err}");
        let src = Source::from_pairs([("AMQP_URL", "http://x")]);
        let err = Config::from_source(&src).unwrap_err().to_string();
        assert!(err.contains("AMQP_URL"), "{err}");
    }

    #[test]
    fn urls_are_shown_without_passwords_or_key_parameters() {
        assert_eq!(
            redact_url("amqp://user:pw@broker:5672/%2f"),
            "amqp://user:***@broker:5672/%2f"
        );
        assert_eq!(
            redact_url("https://x.openai.azure.com/openai/deployments/d/embeddings?api-version=2024-02-01&api-key=s3cr3t"),
            "https://x.openai.azure.com/openai/deployments/d/embeddings?api-version=2024-02-01&api-key=***"
        );
        let shown =
            redact_url("https://blob.example/f?sv=1&SIG=abc%2Bdef&Token=t0k&key=k3y&keep=me");
        for secret in ["abc", "t0k", "k3y"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("sv=1") && shown.contains("keep=me"),
            "{shown}"
        );
        assert_eq!(
            redact_url("not a url sk-123"),
            "(unparseable URL, redacted)"
        );
    }

    #[test]
    fn config_shows_every_variable_it_showed_before_the_openai_section() {
        let shown: Vec<&str> =
            Config::from_source(&Source::from_pairs(Vec::<(String, String)>::new()))
                .unwrap()
                .describe()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
        for name in [
            "OPENAI_BASE_URL",
            "OPENAI_API_KEY",
            "AZURE_OPENAI_ENDPOINT",
            "AZURE_OPENAI_API_KEY",
            "AZURE_API_VERSION_EMBEDDING_MODEL",
            "AZURE_API_VERSION_LLM",
            "EMBEDDING_HTTP_TIMEOUT_SECS",
            "EMBEDDING_HTTP_MAX_RETRIES",
            "EMBEDDING_MAX_INPUT_CHARS",
            "USE_AZURE_AI_FOR_REVIEWS",
            "LLM_MODEL",
            "LLM_HTTP_TIMEOUT_SECS",
            "LLM_HTTP_MAX_RETRIES",
            "LLM_HTTP_MAX_WAIT_SECS",
            "EMBEDDING_HTTP_MAX_WAIT_SECS",
        ] {
            assert_eq!(shown.iter().filter(|n| **n == name).count(), 1, "{name}");
        }
    }

    #[test]
    fn task_deadlines_have_per_kind_defaults_that_one_setting_overrides() {
        let defaults = Config::from_source(&Source::from_pairs(Vec::<(String, String)>::new()))
            .unwrap()
            .task_deadlines;
        assert_eq!(defaults.of("load").as_secs(), TaskDeadlines::DEFAULT_SECS);
        assert_eq!(defaults.of("index").as_secs(), 14_400);
        let src = Source::from_pairs([("TASK_DEADLINE_SECS", "600, noop=2,index=7200")]);
        let set = Config::from_source(&src).unwrap().task_deadlines;
        assert_eq!(
            (
                set.of("load").as_secs(),
                set.of("noop").as_secs(),
                set.of("index").as_secs()
            ),
            (600, 2, 7200)
        );
        assert_eq!(set.longest().as_secs(), 14_400, "finish keeps its default");
        assert_eq!(set.to_string().parse::<TaskDeadlines>().unwrap(), set);
        for bad in ["soon", "noop=0", "Noop=5", "=5"] {
            let src = Source::from_pairs([("TASK_DEADLINE_SECS", bad)]);
            let err = Config::from_source(&src).unwrap_err().to_string();
            assert!(err.contains("TASK_DEADLINE_SECS"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_data_directory_url_with_credentials_is_refused_without_showing_them() {
        for url in [
            "https://user:pw-data@files.example/data/",
            "https://files.example/data/?sig=sig-value",
        ] {
            let err = Config::from_source(&Source::from_pairs([("DATA_DIR", url)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("DATA_DIR") && err.contains("credentials"),
                "{err}"
            );
            assert!(
                !err.contains("pw-data") && !err.contains("sig-value"),
                "{err}"
            );
        }
        let remote =
            Config::from_source(&Source::from_pairs([("DATA_DIR", "s3://bucket/seed/")])).unwrap();
        assert_eq!(remote.data_dir.to_string_lossy(), "s3://bucket/seed/");
    }

    #[test]
    fn amqp_url_takes_several_broker_addresses_each_checked_and_redacted() {
        let list = "amqp://u:pw-one@broker-a:5672/%2f, amqp://u:pw-two@broker-b:5672/%2f";
        let config = Config::from_source(&Source::from_pairs([("AMQP_URL", list)])).unwrap();
        let addresses: Vec<&str> =
            crate::amqp_url::broker_addresses(config.amqp_url.expose()).collect();
        assert_eq!(addresses.len(), 2);
        let shown = format!("{config:?} {:?}", config.describe());
        assert!(
            !shown.contains("pw-one") && !shown.contains("pw-two"),
            "{shown}"
        );
        assert!(
            shown.contains("broker-a") && shown.contains("broker-b"),
            "{shown}"
        );
        let bad = "amqp://broker-a/%2f,http://broker-b/";
        let err = Config::from_source(&Source::from_pairs([("AMQP_URL", bad)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("AMQP_URL") && err.contains("http"), "{err}");
    }

    #[test]
    fn api_keys_are_redacted_everywhere() {
        let src = Source::from_pairs([
            ("OPENAI_API_KEY", "sk-secret-123"),
            ("AZURE_OPENAI_API_KEY", "az-secret-456"),
            ("AMQP_URL", "amqp://user:pw-789@broker:5672/%2f"),
            ("AWS_ACCESS_KEY_ID", "AKIA-secret-id"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret-key"),
            ("AWS_SESSION_TOKEN", "aws-session-token"),
        ]);
        let config = Config::from_source(&src).unwrap();
        let printed = format!("{config:?} {:?}", config.describe());
        for secret in [
            "sk-secret-123",
            "az-secret-456",
            "pw-789",
            "AKIA-secret-id",
            "aws-secret-key",
            "aws-session-token",
        ] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
    }
}
