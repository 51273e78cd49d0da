//! The graph's shape — its name, its labels — and a graph as AGE's catalogue
//! knows it ([`Graph`]): the label ids that graph ids are made of, the label
//! tables and their sequences.
//!
//! A vertex's graph id is `(label id << 48) | entry id` with the entry id
//! equal to the row's id in its relational table, so that an edge's two
//! ends are computed from the relational ids alone (no lookup in the
//! vertex tables) and the same row always has the same vertex. Edges take
//! fresh entry ids from their label's sequence.

use anyhow::Context as _;
use sqlx::PgConnection;
use std::collections::BTreeMap;

/// The graph the shop queries.
pub const GRAPH_NAME: &str = "product_review_graph";

/// A full build goes into a graph of this name (plus the revision run id)
/// and replaces [`GRAPH_NAME`] only when complete.
pub const BUILD_PREFIX: &str = "product_review_graph_build_";

/// Largest entry id of a graph id (48 bits).
pub const MAX_ENTRY: i64 = (1 << 48) - 1;

/// Written on the graph's schema by a complete build: an incremental
/// re-run only works on a graph this revision built (the original's
/// migration made its ids differently).
pub const BUILT_MARK: &str = "built by AgenticShop revision f41ba96cab17";

pub const PRODUCT: &str = "Product";
pub const REVIEW: &str = "Review";
pub const FEATURE: &str = "Feature";
pub const HAS_FEATURE: &str = "HAS_FEATURE";
pub const HAS_REVIEW: &str = "HAS_REVIEW";
/// The review-to-feature edge labels, by the sentiment they carry.
pub const SENTIMENT_LABELS: [(&str, &str); 3] = [
    ("positive", "positive_sentiment"),
    ("negative", "negative_sentiment"),
    ("neutral", "neutral_sentiment"),
];

pub const VERTEX_LABELS: [&str; 3] = [PRODUCT, REVIEW, FEATURE];
pub const EDGE_LABELS: [&str; 5] = [
    HAS_FEATURE,
    HAS_REVIEW,
    SENTIMENT_LABELS[0].1,
    SENTIMENT_LABELS[1].1,
    SENTIMENT_LABELS[2].1,
];

pub fn is_vertex_label(label: &str) -> bool {
    VERTEX_LABELS.contains(&label)
}

/// Every label of the graph, vertices first.
pub fn all_labels() -> impl Iterator<Item = &'static str> {
    VERTEX_LABELS.into_iter().chain(EDGE_LABELS)
}

/// The graph a full build of this revision run writes.
pub fn build_graph_name(revision_run_id: i64) -> String {
    format!("{BUILD_PREFIX}{revision_run_id}")
}

/// One label of a graph, as AGE's catalogue holds it.
#[derive(Debug, Clone)]
pub struct Label {
    pub id: i32,
    /// The label table, schema-qualified and quoted (`g."Review"`).
    pub table: String,
    /// Its sequence, schema-qualified and quoted.
    pub sequence: String,
}

/// A graph of this revision: every label resolved.
#[derive(Debug, Clone)]
pub struct Graph {
    pub name: String,
    /// The graph's oid (`ag_graph.graphid`), which AGE writes into the SQL it
    /// generates for Cypher (`_label_name(<oid>, id)`).
    pub oid: u32,
    labels: BTreeMap<String, Label>,
}

impl Graph {
    /// The graph of this name, if it exists; an error if one of this
    /// revision's labels is missing from it.
    pub async fn find(conn: &mut PgConnection, name: &str) -> anyhow::Result<Option<Graph>> {
        let oid: Option<sqlx::postgres::types::Oid> =
            sqlx::query_scalar("SELECT graphid FROM ag_catalog.ag_graph WHERE name = $1::name")
                .bind(name)
                .fetch_optional(&mut *conn)
                .await
                .with_context(|| format!("looking up graph {name} in ag_catalog.ag_graph"))?;
        let Some(oid) = oid else {
            return Ok(None);
        };
        let rows: Vec<(String, i32, String, String)> = sqlx::query_as(
            "SELECT l.name::text, l.id, l.relation::regclass::text,
                    format('%I.%I', g.namespace::regnamespace::text, l.seq_name)
               FROM ag_catalog.ag_label l JOIN ag_catalog.ag_graph g ON g.graphid = l.graph
              WHERE g.graphid = $1",
        )
        .bind(oid)
        .fetch_all(&mut *conn)
        .await?;
        let labels: BTreeMap<String, Label> = rows
            .into_iter()
            .map(|(label, id, table, sequence)| {
                (label, Label { id, table: qualified(&table, name), sequence })
            })
            .collect();
        if let Some(missing) = all_labels().find(|l| !labels.contains_key(*l)) {
            anyhow::bail!(
                "graph {name} has no label {missing}: it was not made by revision f41ba96cab17 (or was changed since); \
                 `orchestrator rerun f41ba96cab17 --full` builds it again"
            );
        }
        Ok(Some(Graph {
            name: name.to_string(),
            oid: oid.0,
            labels,
        }))
    }

    /// Like [`Graph::find`], for a graph that must exist.
    pub async fn get(conn: &mut PgConnection, name: &str) -> anyhow::Result<Graph> {
        Graph::find(conn, name)
            .await?
            .with_context(|| format!("graph {name} does not exist"))
    }

    pub fn label(&self, name: &str) -> &Label {
        self.labels
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not a label of revision f41ba96cab17"))
    }

    pub fn label_id(&self, name: &str) -> i32 {
        self.label(name).id
    }

    /// The graph's schema, quoted.
    pub fn schema(&self) -> String {
        quote_ident(&self.name)
    }
}

/// `regclass::text` leaves out the schema of a table on the search path;
/// label tables never are, but be sure.
fn qualified(table: &str, graph: &str) -> String {
    if table.contains('.') {
        table.to_string()
    } else {
        format!("{}.{table}", quote_ident(graph))
    }
}

/// An identifier quoted for SQL (only ever our own names: the graph's and
/// its labels').
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The graph-id range `[lo, hi]` (entry ids) of the relational ids
/// `[from, to)`, or `None` when no vertex can be there.
pub fn entry_range(from: Option<i64>, to: Option<i64>) -> Option<(i64, i64)> {
    let lo = from.unwrap_or(1).max(1);
    let hi = to.map_or(MAX_ENTRY, |t| t.saturating_sub(1)).min(MAX_ENTRY);
    (lo <= hi).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ranges_are_the_relational_ranges_clipped_to_valid_entry_ids() {
        assert_eq!(entry_range(None, None), Some((1, MAX_ENTRY)));
        assert_eq!(entry_range(Some(40), Some(95)), Some((40, 94)));
        assert_eq!(entry_range(None, Some(1)), None);
        assert_eq!(entry_range(Some(-5), Some(3)), Some((1, 2)));
    }

    #[test]
    fn every_label_is_named_once_and_sentiment_labels_are_the_originals() {
        let all: Vec<&str> = all_labels().collect();
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
        assert_eq!(
            SENTIMENT_LABELS.map(|(s, l)| format!("{s}_sentiment") == l),
            [true; 3]
        );
    }
}
