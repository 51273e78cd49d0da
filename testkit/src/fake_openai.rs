//! A stand-in for an OpenAI-compatible (and Azure OpenAI) API, served in
//! this process: `orchestrator bench embeddings` and `bench enrich-llm`
//! measure the pipeline against it, and tests count and check what reaches
//! the provider with it.
//!
//! Routes (OpenAI's `/v1/…` and Azure's `/openai/…?api-version=…`, which
//! also needs the `api-key` header, as Azure does):
//! - `POST …/embeddings`, after a fixed delay, with one random unit vector
//!   per input (the same text always gets the same vector; `dimensions` in
//!   the request is honoured, else the configured default), as floats or
//!   base64 as `encoding_format` asks;
//! - `POST …/chat/completions`, after the same delay: it checks the
//!   messages and, when there is a `response_format` of type `json_schema`,
//!   that it is `strict` and that every object of the schema lists all its
//!   properties as required and forbids others (a 400 with the API's kind
//!   of message otherwise); it answers the scripted contents in turn, then
//!   `{}` — or, once [`FakeOpenAi::answer_chat_automatically`] is called, a
//!   valid instance of the request's schema ([`answers`]), with the faults a
//!   test asks for ([`ChatFault`]); `usage` is counted in words;
//! - the Batch API ([`batch`]): `POST files`, `GET files/{id}/content`,
//!   `POST batches`, `GET batches/{id}`, without the delay.
//!
//! Failures can be scripted: the next N requests answer with a status, an
//! optional `Retry-After`, any headers (`x-ratelimit-*`) and an error
//! message; headers can be added to every answer; and a rate-limit window
//! ([`FakeOpenAi::rate_limit_window`]) answers every model request with 429
//! for a while, with `Retry-After` and `x-ratelimit-*` saying until when.
//!
//! HTTP/1.1 with keep-alive, written directly on tokio: it only has to speak
//! to HTTP clients sending `Content-Length` bodies, and stays cheap enough
//! that the pipeline, not the fake, is what a benchmark measures.

pub mod answers;
pub mod batch;

pub use answers::ChatFault;
pub use batch::BatchTiming;

use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    started: Instant,
    chat: Mutex<ChatState>,
    chat_auto: AtomicBool,
    chat_requests: AtomicU64,
    chat_in_flight: AtomicUsize,
    /// Delays of the next model requests, instead of the usual one.
    slow: Mutex<VecDeque<Duration>>,
    window: Mutex<RateWindow>,
    batches: Mutex<batch::Store>,
    batch_submissions: AtomicU64,
}

#[derive(Default)]
struct ChatState {
    /// Faults of the next automatic answers, one each, on its first review.
    next_faults: VecDeque<ChatFault>,
    /// Faults on a review in every automatic answer that holds it.
    review_faults: HashMap<String, ChatFault>,
    /// The review ids of every chat request, in the order they came.
    reviews_asked: Vec<String>,
    /// Chat requests in flight when each one came, with when it came.
    arrivals: Vec<(Duration, usize)>,
    max_in_flight: usize,
}

/// Every model request between `start` and `start + length` is refused
/// with 429; the window opens when a request comes after `after_requests`.
#[derive(Default)]
struct RateWindow {
    armed: Option<(u64, Duration)>,
    open: Option<(Instant, Duration)>,
    refused: u64,
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
            started: Instant::now(),
            chat: Mutex::new(ChatState::default()),
            chat_auto: AtomicBool::new(false),
            chat_requests: AtomicU64::new(0),
            chat_in_flight: AtomicUsize::new(0),
            slow: Mutex::new(VecDeque::new()),
            window: Mutex::new(RateWindow::default()),
            batches: Mutex::new(batch::Store::default()),
            batch_submissions: AtomicU64::new(0),
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

    /// The next `times` model requests take `delay` to answer (longer than
    /// a client's time-out: a time-out).
    pub fn slow_next(&self, times: usize, delay: Duration) {
        let mut slow = self.state.slow.lock().unwrap();
        slow.extend(std::iter::repeat_n(delay, times));
    }

    /// Chat completions with no scripted content left answer a valid
    /// instance of their schema (see [`answers`]) instead of `{}`.
    pub fn answer_chat_automatically(&self) {
        self.state.chat_auto.store(true, Ordering::Relaxed);
    }

    /// The next `times` automatic answers have `fault` on their first
    /// review (in key order); [`ChatFault::Malformed`] spoils the whole text.
    pub fn fault_next_chat(&self, times: usize, fault: ChatFault) {
        let mut chat = self.state.chat.lock().unwrap();
        chat.next_faults.extend(std::iter::repeat_n(fault, times));
    }

    /// Every automatic answer holding review `id` has `fault` on it.
    pub fn fault_review(&self, id: impl ToString, fault: ChatFault) {
        let mut chat = self.state.chat.lock().unwrap();
        chat.review_faults.insert(id.to_string(), fault);
    }

    pub fn clear_faults(&self) {
        let mut chat = self.state.chat.lock().unwrap();
        chat.next_faults.clear();
        chat.review_faults.clear();
    }

    /// The review ids (the keys of the schema's `reviews`) of every chat
    /// request received so far, batch lines included, in arrival order; an
    /// id asked twice is there twice.
    pub fn reviews_asked(&self) -> Vec<String> {
        self.state.chat.lock().unwrap().reviews_asked.clone()
    }

    /// Chat requests received (over HTTP; batch lines not counted).
    pub fn chat_requests(&self) -> u64 {
        self.state.chat_requests.load(Ordering::Relaxed)
    }

    /// The most chat requests that were in flight at once.
    pub fn max_chat_in_flight(&self) -> usize {
        self.state.chat.lock().unwrap().max_in_flight
    }

    /// For each chat request, when it came (since the server started) and
    /// how many were in flight with it.
    pub fn chat_arrivals(&self) -> Vec<(Duration, usize)> {
        self.state.chat.lock().unwrap().arrivals.clone()
    }

    /// Once `after_requests` model requests (chat or embeddings) have come,
    /// every one for `length` is refused with 429, `retry-after-ms` and
    /// `Retry-After` saying when the window closes, and
    /// `x-ratelimit-remaining-requests: 0` with the matching reset.
    pub fn rate_limit_window(&self, after_requests: u64, length: Duration) {
        let mut window = self.state.window.lock().unwrap();
        window.armed = Some((after_requests, length));
        window.open = None;
        window.refused = 0;
    }

    /// When the rate-limit window opened (since the server started), how
    /// long it lasted, and how many requests it refused.
    pub fn rate_limit_window_seen(&self) -> Option<(Duration, Duration, u64)> {
        let window = self.state.window.lock().unwrap();
        window
            .open
            .map(|(at, length)| (at - self.state.started, length, window.refused))
    }

    /// When batches complete (default: the second status read).
    pub fn set_batch_timing(&self, timing: BatchTiming) {
        self.state.batches.lock().unwrap().timing = timing;
    }

    /// The next batch created fails as a whole with this message.
    pub fn fail_next_batch(&self, message: &str) {
        self.state.batches.lock().unwrap().fail_next = Some(message.to_string());
    }

    /// Batches created (`POST batches` that succeeded).
    pub fn batch_submissions(&self) -> u64 {
        self.state.batch_submissions.load(Ordering::Relaxed)
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

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Embeddings,
    Chat,
    Upload,
    FileContent(String),
    CreateBatch,
    Batch(String),
}

impl Route {
    /// The route of `method path` (without the query), and whether it is
    /// Azure's (`/openai/…`).
    fn parse(method: &str, path: &str) -> Option<(Route, bool)> {
        let azure = path.starts_with("/openai/");
        if method == "POST" && path.ends_with("/embeddings") {
            return Some((Route::Embeddings, azure));
        }
        if method == "POST" && path.ends_with("/chat/completions") {
            return Some((Route::Chat, azure));
        }
        let rest = if azure {
            &path["/openai".len()..]
        } else {
            path.strip_prefix("/v1").unwrap_or(path)
        };
        let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
        let route = match (method, segments.as_slice()) {
            ("POST", ["files"]) => Route::Upload,
            ("GET", ["files", id, "content"]) => Route::FileContent(id.to_string()),
            ("POST", ["batches"]) => Route::CreateBatch,
            ("GET", ["batches", id]) => Route::Batch(id.to_string()),
            _ => return None,
        };
        Some((route, azure))
    }

    fn is_model(&self) -> bool {
        matches!(self, Route::Embeddings | Route::Chat)
    }
}

/// Counts a chat request in flight while it lives.
struct InFlight<'a>(&'a State);

impl<'a> InFlight<'a> {
    fn enter(state: &'a State) -> Self {
        let now = state.chat_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let mut chat = state.chat.lock().unwrap();
        chat.arrivals.push((state.started.elapsed(), now));
        chat.max_in_flight = chat.max_in_flight.max(now);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.chat_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An answer: status, headers beyond the usual ones, body.
type Reply = (u16, Vec<(String, String)>, String);

/// The 429 of an open rate-limit window, if this request falls in one.
fn rate_limited(state: &State) -> Option<Reply> {
    let mut window = state.window.lock().unwrap();
    let now = Instant::now();
    if let Some((after, length)) = window.armed {
        if state.requests.load(Ordering::Relaxed) > after {
            window.armed = None;
            window.open = Some((now, length));
        }
    }
    let (opened, length) = window.open?;
    let left = (opened + length).checked_duration_since(now)?;
    window.refused += 1;
    let ms = left.as_millis().max(1);
    let headers = vec![
        ("retry-after-ms".to_string(), ms.to_string()),
        ("retry-after".to_string(), ms.div_ceil(1000).to_string()),
        (
            "x-ratelimit-remaining-requests".to_string(),
            "0".to_string(),
        ),
        ("x-ratelimit-reset-requests".to_string(), format!("{ms}ms")),
    ];
    Some((
        429,
        headers,
        error_body(
            "Rate limit reached for requests. Please try again later.",
            "rate_limit_error",
        ),
    ))
}

async fn answer(
    state: &State,
    method: &str,
    path: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
) -> Reply {
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
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let Some((kind, azure)) = Route::parse(method, route) else {
        return (
            404,
            vec![],
            error_body(
                &format!("no route for {method} {route}"),
                "invalid_request_error",
            ),
        );
    };
    let _in_flight = (kind == Route::Chat).then(|| {
        state.chat_requests.fetch_add(1, Ordering::Relaxed);
        InFlight::enter(state)
    });
    if kind.is_model() {
        // A rate limit answers at once: no answer is generated.
        if let Some(refused) = rate_limited(state) {
            return refused;
        }
        let delay = state.slow.lock().unwrap().pop_front();
        let delay = delay.unwrap_or(state.options.delay);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    if azure {
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
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let (status, body) = match kind {
        Route::Chat => chat_answer(state, &parsed),
        Route::Embeddings => embeddings_answer(state, &parsed),
        Route::Upload => upload(state, content_type, body),
        Route::FileContent(id) => file_content(state, &id),
        Route::CreateBatch => create_batch(state, &parsed, azure),
        Route::Batch(id) => read_batch(state, &id),
    };
    (status, answer_headers, body)
}

fn embeddings_answer(state: &State, parsed: &serde_json::Value) -> (u16, String) {
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
                error_body("'input' is a required property", "invalid_request_error"),
            )
        }
    };
    if inputs.iter().any(|s| s.is_empty()) {
        return (
            400,
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
    (200, out)
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
    let schema = request.pointer("/response_format/json_schema/schema");
    let keys = schema.map(answers::review_keys).unwrap_or_default();
    state
        .chat
        .lock()
        .unwrap()
        .reviews_asked
        .extend(keys.iter().cloned());
    let scripted = state.chat_answers.lock().unwrap().pop_front();
    let content = match (scripted, schema) {
        (Some(content), _) => content,
        (None, Some(schema)) if state.chat_auto.load(Ordering::Relaxed) => {
            automatic_answer(state, schema, &keys)
        }
        (None, _) => "{}".to_string(),
    };
    // About four characters a token, as the models' tokenisers count JSON.
    let completion_tokens = content.len().div_ceil(4).max(1);
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

/// A valid instance of `schema`, with the faults asked for on its reviews.
fn automatic_answer(state: &State, schema: &serde_json::Value, keys: &[String]) -> String {
    let mut answer = answers::instance(schema, schema);
    let mut faults: Vec<(String, ChatFault)> = Vec::new();
    {
        let mut chat = state.chat.lock().unwrap();
        if let Some(first) = keys.first() {
            if let Some(fault) = chat.next_faults.pop_front() {
                faults.push((first.clone(), fault));
            }
        }
        for key in keys {
            if let Some(fault) = chat.review_faults.get(key) {
                faults.push((key.clone(), *fault));
            }
        }
    }
    for (key, fault) in faults {
        if answers::apply_fault(&mut answer, &key, fault).is_none() {
            return answers::malformed(&answer);
        }
    }
    answer.to_string()
}

/// `POST files`: a batch input file, kept as it came.
fn upload(state: &State, content_type: &str, body: &[u8]) -> (u16, String) {
    let invalid = |message: String| (400, error_body(&message, "invalid_request_error"));
    let (purpose, filename, content) = match batch::parse_upload(content_type, body) {
        Ok(parts) => parts,
        Err(message) => return invalid(message),
    };
    if purpose != "batch" {
        return invalid(format!(
            "this fake only takes batch input files, not purpose {purpose:?}"
        ));
    }
    if let Some((n, e)) = content
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .find_map(|(n, l)| {
            serde_json::from_str::<serde_json::Value>(l)
                .err()
                .map(|e| (n, e))
        })
    {
        return invalid(format!("the file is not JSONL: line {}: {e}", n + 1));
    }
    let mut store = state.batches.lock().unwrap();
    let id = store.new_id("file");
    let bytes = content.len();
    store.files.insert(
        id.clone(),
        batch::StoredFile {
            bytes: content,
            purpose: purpose.clone(),
        },
    );
    let body = serde_json::json!({
        "id": id, "object": "file", "bytes": bytes, "created_at": unix_now(),
        "filename": filename, "purpose": purpose, "status": "processed",
    });
    (200, body.to_string())
}

fn file_content(state: &State, id: &str) -> (u16, String) {
    match state.batches.lock().unwrap().files.get(id) {
        Some(file) => (200, file.bytes.clone()),
        None => (
            404,
            error_body(
                &format!("No such File object: {id}"),
                "invalid_request_error",
            ),
        ),
    }
}

/// `POST batches`: a batch of chat completions on an uploaded file.
fn create_batch(state: &State, request: &serde_json::Value, azure: bool) -> (u16, String) {
    let invalid = |message: String| (400, error_body(&message, "invalid_request_error"));
    let endpoint = if azure {
        "/chat/completions"
    } else {
        "/v1/chat/completions"
    };
    let Some(input) = request.get("input_file_id").and_then(|v| v.as_str()) else {
        return invalid("'input_file_id' is a required property".into());
    };
    if request.get("endpoint").and_then(|v| v.as_str()) != Some(endpoint) {
        return invalid(format!(
            "'endpoint' must be {endpoint} for chat completions"
        ));
    }
    if request.get("completion_window").and_then(|v| v.as_str()) != Some("24h") {
        return invalid("'completion_window' must be 24h".into());
    }
    let mut store = state.batches.lock().unwrap();
    let Some(file) = store.files.get(input) else {
        return (
            404,
            error_body(
                &format!("No such File object: {input}"),
                "invalid_request_error",
            ),
        );
    };
    if file.purpose != "batch" {
        return invalid(format!("file {input} was not uploaded for batch"));
    }
    let mut errors = Vec::new();
    if let Err(error) = batch::check_input(&file.bytes, endpoint, azure) {
        errors.push(error);
    }
    if let Some(message) = store.fail_next.take() {
        errors.push(serde_json::json!({"code": "server_error", "message": message, "param": null, "line": null}));
    }
    let id = store.new_id("batch");
    let stored = batch::StoredBatch {
        input_file_id: input.to_string(),
        endpoint: endpoint.to_string(),
        created: Instant::now(),
        created_at: unix_now(),
        polls: 0,
        status: "validating".into(),
        output_file_id: None,
        error_file_id: None,
        errors,
        counts: (0, 0, 0),
    };
    let body = stored.to_json(&id);
    store.batches.insert(id, stored);
    state.batch_submissions.fetch_add(1, Ordering::Relaxed);
    (200, body.to_string())
}

/// `GET batches/{id}`: its state, moved on as [`BatchTiming`] says.
fn read_batch(state: &State, id: &str) -> (u16, String) {
    let mut store = state.batches.lock().unwrap();
    let timing = store.timing;
    let Some(batch) = store.batches.get_mut(id) else {
        return (
            404,
            error_body(
                &format!("No such Batch object: {id}"),
                "invalid_request_error",
            ),
        );
    };
    if !matches!(batch.status.as_str(), "validating" | "in_progress") {
        return (200, batch.to_json(id).to_string());
    }
    batch.polls += 1;
    if !batch.errors.is_empty() {
        batch.status = "failed".into();
        return (200, batch.to_json(id).to_string());
    }
    if batch.polls <= timing.pending_polls || batch.created.elapsed() < timing.min_delay {
        batch.status = "in_progress".into();
        return (200, batch.to_json(id).to_string());
    }
    let input_file_id = batch.input_file_id.clone();
    let input = store
        .files
        .get(&input_file_id)
        .map(|f| f.bytes.clone())
        .unwrap_or_default();
    drop(store);
    // The lines run as chat completions would, outside the store's lock.
    let (mut output, mut failed_lines) = (String::new(), String::new());
    let (mut total, mut completed, mut failed) = (0u64, 0u64, 0u64);
    for (n, line) in input.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let body = line.get("body").cloned().unwrap_or_default();
        let (status, answer) = chat_answer(state, &body);
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        let out = serde_json::json!({
            "id": format!("batch_req_{n}"),
            "custom_id": line.get("custom_id"),
            "response": {"status_code": status, "request_id": format!("req_{n}"), "body": answer},
            "error": null,
        });
        total += 1;
        let file = if status == 200 {
            completed += 1;
            &mut output
        } else {
            failed += 1;
            &mut failed_lines
        };
        file.push_str(&out.to_string());
        file.push('\n');
    }
    let mut store = state.batches.lock().unwrap();
    let keep = |store: &mut batch::Store, bytes: String| {
        let file_id = store.new_id("file");
        store.files.insert(
            file_id.clone(),
            batch::StoredFile {
                bytes,
                purpose: "batch_output".into(),
            },
        );
        file_id
    };
    let output_id = keep(&mut store, output);
    let error_id = (!failed_lines.is_empty()).then(|| keep(&mut store, failed_lines));
    let Some(batch) = store.batches.get_mut(id) else {
        return (500, error_body("the batch vanished", "server_error"));
    };
    batch.status = "completed".into();
    batch.output_file_id = Some(output_id);
    batch.error_file_id = error_id;
    batch.counts = (total, completed, failed);
    (200, batch.to_json(id).to_string())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
