//! Measuring the analyser against a labels file: accuracy of the sentiment
//! about the labelled feature, of the main feature, and how often the
//! labelled feature is among the review's aspects; the confusion matrix and
//! per-class precision and recall.
//!
//! The reviews are analysed as the enrichment sees a review with neither
//! feature nor sentiment: without a known feature. The sentiment counted is
//! the one of the aspect for the labelled feature; a labelled feature the
//! analyser did not find counts as wrong (column "missing").

use std::collections::HashMap;
use std::path::Path;

use crate::dataset::{load_labels, load_reviews, Label};
use crate::{Analyser, AnalysisError, Review, ReviewAspects, Sentiment};

/// Reviews per call of [`Analyser::analyse_batch`].
pub const BATCH: usize = 256;

/// What an evaluation measured.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Labelled reviews evaluated.
    pub reviews: usize,
    /// Of them, with a labelled feature (and sentiment).
    pub with_feature: usize,
    pub main_correct: usize,
    pub among_aspects: usize,
    pub sentiment_correct: usize,
    /// Main feature and its sentiment both right.
    pub both_correct: usize,
    /// `confusion[expected][predicted]`, predicted index 3 = labelled feature not found.
    pub confusion: [[usize; 4]; 3],
    /// Seconds spent analysing, for information.
    pub seconds: f64,
    /// The reviews with a wrong main feature or a wrong sentiment about the labelled one.
    pub mistakes: Vec<Mistake>,
}

/// A review the analyser got wrong, for reading.
#[derive(Debug, Clone)]
pub struct Mistake {
    pub label: Label,
    pub result: ReviewAspects,
}

fn index(s: Sentiment) -> usize {
    match s {
        Sentiment::Positive => 0,
        Sentiment::Negative => 1,
        Sentiment::Neutral => 2,
    }
}

impl Evaluation {
    fn share(n: usize, of: usize) -> f64 {
        if of == 0 {
            0.0
        } else {
            n as f64 / of as f64
        }
    }
    pub fn sentiment_accuracy(&self) -> f64 {
        Self::share(self.sentiment_correct, self.with_feature)
    }
    pub fn main_accuracy(&self) -> f64 {
        Self::share(self.main_correct, self.reviews)
    }
    pub fn among_aspects_share(&self) -> f64 {
        Self::share(self.among_aspects, self.with_feature)
    }
    pub fn both_accuracy(&self) -> f64 {
        Self::share(self.both_correct, self.reviews)
    }
    /// Precision of class `s`: of the labelled features predicted `s`, the share labelled `s`.
    pub fn precision(&self, s: Sentiment) -> f64 {
        let predicted: usize = (0..3).map(|e| self.confusion[e][index(s)]).sum();
        Self::share(self.confusion[index(s)][index(s)], predicted)
    }
    /// Recall of class `s`: of the labelled `s`, the share predicted `s` (missing counts as wrong).
    pub fn recall(&self, s: Sentiment) -> f64 {
        let expected: usize = self.confusion[index(s)].iter().sum();
        Self::share(self.confusion[index(s)][index(s)], expected)
    }

    fn record(&mut self, label: &Label, result: &ReviewAspects) {
        self.reviews += 1;
        let main_right = result.main_feature == label.feature_id;
        self.main_correct += usize::from(main_right);
        let (Some(feature), Some(expected)) = (label.feature_id, label.sentiment) else {
            self.both_correct += usize::from(main_right);
            if !main_right {
                self.mistakes.push(Mistake {
                    label: label.clone(),
                    result: result.clone(),
                });
            }
            return;
        };
        self.with_feature += 1;
        let predicted = result.aspect(feature).map(|a| a.sentiment);
        self.among_aspects += usize::from(predicted.is_some());
        self.sentiment_correct += usize::from(predicted == Some(expected));
        self.both_correct += usize::from(main_right && predicted == Some(expected));
        self.confusion[index(expected)][predicted.map_or(3, index)] += 1;
        if !main_right || predicted != Some(expected) {
            self.mistakes.push(Mistake {
                label: label.clone(),
                result: result.clone(),
            });
        }
    }
}

impl std::fmt::Display for Evaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "reviews: {} ({} with a labelled feature), analysed in {:.2} s",
            self.reviews, self.with_feature, self.seconds
        )?;
        writeln!(
            f,
            "sentiment about the labelled feature: {:.3} ({}/{})",
            self.sentiment_accuracy(),
            self.sentiment_correct,
            self.with_feature
        )?;
        writeln!(
            f,
            "main feature = labelled feature:      {:.3} ({}/{})",
            self.main_accuracy(),
            self.main_correct,
            self.reviews
        )?;
        writeln!(
            f,
            "labelled feature among the aspects:   {:.3} ({}/{})",
            self.among_aspects_share(),
            self.among_aspects,
            self.with_feature
        )?;
        writeln!(
            f,
            "main feature and its sentiment right: {:.3} ({}/{})",
            self.both_accuracy(),
            self.both_correct,
            self.reviews
        )?;
        writeln!(f, "confusion (rows: labelled, columns: predicted):")?;
        writeln!(
            f,
            "  {:<10} {:>9} {:>9} {:>9} {:>9}",
            "", "positive", "negative", "neutral", "missing"
        )?;
        for s in Sentiment::ALL {
            let row = &self.confusion[index(s)];
            writeln!(
                f,
                "  {:<10} {:>9} {:>9} {:>9} {:>9}",
                s.as_str(),
                row[0],
                row[1],
                row[2],
                row[3]
            )?;
        }
        writeln!(f, "per class:")?;
        for s in Sentiment::ALL {
            writeln!(
                f,
                "  {:<10} precision {:.3}  recall {:.3}  ({} labelled)",
                s.as_str(),
                self.precision(s),
                self.recall(s),
                self.confusion[index(s)].iter().sum::<usize>()
            )?;
        }
        Ok(())
    }
}

/// Analyses the labelled reviews of `reviews` (without their known feature,
/// as enrichment sees an unlabelled review) and compares with `labels`.
pub fn evaluate(
    analyser: &Analyser,
    reviews: &[Review],
    labels: &[Label],
) -> Result<Evaluation, AnalysisError> {
    let by_id: HashMap<i64, &Review> = reviews.iter().map(|r| (r.id, r)).collect();
    let mut inputs = Vec::with_capacity(labels.len());
    for label in labels {
        let review = by_id
            .get(&label.review_id)
            .ok_or_else(|| AnalysisError::Data {
                place: "labels".into(),
                message: format!("review {} is not in the data directory", label.review_id),
            })?;
        inputs.push(Review {
            known_feature: None,
            ..(*review).clone()
        });
    }
    let started = std::time::Instant::now();
    let mut results = Vec::with_capacity(inputs.len());
    for chunk in inputs.chunks(BATCH) {
        results.extend(analyser.analyse_batch(chunk)?);
    }
    let mut evaluation = Evaluation {
        seconds: started.elapsed().as_secs_f64(),
        ..Default::default()
    };
    for (label, result) in labels.iter().zip(&results) {
        evaluation.record(label, result);
    }
    Ok(evaluation)
}

/// [`evaluate`] for a labels file and a data directory.
pub fn evaluate_files(
    analyser: &Analyser,
    labels_file: &Path,
    data_dir: &Path,
) -> Result<Evaluation, AnalysisError> {
    let reviews = load_reviews(data_dir)?;
    let labels = load_labels(labels_file)?;
    evaluate(analyser, &reviews, &labels).map_err(|e| match e {
        AnalysisError::Data { place, message } if place == "labels" => AnalysisError::Data {
            place: labels_file.display().to_string(),
            message,
        },
        other => other,
    })
}
