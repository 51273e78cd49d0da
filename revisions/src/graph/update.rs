//! The incremental re-run: the graph brought in line with the tables by
//! changing only what differs.
//!
//! Each `diff` task compares one slice of the tables with the graph — the
//! slice's vertices by id and properties, and the edges it owns (see
//! [`elements::edges`]) as a multiset of `(label, ends,
//! properties)` — and writes what differs into the run's changes table: a
//! vertex or edge that is gone or different is deleted, one that is new or
//! different is inserted (a changed vertex keeps its id). Nothing in the
//! graph changes until the `apply` task writes all of it in one
//! transaction, so the shop's query answers from the graph as it was, then
//! from the graph as it is, and never from a graph half updated.
//!
//! Vertices of a deleted row are deleted by the diff of the slice its id
//! falls in (the first and last slices are open-ended), and so are the
//! edges it owned; edges into a deleted row are owned by the other end,
//! whose slice no longer produces them.

use super::build::{insert_edges, literal, local_search_path, move_sequences};
use super::elements;
use super::labels::{self, entry_range, Graph, GRAPH_NAME};
use super::tasks::Slice;
use anyhow::Context as _;
use shared::exec::{Completed, TaskContext};
use sqlx::{Connection, PgConnection};

/// The changes table of a revision run.
pub fn changes_table(revision_run_id: i64) -> String {
    format!("pipeline.graph_changes_{revision_run_id}")
}

/// Phase 1: the (empty) changes table.
pub async fn prepare(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    let table = changes_table(ctx.task.revision_run_id);
    let mut tx = ctx.conn.begin().await?;
    local_search_path(&mut tx).await?;
    sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
        .execute(&mut *tx)
        .await?;
    // Logged: a crash after a diff task completed must not lose its rows.
    sqlx::query(&format!(
        "CREATE TABLE {table} (
            label      text NOT NULL,
            op         text NOT NULL CHECK (op IN ('delete', 'insert')),
            id         ag_catalog.graphid,
            start_id   ag_catalog.graphid,
            end_id     ag_catalog.graphid,
            properties ag_catalog.agtype
         )"
    ))
    .execute(&mut *tx)
    .await?;
    ctx.task.complete(tx, 0).await
}

/// One slice compared with the graph; returns (in the task's rows) how many
/// changes it found.
pub async fn diff(ctx: TaskContext<'_>, slice: Slice) -> anyhow::Result<Completed> {
    let changes = changes_table(ctx.task.revision_run_id);
    let mut tx = ctx.conn.begin().await?;
    local_search_path(&mut tx).await?;
    let graph = Graph::get(&mut tx, GRAPH_NAME).await?;
    let (from, to) = slice.bounds();
    let entries = entry_range(slice.from, slice.to);
    let mut found = 0;
    let label = elements::vertex_label(slice.source);
    found += run_diff(
        &mut tx,
        &vertex_diff(&graph, &slice, &changes, entries.is_some()),
        from,
        to,
        entries,
    )
    .await
    .with_context(|| format!("comparing the {label} vertices of {}", describe(&slice)))?;
    let owned = elements::edges(&graph, slice.source, slice.sentiment_edges);
    if !owned.is_empty() {
        found += run_diff(
            &mut tx,
            &edge_diff(&graph, &owned, &changes, entries.is_some()),
            from,
            to,
            entries,
        )
        .await
        .with_context(|| {
            let labels: Vec<&str> = owned.iter().map(|(l, _)| *l).collect();
            format!("comparing the {} edges of {}", labels.join(", "), describe(&slice))
        })?;
    }
    ctx.task.complete(tx, found).await
}

fn describe(slice: &Slice) -> String {
    format!(
        "{} ids {} to {}",
        slice.source.table(),
        slice.from.map_or("start".into(), |v| v.to_string()),
        slice.to.map_or("end".into(), |v| v.to_string())
    )
}

/// Binds `$1`, `$2` (the slice) and `$3`, `$4` (its entry ids, when any can
/// be in the graph) and runs one diff statement.
async fn run_diff(
    conn: &mut PgConnection,
    sql: &str,
    from: i64,
    to: i64,
    entries: Option<(i64, i64)>,
) -> anyhow::Result<i64> {
    let mut query = sqlx::query(sql).bind(from).bind(to);
    if let Some((lo, hi)) = entries {
        query = query.bind(lo).bind(hi);
    }
    Ok(query.execute(&mut *conn).await?.rows_affected() as i64)
}

/// The graph ids of `label` whose entry ids are in `[$3, $4]` (none when the
/// slice holds no possible entry id).
fn in_slice(graph: &Graph, label: &str, column: &str, any: bool) -> String {
    if any {
        let id = graph.label_id(label);
        format!("{column} BETWEEN ag_catalog._graphid({id}, $3) AND ag_catalog._graphid({id}, $4)")
    } else {
        "false".into()
    }
}

fn vertex_diff(graph: &Graph, slice: &Slice, changes: &str, any: bool) -> String {
    let label = elements::vertex_label(slice.source);
    format!(
        "WITH d AS MATERIALIZED ({desired}),
              e AS MATERIALIZED (SELECT id, properties FROM {table} WHERE {range})
         INSERT INTO {changes} (label, op, id, properties)
         SELECT {name}, 'delete', e.id, NULL FROM e LEFT JOIN d ON d.id = e.id
          WHERE d.id IS NULL OR d.properties <> e.properties
         UNION ALL
         SELECT {name}, 'insert', d.id, d.properties FROM d LEFT JOIN e ON e.id = d.id
          WHERE e.id IS NULL OR d.properties <> e.properties",
        desired = elements::vertices(graph, slice.source),
        table = graph.label(label).table,
        range = in_slice(graph, label, "id", any),
        name = literal(label),
    )
}

fn edge_diff(graph: &Graph, owned: &[(&str, String)], changes: &str, any: bool) -> String {
    let desired: Vec<String> = owned
        .iter()
        .map(|(label, select)| format!("SELECT {} AS label, * FROM ({select}) s", literal(label)))
        .collect();
    let existing: Vec<String> = owned
        .iter()
        .map(|(label, _)| {
            let (end_label, end) = elements::owning_end(label);
            format!(
                "SELECT {name} AS label, id, start_id, end_id, properties FROM {table} WHERE {range}",
                name = literal(label),
                table = graph.label(label).table,
                range = in_slice(graph, end_label, end, any),
            )
        })
        .collect();
    // Numbered within equal edges, so that two equal edges match two, not one.
    format!(
        "WITH d AS MATERIALIZED (
                SELECT label, start_id, end_id, properties,
                       row_number() OVER (PARTITION BY label, start_id, end_id, properties) AS n
                  FROM ({desired}) x),
              e AS MATERIALIZED (
                SELECT label, id, start_id, end_id, properties,
                       row_number() OVER (PARTITION BY label, start_id, end_id, properties ORDER BY id) AS n
                  FROM ({existing}) y)
         INSERT INTO {changes} (label, op, id, start_id, end_id, properties)
         SELECT e.label, 'delete', e.id, NULL, NULL, NULL
           FROM e LEFT JOIN d USING (label, start_id, end_id, properties, n) WHERE d.n IS NULL
         UNION ALL
         SELECT d.label, 'insert', NULL, d.start_id, d.end_id, d.properties
           FROM d LEFT JOIN e USING (label, start_id, end_id, properties, n) WHERE e.n IS NULL",
        desired = desired.join("\n UNION ALL\n"),
        existing = existing.join("\n UNION ALL\n"),
    )
}

/// Last: every change in one transaction, then the sequences, statistics of
/// the labels that changed, and the changes table goes.
pub async fn apply(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    let changes = changes_table(ctx.task.revision_run_id);
    let mut tx = ctx.conn.begin().await?;
    local_search_path(&mut tx).await?;
    let graph = Graph::get(&mut tx, GRAPH_NAME).await?;
    let mut applied = 0;
    let mut changed = Vec::new();
    for label in labels::all_labels() {
        let table = &graph.label(label).table;
        let deleted = sqlx::query(&format!(
            "DELETE FROM {table} t USING {changes} c
              WHERE c.label = {name} AND c.op = 'delete' AND t.id = c.id",
            name = literal(label)
        ))
        .execute(&mut *tx)
        .await
        .with_context(|| format!("deleting changed {label} elements"))?
        .rows_affected();
        let inserted: i64 = if labels::is_vertex_label(label) {
            sqlx::query(&format!(
                "INSERT INTO {table} (id, properties)
                 SELECT id, properties FROM {changes} WHERE label = {name} AND op = 'insert'",
                name = literal(label)
            ))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("inserting changed {label} vertices"))?
            .rows_affected() as i64
        } else {
            let select = format!(
                "SELECT start_id, end_id, properties FROM {changes} WHERE label = {name} AND op = 'insert'",
                name = literal(label)
            );
            sqlx::query(&insert_edges(&graph, label, &select))
                .execute(&mut *tx)
                .await
                .with_context(|| format!("inserting changed {label} edges"))?
                .rows_affected() as i64
        };
        if deleted > 0 || inserted > 0 {
            tracing::info!("graph {GRAPH_NAME}: {label}: {deleted} deleted, {inserted} inserted");
            changed.push(table.clone());
        }
        applied += deleted as i64 + inserted;
    }
    move_sequences(&mut tx, &graph).await?;
    for table in &changed {
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!("DROP TABLE {changes}"))
        .execute(&mut *tx)
        .await?;
    ctx.task.complete(tx, applied).await
}
