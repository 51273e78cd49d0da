//! The full build: a new graph for the revision run
//! (`product_review_graph_build_<run>`), filled in bulk, indexed, and only
//! then put in the place of the shop's graph, in one transaction
//! ([`publish`]): the shop's query answers from the old graph or the new
//! one, never from half of one, and a failed build leaves the old graph
//! as it was.
//!
//! Vertices and edges are `INSERT … SELECT` from the relational tables
//! straight into the label tables, one slice of ids per task, so that the
//! work is linear in the data and shared by every graph worker. A task's
//! rows and its completion commit together: a worker killed mid-task leaves
//! nothing of it, and the task runs again elsewhere.

use super::elements;
use super::labels::{self, Graph, GRAPH_NAME};
use super::tasks::{IndexPayload, PublishPayload, Slice};
use shared::config::PropertyMatch;
use anyhow::Context as _;
use shared::exec::{Completed, Permanent, TaskContext};
use sqlx::{Connection, PgConnection};

/// Statements of these tasks name every object with its schema, but
/// operators (`=` on `agtype`, `graphid` ranges) are found through the
/// search path: the transaction adds `ag_catalog` after `public`, for itself
/// only, so that nothing leaks into the pooled connection and nothing
/// unqualified could ever land in `ag_catalog`.
pub async fn local_search_path(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("SELECT set_config('search_path', 'public, ag_catalog', true)")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Phase 1: an empty graph with every label. Graphs of earlier, abandoned
/// builds are dropped (the run lock means none is in use).
pub async fn prepare(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    let name = labels::build_graph_name(ctx.task.revision_run_id);
    let mut tx = ctx.conn.begin().await?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS age")
        .execute(&mut *tx)
        .await
        .map_err(|e| Permanent::new(format!("creating the age extension (is Apache AGE installed on the server?): {e}")))?;
    local_search_path(&mut tx).await?;
    drop_graphs(&mut tx, labels::BUILD_PREFIX, true).await?;
    sqlx::query("SELECT ag_catalog.create_graph($1::name)")
        .bind(&name)
        .execute(&mut *tx)
        .await
        .with_context(|| format!("creating graph {name}"))?;
    for label in labels::VERTEX_LABELS {
        sqlx::query("SELECT ag_catalog.create_vlabel($1::name, $2::name)")
            .bind(&name)
            .bind(label)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("creating vertex label {label} in graph {name}"))?;
    }
    for label in labels::EDGE_LABELS {
        sqlx::query("SELECT ag_catalog.create_elabel($1::name, $2::name)")
            .bind(&name)
            .bind(label)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("creating edge label {label} in graph {name}"))?;
    }
    ctx.task.complete(tx, 0).await
}

/// Drops the graph named `name`, or with `prefix`, every graph whose name
/// starts with it.
pub async fn drop_graphs(conn: &mut PgConnection, name: &str, prefix: bool) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name::text FROM ag_catalog.ag_graph
          WHERE name::text = $1 OR ($2 AND starts_with(name::text, $1)) ORDER BY name",
    )
    .bind(name)
    .bind(prefix)
    .fetch_all(&mut *conn)
    .await?;
    for name in &names {
        sqlx::query("SELECT ag_catalog.drop_graph($1::name, true)")
            .bind(name)
            .execute(&mut *conn)
            .await
            .with_context(|| format!("dropping graph {name}"))?;
    }
    Ok(names)
}

/// The vertices of one slice.
pub async fn vertices(ctx: TaskContext<'_>, slice: Slice) -> anyhow::Result<Completed> {
    let name = labels::build_graph_name(ctx.task.revision_run_id);
    let mut tx = ctx.conn.begin().await?;
    local_search_path(&mut tx).await?;
    let graph = Graph::get(&mut tx, &name).await?;
    let label = elements::vertex_label(slice.source);
    let sql = format!(
        "INSERT INTO {} (id, properties) {}",
        graph.label(label).table,
        elements::vertices(&graph, slice.source)
    );
    let (from, to) = slice.bounds();
    let rows = sqlx::query(&sql)
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await
        .map_err(|e| element_error(e, label, &slice))?
        .rows_affected();
    ctx.task.complete(tx, rows as i64).await
}

/// The edges one slice owns, one statement per label.
pub async fn edges(ctx: TaskContext<'_>, slice: Slice) -> anyhow::Result<Completed> {
    let name = labels::build_graph_name(ctx.task.revision_run_id);
    let mut tx = ctx.conn.begin().await?;
    local_search_path(&mut tx).await?;
    let graph = Graph::get(&mut tx, &name).await?;
    let (from, to) = slice.bounds();
    let mut rows = 0;
    for (label, select) in elements::edges(&graph, slice.source, slice.sentiment_edges) {
        rows += sqlx::query(&insert_edges(&graph, label, &select))
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await
            .map_err(|e| element_error(e, label, &slice))?
            .rows_affected() as i64;
    }
    ctx.task.complete(tx, rows).await
}

/// Inserts the rows of `select` (`start_id, end_id, properties`) as edges
/// of `label`, each with a fresh id from the label's sequence.
pub fn insert_edges(graph: &Graph, label: &str, select: &str) -> String {
    let l = graph.label(label);
    format!(
        "INSERT INTO {table} (id, start_id, end_id, properties)
         SELECT ag_catalog._graphid({id}, nextval({seq})), e.start_id, e.end_id, e.properties FROM ({select}) e",
        table = l.table,
        id = l.id,
        seq = literal(&l.sequence),
    )
}

/// A SQL string literal of one of our own names.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// An id AGE cannot take as an entry id is the data's problem: no retry
/// cures it.
fn element_error(e: sqlx::Error, what: &str, slice: &Slice) -> anyhow::Error {
    let place = format!(
        "{what} of {} ids {} to {}",
        slice.source.table(),
        slice.from.map_or("start".into(), |v| v.to_string()),
        slice.to.map_or("end".into(), |v| v.to_string())
    );
    if e.to_string().contains("entry_id must be") {
        return Permanent::new(format!(
            "building the {place}: {e}; a vertex's graph id is its row's id, which must be between 1 and {}",
            labels::MAX_ENTRY
        ))
        .into();
    }
    anyhow::Error::new(e).context(format!("building the {place}"))
}

/// The indexes of one label, then `ANALYZE` (the planner needs statistics
/// on the indexed expressions to choose them).
///
/// - every label: a unique index on `id`;
/// - edges: `start_id` and `end_id`;
/// - vertices: also the id as AGE computes it for a vertex carried over from
///   an earlier `MATCH` clause (`age_id(_agtype_build_vertex(…))`): the
///   shop's query names `(r:Review)` in its first clause and joins it to
///   the sentiment edge in a later one, and without this index that join
///   reads every review;
/// - the properties the shop's query filters on: `Product.id`,
///   `Feature.name`, and the sentiment edges' `product_id` (after `end_id`,
///   the feature the query starts from: its property map
///   `{product_id: p.id}` becomes an equality on both with
///   `age.enable_containment` off, see [`set_property_match`]; AGE's
///   default containment `@>` can use no btree, and a GIN index on
///   `properties` matches every edge holding the key). No index on
///   `Review.id`: sorting a million agtype keys takes a third of the build,
///   and the shop's query does not filter on it.
pub async fn index(ctx: TaskContext<'_>, payload: IndexPayload) -> anyhow::Result<Completed> {
    let name = labels::build_graph_name(ctx.task.revision_run_id);
    let label = payload.label.as_str();
    if !labels::all_labels().any(|l| l == label) {
        return Err(Permanent::new(format!("{label:?} is not a label of revision f41ba96cab17")).into());
    }
    let mut tx = ctx.conn.begin().await?;
    local_search_path(&mut tx).await?;
    let graph = Graph::get(&mut tx, &name).await?;
    for statement in index_statements(&graph, label) {
        sqlx::query(&statement)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("indexing {label} of graph {name}: {statement}"))?;
    }
    let table = &graph.label(label).table;
    sqlx::query(&format!("ANALYZE {table}"))
        .execute(&mut *tx)
        .await?;
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut *tx)
        .await?;
    ctx.task.complete(tx, rows).await
}

/// `agtype_access_operator(properties, '"key"')`: what AGE makes of `n.key`.
fn property(key: &str) -> String {
    format!(
        "(ag_catalog.agtype_access_operator(VARIADIC ARRAY[properties, {}::ag_catalog.agtype]))",
        literal(&format!("\"{key}\""))
    )
}

pub fn index_statements(graph: &Graph, label: &str) -> Vec<String> {
    let table = &graph.label(label).table;
    let index = |suffix: &str| labels::quote_ident(&format!("{label}_{suffix}"));
    let mut statements = vec![format!(
        "CREATE UNIQUE INDEX {} ON {table} (id)",
        index("id")
    )];
    if labels::is_vertex_label(label) {
        statements.push(format!(
            "CREATE INDEX {} ON {table} ((ag_catalog.age_id(ag_catalog._agtype_build_vertex(id, ag_catalog._label_name({oid}::oid, id), properties))::ag_catalog.graphid))",
            index("vertex_id"),
            oid = graph.oid
        ));
        let key = match label {
            labels::PRODUCT => Some("id"),
            labels::FEATURE => Some("name"),
            _ => None,
        };
        if let Some(key) = key {
            statements.push(format!(
                "CREATE INDEX {} ON {table} ({})",
                index(&format!("prop_{key}")),
                property(key)
            ));
        }
    } else {
        statements.push(format!(
            "CREATE INDEX {} ON {table} (start_id)",
            index("start_id")
        ));
        statements.push(format!(
            "CREATE INDEX {} ON {table} (end_id)",
            index("end_id")
        ));
        if labels::SENTIMENT_LABELS.iter().any(|(_, l)| *l == label) {
            statements.push(format!(
                "CREATE INDEX {} ON {table} (end_id, {})",
                index("prop_product_id"),
                property("product_id")
            ));
        }
    }
    statements
}

/// Last: every label's sequence past its largest entry id (so that a
/// Cypher `CREATE` gets a fresh id), then, in one transaction, the shop's
/// graph is dropped and the new one takes its name.
pub async fn publish(ctx: TaskContext<'_>, payload: PublishPayload) -> anyhow::Result<Completed> {
    let name = labels::build_graph_name(ctx.task.revision_run_id);
    let mut tx = ctx.conn.begin().await?;
    local_search_path(&mut tx).await?;
    let graph = Graph::get(&mut tx, &name).await?;
    let elements = move_sequences(&mut tx, &graph).await?;
    drop_graphs(&mut tx, GRAPH_NAME, false).await?;
    sqlx::query("SELECT ag_catalog.alter_graph($1::name, 'RENAME', $2::name)")
        .bind(&name)
        .bind(GRAPH_NAME)
        .execute(&mut *tx)
        .await
        .with_context(|| format!("renaming graph {name} to {GRAPH_NAME}"))?;
    sqlx::Executor::execute(&mut *tx, PUBLISH_SQL)
        .await
        .context("revision f41ba96cab17, publish (f41ba96cab17.publish.sql)")?;
    set_property_match(&mut tx, payload.property_match).await?;
    tracing::info!("graph {GRAPH_NAME}: {elements} vertices and edges, built as {name}, in place");
    ctx.task.complete(tx, elements).await
}

/// The database's default for `age.enable_containment`: `off` for equality
/// (new sessions get it; connections opened before keep theirs), AGE's own
/// default otherwise.
pub async fn set_property_match(conn: &mut PgConnection, matching: PropertyMatch) -> anyhow::Result<()> {
    let statement = match matching {
        PropertyMatch::Equality => "SET age.enable_containment = off",
        PropertyMatch::Containment => "RESET age.enable_containment",
    };
    sqlx::query(&format!(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I {statement}', current_database()); END $$"
    ))
    .execute(&mut *conn)
    .await
    .with_context(|| format!("ALTER DATABASE … {statement} (GRAPH_PROPERTY_MATCH={matching})"))?;
    Ok(())
}

/// Completes a rename: the label tables' id defaults, which name the graph
/// (and which Cypher `CREATE` uses), and the mark of a complete build.
const PUBLISH_SQL: &str = include_str!("f41ba96cab17.publish.sql");

/// Moves every label's sequence past the largest entry id of its table;
/// returns the number of elements.
pub async fn move_sequences(conn: &mut PgConnection, graph: &Graph) -> anyhow::Result<i64> {
    let mut elements = 0;
    for label in labels::all_labels() {
        let l = graph.label(label);
        // graphid has no max(): the largest by its btree order, which is
        // the entry id's within one label.
        let (count, largest): (i64, Option<i64>) = sqlx::query_as(&format!(
            "SELECT (SELECT count(*) FROM {table}),
                    (SELECT id::text::bigint & {mask} FROM {table} ORDER BY id DESC LIMIT 1)",
            table = l.table,
            mask = labels::MAX_ENTRY,
        ))
        .fetch_one(&mut *conn)
        .await?;
        elements += count;
        if let Some(largest) = largest {
            sqlx::query(&format!(
                "SELECT setval({seq}, greatest($1, (SELECT last_value FROM {raw})))",
                seq = literal(&l.sequence),
                raw = l.sequence
            ))
            .bind(largest)
            .execute(&mut *conn)
            .await
            .with_context(|| format!("moving sequence {} past {largest}", l.sequence))?;
        }
    }
    Ok(elements)
}
