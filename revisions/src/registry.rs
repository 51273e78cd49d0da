//! The chain: every revision this version runs, one line each, in chain
//! order, with the ids Alembic uses, so that `alembic_version` means the same
//! thing to both tools. "Available" means "registered here": adding a
//! revision is its folder plus its line below.
//!
//! A line names the revision's folder (`revisions/src/<folder>/`): it
//! declares the folder's module (`crate::registry::<folder>`, re-exported at
//! the crate root) and puts its `REVISION` in [`CHAIN`].

use crate::revision::Revision;
pub use shared::catalogue::Target;

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

/// Whether this id is a revision of the chain.
pub fn is_registered(id: &str) -> bool {
    position(id).is_some()
}

/// Position of a revision in the chain (0-based), or `None` if unknown.
pub fn position(id: &str) -> Option<usize> {
    CHAIN.iter().position(|r| r.id == id)
}

/// The last revision of the chain.
pub fn head() -> &'static Revision {
    CHAIN[CHAIN.len() - 1]
}

/// Resolves what a user typed: a full id, `head` (or `latest`), `base`, a
/// unique id prefix of at least 4 characters, or a revision name.
pub fn resolve(target: &str) -> Result<Target, String> {
    match target {
        "head" | "latest" => return Ok(Target::Revision(CHAIN.len() - 1)),
        "base" => return Ok(Target::Base),
        _ => {}
    }
    if let Some(i) = CHAIN
        .iter()
        .position(|r| r.id == target || r.name == target)
    {
        return Ok(Target::Revision(i));
    }
    let matches: Vec<usize> = CHAIN
        .iter()
        .enumerate()
        .filter(|(_, r)| target.len() >= 4 && r.id.starts_with(target))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [i] => Ok(Target::Revision(*i)),
        _ => Err(format!(
            "unknown revision {target:?}: expected head, base, or one of {}",
            CHAIN
                .iter()
                .map(|r| format!("{} ({})", r.id, r.name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// [`resolve`], and Alembic's relative targets, from the revision the
/// database is at (`current`, an index into the chain; `None`: base): `+N`
/// / `-N`, and `<rev>+N` / `<rev>-N` from any target [`resolve`] takes.
pub fn resolve_at(target: &str, current: Option<usize>) -> Result<Target, String> {
    let relative = target
        .rfind(['+', '-'])
        .and_then(|at| {
            let steps: i64 = target[at + 1..].parse().ok()?;
            let sign = if target.as_bytes()[at] == b'+' { 1 } else { -1 };
            Some((&target[..at], sign * steps))
        })
        .filter(|(_, steps)| *steps != 0);
    let Some((from, steps)) = relative else {
        return resolve(target);
    };
    let from_count = if from.is_empty() {
        current.map_or(0, |i| i + 1)
    } else {
        resolve(from)?.applied_count()
    } as i64;
    let count = from_count + steps;
    if count < 0 || count > CHAIN.len() as i64 {
        let at = if from.is_empty() {
            current.map_or("base", |i| CHAIN[i].id)
        } else {
            from
        };
        return Err(format!(
            "{target:?} goes {} the chain: {at} is {from_count} revision(s) from base, and the chain has {}",
            if count < 0 { "below the start of" } else { "past the end of" },
            CHAIN.len()
        ));
    }
    Ok(match count {
        0 => Target::Base,
        n => Target::Revision(n as usize - 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_is_alembics_and_the_diagnostic_revision_is_not_in_it() {
        let ids: Vec<&str> = CHAIN.iter().map(|r| r.id).collect();
        assert_eq!(
            ids,
            [
                shared::catalogue::EXTENSIONS,
                shared::catalogue::SCHEMA,
                shared::catalogue::SEED,
                shared::catalogue::EMBEDDINGS,
                shared::catalogue::ENRICHMENT,
                shared::catalogue::GRAPH,
            ]
        );
        for revision in DIAGNOSTIC {
            assert!(!is_registered(revision.id));
            assert!(find(revision.id).is_some());
        }
    }

    #[test]
    fn targets_resolve_by_id_prefix_name_head_and_base() {
        assert_eq!(resolve("head"), Ok(Target::Revision(5)));
        assert_eq!(resolve("latest"), Ok(Target::Revision(5)));
        assert_eq!(resolve("base"), Ok(Target::Base));
        assert_eq!(resolve("7a35c0d9d159"), Ok(Target::Revision(0)));
        assert_eq!(resolve("extensions"), Ok(Target::Revision(0)));
        assert_eq!(resolve("1b33292593a9"), Ok(Target::Revision(1)));
        assert_eq!(resolve("ef85"), Ok(Target::Revision(2)));
        assert_eq!(resolve("graph"), Ok(Target::Revision(5)));
        assert!(resolve("zzzz").unwrap_err().contains("unknown revision"));
        assert!(resolve("ef8").is_err(), "a prefix needs 4 characters");
        assert!(
            resolve("bench-noop").is_err(),
            "not a revision of the chain"
        );
    }

    #[test]
    fn relative_targets_count_from_the_current_revision_or_a_named_one() {
        assert_eq!(resolve_at("+1", None), Ok(Target::Revision(0)));
        assert_eq!(resolve_at("+2", Some(1)), Ok(Target::Revision(3)));
        assert_eq!(resolve_at("-1", Some(3)), Ok(Target::Revision(2)));
        assert_eq!(resolve_at("-1", Some(0)), Ok(Target::Base));
        assert_eq!(resolve_at("seed+1", None), Ok(Target::Revision(3)));
        assert_eq!(
            resolve_at("cc30da9b96c1-2", Some(5)),
            Ok(Target::Revision(1))
        );
        assert!(resolve_at("+1", Some(5))
            .unwrap_err()
            .contains("past the end"));
        assert!(resolve_at("-2", Some(0))
            .unwrap_err()
            .contains("below the start"));
        assert_eq!(resolve_at("head", Some(2)), Ok(Target::Revision(5)));
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
