//! Data-set generator: writes a data directory in the exact CSV format of
//! `data/README.md` (the eight files the seed revision loads) plus
//! `review_labels.csv`, the ground truth for every review (the feature the
//! review is mainly about and the sentiment about it).
//!
//! * [`generate`] builds a synthetic data set of any size. Rows are streamed
//!   to buffered CSV writers; only a compact record per product is kept in
//!   memory, never the reviews, so a million reviews take seconds and flat
//!   memory.
//! * [`write_sample_dataset`] writes the small sample set shipped in `data/`:
//!   a hand-written catalogue (60 products, 8 users), generated reviews mixed
//!   with hand-written ones, and `eval/review_labels.csv`.
//!
//! The phrase banks, names, cities, the feature catalogue and the sample
//! set's hand-written catalogue, users and reviews are data files under
//! `datagen/banks/`, read by [`banks`]; this file holds the code that draws
//! from them.
//!
//! Output is deterministic per seed: the random numbers come from SplitMix64,
//! implemented here, so files are byte-identical across machines and across
//! versions of any random-number crate.
//!
//! Review text is composed from phrase banks: per feature a set of nouns and
//! positive / negative / neutral predicates, plus openers, use-case stories,
//! hedges, intensifiers, elaborations, a secondary feature, quotations,
//! closers, paragraph breaks and some non-ASCII text. The label of a review is
//! the feature and sentiment of its main sentence, which is always the first
//! and most elaborate statement about a feature; a secondary feature, when
//! present, comes after it in a short, clearly subordinate sentence.

use std::fmt::{self, Write as _};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

mod banks;
mod sample;
#[cfg(test)]
mod tests;

use banks::*;

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Directory to write the CSV files into (created if missing).
    pub out_dir: PathBuf,
    /// Number of products (spread evenly over the three categories).
    pub products: usize,
    /// Number of reviews.
    pub reviews: usize,
    /// Number of users.
    pub users: usize,
    /// Seed: the same seed gives byte-identical files.
    pub seed: u64,
    /// Share of reviews (0.0..=1.0) whose `feature_id` and `sentiment`
    /// columns are filled in `product_reviews.csv` (the rest is left for enrichment).
    pub labelled_share: f64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            out_dir: PathBuf::from("generated-data"),
            products: 60,
            reviews: 1_000,
            users: 100,
            seed: 42,
            labelled_share: 0.3,
        }
    }
}

/// One written file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// File name relative to the output directory (e.g. `product_reviews.csv`).
    pub file: String,
    /// Data rows (header not counted).
    pub rows: u64,
    /// Size on disk.
    pub bytes: u64,
}

/// What [`generate`] / [`write_sample_dataset`] wrote.
#[derive(Debug, Clone)]
pub struct GenerateSummary {
    pub out_dir: PathBuf,
    pub files: Vec<FileSummary>,
    pub elapsed: Duration,
}

impl GenerateSummary {
    /// Rows written to `file` (e.g. `"product_reviews.csv"`), if it was written.
    pub fn rows(&self, file: &str) -> Option<u64> {
        self.files.iter().find(|f| f.file == file).map(|f| f.rows)
    }
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

impl fmt::Display for GenerateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "wrote {}", self.out_dir.display())?;
        for file in &self.files {
            writeln!(
                f,
                "  {:<26} {:>10} rows {:>14} bytes",
                file.file, file.rows, file.bytes
            )?;
        }
        write!(
            f,
            "  total {} bytes in {:.2} s",
            self.total_bytes(),
            self.elapsed.as_secs_f64()
        )
    }
}

/// Generate a synthetic data set. See the module documentation.
pub fn generate(opts: &GenerateOptions) -> Result<GenerateSummary> {
    let started = Instant::now();
    banks::check()?;
    if !(0.0..=1.0).contains(&opts.labelled_share) {
        bail!(
            "labelled_share must be between 0 and 1, got {}",
            opts.labelled_share
        );
    }
    if opts.reviews > 0 && opts.products == 0 {
        bail!(
            "cannot generate {} reviews without products (products = 0)",
            opts.reviews
        );
    }
    if opts.products > u32::MAX as usize || opts.reviews > u32::MAX as usize * 4 {
        bail!("too many rows requested");
    }
    let out = &opts.out_dir;
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = Writers::create(out)?;

    write_features(&mut w)?;

    // Products (streamed); only a compact record per product stays in memory.
    let mut rng = Rng::derive(opts.seed, "products");
    let mut products: Vec<ProductInfo> = Vec::with_capacity(opts.products);
    let mut spec_buf = ProductSpec::default();
    for i in 0..opts.products {
        let id = i as u32 + 1;
        synth_product(&mut rng, id, &mut spec_buf);
        w.write_product(&spec_buf, &mut rng)?;
        products.push(ProductInfo {
            id,
            kind: spec_buf.kind,
            brand: spec_buf.brand,
            features: spec_buf.features.clone(),
        });
    }

    let mut rng = Rng::derive(opts.seed, "users");
    for i in 0..opts.users {
        let u = synth_user(&mut rng, i as u32 + 1);
        w.write_user(&u)?;
    }

    let mut rng = Rng::derive(opts.seed, "reviews");
    let mut text = String::with_capacity(2048);
    let mut name = String::with_capacity(64);
    for i in 0..opts.reviews {
        let id = i as u64 + 1;
        let p = &products[pick_product_index(&mut rng, products.len())];
        text.clear();
        let label = compose_review(&mut rng, p, &mut text);
        name.clear();
        reviewer_name(&mut rng, &mut name);
        let labelled = rng.chance(opts.labelled_share);
        let rating = format_rating(&mut rng, label.rating);
        w.write_review(id, p.id, &name, &text, rating, labelled.then_some(&label))?;
        w.write_label(id, &label)?;
    }

    let files = w.finish()?;
    Ok(GenerateSummary {
        out_dir: out.clone(),
        files,
        elapsed: started.elapsed(),
    })
}

/// Write the sample data set (the one shipped in `data/`) into `dir`:
/// the eight CSV files and `eval/review_labels.csv`.
pub fn write_sample_dataset(dir: &Path) -> Result<GenerateSummary> {
    banks::check()?;
    sample::write(dir)
}

/// Ground truth for one review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewLabel {
    /// Index into the feature catalogue (feature id = index + 1).
    pub feature: usize,
    pub sentiment: Sentiment,
    /// Star rating 1..=5.
    pub rating: u8,
}

impl ReviewLabel {
    pub fn feature_id(&self) -> usize {
        self.feature + 1
    }
    pub fn feature_name(&self) -> &'static str {
        &FEATURES[self.feature].name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sentiment {
    Positive,
    Negative,
    Neutral,
}

impl Sentiment {
    pub fn as_str(self) -> &'static str {
        match self {
            Sentiment::Positive => "positive",
            Sentiment::Negative => "negative",
            Sentiment::Neutral => "neutral",
        }
    }
}

/// File names and headers, exactly as `data/README.md` describes them.
pub const FILES: [(&str, &[&str]); 8] = [
    (
        "products.csv",
        &[
            "id",
            "name",
            "category",
            "price",
            "brand",
            "description",
            "specifications",
        ],
    ),
    (
        "users.csv",
        &[
            "id",
            "first_name",
            "last_name",
            "city",
            "gender",
            "age",
            "hobbies",
            "location",
            "lifestyle_preferences",
            "preferences",
            "avatar_url",
        ],
    ),
    ("features.csv", &["id", "feature_name", "categories"]),
    ("product_features.csv", &["id", "product_id", "feature_id"]),
    (
        "product_reviews.csv",
        &[
            "id",
            "product_id",
            "user_name",
            "review",
            "rating",
            "feature_id",
            "sentiment",
        ],
    ),
    ("product_images.csv", &["id", "product_id", "image_url"]),
    ("variants.csv", &["id", "product_id", "price", "in_stock"]),
    (
        "variant_attributes.csv",
        &[
            "id",
            "product_id",
            "variant_id",
            "attribute_name",
            "attribute_value",
        ],
    ),
];

/// Header of `review_labels.csv`.
pub const LABELS_HEADER: [&str; 4] = ["review_id", "feature_id", "feature_name", "sentiment"];

// ---------------------------------------------------------------------------
// Random numbers: SplitMix64 (fixed algorithm, stable output forever)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// An independent stream for one part of the data set, so that e.g. the
    /// number of reviews does not change the products.
    fn derive(seed: u64, stream: &str) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for b in stream.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut r = Rng(h);
        r.next_u64();
        r
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below((hi - lo + 1) as usize) as u32
    }
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn pick_str(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.below(xs.len())]
    }
    /// Index drawn with the given integer weights.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(total as usize) as u32;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------
// Catalogue model
// ---------------------------------------------------------------------------

/// A product category, as `features.toml` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum Cat {
    Headphones,
    Tablets,
    Smartwatches,
}

impl Cat {
    const ALL: [Cat; 3] = [Cat::Headphones, Cat::Tablets, Cat::Smartwatches];
    fn name(self) -> &'static str {
        match self {
            Cat::Headphones => "Headphones",
            Cat::Tablets => "Tablets",
            Cat::Smartwatches => "Smartwatches",
        }
    }
    fn bit(self) -> u8 {
        match self {
            Cat::Headphones => C_H,
            Cat::Tablets => C_T,
            Cat::Smartwatches => C_W,
        }
    }
}

// Category bits.
const C_H: u8 = 1;
const C_T: u8 = 2;
const C_W: u8 = 4;

/// A kind of product, as the banks name it (`over-ear`, `tablet`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    #[default]
    OverEar,
    OnEar,
    Earbuds,
    Tablet,
    Watch,
}

// Kind bits (a feature limited to some kinds of its categories).
const K_OVER: u8 = 1;
const K_ON: u8 = 2;
const K_BUDS: u8 = 4;

impl Kind {
    fn cat(self) -> Cat {
        match self {
            Kind::OverEar | Kind::OnEar | Kind::Earbuds => Cat::Headphones,
            Kind::Tablet => Cat::Tablets,
            Kind::Watch => Cat::Smartwatches,
        }
    }
    fn bit(self) -> u8 {
        match self {
            Kind::OverEar => K_OVER,
            Kind::OnEar => K_ON,
            Kind::Earbuds => K_BUDS,
            Kind::Tablet | Kind::Watch => 0,
        }
    }
    fn noun(self) -> &'static ProductNoun {
        match self {
            Kind::OverEar | Kind::OnEar => &PN_HEADPHONES,
            Kind::Earbuds => &PN_EARBUDS,
            Kind::Tablet => &PN_TABLET,
            Kind::Watch => &PN_WATCH,
        }
    }
}

/// How reviews refer to a product (grammatical number matters).
struct ProductNoun {
    this: &'static str,
    this_cap: &'static str,
    obj: &'static str,
    it: &'static str,
    it_cap: &'static str,
    is: &'static str,
    has: &'static str,
    /// Verb suffix: "" for plural ("they feel"), "s" for singular ("it feels").
    s: &'static str,
    /// Bare noun: "my old {cat}".
    cat: &'static str,
}

const PN_HEADPHONES: ProductNoun = ProductNoun {
    this: "these headphones",
    this_cap: "These headphones",
    obj: "them",
    it: "they",
    it_cap: "They",
    is: "are",
    has: "have",
    s: "",
    cat: "headphones",
};
const PN_EARBUDS: ProductNoun = ProductNoun {
    this: "these earbuds",
    this_cap: "These earbuds",
    obj: "them",
    it: "they",
    it_cap: "They",
    is: "are",
    has: "have",
    s: "",
    cat: "earbuds",
};
const PN_TABLET: ProductNoun = ProductNoun {
    this: "this tablet",
    this_cap: "This tablet",
    obj: "it",
    it: "it",
    it_cap: "It",
    is: "is",
    has: "has",
    s: "s",
    cat: "tablet",
};
const PN_WATCH: ProductNoun = ProductNoun {
    this: "this watch",
    this_cap: "This watch",
    obj: "it",
    it: "it",
    it_cap: "It",
    is: "is",
    has: "has",
    s: "s",
    cat: "watch",
};

/// One product feature and the phrases reviews use about it.
#[derive(Debug)]
pub(crate) struct FeatureDef {
    pub name: String,
    /// Category bits (`C_H | C_T | C_W`).
    pub cats: u8,
    /// Kind bits restricting the feature within its headphone category
    /// (0 = every kind).
    pub kinds: u8,
    /// Marketing line for product descriptions.
    pub blurb: String,
    /// Singular noun phrases, used after "the" ("the battery life").
    pub nouns: Vec<String>,
    /// Predicates, third person singular, following the noun: "the battery
    /// life {pred}" / "it {pred}". May use product placeholders ({obj}...).
    pub pos: Vec<String>,
    pub neg: Vec<String>,
    pub neu: Vec<String>,
}

impl FeatureDef {
    fn applies_to(&self, kind: Kind) -> bool {
        self.cats & kind.cat().bit() != 0
            && (self.kinds == 0 || kind.bit() == 0 || self.kinds & kind.bit() != 0)
    }
    fn preds(&self, s: Sentiment) -> &[String] {
        match s {
            Sentiment::Positive => &self.pos,
            Sentiment::Negative => &self.neg,
            Sentiment::Neutral => &self.neu,
        }
    }
    /// Categories as a Python literal list: `['Headphones', 'Tablets']`.
    fn categories_literal(&self) -> String {
        let names: Vec<String> = Cat::ALL
            .iter()
            .filter(|c| self.cats & c.bit() != 0)
            .map(|c| format!("'{}'", c.name()))
            .collect();
        format!("[{}]", names.join(", "))
    }
}

/// Feature indexes applicable to a kind of product.
fn features_for(kind: Kind) -> Vec<u16> {
    FEATURES
        .iter()
        .enumerate()
        .filter(|(_, f)| f.applies_to(kind))
        .map(|(i, _)| i as u16)
        .collect()
}

/// A product about to be written.
#[derive(Debug, Clone, Default)]
struct ProductSpec {
    id: u32,
    name: String,
    kind: Kind,
    brand: &'static str,
    /// Price in cents.
    price_cents: u64,
    description: String,
    /// Key/value pairs of the specifications object.
    specs: Vec<(String, String)>,
    /// Linked features (indexes into FEATURES).
    features: Vec<u16>,
    images: u32,
}

/// What reviews need to know about a product.
#[derive(Debug, Clone)]
struct ProductInfo {
    id: u32,
    kind: Kind,
    brand: &'static str,
    features: Vec<u16>,
}

struct UserSpec {
    id: u32,
    first: String,
    last: String,
    city: String,
    gender: &'static str,
    age: u32,
    hobbies: Vec<String>,
    location: String,
    lifestyle: Vec<String>,
    preferences: Vec<String>,
}

// ---------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------

type CsvW = csv::Writer<fs::File>;

struct Counted {
    name: String,
    path: PathBuf,
    w: CsvW,
    rows: u64,
}

impl Counted {
    fn open(dir: &Path, name: &str, header: &[&str], always_quote: bool) -> Result<Counted> {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let file =
            fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = csv::WriterBuilder::new()
            .buffer_capacity(1 << 20)
            .quote_style(if always_quote {
                csv::QuoteStyle::Always
            } else {
                csv::QuoteStyle::Necessary
            })
            .from_writer(file);
        w.write_record(header)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Counted {
            name: name.to_string(),
            path,
            w,
            rows: 0,
        })
    }
    fn row<I, T>(&mut self, fields: I) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.w
            .write_record(fields)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.rows += 1;
        Ok(())
    }
    fn finish(mut self) -> Result<FileSummary> {
        self.w
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))?;
        drop(self.w);
        let bytes = fs::metadata(&self.path)?.len();
        Ok(FileSummary {
            file: self.name,
            rows: self.rows,
            bytes,
        })
    }
}

struct Writers {
    product: Counted,
    users: Counted,
    features: Counted,
    product_features: Counted,
    review: Counted,
    product_images: Counted,
    variants: Counted,
    variant_attributes: Counted,
    labels: Counted,
    next_pf: u64,
    next_image: u64,
    next_variant: u64,
    next_attr: u64,
    num: NumBuf,
}

impl Writers {
    fn create(dir: &Path) -> Result<Writers> {
        Self::create_with_labels(dir, "review_labels.csv")
    }
    fn create_with_labels(dir: &Path, labels_file: &str) -> Result<Writers> {
        let open = |i: usize, always: bool| Counted::open(dir, FILES[i].0, FILES[i].1, always);
        Ok(Writers {
            product: open(0, false)?,
            users: open(1, false)?,
            features: open(2, false)?,
            product_features: open(3, false)?,
            // product_reviews.csv quotes every field, header included (a real quirk).
            review: open(4, true)?,
            product_images: open(5, false)?,
            variants: open(6, false)?,
            variant_attributes: open(7, false)?,
            labels: Counted::open(dir, labels_file, &LABELS_HEADER, false)?,
            next_pf: 1,
            next_image: 1,
            next_variant: 1,
            next_attr: 1,
            num: NumBuf::default(),
        })
    }

    fn finish(self) -> Result<Vec<FileSummary>> {
        Ok(vec![
            self.product.finish()?,
            self.users.finish()?,
            self.features.finish()?,
            self.product_features.finish()?,
            self.review.finish()?,
            self.product_images.finish()?,
            self.variants.finish()?,
            self.variant_attributes.finish()?,
            self.labels.finish()?,
        ])
    }

    fn write_feature_row(&mut self, idx: usize) -> Result<()> {
        let f = &FEATURES[idx];
        let id = (idx + 1).to_string();
        self.features
            .row([id.as_str(), &f.name, &f.categories_literal()])
    }

    /// Product row, its feature links, images, variants and their attributes.
    fn write_product(&mut self, p: &ProductSpec, rng: &mut Rng) -> Result<()> {
        let id = p.id.to_string();
        let price = cents(p.price_cents);
        let specs = json_object(&p.specs);
        self.product.row([
            id.as_str(),
            p.name.as_str(),
            p.kind.cat().name(),
            price.as_str(),
            p.brand,
            p.description.as_str(),
            specs.as_str(),
        ])?;
        for &f in &p.features {
            let pf = self.next_pf.to_string();
            self.next_pf += 1;
            let fid = (f as usize + 1).to_string();
            self.product_features
                .row([pf.as_str(), id.as_str(), fid.as_str()])?;
        }
        for n in 1..=p.images {
            let iid = self.next_image.to_string();
            self.next_image += 1;
            let url = format!("data/images/{}-image-{}.png", p.id, n);
            self.product_images
                .row([iid.as_str(), id.as_str(), url.as_str()])?;
        }
        for v in variants_for(rng, p) {
            let vid = self.next_variant.to_string();
            self.next_variant += 1;
            let vprice = cents(v.price_cents);
            let stock = v.in_stock.to_string();
            self.variants
                .row([vid.as_str(), id.as_str(), vprice.as_str(), stock.as_str()])?;
            for (name, value) in v.attrs {
                let aid = self.next_attr.to_string();
                self.next_attr += 1;
                self.variant_attributes.row([
                    aid.as_str(),
                    id.as_str(),
                    vid.as_str(),
                    name,
                    value.as_str(),
                ])?;
            }
        }
        Ok(())
    }

    fn write_user(&mut self, u: &UserSpec) -> Result<()> {
        let id = u.id.to_string();
        let age = u.age.to_string();
        let avatar = format!("data/images/avatars/user-{}.png", u.id);
        self.users.row([
            id.as_str(),
            u.first.as_str(),
            u.last.as_str(),
            u.city.as_str(),
            u.gender,
            age.as_str(),
            json_array(&u.hobbies).as_str(),
            u.location.as_str(),
            json_array(&u.lifestyle).as_str(),
            json_array(&u.preferences).as_str(),
            avatar.as_str(),
        ])
    }

    /// One review row; `labelled` fills `feature_id` and `sentiment`.
    fn write_review(
        &mut self,
        id: u64,
        product_id: u32,
        user_name: &str,
        text: &str,
        rating: &str,
        labelled: Option<&ReviewLabel>,
    ) -> Result<()> {
        let n = &mut self.num;
        n.set(0, id);
        n.set(1, product_id as u64);
        let (fid, sentiment) = match labelled {
            Some(l) => {
                n.set(2, l.feature_id() as u64);
                (n.get(2), l.sentiment.as_str())
            }
            None => ("", ""),
        };
        self.review
            .row([n.get(0), n.get(1), user_name, text, rating, fid, sentiment])
    }

    fn write_label(&mut self, review_id: u64, l: &ReviewLabel) -> Result<()> {
        let n = &mut self.num;
        n.set(0, review_id);
        n.set(1, l.feature_id() as u64);
        self.labels
            .row([n.get(0), n.get(1), l.feature_name(), l.sentiment.as_str()])
    }
}

/// Reusable buffers for formatting integers without allocating per row.
#[derive(Default)]
struct NumBuf {
    bufs: [String; 3],
}

impl NumBuf {
    fn set(&mut self, i: usize, v: u64) {
        self.bufs[i].clear();
        let _ = write!(self.bufs[i], "{v}");
    }
    fn get(&self, i: usize) -> &str {
        &self.bufs[i]
    }
}

fn write_features(w: &mut Writers) -> Result<()> {
    for i in 0..FEATURES.len() {
        w.write_feature_row(i)?;
    }
    Ok(())
}

fn cents(c: u64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// JSON array of strings, formatted like Python's `json.dumps`.
fn json_array(items: &[String]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).expect("string"))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// JSON object of string keys and values, formatted like Python's `json.dumps`.
fn json_object(pairs: &[(String, String)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}: {}",
                serde_json::to_string(k).expect("key"),
                serde_json::to_string(v).expect("value")
            )
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// `5` or `5.00`: both styles occur in real files.
fn format_rating(rng: &mut Rng, rating: u8) -> &'static str {
    const PLAIN: [&str; 5] = ["1", "2", "3", "4", "5"];
    const DECIMAL: [&str; 5] = ["1.00", "2.00", "3.00", "4.00", "5.00"];
    let i = (rating.clamp(1, 5) - 1) as usize;
    if rng.chance(0.5) {
        PLAIN[i]
    } else {
        DECIMAL[i]
    }
}

// ---------------------------------------------------------------------------
// Products, variants, users
// ---------------------------------------------------------------------------

struct VariantSpec {
    price_cents: u64,
    in_stock: u32,
    attrs: Vec<(&'static str, String)>,
}

fn variants_for(rng: &mut Rng, p: &ProductSpec) -> Vec<VariantSpec> {
    let n = rng.range(1, 4) as usize;
    let mut colors: Vec<&str> = match p.kind.cat() {
        Cat::Headphones => HEADPHONE_COLORS.to_vec(),
        Cat::Tablets => TABLET_COLORS.to_vec(),
        Cat::Smartwatches => WATCH_COLORS.to_vec(),
    };
    rng.shuffle(&mut colors);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let in_stock = if rng.chance(0.12) {
            0
        } else {
            rng.range(1, 250)
        };
        let mut attrs: Vec<(&'static str, String)> = Vec::new();
        let mut price = p.price_cents;
        match p.kind.cat() {
            Cat::Headphones => {
                attrs.push(("color", colors[i % colors.len()].to_string()));
                if rng.chance(0.15) {
                    attrs.push((
                        "edition",
                        (*rng.pick(&["Standard", "Limited Edition", "Travel Kit"])).to_string(),
                    ));
                }
            }
            Cat::Tablets => {
                let storages = ["64GB", "128GB", "256GB", "512GB"];
                let s = (i + rng.below(2)).min(3);
                attrs.push(("storage", storages[s].to_string()));
                price += s as u64 * 10_000;
                attrs.push(("color", colors[i % colors.len()].to_string()));
                if rng.chance(0.3) {
                    attrs.push(("connectivity", "Wi-Fi + Cellular".to_string()));
                    price += 12_000;
                } else if rng.chance(0.3) {
                    attrs.push(("connectivity", "Wi-Fi".to_string()));
                }
            }
            Cat::Smartwatches => {
                let sizes = ["41mm", "45mm", "42mm", "46mm"];
                attrs.push(("size", sizes[(i + rng.below(2)) % sizes.len()].to_string()));
                attrs.push(("color", colors[i % colors.len()].to_string()));
                if rng.chance(0.5) {
                    attrs.push(("band", (*rng.pick(&WATCH_BANDS[..])).to_string()));
                }
                if i > 0 {
                    price += 3_000;
                }
            }
        }
        out.push(VariantSpec {
            price_cents: price,
            in_stock,
            attrs,
        });
    }
    out
}

/// A price ending in .99 or .00 near `base` dollars.
fn price_cents(rng: &mut Rng, lo: u32, hi: u32) -> u64 {
    let dollars = rng.range(lo, hi) as u64;
    if rng.chance(0.8) {
        dollars * 100 + 99
    } else {
        dollars * 100
    }
}

fn synth_product(rng: &mut Rng, id: u32, p: &mut ProductSpec) {
    let cat = Cat::ALL[(id as usize - 1) % 3];
    let kind = match cat {
        Cat::Headphones => *rng.pick(&[
            Kind::OverEar,
            Kind::OverEar,
            Kind::OnEar,
            Kind::Earbuds,
            Kind::Earbuds,
        ]),
        Cat::Tablets => Kind::Tablet,
        Cat::Smartwatches => Kind::Watch,
    };
    let brand = match cat {
        Cat::Headphones => *rng.pick(&HEADPHONE_BRANDS[..]),
        Cat::Tablets => *rng.pick(&TABLET_BRANDS[..]),
        Cat::Smartwatches => *rng.pick(&WATCH_BRANDS[..]),
    };
    let series = match kind {
        Kind::OverEar | Kind::OnEar => *rng.pick(&HEADPHONE_SERIES[..]),
        Kind::Earbuds => *rng.pick(&EARBUD_SERIES[..]),
        Kind::Tablet => *rng.pick(&TABLET_SERIES[..]),
        Kind::Watch => *rng.pick(&WATCH_SERIES[..]),
    };
    let model = *rng.pick(&MODEL_SUFFIXES[..]);
    let (suffix, lo, hi) = match kind {
        Kind::OverEar => ("Wireless Over-Ear Headphones", 59, 399),
        Kind::OnEar => ("On-Ear Headphones", 29, 199),
        Kind::Earbuds => ("True Wireless Earbuds", 19, 249),
        Kind::Tablet => ("Tablet", 129, 1099),
        Kind::Watch => ("Smartwatch", 49, 799),
    };
    p.id = id;
    p.kind = kind;
    p.brand = brand;
    p.name.clear();
    let _ = write!(p.name, "{brand} {series} {model} {suffix}");
    p.price_cents = price_cents(rng, lo, hi);

    // 5..=10 linked features.
    let mut pool = features_for(kind);
    rng.shuffle(&mut pool);
    let n = rng.range(5, 10).min(pool.len() as u32) as usize;
    pool.truncate(n);
    pool.sort_unstable();
    p.features = pool;
    p.specs = synth_specs(rng, kind, &p.features);
    p.images = rng.range(1, 4);
    p.description = product_description(rng, &p.name, kind, None, &p.features);
}

fn has_feature(features: &[u16], name: &str) -> bool {
    features.iter().any(|&f| FEATURES[f as usize].name == name)
}

fn synth_specs(rng: &mut Rng, kind: Kind, features: &[u16]) -> Vec<(String, String)> {
    let mut s: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| s.push((k.to_string(), v));
    match kind {
        Kind::OverEar | Kind::OnEar | Kind::Earbuds => {
            put(
                "Type",
                match kind {
                    Kind::OverEar => "Over-ear",
                    Kind::OnEar => "On-ear",
                    _ => "In-ear (true wireless)",
                }
                .to_string(),
            );
            let driver = if kind == Kind::Earbuds {
                rng.range(6, 12)
            } else {
                rng.range(30, 50)
            };
            put("Driver Size", format!("{driver} mm"));
            let hours = if kind == Kind::Earbuds {
                rng.range(5, 10)
            } else {
                rng.range(20, 60)
            };
            put("Battery Life", format!("{hours} hours"));
            if kind == Kind::Earbuds {
                put(
                    "Battery Life With Case",
                    format!("{} hours", hours * rng.range(3, 5)),
                );
            }
            put(
                "Noise Cancellation",
                if has_feature(features, "Noise Cancellation") {
                    "Hybrid ANC"
                } else {
                    "Passive isolation"
                }
                .to_string(),
            );
            put(
                "Bluetooth Version",
                (*rng.pick(&["5.0", "5.2", "5.3", "5.4"])).to_string(),
            );
            put(
                "Codecs",
                (*rng.pick(&[
                    "SBC, AAC",
                    "SBC, AAC, LDAC",
                    "SBC, AAC, aptX Adaptive",
                    "SBC",
                ]))
                .to_string(),
            );
            let grams = if kind == Kind::Earbuds {
                rng.range(4, 8)
            } else {
                rng.range(160, 340)
            };
            put("Weight", format!("{grams} g"));
            put("Charging Port", "USB-C".to_string());
            if has_feature(features, "Water Resistance") {
                put(
                    "Water Resistance",
                    (*rng.pick(&["IPX4", "IPX5", "IP55", "IPX7"])).to_string(),
                );
            }
        }
        Kind::Tablet => {
            let size = *rng.pick(&[
                "8.3", "8.7", "10.1", "10.9", "11", "12.4", "12.9", "13", "14.6",
            ]);
            put("Screen Size", format!("{size} inches"));
            put(
                "Resolution",
                (*rng.pick(&[
                    "1920 x 1200",
                    "2000 x 1200",
                    "2360 x 1640",
                    "2560 x 1600",
                    "2800 x 1752",
                ]))
                .to_string(),
            );
            put(
                "Refresh Rate",
                (*rng.pick(&["60 Hz", "90 Hz", "120 Hz", "144 Hz"])).to_string(),
            );
            put(
                "Processor",
                (*rng.pick(&[
                    "Octa-core 2.2 GHz",
                    "Octa-core 2.8 GHz",
                    "Hexa-core 3.0 GHz",
                    "Octa-core 3.2 GHz",
                ]))
                .to_string(),
            );
            put(
                "RAM",
                (*rng.pick(&["4 GB", "6 GB", "8 GB", "12 GB", "16 GB"])).to_string(),
            );
            put(
                "Storage",
                (*rng.pick(&["64 GB", "128 GB", "256 GB"])).to_string(),
            );
            put("Battery", format!("{} mAh", rng.range(50, 112) * 100));
            put("Weight", format!("{} g", rng.range(290, 720)));
            put(
                "Connectivity",
                if has_feature(features, "Cellular Connectivity") {
                    "Wi-Fi 6, Bluetooth 5.3, 5G"
                } else {
                    "Wi-Fi 6, Bluetooth 5.3"
                }
                .to_string(),
            );
            if has_feature(features, "Stylus Support") {
                put(
                    "Stylus",
                    (*rng.pick(&["Included", "Sold separately"])).to_string(),
                );
            }
        }
        Kind::Watch => {
            put("Case Size", format!("{} mm", rng.range(40, 49)));
            put("Display", format!("1.{}-inch AMOLED", rng.range(3, 9)));
            put("Battery Life", format!("Up to {} days", rng.range(1, 14)));
            put(
                "Water Resistance",
                (*rng.pick(&["5 ATM", "10 ATM", "IP68", "WR50"])).to_string(),
            );
            let mut sensors = vec!["Optical heart rate", "Accelerometer"];
            if has_feature(features, "Blood Oxygen Sensor") {
                sensors.push("SpO2");
            }
            if has_feature(features, "GPS") {
                sensors.push("GPS");
            }
            put("Sensors", sensors.join(", "));
            put(
                "Compatibility",
                (*rng.pick(&["Android and iOS", "Android 8.0+ and iOS 15+", "iOS only"]))
                    .to_string(),
            );
            put("Weight", format!("{} g", rng.range(24, 62)));
        }
    }
    s
}

/// HTML description: `<h3>`, `<p>`, `<ul><li>`.
fn product_description(
    rng: &mut Rng,
    name: &str,
    kind: Kind,
    tagline: Option<&str>,
    features: &[u16],
) -> String {
    let mut d = String::with_capacity(1024);
    let pn = kind.noun();
    let _ = write!(d, "<h3>{name}</h3>\n<p>");
    match tagline {
        Some(t) => d.push_str(t),
        None => {
            let intro = *rng.pick(match kind.cat() {
                Cat::Headphones => &DESC_INTRO_HEADPHONES,
                Cat::Tablets => &DESC_INTRO_TABLETS,
                Cat::Smartwatches => &DESC_INTRO_WATCHES,
            });
            d.push_str(intro);
        }
    }
    d.push_str("</p>\n<h3>Highlights</h3>\n<ul>\n");
    for &f in features.iter().take(6) {
        let fd = &FEATURES[f as usize];
        let _ = writeln!(d, "<li><strong>{}:</strong> {}</li>", fd.name, fd.blurb);
    }
    d.push_str("</ul>\n<p>");
    d.push_str(rng.pick_str(&DESC_CLOSERS));
    let _ = write!(
        d,
        " Every {} comes with a two-year limited warranty.</p>",
        if pn.s.is_empty() { "pair" } else { "unit" }
    );
    d
}

fn synth_user(rng: &mut Rng, id: u32) -> UserSpec {
    let female = rng.chance(0.5);
    let (first, gender) = if rng.chance(0.04) {
        (rng.pick(&FIRST_NAMES_F[..]).to_string(), "Non-binary")
    } else if female {
        (rng.pick(&FIRST_NAMES_F[..]).to_string(), "Female")
    } else {
        (rng.pick(&FIRST_NAMES_M[..]).to_string(), "Male")
    };
    let city = rng.pick(&CITIES[..]);
    let (lat, lon) = (city.latitude, city.longitude);
    let jitter = |rng: &mut Rng| (rng.unit() - 0.5) * 0.2;
    let location = format!("({:.4}, {:.4})", lat + jitter(rng), lon + jitter(rng));
    let mut hobbies: Vec<String> = HOBBIES.iter().map(|s| s.to_string()).collect();
    rng.shuffle(&mut hobbies);
    hobbies.truncate(rng.range(2, 4) as usize);
    let mut lifestyle: Vec<String> = LIFESTYLES.iter().map(|s| s.to_string()).collect();
    rng.shuffle(&mut lifestyle);
    lifestyle.truncate(rng.range(1, 3) as usize);
    let mut prefs: Vec<String> = PREFERENCES.iter().map(|s| s.to_string()).collect();
    rng.shuffle(&mut prefs);
    prefs.truncate(rng.range(2, 4) as usize);
    UserSpec {
        id,
        first,
        last: rng.pick(&LAST_NAMES[..]).to_string(),
        city: city.name.clone(),
        gender,
        age: rng.range(18, 74),
        hobbies,
        location,
        lifestyle,
        preferences: prefs,
    }
}

/// Popularity skew: some products get many more reviews than others.
fn pick_product_index(rng: &mut Rng, n: usize) -> usize {
    if rng.chance(0.5) {
        rng.below(n)
    } else {
        let u = rng.unit();
        ((u * u * n as f64) as usize).min(n - 1)
    }
}

fn reviewer_name(rng: &mut Rng, out: &mut String) {
    let first = if rng.chance(0.5) {
        *rng.pick(&FIRST_NAMES_F[..])
    } else {
        *rng.pick(&FIRST_NAMES_M[..])
    };
    match rng.below(10) {
        0..=3 => {
            let last = rng.pick(&LAST_NAMES[..]);
            let _ = write!(out, "{first} {}.", last.chars().next().unwrap_or('X'));
        }
        4..=5 => {
            let _ = write!(out, "{first} {}", rng.pick(&LAST_NAMES[..]));
        }
        6..=7 => {
            let handle = rng.pick(&HANDLES[..]);
            let _ = write!(out, "{handle}{}", rng.range(1, 999));
        }
        8 => out.push_str(first),
        _ => {
            let _ = write!(out, "{}{}", first.to_lowercase(), rng.range(70, 2005));
        }
    }
}

// ---------------------------------------------------------------------------
// Review composition
// ---------------------------------------------------------------------------

struct Ctx<'a> {
    pn: &'static ProductNoun,
    brand: &'a str,
    n: &'a str,
    v: &'a str,
    adj: &'a str,
    n2: &'a str,
    v2: &'a str,
    adj2: &'a str,
}

/// Expand `{placeholders}` of `tpl` into `out`.
fn expand(out: &mut String, tpl: &str, c: &Ctx, rng: &mut Rng) {
    let mut rest = tpl;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let j = after
            .find('}')
            .unwrap_or_else(|| panic!("unclosed placeholder in {tpl:?}"));
        let key = &after[..j];
        match key {
            "this" => out.push_str(c.pn.this),
            "This" => out.push_str(c.pn.this_cap),
            "obj" => out.push_str(c.pn.obj),
            "it" => out.push_str(c.pn.it),
            "It" => out.push_str(c.pn.it_cap),
            "is" => out.push_str(c.pn.is),
            "has" => out.push_str(c.pn.has),
            "s" => out.push_str(c.pn.s),
            "cat" => out.push_str(c.pn.cat),
            "brand" => out.push_str(c.brand),
            "N" => out.push_str(c.n),
            "V" => expand(out, c.v, c, rng),
            "adj" => out.push_str(c.adj),
            "N2" => out.push_str(c.n2),
            "V2" => expand(out, c.v2, c, rng),
            "adj2" => out.push_str(c.adj2),
            "dur" => out.push_str(rng.pick_str(&DURATIONS)),
            "ago" => out.push_str(rng.pick_str(&AGO)),
            "intens" => out.push_str(rng.pick_str(&INTENSIFIERS)),
            "money" => {
                let amount = rng.range(19, 899);
                if rng.chance(0.5) {
                    let _ = write!(out, "{amount} €");
                } else {
                    let _ = write!(out, "€{amount}");
                }
            }
            _ => panic!("unknown placeholder {{{key}}} in {tpl:?}"),
        }
        rest = &after[j + 1..];
    }
    out.push_str(rest);
}

fn adjectives(s: Sentiment) -> &'static [&'static str] {
    match s {
        Sentiment::Positive => &POS_ADJ,
        Sentiment::Negative => &NEG_ADJ,
        Sentiment::Neutral => &NEU_ADJ,
    }
}

/// An adjective for sentiment `s` that does not repeat a word of `pred`
/// ("the case is fine; it is fine, ..." reads badly).
fn pick_adjective(rng: &mut Rng, s: Sentiment, pred: &str) -> &'static str {
    let bank = adjectives(s);
    let mut adj = *rng.pick(bank);
    for _ in 0..4 {
        if !adj.split(' ').any(|w| w.len() > 3 && pred.contains(w)) {
            break;
        }
        adj = *rng.pick(bank);
    }
    adj
}

fn draw_sentiment(rng: &mut Rng) -> Sentiment {
    match rng.weighted(&[50, 28, 22]) {
        0 => Sentiment::Positive,
        1 => Sentiment::Negative,
        _ => Sentiment::Neutral,
    }
}

fn draw_rating(rng: &mut Rng, s: Sentiment, minor_gripe: bool) -> u8 {
    match s {
        Sentiment::Positive if minor_gripe => [4, 4, 4, 4, 4, 4, 4, 5, 5, 5][rng.below(10)],
        Sentiment::Positive => [5, 5, 5, 5, 5, 5, 4, 4, 4, 4][rng.below(10)],
        Sentiment::Negative => [1, 1, 1, 1, 2, 2, 2, 2, 2, 3][rng.below(10)],
        Sentiment::Neutral => [3, 3, 3, 3, 3, 3, 3, 2, 4, 4][rng.below(10)],
    }
}

/// Separator before the next sentence: usually a space, sometimes a
/// paragraph break.
fn sep(out: &mut String, rng: &mut Rng, paragraphs: bool) {
    if out.is_empty() {
        return;
    }
    if paragraphs && rng.chance(0.35) {
        out.push_str("\n\n");
    } else {
        out.push(' ');
    }
}

/// Compose one review about product `p` into `out`; returns its label.
fn compose_review(rng: &mut Rng, p: &ProductInfo, out: &mut String) -> ReviewLabel {
    let feature = *rng.pick(&p.features) as usize;
    let sentiment = draw_sentiment(rng);
    compose_review_about(rng, p, feature, sentiment, out)
}

fn compose_review_about(
    rng: &mut Rng,
    p: &ProductInfo,
    feature: usize,
    sentiment: Sentiment,
    out: &mut String,
) -> ReviewLabel {
    let f = &FEATURES[feature];
    let pn = p.kind.noun();
    let n = rng.pick(&f.nouns).as_str();
    let preds = f.preds(sentiment);
    let vi = rng.below(preds.len());
    let v = preds[vi].as_str();
    let adj = pick_adjective(rng, sentiment, v);

    // Secondary feature: another linked feature, short and subordinate.
    // Short reviews talk about one feature only.
    let short = rng.chance(0.15);
    let second = if !short && p.features.len() > 1 && rng.chance(0.3) {
        let mut g = *rng.pick(&p.features) as usize;
        if g == feature {
            g = p.features[(p
                .features
                .iter()
                .position(|&x| x as usize == feature)
                .unwrap()
                + 1)
                % p.features.len()] as usize;
        }
        let s2 = match sentiment {
            Sentiment::Positive => {
                if rng.chance(0.55) {
                    Sentiment::Positive
                } else {
                    Sentiment::Negative
                }
            }
            Sentiment::Negative => {
                if rng.chance(0.5) {
                    Sentiment::Positive
                } else {
                    Sentiment::Negative
                }
            }
            Sentiment::Neutral => Sentiment::Neutral,
        };
        Some((g, s2))
    } else {
        None
    };
    let (n2, v2, adj2) = match second {
        Some((g, s2)) => {
            let fg = &FEATURES[g];
            {
                let v2 = rng.pick(fg.preds(s2)).as_str();
                (
                    rng.pick(&fg.nouns).as_str(),
                    v2,
                    pick_adjective(rng, s2, v2),
                )
            }
        }
        None => ("", "", ""),
    };
    let minor_gripe =
        matches!(second, Some((_, Sentiment::Negative))) && sentiment == Sentiment::Positive;
    let rating = draw_rating(rng, sentiment, minor_gripe);
    let c = Ctx {
        pn,
        brand: p.brand,
        n,
        v,
        adj,
        n2,
        v2,
        adj2,
    };

    let paragraphs = !short && rng.chance(0.06);

    if !short && rng.chance(0.55) {
        let bank = match sentiment {
            Sentiment::Positive if rng.chance(0.3) => &OPENERS_POS,
            Sentiment::Negative if rng.chance(0.3) => &OPENERS_NEG,
            _ => &OPENERS,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }
    if !short && rng.chance(0.35) {
        sep(out, rng, paragraphs);
        let bank = match p.kind.cat() {
            Cat::Headphones => &USE_HEADPHONES,
            Cat::Tablets => &USE_TABLETS,
            Cat::Smartwatches => &USE_WATCHES,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }

    // Main statement.
    sep(out, rng, false);
    let frames = match sentiment {
        Sentiment::Positive => &MAIN_POS,
        Sentiment::Negative => &MAIN_NEG,
        Sentiment::Neutral => &MAIN_NEU,
    };
    if rng.chance(0.2) {
        let hedge = rng.pick_str(&HEDGES);
        expand(out, hedge, &c, rng);
        expand(out, " the {N} {V}.", &c, rng);
    } else {
        expand(out, rng.pick_str(frames), &c, rng);
    }
    if sentiment == Sentiment::Positive && rng.chance(0.08) {
        // A little enthusiasm.
        if out.ends_with('.') {
            out.pop();
            out.push_str("!!");
        }
    }

    // Elaboration on the main feature; always there when a second feature
    // is mentioned, so that the main one clearly dominates.
    if !short && (second.is_some() || rng.chance(0.5)) {
        sep(out, rng, false);
        if preds.len() > 1 && rng.chance(0.4) {
            let v_more = preds[(vi + 1 + rng.below(preds.len() - 1)) % preds.len()].as_str();
            let c2 = Ctx { v: v_more, ..c };
            let bank = match sentiment {
                Sentiment::Positive => &MORE_POS,
                Sentiment::Negative => &MORE_NEG,
                Sentiment::Neutral => &MORE_NEU,
            };
            expand(out, rng.pick_str(bank), &c2, rng);
        } else {
            let bank = match sentiment {
                Sentiment::Positive => &ELAB_POS,
                Sentiment::Negative => &ELAB_NEG,
                Sentiment::Neutral => &ELAB_NEU,
            };
            expand(out, rng.pick_str(bank), &c, rng);
        }
    }

    // Secondary feature.
    if let Some((_, s2)) = second {
        sep(out, rng, paragraphs);
        let bank = match (sentiment, s2) {
            (Sentiment::Positive, Sentiment::Positive) => &SECOND_POS_POS,
            (Sentiment::Positive, _) => &SECOND_POS_NEG,
            (Sentiment::Negative, Sentiment::Positive) => &SECOND_NEG_POS,
            (Sentiment::Negative, _) => &SECOND_NEG_NEG,
            _ => &SECOND_NEU_NEU,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }

    // Quotation, non-ASCII aside.
    if !short && rng.chance(0.1) {
        sep(out, rng, false);
        let bank = match sentiment {
            Sentiment::Positive => &QUOTES_POS,
            Sentiment::Negative => &QUOTES_NEG,
            Sentiment::Neutral => &QUOTES_NEU,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }
    if !short && rng.chance(0.05) {
        sep(out, rng, false);
        let bank = match sentiment {
            Sentiment::Positive => &ASIDES_POS,
            Sentiment::Negative => &ASIDES_NEG,
            Sentiment::Neutral => &ASIDES_NEU,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }

    // Closer.
    if rng.chance(if short { 0.3 } else { 0.6 }) {
        sep(out, rng, paragraphs);
        let bank = match sentiment {
            Sentiment::Positive => &CLOSERS_POS,
            Sentiment::Negative => &CLOSERS_NEG,
            Sentiment::Neutral => &CLOSERS_NEU,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }

    // Edit note after a blank line.
    if !short && rng.chance(0.03) {
        out.push_str("\n\n");
        let bank = match sentiment {
            Sentiment::Positive => &EDITS_POS,
            Sentiment::Negative => &EDITS_NEG,
            Sentiment::Neutral => &EDITS_NEU,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }

    // Casual writers: all lower case now and then.
    if rng.chance(0.03) {
        let lowered = out.to_lowercase();
        out.clear();
        out.push_str(&lowered);
    }

    ReviewLabel {
        feature,
        sentiment,
        rating,
    }
}
