//! Measures the local analyser's reviews per second on the reviews of a data
//! directory (default `data`), with the real model in the loop:
//!
//!   cargo run --release -p analysis --example throughput -- [--data DIR] [--threads N] [--rounds R]
//!
//! Prints wall-clock and CPU-normalised figures (CPU time × threads: what the
//! run would do with its threads to itself, less sensitive to other load),
//! and how much of the time the sentence model takes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use analysis::dataset::load_reviews;
use analysis::evaluate::BATCH;
use analysis::meaning::{process_cpu_seconds, resolve_threads, SentenceEncoder};
use analysis::text::sentences;
use analysis::{Analyser, Review};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("throughput: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut data = PathBuf::from("data");
    let mut threads = 0usize;
    let mut rounds = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--data" => data = value()?.into(),
            "--threads" => threads = value()?.parse()?,
            "--rounds" => rounds = value()?.parse()?,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let model_dir = analysis::default_model_dir();
    let reviews: Vec<Review> = load_reviews(&data)?
        .into_iter()
        .map(|r| Review {
            known_feature: None,
            ..r
        })
        .collect();
    let analyser = Analyser::load(&model_dir, threads)?;
    let threads = resolve_threads(threads);
    // Warm-up: loads the weights, fills the feature-name cache.
    analyser.analyse_batch(&reviews[..reviews.len().min(BATCH)])?;

    let avg_chars = reviews
        .iter()
        .map(|r| r.text.chars().count())
        .sum::<usize>() as f64
        / reviews.len().max(1) as f64;
    let mut best = f64::MAX;
    let (mut wall, mut cpu) = (0.0, 0.0);
    for _ in 0..rounds {
        let cpu0 = process_cpu_seconds().unwrap_or(0.0);
        let t0 = Instant::now();
        for chunk in reviews.chunks(BATCH) {
            analyser.analyse_batch(chunk)?;
        }
        let s = t0.elapsed().as_secs_f64();
        best = best.min(s);
        wall += s;
        cpu += process_cpu_seconds().unwrap_or(0.0) - cpu0;
    }
    let n = (reviews.len() * rounds) as f64;

    // The model's share: the distinct sentences of each batch, as the analyser embeds them.
    let encoder = SentenceEncoder::load(&model_dir, threads)?;
    let (mut sentence_count, mut distinct_count) = (0, 0);
    let t0 = Instant::now();
    for chunk in reviews.chunks(BATCH) {
        let mut texts: Vec<String> = chunk
            .iter()
            .flat_map(|r| {
                sentences(&r.text)
                    .into_iter()
                    .map(|s| r.text[s].to_string())
            })
            .collect();
        sentence_count += texts.len();
        texts.sort();
        texts.dedup();
        distinct_count += texts.len();
        encoder.encode(&texts)?;
    }
    let model_seconds = t0.elapsed().as_secs_f64();

    println!(
        "local analyser ({}), {} reviews (avg {:.0} chars, {} sentences, {} distinct per batch of {}) × {} rounds, {} threads:",
        analyser.source(),
        reviews.len(),
        avg_chars,
        sentence_count,
        distinct_count,
        BATCH,
        rounds,
        threads
    );
    println!(
        "  {:.1} reviews/s wall clock (best round {:.1}), {:.1} reviews/s CPU-normalised (CPU {:.2} s)",
        n / wall,
        reviews.len() as f64 / best,
        n / (cpu / threads as f64).max(1e-9),
        cpu
    );
    println!(
        "  sentence model alone (distinct sentences): {:.2} s per round = {:.0}% of a round",
        model_seconds,
        100.0 * model_seconds / (wall / rounds as f64)
    );
    Ok(())
}
