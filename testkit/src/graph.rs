//! The graph as the graph revision leaves it (`product_review_graph`), in a
//! form two states can be compared in.

/// `(label, start label, start entry, end label, end entry, properties)`.
pub type DumpedEdge = (String, String, i64, String, i64, String);

/// Vertices and edges, without graph ids: `(label, properties)` and
/// `(label, start label, start entry, end label, end entry, properties)`.
pub async fn dump(pool: &sqlx::PgPool) -> (Vec<(String, String)>, Vec<DumpedEdge>) {
    let vertices = sqlx::query_as(
        "SELECT l.name::text, ag_catalog.agtype_out(v.properties)::text
           FROM product_review_graph._ag_label_vertex v
           JOIN ag_catalog.ag_label l ON l.relation = v.tableoid::regclass
          ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let edges = sqlx::query_as(
        "SELECT l.name::text, sl.name::text, e.start_id::text::bigint & 281474976710655,
                el.name::text, e.end_id::text::bigint & 281474976710655, ag_catalog.agtype_out(e.properties)::text
           FROM product_review_graph._ag_label_edge e
           JOIN ag_catalog.ag_label l ON l.relation = e.tableoid::regclass
           JOIN ag_catalog.ag_label sl ON sl.graph = l.graph AND sl.id = (e.start_id::text::bigint >> 48)::int
           JOIN ag_catalog.ag_label el ON el.graph = l.graph AND el.id = (e.end_id::text::bigint >> 48)::int
          ORDER BY 1, 2, 3, 4, 5, 6",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    (vertices, edges)
}
