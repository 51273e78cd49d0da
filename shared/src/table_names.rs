//! The tables the configuration names (`MEM0_MEMORY_TABLE_NAME`,
//! `DB_EMBEDDING_TABLE_FOR_PRODUCTS`, `DB_EMBEDDING_TABLE_FOR_REVIEWS`) and
//! what they may not be.
//!
//! The pipeline creates, fills, empties and drops these tables (the seed's
//! downgrade drops the memory table, the embeddings' prune deletes from its
//! tables), so a name that is an application table, a pipeline table, or
//! another configured table would destroy data the shop owns. Each name
//! also yields derived relation names (`data_<name>`, its key, its identity
//! sequence, its indexes), which must fit PostgreSQL's 63 bytes — longer
//! names are cut silently, and two cut names may meet — and must not meet
//! each other. [`check`] refuses such a configuration at start, naming the
//! variable, before any program connects to anything.

/// PostgreSQL's limit on an identifier (`NAMEDATALEN - 1`), in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The prefix of an embedding table: `public.data_<DB_EMBEDDING_TABLE_FOR_*>`
/// (LlamaIndex's PostgreSQL vector store adds it).
pub const EMBEDDING_TABLE_PREFIX: &str = "data_";

/// Suffixes of the relations an embedding table brings with it: its primary
/// key, its identity sequence, and the indexes the embeddings revision
/// builds (`revisions/src/embeddings/tables.rs` names them with these).
pub const EMBEDDING_RELATION_SUFFIXES: [&str; 5] = [
    "_pkey",
    "_id_seq",
    NODE_ID_KEY_SUFFIX,
    REF_DOC_INDEX_SUFFIX,
    EMBEDDING_INDEX_SUFFIX,
];
pub const NODE_ID_KEY_SUFFIX: &str = "_node_id_key";
pub const REF_DOC_INDEX_SUFFIX: &str = "_idx_1";
pub const EMBEDDING_INDEX_SUFFIX: &str = "_embedding_idx";

/// Suffixes of the relations the memory table brings with it (its key).
pub const MEMORY_RELATION_SUFFIXES: [&str; 1] = ["_pkey"];

/// The application's tables in `public`: those the schema revision creates,
/// the enrichment's, and `alembic_version`.
pub const APPLICATION_TABLES: [&str; 11] = [
    "products",
    "users",
    "features",
    "product_features",
    "product_reviews",
    "product_images",
    "variants",
    "variant_attributes",
    "personalized_product_sections",
    "review_feature_sentiments",
    "alembic_version",
];

/// Indexes the chain creates in `public` under names of their own (each
/// table's `<table>_pkey` and `<table>_id_seq` are reserved with it).
pub const APPLICATION_INDEXES: [&str; 9] = [
    "ix_product_id",
    "ix_users_id",
    "ix_product_image_id",
    "ix_review_id",
    "ix_variants_id",
    "ix_variant_attributes_id",
    "features_feature_name_key",
    "uq_product_feature",
    "ix_review_feature_sentiments_feature",
];

/// The pipeline's own tables (schema `pipeline`): a public table of the same
/// name would be confused with them by anyone reading the database.
pub const PIPELINE_TABLES: [&str; 14] = [
    "runs",
    "revision_runs",
    "tasks",
    "revision_history",
    "identity",
    "noop_marks",
    "schedules",
    "schedule_fires",
    "loaded_seed_ids",
    "enrichment_backup",
    "enrichment_batches",
    "enrichment_failures",
    "enrichment_reviews",
    "enrichment_usage",
];

/// Whether `relation` is (or belongs to) a table of the application or of
/// the pipeline; `Some` says which.
pub fn reserved(relation: &str) -> Option<String> {
    for table in APPLICATION_TABLES {
        if relation == table {
            return Some(format!("the application table public.{table}"));
        }
        for suffix in ["_pkey", "_id_seq"] {
            if relation.strip_suffix(suffix) == Some(table) {
                return Some(format!(
                    "a relation of the application table public.{table}"
                ));
            }
        }
    }
    if APPLICATION_INDEXES.contains(&relation) {
        return Some(format!("the application's index public.{relation}"));
    }
    if PIPELINE_TABLES.contains(&relation) {
        return Some(format!("the pipeline table pipeline.{relation}"));
    }
    None
}

/// One configured table: the variable that names it and its name there.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    pub variable: &'static str,
    pub value: &'a str,
    /// The table's name in the database (`data_<value>` for an embedding table).
    pub prefix: &'static str,
    pub suffixes: &'static [&'static str],
}

impl Named<'_> {
    pub fn table(&self) -> String {
        format!("{}{}", self.prefix, self.value)
    }

    /// The table and every relation derived from its name.
    pub fn relations(&self) -> Vec<String> {
        let table = self.table();
        std::iter::once(table.clone())
            .chain(self.suffixes.iter().map(|s| format!("{table}{s}")))
            .collect()
    }

    /// The longest `value` whose derived names all fit in 63 bytes.
    pub fn max_len(&self) -> usize {
        let longest = self.suffixes.iter().map(|s| s.len()).max().unwrap_or(0);
        MAX_IDENTIFIER_BYTES - self.prefix.len() - longest
    }
}

/// The configured tables of a configuration.
pub fn configured<'a>(
    memory_table: &'a str,
    products_table: &'a str,
    reviews_table: &'a str,
) -> [Named<'a>; 3] {
    [
        Named {
            variable: "MEM0_MEMORY_TABLE_NAME",
            value: memory_table,
            prefix: "",
            suffixes: &MEMORY_RELATION_SUFFIXES,
        },
        Named {
            variable: "DB_EMBEDDING_TABLE_FOR_PRODUCTS",
            value: products_table,
            prefix: EMBEDDING_TABLE_PREFIX,
            suffixes: &EMBEDDING_RELATION_SUFFIXES,
        },
        Named {
            variable: "DB_EMBEDDING_TABLE_FOR_REVIEWS",
            value: reviews_table,
            prefix: EMBEDDING_TABLE_PREFIX,
            suffixes: &EMBEDDING_RELATION_SUFFIXES,
        },
    ]
}

/// A configured table name refused: the variable, its value and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {variable} = {value:?} is not valid: {reason}")]
pub struct Refused {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

/// Refuses a configured table name that is too long for its derived names,
/// names (or derives) a table of the application or the pipeline, or meets
/// a name derived from another configured table.
pub fn check(tables: &[Named<'_>]) -> Result<(), Refused> {
    let invalid = |named: &Named<'_>, reason: String| Refused {
        variable: named.variable,
        value: named.value.to_string(),
        reason,
    };
    for named in tables {
        if named.value.len() > named.max_len() {
            return Err(invalid(
                named,
                format!(
                    "at most {} characters: the longest name derived from it, {}{}, must fit PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte identifiers",
                    named.max_len(),
                    named.table(),
                    named.suffixes.iter().max_by_key(|s| s.len()).unwrap_or(&""),
                ),
            ));
        }
        for relation in named.relations() {
            if let Some(what) = reserved(&relation) {
                return Err(invalid(
                    named,
                    format!(
                        "the pipeline would create, empty and drop public.{relation}, which is {what}; choose another name"
                    ),
                ));
            }
        }
    }
    for (i, a) in tables.iter().enumerate() {
        for b in &tables[i + 1..] {
            let theirs = b.relations();
            if let Some(shared) = a.relations().into_iter().find(|r| theirs.contains(r)) {
                return Err(invalid(
                    b,
                    format!(
                        "public.{shared} would be derived from both {} ({:?}) and {} ({:?}); give them names that do not meet",
                        a.variable, a.value, b.variable, b.value
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(memory: &str, products: &str, reviews: &str) -> String {
        match check(&configured(memory, products, reviews)) {
            Ok(()) => panic!("{memory:?}, {products:?}, {reviews:?} must be refused"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_defaults_are_accepted() {
        check(&configured(
            "memories",
            "product_embeddings",
            "review_embeddings",
        ))
        .unwrap();
        check(&configured("mem0_memories", "p", "r")).unwrap();
    }

    #[test]
    fn the_memory_table_cannot_name_an_application_or_pipeline_table() {
        for table in APPLICATION_TABLES.iter().chain(&PIPELINE_TABLES) {
            let err = refused(table, "product_embeddings", "review_embeddings");
            assert!(err.contains("MEM0_MEMORY_TABLE_NAME"), "{err}");
            assert!(err.contains(table), "{err}");
        }
        // Nor one whose key would be an application table's relation.
        let err = refused("ix_review_id", "product_embeddings", "review_embeddings");
        assert!(err.contains("ix_review_id"), "{err}");
    }

    #[test]
    fn derived_names_fit_in_63_bytes() {
        let at_most = "m".repeat(44);
        check(&configured("memories", &at_most, "review_embeddings")).unwrap();
        for relation in configured("memories", &at_most, "r")[1].relations() {
            assert!(relation.len() <= MAX_IDENTIFIER_BYTES, "{relation}");
        }
        let err = refused("memories", &"m".repeat(45), "review_embeddings");
        assert!(err.contains("DB_EMBEDDING_TABLE_FOR_PRODUCTS"), "{err}");
        assert!(err.contains("at most 44"), "{err}");
        let err = refused(&"m".repeat(59), "p", "r");
        assert!(
            err.contains("MEM0_MEMORY_TABLE_NAME") && err.contains("at most 58"),
            "{err}"
        );
    }

    #[test]
    fn configured_tables_never_meet() {
        let err = refused("memories", "same", "same");
        assert!(err.contains("DB_EMBEDDING_TABLE_FOR_REVIEWS"), "{err}");
        assert!(err.contains("DB_EMBEDDING_TABLE_FOR_PRODUCTS"), "{err}");
        // data_x_embedding_idx is reviews' table and products' vector index.
        let err = refused("memories", "x", "x_embedding_idx");
        assert!(err.contains("public.data_x_embedding_idx"), "{err}");
        // The memory table is an embedding table.
        let err = refused("data_p", "p", "r");
        assert!(err.contains("public.data_p "), "{err}");
    }
}
