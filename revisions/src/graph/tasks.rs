//! The graph revision's tasks ([`GraphTask`]), shared by the planner
//! (`plan.rs`) and the executor (`mod.rs`).

use serde::{Deserialize, Serialize};
use shared::config::{PropertyMatch, SentimentEdges};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GraphTask {
    /// Full build, phase 1: a new, empty graph for this revision run, with
    /// every label.
    Prepare,
    /// Full build: the vertices of one slice.
    Vertices(Slice),
    /// Full build: the edges one slice owns.
    Edges(Slice),
    /// Full build: the indexes of one label, then `ANALYZE`.
    Index(IndexPayload),
    /// Full build, last: sequences past the largest ids, then the new graph
    /// replaces the shop's in one transaction.
    Publish(PublishPayload),
    /// Incremental re-run, phase 1: the table that collects the changes.
    PrepareUpdate,
    /// Incremental re-run: what differs between one slice of the tables and
    /// the graph, written to the changes table (the graph is not touched).
    Diff(Slice),
    /// Incremental re-run, last: every change applied in one transaction.
    Apply,
    Downgrade,
}

/// Which relational table a slice is cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Products,
    Features,
    Reviews,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Products, Source::Features, Source::Reviews];

    pub fn table(self) -> &'static str {
        match self {
            Source::Products => "public.products",
            Source::Features => "public.features",
            Source::Reviews => "public.product_reviews",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Products => "products",
            Source::Features => "features",
            Source::Reviews => "reviews",
        }
    }
}

/// The rows of `source` with ids in `[from, to)`; `None` is unbounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slice {
    pub source: Source,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Where the reviews' sentiment edges come from, as decided when the
    /// run was planned.
    pub sentiment_edges: SentimentEdges,
}

impl Slice {
    /// The bounds as the `bigint` bind parameters `$1` and `$2`.
    pub fn bounds(&self) -> (i64, i64) {
        (self.from.unwrap_or(i64::MIN), self.to.unwrap_or(i64::MAX))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexPayload {
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishPayload {
    /// How the database's Cypher is to match property maps.
    pub property_match: PropertyMatch,
}
