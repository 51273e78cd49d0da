//! A stand-in for an OpenAI-compatible embeddings endpoint, served in this
//! process: `orchestrator bench embeddings` measures the pipeline against
//! it, and the integration tests count what reaches the provider with it.
//!
//! It answers `POST …/embeddings` (OpenAI's `/v1/embeddings` and Azure's
//! `/openai/deployments/<name>/embeddings?api-version=…`) after a fixed
//! delay, with one random unit vector per input (the same text always gets
//! the same vector; `dimensions` in the request is honoured, else the
//! configured default), as floats or base64 as `encoding_format` asks.
//! Failures can be scripted: the next N requests answer with a status, an
//! optional `Retry-After` and an error message.
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
        let mut failures = self.state.failures.lock().unwrap();
        for _ in 0..times {
            failures.push_back(Failure {
                status,
                retry_after_secs,
                message: message.to_string(),
            });
        }
    }

    /// Every request fails with this status until [`FakeOpenAi::heal`].
    pub fn fail_always(&self, status: u16, message: &str) {
        *self.state.always.lock().unwrap() = Some(Failure {
            status,
            retry_after_secs: None,
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
            headers,
            body: parsed.clone(),
        });
    }
    state.requests.fetch_add(1, Ordering::Relaxed);
    if !state.options.delay.is_zero() {
        tokio::time::sleep(state.options.delay).await;
    }
    let route = path.split('?').next().unwrap_or_default();
    if method != "POST" || !route.ends_with("/embeddings") {
        return (
            404,
            vec![],
            error_body(
                &format!("no route for {method} {route}"),
                "invalid_request_error",
            ),
        );
    }
    let scripted = state
        .failures
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| state.always.lock().unwrap().clone());
    if let Some(failure) = scripted {
        let extra = failure
            .retry_after_secs
            .map(|s| vec![("retry-after".to_string(), s.to_string())])
            .unwrap_or_default();
        let kind = if failure.status == 429 {
            "rate_limit_error"
        } else {
            "invalid_request_error"
        };
        return (failure.status, extra, error_body(&failure.message, kind));
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
    (200, vec![], out)
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
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(encode_base64(b"Man"), "TWFu");
        assert_eq!(encode_base64(b"Ma"), "TWE=");
        assert_eq!(encode_base64(b"M"), "TQ==");
    }
}
