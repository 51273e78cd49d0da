//! Task messages and task states.
//!
//! A message carries only what a worker needs to find its task row and to
//! route it: the database is the source of truth for the task's payload,
//! status and attempts, so a message published twice, or redelivered after a
//! crash, never carries stale state.

use crate::catalogue::Role;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskMessage {
    pub task_id: i64,
    pub revision: String,
    pub role: Role,
    pub kind: String,
    /// The identity of the database the task belongs to
    /// (`pipeline.identity`), stamped by the publisher; a worker of another
    /// database dead-letters the message. Absent: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<uuid::Uuid>,
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("message body is not a task: {0}")]
    Malformed(String),
    #[error("message names unknown revision {0:?}")]
    UnknownRevision(String),
    #[error("message for role {message} arrived on the {queue} queue")]
    WrongQueue { message: Role, queue: Role },
}

impl TaskMessage {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a task message always serialises")
    }

    /// Parses and checks a delivery from the queue of `queue_role`;
    /// `known` says which revision ids this worker runs (its registry).
    pub fn parse(
        body: &[u8],
        queue_role: Role,
        known: impl Fn(&str) -> bool,
    ) -> Result<TaskMessage, MessageError> {
        let msg: TaskMessage =
            serde_json::from_slice(body).map_err(|e| MessageError::Malformed(e.to_string()))?;
        if !known(&msg.revision) {
            return Err(MessageError::UnknownRevision(msg.revision));
        }
        if msg.role != queue_role {
            return Err(MessageError::WrongQueue {
                message: msg.role,
                queue: queue_role,
            });
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(id: &str) -> bool {
        id == crate::catalogue::SCHEMA
    }

    #[test]
    fn poison_bodies_are_rejected_with_a_reason() {
        assert!(matches!(
            TaskMessage::parse(b"not json", Role::Seed, known),
            Err(MessageError::Malformed(_))
        ));
        let unknown = br#"{"task_id":1,"revision":"deadbeef","role":"seed","kind":"x"}"#;
        assert!(matches!(
            TaskMessage::parse(unknown, Role::Seed, known),
            Err(MessageError::UnknownRevision(_))
        ));
        let wrong_role = br#"{"task_id":1,"revision":"1b33292593a9","role":"oracle","kind":"x"}"#;
        assert!(matches!(
            TaskMessage::parse(wrong_role, Role::Seed, known),
            Err(MessageError::Malformed(_))
        ));
        let ok = TaskMessage {
            task_id: 7,
            revision: crate::catalogue::SCHEMA.into(),
            role: Role::Seed,
            kind: "upgrade".into(),
            database: Some(uuid::Uuid::from_u128(7)),
        };
        assert_eq!(
            TaskMessage::parse(&ok.to_bytes(), Role::Seed, known).unwrap(),
            ok
        );
    }
}
