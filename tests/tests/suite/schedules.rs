//! Schedules and schedulers, with the real binaries: several `orchestrator
//! scheduler` processes share one database; each due time fires once.

use nix::sys::signal::Signal;
use std::time::Duration;
use testkit::data::{copy_sample, edit, replace_first};
use testkit::fake_openai::{FakeOpenAi, FakeOptions};
use testkit::{assert_success, finished, text, TestEnv};

const SCHEMA: &str = "1b33292593a9";

fn scheduler(env: &TestEnv, name: &str) -> tokio::process::Child {
    env.spawn_orchestrator(&["scheduler", "--name", name, "--tick-ms", "100"])
}

fn signal(child: &tokio::process::Child, signal: Signal) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_fire_each_due_second_exactly_once() {
    let env = TestEnv::new("sched_three").await;
    // A database at base, upgraded to base: each fire takes the run lock,
    // records a run and finds nothing to do.
    assert_success(
        &env.orchestrator(&[
            "schedule",
            "add",
            "tick",
            "--cron",
            "* * * * * *",
            "--upgrade",
            "base",
        ])
        .await,
    );
    let schedulers: Vec<_> = (1..=3).map(|i| scheduler(&env, &format!("s{i}"))).collect();
    tokio::time::sleep(Duration::from_secs(30)).await;
    for s in &schedulers {
        signal(s, Signal::SIGTERM);
    }
    for s in schedulers {
        let out = finished(s, Duration::from_secs(30)).await;
        assert!(out.status.success(), "{}", text(&out));
    }
    let (fires, distinct, span, failed): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT due_at),
                extract(epoch FROM max(due_at) - min(due_at))::bigint + 1,
                count(*) FILTER (WHERE status <> 'succeeded')
           FROM pipeline.schedule_fires WHERE schedule = 'tick'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(fires >= 25, "{fires} fires in 30 s");
    assert_eq!(fires, distinct, "no due time fired twice");
    assert_eq!(
        fires, span,
        "every due second between the first and the last fired"
    );
    assert_eq!(failed, 0);
    let by: i64 = env
        .scalar("SELECT count(DISTINCT scheduler) FROM pipeline.schedule_fires")
        .await;
    assert!(by >= 2, "the fires were shared: {by} scheduler(s)");
    let list = env.orchestrator(&["schedule", "list"]).await;
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("succeeded"),
        "{}",
        text(&list)
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_fires_catch_up_once_or_not_at_all_and_bad_schedules_are_refused() {
    let env = TestEnv::new("sched_catch_up").await;
    // Each refused at `schedule add`, naming what is wrong.
    for (cron, action, named) in [
        ("61 * * * *", ["--upgrade", "base"], "\"61 * * * *\""),
        ("* * * * *", ["--rerun", "nonesuch"], "nonesuch"),
    ] {
        let bad = env
            .orchestrator(&["schedule", "add", "x", "--cron", cron, action[0], action[1]])
            .await;
        assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
        assert!(text(&bad).contains(named), "{}", text(&bad));
    }

    for (name, catch_up) in [("one", "one"), ("none", "none")] {
        assert_success(
            &env.orchestrator(&[
                "schedule",
                "add",
                name,
                "--cron",
                "* * * * * *",
                "--upgrade",
                "base",
                "--catch-up",
                catch_up,
            ])
            .await,
        );
    }
    // No scheduler for several due times.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let s = scheduler(&env, "late");
    env.wait_for_count(
        "SELECT least(count(*), 2) FROM pipeline.schedule_fires WHERE status <> 'running'",
        2,
        Duration::from_secs(30),
    )
    .await;
    signal(&s, Signal::SIGTERM);
    let first = |name: &'static str| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_as::<_, (String, Option<String>)>(
                "SELECT status, note FROM pipeline.schedule_fires WHERE schedule = $1 ORDER BY due_at LIMIT 1",
            )
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (status, note) = first("one").await;
    assert_eq!(status, "succeeded");
    assert!(note.unwrap_or_default().contains("catches up once"));
    let (status, note) = first("none").await;
    assert_eq!(status, "missed");
    assert!(note.unwrap_or_default().contains("none fired"));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_fire_makes_later_ones_skip_and_survives_its_scheduler_being_killed() {
    let mut env = TestEnv::new("sched_overlap").await;
    // No worker yet: the fire's upgrade waits for one.
    assert_success(
        &env.orchestrator(&[
            "schedule",
            "add",
            "long",
            "--cron",
            "* * * * * *",
            "--upgrade",
            SCHEMA,
        ])
        .await,
    );
    let victim = scheduler(&env, "victim");
    env.wait_for_count(
        "SELECT least(count(*), 2) FROM pipeline.schedule_fires WHERE status = 'skipped'",
        2,
        Duration::from_secs(30),
    )
    .await;
    let note: String = sqlx::query_scalar(
        "SELECT note FROM pipeline.schedule_fires WHERE status = 'skipped' ORDER BY id LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(note.contains("still running"), "{note}");
    signal(&victim, Signal::SIGKILL);
    let _ = victim.wait_with_output().await;
    // Another scheduler takes the fire up; a worker lets it finish.
    let heir = scheduler(&env, "heir");
    env.start_worker(&["--role", "all"]);
    env.wait_for_count(
        "SELECT count(*) FROM pipeline.schedule_fires WHERE status = 'succeeded' AND note LIKE '%resumed by heir%'",
        1,
        Duration::from_secs(60),
    )
    .await;
    signal(&heir, Signal::SIGTERM);
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.schedule_fires WHERE status = 'running'")
            .await,
        0
    );
    env.cleanup().await;
}

/// `rerun seed --cascade` after three reviews changed in the files: each
/// revision after the seed does only its own changed work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascade_after_three_edited_reviews_sends_exactly_those_three_and_touches_only_their_graph(
) {
    let mut env = TestEnv::new("cascade").await;
    let server = FakeOpenAi::start(FakeOptions {
        delay: Duration::ZERO,
        dims: 384,
        record_texts: true,
    })
    .await
    .expect("start the fake OpenAI server");
    env.embed_with(&server, 384);
    env.enrich_with(&server);
    env.start_worker(&["--role", "all"]);
    env.start_worker(&["--role", "all"]);
    let dir = copy_sample("cascade");
    let data = ["--data-dir", dir.to_str().unwrap()];
    assert_success(
        &env.orchestrator(&[&["upgrade", "head"][..], &data].concat())
            .await,
    );
    let graph_before = testkit::graph::dump(&env.pool).await;
    let asked_before = server.reviews_asked().len();
    server.reset_counts();

    // Three reviews whose data leaves feature and sentiment empty (so the
    // enrichment decides them).
    let edits: [(&[u8], &[u8]); 3] = [
        (
            b"\n\"4\",\"1\",\"Fatima F.\",\"",
            b"\n\"4\",\"1\",\"Fatima F.\",\"Edited: ",
        ),
        (
            b"\n\"7\",\"9\",\"Ava G.\",\"",
            b"\n\"7\",\"9\",\"Ava G.\",\"Edited: ",
        ),
        (
            b"\n\"8\",\"56\",\"Elena\",\"",
            b"\n\"8\",\"56\",\"Elena\",\"Edited: ",
        ),
    ];
    edit(&dir, "product_reviews.csv", |mut c| {
        for (from, to) in edits {
            c = replace_first(c, from, to);
        }
        c
    });
    let output = env
        .orchestrator(&[&["rerun", "seed", "--cascade"][..], &data].concat())
        .await;
    assert_success(&output);

    // Embeddings: exactly the three new texts.
    let mut embedded = server.texts();
    embedded.sort();
    assert_eq!(embedded.len(), 3, "embedded: {embedded:?}");
    assert_eq!(server.inputs(), 3);
    assert!(
        embedded.iter().all(|t| t.contains("Edited: ")),
        "{embedded:?}"
    );
    // Enrichment: exactly those three reviews.
    let mut asked: Vec<String> = server.reviews_asked()[asked_before..].to_vec();
    asked.sort();
    assert_eq!(asked, ["4", "7", "8"]);
    // Graph: only their vertices and the edges that touch them changed.
    let graph_after = testkit::graph::dump(&env.pool).await;
    let changed_vertices: Vec<&(String, String)> = graph_after
        .0
        .iter()
        .filter(|v| !graph_before.0.contains(v))
        .chain(graph_before.0.iter().filter(|v| !graph_after.0.contains(v)))
        .collect();
    let mut changed_reviews: Vec<i64> = changed_vertices
        .iter()
        .map(|(label, properties)| {
            assert_eq!(label, "Review", "only review vertices change: {properties}");
            let properties: serde_json::Value = serde_json::from_str(properties).unwrap();
            properties["id"].as_i64().unwrap()
        })
        .collect();
    changed_reviews.sort();
    changed_reviews.dedup();
    assert_eq!(changed_reviews, [4, 7, 8], "{changed_vertices:?}");
    let touches_them = |(_, start_label, start, end_label, end, _): &testkit::graph::DumpedEdge| {
        (start_label == "Review" && [4, 7, 8].contains(start))
            || (end_label == "Review" && [4, 7, 8].contains(end))
    };
    for edge in graph_after.1.iter().filter(|e| !graph_before.1.contains(e)) {
        assert!(touches_them(edge), "a new edge of another review: {edge:?}");
    }
    for edge in graph_before.1.iter().filter(|e| !graph_after.1.contains(e)) {
        assert!(
            touches_them(edge),
            "a lost edge of another review: {edge:?}"
        );
    }
    // Each revision's re-run is a run of its own, in chain order.
    let report = text(&output);
    for revision in ["seed", "embeddings", "enrichment", "graph"] {
        assert!(report.contains(revision), "{revision} re-ran:\n{report}");
    }
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}
