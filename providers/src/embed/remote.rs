//! OpenAI-compatible and Azure OpenAI embedding providers.
//!
//! Both send `request_batch_size` texts per request with up to
//! `requests_in_flight` requests at once, on [`crate::http::HttpClient`]
//! (its retry policy: 429, 5xx, 408, time-outs; `EMBEDDING_HTTP_*` limits).
//! A response that does not hold one vector of the expected length per
//! input fails with [`EmbedError::Permanent`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use shared::config::{EmbeddingConfig, OpenAiConfig};

use crate::embed::{EmbedError, Embedder};
use crate::http::{Api, Endpoint, HttpClient};

/// What both providers share: the client, batching and the vectors' length.
struct HttpCore {
    http: HttpClient,
    /// Sent as `model` in the body (OpenAI); the deployment is in the URL for Azure.
    model: String,
    dimensions: Option<u32>,
    batch: usize,
    in_flight: usize,
    max_input_chars: usize,
    known_dims: OnceLock<usize>,
    describe: String,
}

#[derive(serde::Serialize)]
struct Request<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    encoding_format: &'static str,
}

#[derive(serde::Deserialize)]
struct Response {
    data: Vec<Item>,
    #[serde(default)]
    usage: Option<Usage>,
}

/// Tokens the provider counted for one request (counted in
/// `shared::metrics`).
#[derive(serde::Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
}

#[derive(serde::Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

type BatchFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<Vec<f32>>, EmbedError>> + Send + 'a>,
>;

impl HttpCore {
    fn new(
        endpoint: Endpoint,
        config: &EmbeddingConfig,
        openai: &OpenAiConfig,
    ) -> Result<Self, EmbedError> {
        let name = format!("{} {}", endpoint.api.name(), config.model);
        let http = HttpClient::new(endpoint, &openai.embedding_http, &name)?;
        let describe = format!(
            "{}{}",
            http.describe(),
            config
                .dimensions
                .map(|d| format!(" ({d} dimensions)"))
                .unwrap_or_default()
        );
        Ok(HttpCore {
            http,
            model: config.model.clone(),
            dimensions: config.dimensions,
            batch: config.request_batch_size.max(1),
            in_flight: config.requests_in_flight.max(1),
            max_input_chars: config.max_input_chars.max(1),
            known_dims: OnceLock::new(),
            describe,
        })
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let cut = truncate_inputs(texts, self.max_input_chars);
        let texts: &[String] = match &cut {
            Some((shortened, count)) => {
                tracing::info!(
                    "{}: {count} of {} inputs were longer than {} characters and were truncated",
                    self.describe,
                    texts.len(),
                    self.max_input_chars
                );
                shortened
            }
            None => texts,
        };
        // Boxed as `Send` futures up front: lets the compiler see the stream is
        // Send without the higher-ranked closure inference that fails here.
        let requests: Vec<BatchFuture<'_>> = texts
            .chunks(self.batch)
            .map(|chunk| Box::pin(self.embed_batch(chunk)) as BatchFuture<'_>)
            .collect();
        let batches: Vec<Vec<Vec<f32>>> = stream::iter(requests)
            .buffered(self.in_flight)
            .try_collect()
            .await?;
        let vectors: Vec<Vec<f32>> = batches.into_iter().flatten().collect();
        if let Some(first) = vectors.first() {
            let _ = self.known_dims.set(first.len());
        }
        Ok(vectors)
    }

    /// One request's worth of texts (the client retries).
    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = Request {
            model: match self.http.endpoint().api {
                Api::OpenAi => Some(self.model.as_str()),
                Api::Azure => None,
            },
            input: texts,
            dimensions: self.dimensions,
            encoding_format: "float",
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| EmbedError::Permanent(format!("cannot encode the request: {e}")))?;
        let answer = self.http.post_json(&body, "embedding").await?;
        self.parse(&answer.body, texts.len())
    }

    fn parse(&self, text: &str, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let bad = |what: String| {
            EmbedError::Permanent(format!("{}: unexpected response: {what}", self.describe))
        };
        let response: Response = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if let Some(usage) = &response.usage {
            shared::metrics::provider_tokens(
                self.http.endpoint().api.name(),
                "embedding",
                usage.prompt_tokens,
                0,
            );
        }
        if response.data.len() != expected {
            return Err(bad(format!(
                "{} embeddings for {expected} inputs",
                response.data.len()
            )));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for item in response.data {
            match slots.get_mut(item.index) {
                Some(slot @ None) => *slot = Some(item.embedding),
                Some(Some(_)) => return Err(bad(format!("index {} appears twice", item.index))),
                None => return Err(bad(format!("index {} is out of range", item.index))),
            }
        }
        let vectors: Vec<Vec<f32>> = slots.into_iter().map(|v| v.unwrap_or_default()).collect();
        let dims = vectors[0].len();
        if dims == 0 || vectors.iter().any(|v| v.len() != dims) {
            return Err(bad("embeddings of different or zero lengths".into()));
        }
        if let Some(want) = self.dimensions {
            if dims != want as usize {
                return Err(bad(format!(
                    "{dims} dimensions where EMBEDDING_DIMENSIONS is {want}"
                )));
            }
        }
        if let Some(&known) = self.known_dims.get() {
            if known != dims {
                return Err(bad(format!(
                    "{dims} dimensions where earlier responses had {known}"
                )));
            }
        }
        Ok(vectors)
    }

    async fn dimensions(&self) -> Result<usize, EmbedError> {
        if let Some(d) = self.dimensions {
            return Ok(d as usize);
        }
        if let Some(&d) = self.known_dims.get() {
            return Ok(d);
        }
        // Ask the provider once: embed a short probe text.
        let probe = self.embed(&["dimension probe".to_string()]).await?;
        Ok(probe.first().map(|v| v.len()).unwrap_or_default())
    }
}

/// The inputs with every one longer than `max_chars` characters cut to
/// that length, and how many were cut; `None` when none is too long.
fn truncate_inputs(texts: &[String], max_chars: usize) -> Option<(Vec<String>, usize)> {
    let too_long = |t: &String| t.len() > max_chars && t.chars().nth(max_chars).is_some();
    if !texts.iter().any(too_long) {
        return None;
    }
    let mut count = 0;
    let shortened = texts
        .iter()
        .map(|t| {
            if too_long(t) {
                count += 1;
                t.chars().take(max_chars).collect()
            } else {
                t.clone()
            }
        })
        .collect();
    Some((shortened, count))
}

/// OpenAI's embeddings API, or any server that speaks it (`OPENAI_BASE_URL`).
pub struct OpenAiEmbedder {
    core: Arc<HttpCore>,
}

impl OpenAiEmbedder {
    /// POSTs to `{OPENAI_BASE_URL}/embeddings` with `Authorization: Bearer OPENAI_API_KEY`
    /// (no header when the key is empty, for local servers).
    pub fn from_config(
        config: &EmbeddingConfig,
        openai: &OpenAiConfig,
    ) -> Result<Self, EmbedError> {
        let endpoint = Endpoint::openai(
            &openai.base_url,
            &openai.api_key,
            &["embeddings"],
            "EMBEDDING_PROVIDER=openai",
        )?;
        Ok(OpenAiEmbedder {
            core: Arc::new(HttpCore::new(endpoint, config, openai)?),
        })
    }
}

/// Azure OpenAI: `{AZURE_OPENAI_ENDPOINT}/openai/deployments/{EMBEDDING_MODEL}/embeddings`.
pub struct AzureOpenAiEmbedder {
    core: Arc<HttpCore>,
}

impl AzureOpenAiEmbedder {
    /// The deployment is `EMBEDDING_MODEL`; the key goes in the `api-key` header.
    pub fn from_config(
        config: &EmbeddingConfig,
        openai: &OpenAiConfig,
    ) -> Result<Self, EmbedError> {
        let endpoint = Endpoint::azure(
            &openai.azure_endpoint,
            &openai.azure_api_key,
            ("EMBEDDING_MODEL", &config.model),
            &["embeddings"],
            &openai.azure_api_version_embedding,
            "EMBEDDING_PROVIDER=azure-openai",
        )?;
        Ok(AzureOpenAiEmbedder {
            core: Arc::new(HttpCore::new(endpoint, config, openai)?),
        })
    }
}

macro_rules! http_embedder {
    ($ty:ty) => {
        impl $ty {
            /// Changes the back-off (tests use milliseconds).
            pub fn with_backoff(self, base: Duration, max: Duration) -> Self {
                let core = match Arc::try_unwrap(self.core) {
                    Ok(mut core) => {
                        core.http = core.http.with_backoff(base, max);
                        Arc::new(core)
                    }
                    Err(shared) => shared,
                };
                Self { core }
            }
        }

        #[async_trait::async_trait]
        impl Embedder for $ty {
            fn describe(&self) -> String {
                self.core.describe.clone()
            }
            async fn dimensions(&self) -> Result<usize, EmbedError> {
                self.core.dimensions().await
            }
            async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
                self.core.embed(texts).await
            }
        }
    };
}
http_embedder!(OpenAiEmbedder);
http_embedder!(AzureOpenAiEmbedder);

#[cfg(test)]
mod tests {
    //! Against a small HTTP server on 127.0.0.1 that answers like the real
    //! services (and checks what it is sent).

    use super::*;
    use shared::config::Secret;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const KEY: &str = "sk-test-SECRET-0123456789";

    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        target: String,
        headers: Vec<(String, String)>,
        body: serde_json::Value,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
        fn inputs(&self) -> Vec<String> {
            self.body["input"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        }
    }

    struct Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
        delay: Duration,
    }

    impl Reply {
        fn json(status: u16, body: serde_json::Value) -> Self {
            Reply {
                status,
                headers: vec![],
                body: body.to_string(),
                delay: Duration::ZERO,
            }
        }
    }

    /// Embeddings as the service makes them: text `t` → [len(t), 1, 0, ...],
    /// in reverse index order (clients must sort by `index`).
    fn ok_reply(seen: &Seen, dims: usize) -> Reply {
        let data: Vec<serde_json::Value> = seen
            .inputs()
            .iter()
            .enumerate()
            .rev()
            .map(|(i, t)| {
                let mut v = vec![0f32; dims];
                v[0] = t.len() as f32;
                v[1] = 1.0;
                serde_json::json!({"object": "embedding", "index": i, "embedding": v})
            })
            .collect();
        Reply::json(
            200,
            serde_json::json!({"object": "list", "data": data, "model": "text-embedding-3-small",
                               "usage": {"prompt_tokens": 5, "total_tokens": 5}}),
        )
    }

    struct Server {
        base: String,
        seen: Arc<Mutex<Vec<Seen>>>,
        max_concurrent: Arc<AtomicUsize>,
    }

    /// Serves `reply(request, n)` for the n-th request (0-based), one connection per request.
    async fn serve(reply: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let current = Arc::new(AtomicUsize::new(0));
        let max_concurrent = Arc::new(AtomicUsize::new(0));
        let reply = Arc::new(reply);
        let counter = Arc::new(AtomicUsize::new(0));
        {
            let (seen, max_concurrent) = (seen.clone(), max_concurrent.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut sock, _)) = listener.accept().await else {
                        return;
                    };
                    let (seen, reply, counter) = (seen.clone(), reply.clone(), counter.clone());
                    let (current, max_concurrent) = (current.clone(), max_concurrent.clone());
                    tokio::spawn(async move {
                        loop {
                            let Some(req) = read_request(&mut sock).await else {
                                return;
                            };
                            let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                            max_concurrent.fetch_max(now, Ordering::SeqCst);
                            let n = counter.fetch_add(1, Ordering::SeqCst);
                            seen.lock().unwrap().push(req.clone());
                            let r = reply(&req, n);
                            tokio::time::sleep(r.delay).await;
                            current.fetch_sub(1, Ordering::SeqCst);
                            let reason = match r.status {
                                200 => "OK",
                                400 => "Bad Request",
                                401 => "Unauthorized",
                                429 => "Too Many Requests",
                                500 => "Internal Server Error",
                                503 => "Service Unavailable",
                                _ => "X",
                            };
                            let mut head = format!(
                                "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                                r.status,
                                r.body.len()
                            );
                            for (k, v) in &r.headers {
                                head.push_str(&format!("{k}: {v}\r\n"));
                            }
                            head.push_str("\r\n");
                            if sock.write_all(head.as_bytes()).await.is_err()
                                || sock.write_all(r.body.as_bytes()).await.is_err()
                            {
                                return;
                            }
                        }
                    });
                }
            });
        }
        Server {
            base,
            seen,
            max_concurrent,
        }
    }

    async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Seen> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let header_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[header_end + 4..].to_vec();
        while body.len() < len {
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(Seen {
            method,
            target,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        })
    }

    fn config(provider: &str, base: &str, extra: &[(&str, &str)]) -> shared::Config {
        let mut pairs: Vec<(String, String)> = vec![
            ("EMBEDDING_PROVIDER".into(), provider.into()),
            ("OPENAI_BASE_URL".into(), format!("{base}/v1")),
            ("OPENAI_API_KEY".into(), KEY.into()),
            ("AZURE_OPENAI_ENDPOINT".into(), format!("{base}/")),
            ("AZURE_OPENAI_API_KEY".into(), KEY.into()),
            ("EMBEDDING_HTTP_TIMEOUT_SECS".into(), "5".into()),
        ];
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        shared::config::Config::from_source(&shared::config::Source::from_pairs(pairs)).unwrap()
    }

    fn texts(n: usize) -> Vec<String> {
        (0..n).map(|i| "x".repeat(i + 1)).collect()
    }

    fn openai(cfg: &shared::Config) -> OpenAiEmbedder {
        OpenAiEmbedder::from_config(&cfg.embedding, &cfg.openai).unwrap()
    }

    fn fast(e: OpenAiEmbedder) -> OpenAiEmbedder {
        e.with_backoff(Duration::from_millis(5), Duration::from_millis(20))
    }

    #[tokio::test]
    async fn openai_batches_keeps_order_and_sends_the_right_request() {
        let server = serve(|seen, _| {
            let mut r = ok_reply(seen, 8);
            r.delay = Duration::from_millis(50);
            r
        })
        .await;
        let cfg = config(
            "openai",
            &server.base,
            &[
                ("EMBEDDING_BATCH_SIZE", "3"),
                ("EMBEDDING_REQUESTS_IN_FLIGHT", "2"),
                ("EMBEDDING_DIMENSIONS", "8"),
                ("EMBEDDING_MODEL", "text-embedding-3-small"),
            ],
        );
        let e = OpenAiEmbedder::from_config(&cfg.embedding, &cfg.openai).unwrap();
        assert!(!e.describe().contains(KEY));
        let input = texts(10);
        let out = e.embed(&input).await.unwrap();
        assert_eq!(out.len(), 10);
        for (i, v) in out.iter().enumerate() {
            assert_eq!(v.len(), 8);
            assert_eq!(v[0], (i + 1) as f32, "vector {i} out of order");
        }
        let seen = server.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 4, "10 texts in batches of 3");
        let mut all_inputs: Vec<String> = Vec::new();
        for s in &seen {
            assert_eq!(s.method, "POST");
            assert_eq!(s.target, "/v1/embeddings");
            assert_eq!(
                s.header("authorization"),
                Some(format!("Bearer {KEY}").as_str())
            );
            assert_eq!(s.header("content-type"), Some("application/json"));
            assert_eq!(s.body["model"], "text-embedding-3-small");
            assert_eq!(s.body["dimensions"], 8);
            assert!(s.inputs().len() <= 3);
            all_inputs.extend(s.inputs());
        }
        all_inputs.sort_by_key(|t| t.len());
        assert_eq!(all_inputs, input);
        let max = server.max_concurrent.load(Ordering::SeqCst);
        assert!(max == 2, "requests in flight: {max}, expected 2");
        assert_eq!(e.dimensions().await.unwrap(), 8);
    }

    #[tokio::test]
    async fn inputs_longer_than_the_limit_are_truncated_before_sending() {
        let server = serve(|seen, _| ok_reply(seen, 8)).await;
        let cfg = config(
            "openai",
            &server.base,
            &[
                ("EMBEDDING_DIMENSIONS", "8"),
                ("EMBEDDING_MAX_INPUT_CHARS", "5"),
            ],
        );
        let e = OpenAiEmbedder::from_config(&cfg.embedding, &cfg.openai).unwrap();
        let mut input = texts(8);
        input.push("ééééééé".to_string());
        let out = e.embed(&input).await.unwrap();
        assert_eq!(out.len(), 9);
        let sent: Vec<String> = server
            .seen
            .lock()
            .unwrap()
            .iter()
            .flat_map(|s| s.inputs())
            .collect();
        let expected: Vec<String> = input.iter().map(|t| t.chars().take(5).collect()).collect();
        assert_eq!(
            sent, expected,
            "cut at 5 characters, on character boundaries"
        );
        assert_eq!(truncate_inputs(&input, 5).map(|(_, n)| n), Some(4));
        assert!(truncate_inputs(&input, 8).is_none());
    }

    #[tokio::test]
    async fn honours_retry_after_on_429_then_succeeds() {
        let server = serve(|seen, n| {
            if n == 0 {
                let mut r = Reply::json(429, serde_json::json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}}));
                r.headers.push(("retry-after", "1".into()));
                r
            } else {
                ok_reply(seen, 4)
            }
        })
        .await;
        let e = fast(openai(&config("openai", &server.base, &[])));
        let started = Instant::now();
        let out = e.embed(&texts(2)).await.unwrap();
        let waited = started.elapsed();
        assert_eq!(out.len(), 2);
        assert_eq!(server.seen.lock().unwrap().len(), 2);
        assert!(
            waited >= Duration::from_millis(950),
            "retried after {waited:?}, Retry-After said 1 s"
        );
        assert!(waited < Duration::from_secs(4), "{waited:?}");
    }

    #[tokio::test]
    async fn a_400_fails_at_once_with_the_provider_message_and_no_key() {
        let server = serve(|_, _| {
            Reply::json(400, serde_json::json!({"error": {"message": format!("This model's maximum context length is 8192 tokens (key {KEY})"), "type": "invalid_request_error", "code": null}}))
        })
        .await;
        let e = fast(openai(&config("openai", &server.base, &[])));
        let err = e.embed(&texts(3)).await.unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(matches!(err, EmbedError::Permanent(_)), "{shown}");
        assert!(
            shown.contains("maximum context length is 8192 tokens"),
            "{shown}"
        );
        assert!(shown.contains("400"), "{shown}");
        assert!(!shown.contains(KEY), "key leaked: {shown}");
        assert_eq!(server.seen.lock().unwrap().len(), 1, "a 400 is not retried");
    }

    #[tokio::test]
    async fn server_errors_are_retried_then_transient() {
        let server = serve(|_, _| Reply {
            status: 503,
            headers: vec![],
            body: "upstream overloaded".into(),
            delay: Duration::ZERO,
        })
        .await;
        let cfg = config(
            "openai",
            &server.base,
            &[("EMBEDDING_HTTP_MAX_RETRIES", "3")],
        );
        let e = fast(OpenAiEmbedder::from_config(&cfg.embedding, &cfg.openai).unwrap());
        let err = e.embed(&texts(1)).await.unwrap_err();
        assert!(matches!(err, EmbedError::Transient(_)), "{err}");
        assert!(err.to_string().contains("upstream overloaded"), "{err}");
        assert!(!err.to_string().contains(KEY));
        assert_eq!(
            server.seen.lock().unwrap().len(),
            4,
            "1 attempt + 3 retries"
        );
    }

    #[tokio::test]
    async fn a_timeout_is_retried() {
        let server = serve(|seen, n| {
            let mut r = ok_reply(seen, 4);
            if n == 0 {
                r.delay = Duration::from_millis(2500);
            }
            r
        })
        .await;
        let cfg = config(
            "openai",
            &server.base,
            &[("EMBEDDING_HTTP_TIMEOUT_SECS", "1")],
        );
        let e = fast(OpenAiEmbedder::from_config(&cfg.embedding, &cfg.openai).unwrap());
        let out = e.embed(&texts(2)).await.unwrap();
        assert_eq!(out.len(), 2);
        assert!(server.seen.lock().unwrap().len() >= 2);
    }

    #[tokio::test]
    async fn azure_url_header_and_body() {
        let server = serve(|seen, _| ok_reply(seen, 6)).await;
        let cfg = config(
            "azure-openai",
            &server.base,
            &[
                ("EMBEDDING_MODEL", "my-embeddings"),
                ("AZURE_API_VERSION_EMBEDDING_MODEL", "2024-06-01"),
            ],
        );
        let e = AzureOpenAiEmbedder::from_config(&cfg.embedding, &cfg.openai)
            .unwrap()
            .with_backoff(Duration::from_millis(5), Duration::from_millis(20));
        assert_eq!(e.dimensions().await.unwrap(), 6, "probed once");
        let out = e.embed(&texts(3)).await.unwrap();
        assert_eq!(out.len(), 3);
        let seen = server.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        for s in &seen {
            assert_eq!(
                s.target,
                "/openai/deployments/my-embeddings/embeddings?api-version=2024-06-01"
            );
            assert_eq!(s.header("api-key"), Some(KEY));
            assert_eq!(s.header("authorization"), None);
            assert!(s.body.get("model").is_none());
        }
        assert_eq!(e.dimensions().await.unwrap(), 6);
        assert_eq!(
            server.seen.lock().unwrap().len(),
            2,
            "dimensions are remembered"
        );
    }

    #[tokio::test]
    async fn wrong_dimensions_and_bad_responses_are_permanent() {
        let server = serve(|seen, n| {
            if n == 0 {
                ok_reply(seen, 5)
            } else {
                Reply::json(200, serde_json::json!({"data": []}))
            }
        })
        .await;
        let cfg = config("openai", &server.base, &[("EMBEDDING_DIMENSIONS", "8")]);
        let e = fast(OpenAiEmbedder::from_config(&cfg.embedding, &cfg.openai).unwrap());
        let err = e.embed(&texts(1)).await.unwrap_err();
        assert!(
            matches!(err, EmbedError::Permanent(_)) && err.to_string().contains("5 dimensions"),
            "{err}"
        );
        let err = e.embed(&texts(1)).await.unwrap_err();
        assert!(
            err.to_string().contains("0 embeddings for 1 inputs"),
            "{err}"
        );
    }

    #[test]
    fn missing_keys_and_bad_urls_are_reported_without_secrets() {
        let mut cfg = config("openai", "http://127.0.0.1:9", &[]);
        cfg.openai.base_url = "https://api.openai.com/v1".into();
        cfg.openai.api_key = Secret::new("");
        let err = OpenAiEmbedder::from_config(&cfg.embedding, &cfg.openai)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("OPENAI_API_KEY"), "{err}");
        cfg.openai.base_url = "not a url".into();
        cfg.openai.api_key = Secret::new(KEY);
        let err = OpenAiEmbedder::from_config(&cfg.embedding, &cfg.openai)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("OPENAI_BASE_URL") && !err.contains(KEY),
            "{err}"
        );
        let mut cfg = config("azure-openai", "http://127.0.0.1:9", &[]);
        cfg.openai.azure_api_key = Secret::new("");
        let err = AzureOpenAiEmbedder::from_config(&cfg.embedding, &cfg.openai)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("AZURE_OPENAI_API_KEY"), "{err}");
    }
}
