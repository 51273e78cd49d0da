//! The chaos run in its reduced form (the full one is `orchestrator bench
//! chaos`, 200,000 reviews and 20 kills): a small generated data set brought
//! to head twice, once with no fault and once under every kind of fault the
//! bench throws (SIGKILLed workers, a worker SIGSTOPped past its lease, a
//! RabbitMQ restart, an immediate PostgreSQL stop, every pipeline
//! connection closed, a deleted work queue). In a test binary of its own:
//! restarting the broker and the database disturbs every test running
//! meanwhile (cargo runs test binaries one after another).

use std::time::Duration;
use testkit::{amqp_url, bin_dir, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_under_every_fault_ends_in_the_state_of_a_run_without_them() {
    assert!(
        amqp_url().contains("127.0.0.1") || amqp_url().contains("localhost"),
        "this test restarts the broker with rabbitmqctl and needs the local one"
    );
    let run = tokio::process::Command::new(bin_dir().join("orchestrator"))
        .args([
            "bench",
            "chaos",
            "--reviews",
            "3000",
            "--kills",
            "5",
            "--seed",
            "7",
            "--lease-secs",
            "4",
            // Long enough a run for every fault to land in it.
            "--provider-delay-ms",
            "200",
        ])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the chaos run ends on its own")
        .unwrap();
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("faults applied (10 of 10)"), "{shown}");
    assert!(
        shown.contains("effects applied twice (task rows beyond the fault-free run's, by kind): 0"),
        "{shown}"
    );
    assert!(
        shown.contains("digest of the run with faults: equal"),
        "{shown}"
    );
    for table in [
        "data_review_embeddings",
        "review_feature_sentiments",
        "product_review_graph edges",
    ] {
        assert!(shown.contains(table), "the digest covers {table}: {shown}");
    }
}
