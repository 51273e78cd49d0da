//! Data-set generator: writes a data directory in the exact CSV format of
//! `DATA-FORMAT.md` (the eight files the seed revision loads) plus
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
    #[cfg_attr(not(test), allow(dead_code))]
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
        FEATURES[self.feature].name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// File names and headers, exactly as in DATA-FORMAT.md.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
pub(crate) struct FeatureDef {
    pub name: &'static str,
    /// Category bits (`C_H | C_T | C_W`).
    cats: u8,
    /// Kind bits restricting the feature within its headphone category
    /// (0 = every kind).
    kinds: u8,
    /// Marketing line for product descriptions.
    blurb: &'static str,
    /// Singular noun phrases, used after "the" ("the battery life").
    nouns: &'static [&'static str],
    /// Predicates, third person singular, following the noun: "the battery
    /// life {pred}" / "it {pred}". May use product placeholders ({obj}...).
    pos: &'static [&'static str],
    neg: &'static [&'static str],
    neu: &'static [&'static str],
}

impl FeatureDef {
    fn applies_to(&self, kind: Kind) -> bool {
        self.cats & kind.cat().bit() != 0
            && (self.kinds == 0 || kind.bit() == 0 || self.kinds & kind.bit() != 0)
    }
    fn preds(&self, s: Sentiment) -> &'static [&'static str] {
        match s {
            Sentiment::Positive => self.pos,
            Sentiment::Negative => self.neg,
            Sentiment::Neutral => self.neu,
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

fn feature_index(name: &str) -> usize {
    FEATURES
        .iter()
        .position(|f| f.name == name)
        .unwrap_or_else(|| panic!("unknown feature {name:?}"))
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
            .row([id.as_str(), f.name, &f.categories_literal()])
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
                    attrs.push(("band", (*rng.pick(WATCH_BANDS)).to_string()));
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

const HEADPHONE_COLORS: &[&str] = &[
    "Black",
    "Silver",
    "Midnight Blue",
    "Sand",
    "White",
    "Forest Green",
    "Rose",
];
const TABLET_COLORS: &[&str] = &[
    "Graphite",
    "Silver",
    "Space Grey",
    "Mint",
    "Lavender",
    "Ocean Blue",
];
const WATCH_COLORS: &[&str] = &["Black", "Silver", "Rose Gold", "Titanium", "Olive", "Blue"];
const WATCH_BANDS: &[&str] = &[
    "Sport Band",
    "Leather",
    "Milanese Loop",
    "Nylon Loop",
    "Silicone",
];

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
        Cat::Headphones => *rng.pick(HEADPHONE_BRANDS),
        Cat::Tablets => *rng.pick(TABLET_BRANDS),
        Cat::Smartwatches => *rng.pick(WATCH_BRANDS),
    };
    let series = match kind {
        Kind::OverEar | Kind::OnEar => *rng.pick(HEADPHONE_SERIES),
        Kind::Earbuds => *rng.pick(EARBUD_SERIES),
        Kind::Tablet => *rng.pick(TABLET_SERIES),
        Kind::Watch => *rng.pick(WATCH_SERIES),
    };
    let model = *rng.pick(MODEL_SUFFIXES);
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
                Cat::Headphones => DESC_INTRO_HEADPHONES,
                Cat::Tablets => DESC_INTRO_TABLETS,
                Cat::Smartwatches => DESC_INTRO_WATCHES,
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
    d.push_str(rng.pick_str(DESC_CLOSERS));
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
        (rng.pick(FIRST_NAMES_F).to_string(), "Non-binary")
    } else if female {
        (rng.pick(FIRST_NAMES_F).to_string(), "Female")
    } else {
        (rng.pick(FIRST_NAMES_M).to_string(), "Male")
    };
    let (city, lat, lon) = *rng.pick(CITIES);
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
        last: rng.pick(LAST_NAMES).to_string(),
        city: city.to_string(),
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
        *rng.pick(FIRST_NAMES_F)
    } else {
        *rng.pick(FIRST_NAMES_M)
    };
    match rng.below(10) {
        0..=3 => {
            let last = rng.pick(LAST_NAMES);
            let _ = write!(out, "{first} {}.", last.chars().next().unwrap_or('X'));
        }
        4..=5 => {
            let _ = write!(out, "{first} {}", rng.pick(LAST_NAMES));
        }
        6..=7 => {
            let handle = rng.pick(HANDLES);
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
            "dur" => out.push_str(rng.pick_str(DURATIONS)),
            "ago" => out.push_str(rng.pick_str(AGO)),
            "intens" => out.push_str(rng.pick_str(INTENSIFIERS)),
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
        Sentiment::Positive => POS_ADJ,
        Sentiment::Negative => NEG_ADJ,
        Sentiment::Neutral => NEU_ADJ,
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
    let n = *rng.pick(f.nouns);
    let preds = f.preds(sentiment);
    let vi = rng.below(preds.len());
    let v = preds[vi];
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
                let v2 = *rng.pick(fg.preds(s2));
                (*rng.pick(fg.nouns), v2, pick_adjective(rng, s2, v2))
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
            Sentiment::Positive if rng.chance(0.3) => OPENERS_POS,
            Sentiment::Negative if rng.chance(0.3) => OPENERS_NEG,
            _ => OPENERS,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }
    if !short && rng.chance(0.35) {
        sep(out, rng, paragraphs);
        let bank = match p.kind.cat() {
            Cat::Headphones => USE_HEADPHONES,
            Cat::Tablets => USE_TABLETS,
            Cat::Smartwatches => USE_WATCHES,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }

    // Main statement.
    sep(out, rng, false);
    let frames = match sentiment {
        Sentiment::Positive => MAIN_POS,
        Sentiment::Negative => MAIN_NEG,
        Sentiment::Neutral => MAIN_NEU,
    };
    if rng.chance(0.2) {
        let hedge = *rng.pick(HEDGES);
        expand(out, hedge, &c, rng);
        expand(out, "the {N} {V}.", &c, rng);
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
            let v_more = preds[(vi + 1 + rng.below(preds.len() - 1)) % preds.len()];
            let c2 = Ctx { v: v_more, ..c };
            let tpl = match sentiment {
                Sentiment::Positive => *rng.pick(&[
                    "Plus, it {V}.",
                    "On top of that, it {V}.",
                    "Better still, it {V}.",
                ]),
                Sentiment::Negative => {
                    *rng.pick(&["Worse, it {V}.", "And it {V}.", "On top of that, it {V}."])
                }
                Sentiment::Neutral => *rng.pick(&[
                    "Otherwise it {V}.",
                    "In general it {V}.",
                    "Put differently, it {V}.",
                ]),
            };
            expand(out, tpl, &c2, rng);
        } else {
            let bank = match sentiment {
                Sentiment::Positive => ELAB_POS,
                Sentiment::Negative => ELAB_NEG,
                Sentiment::Neutral => ELAB_NEU,
            };
            expand(out, rng.pick_str(bank), &c, rng);
        }
    }

    // Secondary feature.
    if let Some((_, s2)) = second {
        sep(out, rng, paragraphs);
        let bank = match (sentiment, s2) {
            (Sentiment::Positive, Sentiment::Positive) => SECOND_POS_POS,
            (Sentiment::Positive, _) => SECOND_POS_NEG,
            (Sentiment::Negative, Sentiment::Positive) => SECOND_NEG_POS,
            (Sentiment::Negative, _) => SECOND_NEG_NEG,
            _ => SECOND_NEU_NEU,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }

    // Quotation, non-ASCII aside.
    if !short && rng.chance(0.1) {
        sep(out, rng, false);
        let bank = match sentiment {
            Sentiment::Positive => QUOTES_POS,
            Sentiment::Negative => QUOTES_NEG,
            Sentiment::Neutral => QUOTES_NEU,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }
    if !short && rng.chance(0.05) {
        sep(out, rng, false);
        let bank = match sentiment {
            Sentiment::Positive => ASIDES_POS,
            Sentiment::Negative => ASIDES_NEG,
            Sentiment::Neutral => ASIDES_NEU,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }

    // Closer.
    if rng.chance(if short { 0.3 } else { 0.6 }) {
        sep(out, rng, paragraphs);
        let bank = match sentiment {
            Sentiment::Positive => CLOSERS_POS,
            Sentiment::Negative => CLOSERS_NEG,
            Sentiment::Neutral => CLOSERS_NEU,
        };
        expand(out, rng.pick_str(bank), &c, rng);
    }

    // Edit note after a blank line.
    if !short && rng.chance(0.03) {
        out.push_str("\n\n");
        let bank = match sentiment {
            Sentiment::Positive => EDITS_POS,
            Sentiment::Negative => EDITS_NEG,
            Sentiment::Neutral => EDITS_NEU,
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

// ---------------------------------------------------------------------------
// Phrase banks for reviews
// ---------------------------------------------------------------------------

const MAIN_POS: &[&str] = &[
    "The {N} {V}.",
    "I have to say, the {N} {V}.",
    "I was skeptical at first, but the {N} {V}.",
    "What impressed me most: the {N} {V}.",
    "The biggest surprise was the {N}: it {V}.",
    "The {N} is {adj}; it {V}.",
    "The {N} is {intens} good. It {V}.",
    "Really happy with the {N}, which {V}.",
    "The {N} {V}, which is exactly what I wanted.",
    "{brand} got the {N} right: it {V}.",
    "Where {this} really shine{s} is the {N}. It {V}.",
    "Love the {N}. It {V}.",
    "No complaints at all about the {N}: it {V}.",
];

const MAIN_NEG: &[&str] = &[
    "The {N} {V}.",
    "Unfortunately, the {N} {V}.",
    "My biggest complaint is the {N}: it {V}.",
    "I really wanted to like {this}, but the {N} {V}.",
    "Sadly the {N} {V}, and that's a dealbreaker for me.",
    "The {N} is {adj}. It {V}.",
    "The {N} is {intens} bad: it {V}.",
    "Where {this} fall{s} apart is the {N}. It {V}.",
    "Big problem with the {N}: it {V}.",
    "The {N} {V}. Not what I expected from {brand}.",
    "I regret buying {obj}, mostly because the {N} {V}.",
    "Can we talk about the {N}? It {V}.",
];

const MAIN_NEU: &[&str] = &[
    "The {N} {V}.",
    "As for the {N}, it {V}.",
    "The {N} is {adj}; it {V}.",
    "Nothing special about the {N}; it {V}.",
    "The {N} {V}, so no complaints but no wow either.",
    "I'm lukewarm on the {N}. It {V}.",
    "The {N}? It {V}.",
    "Mixed feelings about the {N}: it {V}.",
    "The {N} is {adj}. It {V}.",
];

const HEDGES: &[&str] = &[
    "I think ",
    "Frankly, ",
    "Honestly, ",
    "In my experience, ",
    "For what it's worth, ",
    "As far as I can tell, ",
    "Overall, ",
    "Having used {obj} for a while, I'd say ",
];

const INTENSIFIERS: &[&str] = &[
    "really",
    "seriously",
    "incredibly",
    "pretty",
    "genuinely",
    "honestly",
];

const POS_ADJ: &[&str] = &[
    "excellent",
    "superb",
    "fantastic",
    "outstanding",
    "top-notch",
    "great",
    "really impressive",
    "better than I expected",
];
const NEG_ADJ: &[&str] = &[
    "disappointing",
    "poor",
    "frankly terrible",
    "a real letdown",
    "subpar",
    "awful",
    "worse than I expected",
];
const NEU_ADJ: &[&str] = &[
    "okay",
    "fine",
    "average",
    "acceptable",
    "middle of the road",
    "so-so",
    "nothing to write home about",
    "about what I expected",
];

const ELAB_POS: &[&str] = &[
    "That alone makes {obj} worth the money.",
    "Easily the best {N} I've had on any {cat}.",
    "I honestly didn't expect that at this price.",
    "It's the main reason I'd buy {obj} again.",
    "Coming from my old {cat}, the difference is night and day.",
    "{brand} really nailed it.",
    "It's the thing I notice every single day.",
    "I've recommended {obj} to two friends because of it.",
];
const ELAB_NEG: &[&str] = &[
    "For the money, that's just not acceptable.",
    "I've already contacted {brand} support about it twice.",
    "Come on {brand}, this should be the easy part.",
    "It's honestly the reason I'm thinking about returning {obj}.",
    "My old {cat} did much better on this front, and cost half as much.",
    "I expected a lot more from {brand} here.",
    "It ruins what could have been a great product.",
    "A firmware update didn't fix it either.",
];
const ELAB_NEU: &[&str] = &[
    "It's about what you'd expect at this price point.",
    "Not bad, not amazing.",
    "I don't love it and I don't hate it.",
    "If the {N} matters a lot to you, maybe look around a bit more.",
    "It's neither a selling point nor a dealbreaker.",
    "Compared to my old {cat}, it's roughly the same.",
    "It does the job and that's about it.",
];

const SECOND_POS_POS: &[&str] = &[
    "The {N2} is {adj2} too.",
    "What's more, the {N2} {V2}.",
    "Bonus: the {N2} {V2}.",
    "I also like that the {N2} {V2}.",
];
const SECOND_POS_NEG: &[&str] = &[
    "Minor gripe: the {N2} {V2}, but it's not a dealbreaker.",
    "If I had to nitpick, the {N2} {V2}.",
    "The only small downside is that the {N2} {V2}.",
    "Sure, the {N2} {V2}, but I can live with that.",
];
const SECOND_NEG_POS: &[&str] = &[
    "The {N2} is {adj2}, but that doesn't make up for it.",
    "Sure, the {N2} {V2}, but that's not enough.",
    "Shame, because the {N2} {V2}.",
    "The {N2} is {adj2}, I'll give {obj} that, but it's not why I bought {obj}.",
];
const SECOND_NEG_NEG: &[&str] = &[
    "The {N2} isn't great either.",
    "And the {N2} {V2}, for that matter.",
    "Oh, and the {N2} {V2} as well.",
];
const SECOND_NEU_NEU: &[&str] = &[
    "The {N2} is {adj2} as well.",
    "Same story with the {N2}: it {V2}.",
    "Likewise, the {N2} {V2}.",
];

const QUOTES_POS: &[&str] = &[
    "My partner calls {obj} \"the best thing I bought this year\".",
    "A friend tried {obj} and just said \"wow\".",
    "The box says \"{brand} quality\" and for once that's not just marketing.",
    "My daughter's verdict: 'ten out of ten'.",
    "Even my picky brother said \"okay, that's actually good\".",
];
const QUOTES_NEG: &[&str] = &[
    "So much for \"premium quality\".",
    "The box promises \"all-day performance\". Not in my experience.",
    "My wife's nickname for {obj} is 'the paperweight'.",
    "Support told me it was \"working as intended\". Really?",
    "The ad said \"best in class\". Best in which class, exactly?",
];
const QUOTES_NEU: &[&str] = &[
    "It's \"fine\", as my teenager would say.",
    "As my dad put it: 'it does the job'.",
    "The listing says \"pro-grade\"; I'd say \"decent\".",
    "My verdict: \"okay\", with a shrug.",
];

const ASIDES_POS: &[&str] = &[
    "Worth every cent of the {money} I paid.",
    "I even use {obj} at the café around the corner.",
    "Took {obj} on a trip to Zürich and back without a hitch.",
];
const ASIDES_NEG: &[&str] = &[
    "Maybe I was naïve to expect more for {money}.",
    "Déjà vu — my previous {cat} had exactly the same problem.",
    "For {money} I expected better.",
];
const ASIDES_NEU: &[&str] = &[
    "Paid {money}, which feels about right.",
    "I mostly use {obj} at the café near work.",
    "Bought {obj} at the airport in München for {money}.",
];

const CLOSERS_POS: &[&str] = &[
    "Would buy again.",
    "Highly recommended!",
    "Very happy with this purchase.",
    "No regrets at all.",
    "Recommended without hesitation.",
    "Great buy.",
    "10/10, would recommend.",
    "Keep up the good work, {brand}.",
];
const CLOSERS_NEG: &[&str] = &[
    "Returning {obj}.",
    "Can't recommend, sadly.",
    "Save your money.",
    "Really disappointed.",
    "Sending {obj} back.",
    "Avoid.",
    "Not buying {brand} again.",
];
const CLOSERS_NEU: &[&str] = &[
    "Fine for now.",
    "Might keep {obj}, might not.",
    "Worth it on sale, I guess.",
    "Does the job.",
    "Not bad for the price.",
    "Average product overall.",
    "Decent, but shop around.",
];

const EDITS_POS: &[&str] = &[
    "Edit: still going strong.",
    "Update a few weeks later: still love {obj}.",
    "EDIT: my partner just ordered the same model.",
];
const EDITS_NEG: &[&str] = &[
    "Edit: {brand} support still hasn't replied.",
    "Update: the replacement has the same problem.",
    "EDIT: returned. The refund took two weeks.",
];
const EDITS_NEU: &[&str] = &[
    "Edit: nothing has changed since.",
    "Update a few weeks later: same opinion.",
    "EDIT: still on the fence.",
];

const OPENERS: &[&str] = &[
    "Bought {this} {ago}.",
    "I've been using {this} for {dur} now.",
    "Got {obj} as a birthday present.",
    "Ordered {obj} during a sale.",
    "Picked {obj} up to replace my old {cat}.",
    "This is my second product from {brand}.",
    "Long-time {brand} customer here.",
    "Quick review after {dur} of daily use.",
    "I did a lot of research before settling on {this}.",
    "My old {cat} finally died, so I went with {this}.",
    "I was torn between {this} and a more expensive model.",
    "Writing this after {dur} with {obj}.",
    "First review I've ever written, so bear with me.",
    "A coworker recommended {obj}.",
    "Had {obj} for {dur}.",
];
const OPENERS_POS: &[&str] = &[
    "I had high hopes and {this} delivered.",
    "I'm genuinely impressed with {this}.",
    "What a pleasant surprise.",
];
const OPENERS_NEG: &[&str] = &[
    "I had high hopes for {this}.",
    "I wanted to love {this}.",
    "Oh boy, where do I start.",
];

const USE_HEADPHONES: &[&str] = &[
    "I mostly use {obj} on my daily train commute.",
    "I wear {obj} at the gym most mornings.",
    "I use {obj} for video calls and focus music while working from home.",
    "I fly a lot for work, so {this} spend most of their life on planes.",
    "My main use is podcasts while cooking and cleaning.",
    "I mainly game on my PC and watch movies late at night.",
    "I run three times a week and listen to music the whole time.",
    "I study in the library and at a noisy café near campus.",
    "My commute is 45 minutes by bus each way.",
    "I listen to a lot of jazz and classical, so I'm picky.",
];
const USE_TABLETS: &[&str] = &[
    "I mostly use {obj} for reading and streaming in bed.",
    "My kids use {obj} for homework and the occasional game.",
    "I take handwritten notes in lectures with {obj}.",
    "It's my second screen for work and my travel laptop replacement.",
    "I sketch and paint on {obj} most evenings.",
    "I use {obj} for recipes in the kitchen and video calls with family.",
    "I bought {obj} mainly to read comics and PDFs.",
    "I'm a nurse and use {obj} to study on night shifts.",
    "My mother uses {obj} to video call the grandkids.",
];
const USE_WATCHES: &[&str] = &[
    "I wear {obj} for marathon training.",
    "I mostly wanted {obj} for sleep and heart rate tracking.",
    "I wear {obj} all day at work for notifications.",
    "I hike most weekends and wanted something for the trail.",
    "I swim laps three times a week.",
    "I'm trying to get back in shape and wanted something to keep me honest.",
    "I cycle to work every day, rain or shine.",
    "I work twelve-hour shifts on my feet.",
    "I wear {obj} to bed every night.",
];

const DURATIONS: &[&str] = &[
    "two weeks",
    "a month",
    "three months",
    "six months",
    "about a year",
    "ten days",
    "a couple of months",
    "almost two years",
];
const AGO: &[&str] = &[
    "two weeks ago",
    "last month",
    "a few months ago",
    "back in the spring",
    "right before my holiday",
    "on Black Friday",
    "last year",
];

// ---------------------------------------------------------------------------
// Catalogue banks
// ---------------------------------------------------------------------------

const DESC_INTRO_HEADPHONES: &[&str] = &[
    "Immersive wireless sound for music, calls and everything in between.",
    "Engineered for long listening sessions, with a comfortable fit and rich, detailed audio.",
    "Compact, lightweight and ready for your commute.",
    "Studio-inspired tuning in a design built for everyday life.",
];
const DESC_INTRO_TABLETS: &[&str] = &[
    "A versatile tablet for work, study and entertainment.",
    "A big, bright display and all-day battery in a slim aluminium body.",
    "Built for creativity, with pen input and a fast processor.",
    "An affordable tablet for the whole family.",
];
const DESC_INTRO_WATCHES: &[&str] = &[
    "Track your health, workouts and sleep with a smartwatch that keeps up with you.",
    "A sporty GPS watch for runners, riders and swimmers.",
    "A classic look with smart features inside.",
    "Stay connected and motivated, right from your wrist.",
];
const DESC_CLOSERS: &[&str] = &[
    "Pair it in seconds with your phone and get started.",
    "Designed and tested to last.",
    "Available in several colours.",
    "Ships with a USB-C cable and a quick-start guide.",
];

const HEADPHONE_BRANDS: &[&str] = &[
    "Auralis",
    "Veltro Audio",
    "Nordhaven",
    "Kestrel Sound",
    "Halcyon",
    "Brio",
    "Sonique",
    "Tidewave",
];
const TABLET_BRANDS: &[&str] = &["Pixelon", "Lumio", "Orbis", "Tessera", "Novatab", "Quill"];
const WATCH_BRANDS: &[&str] = &[
    "Strida",
    "Tempo",
    "Pulsewise",
    "Cadence",
    "Meridian",
    "Ardent",
];
const HEADPHONE_SERIES: &[&str] = &[
    "QuietLine",
    "Studio",
    "Voyager",
    "Pulse",
    "Aria",
    "Fjord",
    "Harbor",
    "Drift",
    "Reference",
];
const EARBUD_SERIES: &[&str] = &["Buds", "Air Buds", "Pods", "Surf", "Glide", "Echo", "Trail"];
const TABLET_SERIES: &[&str] = &["Slate", "Tab", "Canvas", "Note", "Go", "Max", "Air", "Play"];
const WATCH_SERIES: &[&str] = &[
    "Run", "Trek", "Watch", "Active", "Sense", "Sport", "Classic", "Peak", "Swim",
];
const MODEL_SUFFIXES: &[&str] = &[
    "2", "3", "5", "7", "300", "500", "700", "Pro", "Lite", "Max", "X", "SE", "Plus",
];

const FIRST_NAMES_F: &[&str] = &[
    "Emma", "Olivia", "Sofia", "Mia", "Chloé", "Zoë", "Hannah", "Aisha", "Priya", "Mei", "Sara",
    "Lucía", "Ingrid", "Fatima", "Grace", "Nora", "Amelia", "Yuki", "Renée", "Léa", "Julia",
    "Maya", "Elena", "Ava",
];
const FIRST_NAMES_M: &[&str] = &[
    "Liam", "Noah", "Lucas", "Mateo", "José", "Björn", "Søren", "Omar", "Raj", "Wei", "Daniel",
    "James", "Ethan", "Ali", "Marco", "Kenji", "Thomas", "David", "Felix", "Hugo", "Samuel",
    "Jonas", "Pedro", "Arjun",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "García",
    "Müller",
    "Nguyen",
    "Kowalski",
    "Rossi",
    "Johansson",
    "Okafor",
    "Patel",
    "Kim",
    "Dubois",
    "Silva",
    "Novak",
    "Tanaka",
    "Brown",
    "Jensen",
    "O'Brien",
    "Fernández",
    "Schmidt",
    "Cohen",
    "Larsen",
    "Martin",
    "Wilson",
    "Ahmed",
];
const HANDLES: &[&str] = &[
    "audiophile",
    "gadgetgeek",
    "runner_girl",
    "techdad",
    "nightowl",
    "commuter",
    "bookworm",
    "coffee_addict",
    "trailblazer",
    "gamerx",
    "sketchbook",
    "quietplease",
];
/// (city, latitude, longitude)
const CITIES: &[(&str, f64, f64)] = &[
    ("Lisbon", 38.7223, -9.1393),
    ("Berlin", 52.5200, 13.4050),
    ("Chicago", 41.8781, -87.6298),
    ("Austin", 30.2672, -97.7431),
    ("Toronto", 43.6532, -79.3832),
    ("Melbourne", -37.8136, 144.9631),
    ("Osaka", 34.6937, 135.5023),
    ("Zürich", 47.3769, 8.5417),
    ("São Paulo", -23.5505, -46.6333),
    ("Seattle", 47.6062, -122.3321),
    ("Dublin", 53.3498, -6.2603),
    ("Bengaluru", 12.9716, 77.5946),
    ("Cape Town", -33.9249, 18.4241),
    ("Stockholm", 59.3293, 18.0686),
    ("Montréal", 45.5019, -73.5674),
    ("Madrid", 40.4168, -3.7038),
];
const HOBBIES: &[&str] = &[
    "Running",
    "Hiking",
    "Photography",
    "Cooking",
    "Gaming",
    "Reading",
    "Cycling",
    "Yoga",
    "Swimming",
    "Drawing",
    "Travel",
    "Podcasts",
    "Gardening",
    "Playing guitar",
    "Board games",
    "Rock climbing",
    "Birdwatching",
    "Baking",
];
const LIFESTYLES: &[&str] = &[
    "Commutes by train every day",
    "Works from home",
    "Frequent business traveller",
    "Early riser",
    "Night owl",
    "Parent of two young kids",
    "Student",
    "Training for a marathon",
    "Outdoor enthusiast",
    "Minimalist",
    "Health-conscious",
    "Budget-conscious",
];
const PREFERENCES: &[&str] = &[
    "Prefers over-ear headphones with strong noise cancellation",
    "Wants earbuds that stay in during workouts",
    "Values long battery life over a slim design",
    "Looks for a tablet with good stylus support for note-taking",
    "Prefers tablets with a bright screen for reading outdoors",
    "Wants a smartwatch with accurate GPS for running",
    "Cares about accurate sleep tracking",
    "Prefers products with a good price-to-value ratio",
    "Wants a lightweight device for travel",
    "Needs clear call quality for work meetings",
    "Prefers a watch that works with both Android and iOS",
    "Likes premium build quality and metal finishes",
    "Avoids products with buggy companion apps",
    "Wants a kid-friendly tablet with parental controls",
    "Prefers waterproof gear for swimming",
    "Likes rich bass for electronic music",
];

// ---------------------------------------------------------------------------
// Features: names, categories, marketing blurb, and review phrases
// ---------------------------------------------------------------------------

macro_rules! feature {
    ($name:expr, $cats:expr, $kinds:expr, $blurb:expr,
     nouns: [$($n:expr),* $(,)?],
     pos: [$($p:expr),* $(,)?],
     neg: [$($g:expr),* $(,)?],
     neu: [$($u:expr),* $(,)?] $(,)?) => {
        FeatureDef {
            name: $name,
            cats: $cats,
            kinds: $kinds,
            blurb: $blurb,
            nouns: &[$($n),*],
            pos: &[$($p),*],
            neg: &[$($g),*],
            neu: &[$($u),*],
        }
    };
}

const C_HTW: u8 = C_H | C_T | C_W;

/// The feature catalogue; feature id = index + 1.
pub(crate) static FEATURES: &[FeatureDef] = &[
    feature!("Battery Life", C_HTW, 0, "Long battery life that lasts from morning to night and beyond",
    nouns: ["battery life", "battery"],
    pos: [
        "easily gets me through two full days",
        "lasts way longer than advertised",
        "still had forty percent left after a full day of heavy use",
        "is fantastic — I charge {obj} maybe twice a week",
        "survived a whole transatlantic trip without a recharge",
    ],
    neg: [
        "dies before the end of the workday",
        "drains overnight even when I'm not using {obj}",
        "is nowhere near what the box claims",
        "has gotten noticeably worse after just a few weeks",
        "barely lasts half a day with normal use",
    ],
    neu: [
        "is about what the spec sheet says, no more and no less",
        "gets me through a day, but I charge {obj} every night",
        "is average for this kind of device",
        "is fine as long as I remember to charge {obj}",
    ]),
    feature!("Noise Cancellation", C_H, 0, "Adaptive noise cancellation that tunes out the world",
    nouns: ["noise cancellation", "ANC", "noise cancelling"],
    pos: [
        "blocks out the engine hum on flights almost completely",
        "makes my open-plan office feel like a library",
        "is the best I've tried at this price",
        "kills the rumble of the subway without any pressure feeling",
    ],
    neg: [
        "barely does anything against voices or traffic",
        "creates an annoying hiss when nothing is playing",
        "gives me a weird pressure feeling in my ears",
        "lets through almost every bit of office chatter",
    ],
    neu: [
        "takes the edge off low rumble, but voices still get through",
        "is decent, though not in the same league as the flagship models",
        "works well enough on the bus, less so in a noisy café",
    ]),
    feature!("Screen Brightness", C_T | C_W, 0, "A bright screen that stays readable outdoors",
    nouns: ["screen brightness", "brightness", "peak brightness"],
    pos: [
        "is excellent, I can read it in direct sunlight",
        "is easy to read outdoors at noon",
        "goes so high that reading at the beach is no problem",
    ],
    neg: [
        "is too low to read anything outside",
        "washes out completely in sunlight",
        "auto-adjusts erratically and is always too dark",
    ],
    neu: [
        "is fine indoors and a little weak in bright sun",
        "is adequate for most situations",
        "is about what you'd expect",
    ]),
    feature!("Comfort", C_H | C_W, 0, "Designed for all-day comfort",
    nouns: ["comfort", "wearing comfort"],
    pos: [
        "is outstanding — I wear {obj} for hours without noticing",
        "is excellent even on long-haul flights",
        "is the best I've experienced",
        "is so good that I forget I have {obj} on",
    ],
    neg: [
        "is terrible, {it} hurt{s} after thirty minutes",
        "is a problem — I get sore spots after an hour",
        "is poor and I can't wear {obj} for long",
    ],
    neu: [
        "is fine for a couple of hours",
        "is okay, though not the most comfortable I've owned",
        "is acceptable once you get used to {obj}",
    ]),
    feature!("Sound Quality", C_H, 0, "Rich, detailed sound tuned by audio engineers",
    nouns: ["sound quality", "sound", "audio quality"],
    pos: [
        "is crisp and detailed across every genre I throw at {obj}",
        "is rich and balanced, with vocals that sound natural",
        "blew me away the first time I played a lossless track",
        "is warm without being muddy",
    ],
    neg: [
        "is flat and lifeless, like listening through a wall",
        "gets harsh and tinny at higher volumes",
        "is muddy — vocals get lost behind everything else",
        "distorts noticeably as soon as I turn it up",
    ],
    neu: [
        "is good enough for podcasts and casual listening",
        "is fine but not as detailed as I hoped",
        "is pleasant, if a little unremarkable",
    ]),
    feature!("Build Quality", C_HTW, 0, "Premium materials and a sturdy build",
    nouns: ["build quality", "build", "construction"],
    pos: [
        "feels premium, with solid metal where it counts",
        "is excellent — no creaks, no flex",
        "is rock solid even after a few drops",
    ],
    neg: [
        "feels cheap and plasticky",
        "started creaking within a month",
        "is poor; a piece snapped off after a few weeks",
    ],
    neu: [
        "is okay, mostly plastic but solid enough",
        "is fine for the price",
        "is decent without feeling premium",
    ]),
    feature!("Heart Rate Accuracy", C_W, 0, "Continuous heart rate monitoring, day and night",
    nouns: ["heart rate tracking", "heart rate sensor", "heart rate accuracy"],
    pos: [
        "matches my chest strap almost beat for beat",
        "is spot on, even during intervals",
        "is accurate enough that my doctor trusts the data",
    ],
    neg: [
        "is wildly off during workouts",
        "shows 180 bpm while I'm sitting on the couch",
        "lags behind by a minute during intervals",
    ],
    neu: [
        "is accurate at rest, less so during sprints",
        "is close enough for casual use",
        "is within a few beats of my chest strap most of the time",
    ]),
    feature!("GPS", C_W, 0, "Built-in multi-band GPS for phone-free runs",
    nouns: ["GPS", "GPS tracking", "location tracking"],
    pos: [
        "locks on within seconds",
        "traces my runs perfectly, even in the city",
        "is incredibly accurate on trails",
    ],
    neg: [
        "takes forever to lock on",
        "draws my runs through buildings and rivers",
        "loses signal under trees",
    ],
    neu: [
        "is accurate enough for casual runs",
        "is okay, slightly off in the city",
        "works, but it drains the battery quickly",
    ]),
    feature!("Price/Value", C_HTW, 0, "Flagship features at a fair price",
    nouns: ["price", "value for money", "price-to-performance ratio"],
    pos: [
        "is unbeatable for what you get",
        "is fantastic, especially on sale",
        "is more than fair given how much {it} can do",
    ],
    neg: [
        "is hard to justify for what you get",
        "is a rip-off compared to the competition",
        "is way too high for this quality",
    ],
    neu: [
        "is fair, but not a bargain",
        "is about right for the category",
        "is okay if you catch a discount",
    ]),
    feature!("Bass Response", C_H, 0, "Deep, punchy bass",
    nouns: ["bass", "bass response", "low end"],
    pos: [
        "is punchy and tight without drowning the mids",
        "hits hard on electronic and hip-hop tracks",
        "has real depth without getting boomy",
    ],
    neg: [
        "is boomy and bleeds into everything",
        "is practically nonexistent",
        "rattles at higher volumes",
    ],
    neu: [
        "is present but on the polite side",
        "is a bit lighter than I'd like, though it's clean",
        "is fine for most music",
    ]),
    feature!("Transparency Mode", C_H, 0, "Transparency mode lets the world in when you need it",
    nouns: ["transparency mode", "ambient mode"],
    pos: [
        "sounds so natural I forget I'm wearing {obj}",
        "lets me hear station announcements clearly",
        "is great for quick chats without taking {obj} off",
    ],
    neg: [
        "sounds robotic and amplifies wind noise",
        "makes my own voice sound like I'm underwater",
        "keeps switching on by itself",
    ],
    neu: [
        "works, but voices sound a little processed",
        "is usable for quick conversations and that's about it",
        "does the job, nothing more",
    ]),
    feature!("Ear Cushions", C_H, K_OVER | K_ON, "Memory-foam ear cushions wrapped in soft protein leather",
    nouns: ["ear padding", "cushioning"],
    pos: [
        "is soft and stays cool even after hours",
        "feels plush, like memory foam should",
        "seals well even around my glasses",
    ],
    neg: [
        "started peeling after two months",
        "gets hot and sweaty within half an hour",
        "is thin and hard on the ears",
    ],
    neu: [
        "is comfortable enough but gets warm in summer",
        "is okay, not as plush as on pricier models",
        "is comfortable enough for a commute",
    ]),
    feature!("Fit", C_H, 0, "A secure, ergonomic fit",
    nouns: ["fit", "overall fit"],
    pos: [
        "stays secure even on runs and at the gym",
        "is snug without being tight",
        "feels custom-made for me",
    ],
    neg: [
        "is so loose that I keep readjusting {obj}",
        "never feels secure when I move my head",
        "is too tight and gives me a headache after an hour",
    ],
    neu: [
        "is okay once I found the right position",
        "is fine for sitting still but not for workouts",
        "is decent, if not perfect",
    ]),
    feature!("Soundstage", C_H, 0, "A wide, open soundstage",
    nouns: ["soundstage", "stereo imaging"],
    pos: [
        "is surprisingly wide for a closed design",
        "makes live recordings feel like I'm in the room",
        "is wide, and instruments are easy to place",
    ],
    neg: [
        "feels cramped, everything sits inside my head",
        "is narrow and congested",
        "collapses on busy tracks",
    ],
    neu: [
        "is average, neither wide nor particularly narrow",
        "is fine for pop, less convincing for orchestral music",
        "is what you'd expect at this price",
    ]),
    feature!("Call Quality", C_H | C_W, 0, "Clear calls with beamforming microphones",
    nouns: ["call quality", "calling experience"],
    pos: [
        "is excellent — nobody on my work calls can tell I'm on the street",
        "is crystal clear on both ends",
        "handles windy days surprisingly well",
    ],
    neg: [
        "is awful, people constantly ask me to repeat myself",
        "makes me sound like I'm in a tunnel",
        "drops out every few minutes",
    ],
    neu: [
        "is acceptable indoors but struggles outside",
        "is fine for short calls",
        "is about average — callers say I sound a bit distant",
    ]),
    feature!("Latency", C_H, 0, "Low-latency mode for games and video",
    nouns: ["latency", "audio delay"],
    pos: [
        "is low enough that videos stay perfectly in sync",
        "is barely noticeable even in games",
        "is a non-issue, even in rhythm games",
    ],
    neg: [
        "makes voices drift out of sync on videos",
        "ruins any kind of gaming",
        "is obvious whenever I watch something",
    ],
    neu: [
        "is noticeable in games but fine for videos",
        "is okay as long as I stick to music and movies",
        "is there, but most apps compensate for it",
    ]),
    feature!("Multipoint Connection", C_H, 0, "Multipoint: connect to two devices at once",
    nouns: ["multipoint connection", "multipoint pairing"],
    pos: [
        "switches between my laptop and phone seamlessly",
        "just works — calls on the phone, music from the laptop",
        "is a lifesaver for working from home",
    ],
    neg: [
        "constantly gets confused about which device to play from",
        "drops one device every time the other connects",
        "is so buggy that I turned it off",
    ],
    neu: [
        "works most of the time, with the occasional hiccup",
        "is handy but a little slow to switch",
        "does what it says, if a bit clunky",
    ]),
    feature!("Charging Case", C_H, K_BUDS, "A pocketable charging case with wireless charging",
    nouns: ["charging case", "case"],
    pos: [
        "is tiny and slips into any pocket",
        "holds enough juice for almost a week of commuting",
        "has a satisfying magnetic lid",
    ],
    neg: [
        "has a flimsy hinge that already feels loose",
        "is too bulky for jeans pockets",
        "sometimes doesn't charge the left bud",
    ],
    neu: [
        "is a bit big but does the job",
        "is fine and holds a few charges",
        "adds about three full charges, as advertised",
    ]),
    feature!("Water Resistance", C_H | C_W, 0, "Water and sweat resistant",
    nouns: ["water resistance", "waterproofing"],
    pos: [
        "has survived sweaty workouts and a downpour without issue",
        "has been flawless in the rain",
        "gives me total peace of mind outdoors",
    ],
    neg: [
        "didn't survive a rainy bike ride",
        "failed after a few sweaty workouts",
        "is clearly oversold — moisture got inside within a month",
    ],
    neu: [
        "seems fine for sweat and light rain, I wouldn't push it further",
        "is as rated, though I haven't really tested it",
        "is okay for everyday splashes",
    ]),
    feature!("Touch Controls", C_H | C_W, 0, "Intuitive touch and swipe controls",
    nouns: ["touch panel", "touch control", "touch sensitivity"],
    pos: [
        "is responsive and easy to learn",
        "responds to every tap and swipe reliably",
        "is intuitive — I never have to reach for my phone",
    ],
    neg: [
        "registers accidental touches whenever I adjust {obj}",
        "ignores half my taps",
        "pauses my music every time I brush against it",
    ],
    neu: [
        "works, though it takes some getting used to",
        "is fine once you learn the gestures",
        "is a bit too sensitive but manageable",
    ]),
    feature!("EQ Customization", C_H, 0, "Custom EQ and presets in the app",
    nouns: ["EQ", "equalizer"],
    pos: [
        "lets me dial in exactly the sound I want",
        "is detailed, with great presets",
        "fixed the only thing I didn't love about the tuning",
    ],
    neg: [
        "barely changes anything",
        "resets every time I reconnect",
        "is buried in menus and the presets are useless",
    ],
    neu: [
        "is basic but usable",
        "offers the usual five bands, nothing more",
        "is fine if you like fiddling",
    ]),
    feature!("Spatial Audio", C_H | C_T, 0, "Spatial audio for cinema-like sound",
    nouns: ["spatial audio", "surround effect"],
    pos: [
        "makes movies feel like a small cinema",
        "is genuinely immersive with supported content",
        "adds a great sense of space to concert recordings",
    ],
    neg: [
        "sounds like an echo chamber",
        "is a gimmick that makes everything sound hollow",
        "works with almost nothing I watch",
    ],
    neu: [
        "is fun for movies, but I leave it off for music",
        "is a nice extra but not a reason to buy",
        "is hit-and-miss depending on the content",
    ]),
    feature!("Microphone Quality", C_H | C_T, 0, "Studio-quality microphones for calls and recordings",
    nouns: ["microphone", "mic"],
    pos: [
        "picks up my voice clearly even in a busy room",
        "sounds surprisingly natural in recordings",
        "is good enough for my podcast",
    ],
    neg: [
        "picks up every bit of background noise",
        "sounds muffled and distant",
        "cuts out at random",
    ],
    neu: [
        "is serviceable for calls",
        "is okay, not studio quality",
        "does the job for video meetings",
    ]),
    feature!("Display Quality", C_T | C_W, 0, "A sharp, vivid display with accurate colours",
    nouns: ["display", "screen", "display quality"],
    pos: [
        "is sharp, with gorgeous, accurate colours",
        "is stunning — text looks like print",
        "has deep blacks and great viewing angles",
    ],
    neg: [
        "has a visible yellow tint on one side",
        "shows noticeable backlight bleed",
        "looks grainy next to my phone",
    ],
    neu: [
        "is decent, though colours are a bit cool",
        "is sharp enough but not spectacular",
        "is fine for the price",
    ]),
    feature!("Refresh Rate", C_T, 0, "A high refresh rate for smooth scrolling",
    nouns: ["refresh rate", "scrolling smoothness"],
    pos: [
        "makes scrolling buttery smooth",
        "is silky smooth and makes the whole tablet feel fast",
        "is a joy when drawing with the pen",
    ],
    neg: [
        "feels choppy compared to any modern phone",
        "drops noticeably when the tablet gets busy",
        "makes scrolling stutter all the time",
    ],
    neu: [
        "is fine, though I've seen smoother",
        "is a standard 60Hz, which is okay for reading",
        "is good enough for video",
    ]),
    feature!("Stylus Support", C_T, 0, "Pressure-sensitive pen support with low latency",
    nouns: ["stylus support", "pen support", "pen experience"],
    pos: [
        "feels like writing on paper",
        "is precise, with almost no lag",
        "is great for handwritten notes and sketching",
    ],
    neg: [
        "lags so much that it's useless for drawing",
        "has terrible palm rejection",
        "drains the pen battery every other day",
    ],
    neu: [
        "is fine for notes, but not precise enough for art",
        "works, but the pen is sold separately",
        "is decent, with some occasional jitter",
    ]),
    feature!("Keyboard Accessory", C_T, 0, "An optional keyboard cover with trackpad",
    nouns: ["keyboard cover", "keyboard accessory"],
    pos: [
        "turns the tablet into a proper laptop replacement",
        "has great key travel for its size",
        "is worth every cent",
    ],
    neg: [
        "is flimsy and keeps disconnecting",
        "has a trackpad that barely works",
        "is overpriced and wobbly on my lap",
    ],
    neu: [
        "is usable but cramped",
        "is okay for emails, not for long documents",
        "does the job but adds weight",
    ]),
    feature!("Performance", C_T | C_W, 0, "A fast processor that keeps everything responsive",
    nouns: ["performance", "processor", "overall performance"],
    pos: [
        "is snappy — apps open instantly",
        "handles everything I throw at it without a stutter",
        "is flagship-level, even with lots of apps open",
    ],
    neg: [
        "is sluggish, apps take ages to open",
        "stutters constantly when switching apps",
        "slowed to a crawl after the last update",
    ],
    neu: [
        "is fine for everyday tasks, but heavy apps make it sweat",
        "is adequate, nothing more",
        "is okay, with occasional lag here and there",
    ]),
    feature!("Storage Capacity", C_T, 0, "Plenty of storage for apps, photos and offline videos",
    nouns: ["storage", "storage capacity", "base storage"],
    pos: [
        "is generous, I've downloaded my whole library",
        "is plenty for all my apps and offline movies",
        "is more than enough, even for big games",
    ],
    neg: [
        "fills up ridiculously fast",
        "is tiny once the system takes its share",
        "forced me to delete apps within a week",
    ],
    neu: [
        "is enough if you stream most things",
        "is okay for the price",
        "is fine for my needs, though heavy users should get the bigger model",
    ]),
    feature!("Expandable Storage", C_T, 0, "A microSD slot for expandable storage",
    nouns: ["microSD slot", "expandable storage"],
    pos: [
        "is a huge plus, I added 512 GB for cheap",
        "works flawlessly with my SD card",
        "saves me from paying for the bigger model",
    ],
    neg: [
        "doesn't recognise half of my cards",
        "is painfully slow for movies",
        "broke the second time I used it",
    ],
    neu: [
        "is there and it works",
        "is handy, though apps can't be moved to it",
        "is a nice-to-have, though I rarely use it",
    ]),
    feature!("Camera Quality", C_T, 0, "Front and rear cameras for calls and document scans",
    nouns: ["camera", "front camera", "rear camera"],
    pos: [
        "is great for video calls, even in low light",
        "takes surprisingly good document scans",
        "keeps me centred on calls",
    ],
    neg: [
        "is grainy on every video call",
        "is blurry and washed out",
        "makes me look like a potato on video calls",
    ],
    neu: [
        "is fine for scanning documents",
        "is okay for calls, nothing more",
        "is what you'd expect from a tablet camera",
    ]),
    feature!("Speakers", C_T, 0, "Quad speakers with rich stereo sound",
    nouns: ["speaker sound", "built-in speaker system"],
    pos: [
        "is loud and full for a tablet",
        "is so good that I don't bother with headphones for movies",
        "has real stereo separation",
    ],
    neg: [
        "is tinny and distorts at max volume",
        "is too quiet to hear over the dishwasher",
        "is muffled when I hold the tablet in landscape",
    ],
    neu: [
        "is fine for YouTube",
        "is okay but lacks bass",
        "is average for a tablet",
    ]),
    feature!("Multitasking", C_T, 0, "Split-screen multitasking",
    nouns: ["multitasking", "split-screen mode"],
    pos: [
        "works brilliantly with two apps side by side",
        "makes research and note-taking a breeze",
        "is the best I've seen on a tablet",
    ],
    neg: [
        "is clumsy and keeps closing my apps",
        "is limited and confusing",
        "crashes whenever I drag in a third app",
    ],
    neu: [
        "is usable once you learn the gestures",
        "is fine for two apps and messy beyond that",
        "handles a browser and notes, nothing fancier",
    ]),
    feature!("Software Updates", C_T | C_W, 0, "Years of software and security updates",
    nouns: ["software support", "update schedule", "firmware"],
    pos: [
        "has been excellent, with regular updates",
        "keeps adding new features",
        "is frequent, and every update has improved something",
    ],
    neg: [
        "broke several features in the last update",
        "hasn't seen an update in months",
        "is buggy and updates fail to install",
    ],
    neu: [
        "gets the occasional update",
        "is fine; updates are slow but they do arrive",
        "is average — a couple of updates a year",
    ]),
    feature!("Weight", C_HTW, 0, "Lightweight design",
    nouns: ["weight", "heft"],
    pos: [
        "is impressively low for the size",
        "is perfectly balanced, nothing feels top-heavy",
        "is feather-light for what it is",
        "makes {obj} easy to carry all day",
    ],
    neg: [
        "is hard to ignore — {it} feel{s} like a brick",
        "gets tiring after an hour",
        "is much more than the photos suggest",
    ],
    neu: [
        "is average for this category",
        "is noticeable but not a problem",
        "is fine, nothing to write home about",
    ]),
    feature!("Portability", C_H | C_T, 0, "Slim and portable, made for travel",
    nouns: ["portability", "compactness"],
    pos: [
        "is excellent — {it} fit{s} in any bag",
        "makes {obj} my go-to travel companion",
        "is superb for trips",
    ],
    neg: [
        "is poor, {it} take{s} up half my backpack",
        "is not great because nothing folds or packs flat",
        "is a real problem on trips",
    ],
    neu: [
        "is okay; {it} fit{s} in a backpack but not a jacket pocket",
        "is reasonable, though it's no featherweight",
        "is fine for commuting",
    ]),
    feature!("Charging Speed", C_HTW, 0, "Fast charging over USB-C",
    nouns: ["charging speed", "fast charging"],
    pos: [
        "is super quick — ten minutes gives me hours",
        "is impressively fast",
        "tops {obj} up while I shower",
    ],
    neg: [
        "is painfully slow, it takes all night",
        "is much slower than advertised",
        "only works with the original cable, and slowly",
    ],
    neu: [
        "is average, about two hours to full",
        "is fine overnight",
        "is neither fast nor slow",
    ]),
    feature!("Bluetooth Connectivity", C_H | C_W, 0, "Stable Bluetooth 5.3 connection",
    nouns: ["Bluetooth connection", "connection"],
    pos: [
        "is rock solid, even two rooms away",
        "pairs instantly and never drops",
        "is flawless with every device I own",
    ],
    neg: [
        "drops out every few minutes",
        "cuts out as soon as my phone is in my pocket",
        "needs re-pairing almost daily",
    ],
    neu: [
        "is stable most of the time",
        "is fine within a few metres",
        "is okay, with the occasional dropout",
    ]),
    feature!("Companion App", C_H | C_W, 0, "A companion app for settings, updates and insights",
    nouns: ["companion app", "app"],
    pos: [
        "is clean, fast and full of useful settings",
        "is one of the best I've used",
        "makes setup and tweaks effortless",
    ],
    neg: [
        "is buggy and crashes constantly",
        "demands an account and way too many permissions",
        "is a mess of menus and upsells",
    ],
    neu: [
        "is functional, if a bit cluttered",
        "is fine, nothing special",
        "does the basics and not much else",
    ]),
    feature!("Setup Experience", C_HTW, 0, "Set up in minutes",
    nouns: ["setup", "setup process", "out-of-box experience"],
    pos: [
        "took less than two minutes",
        "was painless, even for my dad",
        "was the easiest I've ever had",
    ],
    neg: [
        "was a nightmare of failed pairings and updates",
        "took over an hour",
        "required three factory resets",
    ],
    neu: [
        "was straightforward but slow",
        "was standard: download the app, pair, update",
        "took a while because of updates, but worked",
    ]),
    feature!("Cellular Connectivity", C_T | C_W, 0, "Optional LTE/5G connectivity",
    nouns: ["LTE connectivity", "cellular connection", "eSIM"],
    pos: [
        "means I can leave my phone at home",
        "is reliable even in the countryside",
        "was easy to activate with my carrier",
    ],
    neg: [
        "drops constantly and drains the battery",
        "was impossible to activate with my carrier",
        "is slow even with full signal",
    ],
    neu: [
        "works, though the extra monthly fee adds up",
        "is handy now and then",
        "is fine in the city",
    ]),
    feature!("Eye Comfort", C_T, 0, "Eye-comfort reading mode with a blue-light filter",
    nouns: ["reading mode", "eye comfort mode", "blue light filter"],
    pos: [
        "lets me read for hours without tired eyes",
        "is great for late-night reading",
        "makes long study sessions much easier",
    ],
    neg: [
        "tints everything an ugly orange",
        "flickers at low brightness and gives me headaches",
        "is hidden in the settings and barely helps",
    ],
    neu: [
        "is a nice touch",
        "helps a bit at night",
        "is okay, but I mostly forget to turn it on",
    ]),
    feature!("Parental Controls", C_T, 0, "Kids mode with screen-time limits",
    nouns: ["parental control system", "kids mode"],
    pos: [
        "is easy to set up, and my kids can't get around it",
        "gives me good control over screen time",
        "is well thought out",
    ],
    neg: [
        "is easy for my nine-year-old to bypass",
        "is confusing and keeps locking me out too",
        "is barely functional",
    ],
    neu: [
        "covers the basics like time limits and app approval",
        "works, though setup is fiddly",
        "is fine for younger kids",
    ]),
    feature!("USB-C Port", C_T, 0, "USB-C with fast data transfer and display output",
    nouns: ["USB-C port", "charging port"],
    pos: [
        "drives an external monitor, which is fantastic",
        "charges and transfers data quickly",
        "works with all my hubs and dongles",
    ],
    neg: [
        "is loose, and the cable falls out",
        "is stuck at USB 2.0 speeds",
        "doesn't support video out",
    ],
    neu: [
        "is a standard USB-C port, nothing more",
        "is fine, though a headphone jack would be nice",
        "does the job for charging",
    ]),
    feature!("Biometric Unlock", C_T, 0, "Fingerprint and face unlock",
    nouns: ["fingerprint reader", "face unlock"],
    pos: [
        "is instant and never misses",
        "works even in the dark",
        "is fast and reliable",
    ],
    neg: [
        "fails half the time",
        "never works with wet fingers or in dim light",
        "is slow and unreliable",
    ],
    neu: [
        "works most of the time",
        "is fine, if a bit slower than my phone's",
        "is okay in good light",
    ]),
    feature!("Gaming Performance", C_T, 0, "A GPU built for smooth gaming",
    nouns: ["gaming performance", "performance in games"],
    pos: [
        "is smooth even in demanding 3D titles",
        "runs my favourite games at high settings without a hitch",
        "keeps frame rates steady for hours",
    ],
    neg: [
        "stutters and overheats in anything 3D",
        "drops frames constantly",
        "makes even simple games lag",
    ],
    neu: [
        "is fine for casual games",
        "is okay at medium settings",
        "is decent, but the tablet gets warm",
    ]),
    feature!("Sleep Tracking", C_W, 0, "Sleep stages and a nightly sleep score",
    nouns: ["sleep tracking", "sleep analysis"],
    pos: [
        "is detailed and surprisingly accurate",
        "has genuinely helped me fix my sleep schedule",
        "knows when I wake up at night better than I do",
    ],
    neg: [
        "thinks I'm asleep while I'm reading in bed",
        "is inconsistent from night to night",
        "misses entire nights",
    ],
    neu: [
        "gives a rough idea of how I slept",
        "is interesting, but I'm not sure how accurate it is",
        "is fine for spotting trends over a week",
    ]),
    feature!("Activity Tracking", C_W, 0, "All-day step, distance and calorie tracking",
    nouns: ["step counting", "activity tracking"],
    pos: [
        "is accurate, and the daily goals keep me motivated",
        "is spot on compared to my phone",
        "counts steps reliably",
    ],
    neg: [
        "counts steps while I'm driving",
        "undercounts my steps by thousands",
        "is all over the place",
    ],
    neu: [
        "is close enough",
        "is roughly in line with my phone",
        "is okay, if a little generous on busy days",
    ]),
    feature!("Workout Modes", C_W, 0, "Over 100 workout modes with automatic detection",
    nouns: ["selection of workout modes", "workout tracking"],
    pos: [
        "covers everything from rowing to yoga",
        "is fantastic — auto-detection catches all my walks",
        "is flexible, with custom intervals",
    ],
    neg: [
        "is missing basics like strength training",
        "forgets to save my workouts",
        "is limited and hard to navigate mid-run",
    ],
    neu: [
        "covers the common sports",
        "is decent, though auto-detection is hit and miss",
        "is fine for casual use",
    ]),
    feature!("Always-On Display", C_W, 0, "Always-on display",
    nouns: ["always-on display", "always-on mode"],
    pos: [
        "is bright and barely costs any battery",
        "is perfect — it looks like a real watch",
        "is beautiful and easy to read at a glance",
    ],
    neg: [
        "cuts the battery life in half",
        "is too dim to read",
        "keeps turning off by itself",
    ],
    neu: [
        "is nice, but I turn it off to save battery",
        "is fine, if a little dim",
        "is okay indoors",
    ]),
    feature!("Notifications", C_W, 0, "Smart notifications and quick replies",
    nouns: ["notification system", "notification handling"],
    pos: [
        "is reliable — I never miss a message",
        "lets me triage messages without reaching for my phone",
        "is well designed, with useful quick replies",
    ],
    neg: [
        "delivers messages late or not at all",
        "buzzes twice for every message",
        "has been unreliable since the last update",
    ],
    neu: [
        "works, though quick replies are limited",
        "is fine for messages",
        "is basic: you can read messages but not much else",
    ]),
    feature!("Strap Quality", C_W, 0, "A soft, quick-release strap",
    nouns: ["strap", "band"],
    pos: [
        "is soft and comfortable, even in the heat",
        "feels premium and swaps out in seconds",
        "is sturdy and looks great",
    ],
    neg: [
        "gave me a rash within a week",
        "started cracking after a month",
        "has a clasp that came undone during a run",
    ],
    neu: [
        "is fine, but I'll probably buy a nicer one",
        "is okay, a bit stiff at first",
        "does the job, though it picks up lint",
    ]),
    feature!("Contactless Payments", C_W, 0, "Tap to pay from your wrist",
    nouns: ["contactless payment", "tap-to-pay"],
    pos: [
        "works everywhere; paying with my wrist is addictive",
        "is instant at every terminal I've tried",
        "was easy to set up with my bank",
    ],
    neg: [
        "doesn't support my bank",
        "fails at half the terminals",
        "requires an unlock every single time",
    ],
    neu: [
        "works at most shops",
        "is handy when it works",
        "is fine, though setup was a bit fiddly",
    ]),
    feature!("Blood Oxygen Sensor", C_W, 0, "Blood oxygen (SpO2) measurements",
    nouns: ["blood oxygen sensor", "SpO2 reading"],
    pos: [
        "matches my finger oximeter closely",
        "is reliable and gives me peace of mind at altitude",
        "works well overnight",
    ],
    neg: [
        "gives random readings",
        "says 85% when I'm perfectly fine",
        "fails to get a reading half the time",
    ],
    neu: [
        "is roughly in line with my oximeter",
        "is interesting, but I wouldn't rely on it",
        "is okay for spot checks",
    ]),
    feature!("Voice Assistant", C_HTW, 0, "Built-in voice assistant",
    nouns: ["voice assistant", "voice control"],
    pos: [
        "understands me even with my accent",
        "is quick and handy for timers and messages",
        "works surprisingly well",
    ],
    neg: [
        "misunderstands almost everything",
        "triggers at random moments",
        "is so slow that I gave up on it",
    ],
    neu: [
        "works for simple commands",
        "is fine for timers",
        "is okay, but I rarely use it",
    ]),
    feature!("Watch Faces", C_W, 0, "Hundreds of customisable watch faces",
    nouns: ["selection of watch faces", "watch face library"],
    pos: [
        "is huge, and many are free",
        "has something for every occasion",
        "is beautiful and customisable",
    ],
    neg: [
        "is tiny, and the third-party ones are paid",
        "is limited and they all look cheap",
        "is a letdown, with barely a dozen designs",
    ],
    neu: [
        "is decent, with a few nice designs",
        "is okay; I use the same one every day anyway",
        "is fine, if a little dated",
    ]),
    feature!("Scratch Resistance", C_T | C_W, 0, "Scratch-resistant toughened glass",
    nouns: ["scratch resistance", "glass"],
    pos: [
        "is impressive — not a mark after months of daily use",
        "has held up to keys in my bag",
        "is excellent — the screen still looks new",
    ],
    neg: [
        "is poor; I got a deep scratch in the first week",
        "is terrible, it scuffs far too easily",
        "is disappointing for the price",
    ],
    neu: [
        "is okay, a couple of faint marks so far",
        "is average; a few hairline scratches after a few months",
        "is fine with a screen protector",
    ]),
    feature!("Swim Tracking", C_W, 0, "Pool and open-water swim tracking",
    nouns: ["swim tracking", "lap counting"],
    pos: [
        "counts my laps perfectly",
        "is accurate in both the pool and open water",
        "is detailed, with stroke detection",
    ],
    neg: [
        "miscounts laps constantly",
        "stops recording halfway through",
        "can't tell breaststroke from freestyle",
    ],
    neu: [
        "is mostly accurate",
        "is fine for casual swims",
        "is okay, off by a lap or two",
    ]),
    feature!("Ear Tips", C_H, K_BUDS, "Silicone and foam ear tips in several sizes",
    nouns: ["selection of ear tips", "set of ear tips"],
    pos: [
        "is generous, and one size fits perfectly",
        "includes foam tips that seal perfectly",
        "makes it easy to get a good seal",
    ],
    neg: [
        "is limited, and none of them fits me",
        "is poor — the tips keep slipping off",
        "is stingy for the price",
    ],
    neu: [
        "is standard: small, medium and large",
        "is fine for most ears",
        "is okay, though I'd like a foam option",
    ]),
    feature!("Wear Detection", C_H, 0, "Automatic pause when you take them off",
    nouns: ["wear detection", "auto-pause"],
    pos: [
        "pauses instantly when I take {obj} off",
        "is fast and reliable",
        "works perfectly every time",
    ],
    neg: [
        "keeps pausing my music at random",
        "doesn't work when I wear a hat",
        "is so unreliable that I disabled it",
    ],
    neu: [
        "works most of the time",
        "is a bit slow but fine",
        "is okay, sometimes a second or two late",
    ]),
];

// ---------------------------------------------------------------------------
// The sample data set shipped in data/
// ---------------------------------------------------------------------------

mod sample {
    use super::*;

    const SAMPLE_SEED: u64 = 20_240_611;
    pub(super) const SAMPLE_REVIEWS: usize = 1_200;
    /// Share of generated sample reviews labelled in product_reviews.csv (hand-written
    /// ones never are), giving about 30% overall.
    const LABELLED_SHARE_OF_GENERATED: f64 = 0.33;

    pub(super) struct Curated {
        pub name: &'static str,
        pub brand: &'static str,
        pub kind: Kind,
        pub price: &'static str,
        pub tagline: &'static str,
        /// Features the product is always linked to.
        pub must: &'static [&'static str],
    }

    struct CuratedUser {
        first: &'static str,
        last: &'static str,
        city: &'static str,
        gender: &'static str,
        age: u32,
        hobbies: &'static [&'static str],
        location: &'static str,
        lifestyle: &'static [&'static str],
        preferences: &'static [&'static str],
    }

    /// A hand-written review and its hand-assigned label.
    pub(super) struct Hand {
        /// Product id (1-based index into CATALOGUE).
        pub p: usize,
        pub f: &'static str,
        pub s: Sentiment,
        pub r: u8,
        pub user: &'static str,
        pub text: &'static str,
    }

    fn parse_price(s: &str) -> u64 {
        let (d, c) = s.split_once('.').unwrap_or((s, "0"));
        d.parse::<u64>().expect("price") * 100
            + format!("{c:0<2}").parse::<u64>().expect("price cents")
    }

    /// Feature indexes linked to curated product `id`: its must-haves, the
    /// features hand-written reviews talk about, topped up at random.
    pub(super) fn curated_features(rng: &mut Rng, id: usize) -> Vec<u16> {
        let c = &CATALOGUE[id - 1];
        let mut feats: Vec<u16> = c.must.iter().map(|n| feature_index(n) as u16).collect();
        for h in HAND.iter().filter(|h| h.p == id) {
            let f = feature_index(h.f) as u16;
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
                product_description(&mut rng, c.name, c.kind, Some(c.tagline), &features);
            let spec = ProductSpec {
                id: id as u32,
                name: c.name.to_string(),
                kind: c.kind,
                brand: c.brand,
                price_cents: parse_price(c.price),
                description,
                specs,
                features: features.clone(),
                images: rng.range(2, 4),
            };
            w.write_product(&spec, &mut rng)?;
            infos.push(ProductInfo {
                id: id as u32,
                kind: c.kind,
                brand: c.brand,
                features,
            });
        }

        for (i, u) in USERS.iter().enumerate() {
            let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<String>>();
            w.write_user(&UserSpec {
                id: i as u32 + 1,
                first: u.first.to_string(),
                last: u.last.to_string(),
                city: u.city.to_string(),
                gender: u.gender,
                age: u.age,
                hobbies: strings(u.hobbies),
                location: u.location.to_string(),
                lifestyle: strings(u.lifestyle),
                preferences: strings(u.preferences),
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
                    feature: feature_index(h.f),
                    sentiment: h.s,
                    rating: h.r,
                };
                let rating = format_rating(&mut rng, h.r);
                w.write_review(id, h.p as u32, h.user, h.text, rating, None)?;
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

    use Kind::{Earbuds as B, OnEar as N, OverEar as O, Tablet as T, Watch as W};

    pub(super) static CATALOGUE: &[Curated] = &[
        // Headphones (ids 1-20)
        Curated { name: "Auralis QuietLine 700 Wireless Headphones", brand: "Auralis", kind: O, price: "279.99",
            tagline: "Our flagship over-ear headphones: adaptive noise cancellation, a plush headband and a sound signature tuned for long listening sessions.",
            must: &["Noise Cancellation", "Sound Quality", "Battery Life", "Comfort"] },
        Curated { name: "Auralis QuietLine 500 Wireless Headphones", brand: "Auralis", kind: O, price: "199.99",
            tagline: "Everything you love about QuietLine, at a friendlier price.",
            must: &["Noise Cancellation", "Comfort"] },
        Curated { name: "Auralis Pulse Buds Pro", brand: "Auralis", kind: B, price: "179.99",
            tagline: "Premium true wireless earbuds with active noise cancellation in a pocket-sized case.",
            must: &["Noise Cancellation", "Charging Case", "Fit"] },
        Curated { name: "Veltro Audio Studio X Headphones", brand: "Veltro Audio", kind: O, price: "149.00",
            tagline: "Closed-back studio headphones with a neutral tuning trusted by producers and podcasters.",
            must: &["Sound Quality", "Soundstage", "Build Quality"] },
        Curated { name: "Veltro Audio Air Buds 2", brand: "Veltro Audio", kind: B, price: "89.99",
            tagline: "Light, simple true wireless earbuds for every day.",
            must: &["Battery Life", "Bluetooth Connectivity"] },
        Curated { name: "Nordhaven Fjord ANC Headphones", brand: "Nordhaven", kind: O, price: "229.99",
            tagline: "Scandinavian design meets hybrid noise cancellation, with cushions you can wear all day.",
            must: &["Noise Cancellation", "Ear Cushions", "Multipoint Connection"] },
        Curated { name: "Nordhaven Breeze On-Ear Headphones", brand: "Nordhaven", kind: N, price: "99.99",
            tagline: "Foldable on-ear headphones that pack flat for travel.",
            must: &["Comfort", "Portability"] },
        Curated { name: "Kestrel Sound Trail Sport Earbuds", brand: "Kestrel Sound", kind: B, price: "69.99",
            tagline: "Sports earbuds with secure wing tips and a sweat-proof design.",
            must: &["Fit", "Water Resistance"] },
        Curated { name: "Kestrel Sound Glide On-Ear Headphones", brand: "Kestrel Sound", kind: N, price: "59.99",
            tagline: "Lightweight on-ear headphones with long battery life at an easy price.",
            must: &["Price/Value", "Weight"] },
        Curated { name: "Halcyon Voyager Wireless Headphones", brand: "Halcyon", kind: O, price: "249.00",
            tagline: "Travel headphones built for long flights: strong noise cancellation and a battery that outlasts the trip.",
            must: &["Noise Cancellation", "Battery Life", "Portability"] },
        Curated { name: "Halcyon Drift Buds", brand: "Halcyon", kind: B, price: "129.99",
            tagline: "Earbuds with a natural transparency mode and six microphones for clear calls.",
            must: &["Transparency Mode", "Call Quality"] },
        Curated { name: "Brio Beat Mini Earbuds", brand: "Brio", kind: B, price: "26.99",
            tagline: "Big bass, tiny price.",
            must: &["Price/Value", "Bass Response"] },
        Curated { name: "Brio Beat Over-Ear Headphones", brand: "Brio", kind: O, price: "49.99",
            tagline: "Bass-forward over-ear headphones for students and commuters.",
            must: &["Price/Value", "Bass Response", "Build Quality"] },
        Curated { name: "Sonique Reference One Headphones", brand: "Sonique", kind: O, price: "349.99",
            tagline: "Reference-grade wireless headphones with a wide, natural soundstage.",
            must: &["Sound Quality", "Soundstage", "Ear Cushions"] },
        Curated { name: "Sonique Pods Lite", brand: "Sonique", kind: B, price: "59.99",
            tagline: "Sonique sound in a compact, affordable pair of earbuds.",
            must: &["Touch Controls", "Ear Tips"] },
        Curated { name: "Tidewave Surf Pro Earbuds", brand: "Tidewave", kind: B, price: "119.99",
            tagline: "Waterproof earbuds for surfers, swimmers and runners.",
            must: &["Water Resistance", "Fit", "Wear Detection"] },
        Curated { name: "Tidewave Harbor On-Ear Headphones", brand: "Tidewave", kind: N, price: "79.99",
            tagline: "Warm, relaxed sound in a comfortable on-ear design.",
            must: &["Sound Quality", "Comfort"] },
        Curated { name: "Veltro Audio Gamer GX Headset", brand: "Veltro Audio", kind: O, price: "129.99",
            tagline: "A wireless gaming headset with a low-latency mode and a detachable boom microphone.",
            must: &["Latency", "Microphone Quality"] },
        Curated { name: "Nordhaven Aurora Buds", brand: "Nordhaven", kind: B, price: "149.99",
            tagline: "Earbuds with head-tracked spatial audio and a fully customisable EQ.",
            must: &["Spatial Audio", "EQ Customization", "Companion App"] },
        Curated { name: "Halcyon Studio Monitor 2 Headphones", brand: "Halcyon", kind: O, price: "189.99",
            tagline: "Monitor headphones for mixing, editing and critical listening.",
            must: &["Sound Quality", "Build Quality"] },
        // Tablets (ids 21-40)
        Curated { name: "Pixelon Slate 11", brand: "Pixelon", kind: T, price: "449.99",
            tagline: "An 11-inch tablet with a sharp display and a fast processor for work and play.",
            must: &["Display Quality", "Performance"] },
        Curated { name: "Pixelon Slate 11 Pro", brand: "Pixelon", kind: T, price: "749.99",
            tagline: "A 120 Hz pro tablet with pen and keyboard support, made to replace your laptop.",
            must: &["Refresh Rate", "Stylus Support", "Keyboard Accessory"] },
        Curated { name: "Pixelon Slate Mini 8", brand: "Pixelon", kind: T, price: "329.99",
            tagline: "A compact 8-inch tablet that fits in a coat pocket.",
            must: &["Portability", "Weight"] },
        Curated { name: "Lumio Tab S10", brand: "Lumio", kind: T, price: "599.99",
            tagline: "A premium AMOLED tablet with quad speakers.",
            must: &["Display Quality", "Speakers", "Software Updates"] },
        Curated { name: "Lumio Tab A9 Lite", brand: "Lumio", kind: T, price: "179.99",
            tagline: "An affordable everyday tablet for streaming, browsing and video calls.",
            must: &["Price/Value", "Performance"] },
        Curated { name: "Lumio Tab Kids 8", brand: "Lumio", kind: T, price: "129.99",
            tagline: "A tablet for kids, with a drop-proof bumper case and parental controls.",
            must: &["Parental Controls", "Build Quality"] },
        Curated { name: "Orbis Canvas 13", brand: "Orbis", kind: T, price: "899.00",
            tagline: "A 13-inch drawing tablet for illustrators, with a colour-accurate display.",
            must: &["Stylus Support", "Display Quality"] },
        Curated { name: "Orbis Canvas 11", brand: "Orbis", kind: T, price: "649.00",
            tagline: "The Canvas drawing experience in a more portable size.",
            must: &["Stylus Support", "Refresh Rate"] },
        Curated { name: "Tessera Note 10", brand: "Tessera", kind: T, price: "279.99",
            tagline: "A reading and note-taking tablet with a paper-like matte screen.",
            must: &["Eye Comfort", "Stylus Support", "Battery Life"] },
        Curated { name: "Tessera Note 12 Pro", brand: "Tessera", kind: T, price: "529.99",
            tagline: "A productivity tablet with split-screen multitasking and a keyboard folio.",
            must: &["Multitasking", "Keyboard Accessory"] },
        Curated { name: "Novatab Go 10", brand: "Novatab", kind: T, price: "149.99",
            tagline: "A budget 10-inch tablet with a microSD slot.",
            must: &["Price/Value", "Expandable Storage"] },
        Curated { name: "Novatab Max 12.4", brand: "Novatab", kind: T, price: "399.99",
            tagline: "A big-screen entertainment tablet.",
            must: &["Speakers", "Storage Capacity"] },
        Curated { name: "Novatab Play 11", brand: "Novatab", kind: T, price: "259.99",
            tagline: "A gaming tablet with a 144 Hz display and active cooling.",
            must: &["Gaming Performance", "Refresh Rate"] },
        Curated { name: "Quill Studio 12.9", brand: "Quill", kind: T, price: "999.00",
            tagline: "Desktop-class performance and a USB-C port that drives an external display.",
            must: &["Performance", "USB-C Port", "Display Quality"] },
        Curated { name: "Quill Air 10.9", brand: "Quill", kind: T, price: "549.99",
            tagline: "A thin and light all-rounder with a fingerprint sensor in the power button.",
            must: &["Camera Quality", "Biometric Unlock"] },
        Curated { name: "Quill Mini 8.3", brand: "Quill", kind: T, price: "469.99",
            tagline: "A small, powerful tablet for reading on the go.",
            must: &["Portability", "Screen Brightness"] },
        Curated { name: "Pixelon Slate 10 Go", brand: "Pixelon", kind: T, price: "229.99",
            tagline: "An everyday tablet with an all-day battery.",
            must: &["Battery Life", "Price/Value"] },
        Curated { name: "Lumio Tab S10 Ultra", brand: "Lumio", kind: T, price: "1099.99",
            tagline: "A 14.6-inch giant for multitasking, movies and creative work.",
            must: &["Display Quality", "Multitasking", "Weight"] },
        Curated { name: "Orbis Read 10", brand: "Orbis", kind: T, price: "199.99",
            tagline: "A tablet for readers, with an eye-comfort mode.",
            must: &["Eye Comfort", "Screen Brightness"] },
        Curated { name: "Tessera Family 10", brand: "Tessera", kind: T, price: "169.99",
            tagline: "A family tablet with profiles for every member of the household.",
            must: &["Parental Controls", "Speakers"] },
        // Smartwatches (ids 41-60)
        Curated { name: "Strida Run 265 GPS Watch", brand: "Strida", kind: W, price: "349.99",
            tagline: "A running watch with an AMOLED display, multi-band GPS and training insights.",
            must: &["GPS", "Heart Rate Accuracy", "Battery Life"] },
        Curated { name: "Strida Run 55 GPS Watch", brand: "Strida", kind: W, price: "199.99",
            tagline: "An easy-to-use GPS running watch.",
            must: &["GPS", "Workout Modes"] },
        Curated { name: "Strida Trek Solar", brand: "Strida", kind: W, price: "449.99",
            tagline: "A rugged outdoor watch with solar charging and a titanium bezel.",
            must: &["Battery Life", "GPS", "Build Quality"] },
        Curated { name: "Tempo Watch 5", brand: "Tempo", kind: W, price: "299.99",
            tagline: "The smartwatch that does it all: notifications, payments, health.",
            must: &["Display Quality", "Notifications", "Contactless Payments"] },
        Curated { name: "Tempo Watch 5 LTE", brand: "Tempo", kind: W, price: "379.99",
            tagline: "Tempo Watch 5 with built-in LTE: leave your phone at home.",
            must: &["Cellular Connectivity", "Call Quality"] },
        Curated { name: "Tempo Watch SE", brand: "Tempo", kind: W, price: "229.00",
            tagline: "The essential Tempo smartwatch at a lower price.",
            must: &["Price/Value", "Activity Tracking"] },
        Curated { name: "Pulsewise Band 7 Fitness Tracker", brand: "Pulsewise", kind: W, price: "49.99",
            tagline: "A slim fitness band with sleep tracking and two weeks of battery.",
            must: &["Price/Value", "Sleep Tracking", "Battery Life"] },
        Curated { name: "Pulsewise Active 3", brand: "Pulsewise", kind: W, price: "129.99",
            tagline: "A fitness smartwatch for everyday activity and heart health.",
            must: &["Activity Tracking", "Heart Rate Accuracy"] },
        Curated { name: "Cadence Sense 2", brand: "Cadence", kind: W, price: "249.99",
            tagline: "A health smartwatch with stress, sleep and SpO2 tracking.",
            must: &["Sleep Tracking", "Blood Oxygen Sensor", "Companion App"] },
        Curated { name: "Cadence Versa 4", brand: "Cadence", kind: W, price: "199.99",
            tagline: "A stylish fitness smartwatch with hundreds of watch faces.",
            must: &["Watch Faces", "Software Updates"] },
        Curated { name: "Meridian Classic GT", brand: "Meridian", kind: W, price: "279.99",
            tagline: "A classic round smartwatch with a leather strap and an always-on display.",
            must: &["Always-On Display", "Strap Quality"] },
        Curated { name: "Meridian Sport 46", brand: "Meridian", kind: W, price: "189.99",
            tagline: "A sporty smartwatch with over 100 workout modes and 5 ATM water resistance.",
            must: &["Workout Modes", "Water Resistance"] },
        Curated { name: "Ardent Ultra Explorer", brand: "Ardent", kind: W, price: "799.00",
            tagline: "An expedition watch with a sapphire display, dual-band GPS and a titanium case.",
            must: &["GPS", "Build Quality", "Screen Brightness"] },
        Curated { name: "Ardent Ocean Dive", brand: "Ardent", kind: W, price: "599.00",
            tagline: "A dive-ready smartwatch rated to 100 metres.",
            must: &["Water Resistance", "Swim Tracking"] },
        Curated { name: "Tempo Watch Kids", brand: "Tempo", kind: W, price: "149.99",
            tagline: "A kids' smartwatch with calling, location sharing and a soft strap.",
            must: &["Cellular Connectivity", "Strap Quality"] },
        Curated { name: "Pulsewise Pro X", brand: "Pulsewise", kind: W, price: "219.99",
            tagline: "A health-focused smartwatch with an improved heart rate sensor.",
            must: &["Heart Rate Accuracy", "Companion App"] },
        Curated { name: "Cadence Luxe", brand: "Cadence", kind: W, price: "179.99",
            tagline: "A slim, jewellery-inspired tracker.",
            must: &["Comfort", "Strap Quality"] },
        Curated { name: "Meridian Hybrid HR", brand: "Meridian", kind: W, price: "229.99",
            tagline: "A hybrid smartwatch with real hands and weeks of battery.",
            must: &["Battery Life", "Notifications"] },
        Curated { name: "Strida Swim 2", brand: "Strida", kind: W, price: "169.99",
            tagline: "A swimming watch that counts laps, strokes and SWOLF.",
            must: &["Swim Tracking", "Water Resistance"] },
        Curated { name: "Ardent Peak 2", brand: "Ardent", kind: W, price: "399.99",
            tagline: "A mountain watch with offline topographic maps.",
            must: &["GPS", "Performance"] },
    ];

    static USERS: &[CuratedUser] = &[
        CuratedUser {
            first: "Maya",
            last: "Chen",
            city: "Seattle",
            gender: "Female",
            age: 29,
            hobbies: &["Running", "Podcasts", "Photography"],
            location: "(-122.3321, 47.6062)",
            lifestyle: &["Commutes by train every day", "Training for a marathon"],
            preferences: &[
                "Prefers over-ear headphones with strong noise cancellation",
                "Wants a running watch with accurate GPS and heart rate tracking",
                "Values long battery life over a slim design",
            ],
        },
        CuratedUser {
            first: "Daniel",
            last: "Okafor",
            city: "Dublin",
            gender: "Male",
            age: 41,
            hobbies: &["Cycling", "Board games"],
            location: "(-6.2603, 53.3498)",
            lifestyle: &["Works from home", "Parent of two young kids"],
            preferences: &[
                "Needs clear call quality for work meetings",
                "Wants a kid-friendly tablet with parental controls",
                "Prefers products with a good price-to-value ratio",
            ],
        },
        CuratedUser {
            first: "Sofia",
            last: "García",
            city: "Madrid",
            gender: "Female",
            age: 24,
            hobbies: &["Drawing", "Gaming", "Yoga"],
            location: "(-3.7038, 40.4168)",
            lifestyle: &["Student", "Night owl"],
            preferences: &[
                "Looks for a tablet with good stylus support for drawing and note-taking",
                "Prefers a high refresh rate screen",
                "Likes earbuds with low latency for gaming",
            ],
        },
        CuratedUser {
            first: "Kenji",
            last: "Tanaka",
            city: "Osaka",
            gender: "Male",
            age: 35,
            hobbies: &["Swimming", "Hiking", "Travel"],
            location: "(135.5023, 34.6937)",
            lifestyle: &["Frequent business traveller", "Outdoor enthusiast"],
            preferences: &[
                "Prefers waterproof gear for swimming",
                "Wants a watch with multi-day battery life for hiking trips",
                "Likes lightweight, foldable headphones for travel",
            ],
        },
        CuratedUser {
            first: "Ingrid",
            last: "Johansson",
            city: "Stockholm",
            gender: "Female",
            age: 58,
            hobbies: &["Reading", "Gardening", "Birdwatching"],
            location: "(18.0686, 59.3293)",
            lifestyle: &["Early riser", "Health-conscious"],
            preferences: &[
                "Prefers tablets with a bright screen and an eye-comfort mode for reading",
                "Cares about accurate sleep tracking",
                "Wants devices that are simple to set up",
            ],
        },
        CuratedUser {
            first: "Arjun",
            last: "Patel",
            city: "Bengaluru",
            gender: "Male",
            age: 31,
            hobbies: &["Playing guitar", "Gaming", "Cooking"],
            location: "(77.5946, 12.9716)",
            lifestyle: &["Night owl", "Works from home"],
            preferences: &[
                "Wants headphones with a detailed, neutral sound for music production",
                "Prefers a tablet that can drive an external monitor",
                "Avoids products with buggy companion apps",
            ],
        },
        CuratedUser {
            first: "Léa",
            last: "Dubois",
            city: "Montréal",
            gender: "Female",
            age: 45,
            hobbies: &["Yoga", "Travel", "Cooking"],
            location: "(-73.5674, 45.5019)",
            lifestyle: &["Frequent business traveller", "Minimalist"],
            preferences: &[
                "Prefers a stylish smartwatch with a leather strap",
                "Wants contactless payments on her watch",
                "Likes premium build quality and metal finishes",
            ],
        },
        CuratedUser {
            first: "Omar",
            last: "Haddad",
            city: "Chicago",
            gender: "Male",
            age: 19,
            hobbies: &["Running", "Basketball", "Podcasts"],
            location: "(-87.6298, 41.8781)",
            lifestyle: &["Student", "Budget-conscious"],
            preferences: &[
                "Wants earbuds that stay in during workouts",
                "Prefers products with a good price-to-value ratio",
                "Likes rich bass for hip-hop",
            ],
        },
    ];

    use Sentiment::{Negative as Neg, Neutral as Neu, Positive as Pos};

    /// Hand-written reviews with hand-assigned labels.
    pub(super) static HAND: &[Hand] = &[
        // Headphones
        Hand { p: 1, f: "Noise Cancellation", s: Pos, r: 5, user: "Marta K.",
            text: "Flew Lisbon to Toronto last week and the noise cancellation on these is unreal. The engine drone just... disappears. I actually slept. Sound is great too, but the ANC is what you pay for." },
        Hand { p: 1, f: "Comfort", s: Neg, r: 2, user: "jonas_b",
            text: "Sound is lovely.\n\nBut I can't wear them for longer than an hour. The headband presses right on the top of my head and I end up with a headache every time. Tried stretching them over a box like people suggest on forums, didn't help much." },
        Hand { p: 2, f: "Noise Cancellation", s: Neu, r: 3, user: "Priya S.",
            text: "Noise cancelling is fine. It removes the hum of the air conditioning and some of the bus noise, but voices come straight through. For the price I guess that's expected? Not a huge step up from passive isolation." },
        Hand { p: 2, f: "Price/Value", s: Pos, r: 5, user: "Tom",
            text: "Got the QuietLine 500 on sale for 139 and for that money they're a steal. You get 80% of the flagship for half the price." },
        Hand { p: 3, f: "Fit", s: Neg, r: 1, user: "Hannah W.",
            text: "These fall out of my ears constantly. Tried all three tip sizes. The moment I turn my head or chew gum, the left one works itself loose. Went for a jog once and had to chase one across the park. Returned." },
        Hand { p: 3, f: "Charging Case", s: Pos, r: 4, user: "Lucas M.",
            text: "The case is tiny, genuinely fits in the coin pocket of my jeans, and the lid closes with a nice magnetic 'thunk'. Buds themselves are good, not amazing." },
        Hand { p: 4, f: "Sound Quality", s: Pos, r: 5, user: "mixdown_mike",
            text: "Mixing engineer here. The Studio X are honest: flat-ish mids, treble that doesn't hurt, and I can hear reverb tails I didn't know were on my own tracks. For 149 this is absurd value." },
        Hand { p: 4, f: "Build Quality", s: Neg, r: 2, user: "R. Novak",
            text: "The headband cracked right at the hinge after four months of very gentle use. Sounds great, but plastic this cheap on a \"studio\" headphone is embarrassing.\nVeltro offered a 20% discount on a new pair. No thanks." },
        Hand { p: 5, f: "Bluetooth Connectivity", s: Neg, r: 2, user: "Ethan",
            text: "Connection drops whenever my phone is in my back pocket. Every. Single. Time. In the office it's fine, on the street it's a stuttering mess." },
        Hand { p: 5, f: "Battery Life", s: Neu, r: 3, user: "Grace L.",
            text: "Battery's about five hours per charge, which is what they say. Case gives maybe three more charges. Nothing to complain about, nothing to brag about." },
        Hand { p: 6, f: "Ear Cushions", s: Pos, r: 5, user: "Björn A.",
            text: "The ear pads on the Fjord are the softest I've owned — like little pillows. I wear glasses and there's no pressure on the arms at all." },
        Hand { p: 6, f: "Multipoint Connection", s: Neu, r: 3, user: "Aisha",
            text: "Multipoint works, mostly. Laptop + phone at the same time, and when a call comes in it switches over, though it takes 2-3 seconds, and once in a while the laptop audio doesn't come back until I toggle Bluetooth." },
        Hand { p: 7, f: "Portability", s: Pos, r: 4, user: "wanderlust_eva",
            text: "These fold flat into a pouch the size of a paperback, which is exactly what I wanted for my backpack. On-ears aren't for everyone, but for travel they're perfect." },
        Hand { p: 7, f: "Comfort", s: Neg, r: 2, user: "Felix",
            text: "The on-ear design squeezes my ears against my glasses. After 40 minutes it actually hurts. My fault for not trying them in a store first, I suppose." },
        Hand { p: 8, f: "Water Resistance", s: Pos, r: 5, user: "runner_girl22",
            text: "Ran a half marathon in pouring rain with these. Soaked to the bone, earbuds didn't care. Still working fine three months later, despite being rinsed under the tap after every sweaty run." },
        Hand { p: 8, f: "Fit", s: Pos, r: 4, user: "Marco R.",
            text: "The wing tips lock these in place — I do burpees and box jumps and they don't budge. Sound is average but I don't buy sports buds for audiophile sound." },
        Hand { p: 9, f: "Price/Value", s: Pos, r: 4, user: "Sam",
            text: "For under 60 bucks these are great. Don't expect miracles, but they sound fine and my kid has thrown them around for a year without killing them." },
        Hand { p: 10, f: "Battery Life", s: Pos, r: 5, user: "Kenji T.",
            text: "Charged them once before a 10-day trip to Japan and came back with 20% left. Noise cancelling on the whole time. Unreal battery." },
        Hand { p: 10, f: "Noise Cancellation", s: Neg, r: 2, user: "quietplease",
            text: "The noise cancellation creates a constant faint hiss, especially noticeable in quiet rooms. Once you hear it you can't unhear it. Apparently a \"known issue\" according to support." },
        Hand { p: 11, f: "Transparency Mode", s: Pos, r: 5, user: "Chloé",
            text: "Transparency mode on these is so natural that I've had entire conversations at the café counter without realising I still had them in. Great for the office too." },
        Hand { p: 11, f: "Call Quality", s: Neg, r: 2, user: "David K.",
            text: "Everyone on my calls says I sound like I'm in a bathroom. Tried it on Teams, WhatsApp and regular calls, same thing. For music they're fine, for calls forget it." },
        Hand { p: 12, f: "Price/Value", s: Neu, r: 3, user: "gymrat_99",
            text: "They're 27 dollars. They sound like 27-dollar earbuds. Fine for the gym, wouldn't use them for anything else." },
        Hand { p: 12, f: "Bass Response", s: Neg, r: 2, user: "Nora",
            text: "The box says \"BIG BASS\". The bass is mostly a muddy thump that drowns out vocals. I had to EQ it down on my phone to make anything listenable." },
        Hand { p: 14, f: "Soundstage", s: Pos, r: 5, user: "vinyl_and_tea",
            text: "I've owned a lot of headphones and the Reference One has the widest soundstage I've heard from a closed-back. Orchestral recordings finally sound like a hall, not a hallway." },
        Hand { p: 14, f: "Price/Value", s: Neg, r: 2, user: "Arjun P.",
            text: "Sound is great, I won't argue with that. But 350 for headphones with no ANC, a basic plastic case, and a cable that tangles if you look at it? Feels like a brand tax." },
        Hand { p: 15, f: "Touch Controls", s: Neg, r: 1, user: "Mia",
            text: "The touch controls are a disaster. Adjusting a bud in my ear pauses the music. Yawning apparently counts as a double tap. And you can't turn them off in the app." },
        Hand { p: 16, f: "Wear Detection", s: Neu, r: 3, user: "Pedro S.",
            text: "Auto-pause works maybe 80% of the time. Sometimes it keeps playing in my pocket, sometimes it pauses when I push them deeper in. Not a big deal." },
        Hand { p: 18, f: "Latency", s: Pos, r: 5, user: "fragmaster",
            text: "Using these for competitive shooters and the latency in game mode is basically zero; footsteps line up perfectly with what's on screen. Mic is okay, nothing special." },
        Hand { p: 18, f: "Microphone Quality", s: Neg, r: 2, user: "Ali",
            text: "My teammates hate this mic. It picks up my keyboard, my fan, my dog, everything except my voice, which sounds like it's coming through a tin can." },
        Hand { p: 19, f: "Spatial Audio", s: Neu, r: 3, user: "Elena V.",
            text: "Spatial audio is fun for a couple of movies, then you turn it off. It makes music sound a bit hollow. A nice extra, but I wouldn't buy them for it." },
        Hand { p: 20, f: "Sound Quality", s: Neu, r: 3, user: "podcast_pete",
            text: "Neutral tuning, maybe too neutral. Everything is there, nothing is exciting. Good for editing podcasts, a bit boring for listening to music for fun." },
        Hand { p: 17, f: "Sound Quality", s: Pos, r: 4, user: "Yuki",
            text: "Surprisingly warm, pleasant sound for an on-ear at this price. Vocals are front and centre. Bass could be tighter but I'm nitpicking." },
        Hand { p: 13, f: "Build Quality", s: Neu, r: 3, user: "Liam O'Brien",
            text: "Plastic everywhere, but it doesn't creak. Feels like they'd survive a backpack. About what you'd expect at 50." },
        // Tablets
        Hand { p: 21, f: "Display Quality", s: Pos, r: 5, user: "Sara",
            text: "The display is gorgeous. Colours are accurate without being oversaturated, and text is razor sharp. Watching films in bed on this is a treat." },
        Hand { p: 21, f: "Performance", s: Neu, r: 3, user: "Thomas B.",
            text: "Performance is fine for browsing, email and video. Once I opened a big PDF and a few browser tabs it started to stutter. Not a deal breaker, just don't expect laptop speed." },
        Hand { p: 22, f: "Stylus Support", s: Pos, r: 5, user: "med_student_jo",
            text: "I'm a medical student and I take all my notes by hand now. The pen feels like a real fine-liner, palm rejection is perfect and there's zero lag I can notice. Haven't touched paper in months." },
        Hand { p: 22, f: "Keyboard Accessory", s: Neg, r: 2, user: "Renée",
            text: "The keyboard cover costs 179 € on its own and the trackpad is tiny and imprecise. It also makes the whole thing top-heavy; it tips over on my lap on the train." },
        Hand { p: 22, f: "Refresh Rate", s: Pos, r: 5, user: "Hugo",
            text: "120Hz makes everything feel instant. Scrolling through long articles is buttery. I can't go back to my old 60Hz tablet." },
        Hand { p: 23, f: "Portability", s: Pos, r: 5, user: "commuter_41",
            text: "Small enough to fit in my coat pocket, big enough to read comfortably. It's become my commute device and my phone gets a break." },
        Hand { p: 23, f: "Weight", s: Neu, r: 3, user: "Ingrid J.",
            text: "It's light for a tablet, but not as light as the marketing made me think. One-handed reading for longer than 20 minutes still tires my wrist." },
        Hand { p: 24, f: "Speakers", s: Pos, r: 5, user: "Mateo",
            text: "The four speakers are seriously loud and have actual bass. I watch cooking videos in the kitchen over the extractor fan without any trouble." },
        Hand { p: 24, f: "Software Updates", s: Neg, r: 2, user: "Wei Z.",
            text: "Two updates in six months and both broke something. The last one made the screen randomly dim, and Lumio's answer was \"wait for the next update\"." },
        Hand { p: 25, f: "Price/Value", s: Pos, r: 4, user: "Julia",
            text: "For 180 it's a perfectly good tablet for Netflix, email and recipes. Not fast, but you'd have to pay twice as much to get a real upgrade." },
        Hand { p: 25, f: "Performance", s: Neg, r: 1, user: "Samuel",
            text: "Incredibly slow. Opening the settings takes three seconds. Typing lags behind my fingers. Even YouTube stutters if anything is updating in the background. I was naïve to think 180 would get me something usable." },
        Hand { p: 26, f: "Parental Controls", s: Pos, r: 5, user: "Daniel O.",
            text: "The kids mode is the best I've used. Time limits per app, a bedtime lock, and my seven-year-old hasn't found a way around it (yet)." },
        Hand { p: 26, f: "Build Quality", s: Pos, r: 5, user: "mum_of_three",
            text: "The bumper case is basically part of the tablet and it has survived being dropped down the stairs twice. Not a scratch on the screen." },
        Hand { p: 27, f: "Stylus Support", s: Neg, r: 2, user: "inkwell",
            text: "As an illustrator I'm disappointed. Diagonal lines drawn slowly come out wobbly; the 'jitter' is obvious. Fine for notes, not for line art, which is exactly what they advertise it for." },
        Hand { p: 27, f: "Display Quality", s: Pos, r: 5, user: "Léa D.",
            text: "13 inches of beautiful screen. Colour accuracy is good enough that my prints match what I see, which I've never managed on a tablet before." },
        Hand { p: 28, f: "Refresh Rate", s: Neu, r: 3, user: "Jonas",
            text: "Refresh rate is 90Hz, which is nicer than 60, but you notice the difference from 120 if you're used to it. Fine." },
        Hand { p: 29, f: "Eye Comfort", s: Pos, r: 5, user: "bookworm_88",
            text: "I read for hours every night and the warm reading mode really helps. No tired eyes or headaches like with my old tablet. It's the main reason I bought a Tessera." },
        Hand { p: 29, f: "Battery Life", s: Pos, r: 4, user: "Amelia",
            text: "Battery life is excellent: about a week of note-taking in lectures before I need to charge." },
        Hand { p: 30, f: "Multitasking", s: Neg, r: 2, user: "Raj",
            text: "Split-screen is clunky. Apps randomly reload when I switch back, so I lose my place in documents. On paper this is a \"productivity tablet\"; in practice I keep going back to my laptop." },
        Hand { p: 31, f: "Expandable Storage", s: Pos, r: 5, user: "Omar H.",
            text: "Threw in a 256 GB card and loaded up all my downloads for the flight. Saved me 100 compared to buying the bigger model. Why don't all tablets have this?" },
        Hand { p: 31, f: "Price/Value", s: Neu, r: 3, user: "Noah",
            text: "You get what you pay for. It's 150, it works, the screen is okay, it's a bit slow. I'm neither happy nor unhappy." },
        Hand { p: 32, f: "Storage Capacity", s: Neg, r: 2, user: "Ava",
            text: "64 GB sounds fine until the system takes 20 of it. After a few games and some offline episodes I'm already getting \"storage almost full\" warnings." },
        Hand { p: 33, f: "Gaming Performance", s: Pos, r: 5, user: "gamerx",
            text: "Runs everything I play at high settings without dropping frames. Did a three-hour session and it only got slightly warm." },
        Hand { p: 33, f: "Gaming Performance", s: Neg, r: 2, user: "Lucas",
            text: "Plays fine for 15 minutes, then it gets hot and starts throttling. Frame rate goes from smooth to a slideshow. Not what I'd call a \"gaming tablet\"." },
        Hand { p: 34, f: "USB-C Port", s: Pos, r: 5, user: "Arjun",
            text: "The USB-C port drives my 4K monitor at work, and with a hub I've got keyboard, mouse and ethernet. Replaced my laptop completely." },
        Hand { p: 34, f: "Performance", s: Pos, r: 5, user: "Kim",
            text: "Absolute beast. 4K video editing, 40-layer illustrations, no lag anywhere." },
        Hand { p: 35, f: "Camera Quality", s: Neg, r: 2, user: "Fatima",
            text: "The front camera is on the short side, so in landscape everyone on my video calls sees me looking sideways. And the image is grainy even in a well-lit room." },
        Hand { p: 35, f: "Biometric Unlock", s: Neu, r: 3, user: "Søren",
            text: "The fingerprint sensor in the power button works, but it's slower than my phone's and fails when my hands are cold. Most days it's fine." },
        Hand { p: 36, f: "Screen Brightness", s: Neg, r: 2, user: "Grace",
            text: "Took it to the park to read and could barely see anything. Max brightness is just too low for outdoors. Indoors it's fine." },
        Hand { p: 37, f: "Battery Life", s: Neg, r: 2, user: "techdad",
            text: "The battery drains even when it's asleep: 100% at night, 70% in the morning, without touching it.\n\nEdit: support told me to factory reset it. Didn't help." },
        Hand { p: 38, f: "Weight", s: Neg, r: 2, user: "Emma",
            text: "The screen is enormous and gorgeous, but it weighs as much as a laptop. You can't hold it in one hand, and reading in bed is a workout." },
        Hand { p: 38, f: "Multitasking", s: Pos, r: 5, user: "researcher_mei",
            text: "Three apps side by side plus a floating window, and the big screen makes it genuinely useful. I do research with a browser, a PDF and my notes all visible at once." },
        Hand { p: 39, f: "Eye Comfort", s: Neu, r: 3, user: "Ingrid",
            text: "The reading mode is okay. It warms the screen and I guess it helps a bit late at night, but it's not a replacement for an e-reader." },
        Hand { p: 40, f: "Parental Controls", s: Neg, r: 1, user: "Daniel",
            text: "My nine-year-old figured out how to get around the screen time limit within a day (change the date in settings!). The parental controls are basically decorative." },
        Hand { p: 40, f: "Speakers", s: Neu, r: 3, user: "Olivia",
            text: "Speakers are okay for cartoons. Not very loud, no bass, but the kids don't care." },
        Hand { p: 24, f: "Display Quality", s: Neu, r: 3, user: "Marco",
            text: "Screen is good, not great. A bit cool/blue for my taste and there's some light bleed in one corner on dark scenes, but only if you go looking for it." },
        Hand { p: 36, f: "Portability", s: Pos, r: 5, user: "Lucía F.",
            text: "Perfect size for a handbag. I carry it everywhere — doctor's waiting rooms, the café, the train." },
        // Smartwatches
        Hand { p: 41, f: "GPS", s: Pos, r: 5, user: "marathon_maya",
            text: "GPS locks in seconds even downtown between tall buildings, and the track matches the road perfectly. My race distances match the official course within 50 m." },
        Hand { p: 41, f: "Heart Rate Accuracy", s: Neu, r: 3, user: "coach_dave",
            text: "Heart rate is good at a steady pace, but during intervals it lags 10-20 seconds behind my chest strap. For easy runs it's fine; for hard workouts, use a strap." },
        Hand { p: 42, f: "Workout Modes", s: Neg, r: 2, user: "liftheavy",
            text: "No proper strength training mode, no rep counting, and the 'HIIT' mode is just a timer. For a watch that costs 200, the workout selection is thin." },
        Hand { p: 43, f: "Battery Life", s: Pos, r: 5, user: "trailblazer7",
            text: "Three weeks on a charge with solar in summer. I went on a 6-day hike with GPS on several hours a day and came back with 40%. Incredible." },
        Hand { p: 43, f: "Build Quality", s: Pos, r: 5, user: "Björn",
            text: "Bashed it against rocks more times than I can count. The titanium bezel has a few marks but the glass is perfect. Tough as nails." },
        Hand { p: 44, f: "Contactless Payments", s: Pos, r: 5, user: "Léa",
            text: "Paying with my wrist is addictive. Works at every terminal I've tried, including the metro gates, and it's faster than getting my phone out." },
        Hand { p: 44, f: "Notifications", s: Neg, r: 2, user: "Hannah",
            text: "Notifications arrive late — sometimes five minutes after my phone. Half the time I've already read the message on the phone before the watch buzzes." },
        Hand { p: 45, f: "Cellular Connectivity", s: Pos, r: 5, user: "Maya C.",
            text: "LTE is the reason I bought this and it's great. I go running without my phone and still get calls, messages and streaming music. Activation with my carrier took two minutes." },
        Hand { p: 45, f: "Call Quality", s: Neu, r: 3, user: "James",
            text: "Calls from the watch work and people can hear me, but it sounds a bit thin and quiet on my end in the street. Fine for short calls; I wouldn't do a long one on it." },
        Hand { p: 46, f: "Price/Value", s: Pos, r: 4, user: "Zoë",
            text: "Gets you 90% of the Watch 5 for a lot less money. Unless you need the always-on screen, save the money." },
        Hand { p: 46, f: "Activity Tracking", s: Neu, r: 3, user: "Ethan R.",
            text: "Step count is within a few hundred of my phone's. Good enough to see trends; don't take the exact numbers too seriously." },
        Hand { p: 47, f: "Sleep Tracking", s: Neg, r: 2, user: "new_dad",
            text: "It reads 45 minutes of reading in bed as 'light sleep', and when I get up at night to feed the baby it thinks I slept through. The sleep score is meaningless for me." },
        Hand { p: 47, f: "Battery Life", s: Pos, r: 5, user: "Mei",
            text: "Twelve days on one charge! I keep forgetting where I put the charger." },
        Hand { p: 48, f: "Heart Rate Accuracy", s: Neg, r: 1, user: "spinclass_sue",
            text: "Showed 165 bpm while I was sitting at my desk, and then 90 during a hard spin class. The heart rate sensor is basically a random number generator." },
        Hand { p: 49, f: "Blood Oxygen Sensor", s: Neu, r: 3, user: "Ingrid J.",
            text: "SpO2 readings are in the same range as my finger oximeter, give or take two points. Interesting to look at, but I wouldn't make medical decisions on it." },
        Hand { p: 49, f: "Companion App", s: Neg, r: 2, user: "Arjun P.",
            text: "The app hides half of the useful stats behind a subscription and nags you to upgrade every time you open it. The watch is decent; the app ruins it." },
        Hand { p: 50, f: "Watch Faces", s: Pos, r: 4, user: "Sofia",
            text: "Love the watch faces. There are hundreds, lots of them free, and I have one for work and a cute one for weekends." },
        Hand { p: 50, f: "Software Updates", s: Neg, r: 2, user: "Thomas",
            text: "The last firmware update removed third-party apps I was using daily. No warning. Cadence's forum is full of angry people." },
        Hand { p: 51, f: "Always-On Display", s: Pos, r: 5, user: "Léa Dubois",
            text: "The always-on display looks like a real watch face, and it's still readable in sunlight. People don't even realise it's a smartwatch." },
        Hand { p: 51, f: "Strap Quality", s: Neg, r: 2, user: "Hugo M.",
            text: "The leather strap started cracking at the holes after six weeks. For a \"classic\" watch it should be better than that. Replaced it with a 15 € strap that's nicer." },
        Hand { p: 52, f: "Water Resistance", s: Neu, r: 3, user: "Pedro",
            text: "Wore it in the shower and the pool a few times, still working. Haven't really pushed it, but so far it does what the rating says." },
        Hand { p: 53, f: "Screen Brightness", s: Pos, r: 5, user: "alpinist",
            text: "Readable in full sun on a snowfield, even with sunglasses on. The brightness on this thing is fantastic." },
        Hand { p: 53, f: "GPS", s: Pos, r: 5, user: "Kenji",
            text: "Dual-band GPS is a game changer on mountain trails. Switchbacks show up exactly as on the map, no more shortcuts through cliffs." },
        Hand { p: 54, f: "Swim Tracking", s: Pos, r: 5, user: "Kenji Tanaka",
            text: "Lap counting is perfect in the pool — I checked it against my own counting for a month. Open-water tracks are clean too." },
        Hand { p: 55, f: "Cellular Connectivity", s: Neg, r: 2, user: "Daniel Okafor",
            text: "Bought it so my son can call me after school.\nIt loses signal inside his school building, and the eSIM activation took three calls to the carrier. With LTE on, the battery is dead by 3pm too." },
        Hand { p: 56, f: "Heart Rate Accuracy", s: Pos, r: 5, user: "Elena",
            text: "Compared it with the ECG at my cardiologist's: readings matched within 1-2 bpm. Very reassuring for someone with an arrhythmia." },
        Hand { p: 57, f: "Comfort", s: Pos, r: 5, user: "Nora B.",
            text: "So comfortable I forget I'm wearing it, even at night. It's small, light, and the curved back doesn't dig into my wrist." },
        Hand { p: 58, f: "Notifications", s: Neu, r: 3, user: "Thomas K.",
            text: "It's a hybrid, so notifications are just a vibration and a little hand pointing at an icon. It works, but don't expect to read messages." },
        Hand { p: 59, f: "Swim Tracking", s: Neg, r: 2, user: "lanes_and_laps",
            text: "Miscounts laps all the time in a 25 m pool. If I do a flip turn it often misses it. Breaststroke gets recorded as 'unknown'." },
        Hand { p: 60, f: "Performance", s: Neu, r: 3, user: "Jonas W.",
            text: "Scrolling through the menus is a bit laggy and maps take a few seconds to render. Not terrible, but at this price I expected it to be snappier." },
        Hand { p: 41, f: "Battery Life", s: Neg, r: 2, user: "ultra_ollie",
            text: "With GPS on it lasts about 12 hours, not the 20 in the brochure. That's a problem for ultra races." },
    ];
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let p =
                std::env::temp_dir().join(format!("datagen-test-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn opts(dir: &Path, seed: u64) -> GenerateOptions {
        GenerateOptions {
            out_dir: dir.to_path_buf(),
            products: 30,
            reviews: 2_000,
            users: 12,
            seed,
            labelled_share: 0.3,
        }
    }

    struct Table {
        headers: Vec<String>,
        rows: Vec<csv::StringRecord>,
    }

    impl Table {
        fn col(&self, name: &str) -> usize {
            self.headers
                .iter()
                .position(|h| h == name)
                .unwrap_or_else(|| panic!("no column {name}"))
        }
        fn ids(&self, name: &str) -> HashSet<u64> {
            let c = self.col(name);
            self.rows
                .iter()
                .map(|r| r[c].parse::<u64>().unwrap())
                .collect()
        }
    }

    fn read(path: &Path) -> Table {
        let mut r =
            csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let headers = r.headers().unwrap().iter().map(String::from).collect();
        let rows = r
            .records()
            .map(|x| x.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .collect();
        Table { headers, rows }
    }

    fn all_files() -> Vec<(&'static str, Vec<&'static str>)> {
        let mut v: Vec<(&str, Vec<&str>)> = FILES.iter().map(|(f, h)| (*f, h.to_vec())).collect();
        v.push(("review_labels.csv", LABELS_HEADER.to_vec()));
        v
    }

    #[test]
    fn same_seed_gives_identical_bytes_and_other_seed_differs() {
        let (a, b, c) = (
            TempDir::new("det-a"),
            TempDir::new("det-b"),
            TempDir::new("det-c"),
        );
        generate(&opts(&a.0, 7)).unwrap();
        generate(&opts(&b.0, 7)).unwrap();
        generate(&opts(&c.0, 8)).unwrap();
        for (f, _) in all_files() {
            let x = fs::read(a.0.join(f)).unwrap();
            assert_eq!(
                x,
                fs::read(b.0.join(f)).unwrap(),
                "{f} differs for the same seed"
            );
            if f == "product_reviews.csv" || f == "products.csv" {
                assert_ne!(
                    x,
                    fs::read(c.0.join(f)).unwrap(),
                    "{f} identical for different seeds"
                );
            }
        }
    }

    #[test]
    fn more_reviews_do_not_change_products() {
        let (a, b) = (TempDir::new("stream-a"), TempDir::new("stream-b"));
        generate(&opts(&a.0, 3)).unwrap();
        generate(&GenerateOptions {
            reviews: 50,
            ..opts(&b.0, 3)
        })
        .unwrap();
        for f in [
            "products.csv",
            "users.csv",
            "product_features.csv",
            "variants.csv",
        ] {
            assert_eq!(
                fs::read(a.0.join(f)).unwrap(),
                fs::read(b.0.join(f)).unwrap(),
                "{f}"
            );
        }
    }

    #[test]
    fn row_counts_and_summary() {
        let d = TempDir::new("counts");
        let s = generate(&opts(&d.0, 1)).unwrap();
        assert_eq!(s.rows("products.csv"), Some(30));
        assert_eq!(s.rows("users.csv"), Some(12));
        assert_eq!(s.rows("features.csv"), Some(FEATURES.len() as u64));
        assert_eq!(s.rows("product_reviews.csv"), Some(2_000));
        assert_eq!(s.rows("review_labels.csv"), Some(2_000));
        let pf = s.rows("product_features.csv").unwrap();
        assert!(
            (30 * 5..=30 * 10).contains(&pf),
            "{pf} product_features rows"
        );
        for f in &s.files {
            let t = read(&d.0.join(&f.file));
            assert_eq!(t.rows.len() as u64, f.rows, "{}", f.file);
            assert_eq!(fs::metadata(d.0.join(&f.file)).unwrap().len(), f.bytes);
        }
        assert!(s.to_string().contains("product_reviews.csv"));
    }

    #[test]
    fn every_file_parses_with_exact_headers() {
        let d = TempDir::new("headers");
        generate(&opts(&d.0, 2)).unwrap();
        for (f, h) in all_files() {
            let t = read(&d.0.join(f));
            assert_eq!(t.headers, h, "{f}");
            assert!(!t.rows.is_empty(), "{f} is empty");
            for r in &t.rows {
                assert_eq!(r.len(), h.len(), "{f}");
            }
        }
        // product_reviews.csv quotes every field, header included; others only when needed.
        let raw = fs::read_to_string(d.0.join("product_reviews.csv")).unwrap();
        assert!(raw.starts_with("\"id\",\"product_id\",\"user_name\",\"review\",\"rating\",\"feature_id\",\"sentiment\"\n"));
        let raw = fs::read_to_string(d.0.join("products.csv")).unwrap();
        assert!(raw.starts_with("id,name,category,price,brand,description,specifications\n"));
    }

    #[test]
    fn field_formats() {
        let d = TempDir::new("formats");
        generate(&opts(&d.0, 4)).unwrap();
        let p = read(&d.0.join("products.csv"));
        let mut cats = HashSet::new();
        for r in &p.rows {
            cats.insert(r[p.col("category")].to_string());
            let price = &r[p.col("price")];
            let (a, b) = price.split_once('.').expect("price has cents");
            assert!(
                a.parse::<u32>().is_ok() && b.len() == 2 && b.parse::<u32>().is_ok(),
                "{price}"
            );
            let desc = &r[p.col("description")];
            assert!(
                desc.starts_with("<h3>")
                    && desc.contains("<p>")
                    && desc.contains("<ul>")
                    && desc.contains("<li>")
            );
            let spec: serde_json::Value =
                serde_json::from_str(&r[p.col("specifications")]).unwrap();
            let obj = spec.as_object().expect("specifications is an object");
            assert!(!obj.is_empty() && obj.values().all(|v| v.is_string()));
        }
        assert_eq!(
            cats,
            ["Headphones", "Tablets", "Smartwatches"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );

        let u = read(&d.0.join("users.csv"));
        for r in &u.rows {
            for c in ["hobbies", "lifestyle_preferences", "preferences"] {
                let v: Vec<String> = serde_json::from_str(&r[u.col(c)]).unwrap();
                assert!(!v.is_empty(), "{c}");
            }
            let loc = &r[u.col("location")];
            assert!(loc.starts_with('(') && loc.ends_with(')'), "{loc}");
            let nums: Vec<f64> = loc[1..loc.len() - 1]
                .split(", ")
                .map(|x| x.parse().unwrap())
                .collect();
            assert_eq!(nums.len(), 2);
            r[u.col("age")].parse::<u32>().unwrap();
        }

        let rv = read(&d.0.join("product_reviews.csv"));
        let (mut plain, mut decimal) = (0, 0);
        for r in &rv.rows {
            match &r[rv.col("rating")] {
                "1" | "2" | "3" | "4" | "5" => plain += 1,
                "1.00" | "2.00" | "3.00" | "4.00" | "5.00" => decimal += 1,
                other => panic!("rating {other:?}"),
            }
        }
        assert!(plain > 0 && decimal > 0);

        let img = read(&d.0.join("product_images.csv"));
        for r in &img.rows {
            let want = format!("data/images/{}-image-", &r[img.col("product_id")]);
            let url = &r[img.col("image_url")];
            assert!(url.starts_with(&want) && url.ends_with(".png"), "{url}");
        }
        let v = read(&d.0.join("variants.csv"));
        for r in &v.rows {
            r[v.col("in_stock")].parse::<u32>().unwrap();
            assert!(r[v.col("price")].contains('.'));
        }
    }

    #[test]
    fn categories_use_python_literal_lists() {
        let d = TempDir::new("pylist");
        generate(&opts(&d.0, 5)).unwrap();
        let t = read(&d.0.join("features.csv"));
        let names = ["Headphones", "Tablets", "Smartwatches"];
        let mut multi = 0;
        for r in &t.rows {
            let v = &r[t.col("categories")];
            assert!(v.starts_with("['") && v.ends_with("']"), "{v}");
            let parts: Vec<&str> = v[1..v.len() - 1].split(", ").collect();
            for part in &parts {
                assert!(part.starts_with('\'') && part.ends_with('\''), "{v}");
                assert!(names.contains(&&part[1..part.len() - 1]), "{v}");
            }
            if parts.len() > 1 {
                multi += 1;
            }
        }
        assert!(multi >= 10, "only {multi} shared features");
        let raw = fs::read_to_string(d.0.join("features.csv")).unwrap();
        assert!(raw.contains("1,Battery Life,\"['Headphones', 'Tablets', 'Smartwatches']\"\n"));
        assert!(raw.contains(",Noise Cancellation,['Headphones']\n"));
    }

    #[test]
    fn referential_integrity() {
        let d = TempDir::new("fk");
        generate(&opts(&d.0, 6)).unwrap();
        let p = read(&d.0.join("products.csv"));
        let f = read(&d.0.join("features.csv"));
        let pf = read(&d.0.join("product_features.csv"));
        let rv = read(&d.0.join("product_reviews.csv"));
        let img = read(&d.0.join("product_images.csv"));
        let v = read(&d.0.join("variants.csv"));
        let va = read(&d.0.join("variant_attributes.csv"));
        let lb = read(&d.0.join("review_labels.csv"));
        let pids = p.ids("id");
        let fids = f.ids("id");
        for (t, name) in [
            (&p, "products"),
            (&f, "features"),
            (&pf, "pf"),
            (&rv, "product_reviews"),
            (&img, "image"),
            (&v, "variants"),
            (&va, "va"),
        ] {
            assert_eq!(t.ids("id").len(), t.rows.len(), "duplicate ids in {name}");
        }
        // Feature names are unique (the column is UNIQUE).
        let fnames: HashSet<&str> = f.rows.iter().map(|r| &r[1]).collect();
        assert_eq!(fnames.len(), f.rows.len());
        let fname_by_id: HashMap<u64, String> = f
            .rows
            .iter()
            .map(|r| (r[0].parse().unwrap(), r[1].to_string()))
            .collect();
        let cat_by_pid: HashMap<u64, String> = p
            .rows
            .iter()
            .map(|r| (r[0].parse().unwrap(), r[2].to_string()))
            .collect();
        let mut links: HashSet<(u64, u64)> = HashSet::new();
        for r in &pf.rows {
            let (pid, fid) = (r[1].parse::<u64>().unwrap(), r[2].parse::<u64>().unwrap());
            assert!(pids.contains(&pid) && fids.contains(&fid));
            assert!(links.insert((pid, fid)), "duplicate product/feature pair");
            // The feature belongs to the product's category.
            let cats = &f
                .rows
                .iter()
                .find(|x| x[0].parse::<u64>().unwrap() == fid)
                .unwrap()[2];
            assert!(cats.contains(&format!("'{}'", cat_by_pid[&pid])));
        }
        let mut per_product: HashMap<u64, usize> = HashMap::new();
        for (pid, _) in &links {
            *per_product.entry(*pid).or_default() += 1;
        }
        assert_eq!(per_product.len(), pids.len());
        assert!(per_product.values().all(|n| (5..=10).contains(n)));

        let labels: HashMap<u64, (u64, String, String)> = lb
            .rows
            .iter()
            .map(|r| {
                (
                    r[0].parse().unwrap(),
                    (r[1].parse().unwrap(), r[2].to_string(), r[3].to_string()),
                )
            })
            .collect();
        for r in &rv.rows {
            let id: u64 = r[0].parse().unwrap();
            let pid: u64 = r[1].parse().unwrap();
            assert!(pids.contains(&pid));
            let (lfid, lname, ls) = &labels[&id];
            assert!(
                links.contains(&(pid, *lfid)),
                "review {id} is about a feature its product lacks"
            );
            assert_eq!(&fname_by_id[lfid], lname);
            assert!(["positive", "negative", "neutral"].contains(&ls.as_str()));
        }
        for r in &img.rows {
            assert!(pids.contains(&r[1].parse().unwrap()));
        }
        let variant_product: HashMap<u64, u64> = v
            .rows
            .iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
            .collect();
        assert!(variant_product.values().all(|p| pids.contains(p)));
        for r in &va.rows {
            let (pid, vid) = (r[1].parse::<u64>().unwrap(), r[2].parse::<u64>().unwrap());
            assert_eq!(variant_product[&vid], pid);
            assert!(!r[3].is_empty() && !r[4].is_empty());
        }
    }

    #[test]
    fn labelled_columns_match_ground_truth_and_share() {
        let d = TempDir::new("labels");
        generate(&opts(&d.0, 9)).unwrap();
        let rv = read(&d.0.join("product_reviews.csv"));
        let lb = read(&d.0.join("review_labels.csv"));
        assert_eq!(rv.rows.len(), lb.rows.len());
        let mut labelled = 0;
        for (r, l) in rv.rows.iter().zip(&lb.rows) {
            assert_eq!(&r[0], &l[0]);
            match (&r[5], &r[6]) {
                ("", "") => {}
                (fid, s) => {
                    labelled += 1;
                    assert_eq!(fid, &l[1]);
                    assert_eq!(s, &l[3]);
                }
            }
        }
        let share = labelled as f64 / rv.rows.len() as f64;
        assert!((0.25..0.35).contains(&share), "labelled share {share}");

        let none = TempDir::new("labels-none");
        generate(&GenerateOptions {
            labelled_share: 0.0,
            ..opts(&none.0, 9)
        })
        .unwrap();
        let rv = read(&none.0.join("product_reviews.csv"));
        assert!(rv.rows.iter().all(|r| r[5].is_empty() && r[6].is_empty()));
    }

    #[test]
    fn ratings_follow_sentiment() {
        let d = TempDir::new("ratings");
        generate(&opts(&d.0, 10)).unwrap();
        let rv = read(&d.0.join("product_reviews.csv"));
        let lb = read(&d.0.join("review_labels.csv"));
        let mut sum: HashMap<String, (f64, usize)> = HashMap::new();
        for (r, l) in rv.rows.iter().zip(&lb.rows) {
            let e = sum.entry(l[3].to_string()).or_default();
            e.0 += r[4].parse::<f64>().unwrap();
            e.1 += 1;
        }
        let avg = |s: &str| sum[s].0 / sum[s].1 as f64;
        assert!(avg("positive") > 4.2 && avg("negative") < 2.0, "{sum:?}");
        assert!(avg("neutral") > 2.6 && avg("neutral") < 3.4, "{sum:?}");
        for s in ["positive", "negative", "neutral"] {
            assert!(sum[s].1 > 200, "{s}: {}", sum[s].1);
        }
    }

    #[test]
    fn reviews_are_varied_and_contain_the_quirks() {
        let d = TempDir::new("variety");
        generate(&opts(&d.0, 11)).unwrap();
        let rv = read(&d.0.join("product_reviews.csv"));
        let texts: Vec<&str> = rv.rows.iter().map(|r| &r[3]).collect();
        let distinct: HashSet<&&str> = texts.iter().collect();
        assert!(
            distinct.len() as f64 > 0.97 * texts.len() as f64,
            "{} distinct of {}",
            distinct.len(),
            texts.len()
        );
        let firsts: HashSet<&str> = texts
            .iter()
            .map(|t| t.split(['.', '!', '?']).next().unwrap())
            .collect();
        assert!(
            firsts.len() > 800,
            "only {} distinct first sentences",
            firsts.len()
        );
        let count = |pred: &dyn Fn(&str) -> bool| texts.iter().filter(|t| pred(t)).count();
        assert!(count(&|t| t.contains('\n')) >= 20);
        assert!(count(&|t| t.contains('"')) >= 20);
        assert!(count(&|t| t.contains('\'')) >= 200);
        assert!(count(&|t| t.contains(',')) >= 500);
        assert!(count(&|t| !t.is_ascii()) >= 50);
        assert!(texts
            .iter()
            .all(|t| !t.contains('{') && !t.contains('}') && !t.contains("  ")));
        // Some reviews talk about two features.
        let names = rv
            .rows
            .iter()
            .map(|r| r[2].to_string())
            .collect::<HashSet<_>>();
        assert!(names.len() > 300, "only {} reviewer names", names.len());
    }

    #[test]
    fn tricky_review_round_trips() {
        let d = TempDir::new("tricky");
        fs::create_dir_all(&d.0).unwrap();
        let text = "Great, really \"great\" sound — it's the café's favourite.\n\nSecond paragraph, naïve 'quotes', 129 €.";
        let label = ReviewLabel {
            feature: 0,
            sentiment: Sentiment::Neutral,
            rating: 3,
        };
        {
            let mut w = Writers::create(&d.0).unwrap();
            w.write_review(1, 1, "O'Brien, Liam", text, "3.00", Some(&label))
                .unwrap();
            w.write_review(2, 1, "Zoë", "plain", "5", None).unwrap();
            w.finish().unwrap();
        }
        let raw = fs::read_to_string(d.0.join("product_reviews.csv")).unwrap();
        assert!(raw.contains("\"Great, really \"\"great\"\" sound"));
        assert!(raw.contains("\"2\",\"1\",\"Zoë\",\"plain\",\"5\",\"\",\"\"\n"));
        let t = read(&d.0.join("product_reviews.csv"));
        assert_eq!(&t.rows[0][2], "O'Brien, Liam");
        assert_eq!(&t.rows[0][3], text);
        assert_eq!(&t.rows[0][4], "3.00");
        assert_eq!(&t.rows[0][5], "1");
        assert_eq!(&t.rows[0][6], "neutral");
        assert_eq!(&t.rows[1][5], "");
    }

    #[test]
    fn every_phrase_expands_for_every_kind() {
        let banks: &[&[&str]] = &[
            MAIN_POS,
            MAIN_NEG,
            MAIN_NEU,
            HEDGES,
            ELAB_POS,
            ELAB_NEG,
            ELAB_NEU,
            SECOND_POS_POS,
            SECOND_POS_NEG,
            SECOND_NEG_POS,
            SECOND_NEG_NEG,
            SECOND_NEU_NEU,
            QUOTES_POS,
            QUOTES_NEG,
            QUOTES_NEU,
            ASIDES_POS,
            ASIDES_NEG,
            ASIDES_NEU,
            CLOSERS_POS,
            CLOSERS_NEG,
            CLOSERS_NEU,
            EDITS_POS,
            EDITS_NEG,
            EDITS_NEU,
            OPENERS,
            OPENERS_POS,
            OPENERS_NEG,
            USE_HEADPHONES,
            USE_TABLETS,
            USE_WATCHES,
        ];
        let mut rng = Rng::derive(0, "phrases");
        for kind in [
            Kind::OverEar,
            Kind::OnEar,
            Kind::Earbuds,
            Kind::Tablet,
            Kind::Watch,
        ] {
            for f in FEATURES.iter().filter(|f| f.applies_to(kind)) {
                for s in [Sentiment::Positive, Sentiment::Negative, Sentiment::Neutral] {
                    for v in f.preds(s) {
                        let c = Ctx {
                            pn: kind.noun(),
                            brand: "Brand",
                            n: f.nouns[0],
                            v,
                            adj: "fine",
                            n2: "x",
                            v2: v,
                            adj2: "ok",
                        };
                        for bank in banks {
                            for tpl in *bank {
                                let mut out = String::new();
                                expand(&mut out, tpl, &c, &mut rng);
                                assert!(!out.contains('{') && !out.contains('}'), "{out}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn feature_catalogue_is_sane() {
        assert_eq!(FEATURES.len(), 60);
        let names: HashSet<&str> = FEATURES.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), FEATURES.len());
        for f in FEATURES {
            assert!(
                f.cats != 0
                    && !f.nouns.is_empty()
                    && f.pos.len() >= 3
                    && f.neg.len() >= 3
                    && f.neu.len() >= 3,
                "{}",
                f.name
            );
            for p in f.pos.iter().chain(f.neg).chain(f.neu) {
                assert!(
                    !p.ends_with('.') && p.chars().next().unwrap().is_lowercase(),
                    "{}: {p}",
                    f.name
                );
            }
        }
        for kind in [
            Kind::OverEar,
            Kind::OnEar,
            Kind::Earbuds,
            Kind::Tablet,
            Kind::Watch,
        ] {
            assert!(features_for(kind).len() >= 20, "{kind:?}");
        }
        let shared = FEATURES.iter().filter(|f| f.cats.count_ones() > 1).count();
        let all3 = FEATURES.iter().filter(|f| f.cats.count_ones() == 3).count();
        assert!(
            shared >= 15 && all3 >= 5,
            "{shared} shared, {all3} in all three"
        );
    }

    #[test]
    fn rejects_bad_options() {
        let d = TempDir::new("bad");
        assert!(generate(&GenerateOptions {
            labelled_share: 1.5,
            ..opts(&d.0, 1)
        })
        .is_err());
        assert!(generate(&GenerateOptions {
            products: 0,
            ..opts(&d.0, 1)
        })
        .is_err());
        let s = generate(&GenerateOptions {
            products: 0,
            reviews: 0,
            users: 0,
            ..opts(&d.0, 1)
        })
        .unwrap();
        assert_eq!(s.rows("product_reviews.csv"), Some(0));
        assert_eq!(s.rows("features.csv"), Some(60));
    }

    #[test]
    fn hand_written_reviews_are_consistent() {
        for h in sample::HAND {
            let c = &sample::CATALOGUE[h.p - 1];
            let f = &FEATURES[feature_index(h.f)];
            assert!(f.applies_to(c.kind), "{} does not apply to {}", h.f, c.name);
            let ok = match h.s {
                Sentiment::Positive => h.r >= 4,
                Sentiment::Negative => h.r <= 2,
                Sentiment::Neutral => h.r == 3,
            };
            assert!(ok, "rating {} for {:?}: {}", h.r, h.s, h.text);
        }
        for c in sample::CATALOGUE {
            for m in c.must {
                assert!(
                    FEATURES[feature_index(m)].applies_to(c.kind),
                    "{m} / {}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn sample_dataset_shape() {
        let d = TempDir::new("sample");
        let s = write_sample_dataset(&d.0).unwrap();
        assert_eq!(s.rows("products.csv"), Some(60));
        assert_eq!(s.rows("features.csv"), Some(60));
        assert_eq!(s.rows("users.csv"), Some(8));
        assert_eq!(
            s.rows("product_reviews.csv"),
            Some(sample::SAMPLE_REVIEWS as u64)
        );
        assert_eq!(
            s.rows("eval/review_labels_handwritten.csv"),
            Some(sample::HAND.len() as u64)
        );
        assert!(s.rows("eval/review_labels.csv").unwrap() >= 200);
        assert!(s.total_bytes() < 2_000_000, "{} bytes", s.total_bytes());

        let p = read(&d.0.join("products.csv"));
        let mut per_cat: HashMap<String, usize> = HashMap::new();
        for r in &p.rows {
            *per_cat.entry(r[2].to_string()).or_default() += 1;
        }
        assert!(per_cat.values().all(|n| *n == 20), "{per_cat:?}");

        let pf = read(&d.0.join("product_features.csv"));
        let links: HashSet<(u64, u64)> = pf
            .rows
            .iter()
            .map(|r| (r[1].parse().unwrap(), r[2].parse().unwrap()))
            .collect();
        let rv = read(&d.0.join("product_reviews.csv"));
        let labelled = rv.rows.iter().filter(|r| !r[5].is_empty()).count();
        let share = labelled as f64 / rv.rows.len() as f64;
        assert!((0.25..0.35).contains(&share), "{share}");
        let by_id: HashMap<u64, &csv::StringRecord> =
            rv.rows.iter().map(|r| (r[0].parse().unwrap(), r)).collect();

        // Eval labels: exactly the reviews without feature_id, and consistent.
        let ev = read(&d.0.join("eval/review_labels.csv"));
        assert_eq!(ev.rows.len(), rv.rows.len() - labelled);
        for r in &ev.rows {
            let rev = by_id[&r[0].parse::<u64>().unwrap()];
            assert!(rev[5].is_empty());
            assert!(links.contains(&(rev[1].parse().unwrap(), r[1].parse().unwrap())));
        }
        let hw = read(&d.0.join("eval/review_labels_handwritten.csv"));
        let texts: HashSet<&str> = sample::HAND.iter().map(|h| h.text).collect();
        for r in &hw.rows {
            assert!(texts.contains(&by_id[&r[0].parse::<u64>().unwrap()][3]));
        }
        let raw = fs::read_to_string(d.0.join("product_reviews.csv")).unwrap();
        assert!(raw.starts_with("\"id\",\"product_id\""));
    }

    /// `data/` in the repository is exactly what `write_sample_dataset` writes.
    #[test]
    fn shipped_sample_data_is_up_to_date() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
        if !shipped.join("product_reviews.csv").exists() {
            eprintln!("no shipped data at {}; skipped", shipped.display());
            return;
        }
        let d = TempDir::new("shipped");
        let s = write_sample_dataset(&d.0).unwrap();
        for f in &s.files {
            let a = fs::read(d.0.join(&f.file)).unwrap();
            let b = fs::read(shipped.join(&f.file)).unwrap_or_default();
            assert!(
                a == b,
                "data/{} differs from write_sample_dataset(); regenerate it",
                f.file
            );
        }
    }
}
