//! Settings that would harm the shop's data or the server, and secrets in
//! the environment: refused (or kept out of sight) at start, before
//! anything is written, by the binaries as a user runs them.

use std::time::Duration;
use testkit::{assert_success, text, TestEnv};

/// Tables and schemas in the test database besides PostgreSQL's and the
/// extensions' own: what a refused command must not have created.
async fn relations_written(env: &TestEnv) -> i64 {
    env.scalar(
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'public')
              + (SELECT count(*) FROM pg_namespace WHERE nspname = 'pipeline')",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_table_named_after_an_application_table_is_refused_before_anything_is_written() {
    let mut env = TestEnv::new("bounds_memory_table").await;
    env.set_env("MEM0_MEMORY_TABLE_NAME", "product_reviews");
    let out = env
        .orchestrator_within(
            &["upgrade", "head", "--with-workers", "1"],
            Duration::from_secs(120),
        )
        .await;
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    assert!(
        shown.contains("MEM0_MEMORY_TABLE_NAME")
            && shown.contains("the application table public.product_reviews"),
        "{shown}"
    );
    assert_eq!(relations_written(&env).await, 0, "nothing may be created");
    assert_eq!(env.current_revision().await, None);

    // A worker refuses it too, and so does a pair of embedding tables that
    // would share one table.
    let out = env
        .worker_within(&["--role", "seed"], Duration::from_secs(30))
        .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("MEM0_MEMORY_TABLE_NAME"),
        "{}",
        text(&out)
    );
    env.set_env("MEM0_MEMORY_TABLE_NAME", "memories");
    env.set_env("DB_EMBEDDING_TABLE_FOR_PRODUCTS", "vectors");
    env.set_env("DB_EMBEDDING_TABLE_FOR_REVIEWS", "vectors");
    let out = env.orchestrator(&["config"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "public.data_vectors would be derived from both DB_EMBEDDING_TABLE_FOR_PRODUCTS"
        ),
        "{}",
        text(&out)
    );
    assert_eq!(relations_written(&env).await, 0, "nothing may be created");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_larger_than_max_connections_are_refused_with_the_setting_and_the_numbers() {
    let env = TestEnv::new("bounds_pool").await;
    let max = env
        .scalar("SELECT current_setting('max_connections')::bigint")
        .await;
    let concurrency = max.to_string();
    let wanted = 2 * max + 2;

    let out = env
        .worker_within(
            &["--role", "seed", "--concurrency", &concurrency],
            Duration::from_secs(60),
        )
        .await;
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    for expected in [
        format!("WORKER_CONCURRENCY {max}"),
        format!("up to {wanted} database connections"),
        format!("max_connections {max}"),
    ] {
        assert!(shown.contains(&expected), "{expected:?} missing:\n{shown}");
    }

    // An orchestrator whose local workers could never all connect refuses
    // the move before it writes anything.
    let out = env
        .orchestrator_within(
            &[
                "upgrade",
                "schema",
                "--with-workers",
                "1",
                "--worker-concurrency",
                &concurrency,
            ],
            Duration::from_secs(60),
        )
        .await;
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    assert!(
        shown.contains(&format!("up to {} database connections", wanted + 10))
            && shown.contains(&format!("max_connections {max}")),
        "{shown}"
    );
    assert_eq!(relations_written(&env).await, 0, "nothing may be created");
    env.cleanup().await;
}

/// `(variable, value, the secret in it)` set in the environment of every
/// process below.
const SECRETS: [(&str, &str, &str); 7] = [
    (
        "DATABASE_URL",
        "postgres://shop:pg-secret-1@127.0.0.1:5433/nowhere",
        "pg-secret-1",
    ),
    (
        "AMQP_URL",
        "amqp://guest:amqp-secret-2@127.0.0.1:5672/%2f",
        "amqp-secret-2",
    ),
    ("OPENAI_API_KEY", "sk-secret-3", "sk-secret-3"),
    ("AZURE_OPENAI_API_KEY", "az-secret-4", "az-secret-4"),
    ("DB_PASSWORD", "db-secret-5", "db-secret-5"),
    (
        "OPENAI_BASE_URL",
        "https://llm.example/v1?api-key=url-secret-6",
        "url-secret-6",
    ),
    (
        "AZURE_OPENAI_ENDPOINT",
        "https://x.openai.azure.com/?sig=sig-secret-7",
        "sig-secret-7",
    ),
];

/// The names of the subcommands a `--help` output lists.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_help_of_any_command_shows_a_secret_set_in_the_environment() {
    let mut env = TestEnv::new("bounds_help").await;
    for (name, value, _) in SECRETS {
        env.set_env(name, value);
    }
    // The values reach the processes: `config` sees every one of them set.
    let config = env.orchestrator(&["config"]).await;
    assert_success(&config);
    let shown = text(&config);
    assert!(
        SECRETS.iter().all(|(_, _, secret)| !shown.contains(secret))
            && shown.contains("shop:***@")
            && shown.contains("guest:***@")
            && shown.contains("api-key=***")
            && shown.matches("(set, redacted)").count() >= 2,
        "{shown}"
    );

    // Every command's help, the nested ones too, and the worker's.
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    let mut helps = Vec::new();
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = env
            .orchestrator_within(&args, Duration::from_secs(30))
            .await;
        assert_success(&out);
        let help = String::from_utf8_lossy(&out.stdout).to_string();
        for sub in subcommands(&help) {
            let mut deeper = path.clone();
            deeper.push(sub);
            pending.push(deeper);
        }
        helps.push((format!("orchestrator {}", args.join(" ")), text(&out)));
    }
    let out = env
        .worker_within(&["--help"], Duration::from_secs(30))
        .await;
    assert_success(&out);
    helps.push(("worker --help".into(), text(&out)));
    assert!(
        helps.len() > 15,
        "only {} helps found: {:?}",
        helps.len(),
        helps.iter().map(|(c, _)| c).collect::<Vec<_>>()
    );
    for (command, help) in &helps {
        for (name, _, secret) in SECRETS {
            assert!(
                !help.contains(secret),
                "{command} shows {name}'s secret {secret}:\n{help}"
            );
        }
    }
    env.cleanup().await;
}
