//! The memories the seed makes of users' preferences: their ids and the
//! upsert both the load (fresh mode) and the finalize (merge mode) run.

/// Namespace of memory ids: uuid v5 of `"<user id>:<index>"`, so that the
/// same preference of the same user is always the same memory.
const MEMORY_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5eed_ef85_3933_36cb_8a1e_6d65_6d6f_7279);

pub fn memory_id(user: i32, index: usize) -> uuid::Uuid {
    uuid::Uuid::new_v5(&MEMORY_NAMESPACE, format!("{user}:{index}").as_bytes())
}

/// Upserts memories from `source` (a query with columns `id`, `user_id`,
/// `data`): the payload has `data`, `user_id`, `hash` (md5 of the text) and
/// `created_at`; a memory whose text changed gets its vector cleared (the
/// embedding revision fills it again), an unchanged one is left alone.
pub fn memory_upsert_sql(memory_table: &str, source: &str) -> String {
    format!(
        "INSERT INTO public.{memory_table} AS m (id, vector, payload)
         SELECT s.id, NULL,
                jsonb_build_object('data', s.data, 'user_id', s.user_id, 'hash', md5(s.data), 'created_at', to_jsonb(now()))
           FROM ({source}) AS s
         ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload, vector = NULL
          WHERE m.payload->>'hash' IS DISTINCT FROM EXCLUDED.payload->>'hash'
             OR m.payload->>'user_id' IS DISTINCT FROM EXCLUDED.payload->>'user_id'"
    )
}
