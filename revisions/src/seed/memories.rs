//! The memories the seed makes of users' preferences: their ids and the
//! upsert both the load (fresh mode) and the finalize (merge mode) run.

/// Namespace of memory ids: uuid v5 of `"<user id>:<index>"`, so that the
/// same preference of the same user is always the same memory.
const MEMORY_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5eed_ef85_3933_36cb_8a1e_6d65_6d6f_7279);

pub fn memory_id(user: i32, index: usize) -> uuid::Uuid {
    uuid::Uuid::new_v5(&MEMORY_NAMESPACE, format!("{user}:{index}").as_bytes())
}

/// The payload key, and its value, that mark a memory as the seed's: the
/// shop's memory layer writes memories of its own into the same table, and
/// `rerun seed --prune` deletes only memories carrying this marker.
pub const ORIGIN_KEY: &str = "origin";
pub const ORIGIN_SEED: &str = "agenticshop-seed";

/// The payload key, and its value, that mark a memory's vector as written
/// by the embeddings revision: its downgrade clears only such vectors (and
/// those of the seed's memories), never one the shop's memory layer wrote.
pub const VECTOR_KEY: &str = "vector_source";
pub const VECTOR_PIPELINE: &str = "agenticshop-embeddings";

/// Upserts memories from `source` (a query with columns `id`, `user_id`,
/// `data`): the payload has `data`, `user_id`, `hash` (md5 of the text),
/// `created_at` and the origin marker; a memory whose text changed gets its
/// vector cleared (the embedding revision fills it again), an unchanged one
/// is left alone (one written before the marker existed only gains it).
pub fn memory_upsert_sql(memory_table: &str, source: &str) -> String {
    format!(
        "INSERT INTO public.{memory_table} AS m (id, vector, payload)
         SELECT s.id, NULL,
                jsonb_build_object('data', s.data, 'user_id', s.user_id, 'hash', md5(s.data),
                                   'created_at', to_jsonb(now()), '{ORIGIN_KEY}', '{ORIGIN_SEED}')
           FROM ({source}) AS s
         ON CONFLICT (id) DO UPDATE
            SET payload = EXCLUDED.payload,
                vector = CASE WHEN m.payload->>'hash' IS DISTINCT FROM EXCLUDED.payload->>'hash'
                              THEN NULL ELSE m.vector END
          WHERE m.payload->>'hash' IS DISTINCT FROM EXCLUDED.payload->>'hash'
             OR m.payload->>'user_id' IS DISTINCT FROM EXCLUDED.payload->>'user_id'
             OR m.payload->>'{ORIGIN_KEY}' IS DISTINCT FROM EXCLUDED.payload->>'{ORIGIN_KEY}'"
    )
}

/// Deletes the seed's memories (by their marker) that are not in `staging`
/// (a table with column `id`): preferences gone from the files.
pub fn memory_prune_sql(memory_table: &str, staging: &str) -> String {
    format!(
        "DELETE FROM public.{memory_table} m
          WHERE m.payload->>'{ORIGIN_KEY}' = '{ORIGIN_SEED}'
            AND NOT EXISTS (SELECT 1 FROM {staging} s WHERE s.id = m.id)"
    )
}
