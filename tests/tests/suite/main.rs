//! The integration tests that can run side by side, in one test binary:
//! one build and link instead of one per file. The ones that restart a
//! service every test shares (`broker_restart`, `postgres_restart`, `chaos`)
//! or build network namespaces (`hosts`) keep a binary of their own, so that
//! nothing else runs while they do (cargo runs test binaries one at a time).
//!
//! One file's tests: `cargo test --release -p integration-tests --test suite seed::`.

mod backbone;
mod bounds;
mod cli;
mod embeddings;
mod enrichment;
mod graph;
mod logs;
mod metrics;
mod reliability;
mod remote_data;
mod schedules;
mod seed;
mod tls;
