//! The Batch API of the fake: files (`POST files` as `multipart/form-data`,
//! `GET files/{id}/content`) and batches (`POST batches`,
//! `GET batches/{id}`), kept in memory.
//!
//! A batch is `validating`, then `in_progress` for as many status reads as
//! [`BatchTiming::pending_polls`] says and at least
//! [`BatchTiming::min_delay`] after its creation; the read after that runs
//! every line of its input file through the fake's chat completions (its
//! checks, auto answers and faults) and finds it `completed`, with an output
//! file (and an error file for lines the checks refused). An input file
//! whose lines are not chat completion requests for this API makes the
//! batch `failed`, with the line and the reason, as the API does.

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// When a batch completes.
#[derive(Debug, Clone, Copy)]
pub struct BatchTiming {
    /// Status reads that still answer `in_progress`.
    pub pending_polls: u32,
    /// Time since the batch was created before it can complete.
    pub min_delay: Duration,
}

impl Default for BatchTiming {
    fn default() -> Self {
        BatchTiming {
            pending_polls: 1,
            min_delay: Duration::ZERO,
        }
    }
}

pub(super) struct StoredFile {
    pub bytes: String,
    pub purpose: String,
}

pub(super) struct StoredBatch {
    pub input_file_id: String,
    pub endpoint: String,
    pub created: Instant,
    pub created_at: u64,
    pub polls: u32,
    pub status: String,
    pub output_file_id: Option<String>,
    pub error_file_id: Option<String>,
    pub errors: Vec<Value>,
    pub counts: (u64, u64, u64),
}

impl StoredBatch {
    pub fn to_json(&self, id: &str) -> Value {
        json!({
            "id": id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": if self.errors.is_empty() { Value::Null } else {
                json!({"object": "list", "data": self.errors})
            },
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "request_counts": {"total": self.counts.0, "completed": self.counts.1, "failed": self.counts.2},
            "metadata": null,
        })
    }
}

#[derive(Default)]
pub(super) struct Store {
    pub files: HashMap<String, StoredFile>,
    pub batches: HashMap<String, StoredBatch>,
    pub next_id: u64,
    pub timing: BatchTiming,
    /// The next batch created fails with this message.
    pub fail_next: Option<String>,
}

impl Store {
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-fake{:06}", self.next_id)
    }
}

/// The two fields of a batch upload: `purpose` and the file (name, content).
pub(super) fn parse_upload(
    content_type: &str,
    body: &[u8],
) -> Result<(String, String, String), String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .filter(|_| content_type.trim_start().starts_with("multipart/form-data"))
        .ok_or("the upload must be multipart/form-data with a boundary")?;
    let body = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let (mut purpose, mut file) = (None, None);
    for part in body.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            return Err("a multipart part without headers".into());
        };
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .unwrap_or_default();
        let field = |name: &str| {
            disposition
                .split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(&format!("{name}=")))
                .map(|v| v.trim_matches('"').to_string())
        };
        match field("name").as_deref() {
            Some("purpose") => purpose = Some(content.to_string()),
            Some("file") => {
                file = Some((
                    field("filename").unwrap_or_else(|| "upload".into()),
                    content.to_string(),
                ))
            }
            _ => {}
        }
    }
    let purpose = purpose.ok_or("'purpose' is a required property")?;
    let (filename, content) = file.ok_or("'file' is a required property")?;
    Ok((purpose, filename, content))
}

/// Why the lines of an input file cannot make a batch for `endpoint`, with
/// the 1-based line, as the API reports it.
pub(super) fn check_input(content: &str, endpoint: &str, azure: bool) -> Result<(), Value> {
    let mut seen = HashSet::new();
    let error = |line: usize, code: &str, message: String| json!({"code": code, "message": message, "param": null, "line": line});
    let mut lines = 0;
    for (i, line) in content.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        lines += 1;
        let value: Value = serde_json::from_str(line)
            .map_err(|e| error(n, "invalid_json_line", format!("not JSON: {e}")))?;
        let custom_id = value
            .get("custom_id")
            .and_then(Value::as_str)
            .ok_or_else(|| error(n, "missing_custom_id", "custom_id is required".into()))?;
        if !seen.insert(custom_id.to_string()) {
            return Err(error(
                n,
                "duplicate_custom_id",
                format!("the custom_id {custom_id:?} is used more than once"),
            ));
        }
        if value.get("method").and_then(Value::as_str) != Some("POST") {
            return Err(error(n, "invalid_method", "method must be POST".into()));
        }
        if value.get("url").and_then(Value::as_str) != Some(endpoint) {
            return Err(error(
                n,
                "invalid_url",
                format!("url must be {endpoint}, the batch's endpoint"),
            ));
        }
        let body = value
            .get("body")
            .filter(|b| b.is_object())
            .ok_or_else(|| error(n, "missing_body", "body is required".into()))?;
        if azure && body.get("model").and_then(Value::as_str).is_none() {
            return Err(error(
                n,
                "model_not_found",
                "body.model must name a global batch deployment".into(),
            ));
        }
    }
    if lines == 0 {
        return Err(error(0, "empty_file", "the input file has no lines".into()));
    }
    Ok(())
}
