//! Prints how the local analyser does on a labels file: accuracy, the
//! confusion matrix and per-class precision and recall.
//!
//!   cargo run --release -p analysis --example evaluate -- \
//!       [--labels data/eval/review_labels.csv] [--data data] [--model-dir DIR] [--mistakes N] [--no-rating]
//!
//! `--no-rating` ignores the star rating: what the text alone gives, the
//! figure that matters where stars and text disagree.
//!
//! The model folder defaults to EMBEDDING_MODEL_DIR, else
//! $HOME/.cache/agenticshop/all-MiniLM-L6-v2 (scripts/services.sh puts it there).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use analysis::analyser::Params;
use analysis::dataset::load_reviews;
use analysis::evaluate::evaluate_files;
use analysis::Analyser;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evaluate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut labels = PathBuf::from("data/eval/review_labels.csv");
    let mut data = PathBuf::from("data");
    let mut model_dir = analysis::default_model_dir();
    let mut mistakes = 0usize;
    let mut no_rating = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--labels" => labels = value()?.into(),
            "--data" => data = value()?.into(),
            "--model-dir" => model_dir = value()?.into(),
            "--mistakes" => mistakes = value()?.parse()?,
            "--no-rating" => no_rating = true,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let mut analyser = Analyser::load(&model_dir, 0)?;
    if no_rating {
        let params = Params {
            rating_prior: 0.0,
            ..analyser.params().clone()
        };
        analyser = analyser.with_params(params);
    }
    let evaluation = evaluate_files(&analyser, &labels, &data)?;
    println!(
        "{} on {} ({}{})",
        labels.display(),
        data.display(),
        analyser.source(),
        if no_rating {
            ", star rating ignored"
        } else {
            ""
        }
    );
    print!("{evaluation}");
    if mistakes > 0 {
        let reviews = load_reviews(&data)?;
        let by_id: HashMap<i64, _> = reviews.iter().map(|r| (r.id, r)).collect();
        for m in evaluation.mistakes.iter().take(mistakes) {
            let review = by_id[&m.label.review_id];
            let name = |id: Option<i64>| {
                id.and_then(|id| review.features.iter().find(|f| f.id == id))
                    .map_or("none".to_string(), |f| f.name.clone())
            };
            println!(
                "\n#{} ({:?} stars) labelled {} {:?}; main {}",
                review.id,
                review.rating,
                name(m.label.feature_id),
                m.label.sentiment,
                name(m.result.main_feature)
            );
            println!("  {}", review.text.replace('\n', " / "));
            for a in &m.result.aspects {
                println!(
                    "  - {} {} {:.2}: {:?}",
                    name(Some(a.feature_id)),
                    a.sentiment,
                    a.confidence,
                    a.evidence
                );
            }
        }
    }
    Ok(())
}
