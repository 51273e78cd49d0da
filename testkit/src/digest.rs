//! A canonical digest of what the pipeline built in a database, for telling
//! whether two runs on the same data ended in the same state: every base
//! table of `public` (the shop's tables, the embedding tables, the memory
//! table, `alembic_version`) and the graph, each as its row count and the
//! md5 of its rows' md5s in order (one md5 per row keeps a table of large
//! vectors within PostgreSQL's 1 GB value limit).
//!
//! What the database stamps at load time is left out: columns of a
//! timestamp type, `created_at` / `updated_at` inside JSON columns (the
//! memory payloads), and identity columns, numbered in the order rows were
//! written (the embedding tables' surrogate `id`; their `node_id` names the
//! row). Ids the data gives (the shop's tables') are kept. Graph elements are identified by their labels and
//! properties, never by their graph ids, which depend on the order of the
//! build.

use std::fmt;

/// One table's (or graph part's) share of the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDigest {
    pub name: String,
    pub rows: i64,
    pub md5: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub tables: Vec<TableDigest>,
}

impl Digest {
    /// One md5 over every table's.
    pub fn overall(&self) -> String {
        let joined: Vec<String> = self
            .tables
            .iter()
            .map(|t| format!("{} {} {}", t.name, t.rows, t.md5))
            .collect();
        format!("{:x}", md5::compute(joined.join("\n").as_bytes()))
    }

    /// The tables whose rows or md5 differ from `other`'s (or that only one
    /// of the two has).
    pub fn differences(&self, other: &Digest) -> Vec<String> {
        let mut out = Vec::new();
        for mine in &self.tables {
            match other.tables.iter().find(|t| t.name == mine.name) {
                None => out.push(format!("{}: only in the first", mine.name)),
                Some(theirs) if theirs != mine => out.push(format!(
                    "{}: {} rows {} against {} rows {}",
                    mine.name, mine.rows, mine.md5, theirs.rows, theirs.md5
                )),
                Some(_) => {}
            }
        }
        for theirs in &other.tables {
            if !self.tables.iter().any(|t| t.name == theirs.name) {
                out.push(format!("{}: only in the second", theirs.name));
            }
        }
        out
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tables {
            writeln!(f, "  {:<36} {:>9} rows  {}", t.name, t.rows, t.md5)?;
        }
        write!(f, "  {:<36} {:>9}       {}", "overall", "", self.overall())
    }
}

/// The graph the graph revision builds, when it exists.
const GRAPH_SCHEMA: &str = "product_review_graph";

pub async fn digest(pool: &sqlx::PgPool) -> anyhow::Result<Digest> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
          ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(tables.len() + 2);
    for table in tables {
        let columns: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, is_identity = 'YES'
               FROM information_schema.columns
              WHERE table_schema = 'public' AND table_name = $1",
        )
        .bind(&table)
        .fetch_all(pool)
        .await?;
        let mut row = "to_jsonb(t)".to_string();
        for (column, data_type, identity) in &columns {
            if data_type.starts_with("timestamp") || *identity {
                row.push_str(&format!(" - {}", quote_literal(column)));
            } else if data_type == "jsonb" || data_type == "json" {
                let value = format!("to_jsonb(t.{})", quote_ident(column));
                row = format!(
                    "jsonb_set({row}, ARRAY[{}], coalesce(CASE WHEN jsonb_typeof({value}) = 'object'
                         THEN {value} - 'created_at' - 'updated_at' ELSE {value} END, 'null'))",
                    quote_literal(column)
                );
            }
        }
        let sql = format!(
            "SELECT count(*), coalesce(md5(string_agg(r, '' ORDER BY r)), '')
               FROM (SELECT md5(({row})::text) AS r FROM public.{} t) rows",
            quote_ident(&table)
        );
        out.push(part(pool, &table, &sql).await?);
    }
    let graph: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables
                         WHERE table_schema = $1 AND table_name = '_ag_label_vertex')",
    )
    .bind(GRAPH_SCHEMA)
    .fetch_one(pool)
    .await?;
    if graph {
        let vertices = format!(
            "SELECT count(*), coalesce(md5(string_agg(r, '' ORDER BY r)), '')
               FROM (SELECT md5(l.name || ' ' || ag_catalog.agtype_out(v.properties)::text) AS r
                       FROM {GRAPH_SCHEMA}._ag_label_vertex v
                       JOIN ag_catalog.ag_label l ON l.relation = v.tableoid::regclass) rows"
        );
        out.push(part(pool, &format!("{GRAPH_SCHEMA} vertices"), &vertices).await?);
        let edges = format!(
            "SELECT count(*), coalesce(md5(string_agg(r, '' ORDER BY r)), '')
               FROM (SELECT md5(l.name || ' ' || ag_catalog.agtype_out(s.properties)::text || ' -> '
                            || ag_catalog.agtype_out(d.properties)::text || ' '
                            || ag_catalog.agtype_out(e.properties)::text) AS r
                       FROM {GRAPH_SCHEMA}._ag_label_edge e
                       JOIN ag_catalog.ag_label l ON l.relation = e.tableoid::regclass
                       JOIN {GRAPH_SCHEMA}._ag_label_vertex s ON s.id::text = e.start_id::text
                       JOIN {GRAPH_SCHEMA}._ag_label_vertex d ON d.id::text = e.end_id::text) rows"
        );
        out.push(part(pool, &format!("{GRAPH_SCHEMA} edges"), &edges).await?);
    }
    Ok(Digest { tables: out })
}

async fn part(pool: &sqlx::PgPool, name: &str, sql: &str) -> anyhow::Result<TableDigest> {
    let (rows, md5): (i64, String) = sqlx::query_as(sql)
        .fetch_one(pool)
        .await
        .map_err(|e| anyhow::anyhow!("digest of {name}: {e}"))?;
    Ok(TableDigest {
        name: name.to_string(),
        rows,
        md5,
    })
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
