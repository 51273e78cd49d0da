//! Writing vectors in bulk, inside the transaction that completes a task.
//!
//! New rows go straight into the embedding table with one binary `COPY`
//! (the fastest way into PostgreSQL; pgvector's binary form of a vector is
//! `int16 dim, int16 0, dim × float4`, all big-endian). Rows that exist and
//! changed go through a temporary table, also filled by binary `COPY`, and
//! one `UPDATE ... FROM`. Memories are updated in place the same way.
//!
//! Which rows are new was read before the provider was called; if another
//! writer inserted one of them since, the table's unique `node_id` key
//! fails the transaction and the task's retry sees the row as existing:
//! never a duplicate.

use crate::seed::memories::{VECTOR_KEY, VECTOR_PIPELINE};
use super::tables::EmbeddingTable;
use anyhow::Context as _;
use sqlx::PgConnection;

/// One row of an embedding table, as written.
#[derive(Debug, Clone)]
pub struct DocumentRow {
    pub node_id: String,
    pub text: String,
    pub metadata: serde_json::Value,
    /// `None`: keep the stored vector (only text or metadata changed).
    pub embedding: Option<Vec<f32>>,
}

/// A memory's new vector.
#[derive(Debug, Clone)]
pub struct MemoryVector {
    pub id: uuid::Uuid,
    pub vector: Vec<f32>,
    /// The memory's text as read when it was embedded: its md5 becomes the
    /// memory's `hash`, so a text changed meanwhile is embedded again next
    /// time instead of passing for embedded.
    pub data: String,
}

/// Inserts rows that are not in the table yet (binary COPY).
pub async fn insert_new(
    conn: &mut PgConnection,
    table: &EmbeddingTable,
    rows: &[DocumentRow],
) -> anyhow::Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let statement = format!(
        "COPY {} (text, metadata_, node_id, embedding) FROM STDIN WITH (FORMAT BINARY)",
        table.qualified()
    );
    copy_documents(conn, &statement, rows)
        .await
        .with_context(|| format!("writing {} new rows into {}", rows.len(), table.qualified()))
}

/// Updates rows that exist: text, metadata and (when given) the vector.
pub async fn update_existing(
    conn: &mut PgConnection,
    table: &EmbeddingTable,
    rows: &[DocumentRow],
    dims: usize,
) -> anyhow::Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    sqlx::query(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS embedding_updates (text varchar, metadata_ jsonb, node_id varchar, embedding vector({dims})) ON COMMIT DROP"
    ))
    .execute(&mut *conn)
    .await?;
    copy_documents(
        conn,
        "COPY embedding_updates (text, metadata_, node_id, embedding) FROM STDIN WITH (FORMAT BINARY)",
        rows,
    )
    .await?;
    let updated = sqlx::query(&format!(
        "UPDATE {} d SET text = u.text, metadata_ = u.metadata_, embedding = coalesce(u.embedding, d.embedding)
           FROM embedding_updates u WHERE d.node_id = u.node_id",
        table.qualified()
    ))
    .execute(&mut *conn)
    .await
    .with_context(|| format!("updating {} rows of {}", rows.len(), table.qualified()))?
    .rows_affected();
    sqlx::query("DROP TABLE embedding_updates")
        .execute(&mut *conn)
        .await?;
    Ok(updated)
}

/// Deletes rows by node_id (their source row has no text any more).
pub async fn delete(
    conn: &mut PgConnection,
    table: &EmbeddingTable,
    node_ids: &[String],
) -> anyhow::Result<u64> {
    if node_ids.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(&format!(
        "DELETE FROM {} WHERE node_id = ANY($1)",
        table.qualified()
    ))
    .bind(node_ids)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Sets the vectors of memories in place, with their `hash` (md5 of the text
/// embedded, as mem0 keeps it) and the mark of a vector the pipeline wrote.
pub async fn update_memories(
    conn: &mut PgConnection,
    memory_table: &str,
    rows: &[MemoryVector],
    dims: usize,
) -> anyhow::Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    sqlx::query(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS memory_vectors (id uuid, vector vector({dims}), data text) ON COMMIT DROP"
    ))
    .execute(&mut *conn)
    .await?;
    let mut buffer = CopyBuffer::new();
    for row in rows {
        buffer.tuple(3);
        buffer.field(Some(row.id.as_bytes()));
        buffer.vector(Some(&row.vector));
        buffer.field(Some(row.data.as_bytes()));
    }
    send(
        conn,
        "COPY memory_vectors (id, vector, data) FROM STDIN WITH (FORMAT BINARY)",
        buffer.finish(),
    )
    .await?;
    let updated = sqlx::query(&format!(
        "UPDATE {memory_table} m
            SET vector = v.vector,
                payload = coalesce(m.payload, '{{}}'::jsonb)
                          || jsonb_build_object('hash', md5(v.data), '{VECTOR_KEY}', '{VECTOR_PIPELINE}')
           FROM memory_vectors v WHERE m.id = v.id"
    ))
    .execute(&mut *conn)
    .await
    .with_context(|| format!("updating {} memories of {memory_table}", rows.len()))?
    .rows_affected();
    sqlx::query("DROP TABLE memory_vectors")
        .execute(&mut *conn)
        .await?;
    Ok(updated)
}

async fn copy_documents(
    conn: &mut PgConnection,
    statement: &str,
    rows: &[DocumentRow],
) -> anyhow::Result<u64> {
    let mut buffer = CopyBuffer::with_capacity(
        rows.len()
            * (rows.first().map_or(0, |r| {
                r.text.len() + 4 * r.embedding.as_ref().map_or(0, Vec::len)
            }) + 512),
    );
    for row in rows {
        buffer.tuple(4);
        buffer.field(Some(row.text.as_bytes()));
        buffer.jsonb(&row.metadata);
        buffer.field(Some(row.node_id.as_bytes()));
        buffer.vector(row.embedding.as_deref());
    }
    send(conn, statement, buffer.finish()).await
}

async fn send(conn: &mut PgConnection, statement: &str, data: Vec<u8>) -> anyhow::Result<u64> {
    let mut copy = conn.copy_in_raw(statement).await?;
    if let Err(e) = copy.send(data).await {
        let _ = copy.abort(e.to_string()).await;
        return Err(e.into());
    }
    Ok(copy.finish().await?)
}

/// PostgreSQL's binary COPY format (`PGCOPY`), written by hand: sqlx has
/// no encoder for it.
pub struct CopyBuffer {
    buf: Vec<u8>,
}

impl Default for CopyBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl CopyBuffer {
    pub fn new() -> CopyBuffer {
        Self::with_capacity(1 << 16)
    }

    pub fn with_capacity(capacity: usize) -> CopyBuffer {
        let mut buf = Vec::with_capacity(capacity.max(32));
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyBuffer { buf }
    }

    pub fn tuple(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    pub fn field(&mut self, value: Option<&[u8]>) {
        match value {
            None => self.buf.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(bytes) => {
                self.buf
                    .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                self.buf.extend_from_slice(bytes);
            }
        }
    }

    /// jsonb: a version byte (1), then the JSON text.
    pub fn jsonb(&mut self, value: &serde_json::Value) {
        let text = serde_json::to_vec(value).expect("a JSON value always serialises");
        self.buf
            .extend_from_slice(&((text.len() + 1) as i32).to_be_bytes());
        self.buf.push(1);
        self.buf.extend_from_slice(&text);
    }

    /// pgvector's `vector`: `int16 dim, int16 0`, then the floats.
    pub fn vector(&mut self, value: Option<&[f32]>) {
        match value {
            None => self.field(None),
            Some(v) => {
                self.buf
                    .extend_from_slice(&((4 + 4 * v.len()) as i32).to_be_bytes());
                self.buf.extend_from_slice(&(v.len() as i16).to_be_bytes());
                self.buf.extend_from_slice(&0i16.to_be_bytes());
                for x in v {
                    self.buf.extend_from_slice(&x.to_be_bytes());
                }
            }
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_copy_framing_matches_the_postgres_format() {
        let mut b = CopyBuffer::new();
        b.tuple(2);
        b.field(None);
        b.vector(Some(&[1.0, -2.0]));
        let bytes = b.finish();
        assert_eq!(&bytes[..11], b"PGCOPY\n\xff\r\n\0");
        let body = &bytes[19..];
        assert_eq!(&body[..2], &2i16.to_be_bytes());
        assert_eq!(&body[2..6], &(-1i32).to_be_bytes());
        assert_eq!(&body[6..10], &12i32.to_be_bytes());
        assert_eq!(&body[10..12], &2i16.to_be_bytes());
        assert_eq!(&body[14..18], &1.0f32.to_be_bytes());
        assert_eq!(&body[body.len() - 2..], &(-1i16).to_be_bytes());
    }
}
