//! Every revision this version can run: one line each, in chain order.
//! "Available" means "registered here"; the catalogue of the Alembic chain
//! (`shared/src/catalogue.rs`) lists the ones this version does not run yet.
//!
//! A line names the revision's folder (`revisions/src/<folder>/`): it
//! declares the folder's module (`crate::registry::<folder>`, re-exported at
//! the crate root) and puts its `REVISION` in [`CHAIN`].

use crate::revision::Revision;
use shared::catalogue::{self, Target};

macro_rules! chain {
    ($($folder:ident => $module:literal,)+) => {
        $(
            #[path = $module]
            pub mod $folder;
        )+
        /// The registered revisions of the chain, in chain order.
        pub static CHAIN: &[&Revision] = &[$(&$folder::REVISION),+];
    };
}

chain! {
    extensions => "extensions/mod.rs",
    schema => "schema/mod.rs",
    seed => "seed/mod.rs",
    embeddings => "embeddings/mod.rs",
    enrichment => "enrichment/mod.rs",
    graph => "graph/mod.rs",
}

/// Not in the chain: the no-op tasks of `orchestrator bench runtime`.
pub static DIAGNOSTIC: &[&Revision] = &[&crate::noop::REVISION];

/// The registered revision of this id (chain or diagnostic).
pub fn find(id: &str) -> Option<&'static Revision> {
    CHAIN.iter().chain(DIAGNOSTIC).copied().find(|r| r.id == id)
}

/// Whether this version can run the revision of the chain with this id.
pub fn is_registered(id: &str) -> bool {
    CHAIN.iter().any(|r| r.id == id)
}

/// What a user typed, resolved against the chain; `latest` is the last
/// registered revision.
pub fn resolve(target: &str) -> Result<Target, String> {
    catalogue::resolve(target, is_registered)
}

/// [`resolve`] with Alembic's relative targets (`+1`, `seed-1`), counted
/// from `current` (an index into the chain; `None`: base).
pub fn resolve_at(target: &str, current: Option<usize>) -> Result<Target, String> {
    catalogue::resolve_at(target, current, is_registered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_revisions_are_the_start_of_the_chain_in_order() {
        for (i, revision) in CHAIN.iter().enumerate() {
            assert_eq!(
                catalogue::REVISIONS[i].id,
                revision.id,
                "registry line {i} is out of chain order"
            );
        }
        for revision in DIAGNOSTIC {
            assert!(catalogue::find(revision.id).is_none());
            assert!(!is_registered(revision.id));
        }
    }

    #[test]
    fn latest_is_the_last_registered_revision() {
        assert_eq!(resolve("latest"), Ok(Target::Revision(CHAIN.len() - 1)));
        assert_eq!(
            resolve("head"),
            Ok(Target::Revision(catalogue::REVISIONS.len() - 1))
        );
    }

    /// Every table and named index the chain (or the pipeline) creates, read
    /// from the SQL and Rust sources, is one that `shared::table_names`
    /// keeps configured table names away from: a table added to a revision
    /// without adding it there fails here.
    #[test]
    fn every_table_the_chain_creates_is_reserved_from_configured_names() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = vec![root.join("shared/sql/pipeline.sql")];
        let mut dirs = vec![root.join("revisions/src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "sql" || e == "rs") {
                    files.push(path);
                }
            }
        }
        let mut found = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let words: Vec<&str> = text
                .split_whitespace()
                .map(|w| w.trim_matches(['"', '(', ')', ';', ',']))
                .collect();
            for i in 1..words.len() {
                let created = words[i - 1] == "CREATE"
                    || (i >= 2
                        && matches!(words[i - 1], "UNIQUE" | "UNLOGGED")
                        && words[i - 2] == "CREATE");
                if !created || !matches!(words[i], "TABLE" | "INDEX") {
                    continue;
                }
                let mut rest = words[i + 1..].iter().copied();
                let mut name = rest.next().unwrap_or("");
                if name == "IF" {
                    name = rest.nth(2).unwrap_or("");
                }
                let bare = if words[i] == "TABLE" {
                    name.strip_prefix("public.")
                        .or_else(|| name.strip_prefix("pipeline."))
                } else {
                    // An index lives in its table's schema: only public's matter.
                    (rest.next() == Some("ON")
                        && rest.next().is_some_and(|t| t.starts_with("public.")))
                    .then_some(name)
                };
                // Names built at run time ({...}) come from configured or
                // per-run names, checked elsewhere.
                let Some(bare) = bare.filter(|b| !b.contains('{')) else {
                    continue;
                };
                found += 1;
                assert!(
                    shared::table_names::reserved(bare).is_some(),
                    "{} creates {name}, which shared::table_names does not reserve",
                    file.display()
                );
            }
        }
        assert!(found > 20, "only {found} names found: the scan is broken");
    }
}
