//! The revision catalogue: the five revisions of the original Alembic chain,
//! in order, with the ids Alembic uses so that `alembic_version` means the
//! same thing to both tools.
//!
//! A revision is `available` when this version ships both its planner (in
//! the orchestrator) and its executor (in the workers); `upgrade` refuses to
//! start a path that crosses an unavailable revision.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The worker role that executes a task; one queue per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Seed,
    Embed,
    Enrich,
    Graph,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Seed, Role::Embed, Role::Enrich, Role::Graph];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Seed => "seed",
            Role::Embed => "embed",
            Role::Enrich => "enrich",
            Role::Graph => "graph",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: expected seed, embed, enrich or graph"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    pub id: &'static str,
    pub name: &'static str,
    /// What it does, in one line (`history`).
    pub summary: &'static str,
    pub available: bool,
}

pub const SCHEMA: &str = "1b33292593a9";
pub const SEED: &str = "ef85393336cb";
pub const EMBEDDINGS: &str = "cc30da9b96c1";
pub const ENRICHMENT: &str = "f3e916f4940d";
pub const GRAPH: &str = "f41ba96cab17";

/// Not a revision of the chain: the no-op tasks of `orchestrator bench
/// runtime`, which measure the pipeline's own overhead.
pub const BENCH_NOOP: &str = "bench-noop";

pub const REVISIONS: [Revision; 5] = [
    Revision {
        id: SCHEMA,
        name: "schema",
        summary: "tables, enum, foreign keys and indexes of the application",
        available: true,
    },
    Revision {
        id: SEED,
        name: "seed",
        summary: "load the CSV files of the data directory; preferences become memories",
        available: true,
    },
    Revision {
        id: EMBEDDINGS,
        name: "embeddings",
        summary: "vectors for products, reviews and memories, with an ANN index",
        available: true,
    },
    Revision {
        id: ENRICHMENT,
        name: "enrichment",
        summary: "feature and sentiment of each review, by AI",
        available: false,
    },
    Revision {
        id: GRAPH,
        name: "graph",
        summary: "Apache AGE graph of products, reviews and features",
        available: false,
    },
];

/// Position of a revision in the chain (0-based), or `None` if unknown.
pub fn position(id: &str) -> Option<usize> {
    REVISIONS.iter().position(|r| r.id == id)
}

pub fn find(id: &str) -> Option<&'static Revision> {
    REVISIONS.iter().find(|r| r.id == id)
}

/// Resolves what a user typed: a full id, `head`, `base`, `latest` (the last
/// revision this version can run), a unique id prefix of at least 4
/// characters, or a revision name.
pub fn resolve(target: &str) -> Result<Target, String> {
    match target {
        "head" => return Ok(Target::Revision(REVISIONS.len() - 1)),
        "base" => return Ok(Target::Base),
        "latest" => {
            let available = REVISIONS.iter().take_while(|r| r.available).count();
            return Ok(match available {
                0 => Target::Base,
                n => Target::Revision(n - 1),
            });
        }
        _ => {}
    }
    if let Some(i) = REVISIONS
        .iter()
        .position(|r| r.id == target || r.name == target)
    {
        return Ok(Target::Revision(i));
    }
    let matches: Vec<usize> = REVISIONS
        .iter()
        .enumerate()
        .filter(|(_, r)| target.len() >= 4 && r.id.starts_with(target))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [i] => Ok(Target::Revision(*i)),
        _ => Err(format!(
            "unknown revision {target:?}: expected head, base, or one of {}",
            REVISIONS
                .iter()
                .map(|r| format!("{} ({})", r.id, r.name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Base,
    /// Index into [`REVISIONS`].
    Revision(usize),
}

impl Target {
    /// Number of revisions applied when this target is reached.
    pub fn applied_count(self) -> usize {
        match self {
            Target::Base => 0,
            Target::Revision(i) => i + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_by_id_prefix_name_head_and_base() {
        assert_eq!(resolve("head"), Ok(Target::Revision(4)));
        assert_eq!(resolve("base"), Ok(Target::Base));
        assert_eq!(resolve("1b33292593a9"), Ok(Target::Revision(0)));
        assert_eq!(resolve("ef85"), Ok(Target::Revision(1)));
        assert_eq!(resolve("graph"), Ok(Target::Revision(4)));
        let latest = REVISIONS.iter().take_while(|r| r.available).count();
        assert_eq!(resolve("latest"), Ok(Target::Revision(latest - 1)));
        assert!(resolve("zzzz").unwrap_err().contains("unknown revision"));
    }
}
