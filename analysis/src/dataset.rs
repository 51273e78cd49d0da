//! Reading reviews, their products' features and evaluation labels from a
//! data directory in the format `data/README.md` describes.
//!
//! Both spellings of the review file are read: `product_reviews.csv` with a
//! `review` column (the current layout) and `review.csv` with `review_text`
//! (the original's). Product features come from `product_features.csv`
//! (`product_id`, `feature_id`) and their names from `features.csv`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::{AnalysisError, Feature, Review, Sentiment};

/// A review's evaluation label: its main feature (none when it speaks of
/// none of its product's features) and the sentiment about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub review_id: i64,
    pub feature_id: Option<i64>,
    pub sentiment: Option<Sentiment>,
}

/// The reviews of a data directory, each with its product's features as candidates.
pub fn load_reviews(data_dir: &Path) -> Result<Vec<Review>, AnalysisError> {
    let names = load_feature_names(&data_dir.join("features.csv"))?;
    let product_features = load_product_features(&data_dir.join("product_features.csv"), &names)?;
    let path = ["product_reviews.csv", "review.csv"]
        .iter()
        .map(|f| data_dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| AnalysisError::Data {
            place: data_dir.display().to_string(),
            message: "holds neither product_reviews.csv nor review.csv".into(),
        })?;
    let mut table = Table::open(&path)?;
    let id = table.column(&["id"])?;
    let product = table.column(&["product_id"])?;
    let text = table.column(&["review", "review_text"])?;
    let rating = table.column(&["rating"])?;
    let known = table.column(&["feature_id"]).ok();
    let mut reviews = Vec::new();
    while let Some(row) = table.next_row()? {
        let product_id: i64 = row.parse(product)?;
        let stars = row.get(rating).trim();
        reviews.push(Review {
            id: row.parse(id)?,
            text: row.get(text).to_string(),
            rating: if stars.is_empty() {
                None
            } else {
                Some(row.parse(rating)?)
            },
            features: product_features
                .get(&product_id)
                .cloned()
                .unwrap_or_default(),
            known_feature: match known {
                Some(k) if !row.get(k).trim().is_empty() => Some(row.parse(k)?),
                _ => None,
            },
        });
    }
    Ok(reviews)
}

/// Labels in the format of `data/eval/review_labels.csv`:
/// `review_id,feature_id,feature_name,sentiment`, feature and sentiment
/// empty for a review that speaks of none of its product's features.
pub fn load_labels(path: &Path) -> Result<Vec<Label>, AnalysisError> {
    let mut table = Table::open(path)?;
    let review = table.column(&["review_id"])?;
    let feature = table.column(&["feature_id"])?;
    let sentiment = table.column(&["sentiment"])?;
    let mut labels = Vec::new();
    while let Some(row) = table.next_row()? {
        let feature_id = if row.get(feature).trim().is_empty() {
            None
        } else {
            Some(row.parse(feature)?)
        };
        let sentiment = match row.get(sentiment).trim() {
            "" => None,
            s => Some(s.parse().map_err(|e: String| row.error(sentiment, e))?),
        };
        labels.push(Label {
            review_id: row.parse(review)?,
            feature_id,
            sentiment,
        });
    }
    Ok(labels)
}

fn load_feature_names(path: &Path) -> Result<HashMap<i64, String>, AnalysisError> {
    let mut table = Table::open(path)?;
    let id = table.column(&["id"])?;
    let name = table.column(&["feature_name", "name"])?;
    let mut names = HashMap::new();
    while let Some(row) = table.next_row()? {
        names.insert(row.parse(id)?, row.get(name).to_string());
    }
    Ok(names)
}

fn load_product_features(
    path: &Path,
    names: &HashMap<i64, String>,
) -> Result<HashMap<i64, Vec<Feature>>, AnalysisError> {
    let mut table = Table::open(path)?;
    let product = table.column(&["product_id"])?;
    let feature = table.column(&["feature_id"])?;
    let mut out: HashMap<i64, Vec<Feature>> = HashMap::new();
    while let Some(row) = table.next_row()? {
        let feature_id: i64 = row.parse(feature)?;
        let name = names.get(&feature_id).ok_or_else(|| {
            row.error(
                feature,
                format!("feature {feature_id} is not in features.csv"),
            )
        })?;
        out.entry(row.parse(product)?).or_default().push(Feature {
            id: feature_id,
            name: name.clone(),
        });
    }
    Ok(out)
}

/// A CSV file read row by row, whose errors name the file, line and column.
struct Table {
    path: PathBuf,
    reader: csv::Reader<std::fs::File>,
    headers: Vec<String>,
}

struct Row<'a> {
    table: &'a Table,
    record: csv::StringRecord,
}

impl Table {
    fn open(path: &Path) -> Result<Table, AnalysisError> {
        let mut reader = csv::Reader::from_path(path).map_err(|e| AnalysisError::Data {
            place: path.display().to_string(),
            message: e.to_string(),
        })?;
        let headers = reader
            .headers()
            .map_err(|e| AnalysisError::Data {
                place: path.display().to_string(),
                message: e.to_string(),
            })?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        Ok(Table {
            path: path.to_path_buf(),
            reader,
            headers,
        })
    }

    /// The index of the first of `names` the header has.
    fn column(&self, names: &[&str]) -> Result<usize, AnalysisError> {
        names
            .iter()
            .find_map(|n| self.headers.iter().position(|h| h == n))
            .ok_or_else(|| AnalysisError::Data {
                place: format!("{}, line 1", self.path.display()),
                message: format!("no column {}", names.join(" or ")),
            })
    }

    fn next_row(&mut self) -> Result<Option<Row<'_>>, AnalysisError> {
        let mut record = csv::StringRecord::new();
        match self.reader.read_record(&mut record) {
            Ok(true) => Ok(Some(Row {
                table: self,
                record,
            })),
            Ok(false) => Ok(None),
            Err(e) => Err(AnalysisError::Data {
                place: format!(
                    "{}, line {}",
                    self.path.display(),
                    e.position().map_or(0, |p| p.line())
                ),
                message: e.to_string(),
            }),
        }
    }
}

impl Row<'_> {
    fn get(&self, column: usize) -> &str {
        self.record.get(column).unwrap_or("")
    }

    fn parse<T: std::str::FromStr>(&self, column: usize) -> Result<T, AnalysisError>
    where
        T::Err: std::fmt::Display,
    {
        let value = self.get(column).trim();
        value
            .parse()
            .map_err(|e: T::Err| self.error(column, format!("{value:?}: {e}")))
    }

    fn error(&self, column: usize, message: impl Into<String>) -> AnalysisError {
        AnalysisError::Data {
            place: format!(
                "{}, line {}, column {}",
                self.table.path.display(),
                self.record.position().map_or(0, |p| p.line()),
                self.table.headers.get(column).map_or("?", |h| h.as_str())
            ),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("analysis-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("features.csv"),
            "id,feature_name,categories\n1,Battery Life,['Tablets']\n2,Speakers,['Tablets']\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("product_features.csv"),
            "id,product_id,feature_id\n1,7,1\n2,7,2\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn reads_the_current_and_the_original_review_file_alike() {
        let current = scratch_dir("current");
        std::fs::write(
            current.join("product_reviews.csv"),
            "id,product_id,user_name,review,rating,feature_id,sentiment\n5,7,ann,\"Loud, \"\"clear\"\"\nspeakers\",4.00,2,positive\n",
        )
        .unwrap();
        let original = scratch_dir("original");
        std::fs::write(
            original.join("review.csv"),
            "\"id\",\"product_id\",\"user_name\",\"review_text\",\"rating\",\"feature_id\",\"sentiment\"\n\"5\",\"7\",\"ann\",\"Loud, \"\"clear\"\"\nspeakers\",\"4.00\",\"2\",\"positive\"\n",
        )
        .unwrap();
        let a = load_reviews(&current).unwrap();
        let b = load_reviews(&original).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].text, "Loud, \"clear\"\nspeakers");
        assert_eq!(a[0].rating, Some(4.0));
        assert_eq!(a[0].known_feature, Some(2));
        assert_eq!(
            a[0].features
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>(),
            ["Battery Life", "Speakers"]
        );
    }

    #[test]
    fn a_bad_label_names_the_file_line_and_column() {
        let dir = scratch_dir("labels");
        let path = dir.join("labels.csv");
        std::fs::write(&path, "review_id,feature_id,feature_name,sentiment\n5,2,Speakers,positive\n6,1,Battery Life,glowing\n").unwrap();
        let err = load_labels(&path).unwrap_err().to_string();
        assert!(
            err.contains("labels.csv, line 3, column sentiment") && err.contains("glowing"),
            "{err}"
        );
    }

    #[test]
    fn a_product_feature_missing_from_features_csv_is_refused_with_its_place() {
        let dir = scratch_dir("dangling");
        std::fs::write(
            dir.join("product_features.csv"),
            "id,product_id,feature_id\n1,7,1\n2,7,42\n",
        )
        .unwrap();
        std::fs::write(dir.join("review.csv"), "id,product_id,review_text,rating\n").unwrap();
        let err = load_reviews(&dir).unwrap_err().to_string();
        assert!(
            err.contains("product_features.csv, line 3, column feature_id") && err.contains("42"),
            "{err}"
        );
    }
}
