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
}
