//! The revision catalogue: the six revisions of the current original Alembic
//! chain, in order, with the ids Alembic uses so that `alembic_version`
//! means the same thing to both tools, and `history` can list revisions this
//! version does not run yet.
//!
//! Which of them this version can run is not said here: a revision is
//! available when it is registered in `revisions/src/registry.rs`, and
//! `upgrade` refuses to start a path that crosses one that is not.

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

pub const REVISIONS: [Revision; 6] = [
    Revision {
        id: EXTENSIONS,
        name: "extensions",
        summary: "the vector and age extensions (and pg_diskann where the server has it)",
    },
    Revision {
        id: SCHEMA,
        name: "schema",
        summary: "tables, enum, foreign keys and indexes of the application",
    },
    Revision {
        id: SEED,
        name: "seed",
        summary: "load the CSV files of the data directory; preferences become memories",
    },
    Revision {
        id: EMBEDDINGS,
        name: "embeddings",
        summary: "vectors for products, reviews and memories, with an ANN index",
    },
    Revision {
        id: ENRICHMENT,
        name: "enrichment",
        summary: "feature and sentiment of each review, by AI",
    },
    Revision {
        id: GRAPH,
        name: "graph",
        summary: "Apache AGE graph of products, reviews and features",
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
/// revision of the unbroken run from the start of the chain that `runnable`
/// accepts, i.e. the last one this version can reach), a unique id prefix of
/// at least 4 characters, or a revision name.
pub fn resolve(target: &str, runnable: impl Fn(&str) -> bool) -> Result<Target, String> {
    match target {
        "head" => return Ok(Target::Revision(REVISIONS.len() - 1)),
        "base" => return Ok(Target::Base),
        "latest" => {
            let available = REVISIONS.iter().take_while(|r| runnable(r.id)).count();
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

/// [`resolve`], and Alembic's relative targets, from the revision the
/// database is at (`current`, an index; `None`: base): `+N` / `-N`, and
/// `<rev>+N` / `<rev>-N` from any target [`resolve`] takes.
pub fn resolve_at(
    target: &str,
    current: Option<usize>,
    runnable: impl Fn(&str) -> bool,
) -> Result<Target, String> {
    let relative = target
        .rfind(['+', '-'])
        .and_then(|at| {
            let steps: i64 = target[at + 1..].parse().ok()?;
            let sign = if target.as_bytes()[at] == b'+' { 1 } else { -1 };
            Some((&target[..at], sign * steps))
        })
        .filter(|(_, steps)| *steps != 0);
    let Some((from, steps)) = relative else {
        return resolve(target, runnable);
    };
    let from_count = if from.is_empty() {
        current.map_or(0, |i| i + 1)
    } else {
        resolve(from, &runnable)?.applied_count()
    } as i64;
    let count = from_count + steps;
    if count < 0 || count > REVISIONS.len() as i64 {
        let at = if from.is_empty() {
            current.map_or("base", |i| REVISIONS[i].id)
        } else {
            from
        };
        return Err(format!(
            "{target:?} goes {} the chain: {at} is {from_count} revision(s) from base, and the chain has {}",
            if count < 0 { "below the start of" } else { "past the end of" },
            REVISIONS.len()
        ));
    }
    Ok(match count {
        0 => Target::Base,
        n => Target::Revision(n as usize - 1),
    })
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
        let all = |_: &str| true;
        assert_eq!(resolve("head", all), Ok(Target::Revision(5)));
        assert_eq!(resolve("base", all), Ok(Target::Base));
        assert_eq!(resolve("7a35c0d9d159", all), Ok(Target::Revision(0)));
        assert_eq!(resolve("extensions", all), Ok(Target::Revision(0)));
        assert_eq!(resolve("1b33292593a9", all), Ok(Target::Revision(1)));
        assert_eq!(resolve("ef85", all), Ok(Target::Revision(2)));
        assert_eq!(resolve("graph", all), Ok(Target::Revision(5)));
        assert!(resolve("zzzz", all)
            .unwrap_err()
            .contains("unknown revision"));
        assert!(resolve("ef8", all).is_err(), "a prefix needs 4 characters");
    }

    #[test]
    fn relative_targets_count_from_the_current_revision_or_a_named_one() {
        let all = |_: &str| true;
        assert_eq!(resolve_at("+1", None, all), Ok(Target::Revision(0)));
        assert_eq!(resolve_at("+2", Some(1), all), Ok(Target::Revision(3)));
        assert_eq!(resolve_at("-1", Some(3), all), Ok(Target::Revision(2)));
        assert_eq!(resolve_at("-1", Some(0), all), Ok(Target::Base));
        assert_eq!(resolve_at("seed+1", None, all), Ok(Target::Revision(3)));
        assert_eq!(
            resolve_at("cc30da9b96c1-2", Some(5), all),
            Ok(Target::Revision(1))
        );
        assert!(resolve_at("+1", Some(5), all)
            .unwrap_err()
            .contains("past the end"));
        assert!(resolve_at("-2", Some(0), all)
            .unwrap_err()
            .contains("below the start"));
        assert_eq!(resolve_at("head", Some(2), all), Ok(Target::Revision(5)));
    }

    #[test]
    fn latest_is_the_last_runnable_revision_before_the_first_gap() {
        let first_four = |id: &str| position(id).is_some_and(|i| i < 4);
        assert_eq!(resolve("latest", first_four), Ok(Target::Revision(3)));
        let with_a_gap = |id: &str| id != SCHEMA;
        assert_eq!(resolve("latest", with_a_gap), Ok(Target::Revision(0)));
        assert_eq!(resolve("latest", |_: &str| false), Ok(Target::Base));
    }
}
