//! Remote data directories: the seed reads `https://` (a real nginx, which
//! honours `Range`) and `s3://` (moto's S3-compatible server), both started
//! by `REMOTE=1 scripts/services.sh`, as it reads a local folder. Workers
//! fetch only the header and their own range; a missing file, a 403 and a
//! file replaced after planning each fail clearly and load nothing.

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ObjectStore, PutPayload};
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::data::{copy_sample, SAMPLE_FILES};
use testkit::{assert_success, finished, repo_root, text, TestEnv};

const SEED: &str = "ef85393336cb";
const SCHEMA: &str = "1b33292593a9";
/// moto takes any credentials; a distinctive one shows where it leaks.
const SECRET_KEY: &str = "moto-secret-key-4711";

fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run REMOTE=1 scripts/services.sh and load .cache/services.env")
    })
}

/// A copy of `files` of `source` in a folder of its own under nginx's root
/// (`under` is a sub-path such as `forbidden/`); returns the folder and its URL.
fn http_copy(source: &Path, under: &str, files: &[&str]) -> (PathBuf, String) {
    let name = format!("{under}seed-{}", uuid::Uuid::new_v4().simple());
    let dir = PathBuf::from(setting("TEST_HTTP_DATA_ROOT")).join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    for file in files {
        std::fs::copy(source.join(file), dir.join(file)).unwrap();
    }
    (dir, format!("{}{name}/", setting("TEST_HTTP_DATA_URL")))
}

fn s3_client() -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(setting("TEST_S3_ENDPOINT"))
        .with_allow_http(true)
        .with_bucket_name(setting("TEST_S3_BUCKET"))
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key(SECRET_KEY)
        .build()
        .unwrap()
}

async fn s3_put(prefix: &str, file: &str, content: Vec<u8>) {
    s3_client()
        .put(
            &object_store::path::Path::from(format!("{prefix}/{file}")),
            PutPayload::from(content),
        )
        .await
        .unwrap();
}

/// `files` of `source` uploaded under a prefix of their own; returns the prefix and its URL.
async fn s3_copy(source: &Path, files: &[&str]) -> (String, String) {
    let prefix = format!("seed-{}", uuid::Uuid::new_v4().simple());
    for file in files {
        s3_put(&prefix, file, std::fs::read(source.join(file)).unwrap()).await;
    }
    let url = format!("s3://{}/{prefix}/", setting("TEST_S3_BUCKET"));
    (prefix, url)
}

/// A test environment whose processes reach the S3-compatible server.
async fn env_for(name: &str) -> TestEnv {
    let mut env = TestEnv::new(name).await;
    env.set_env("AWS_ENDPOINT_URL", &setting("TEST_S3_ENDPOINT"));
    env.set_env("AWS_REGION", "us-east-1");
    env.set_env("AWS_ACCESS_KEY_ID", "testing");
    env.set_env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    env
}

async fn seeded_table_rows(env: &TestEnv) -> i64 {
    let mut rows = 0;
    for file in SAMPLE_FILES {
        let table = file.trim_end_matches(".csv");
        rows += env
            .scalar(&format!("SELECT count(*) FROM public.{table}"))
            .await;
    }
    rows
}

/// nginx's log lines (`METHOD URI STATUS BYTES "RANGE"`) for one file.
fn served(uri: &str) -> Vec<(String, u64, String)> {
    let log = std::fs::read_to_string(setting("TEST_HTTP_DATA_LOG")).unwrap();
    log.lines()
        .filter_map(|line| {
            let mut words = line.splitn(5, ' ');
            let method = words.next()?.to_string();
            (words.next()? == uri).then_some(())?;
            let _status = words.next()?;
            let bytes = words.next()?.parse().ok()?;
            let range = words.next()?.trim_matches('"').to_string();
            Some((method, bytes, range))
        })
        .collect()
}

#[tokio::test]
async fn the_sample_data_loads_to_the_same_rows_from_a_folder_over_http_and_from_s3() {
    let data = repo_root().join("data");
    let (http_dir, http_url) = http_copy(&data, "", &SAMPLE_FILES);
    let (_, s3_url) = s3_copy(&data, &SAMPLE_FILES).await;
    let mut digests = Vec::new();
    for (name, location) in [
        ("remote_local", data.to_str().unwrap().to_string()),
        ("remote_http", http_url.clone()),
        ("remote_s3", s3_url.clone()),
    ] {
        let mut env = env_for(name).await;
        // Many ranges per file, shared by two workers.
        env.set_env("SEED_TASK_ROWS", "100");
        env.start_worker(&["--role", "all"]);
        env.start_worker(&["--role", "seed"]);
        let output = env
            .orchestrator(&["upgrade", SEED, "--data-dir", &location])
            .await;
        assert_success(&output);
        let status = env.orchestrator(&["status"]).await;
        let payloads: String =
            sqlx::query_scalar("SELECT string_agg(payload::text, ' ') FROM pipeline.tasks")
                .fetch_one(&env.pool)
                .await
                .unwrap();
        for shown in [text(&output), text(&status), payloads.clone()] {
            assert!(!shown.contains(SECRET_KEY), "the S3 secret leaked: {shown}");
        }
        assert!(
            payloads.contains(&location),
            "tasks name the files by their location: {payloads}"
        );
        digests.push((
            name,
            testkit::digest::digest(&env.pool).await.unwrap().overall(),
        ));
        env.cleanup().await;
    }
    assert_eq!(digests[0].1, digests[1].1, "{digests:?}");
    assert_eq!(digests[0].1, digests[2].1, "{digests:?}");

    // The planner reads the whole file once (in ranged parts); the workers
    // read only the header and their own ranges: every read is ranged, and
    // all of them together are about twice the file.
    let reviews = http_dir.join("product_reviews.csv");
    let size = std::fs::metadata(&reviews).unwrap().len();
    let uri = format!(
        "/{}/product_reviews.csv",
        http_dir.file_name().unwrap().to_str().unwrap()
    );
    let gets: Vec<_> = served(&uri)
        .into_iter()
        .filter(|(m, _, _)| m == "GET")
        .collect();
    assert!(
        gets.len() > 12,
        "one read per range and the planner's: {gets:?}"
    );
    assert!(
        gets.iter().all(|(_, _, range)| range.starts_with("bytes=")),
        "{gets:?}"
    );
    let total: u64 = gets.iter().map(|(_, bytes, _)| bytes).sum();
    assert!(
        total < 2 * size + 64 * 1024,
        "{total} bytes served for a file of {size}: a worker read more than its range"
    );
    std::fs::remove_dir_all(&http_dir).ok();
}

#[tokio::test]
async fn a_missing_file_and_a_refused_folder_are_named_and_load_nothing() {
    let data = repo_root().join("data");
    let without_users: Vec<&str> = SAMPLE_FILES
        .into_iter()
        .filter(|f| *f != "users.csv")
        .collect();
    let (http_dir, http_url) = http_copy(&data, "", &without_users);
    let (_, s3_url) = s3_copy(&data, &without_users).await;
    let (forbidden_dir, forbidden_url) = http_copy(&data, "forbidden/", &SAMPLE_FILES);

    let mut env = env_for("remote_missing").await;
    env.start_worker(&["--role", "all"]);
    assert_success(&env.orchestrator(&["upgrade", SCHEMA]).await);
    for (location, expected) in [
        (&http_url, format!("{http_url}users.csv is missing")),
        (&s3_url, format!("{s3_url}users.csv is missing")),
        (&forbidden_url, "403".to_string()),
    ] {
        let output = env
            .orchestrator(&["upgrade", SEED, "--data-dir", location])
            .await;
        let shown = text(&output);
        assert!(!output.status.success(), "{shown}");
        assert!(
            shown.contains(&expected),
            "expected {expected:?} in: {shown}"
        );
        assert!(!shown.contains(SECRET_KEY), "{shown}");
        assert_eq!(
            seeded_table_rows(&env).await,
            0,
            "nothing loaded from {location}"
        );
        assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));
    }
    let refused = env
        .orchestrator(&["upgrade", SEED, "--data-dir", &forbidden_url])
        .await;
    assert!(
        text(&refused).contains("access denied"),
        "a 403 is explained: {}",
        text(&refused)
    );
    std::fs::remove_dir_all(&http_dir).ok();
    std::fs::remove_dir_all(&forbidden_dir).ok();
    env.cleanup().await;
}

/// Plans a seed from `location` with no seed worker, lets `replace` put
/// another version of product_reviews.csv there, then starts a worker: the
/// run fails naming the file, and nothing of it is loaded.
async fn replaced_after_planning(
    name: &str,
    location: &str,
    replace: impl std::future::Future<Output = ()>,
) {
    let mut env = env_for(name).await;
    env.start_worker(&["--role", "all"]);
    assert_success(&env.orchestrator(&["upgrade", SCHEMA]).await);
    env.kill_workers().await;
    let run = env.spawn_orchestrator(&["upgrade", SEED, "--data-dir", location]);
    env.wait_for_tasks("queued", 1, Duration::from_secs(60))
        .await;
    replace.await;
    env.start_worker(&["--role", "seed"]);
    let output = finished(run, Duration::from_secs(300)).await;
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(
        shown.contains(&format!(
            "{location}product_reviews.csv changed since the seed was planned"
        )),
        "{shown}"
    );
    assert_eq!(
        seeded_table_rows(&env).await,
        0,
        "{name}: every table left empty"
    );
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));
    env.cleanup().await;
}

#[tokio::test]
async fn a_remote_file_replaced_after_planning_fails_clearly_and_loads_nothing() {
    let edited = copy_sample("remote-edited");
    testkit::data::edit(&edited, "product_reviews.csv", |c| {
        testkit::data::replace_first(c, b"\"Really happy", b"\"REALLY HAPPY")
    });
    let data = repo_root().join("data");

    let (http_dir, http_url) = http_copy(&data, "", &SAMPLE_FILES);
    let target = http_dir.join("product_reviews.csv");
    let replacement = edited.join("product_reviews.csv");
    replaced_after_planning("remote_http_replaced", &http_url, async {
        // Same size; nginx's ETag (mtime and size) changes with the write.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        std::fs::copy(&replacement, &target).unwrap();
    })
    .await;

    let (prefix, s3_url) = s3_copy(&data, &SAMPLE_FILES).await;
    let content = std::fs::read(&replacement).unwrap();
    replaced_after_planning("remote_s3_replaced", &s3_url, async {
        s3_put(&prefix, "product_reviews.csv", content).await;
    })
    .await;
    std::fs::remove_dir_all(&http_dir).ok();
    std::fs::remove_dir_all(&edited).ok();
}
