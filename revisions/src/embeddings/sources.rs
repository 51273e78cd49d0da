//! Embed tasks: the rows of one id range, their texts, what changed since
//! the last run, the provider call, and the bulk write.
//!
//! The provider is called before the transaction opens, so no transaction
//! (and no lock) is held while waiting on the network; the transaction that
//! writes the vectors also completes the task.

use super::tables::{self, model_key, EmbeddingTable};
use super::write::{self, DocumentRow, MemoryVector};
use super::tasks::{EmbedPayload, Source};
use shared::exec::{Completed, Permanent, TaskContext};
use anyhow::Context as _;
use providers::embed::text::{self, ProductSource};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use std::collections::HashMap;
use std::sync::Arc;

/// Namespace of the node ids: `uuid v5(namespace, "product:<id>")`, so the
/// same source row always maps to the same node and a re-run updates it.
pub fn node_namespace() -> uuid::Uuid {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, b"agenticshop.embeddings")
}

/// The node id of a source row (`kind` is `product` or `review`).
pub fn node_id(kind: &str, id: i64) -> String {
    uuid::Uuid::new_v5(&node_namespace(), format!("{kind}:{id}").as_bytes()).to_string()
}

/// `id, category, description, specifications` of a product.
type ProductRow = (i64, Option<String>, Option<String>, Option<Value>);

/// A source row made ready for the embedding table.
struct Document {
    node_id: String,
    text: String,
    metadata: Value,
}

/// The `metadata_` LlamaIndex writes and reads back: the row's own keys,
/// `_node_type`, `_node_content` (the node as JSON with an empty text),
/// `doc_id` / `document_id` / `ref_doc_id`; plus the content hash that
/// incremental re-runs compare.
fn llama_metadata(
    node_id: &str,
    doc_id: &str,
    own: serde_json::Map<String, Value>,
    hash: &str,
) -> Value {
    let node = json!({
        "id_": node_id,
        "embedding": null,
        "metadata": Value::Object(own.clone()),
        "excluded_embed_metadata_keys": [],
        "excluded_llm_metadata_keys": [],
        "relationships": {
            "1": {"node_id": doc_id, "node_type": "4", "metadata": {}, "hash": null, "class_name": "RelatedNodeInfo"}
        },
        "metadata_template": "{key}: {value}",
        "text": "",
        "mimetype": "text/plain",
        "start_char_idx": null,
        "end_char_idx": null,
        "metadata_seperator": "\n",
        "text_template": "{metadata_str}\n\n{content}",
        "class_name": "TextNode"
    });
    let mut metadata = own;
    metadata.insert("_node_content".into(), Value::String(node.to_string()));
    metadata.insert("_node_type".into(), Value::String("TextNode".into()));
    metadata.insert("document_id".into(), Value::String(doc_id.into()));
    metadata.insert("doc_id".into(), Value::String(doc_id.into()));
    metadata.insert("ref_doc_id".into(), Value::String(doc_id.into()));
    metadata.insert("content_hash".into(), Value::String(hash.into()));
    Value::Object(metadata)
}

fn bound_i64(value: &Option<Value>) -> anyhow::Result<Option<i64>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("range bound {v} is not an integer id")),
    }
}

fn bound_str(value: &Option<Value>) -> anyhow::Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => anyhow::bail!("range bound {v} is not a uuid"),
    }
}

async fn read_products(
    conn: &mut PgConnection,
    from: Option<i64>,
    to: Option<i64>,
    key: &str,
) -> anyhow::Result<Vec<Document>> {
    let products: Vec<ProductRow> = sqlx::query_as(
        "SELECT id::bigint, category::text, description, specifications FROM public.products
          WHERE ($1::bigint IS NULL OR id >= $1) AND ($2::bigint IS NULL OR id < $2) ORDER BY id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await
    .context("reading products")?;
    let attributes: Vec<(i64, i64, String, String)> = sqlx::query_as(
        "SELECT product_id::bigint, variant_id::bigint, attribute_name::text, attribute_value::text FROM public.variant_attributes
          WHERE ($1::bigint IS NULL OR product_id >= $1) AND ($2::bigint IS NULL OR product_id < $2)
          ORDER BY product_id, variant_id, id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await
    .context("reading variant attributes")?;
    let mut by_product: HashMap<i64, Vec<(i64, String, String)>> = HashMap::new();
    for (product, variant, name, value) in attributes {
        by_product
            .entry(product)
            .or_default()
            .push((variant, name, value));
    }
    Ok(products
        .into_iter()
        .map(|(id, category, description, specifications)| {
            let text = text::product_text(&ProductSource {
                category: category.clone(),
                description_html: description,
                specifications,
                variant_attributes: by_product.remove(&id).unwrap_or_default(),
            });
            let node_id = node_id("product", id);
            let mut own = serde_json::Map::new();
            own.insert("product_id".into(), json!(id));
            own.insert("category".into(), json!(category));
            let hash = text::content_hash(key, &text);
            Document {
                metadata: llama_metadata(&node_id, &format!("product:{id}"), own, &hash),
                node_id,
                text,
            }
        })
        .collect())
}

async fn read_reviews(
    conn: &mut PgConnection,
    from: Option<i64>,
    to: Option<i64>,
    key: &str,
) -> anyhow::Result<Vec<Document>> {
    let reviews: Vec<(i64, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT id::bigint, product_id::bigint, review FROM public.product_reviews
          WHERE ($1::bigint IS NULL OR id >= $1) AND ($2::bigint IS NULL OR id < $2) ORDER BY id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await
    .context("reading reviews")?;
    Ok(reviews
        .into_iter()
        .map(|(id, product_id, review)| {
            let text = text::review_text(review.as_deref());
            let node_id = node_id("review", id);
            let mut own = serde_json::Map::new();
            own.insert("review_id".into(), json!(id));
            own.insert("product_id".into(), json!(product_id));
            let hash = text::content_hash(key, &text);
            Document {
                metadata: llama_metadata(&node_id, &format!("review:{id}"), own, &hash),
                node_id,
                text,
            }
        })
        .collect())
}

/// Calls the provider for `texts` and checks every vector's length against
/// the column's (`dims` 0: a column declared without a dimension).
async fn embed(
    embedder: &Arc<dyn providers::embed::Embedder>,
    texts: &[String],
    dims: usize,
    target: &str,
    column: &str,
) -> anyhow::Result<Vec<Vec<f32>>> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    if dims > 0 {
        tables::check_provider(embedder.as_ref(), target, column, dims).await?;
    }
    let vectors = embedder.embed(texts).await.map_err(|e| match e {
        // A request the provider refuses (a 4xx other than 429) fails the task at once.
        providers::embed::EmbedError::Permanent(message) => anyhow::Error::from(Permanent::new(
            format!("embedding provider ({}): {message}", embedder.describe()),
        )),
        transient => anyhow::anyhow!("embedding provider ({}): {transient}", embedder.describe()),
    })?;
    anyhow::ensure!(
        vectors.len() == texts.len(),
        "embedding provider ({}) returned {} vectors for {} texts",
        embedder.describe(),
        vectors.len(),
        texts.len()
    );
    if let Some(bad) = vectors.iter().find(|v| dims > 0 && v.len() != dims) {
        return Err(Permanent::new(format!(
            "{target} holds vectors of {dims} dimensions, but the embedding provider ({}) returned {}; \
             drop the embedding tables (`orchestrator downgrade ef85393336cb`) and embed again, \
             or go back to a provider, model or EMBEDDING_DIMENSIONS that makes {dims}-dimension vectors",
            embedder.describe(),
            bad.len()
        ))
        .into());
    }
    Ok(vectors)
}

/// One range of products or reviews.
pub async fn embed_documents(
    ctx: TaskContext<'_>,
    embedder: &super::embedder::Embedder,
    payload: &EmbedPayload,
) -> anyhow::Result<Completed> {
    let config = ctx.config;
    let table = EmbeddingTable::for_source(config, payload.source)?;
    let embedder = embedder.get().await?;
    let dims = match table.dimensions(ctx.conn).await? {
        Some(d) if d > 0 => d as usize,
        _ => anyhow::bail!(
            "{} does not exist (or has no vector dimension); the prepare task of revision cc30da9b96c1 creates it",
            table.qualified()
        ),
    };
    let key = model_key(config, dims);
    let (from, to) = (bound_i64(&payload.from)?, bound_i64(&payload.to)?);
    let documents = match payload.source {
        Source::Products => read_products(ctx.conn, from, to, &key).await?,
        _ => read_reviews(ctx.conn, from, to, &key).await?,
    };
    let node_ids: Vec<String> = documents.iter().map(|d| d.node_id.clone()).collect();
    let stored: HashMap<String, Option<Value>> =
        sqlx::query_as::<_, (String, Option<Value>)>(&format!(
            "SELECT node_id, metadata_ FROM {} WHERE node_id = ANY($1)",
            table.qualified()
        ))
        .bind(&node_ids)
        .fetch_all(&mut *ctx.conn)
        .await?
        .into_iter()
        .collect();

    let mut new_rows = Vec::new();
    let mut changed = Vec::new();
    let mut metadata_only = Vec::new();
    let mut emptied = Vec::new();
    let mut unchanged = 0usize;
    for doc in documents.iter() {
        let before = stored.get(&doc.node_id);
        if doc.text.is_empty() {
            if before.is_some() {
                emptied.push(doc.node_id.clone());
            }
            continue;
        }
        match before {
            None => new_rows.push(doc),
            Some(old) => {
                let old_hash = old
                    .as_ref()
                    .and_then(|m| m.get("content_hash"))
                    .and_then(Value::as_str);
                let new_hash = doc.metadata.get("content_hash").and_then(Value::as_str);
                if old_hash != new_hash {
                    changed.push(doc);
                } else if old.as_ref() != Some(&doc.metadata) {
                    metadata_only.push(doc);
                } else {
                    unchanged += 1;
                }
            }
        }
    }
    let texts: Vec<String> = new_rows
        .iter()
        .chain(changed.iter())
        .map(|d| d.text.clone())
        .collect();
    let mut vectors = embed(&embedder, &texts, dims, &table.qualified(), "embedding")
        .await?
        .into_iter();

    let to_row = |doc: &Document, embedding: Option<Vec<f32>>| DocumentRow {
        node_id: doc.node_id.clone(),
        text: doc.text.clone(),
        metadata: doc.metadata.clone(),
        embedding,
    };
    let inserts: Vec<DocumentRow> = new_rows.iter().map(|d| to_row(d, vectors.next())).collect();
    let mut updates: Vec<DocumentRow> = changed.iter().map(|d| to_row(d, vectors.next())).collect();
    updates.extend(metadata_only.iter().map(|d| to_row(d, None)));

    let mut tx = ctx.conn.begin().await?;
    write::insert_new(&mut tx, &table, &inserts).await?;
    write::update_existing(&mut tx, &table, &updates, dims).await?;
    write::delete(&mut tx, &table, &emptied).await?;
    tracing::info!(
        "task {} ({}): {} rows; embedded {} new and {} changed, {} metadata-only, {} unchanged, {} without text",
        ctx.task.id,
        table.qualified(),
        documents.len(),
        new_rows.len(),
        changed.len(),
        metadata_only.len(),
        unchanged,
        documents.len() - new_rows.len() - changed.len() - metadata_only.len() - unchanged
    );
    ctx.task.complete(tx, documents.len() as i64).await
}

/// One range of memories: vectors filled in place, for memories that have
/// none or whose text changed since (mem0's `hash` no longer matches).
pub async fn embed_memories(
    ctx: TaskContext<'_>,
    embedder: &super::embedder::Embedder,
    payload: &EmbedPayload,
) -> anyhow::Result<Completed> {
    let config = ctx.config;
    let memory = tables::memory_table(config);
    let dims = match tables::column_dimensions(ctx.conn, &memory, "vector").await? {
        None => {
            tracing::warn!("memory table {memory} does not exist: no memory vectors to fill");
            let tx = ctx.conn.begin().await?;
            return ctx.task.complete(tx, 0).await;
        }
        Some(d) => d,
    };
    let (from, to) = (bound_str(&payload.from)?, bound_str(&payload.to)?);
    let rows: Vec<(uuid::Uuid, Option<String>, bool)> = sqlx::query_as(&format!(
        "SELECT id, payload ->> 'data', (vector IS NULL OR payload ->> 'hash' IS DISTINCT FROM md5(payload ->> 'data'))
           FROM {memory}
          WHERE ($1::text IS NULL OR id >= $1::uuid) AND ($2::text IS NULL OR id < $2::uuid) ORDER BY id"
    ))
    .bind(&from)
    .bind(&to)
    .fetch_all(&mut *ctx.conn)
    .await
    .with_context(|| format!("reading memories from {memory}"))?;
    let pending: Vec<(uuid::Uuid, &str, String)> = rows
        .iter()
        .filter(|(_, _, needs)| *needs)
        .filter_map(|(id, data, _)| {
            let data = data.as_deref()?;
            Some((*id, data, text::memory_text(Some(data))))
        })
        .filter(|(_, _, text)| !text.is_empty())
        .collect();
    let mut written = Vec::new();
    if !pending.is_empty() {
        let embedder = embedder.get().await?;
        let texts: Vec<String> = pending.iter().map(|(_, _, t)| t.clone()).collect();
        let vectors = embed(&embedder, &texts, dims.max(0) as usize, &memory, "vector").await?;
        written = pending
            .iter()
            .zip(vectors)
            .map(|((id, data, _), vector)| MemoryVector {
                id: *id,
                vector,
                data: data.to_string(),
            })
            .collect();
    }
    let dims_for_temp = written.first().map_or(0, |v| v.vector.len());
    let mut tx = ctx.conn.begin().await?;
    write::update_memories(&mut tx, &memory, &written, dims_for_temp).await?;
    tracing::info!(
        "task {} ({memory}): {} memories; embedded {}",
        ctx.task.id,
        rows.len(),
        written.len()
    );
    ctx.task.complete(tx, rows.len() as i64).await
}
