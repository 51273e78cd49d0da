//! Logs a platform can read: `LOG_FORMAT=json` (one object per line, every
//! line of a task carrying the task's fields and the worker's name), no
//! colour escapes in a log file, and the local workers of `--with-workers`
//! told apart by their names.

use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use testkit::{assert_success, finished, text, TestEnv};

const SCHEMA: &str = "1b33292593a9";

/// Each line of `log` as a JSON object (panics, showing the line, if one is not).
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let value: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}"));
            assert!(value.is_object(), "{l}");
            value
        })
        .collect()
}

/// Every process of the test logs JSON, with the runtime's per-task lines
/// ("done: N rows", debug).
fn log_json(env: &mut TestEnv) {
    env.set_env("LOG_FORMAT", "json");
    env.set_env("RUST_LOG", "info,lapin=off,sqlx=warn,workers=debug");
}

/// `(revision, role, run, attempts, worker)` of every task row, by id.
async fn task_rows(env: &TestEnv) -> HashMap<i64, (String, String, i64, i64, String)> {
    let rows: Vec<(i64, String, String, i64, i32, Option<String>)> = sqlx::query_as(
        "SELECT t.id, t.revision, t.role, rr.run_id, t.attempts, t.worker
           FROM pipeline.tasks t JOIN pipeline.revision_runs rr ON rr.id = t.revision_run_id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, revision, role, run, attempts, worker)| {
            (
                id,
                (
                    revision,
                    role,
                    run,
                    attempts as i64,
                    worker.unwrap_or_default(),
                ),
            )
        })
        .collect()
}

/// Checks every line logged during a task against its row; returns how
/// many lines were of a task, and the attempts they named.
fn check_task_lines(
    lines: &[Value],
    rows: &HashMap<i64, (String, String, i64, i64, String)>,
) -> (usize, Vec<i64>) {
    let mut attempts = Vec::new();
    for line in lines.iter().filter(|l| l.get("task").is_some()) {
        let id = line["task"].as_i64().unwrap_or_else(|| panic!("{line}"));
        let (revision, role, run, last_attempt, worker) = rows
            .get(&id)
            .unwrap_or_else(|| panic!("no task row {id}: {line}"));
        assert_eq!(line["revision"].as_str(), Some(revision.as_str()), "{line}");
        assert_eq!(line["role"].as_str(), Some(role.as_str()), "{line}");
        assert_eq!(line["run"].as_i64(), Some(*run), "{line}");
        let attempt = line["attempt"]
            .as_i64()
            .unwrap_or_else(|| panic!("no attempt: {line}"));
        assert!((1..=*last_attempt).contains(&attempt), "{line}");
        attempts.push(attempt);
        assert_eq!(line["worker"].as_str(), Some(worker.as_str()), "{line}");
    }
    (attempts.len(), attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_log_has_one_object_per_line_and_the_task_fields_on_every_line_of_a_task() {
    let mut env = TestEnv::new("logs_json").await;
    log_json(&mut env);
    let log = std::env::temp_dir().join(format!("{}.worker.json.log", env.db_name));
    let pid = env.start_worker_logging_to(&["--role", "all", "--label", "solo"], &log);

    let up = env.orchestrator(&["upgrade", SCHEMA]).await;
    assert_success(&up);
    // The orchestrator's own report is JSON too.
    let report = json_lines(&String::from_utf8_lossy(&up.stderr));
    assert!(
        report.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("recorded; alembic_version is now"))),
        "{}",
        text(&up)
    );
    // Every task fails its first attempt, so lines of attempt 1 and 2.
    let run = env.spawn_noop_run_with(2, &["--fail-attempts", "1"]);
    assert_success(&finished(run, Duration::from_secs(120)).await);
    env.kill_workers().await;

    let logged = std::fs::read_to_string(&log).unwrap();
    let lines = json_lines(&logged);
    let name = lines[0]["worker"].as_str().unwrap_or_default().to_string();
    assert!(
        name.starts_with("solo@") && name.ends_with(&format!(":{pid}")),
        "the worker's name is label@host:pid: {logged}"
    );
    for line in &lines {
        assert_eq!(line["worker"].as_str(), Some(name.as_str()), "{line}");
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
    let rows = task_rows(&env).await;
    let (of_tasks, attempts) = check_task_lines(&lines, &rows);
    // extensions and schema: one line each at least; no-op: a failure and a
    // completion each.
    assert!(of_tasks >= 6, "{of_tasks} task lines in {logged}");
    assert!(
        attempts.contains(&1) && attempts.contains(&2),
        "{attempts:?}"
    );
    let extension_line = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("created extension(s)"))
        })
        .unwrap_or_else(|| panic!("{logged}"));
    assert_eq!(extension_line["revision"], "7a35c0d9d159");
    std::fs::remove_file(&log).ok();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_log_file_has_no_escapes_and_local_workers_lines_carry_their_names() {
    let mut env = TestEnv::new("logs_text").await;
    // A worker's text log written to a file: no ESC byte.
    let log = std::env::temp_dir().join(format!("{}.worker.log", env.db_name));
    env.start_worker_logging_to(&["--role", "all"], &log);
    let run = env.spawn_noop_run(2, 10);
    assert_success(&finished(run, Duration::from_secs(120)).await);
    env.kill_workers().await;
    let logged = std::fs::read(&log).unwrap();
    assert!(
        logged.windows(5).any(|w| w == b" INFO"),
        "{}",
        String::from_utf8_lossy(&logged)
    );
    assert!(
        !logged.contains(&0x1b),
        "ESC bytes in a log file: {:?}",
        String::from_utf8_lossy(&logged)
    );
    std::fs::remove_file(&log).ok();

    // Two local workers: each of their lines starts with its name.
    let out = env
        .orchestrator(&["upgrade", SCHEMA, "--with-workers", "2"])
        .await;
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.stderr.contains(&0x1b), "{stderr:?}");
    for n in [1, 2] {
        let prefix = format!("[worker-{n}] ");
        let theirs: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&prefix)).collect();
        assert!(
            theirs.iter().any(|l| l.contains("consuming")),
            "worker-{n}'s start in {stderr}"
        );
        assert!(
            theirs.iter().all(
                |l| !l.contains("worker{worker=") || l.contains(&format!("worker=worker-{n}@"))
            ),
            "{stderr}"
        );
    }
    // Every line of a worker's is prefixed (none of them unprefixed).
    assert!(
        stderr
            .lines()
            .filter(|l| l.contains("worker{worker="))
            .all(|l| l.starts_with("[worker-")),
        "{stderr}"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_of_local_workers_carry_their_names_and_match_the_task_rows() {
    let mut env = TestEnv::new("logs_json_local").await;
    log_json(&mut env);
    let out = env
        .orchestrator(&["upgrade", SCHEMA, "--with-workers", "2"])
        .await;
    assert_success(&out);
    let lines = json_lines(&String::from_utf8_lossy(&out.stderr));
    for n in [1, 2] {
        assert!(
            lines.iter().any(|l| l["worker"]
                .as_str()
                .is_some_and(|w| w.starts_with(&format!("worker-{n}@")))),
            "worker-{n} in {}",
            text(&out)
        );
    }
    let (of_tasks, _) = check_task_lines(&lines, &task_rows(&env).await);
    assert!(of_tasks >= 2, "{}", text(&out));

    env.set_env("LOG_FORMAT", "xml");
    let refused = env.orchestrator(&["history"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("LOG_FORMAT") && said.contains("text") && said.contains("json"),
        "{said}"
    );
    env.cleanup().await;
}
