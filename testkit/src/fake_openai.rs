//! A stand-in for an OpenAI-compatible (and Azure OpenAI) API, served in
//! this process: `orchestrator bench embeddings` measures the pipeline
//! against it, and tests count and check what reaches the provider with it.
//!
//! Routes (OpenAI's `/v1/…` and Azure's
//! `/openai/deployments/<name>/…?api-version=…`, which also needs the
//! `api-key` header, as Azure does):
//! - `POST …/embeddings`, after a fixed delay, with one random unit vector
//!   per input (the same text always gets the same vector; `dimensions` in
//!   the request is honoured, else the configured default), as floats or
//!   base64 as `encoding_format` asks;
//! - `POST …/chat/completions`: it checks the messages and, when there is a
//!   `response_format` of type `json_schema`, that it is `strict` and that
//!   every object of the schema lists all its properties as required and
//!   forbids others (a 400 with the API's kind of message otherwise); it
//!   answers the scripted contents in turn (`{}` when none is left), with
//!   `usage` counted in words.
//!
//! Failures can be scripted: the next N requests answer with a status, an
//! optional `Retry-After`, any headers (`x-ratelimit-*`) and an error
//! message; headers can be added to every answer.
//!
//! HTTP/1.1 with keep-alive, written directly on tokio: it only has to speak
//! to HTTP clients sending `Content-Length` bodies, and stays cheap enough
//! that the pipeline, not the fake, is what a benchmark measures.

use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Distinct vectors per dimension; texts map onto them by hash.
const POOL: usize = 509;

#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// Time before each answer.
    pub delay: Duration,
    /// Vector length when the request names no `dimensions`.
    pub dims: usize,
    /// Keep every input text (tests); off for benchmarks.
    pub record_texts: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            delay: Duration::from_millis(100),
            dims: 1536,
            record_texts: false,
        }
    }
}

/// A scripted answer for the next requests.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub retry_after_secs: Option<u64>,
    /// More headers, such as `x-ratelimit-reset-requests`.
    pub headers: Vec<(String, String)>,
    pub message: String,
}

/// What one request looked like (the last few are kept).
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

/// Serialised vectors, picked by hash of the input text.
type VectorPool = Arc<Vec<String>>;

struct State {
    options: FakeOptions,
    requests: AtomicU64,
    inputs: AtomicU64,
    failures: Mutex<VecDeque<Failure>>,
    always: Mutex<Option<Failure>>,
    texts: Mutex<Vec<String>>,
    last: Mutex<VecDeque<SeenRequest>>,
    chat_answers: Mutex<VecDeque<String>>,
    answer_headers: Mutex<Vec<(String, String)>>,
    /// Pre-serialised vectors per (dimensions, base64).
    pools: Mutex<HashMap<(usize, bool), VectorPool>>,
}

/// The running server; stops when dropped.
pub struct FakeOpenAi {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOpenAi {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn start(options: FakeOptions) -> std::io::Result<FakeOpenAi> {
        Self::start_on(options, 0).await
    }

    pub async fn start_on(options: FakeOptions, port: u16) -> std::io::Result<FakeOpenAi> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            options,
            requests: AtomicU64::new(0),
            inputs: AtomicU64::new(0),
            failures: Mutex::new(VecDeque::new()),
            always: Mutex::new(None),
            texts: Mutex::new(Vec::new()),
            last: Mutex::new(VecDeque::new()),
            chat_answers: Mutex::new(VecDeque::new()),
            answer_headers: Mutex::new(Vec::new()),
            pools: Mutex::new(HashMap::new()),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Ok(FakeOpenAi { addr, state, task })
    }

    /// `http://127.0.0.1:<port>/v1`, for `OPENAI_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:<port>`, for `AZURE_OPENAI_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests answered (successful or not).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Inputs embedded (in successful answers only).
    pub fn inputs(&self) -> u64 {
        self.state.inputs.load(Ordering::Relaxed)
    }

    /// Every input text embedded so far (with `record_texts`).
    pub fn texts(&self) -> Vec<String> {
        self.state.texts.lock().unwrap().clone()
    }

    /// The last requests received, oldest first.
    pub fn last_requests(&self) -> Vec<SeenRequest> {
        self.state.last.lock().unwrap().iter().cloned().collect()
    }

    /// Resets the counters and the recorded texts.
    pub fn reset_counts(&self) {
        self.state.requests.store(0, Ordering::Relaxed);
        self.state.inputs.store(0, Ordering::Relaxed);
        self.state.texts.lock().unwrap().clear();
    }

    /// The next `times` requests fail with this status.
    pub fn fail_next(
        &self,
        times: usize,
        status: u16,
        retry_after_secs: Option<u64>,
        message: &str,
    ) {
        self.fail_next_with(times, status, retry_after_secs, &[], message);
    }

    /// [`FakeOpenAi::fail_next`] with more headers on the failures.
    pub fn fail_next_with(
        &self,
        times: usize,
        status: u16,
        retry_after_secs: Option<u64>,
        headers: &[(&str, &str)],
        message: &str,
    ) {
        let mut failures = self.state.failures.lock().unwrap();
        for _ in 0..times {
            failures.push_back(Failure {
                status,
                retry_after_secs,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                message: message.to_string(),
            });
        }
    }

    /// The next chat completions answer these contents, in turn.
    pub fn answer_chat(&self, contents: &[&str]) {
        let mut answers = self.state.chat_answers.lock().unwrap();
        answers.extend(contents.iter().map(|c| c.to_string()));
    }

    /// Headers sent with every answer from now on (`x-ratelimit-remaining-*`...).
    pub fn set_answer_headers(&self, headers: &[(&str, &str)]) {
        *self.state.answer_headers.lock().unwrap() = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// Every request fails with this status until [`FakeOpenAi::heal`].
    pub fn fail_always(&self, status: u16, message: &str) {
        *self.state.always.lock().unwrap() = Some(Failure {
            status,
            retry_after_secs: None,
            headers: Vec::new(),
            message: message.to_string(),
        });
    }

    pub fn heal(&self) {
        *self.state.always.lock().unwrap() = None;
        self.state.failures.lock().unwrap().clear();
    }
}

async fn serve(stream: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        let mut length = 0usize;
        let mut close = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
                match name.as_str() {
                    "content-length" => length = value.parse().unwrap_or(0),
                    "connection" if value.eq_ignore_ascii_case("close") => close = true,
                    _ => {}
                }
                headers.push((name, value));
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        let (status, extra, payload) = answer(&state, &method, &path, headers, &body).await;
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            payload.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if close {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        let stream = reader.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(payload.as_bytes()).await?;
        stream.flush().await?;
        if close {
            return Ok(());
        }
    }
}

fn error_body(message: &str, kind: &str) -> String {
    serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
        .to_string()
}

async fn answer(
    state: &State,
    method: &str,
    path: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    {
        let mut last = state.last.lock().unwrap();
        if last.len() >= 16 {
            last.pop_front();
        }
        last.push_back(SeenRequest {
            path: path.to_string(),
            headers: headers.clone(),
            body: parsed.clone(),
        });
    }
    state.requests.fetch_add(1, Ordering::Relaxed);
    if !state.options.delay.is_zero() {
        tokio::time::sleep(state.options.delay).await;
    }
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let is_embeddings = route.ends_with("/embeddings");
    let is_chat = route.ends_with("/chat/completions");
    if method != "POST" || !(is_embeddings || is_chat) {
        return (
            404,
            vec![],
            error_body(
                &format!("no route for {method} {route}"),
                "invalid_request_error",
            ),
        );
    }
    if route.starts_with("/openai/deployments/") {
        if !query.split('&').any(|p| p.starts_with("api-version=")) {
            return (
                404,
                vec![],
                error_body("Resource not found", "invalid_request_error"),
            );
        }
        if !headers.iter().any(|(k, v)| k == "api-key" && !v.is_empty()) {
            return (
                401,
                vec![],
                error_body(
                    "Access denied due to invalid subscription key or wrong API endpoint.",
                    "invalid_request_error",
                ),
            );
        }
    }
    let scripted = state
        .failures
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| state.always.lock().unwrap().clone());
    if let Some(failure) = scripted {
        let mut extra = failure
            .retry_after_secs
            .map(|s| vec![("retry-after".to_string(), s.to_string())])
            .unwrap_or_default();
        extra.extend(failure.headers.iter().cloned());
        let kind = if failure.status == 429 {
            "rate_limit_error"
        } else {
            "invalid_request_error"
        };
        return (failure.status, extra, error_body(&failure.message, kind));
    }
    let answer_headers = state.answer_headers.lock().unwrap().clone();
    if is_chat {
        let (status, body) = chat_answer(state, &parsed);
        return (status, answer_headers, body);
    }
    let inputs: Vec<String> = match parsed.get("input") {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect(),
        _ => {
            return (
                400,
                vec![],
                error_body("'input' is a required property", "invalid_request_error"),
            )
        }
    };
    if inputs.iter().any(|s| s.is_empty()) {
        return (
            400,
            vec![],
            error_body(
                "'$.input' is invalid: empty strings are not accepted",
                "invalid_request_error",
            ),
        );
    }
    let dims = parsed
        .get("dimensions")
        .and_then(|d| d.as_u64())
        .map_or(state.options.dims, |d| d as usize);
    let base64 = parsed.get("encoding_format").and_then(|f| f.as_str()) == Some("base64");
    let pool = vector_pool(state, dims, base64);
    let model = parsed
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or("fake-embedding");
    let mut out = String::with_capacity(inputs.len() * (pool[0].len() + 48) + 128);
    out.push_str(r#"{"object":"list","data":["#);
    let mut tokens = 0usize;
    for (i, text) in inputs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        tokens += text.split_whitespace().count().max(1);
        let pick = (fnv1a(text.as_bytes()) % POOL as u64) as usize;
        out.push_str(&format!(
            r#"{{"object":"embedding","index":{i},"embedding":"#
        ));
        out.push_str(&pool[pick]);
        out.push('}');
    }
    out.push_str(&format!(
        r#"],"model":{},"usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}}}"#,
        serde_json::Value::String(model.to_string())
    ));
    state
        .inputs
        .fetch_add(inputs.len() as u64, Ordering::Relaxed);
    if state.options.record_texts {
        state.texts.lock().unwrap().extend(inputs);
    }
    (200, answer_headers, out)
}

/// A chat completion, after checking the request as the API does.
fn chat_answer(state: &State, request: &serde_json::Value) -> (u16, String) {
    let invalid = |message: String| (400, error_body(&message, "invalid_request_error"));
    let Some(messages) = request.get("messages").and_then(|m| m.as_array()) else {
        return invalid("'messages' is a required property".into());
    };
    if messages.is_empty() {
        return invalid("'messages' must not be empty".into());
    }
    let mut prompt_tokens = 0usize;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(|r| r.as_str()).unwrap_or_default();
        if !["system", "user", "assistant", "developer"].contains(&role) {
            return invalid(format!("Invalid value for 'messages[{i}].role': {role:?}"));
        }
        let Some(content) = m.get("content").and_then(|c| c.as_str()) else {
            return invalid(format!("'messages[{i}].content' must be a string"));
        };
        prompt_tokens += content.split_whitespace().count();
    }
    if let Some(format) = request.get("response_format") {
        if let Err(message) = check_response_format(format) {
            return invalid(message);
        }
    }
    let content = state
        .chat_answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| "{}".to_string());
    let completion_tokens = content.split_whitespace().count().max(1);
    let model = request
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or("fake-chat");
    let body = serde_json::json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    });
    (200, body.to_string())
}

/// What the API demands of a structured-output request.
fn check_response_format(format: &serde_json::Value) -> Result<(), String> {
    match format.get("type").and_then(|t| t.as_str()) {
        Some("text") | Some("json_object") => return Ok(()),
        Some("json_schema") => {}
        other => {
            return Err(format!(
                "Invalid value for 'response_format.type': {other:?}"
            ))
        }
    }
    let schema = format
        .get("json_schema")
        .ok_or("Missing required parameter: 'response_format.json_schema'")?;
    if schema
        .get("name")
        .and_then(|n| n.as_str())
        .is_none_or(str::is_empty)
    {
        return Err("Missing required parameter: 'response_format.json_schema.name'".into());
    }
    if schema.get("strict") != Some(&serde_json::Value::Bool(true)) {
        return Err("this fake only accepts strict structured outputs: 'response_format.json_schema.strict' must be true".into());
    }
    let body = schema
        .get("schema")
        .ok_or("Missing required parameter: 'response_format.json_schema.schema'")?;
    check_strict_object(body, "schema")
}

/// Strict mode: every object lists all its properties in `required` and
/// sets `additionalProperties: false`, down the whole schema.
fn check_strict_object(schema: &serde_json::Value, at: &str) -> Result<(), String> {
    let Some(object) = schema.as_object() else {
        return Ok(());
    };
    if let Some(properties) = object.get("properties").and_then(|p| p.as_object()) {
        if object.get("additionalProperties") != Some(&serde_json::Value::Bool(false)) {
            return Err(format!(
                "Invalid schema for response_format: In context=({at}), 'additionalProperties' is required to be supplied and to be false."
            ));
        }
        let required: Vec<&str> = object
            .get("required")
            .and_then(|r| r.as_array())
            .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        for name in properties.keys() {
            if !required.contains(&name.as_str()) {
                return Err(format!(
                    "Invalid schema for response_format: In context=({at}), 'required' is required to be supplied and to be an array including every key in properties. Missing '{name}'."
                ));
            }
        }
    }
    for (key, value) in object {
        match value {
            serde_json::Value::Object(_) => check_strict_object(value, &format!("{at}, {key}"))?,
            serde_json::Value::Array(items) => {
                for item in items {
                    check_strict_object(item, &format!("{at}, {key}"))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= *b as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Random unit vectors of `dims`, serialised once (JSON array, or a JSON
/// string of base64 little-endian floats).
fn vector_pool(state: &State, dims: usize, base64: bool) -> VectorPool {
    let mut pools = state.pools.lock().unwrap();
    pools
        .entry((dims, base64))
        .or_insert_with(|| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(dims as u64);
            Arc::new(
                (0..POOL)
                    .map(|_| {
                        let mut v: Vec<f32> =
                            (0..dims).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
                        let norm = v
                            .iter()
                            .map(|x| x * x)
                            .sum::<f32>()
                            .sqrt()
                            .max(f32::MIN_POSITIVE);
                        v.iter_mut().for_each(|x| *x /= norm);
                        if base64 {
                            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                            format!("\"{}\"", encode_base64(&bytes))
                        } else {
                            serde_json::to_string(&v).expect("floats serialise")
                        }
                    })
                    .collect(),
            )
        })
        .clone()
}

fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = match chunk.len() {
            3 => ((chunk[0] as u32) << 16) | ((chunk[1] as u32) << 8) | chunk[2] as u32,
            2 => ((chunk[0] as u32) << 16) | ((chunk[1] as u32) << 8),
            _ => (chunk[0] as u32) << 16,
        };
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_schemas_need_every_property_required_and_no_others() {
        let format = |schema: serde_json::Value, strict: bool| {
            serde_json::json!({"type": "json_schema",
                "json_schema": {"name": "answer", "strict": strict, "schema": schema}})
        };
        let good = serde_json::json!({"type": "object", "additionalProperties": false,
            "required": ["items"], "properties": {"items": {"type": "array", "items": {
                "type": "object", "additionalProperties": false, "required": ["a"],
                "properties": {"a": {"type": ["string", "null"]}}}}}});
        assert_eq!(check_response_format(&format(good.clone(), true)), Ok(()));
        assert!(check_response_format(&format(good, false)).is_err());
        let loose_inner = serde_json::json!({"type": "object", "additionalProperties": false,
            "required": ["items"], "properties": {"items": {"type": "array", "items": {
                "type": "object", "required": [], "properties": {"a": {"type": "string"}}}}}});
        let err = check_response_format(&format(loose_inner, true)).unwrap_err();
        assert!(err.contains("additionalProperties"), "{err}");
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(encode_base64(b"Man"), "TWFu");
        assert_eq!(encode_base64(b"Ma"), "TWE=");
        assert_eq!(encode_base64(b"M"), "TQ==");
    }
}
