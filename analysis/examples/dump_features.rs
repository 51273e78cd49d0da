//! Development aid: writes, per labelled review, its sentences and clauses
//! with their VADER scores and their cosines to each candidate feature, as
//! JSON lines, so that the method's choices can be studied offline.
use std::collections::HashMap;

use analysis::dataset::{load_labels, load_reviews};
use analysis::meaning::{cosine, SentenceEncoder};
use analysis::polarity::Polarity;
use analysis::text::{clauses, sentences};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reviews = load_reviews(std::path::Path::new(&args[1])).unwrap();
    let labels = load_labels(std::path::Path::new(&args[2])).unwrap();
    let enc = SentenceEncoder::load(&analysis::default_model_dir(), 0).unwrap();
    let pol = Polarity::default();
    let by_id: HashMap<i64, _> = reviews.iter().map(|r| (r.id, r)).collect();
    let queries: Vec<String> = args[3..].to_vec();
    for l in labels {
        let r = by_id[&l.review_id];
        let sents = sentences(&r.text);
        let mut units: Vec<String> = sents.iter().map(|s| r.text[s.clone()].to_string()).collect();
        let clause_ranges: Vec<Vec<_>> = sents.iter().map(|s| clauses(&r.text, s.clone())).collect();
        for cs in &clause_ranges { for c in cs { units.push(r.text[c.clone()].to_string()); } }
        let mut fq: Vec<String> = Vec::new();
        for f in &r.features { for q in &queries { fq.push(q.replace("{}", &f.name.replace('/', " and "))); } }
        let uv = enc.encode(&units).unwrap();
        let fv = enc.encode(&fq).unwrap();
        let nq = queries.len();
        let sim: Vec<Vec<Vec<f32>>> = uv.iter().map(|u| r.features.iter().enumerate().map(|(fi, _)| (0..nq).map(|q| cosine(u, &fv[fi*nq+q])).collect()).collect()).collect();
        let j = serde_json::json!({
            "id": r.id, "rating": r.rating, "text": r.text,
            "label_feature": l.feature_id, "label_sentiment": l.sentiment.map(|s| s.as_str()),
            "features": r.features.iter().map(|f| serde_json::json!([f.id, f.name])).collect::<Vec<_>>(),
            "sentences": sents.iter().map(|s| serde_json::json!([s.start, s.end])).collect::<Vec<_>>(),
            "clauses": clause_ranges.iter().map(|cs| cs.iter().map(|c| serde_json::json!([c.start, c.end, pol.vader(&r.text[c.clone()])])).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "sentence_vader": sents.iter().map(|s| pol.vader(&r.text[s.clone()])).collect::<Vec<_>>(),
            "sim": sim,
        });
        println!("{j}");
    }
}
