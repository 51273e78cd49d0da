//! The sample data set shipped in `data/`: the hand-written catalogue,
//! users and reviews of `banks/sample/`, generated reviews mixed with the
//! hand-written ones at random positions, and the evaluation labels in
//! `eval/`.

use crate::banks::{CATALOGUE, HAND, USERS};
use crate::*;

const SAMPLE_SEED: u64 = 20_240_611;
pub(crate) const SAMPLE_REVIEWS: usize = 1_200;
/// Share of generated sample reviews labelled in product_reviews.csv (hand-written
/// ones never are), giving about 30% overall.
const LABELLED_SHARE_OF_GENERATED: f64 = 0.33;

/// Feature indexes linked to curated product `id`: its must-haves, the
/// features hand-written reviews talk about, topped up at random.
pub(crate) fn curated_features(rng: &mut Rng, id: usize) -> Vec<u16> {
    let c = &CATALOGUE[id - 1];
    let mut feats: Vec<u16> = c.must.clone();
    for h in HAND.iter().filter(|h| h.p == id) {
        let f = h.f as u16;
        if !feats.contains(&f) {
            feats.push(f);
        }
    }
    let target = (rng.range(5, 10) as usize).max(feats.len());
    let mut pool = features_for(c.kind);
    rng.shuffle(&mut pool);
    for f in pool {
        if feats.len() >= target {
            break;
        }
        if !feats.contains(&f) {
            feats.push(f);
        }
    }
    feats.sort_unstable();
    feats
}

pub(super) fn write(dir: &Path) -> Result<GenerateSummary> {
    let started = Instant::now();
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut w = Writers::create_with_labels(dir, "eval/review_labels.csv")?;
    let mut hand_labels = Counted::open(
        dir,
        "eval/review_labels_handwritten.csv",
        &LABELS_HEADER,
        false,
    )?;
    write_features(&mut w)?;

    let mut rng = Rng::derive(SAMPLE_SEED, "sample-products");
    let mut infos: Vec<ProductInfo> = Vec::with_capacity(CATALOGUE.len());
    for (i, c) in CATALOGUE.iter().enumerate() {
        let id = i + 1;
        let features = curated_features(&mut rng, id);
        let specs = synth_specs(&mut rng, c.kind, &features);
        let description =
            product_description(&mut rng, &c.name, c.kind, Some(&c.tagline), &features);
        let spec = ProductSpec {
            id: id as u32,
            name: c.name.clone(),
            kind: c.kind,
            brand: &c.brand,
            price_cents: c.price_cents,
            description,
            specs,
            features: features.clone(),
            images: rng.range(2, 4),
        };
        w.write_product(&spec, &mut rng)?;
        infos.push(ProductInfo {
            id: id as u32,
            kind: c.kind,
            brand: &c.brand,
            features,
        });
    }

    for (i, u) in USERS.iter().enumerate() {
        w.write_user(&UserSpec {
            id: i as u32 + 1,
            first: u.first_name.clone(),
            last: u.last_name.clone(),
            city: u.city.clone(),
            gender: &u.gender,
            age: u.age,
            hobbies: u.hobbies.clone(),
            location: u.location.clone(),
            lifestyle: u.lifestyle_preferences.clone(),
            preferences: u.preferences.clone(),
        })?;
    }

    // Reviews: hand-written ones at random positions among generated ones.
    let mut rng = Rng::derive(SAMPLE_SEED, "sample-reviews");
    let mut slots: Vec<usize> = (0..SAMPLE_REVIEWS).collect();
    rng.shuffle(&mut slots);
    let mut is_hand = vec![false; SAMPLE_REVIEWS];
    for &s in &slots[..HAND.len()] {
        is_hand[s] = true;
    }
    let mut hand_order: Vec<usize> = (0..HAND.len()).collect();
    rng.shuffle(&mut hand_order);
    let mut hand_iter = hand_order.into_iter();
    let mut text = String::new();
    let mut name = String::new();
    for (slot, hand) in is_hand.iter().enumerate() {
        let id = slot as u64 + 1;
        if *hand {
            let h = &HAND[hand_iter.next().expect("hand review")];
            let label = ReviewLabel {
                feature: h.f,
                sentiment: h.s,
                rating: h.r,
            };
            let rating = format_rating(&mut rng, h.r);
            w.write_review(id, h.p as u32, &h.user, &h.text, rating, None)?;
            w.write_label(id, &label)?;
            hand_labels.row([
                id.to_string().as_str(),
                &label.feature_id().to_string(),
                label.feature_name(),
                label.sentiment.as_str(),
            ])?;
        } else {
            let p = &infos[pick_product_index(&mut rng, infos.len())];
            text.clear();
            let label = compose_review(&mut rng, p, &mut text);
            name.clear();
            reviewer_name(&mut rng, &mut name);
            let labelled = rng.chance(LABELLED_SHARE_OF_GENERATED);
            let rating = format_rating(&mut rng, label.rating);
            w.write_review(id, p.id, &name, &text, rating, labelled.then_some(&label))?;
            if !labelled {
                w.write_label(id, &label)?;
            }
        }
    }

    let mut files = w.finish()?;
    files.push(hand_labels.finish()?);
    Ok(GenerateSummary {
        out_dir: dir.to_path_buf(),
        files,
        elapsed: started.elapsed(),
    })
}
