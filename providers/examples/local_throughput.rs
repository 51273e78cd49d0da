//! Times the local embedding model on 1,000 generated ~350-character reviews.
//!
//! ```text
//! cargo run --release -p providers --example local_throughput [N] [SUB_BATCH...]
//! ```
//! Reads the usual configuration (EMBEDDING_MODEL_DIR, EMBEDDING_THREADS);
//! SPREAD=sub|within forces how work spreads over threads (default: auto).

use providers::embed::bench::bench_embedder;
use providers::embed::local::Spread;
use providers::embed::{review_like_texts, LocalEmbedder};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let config = shared::config::Config::from_env()?.embedding;
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let batches: Vec<usize> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    let texts = review_like_texts(n);
    if batches.is_empty() {
        let report = providers::embed::bench_local(&config, &texts).await?;
        println!("{report}");
    } else {
        for b in batches {
            let spread = match std::env::var("SPREAD").as_deref() {
                Ok("sub") => Spread::SubBatches,
                Ok("within") => Spread::WithinPass,
                _ => Spread::Auto,
            };
            let embedder = LocalEmbedder::from_config(&config)?
                .with_sub_batch(b)
                .with_spread(spread);
            let report = bench_embedder(&embedder, &texts).await?;
            println!("{report}");
        }
    }
    Ok(())
}
