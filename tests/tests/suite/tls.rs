//! PostgreSQL over TLS, as managed servers (Azure Database for PostgreSQL,
//! the shop's platform) require it: against the TLS-only cluster that
//! `TLS=1 scripts/services.sh` starts (`hostssl` only, a throw-away CA).
//! `sslmode`, `sslrootcert`, `sslcert` and `sslkey` work in `DATABASE_URL`
//! and as the original's `DB_*` variables; a wrong CA, a wrong host name and
//! a plain connection are refused with a clear error. RabbitMQ over
//! `amqps://` against the TLS-only node the same script starts (5671), with
//! the CA given by the URL's `cacertfile`, as RabbitMQ's own clients take it.

use sqlx::{Connection, PgConnection};
use std::path::PathBuf;
use std::time::Duration;
use testkit::{assert_success, text, TestEnv};

/// The TLS-only cluster's admin URL and the folder of the throw-away CA,
/// from `.cache/services.env` (written by `TLS=1 scripts/services.sh`,
/// which `scripts/test.sh` runs).
fn tls_services() -> (String, PathBuf) {
    (
        tls_setting("TLS_DATABASE_URL"),
        PathBuf::from(tls_setting("TLS_DIR")),
    )
}

fn tls_setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run `TLS=1 bash scripts/services.sh` and load \
             .cache/services.env (scripts/test.sh does both)"
        )
    })
}

/// A fresh database on the TLS-only cluster, dropped by [`drop_database`].
async fn create_database(prefix: &str) -> String {
    let (admin, _) = tls_services();
    let name = format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut conn = PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the TLS cluster at {admin}: {e}"));
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    name
}

async fn drop_database(name: &str) {
    let (admin, _) = tls_services();
    let mut conn = PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// A test's environment, and a database of its own on the TLS-only cluster.
async fn tls_test(database_prefix: &str, test_name: &str) -> (TestEnv, String) {
    (
        TestEnv::new(test_name).await,
        create_database(database_prefix).await,
    )
}

/// Drops the test's database on the TLS-only cluster, and cleans up its
/// environment.
async fn tls_cleanup(env: TestEnv, database: &str) {
    drop_database(database).await;
    env.cleanup().await;
}

/// `orchestrator current` with `vars` on top of the test's environment.
async fn current_with(env: &mut TestEnv, vars: &[(&str, String)]) -> std::process::Output {
    for (key, value) in vars {
        env.set_env(key, value);
    }
    env.orchestrator_within(&["current"], Duration::from_secs(60))
        .await
}

/// The output of a command that must have failed, for the reason to be
/// checked.
fn refused(out: &std::process::Output) -> String {
    let shown = text(out);
    assert!(!out.status.success(), "{shown}");
    shown
}

fn url(host: &str, database: &str, query: &str) -> String {
    format!("postgres://postgres@{host}:5434/{database}?{query}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmodes_connect_as_libpq_does_and_wrong_certificates_are_refused_clearly() {
    let (_, dir) = tls_services();
    let ca = dir.join("ca.pem").display().to_string();
    let other_ca = dir.join("other-ca.pem").display().to_string();
    let (mut env, database) = tls_test("agenticshop_tls", "tls_sslmodes").await;

    for mode in ["require", "prefer"] {
        let out = current_with(
            &mut env,
            &[(
                "DATABASE_URL",
                url("localhost", &database, &format!("sslmode={mode}")),
            )],
        )
        .await;
        assert_success(&out);
    }
    let verified = format!("sslmode=verify-full&sslrootcert={ca}");
    let out = current_with(
        &mut env,
        &[("DATABASE_URL", url("localhost", &database, &verified))],
    )
    .await;
    assert_success(&out);
    let out = current_with(
        &mut env,
        &[(
            "DATABASE_URL",
            url(
                "localhost",
                &database,
                &format!("sslmode=verify-ca&sslrootcert={ca}"),
            ),
        )],
    )
    .await;
    assert_success(&out);

    // The server's certificate names localhost only: verify-full to
    // 127.0.0.1 is a wrong host name. (sqlx 0.8.6 with rustls 0.23.46
    // checks the name under verify-ca too: stricter than libpq, see README.)
    let out = current_with(
        &mut env,
        &[("DATABASE_URL", url("127.0.0.1", &database, &verified))],
    )
    .await;
    let shown = refused(&out);
    assert!(shown.contains("cannot connect to the database"), "{shown}");
    assert!(shown.to_lowercase().contains("certificate"), "{shown}");

    let out = current_with(
        &mut env,
        &[(
            "DATABASE_URL",
            url(
                "localhost",
                &database,
                &format!("sslmode=verify-full&sslrootcert={other_ca}"),
            ),
        )],
    )
    .await;
    let shown = refused(&out);
    assert!(shown.to_lowercase().contains("certificate"), "{shown}");

    // The server takes TCP over TLS only.
    let out = current_with(
        &mut env,
        &[(
            "DATABASE_URL",
            url("localhost", &database, "sslmode=disable"),
        )],
    )
    .await;
    let shown = refused(&out);
    assert!(shown.contains("no encryption"), "{shown}");

    // The original's DB_* variables, with DB_SSLMODE and DB_SSLROOTCERT
    // (an empty DATABASE_URL counts as unset).
    let out = current_with(
        &mut env,
        &[
            ("DATABASE_URL", String::new()),
            ("DB_HOST", "localhost".into()),
            ("DB_PORT", "5434".into()),
            ("DB_USER", "postgres".into()),
            ("DB_NAME", database.clone()),
            ("DB_SSLMODE", "verify-full".into()),
            ("DB_SSLROOTCERT", ca.clone()),
        ],
    )
    .await;
    assert_success(&out);
    tls_cleanup(env, &database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_wants_a_client_certificate_gets_the_one_in_sslcert_and_sslkey() {
    let (_, dir) = tls_services();
    let file = |name: &str| dir.join(name).display().to_string();
    // pg_hba.conf of the TLS cluster: databases named agenticshop_tlscert*
    // want a client certificate signed by the CA.
    let (mut env, database) = tls_test("agenticshop_tlscert", "tls_client_certificate").await;
    let verified = format!("sslmode=verify-full&sslrootcert={}", file("ca.pem"));

    let out = current_with(
        &mut env,
        &[("DATABASE_URL", url("localhost", &database, &verified))],
    )
    .await;
    let shown = refused(&out);
    assert!(shown.contains("certificate"), "{shown}");

    let with_certificate = format!(
        "{verified}&sslcert={}&sslkey={}",
        file("client.pem"),
        file("client.key")
    );
    let out = current_with(
        &mut env,
        &[(
            "DATABASE_URL",
            url("localhost", &database, &with_certificate),
        )],
    )
    .await;
    assert_success(&out);
    tls_cleanup(env, &database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_upgrade_runs_over_tls_to_both_postgresql_and_rabbitmq() {
    let (_, dir) = tls_services();
    let ca = dir.join("ca.pem").display().to_string();
    let (mut env, database) = tls_test("agenticshop_tls_upgrade", "tls_upgrade").await;
    let over_tls = url(
        "localhost",
        &database,
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    env.set_env("DATABASE_URL", &over_tls);
    env.set_env("AMQP_URL", &tls_setting("TLS_AMQP_URL"));
    let out = env
        .orchestrator_within(
            &["upgrade", "head", "--with-workers", "1"],
            Duration::from_secs(600),
        )
        .await;
    assert_success(&out);

    let mut conn = PgConnection::connect(&over_tls).await.unwrap();
    let (ssl, head): (bool, String) = sqlx::query_as(
        "SELECT (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()),
                (SELECT version_num FROM alembic_version)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(ssl, "the check itself must run over TLS");
    let last = revisions::registry::CHAIN.last().unwrap().id;
    assert_eq!(head, last);
    let reviews: i64 = sqlx::query_scalar("SELECT count(*) FROM product_reviews")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(reviews > 0, "the seed loaded reviews over TLS");
    conn.close().await.ok();
    tls_cleanup(env, &database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_whose_certificate_the_ca_does_not_vouch_for_is_refused_at_once() {
    let (_, dir) = tls_services();
    let mut env = TestEnv::new("tls_amqp_wrong_ca").await;
    let good = tls_setting("TLS_AMQP_URL");
    let other_ca = dir.join("other-ca.pem").display().to_string();
    let wrong = good.replace(&dir.join("ca.pem").display().to_string(), &other_ca);
    assert_ne!(good, wrong);
    env.set_env("AMQP_URL", &wrong);
    let out = env
        .worker_within(&["--role", "seed"], Duration::from_secs(60))
        .await;
    let shown = refused(&out);
    assert!(
        shown.contains("cannot connect to the broker at amqps://guest:***@localhost:5671"),
        "{shown}"
    );
    assert!(shown.to_lowercase().contains("certificate"), "{shown}");

    // A missing CA file is named.
    env.set_env("AMQP_URL", &good.replace("ca.pem", "no-such-ca.pem"));
    let out = env
        .worker_within(&["--role", "seed"], Duration::from_secs(60))
        .await;
    let shown = refused(&out);
    assert!(
        shown.contains("cacertfile") && shown.contains("no-such-ca.pem"),
        "{shown}"
    );
    env.cleanup().await;
}
