//! Test support shared by the crates' tests and the benchmarks:
//! - [`fake_openai`]: an OpenAI-compatible and Azure OpenAI server in the
//!   test's own process (embeddings and chat completions) that checks what
//!   it receives and answers like the real API, with scriptable answers,
//!   failures, rate limits and delays;
//! - [`env`]: the integration-test environment: its own database and queue
//!   prefix per test, and the real `orchestrator` and `worker` binaries;
//! - [`data`]: data folders to seed from (sample copies, hand-made files);
//! - [`graph`]: the graph's vertices and edges, for comparing two states;
//! - [`digest`]: a canonical digest of everything the pipeline built, for
//!   telling whether two runs on the same data ended in the same state;
//! - [`hosts`]: worker hosts of our own (network namespaces) whose links
//!   can be cut, slowed and made to lose packets;
//! - [`services`]: faults on the local services (an immediate PostgreSQL
//!   stop and start);
//! - [`amqp_proxy`]: a proxy in front of RabbitMQ that can make a client's
//!   consumers deaf (deliveries dropped, no cancel).

pub mod amqp_proxy;
pub mod data;
pub mod digest;
pub mod env;
pub mod fake_openai;
pub mod graph;
pub mod hosts;
pub mod services;

pub use env::{admin_url, amqp_url, assert_success, bin_dir, finished, repo_root, text, TestEnv};
