//! Alembic's verbs as the orchestrator speaks them: relative targets,
//! `stamp`, `heads`, `branches`, `show`, and the documented exit codes
//! (0 done, 1 failed, 2 bad usage, 3 lock held with `--no-wait`).

use std::time::Duration;
use testkit::data::{copy_sample, read_csv, write_csv};
use testkit::{assert_success, finished, text, TestEnv};

const EXTENSIONS: &str = "7a35c0d9d159";
const SCHEMA: &str = "1b33292593a9";
const SEED: &str = "ef85393336cb";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_targets_stamp_show_and_exit_codes() {
    let mut env = TestEnv::new("cli_verbs").await;
    env.start_worker(&["--role", "all"]);

    assert_success(&env.orchestrator(&["upgrade", "+2"]).await);
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));
    assert_success(&env.orchestrator(&["downgrade", "-1"]).await);
    assert_eq!(env.current_revision().await.as_deref(), Some(EXTENSIONS));
    assert_success(&env.orchestrator(&["upgrade", "extensions+1"]).await);
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));

    let past = env.orchestrator(&["upgrade", "+9"]).await;
    assert_eq!(past.status.code(), Some(2), "{}", text(&past));
    assert!(
        text(&past).contains("past the end of the chain"),
        "{}",
        text(&past)
    );
    let unknown = env.orchestrator(&["upgrade", "nonesuch"]).await;
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    let bad_flag = env.orchestrator(&["upgrade", SEED, "--no-such-flag"]).await;
    assert_eq!(bad_flag.status.code(), Some(2), "{}", text(&bad_flag));

    // stamp moves the version only: the seed's tables stay empty.
    let tasks_before = env.scalar("SELECT count(*) FROM pipeline.tasks").await;
    assert_success(&env.orchestrator(&["stamp", SEED]).await);
    assert_eq!(env.current_revision().await.as_deref(), Some(SEED));
    assert_eq!(env.scalar("SELECT count(*) FROM public.products").await, 0);
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.tasks").await,
        tasks_before
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.revision_history WHERE direction = 'stamp'")
            .await,
        1
    );
    assert_success(&env.orchestrator(&["stamp", SCHEMA]).await);

    let heads = env.orchestrator(&["heads"]).await;
    assert_success(&heads);
    assert!(String::from_utf8_lossy(&heads.stdout).contains("(head)"));
    let branches = env.orchestrator(&["branches"]).await;
    assert!(String::from_utf8_lossy(&branches.stdout).contains("no branches"));
    let show = env.orchestrator(&["show", "schema"]).await;
    assert_success(&show);
    let shown = String::from_utf8_lossy(&show.stdout).to_string();
    assert!(
        shown.contains(&format!("Rev: {SCHEMA} (schema)")),
        "{shown}"
    );
    assert!(shown.contains(&format!("Parent: {EXTENSIONS}")), "{shown}");
    assert!(shown.contains("Applied: yes"), "{shown}");
    assert!(shown.contains("Last run: #"), "{shown}");

    // The run lock held by a waiting upgrade: --no-wait exits 3.
    env.kill_workers().await;
    let holder = env.spawn_orchestrator(&["upgrade", SEED]);
    env.wait_for_tasks("queued", 1, Duration::from_secs(60))
        .await;
    let refused = env.orchestrator(&["upgrade", SEED, "--no-wait"]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    drop(holder);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_any_earlier_run_by_its_number() {
    let mut env = TestEnv::new("cli_status_run").await;
    env.start_worker(&["--role", "all"]);
    assert_success(&env.orchestrator(&["upgrade", EXTENSIONS]).await);
    assert_success(&env.orchestrator(&["upgrade", SCHEMA]).await);
    let first = env.scalar("SELECT min(id) FROM pipeline.runs").await;

    let last = env.orchestrator(&["status"]).await;
    assert_success(&last);
    let last = String::from_utf8_lossy(&last.stdout).into_owned();
    assert!(last.contains(&format!("{SCHEMA} (schema): done")), "{last}");

    let earlier = env
        .orchestrator(&["status", "--run", &first.to_string()])
        .await;
    assert_success(&earlier);
    let earlier = String::from_utf8_lossy(&earlier.stdout).into_owned();
    assert!(earlier.starts_with(&format!("run #{first} ")), "{earlier}");
    assert!(
        earlier.contains(&format!("{EXTENSIONS} (extensions): done")),
        "{earlier}"
    );
    assert!(!earlier.contains("(schema)"), "{earlier}");

    let unknown = env.orchestrator(&["status", "--run", "999"]).await;
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("there is no run #999"),
        "{}",
        text(&unknown)
    );
    env.cleanup().await;
}

fn json(output: &std::process::Output) -> serde_json::Value {
    assert_success(output);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(output)))
}

/// `status --json` and `history --json` parse, and say what the text views
/// and the task rows say; `-r A:B`, `--verbose` and `current --verbose`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_views_parse_and_match_the_text_views_and_the_task_rows() {
    let mut env = TestEnv::new("cli_json").await;
    env.start_worker(&["--role", "all"]);
    assert_success(&env.orchestrator(&["upgrade", SEED]).await);

    let status = json(&env.orchestrator(&["status", "--json"]).await);
    let status_text = text(&env.orchestrator(&["status"]).await);
    let run = status["id"].as_i64().unwrap();
    assert!(
        status_text.contains(&format!("run #{run} `upgrade {SEED}`: succeeded")),
        "{status_text}"
    );
    assert_eq!(status["status"], "succeeded");
    let revisions = status["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 3, "extensions, schema, seed: {status}");
    let (mut tasks, mut rows) = (0, 0);
    for revision in revisions {
        let id = revision["revision"].as_str().unwrap();
        assert!(
            status_text.contains(&format!(
                "{} {id} ({}): {}",
                revision["direction"].as_str().unwrap(),
                revision["name"].as_str().unwrap(),
                revision["status"].as_str().unwrap()
            )),
            "{id} in {status_text}"
        );
        for phase in revision["phases"].as_array().unwrap() {
            let line = status_text
                .lines()
                .find(|l| {
                    l.trim_start().starts_with(&format!(
                        "phase {} {}:",
                        phase["number"],
                        phase["name"].as_str().unwrap()
                    ))
                })
                .unwrap_or_else(|| panic!("phase {phase} in {status_text}"));
            for task in phase["tasks"].as_array().unwrap() {
                let (count, task_rows) = (
                    task["count"].as_i64().unwrap(),
                    task["rows"].as_i64().unwrap(),
                );
                let said = format!(
                    "{} {} {count}",
                    task["role"].as_str().unwrap(),
                    task["state"].as_str().unwrap()
                );
                assert!(line.contains(&said), "{said} in {line}");
                if task_rows > 0 {
                    assert!(
                        line.contains(&format!("{said} ({task_rows} rows)")),
                        "{line}"
                    );
                }
                tasks += count;
                rows += task_rows;
            }
        }
    }
    let (db_tasks, db_rows): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(t.rows_done), 0)::bigint FROM pipeline.tasks t
           JOIN pipeline.revision_runs rr ON rr.id = t.revision_run_id WHERE rr.run_id = $1",
    )
    .bind(run)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!((tasks, rows), (db_tasks, db_rows));
    assert!(rows > 1000, "the seed loaded the sample rows: {rows}");

    let history = json(&env.orchestrator(&["history", "--json"]).await);
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 6);
    let applied: Vec<bool> = history
        .iter()
        .map(|h| h["applied"].as_bool().unwrap())
        .collect();
    assert_eq!(applied, [true, true, true, false, false, false]);
    assert_eq!(history[2]["current"], true);
    assert_eq!(history[2]["down_revision"], SCHEMA);
    assert_eq!(history[0]["down_revision"], serde_json::Value::Null);
    assert!(history[2]["applied_at"].is_string());
    assert_eq!(history[3]["last_run"], serde_json::Value::Null);

    let range = text(&env.orchestrator(&["history", "-r", "schema:seed"]).await);
    let listed: Vec<&str> = range.lines().filter(|l| l.contains(". ")).collect();
    assert_eq!(listed.len(), 2, "{range}");
    assert!(
        listed[0].contains(SCHEMA) && listed[1].contains(SEED),
        "{range}"
    );
    let from_current = json(
        &env.orchestrator(&["history", "-r", "current:", "--json"])
            .await,
    );
    assert_eq!(from_current.as_array().unwrap().len(), 4, "seed to head");
    let backwards = env.orchestrator(&["history", "-r", "seed:schema"]).await;
    assert_eq!(backwards.status.code(), Some(2), "{}", text(&backwards));

    let verbose = text(&env.orchestrator(&["history", "--verbose"]).await);
    assert!(verbose.contains("Parent: <base>"), "{verbose}");
    assert!(
        verbose.contains(&format!("Parent: {SCHEMA} (schema)")),
        "{verbose}"
    );
    assert!(verbose.contains("Last run: #"), "{verbose}");
    let current = text(&env.orchestrator(&["current", "--verbose"]).await);
    assert!(current.contains(&format!("{SEED} (seed)")), "{current}");
    assert!(
        current.contains(&format!("Parent: {SCHEMA} (schema)")),
        "{current}"
    );
    assert!(current.contains("Applied: yes"), "{current}");

    // A run that has ended is drawn once by --watch, which then returns.
    let watched = env
        .orchestrator_within(&["status", "--watch", "1"], Duration::from_secs(30))
        .await;
    assert_eq!(
        text(&watched).matches("run #").count(),
        1,
        "{}",
        text(&watched)
    );
    env.cleanup().await;
}

/// `status --watch` redraws until the run ends; `schedule list --json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_follows_a_run_to_its_end_and_schedules_list_as_json() {
    let mut env = TestEnv::new("cli_watch").await;
    env.start_worker(&["--role", "all", "--concurrency", "1"]);
    let run = env.spawn_noop_run(4, 1500);
    env.wait_for_tasks("running", 1, Duration::from_secs(60))
        .await;
    let watched = env
        .orchestrator_within(
            &["status", "--watch", "1", "--json"],
            Duration::from_secs(60),
        )
        .await;
    assert_success(&watched);
    let frames: Vec<serde_json::Value> = String::from_utf8_lossy(&watched.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(
        frames.len() >= 2,
        "redrawn while the run went on: {frames:?}"
    );
    assert_eq!(frames[0]["status"], "running");
    assert_eq!(frames.last().unwrap()["status"], "succeeded");
    assert_success(&finished(run, Duration::from_secs(120)).await);

    assert_success(
        &env.orchestrator(&[
            "schedule",
            "add",
            "nightly",
            "--cron",
            "0 3 * * *",
            "--rerun",
            SEED,
            "--tz",
            "Europe/Paris",
        ])
        .await,
    );
    let listed = json(&env.orchestrator(&["schedule", "list", "--json"]).await);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "nightly");
    assert_eq!(listed[0]["cron"], "0 3 * * *");
    assert_eq!(listed[0]["tz"], "Europe/Paris");
    assert_eq!(listed[0]["paused"], false);
    assert!(listed[0]["next_fire"].is_string());
    assert_eq!(listed[0]["last_fire"], serde_json::Value::Null);
    env.cleanup().await;
}

/// `upgrade --sql` / `downgrade --sql`: Alembic's offline mode prints the
/// DDL revisions' SQL, the very statements the workers run, and changes
/// nothing; it needs no database at all; a data revision is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_mode_prints_the_ddl_and_changes_nothing() {
    let mut env = TestEnv::new("cli_offline_sql").await;
    let tables = "SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'pipeline')";

    let up = env.orchestrator(&["upgrade", SCHEMA, "--sql"]).await;
    assert_success(&up);
    let script = String::from_utf8_lossy(&up.stdout).into_owned();
    for expected in [
        "CREATE TABLE IF NOT EXISTS public.alembic_version",
        &format!("-- Running upgrade  -> {EXTENSIONS} (extensions)"),
        "CREATE EXTENSION IF NOT EXISTS vector CASCADE;",
        "CREATE EXTENSION IF NOT EXISTS age CASCADE;",
        &format!("INSERT INTO public.alembic_version (version_num) VALUES ('{EXTENSIONS}');"),
        &format!("-- Running upgrade {EXTENSIONS} -> {SCHEMA} (schema)"),
        "CREATE TABLE public.products (",
        "CREATE TABLE public.product_reviews (",
        "DELETE FROM public.alembic_version;",
        &format!("INSERT INTO public.alembic_version (version_num) VALUES ('{SCHEMA}');"),
        "COMMIT;",
    ] {
        assert!(script.contains(expected), "{expected} in:\n{script}");
    }
    // The schema's SQL is the executor's, whole.
    assert!(script.contains(revisions::schema::UPGRADE_SQL.trim_end()));
    assert_eq!(env.scalar(tables).await, 0, "--sql made a table");
    assert_eq!(
        env.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'pipeline'")
            .await,
        0
    );
    assert_eq!(env.current_revision().await, None);

    // No database is read: the same script with an unreachable one.
    env.set_env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nowhere");
    let offline = env.orchestrator(&["upgrade", SCHEMA, "--sql"]).await;
    assert_success(&offline);
    assert_eq!(offline.stdout, up.stdout);

    // A data revision in the range is refused, naming it, printing nothing.
    for args in [
        &["upgrade", SEED, "--sql"][..],
        &["upgrade", "schema:head", "--sql"],
        &["downgrade", "seed:base", "--sql"],
    ] {
        let refused = env.orchestrator(args).await;
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&refused)
        );
        assert!(
            text(&refused).contains("cannot run offline"),
            "{}",
            text(&refused)
        );
        assert!(refused.stdout.is_empty(), "{}", text(&refused));
    }
    let seed = text(&env.orchestrator(&["upgrade", SEED, "--sql"]).await);
    assert!(
        seed.contains(&format!("revision {SEED} (seed) cannot run offline")),
        "{seed}"
    );
    // Offline, a downgrade must say where it starts.
    let no_start = env.orchestrator(&["downgrade", "base", "--sql"]).await;
    assert_eq!(no_start.status.code(), Some(2), "{}", text(&no_start));

    let down = env
        .orchestrator(&["downgrade", &format!("{SCHEMA}:base"), "--sql"])
        .await;
    assert_success(&down);
    let down_script = String::from_utf8_lossy(&down.stdout).into_owned();
    for expected in [
        &format!("-- Running downgrade {SCHEMA} -> {EXTENSIONS} (schema)"),
        "DROP TABLE IF EXISTS public.products;",
        "DROP TABLE IF EXISTS public.product_reviews;",
        "DROP TYPE IF EXISTS public.personalized_product_section_status;",
        &format!("INSERT INTO public.alembic_version (version_num) VALUES ('{EXTENSIONS}');"),
        &format!("-- Running downgrade {EXTENSIONS} ->  (extensions)"),
    ] {
        assert!(
            down_script.contains(expected),
            "{expected} in:\n{down_script}"
        );
    }

    // What was printed is SQL that does what the online move does.
    sqlx::raw_sql(&script).execute(&env.pool).await.unwrap();
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));
    assert_eq!(
        env.scalar(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'products'"
        )
        .await,
        1
    );
    sqlx::raw_sql(&down_script)
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(env.current_revision().await, None);
    let gone: bool = sqlx::query_scalar("SELECT to_regclass('public.products') IS NULL")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(gone, "the printed downgrade dropped the tables");
    env.cleanup().await;
}

/// `upgrade +1` from every position of the chain moves exactly one revision
/// forward, up to the head, and `downgrade -1` from every position exactly
/// one back, down to base; one step past either end is bad usage. Then a
/// `stamp` is continued from: `upgrade +1` after it runs only the next
/// revision; and a version this one does not know is replaced only by
/// `stamp --purge`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plus_one_and_minus_one_from_every_position_and_stamps_continued_or_purged() {
    let mut env = TestEnv::new("cli_steps").await;
    // A few reviews are enough to run every revision; the whole sample would
    // only make each step slower.
    let data = copy_sample("cli_steps");
    let (header, reviews) = read_csv(&data, "product_reviews.csv");
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_csv(&data, "product_reviews.csv", &header, &reviews[..40]);
    let data = data.display().to_string();
    env.start_worker(&["--role", "all"]);

    let chain: Vec<&str> = revisions::registry::CHAIN.iter().map(|r| r.id).collect();
    // The revisions the last run moved.
    const MOVED: &str = "SELECT count(*) FROM pipeline.revision_runs \
                         WHERE run_id = (SELECT max(id) FROM pipeline.runs)";
    for (position, revision) in chain.iter().enumerate() {
        let step = env
            .orchestrator(&["upgrade", "+1", "--data-dir", &data])
            .await;
        assert_success(&step);
        assert_eq!(
            env.current_revision().await.as_deref(),
            Some(*revision),
            "upgrade +1 from position {position}"
        );
        assert_eq!(
            env.scalar(MOVED).await,
            1,
            "upgrade +1 from position {position} ran one revision"
        );
    }
    let past_head = env.orchestrator(&["upgrade", "+1"]).await;
    assert_eq!(past_head.status.code(), Some(2), "{}", text(&past_head));

    for position in (0..chain.len()).rev() {
        let step = env.orchestrator(&["downgrade", "-1"]).await;
        assert_success(&step);
        let below = position.checked_sub(1).map(|p| chain[p]);
        assert_eq!(
            env.current_revision().await.as_deref(),
            below,
            "downgrade -1 from {}",
            chain[position]
        );
        assert_eq!(
            env.scalar(MOVED).await,
            1,
            "downgrade -1 from {} ran one revision",
            chain[position]
        );
    }
    let past_base = env.orchestrator(&["downgrade", "-1"]).await;
    assert_eq!(past_base.status.code(), Some(2), "{}", text(&past_base));

    // Stamped at the seed with nothing seeded, `upgrade +1` continues from
    // the stamp: it runs the embeddings revision alone, on empty tables.
    assert_success(&env.orchestrator(&["upgrade", SCHEMA]).await);
    assert_success(&env.orchestrator(&["stamp", SEED]).await);
    assert_success(
        &env.orchestrator(&["upgrade", "+1", "--data-dir", &data])
            .await,
    );
    assert_eq!(env.current_revision().await.as_deref(), Some(chain[3]));
    let ran: Vec<String> = sqlx::query_scalar(
        "SELECT revision FROM pipeline.revision_runs WHERE run_id = (SELECT max(id) FROM pipeline.runs)",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(ran, vec![chain[3].to_string()]);
    assert_eq!(env.scalar("SELECT count(*) FROM public.products").await, 0);

    // A version this one does not know is replaced only with --purge.
    sqlx::query("UPDATE public.alembic_version SET version_num = 'deadbeef0000'")
        .execute(&env.pool)
        .await
        .unwrap();
    let refused = env.orchestrator(&["stamp", SCHEMA]).await;
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("\"deadbeef0000\"") && text(&refused).contains("--purge"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        env.current_revision().await.as_deref(),
        Some("deadbeef0000")
    );
    assert_success(&env.orchestrator(&["stamp", SCHEMA, "--purge"]).await);
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));
    env.cleanup().await;
}
