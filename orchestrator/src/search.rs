//! `orchestrator search "query" [--in products|reviews] [-k 10]`: embeds the
//! query with the provider the embed workers use and prints the nearest
//! rows by cosine distance. The query is `ORDER BY embedding <=> $1 LIMIT k`
//! on the embedding table alone, the shape the ANN index serves; names and
//! texts are joined on afterwards.

use anyhow::Context as _;
use shared::Config;
use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SearchIn {
    Products,
    Reviews,
}

/// One result line.
#[derive(Debug, Clone)]
pub struct Hit {
    pub id: i64,
    /// Product name, or an excerpt of the review.
    pub title: String,
    pub distance: f64,
}

pub async fn run(
    config: &Config,
    pool: &PgPool,
    query: &str,
    target: SearchIn,
    k: i64,
) -> anyhow::Result<()> {
    let hits = search(config, pool, query, target, k).await?;
    if hits.is_empty() {
        println!(
            "no {} embedded yet: run `orchestrator upgrade cc30da9b96c1`",
            name(target)
        );
        return Ok(());
    }
    let column = if target == SearchIn::Products {
        "name"
    } else {
        "review"
    };
    println!("rank        id  distance  {column}");
    for (rank, hit) in hits.iter().enumerate() {
        println!(
            "{:>4}  {:>8}  {:>8.4}  {}",
            rank + 1,
            hit.id,
            hit.distance,
            hit.title
        );
    }
    Ok(())
}

fn name(target: SearchIn) -> &'static str {
    match target {
        SearchIn::Products => "products",
        SearchIn::Reviews => "reviews",
    }
}

pub async fn search(
    config: &Config,
    pool: &PgPool,
    query: &str,
    target: SearchIn,
    k: i64,
) -> anyhow::Result<Vec<Hit>> {
    anyhow::ensure!(k > 0, "-k must be at least 1");
    let (table, id_key) = match target {
        SearchIn::Products => (
            format!("public.data_{}", config.embedding.products_table),
            "product_id",
        ),
        SearchIn::Reviews => (
            format!("public.data_{}", config.embedding.reviews_table),
            "review_id",
        ),
    };
    let dims: Option<i32> = sqlx::query_scalar(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'embedding' AND NOT attisdropped",
    )
    .bind(&table)
    .fetch_optional(pool)
    .await?;
    let Some(dims) = dims else {
        anyhow::bail!("{table} does not exist: run `orchestrator upgrade cc30da9b96c1` first");
    };
    let embedder = {
        let settings = config.clone();
        tokio::task::spawn_blocking(move || providers::embed::from_config(&settings)).await??
    };
    let vectors = embedder
        .embed(&[query.to_string()])
        .await
        .map_err(|e| anyhow::anyhow!("embedding the query with {}: {e}", embedder.describe()))?;
    let vector = vectors
        .into_iter()
        .next()
        .context("the provider returned no vector")?;
    anyhow::ensure!(
        dims <= 0 || vector.len() == dims as usize,
        "{table} holds {dims}-dimension vectors but the provider ({}) makes {}: search with the provider that embedded the table",
        embedder.describe(),
        vector.len()
    );
    let literal = format!(
        "[{}]",
        vector
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    // Vectors too long for a `vector` index are indexed as halfvec: order the same way.
    let distance = if dims > 2000 {
        format!("embedding::halfvec({dims}) <=> $1::text::halfvec({dims})")
    } else {
        "embedding <=> $1::text::vector".to_string()
    };
    let mut tx = pool.begin().await?;
    // Enough candidates for k results from the hnsw graph.
    sqlx::query("SELECT set_config('hnsw.ef_search', $1, true)")
        .bind(k.clamp(40, 1000).to_string())
        .execute(&mut *tx)
        .await?;
    let nearest: Vec<(Option<i64>, String, f64)> = sqlx::query_as(&format!(
        "SELECT (metadata_ ->> '{id_key}')::bigint, text, ({distance})::float8 AS distance
           FROM {table} ORDER BY {distance} LIMIT $2"
    ))
    .bind(&literal)
    .bind(k)
    .fetch_all(&mut *tx)
    .await
    .with_context(|| format!("searching {table}"))?;
    let ids: Vec<i64> = nearest.iter().filter_map(|(id, _, _)| *id).collect();
    let names: std::collections::HashMap<i64, String> = if target == SearchIn::Products {
        sqlx::query_as::<_, (i64, Option<String>)>(
            "SELECT id::bigint, name::text FROM public.products WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(id, name)| (id, name.unwrap_or_default()))
        .collect()
    } else {
        Default::default()
    };
    tx.commit().await?;
    Ok(nearest
        .into_iter()
        .map(|(id, text, distance)| {
            let id = id.unwrap_or_default();
            let title = names
                .get(&id)
                .cloned()
                .unwrap_or_else(|| excerpt(&text, 100));
            Hit {
                id,
                title,
                distance,
            }
        })
        .collect())
}

fn excerpt(text: &str, chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= chars {
        flat
    } else {
        format!("{}…", flat.chars().take(chars).collect::<String>())
    }
}
