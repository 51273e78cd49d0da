//! Unit tests of the generator: determinism, formats, integrity, the banks.

use super::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("datagen-test-{tag}-{}-{n}", std::process::id()));
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
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
    assert!(raw.starts_with(
        "\"id\",\"product_id\",\"user_name\",\"review\",\"rating\",\"feature_id\",\"sentiment\"\n"
    ));
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
        let spec: serde_json::Value = serde_json::from_str(&r[p.col("specifications")]).unwrap();
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
    let banks: &[&List] = &[
        &MAIN_POS,
        &MORE_POS,
        &MORE_NEG,
        &MORE_NEU,
        &MAIN_NEG,
        &MAIN_NEU,
        &HEDGES,
        &ELAB_POS,
        &ELAB_NEG,
        &ELAB_NEU,
        &SECOND_POS_POS,
        &SECOND_POS_NEG,
        &SECOND_NEG_POS,
        &SECOND_NEG_NEG,
        &SECOND_NEU_NEU,
        &QUOTES_POS,
        &QUOTES_NEG,
        &QUOTES_NEU,
        &ASIDES_POS,
        &ASIDES_NEG,
        &ASIDES_NEU,
        &CLOSERS_POS,
        &CLOSERS_NEG,
        &CLOSERS_NEU,
        &EDITS_POS,
        &EDITS_NEG,
        &EDITS_NEU,
        &OPENERS,
        &OPENERS_POS,
        &OPENERS_NEG,
        &USE_HEADPHONES,
        &USE_TABLETS,
        &USE_WATCHES,
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
                        n: &f.nouns[0],
                        v,
                        adj: "fine",
                        n2: "x",
                        v2: v,
                        adj2: "ok",
                    };
                    for bank in banks {
                        for tpl in bank.iter() {
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
    let names: HashSet<&str> = FEATURES.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names.len(), FEATURES.len());
    for f in FEATURES.iter() {
        assert!(
            f.cats != 0
                && !f.nouns.is_empty()
                && f.pos.len() >= 3
                && f.neg.len() >= 3
                && f.neu.len() >= 3,
            "{}",
            f.name
        );
        for p in f.pos.iter().chain(&f.neg).chain(&f.neu) {
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
fn every_bank_parses() {
    banks::check().unwrap();
    // Parsing also checked what a person could get wrong in the sample
    // banks: every feature named applies to its product, every rating fits
    // its sentiment.
    assert_eq!(CATALOGUE.len(), 60);
    assert_eq!(USERS.len(), 8);
    assert_eq!(HAND.len(), 101);
    assert_eq!(CITIES.len(), 16);
}

#[test]
fn a_bad_bank_is_refused_with_its_file_and_position() {
    let e =
        banks::parse_list("banks/x.txt", "# a comment\nfine\nends with a space \n").unwrap_err();
    assert!(e.starts_with("banks/x.txt:3:18:"), "{e}");
    assert!(banks::parse_list("banks/x.txt", "# only a comment\n").is_err());

    let e = banks::parse_features(
        "banks/f.toml",
        "[[feature]]\nname = \"X\"\ncategories = [\"Headphones\"]\nblurb = 3\n",
    )
    .unwrap_err();
    assert!(
        e.starts_with("banks/f.toml: ") && e.contains("line 4"),
        "{e}"
    );
    let e = banks::parse_features(
        "banks/f.toml",
        "[[feature]]\nname = \"X\"\ncategories = [\"Laptops\"]\nblurb = \"b\"\nnouns = [\"n\"]\npositive = [\"p\"]\nnegative = [\"n\"]\nneutral = [\"u\"]\n",
    )
    .unwrap_err();
    assert!(e.contains("Laptops") && e.contains("line 3"), "{e}");

    let review = |feature: &str, rating: u8| {
        format!("[[review]]\nproduct = 1\nfeature = \"{feature}\"\nsentiment = \"positive\"\nrating = {rating}\nuser_name = \"A\"\ntext = \"t\"\n")
    };
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    assert_eq!(
        banks::parse_hand("banks/r.toml", leak(review("Noise Cancellation", 5))).map(|h| h.len()),
        Ok(1)
    );
    let e = banks::parse_hand("banks/r.toml", leak(review("Noise Cancellation", 2))).unwrap_err();
    assert_eq!(
        e,
        "banks/r.toml: review 1 (by \"A\"): rating 2 does not fit a positive review"
    );
    let e = banks::parse_hand("banks/r.toml", leak(review("Teleportation", 5))).unwrap_err();
    assert!(
        e.contains("review 1") && e.contains("no feature \"Teleportation\""),
        "{e}"
    );
    // Product 1 is headphones: no screen.
    let e = banks::parse_hand("banks/r.toml", leak(review("Screen Brightness", 5))).unwrap_err();
    assert!(e.contains("does not apply to"), "{e}");
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
        Some(HAND.len() as u64)
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
    let texts: HashSet<&str> = HAND.iter().map(|h| h.text.as_str()).collect();
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
