//! Data folders for tests: copies of the sample data set to edit, and small
//! hand-made ones.

use crate::env::repo_root;
use std::path::{Path, PathBuf};

/// The CSV files of the sample data set (`data/`), without `eval/`.
pub const SAMPLE_FILES: [&str; 8] = [
    "users.csv",
    "products.csv",
    "features.csv",
    "product_features.csv",
    "product_reviews.csv",
    "product_images.csv",
    "variants.csv",
    "variant_attributes.csv",
];

/// A fresh, empty temporary folder named after `name`.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "agenticshop-test-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("create a temporary folder");
    dir
}

/// A copy of the sample data set in a fresh temporary folder.
pub fn copy_sample(name: &str) -> PathBuf {
    let dir = scratch_dir(name);
    for file in SAMPLE_FILES {
        std::fs::copy(repo_root().join("data").join(file), dir.join(file))
            .unwrap_or_else(|e| panic!("copy data/{file}: {e}"));
    }
    dir
}

/// Rewrites one file of a data folder.
pub fn edit(dir: &Path, file: &str, change: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    let path = dir.join(file);
    let content = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::write(&path, change(content)).unwrap();
}

/// `content` with the first `from` replaced by `to` (panics if absent).
pub fn replace_first(content: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = content
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(from)));
    let mut out = content[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&content[at + from.len()..]);
    out
}

/// The header and records of a CSV file of `dir`, for a test that rewrites it.
pub fn read_csv(dir: &Path, file: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(dir.join(file)).expect("open the CSV file");
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let records = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, records)
}

/// Writes a CSV file of `header` and `records` (quoted as needed) into `dir`.
pub fn write_csv(dir: &Path, file: &str, header: &[&str], records: &[Vec<String>]) {
    let mut writer = csv::Writer::from_path(dir.join(file)).expect("create the CSV file");
    writer.write_record(header).unwrap();
    for record in records {
        writer.write_record(record).unwrap();
    }
    writer.flush().unwrap();
}
