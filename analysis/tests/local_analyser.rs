//! The local analyser on reviews written for these tests, and its accuracy
//! on the project's labelled file. They need the MiniLM model folder
//! (scripts/services.sh unpacks it); without it they fail, saying so: a
//! skipped accuracy test would pass on a machine that never measured it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use analysis::evaluate::{evaluate_files, Evaluation};
use analysis::meaning::SentenceEncoder;
use analysis::{Analyser, Feature, Review, ReviewAspects, Sentiment};

fn analyser() -> Option<&'static Analyser> {
    static ANALYSER: OnceLock<Analyser> = OnceLock::new();
    Some(ANALYSER.get_or_init(|| {
        let dir = analysis::default_model_dir();
        if let Err(e) = SentenceEncoder::check_dir(&dir) {
            panic!("the local model is not installed ({e}): run scripts/services.sh first");
        }
        Analyser::load(&dir, 0).expect("load the local model")
    }))
}

fn features(names: &[&str]) -> Vec<Feature> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| Feature {
            id: 100 + i as i64,
            name: n.to_string(),
        })
        .collect()
}

fn review(text: &str, rating: Option<f64>, names: &[&str]) -> Review {
    Review {
        id: 1,
        text: text.to_string(),
        rating,
        features: features(names),
        known_feature: None,
    }
}

fn sentiment_of(result: &ReviewAspects, review: &Review, name: &str) -> Option<Sentiment> {
    let id = review.features.iter().find(|f| f.name == name)?.id;
    result.aspect(id).map(|a| a.sentiment)
}

fn id_of(review: &Review, name: &str) -> i64 {
    review.features.iter().find(|f| f.name == name).unwrap().id
}

const HEADPHONES: [&str; 6] = [
    "Sound Quality",
    "Microphone Quality",
    "Battery Life",
    "Comfort",
    "Noise Cancellation",
    "Bluetooth Connectivity",
];

#[test]
fn contrast_splits_praise_and_blame_between_two_features_in_one_sentence() {
    let Some(analyser) = analyser() else { return };
    let r = review(
        "Music through these is warm and detailed, but on calls the microphone is awful and my colleagues keep asking me to repeat myself.",
        Some(4.0),
        &HEADPHONES,
    );
    let result = analyser.analyse(&r).unwrap();
    assert_eq!(
        sentiment_of(&result, &r, "Sound Quality"),
        Some(Sentiment::Positive),
        "{result:#?}"
    );
    assert_eq!(
        sentiment_of(&result, &r, "Microphone Quality"),
        Some(Sentiment::Negative),
        "{result:#?}"
    );
}

#[test]
fn although_clause_does_not_lend_its_praise_to_the_complaint() {
    let Some(analyser) = analyser() else { return };
    let r = review(
        "Although the earcups are lovely and soft, the battery gives up after barely three hours.",
        Some(3.0),
        &HEADPHONES,
    );
    let result = analyser.analyse(&r).unwrap();
    assert_eq!(
        result.main_feature,
        Some(id_of(&r, "Battery Life")),
        "{result:#?}"
    );
    assert_eq!(
        sentiment_of(&result, &r, "Battery Life"),
        Some(Sentiment::Negative),
        "{result:#?}"
    );
}

#[test]
fn negation_turns_praise_words_into_a_complaint_even_with_four_stars() {
    let Some(analyser) = analyser() else { return };
    let r = review(
        "Nice enough headphones overall. The noise cancellation is not effective at all on the train; I still hear every announcement.",
        Some(4.0),
        &HEADPHONES,
    );
    let result = analyser.analyse(&r).unwrap();
    assert_eq!(
        result.main_feature,
        Some(id_of(&r, "Noise Cancellation")),
        "{result:#?}"
    );
    assert_eq!(
        sentiment_of(&result, &r, "Noise Cancellation"),
        Some(Sentiment::Negative),
        "{result:#?}"
    );
}

#[test]
fn two_aspects_in_two_sentences_each_get_their_own_sentiment_and_the_first_is_main() {
    let Some(analyser) = analyser() else { return };
    let tablet = [
        "Display Quality",
        "Speakers",
        "Performance",
        "Battery Life",
        "Stylus Support",
    ];
    let r = review(
        "The screen is gorgeous, colours are rich and text is razor sharp. \
         I read on it every evening and it is a joy to look at, even in a dim room. \
         Sadly the speakers are thin and tinny.",
        Some(4.0),
        &tablet,
    );
    let result = analyser.analyse(&r).unwrap();
    assert_eq!(
        result.main_feature,
        Some(id_of(&r, "Display Quality")),
        "{result:#?}"
    );
    assert_eq!(
        sentiment_of(&result, &r, "Display Quality"),
        Some(Sentiment::Positive),
        "{result:#?}"
    );
    assert_eq!(
        sentiment_of(&result, &r, "Speakers"),
        Some(Sentiment::Negative),
        "{result:#?}"
    );
    assert_eq!(
        result.aspects[0].feature_id,
        id_of(&r, "Display Quality"),
        "main aspect first"
    );
}

#[test]
fn a_review_about_none_of_the_products_features_gets_no_aspect() {
    let Some(analyser) = analyser() else { return };
    let r = review(
        "Arrived two days late in a dented box. The courier left it with my neighbour.",
        Some(3.0),
        &HEADPHONES,
    );
    let result = analyser.analyse(&r).unwrap();
    assert_eq!(result.main_feature, None, "{result:#?}");
    assert!(result.aspects.is_empty(), "{result:#?}");
    // Many candidates: centring alone would lift one of them above the rest.
    let many = [
        "Battery Life",
        "Noise Cancellation",
        "Comfort",
        "Sound Quality",
        "Build Quality",
        "Multipoint Connection",
        "Water Resistance",
        "Touch Controls",
        "Weight",
        "Portability",
    ];
    let r = review(
        "Arrived two days late in a dented box. The courier left it with my neighbour.",
        Some(3.0),
        &many,
    );
    let result = analyser.analyse(&r).unwrap();
    assert!(result.aspects.is_empty(), "{result:#?}");
}

#[test]
fn only_the_products_own_features_are_candidates() {
    let Some(analyser) = analyser() else { return };
    let r = review(
        "The battery lasts a whole week between charges.",
        Some(5.0),
        &["Sound Quality", "Comfort", "Fit"],
    );
    let result = analyser.analyse(&r).unwrap();
    let own: Vec<i64> = r.features.iter().map(|f| f.id).collect();
    assert!(
        result.aspects.iter().all(|a| own.contains(&a.feature_id)),
        "{result:#?}"
    );
}

#[test]
fn a_known_feature_is_the_main_aspect_with_the_sentiment_about_it() {
    let Some(analyser) = analyser() else { return };
    let mut r = review(
        "Gorgeous sound, really detailed. Connecting to my laptop is a fight every single morning though.",
        Some(4.0),
        &HEADPHONES,
    );
    r.known_feature = Some(id_of(&r, "Bluetooth Connectivity"));
    let result = analyser.analyse(&r).unwrap();
    assert_eq!(result.main_feature, r.known_feature);
    assert_eq!(
        result.aspects[0].feature_id,
        id_of(&r, "Bluetooth Connectivity")
    );
    assert_eq!(
        result.aspects[0].sentiment,
        Sentiment::Negative,
        "{result:#?}"
    );
}

#[test]
fn a_known_feature_outside_the_products_features_is_refused_naming_the_review() {
    let Some(analyser) = analyser() else { return };
    let mut r = review("Fine.", Some(3.0), &HEADPHONES);
    r.id = 4711;
    r.known_feature = Some(9999);
    let err = analyser.analyse_batch(&[r]).unwrap_err().to_string();
    assert!(err.contains("review 4711") && err.contains("9999"), "{err}");
}

#[test]
fn evidence_is_a_verbatim_slice_of_texts_with_quotes_dollars_backslashes_newlines_and_non_ascii() {
    let Some(analyser) = analyser() else { return };
    let texts = [
        "The battery is \"excellent\" — it lasts 3 days in Zürich's cold.\nComfort? It's naïve to expect more for 99 €.",
        "Paid $$ for this; the microphone sounds like C:\\Windows\\tin_can.wav on every call.",
        "Le son est très bon. The noise cancellation «works» on the métro!\r\nBluetooth drops 'sometimes'.",
        "Battery life: 10h 🔋🔋 \\o/ and the sound is $$$ quality\t(really).",
    ];
    let reviews: Vec<Review> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Review {
            id: i as i64,
            ..review(t, Some(4.0), &HEADPHONES)
        })
        .collect();
    let results = analyser.analyse_batch(&reviews).unwrap();
    for (r, result) in reviews.iter().zip(&results) {
        assert!(!result.aspects.is_empty(), "{:?}: {result:#?}", r.text);
        for a in &result.aspects {
            assert_eq!(a.evidence, r.text[a.span.clone()], "{:?}", r.text);
            assert!(!a.evidence.is_empty());
        }
    }
    let evidences: Vec<&str> = results
        .iter()
        .flat_map(|r| r.aspects.iter().map(|a| a.evidence.as_str()))
        .collect();
    for needle in [
        "\"excellent\"",
        "Zürich",
        "$$",
        "C:\\Windows\\tin_can.wav",
        "«works»",
        "🔋",
    ] {
        assert!(
            evidences.iter().any(|e| e.contains(needle)),
            "no evidence kept {needle:?} verbatim: {evidences:#?}"
        );
    }
}

#[test]
fn empty_and_sentence_free_texts_are_analysed_without_error() {
    let Some(analyser) = analyser() else { return };
    let mut empty = review("", Some(1.0), &HEADPHONES);
    let dashes = review("— !!", None, &HEADPHONES);
    let results = analyser.analyse_batch(&[empty.clone(), dashes]).unwrap();
    assert!(results
        .iter()
        .all(|r| r.main_feature.is_none() && r.aspects.is_empty()));
    empty.known_feature = Some(id_of(&empty, "Comfort"));
    let known = analyser.analyse(&empty).unwrap();
    assert_eq!(known.main_feature, empty.known_feature);
    assert_eq!(
        known.aspects[0].sentiment,
        Sentiment::Negative,
        "only the stars to go on"
    );
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn labelled_file() -> Option<&'static Evaluation> {
    static EVAL: OnceLock<Option<Evaluation>> = OnceLock::new();
    EVAL.get_or_init(|| {
        let analyser = analyser()?;
        let root = repo();
        let e = evaluate_files(
            analyser,
            &root.join("data/eval/review_labels.csv"),
            &root.join("data"),
        )
        .expect("evaluate the labelled file");
        eprintln!("data/eval/review_labels.csv:\n{e}");
        Some(e)
    })
    .as_ref()
}

#[test]
fn labelled_file_sentiment_about_the_labelled_feature_at_least_0_92() {
    let Some(e) = labelled_file() else { return };
    assert!(e.sentiment_accuracy() >= 0.92, "{e}");
}

#[test]
fn labelled_file_main_feature_is_the_labelled_one_at_least_0_90() {
    let Some(e) = labelled_file() else { return };
    assert!(e.main_accuracy() >= 0.90, "{e}");
}

#[test]
fn labelled_file_labelled_feature_among_the_aspects_at_least_0_95() {
    let Some(e) = labelled_file() else { return };
    assert!(e.among_aspects_share() >= 0.95, "{e}");
}

#[test]
fn hand_written_subset_is_reported_and_stays_above_its_measured_floor() {
    // Held out: never tuned on. The floor is below the measured figures
    // (sentiment 0.72, main 0.80, among the aspects 0.89) so that it catches
    // a regression, not noise.
    let Some(analyser) = analyser() else { return };
    let root = repo();
    let e = evaluate_files(
        analyser,
        &root.join("data/eval/review_labels_handwritten.csv"),
        &root.join("data"),
    )
    .unwrap();
    eprintln!("data/eval/review_labels_handwritten.csv:\n{e}");
    assert!(
        e.sentiment_accuracy() >= 0.68
            && e.main_accuracy() >= 0.75
            && e.among_aspects_share() >= 0.85,
        "{e}"
    );
}

#[test]
fn the_analyser_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Analyser>();
}

#[test]
fn a_review_gets_the_same_aspects_alone_or_in_a_batch() {
    let Some(analyser) = analyser() else { return };
    let texts = [
        "The battery lasts two full days. Would buy again.",
        "Comfortable for hours, but the sound is flat and lifeless.",
        "Would buy again.",
        "Pairing with my phone fails every morning; I have to reset it.",
    ];
    let reviews: Vec<Review> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Review {
            id: i as i64,
            ..review(t, Some(3.0), &HEADPHONES)
        })
        .collect();
    let batch = analyser.analyse_batch(&reviews).unwrap();
    for (r, in_batch) in reviews.iter().zip(&batch) {
        let alone = analyser.analyse(r).unwrap();
        let summary = |x: &ReviewAspects| {
            (
                x.main_feature,
                x.aspects
                    .iter()
                    .map(|a| (a.feature_id, a.sentiment, a.evidence.clone()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(summary(&alone), summary(in_batch), "{:?}", r.text);
    }
}
