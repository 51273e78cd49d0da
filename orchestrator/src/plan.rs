//! What a revision's planner produces: ordered phases of independent tasks.
//! The driver stores them, publishes a phase, waits for it, and moves on.

use serde::Serialize;
use serde_json::Value;
use shared::catalogue::Role;
use shared::Config;
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
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upgrade => "upgrade",
            Direction::Downgrade => "downgrade",
            Direction::Rerun => "rerun",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedTask {
    pub role: Role,
    pub kind: String,
    /// Short human label for progress and errors ("product_reviews.csv records 1–50000").
    pub label: String,
    pub payload: Value,
}

#[derive(Debug, Clone, Serialize)]
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
}

/// What a planner may look at.
pub struct PlanContext<'a> {
    pub config: &'a Config,
    pub pool: &'a PgPool,
    pub direction: Direction,
    pub data_dir: PathBuf,
}

impl PlannedTask {
    pub fn new(role: Role, kind: &str, label: impl Into<String>, payload: Value) -> PlannedTask {
        PlannedTask {
            role,
            kind: kind.to_string(),
            label: label.into(),
            payload,
        }
    }
}
