//! Names both sides of a task agree on: the worker roles, and the ids of the
//! original Alembic chain's revisions for code that names one of them.
//!
//! The chain itself (its order, names and what each revision does) is the
//! registry, `revisions/src/registry.rs`: a revision is its folder plus one
//! line there.

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

pub const EXTENSIONS: &str = "7a35c0d9d159";
pub const SCHEMA: &str = "1b33292593a9";
pub const SEED: &str = "ef85393336cb";
pub const EMBEDDINGS: &str = "cc30da9b96c1";
pub const ENRICHMENT: &str = "f3e916f4940d";
pub const GRAPH: &str = "f41ba96cab17";

/// Not a revision of the chain: the no-op tasks of `orchestrator bench
/// runtime`, which measure the pipeline's own overhead.
pub const BENCH_NOOP: &str = "bench-noop";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Base,
    /// Index into the chain (`revisions::registry::CHAIN`).
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
