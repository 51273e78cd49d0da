//! What a revision's planner produces: ordered phases of independent tasks.
//! The driver (`orchestrator/src/driver.rs`) stores them through
//! [`crate::store`], publishes a phase, waits for it, and moves on.
//!
//! A planned task is made from its revision's typed task enum (serde-tagged
//! by `kind`): the tag becomes the task row's `kind` column and the message's
//! `kind` field, the rest its payload, so a kind string is written once, in
//! the enum, and read back by the executor through
//! [`crate::exec::ClaimedTask::typed`].

use crate::catalogue::Role;
use crate::Config;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Upgrade,
    Downgrade,
    Rerun,
}

impl Direction {
    pub const ALL: [Direction; 3] = [Direction::Upgrade, Direction::Downgrade, Direction::Rerun];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upgrade => "upgrade",
            Direction::Downgrade => "downgrade",
            Direction::Rerun => "rerun",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedTask {
    pub role: Role,
    pub kind: String,
    /// Short human label for progress and errors ("product_reviews.csv records 1–50000").
    pub label: String,
    pub payload: Value,
}

impl PlannedTask {
    /// A task of `role` from a typed task (an enum tagged by `kind`).
    pub fn new<T: Serialize>(role: Role, label: impl Into<String>, task: &T) -> PlannedTask {
        let (kind, payload) = split_kind(task);
        PlannedTask {
            role,
            kind,
            label: label.into(),
            payload,
        }
    }
}

/// Reads a stored task (`kind` column and payload) back as its revision's
/// typed task enum: the inverse of [`PlannedTask::new`].
pub fn typed_task<T: DeserializeOwned>(kind: &str, payload: &Value) -> Result<T, String> {
    let mut tagged = match payload {
        Value::Object(fields) => fields.clone(),
        Value::Null => serde_json::Map::new(),
        other => return Err(format!("the payload is not an object: {other}")),
    };
    tagged.insert("kind".into(), Value::String(kind.to_string()));
    serde_json::from_value(Value::Object(tagged)).map_err(|e| e.to_string())
}

/// Splits a serialised task enum into its `kind` tag and the rest.
fn split_kind<T: Serialize>(task: &T) -> (String, Value) {
    let value = serde_json::to_value(task).expect("a task serialises");
    let Value::Object(mut fields) = value else {
        panic!("a task enum must be tagged with `#[serde(tag = \"kind\")]`, got {value}");
    };
    let kind = match fields.remove("kind") {
        Some(Value::String(kind)) => kind,
        other => {
            panic!("a task enum must be tagged with `#[serde(tag = \"kind\")]`, got {other:?}")
        }
    };
    (kind, Value::Object(fields))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: String,
    pub tasks: Vec<PlannedTask>,
}

impl Phase {
    pub fn new(name: impl Into<String>, tasks: Vec<PlannedTask>) -> Phase {
        Phase {
            name: name.into(),
            tasks,
        }
    }

    /// A plan of one phase holding one task: what most downgrades are.
    pub fn single<T: Serialize>(
        name: impl Into<String>,
        role: Role,
        label: impl Into<String>,
        task: &T,
    ) -> Vec<Phase> {
        vec![Phase::new(name, vec![PlannedTask::new(role, label, task)])]
    }
}

/// What a planner may look at.
pub struct PlanContext<'a> {
    pub config: &'a Config,
    pub pool: &'a PgPool,
    pub direction: Direction,
    pub data_dir: PathBuf,
    /// What a re-run was asked for beyond bringing the revision up to
    /// date (all false for an upgrade or a downgrade).
    pub rerun: RerunFlags,
}

/// What `rerun` may be asked for beyond bringing a revision up to date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RerunFlags {
    /// `--full`: rebuild from scratch (the graph revision).
    pub full: bool,
    /// `--prune`: also delete what disappeared from the source (the seed:
    /// rows gone from the files, and only rows the seed itself loaded).
    pub prune: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Example {
        Finish { source: String },
        Downgrade,
    }

    #[test]
    fn the_kind_tag_becomes_the_kind_and_the_rest_the_payload() {
        let task = PlannedTask::new(
            Role::Embed,
            "reviews",
            &Example::Finish {
                source: "reviews".into(),
            },
        );
        assert_eq!(task.kind, "finish");
        assert_eq!(task.payload, serde_json::json!({"source": "reviews"}));
        let task = PlannedTask::new(Role::Seed, "drop", &Example::Downgrade);
        assert_eq!(task.kind, "downgrade");
        assert_eq!(task.payload, serde_json::json!({}));
    }
}
