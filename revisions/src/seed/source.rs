//! Where the seed's files are: a local folder, or a remote one that every
//! worker machine reads over the network, so that workers on many machines
//! need no shared disk.
//!
//! `--data-dir` / `DATA_DIR` takes a path, `s3://bucket/prefix/` (any
//! S3-compatible store: endpoint, region and credentials from the usual
//! `AWS_*` variables, path-style addressing) or `http(s)://host/path/` (a
//! plain web server that honours `Range`). Everything after this module
//! reads local files: the planner scans a downloaded copy of each remote
//! file, and a worker makes a sparse local copy of only the bytes its task
//! needs (the header and its own range) at their own offsets, so ranges,
//! line numbers and content digests mean the same on both sides.
//!
//! A remote file is pinned to what was planned: every read is conditional
//! on the ETag the planner saw (`If-Match`) and checks the size, and the
//! content digests of [`shared::csv_chunks`] are checked after, so a file
//! replaced between planning and loading fails the task with a clear
//! error instead of loading half-old, half-new data.

use anyhow::{bail, Context};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore};
use shared::exec::Permanent;
use std::collections::HashMap;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use url::Url;

/// The folder the seed reads, as `--data-dir` / `DATA_DIR` names it.
pub enum DataDir {
    /// Absolute: workers resolve it on their own machines.
    Local(PathBuf),
    /// Ends with `/`: file names are joined to it.
    Remote(Url),
}

/// Bytes per ranged read when the planner downloads a whole file to scan it.
const PART_BYTES: u64 = 16 << 20;
/// Ranged reads in flight per file.
const PARTS_IN_FLIGHT: usize = 4;

pub use shared::config::is_remote_data as is_remote;

impl DataDir {
    pub fn parse(dir: &Path) -> anyhow::Result<DataDir> {
        let shown = dir.to_string_lossy();
        if !is_remote(&shown) {
            let absolute = std::fs::canonicalize(dir).with_context(|| {
                format!(
                    "the data directory {} does not exist or cannot be read; point --data-dir or DATA_DIR at the folder of CSV files",
                    dir.display()
                )
            })?;
            if !absolute.is_dir() {
                bail!("the data directory {} is not a folder", absolute.display());
            }
            return Ok(DataDir::Local(absolute));
        }
        let mut url = remote_url(&shown)?;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(DataDir::Remote(url))
    }

    /// The location of a file of the folder: what tasks carry, and workers open.
    pub fn join(&self, name: &str) -> String {
        match self {
            DataDir::Local(dir) => dir.join(name).display().to_string(),
            DataDir::Remote(url) => format!("{url}{name}"),
        }
    }

    pub fn shown(&self) -> String {
        match self {
            DataDir::Local(dir) => dir.display().to_string(),
            DataDir::Remote(url) => url.to_string(),
        }
    }
}

/// A remote location, refused when it carries credentials
/// ([`shared::config::check_remote_data`]).
fn remote_url(location: &str) -> anyhow::Result<Url> {
    shared::config::check_remote_data(location).map_err(|reason| anyhow::anyhow!(reason))
}

/// One client per bucket or web server and process: each keeps its own
/// connection pool, and building an S3 client reads the environment.
fn store_for(url: &Url) -> anyhow::Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let origin = format!("{}://{}", url.scheme(), url.authority());
    let path = ObjectPath::from_url_path(url.path())
        .with_context(|| format!("{url}: not a valid object path"))?;
    let mut stores = STORES.get_or_init(Default::default).lock().unwrap();
    if let Some(store) = stores.get(&origin) {
        return Ok((store.clone(), path));
    }
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" => {
            // The usual AWS_* variables, as `AmazonS3Builder::from_env` reads
            // them, but an empty one counts as unset (compose passes
            // `${AWS_REGION:-}` through as an empty string).
            let mut builder = AmazonS3Builder::new();
            for (key, value) in std::env::vars() {
                if !key.starts_with("AWS_") || value.is_empty() {
                    continue;
                }
                if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                    builder = builder.with_config(key, value);
                }
            }
            builder = builder.with_url(origin.as_str());
            // The AWS CLI's name for a custom endpoint (MinIO, moto, Ceph…),
            // over plain HTTP when it says so.
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .ok();
            if let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) {
                builder = builder
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_endpoint(endpoint);
            }
            Arc::new(
                builder
                    .build()
                    .with_context(|| format!("setting up the S3 client for {origin}"))?,
            )
        }
        _ => Arc::new(
            HttpBuilder::new()
                .with_url(origin.as_str())
                .with_client_options(ClientOptions::new().with_allow_http(url.scheme() == "http"))
                .build()
                .with_context(|| format!("setting up the HTTP client for {origin}"))?,
        ),
    };
    stores.insert(origin, store.clone());
    Ok((store, path))
}

/// What the planner saw of a remote file.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    pub bytes: u64,
    pub etag: Option<String>,
}

/// The size and ETag of a remote file; `None` when it does not exist.
pub async fn head(location: &str) -> anyhow::Result<Option<RemoteFile>> {
    let url = remote_url(location)?;
    let (store, path) = store_for(&url)?;
    match store.head(&path).await {
        Ok(meta) => Ok(Some(RemoteFile {
            bytes: meta.size,
            etag: meta.e_tag,
        })),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(explain(location, e)),
    }
}

/// Downloads a whole remote file into `dest` for the planner's scan, by
/// ranged reads pinned to the ETag `file` was seen with.
pub async fn download(location: &str, file: &RemoteFile, dest: &Path) -> anyhow::Result<()> {
    let parts: Vec<Range<u64>> = (0..file.bytes)
        .step_by(PART_BYTES as usize)
        .map(|start| start..(start + PART_BYTES).min(file.bytes))
        .collect();
    let out = std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    out.set_len(file.bytes)?;
    fetch_ranges(location, file, &parts, &out).await
}

/// A worker's local view of a file a task names: the file itself when it is
/// local; for a remote file, a sparse copy in a folder of its own holding
/// only `ranges` at their offsets (removed when the view is dropped).
pub struct LocalView {
    pub path: PathBuf,
    /// The file as the user named it, for messages.
    pub shown: String,
    scratch: Option<PathBuf>,
}

impl Drop for LocalView {
    fn drop(&mut self) {
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Opens a file a task names, as it was planned (`planned`): a local file
/// must have the planned size; a remote one the planned size and ETag, and
/// only `ranges` of it are fetched. Every mismatch is a [`Permanent`] error
/// that says what changed and where.
pub async fn open(location: &str, planned: &RemoteFile, ranges: &[Range<u64>]) -> anyhow::Result<LocalView> {
    if !is_remote(location) {
        let path = PathBuf::from(location);
        let bytes = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(_) => {
                let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
                return Err(Permanent::new(format!(
                    "{location} does not exist on this worker (host {}): every worker machine must see the data \
                     directory at the same path as the orchestrator (a shared or copied folder), or read it from \
                     an s3:// or https:// data directory",
                    host.trim()
                ))
                .into());
            }
        };
        if bytes != planned.bytes {
            return Err(Permanent::new(format!(
                "{location} has {bytes} bytes on this worker, but had {} when the seed was planned: \
                 the file changed (or this machine sees another file at that path); \
                 run the command again to plan afresh",
                planned.bytes
            ))
            .into());
        }
        return Ok(LocalView {
            path,
            shown: location.to_string(),
            scratch: None,
        });
    }
    let url = remote_url(location)?;
    let name = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .filter(|name| !name.is_empty())
        .with_context(|| format!("{location} names no file"))?
        .to_string();
    let scratch = std::env::temp_dir().join(format!("agenticshop-seed-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let view = LocalView {
        path: scratch.join(&name),
        shown: location.to_string(),
        scratch: Some(scratch),
    };
    let out = std::fs::File::create(&view.path)
        .with_context(|| format!("creating {}", view.path.display()))?;
    out.set_len(planned.bytes)?;
    fetch_ranges(location, planned, ranges, &out).await?;
    Ok(view)
}

/// Reads `ranges` of a remote file into `out` at their offsets, each read
/// conditional on the planned ETag and checked against the planned size.
async fn fetch_ranges(
    location: &str,
    planned: &RemoteFile,
    ranges: &[Range<u64>],
    out: &std::fs::File,
) -> anyhow::Result<()> {
    let url = remote_url(location)?;
    let (store, path) = store_for(&url)?;
    let reads: Vec<_> = ranges
        .iter()
        .filter(|r| !r.is_empty())
        .cloned()
        .map(|range| {
            let read = RangeRead {
                store: store.clone(),
                path: path.clone(),
                location: location.to_string(),
                planned: planned.clone(),
                range,
            };
            read.fetch()
        })
        .collect();
    let mut parts = futures_util::stream::iter(reads).buffer_unordered(PARTS_IN_FLIGHT);
    while let Some((offset, bytes)) = parts.try_next().await? {
        out.write_all_at(&bytes, offset)?;
    }
    Ok(())
}

/// One ranged read, owning what it needs (the reads run concurrently).
struct RangeRead {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    location: String,
    planned: RemoteFile,
    range: Range<u64>,
}

impl RangeRead {
    async fn fetch(self) -> anyhow::Result<(u64, bytes::Bytes)> {
        let RangeRead {
            store,
            path,
            location,
            planned,
            range,
        } = self;
        let options = GetOptions {
            if_match: planned.etag.clone(),
            range: Some(GetRange::Bounded(range.clone())),
            ..GetOptions::default()
        };
        let got = store
            .get_opts(&path, options)
            .await
            .map_err(|e| explain(&location, e))?;
        if got.meta.size != planned.bytes {
            return Err(changed(
                &location,
                &format!(
                    "it has {} bytes now, {} when the seed was planned",
                    got.meta.size, planned.bytes
                ),
            ));
        }
        let bytes = got.bytes().await.map_err(|e| explain(&location, e))?;
        if bytes.len() as u64 != range.end - range.start {
            bail!(
                "{location}: asked for bytes {}–{} and got {} bytes; does the server honour Range?",
                range.start,
                range.end,
                bytes.len()
            );
        }
        Ok((range.start, bytes))
    }
}

fn changed(location: &str, what: &str) -> anyhow::Error {
    Permanent::new(format!(
        "{location} changed since the seed was planned: {what}; nothing of it was loaded; \
         run the command again to plan afresh from the file as it is now"
    ))
    .into()
}

/// An object store error as a user reads it. Those no retry can mend are
/// [`Permanent`]; the rest (a connection refused, a 5xx after the client's
/// own retries) are left to the task's retries.
fn explain(location: &str, e: object_store::Error) -> anyhow::Error {
    match e {
        object_store::Error::NotFound { .. } => Permanent::new(format!(
            "{location} does not exist (HTTP 404, or no such key): was it removed or renamed since the seed was planned?"
        ))
        .into(),
        object_store::Error::Precondition { .. } => changed(
            location,
            "it is another version of the file (its ETag is not the one planned)",
        ),
        object_store::Error::PermissionDenied { .. } => Permanent::new(format!(
            "{location}: access denied (HTTP 403); check the server's permissions, or AWS_ACCESS_KEY_ID / \
             AWS_SECRET_ACCESS_KEY and the bucket policy"
        ))
        .into(),
        object_store::Error::Unauthenticated { .. } => Permanent::new(format!(
            "{location}: not authenticated (HTTP 401); set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        ))
        .into(),
        other if location.starts_with("s3://") => anyhow::Error::new(other).context(format!(
            "reading {location} (the S3 client is set by AWS_ENDPOINT_URL, AWS_REGION and \
             AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; without keys it asks the instance metadata service)"
        )),
        other => anyhow::Error::new(other).context(format!("reading {location}")),
    }
}
