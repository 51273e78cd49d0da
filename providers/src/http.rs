//! The one HTTP client of the providers, for OpenAI-compatible and Azure
//! OpenAI APIs, with the one retry policy both embeddings and chat use.
//!
//! An [`Endpoint`] is where one operation is (`{OPENAI_BASE_URL}/embeddings`,
//! `{AZURE_OPENAI_ENDPOINT}/openai/deployments/{name}/chat/completions?api-version=…`)
//! and how to authenticate there (`Authorization: Bearer` or `api-key`). An
//! [`HttpClient`] POSTs JSON to it (or sends any method to a path under it:
//! `files/{id}/content`), and retries, under
//! [`shared::backoff`], with exponential back-off and jitter:
//! - 429, honouring `retry-after-ms` / `Retry-After`, or else the reset time
//!   of an exhausted `x-ratelimit-remaining-*` bucket (`x-ratelimit-reset-*`,
//!   durations such as `12ms` or `6m0s`);
//! - 5xx, 408, time-outs and transport errors;
//!
//! up to `*_HTTP_MAX_RETRIES` retries and `*_HTTP_MAX_WAIT_SECS` slept in
//! total; then [`ProviderError::Transient`]. Any other 4xx is
//! [`ProviderError::Permanent`] at once, with the provider's own message.
//! Every answer carries the rate-limit headers ([`RateLimit`]), and an
//! [`Observer`] sees every attempt (the retried 429s too), so that a caller
//! can adapt its concurrency. Every attempt is also counted, by provider,
//! operation (`what`) and status, with its latency, in
//! [`shared::metrics`]. The key travels in a sensitive header
//! and is scrubbed from anything the provider sends back; URLs are shown
//! through [`redact_url`], which also hides key-like query parameters.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
pub use reqwest::{Method, StatusCode};
use shared::backoff::{Backoff, Verdict};
use shared::config::{redact_url, HttpLimits, Secret};

use crate::ProviderError;

/// First back-off delay; doubled on each retry, capped at [`MAX_BACKOFF`].
pub const BASE_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest server-asked wait honoured; a provider asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// Largest response body read (a batch of 256 vectors of 3072 floats is ~10 MB).
pub const MAX_BODY: usize = 64 << 20;
/// Longest provider message kept in an error.
const MAX_MESSAGE: usize = 600;

/// Which API dialect an endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    OpenAi,
    Azure,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::OpenAi => "openai",
            Api::Azure => "azure-openai",
        }
    }
}

/// One operation's URL and credentials.
#[derive(Clone)]
pub struct Endpoint {
    pub api: Api,
    url: Url,
    key: Secret,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.api.name(), redact_url(self.url.as_str()))
    }
}

impl Endpoint {
    /// `{base_url}/{operation…}` with `Authorization: Bearer key` (no header
    /// when the key is empty, for local servers; refused for api.openai.com).
    /// `setting` names what asked for it in errors (`EMBEDDING_PROVIDER=openai`).
    pub fn openai(
        base_url: &str,
        key: &Secret,
        operation: &[&str],
        setting: &str,
    ) -> Result<Self, ProviderError> {
        let mut url = parse_base("OPENAI_BASE_URL", base_url)?;
        if key.is_empty() && url.host_str() == Some("api.openai.com") {
            return Err(ProviderError::Permanent(format!(
                "OPENAI_API_KEY must be set for {setting} with api.openai.com"
            )));
        }
        push_segments(&mut url, operation);
        Ok(Endpoint {
            api: Api::OpenAi,
            url,
            key: key.clone(),
        })
    }

    /// `{endpoint}/openai/deployments/{deployment}/{operation…}?api-version=…`
    /// with the `api-key` header. `deployment_variable` names the setting
    /// that holds the deployment, for errors.
    pub fn azure(
        endpoint: &str,
        key: &Secret,
        deployment: (&str, &str),
        operation: &[&str],
        api_version: &str,
        setting: &str,
    ) -> Result<Self, ProviderError> {
        let (deployment_variable, deployment) = deployment;
        let mut segments = vec!["deployments", deployment.trim()];
        segments.extend_from_slice(operation);
        let endpoint = Self::azure_resource(endpoint, key, &segments, api_version, setting)?;
        if deployment.trim().is_empty() {
            return Err(ProviderError::Permanent(format!(
                "{deployment_variable} must name the Azure OpenAI deployment"
            )));
        }
        Ok(endpoint)
    }

    /// `{endpoint}/openai/{operation…}?api-version=…` with the `api-key`
    /// header: the operations of the resource itself (`files`, `batches`),
    /// not of one deployment.
    pub fn azure_resource(
        endpoint: &str,
        key: &Secret,
        operation: &[&str],
        api_version: &str,
        setting: &str,
    ) -> Result<Self, ProviderError> {
        if endpoint.trim().is_empty() {
            return Err(ProviderError::Permanent(format!(
                "AZURE_OPENAI_ENDPOINT must be set for {setting}"
            )));
        }
        if key.is_empty() {
            return Err(ProviderError::Permanent(format!(
                "AZURE_OPENAI_API_KEY must be set for {setting}"
            )));
        }
        let mut url = parse_base("AZURE_OPENAI_ENDPOINT", endpoint)?;
        let mut segments = vec!["openai"];
        segments.extend_from_slice(operation);
        push_segments(&mut url, &segments);
        url.query_pairs_mut()
            .clear()
            .append_pair("api-version", api_version);
        Ok(Endpoint {
            api: Api::Azure,
            url,
            key: key.clone(),
        })
    }

    /// This endpoint's URL with more path segments (`batches/{id}`); the
    /// query (Azure's `api-version`) stays.
    fn url_under(&self, segments: &[&str]) -> Url {
        let mut url = self.url.clone();
        push_segments(&mut url, segments);
        url
    }

    /// The URL as it may be shown.
    pub fn shown(&self) -> String {
        redact_url(self.url.as_str())
    }

    fn auth_headers(&self) -> Result<HeaderMap, ProviderError> {
        let mut headers = HeaderMap::new();
        if self.key.is_empty() {
            return Ok(headers);
        }
        let (name, value) = match self.api {
            Api::OpenAi => (AUTHORIZATION, format!("Bearer {}", self.key.expose())),
            Api::Azure => (
                HeaderName::from_static("api-key"),
                self.key.expose().to_string(),
            ),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ProviderError::Permanent(
                "the API key holds characters that cannot go in an HTTP header".into(),
            )
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
        Ok(headers)
    }
}

/// What the provider said about its rate limits in one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// `retry-after-ms`, else `Retry-After` (seconds).
    pub retry_after: Option<Duration>,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    /// Until the request budget is full again.
    pub reset_requests: Option<Duration>,
    pub reset_tokens: Option<Duration>,
}

impl RateLimit {
    pub fn from_headers(headers: &HeaderMap) -> RateLimit {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let count = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok());
        let retry_after = get("retry-after-ms")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
            .or_else(|| {
                get("retry-after")
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
            });
        RateLimit {
            retry_after,
            remaining_requests: count("x-ratelimit-remaining-requests"),
            remaining_tokens: count("x-ratelimit-remaining-tokens"),
            reset_requests: get("x-ratelimit-reset-requests").and_then(parse_duration),
            reset_tokens: get("x-ratelimit-reset-tokens").and_then(parse_duration),
        }
    }

    /// How long the provider asks to wait before the next request: what
    /// `Retry-After` says, else the longest reset of an exhausted budget.
    pub fn wait_hint(&self) -> Option<Duration> {
        if self.retry_after.is_some() {
            return self.retry_after;
        }
        let exhausted = |remaining: Option<u64>, reset: Option<Duration>| {
            reset.filter(|_| remaining == Some(0))
        };
        exhausted(self.remaining_requests, self.reset_requests)
            .max(exhausted(self.remaining_tokens, self.reset_tokens))
    }
}

/// A duration as the rate-limit headers write it: `12ms`, `1s`, `6m0s`,
/// `1h2m3.5s`, `20us`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let value: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * seconds_per_unit;
        rest = &rest[unit_end..];
    }
    total.is_finite().then(|| Duration::from_secs_f64(total))
}

/// Whether an answer with this status is worth another attempt.
pub fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// Why one attempt failed.
#[derive(Debug)]
enum Failure {
    Retry {
        reason: String,
        wait_at_least: Option<Duration>,
    },
    Fail(ProviderError),
}

/// A successful answer: its body and the rate-limit state it reported.
#[derive(Debug)]
pub struct Answer {
    pub body: String,
    pub rate_limit: RateLimit,
    /// Attempts it took, the successful one included.
    pub attempts: u32,
}

/// What one attempt came to, as an [`Observer`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Attempted {
    /// `None` when no answer came (a time-out, a transport error).
    pub status: Option<StatusCode>,
    pub rate_limit: RateLimit,
}

/// Called after every attempt, the ones the retry policy repeats included,
/// so that a caller pacing many requests (the enrichment's adaptive
/// concurrency) sees a 429 as soon as it happens, not only the request's
/// final outcome.
pub type Observer = std::sync::Arc<dyn Fn(&Attempted) + Send + Sync>;

/// A request body and its `Content-Type`.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

impl<'a> Body<'a> {
    pub fn json(bytes: &'a [u8]) -> Self {
        Body {
            content_type: "application/json",
            bytes,
        }
    }
}

/// The client for one endpoint.
pub struct HttpClient {
    client: reqwest::Client,
    endpoint: Endpoint,
    policy: Backoff,
    observer: Option<Observer>,
    /// For logs and errors: provider, model, redacted URL. Never a secret.
    describe: String,
}

impl HttpClient {
    /// `describe` says what this is (`openai text-embedding-3-small`); the
    /// redacted URL is appended.
    pub fn new(
        endpoint: Endpoint,
        limits: &HttpLimits,
        describe: &str,
    ) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(limits.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(limits.timeout_secs.clamp(1, 30)))
            .build()
            .map_err(|e| ProviderError::Permanent(format!("cannot build the HTTP client: {e}")))?;
        let policy = Backoff::new(BASE_BACKOFF, MAX_BACKOFF)
            .with_jitter()
            .with_max_retries(limits.max_retries)
            .with_max_total_wait(Duration::from_secs(limits.max_wait_secs));
        let describe = format!("{describe} at {}", endpoint.shown());
        Ok(HttpClient {
            client,
            endpoint,
            policy,
            observer: None,
            describe,
        })
    }

    /// Changes the back-off delays (tests use milliseconds); the limits stay.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        let mut policy = Backoff::new(base, max).with_jitter();
        let old = self.policy;
        if let Some(total) = old.max_total_wait() {
            policy = policy.with_max_total_wait(total);
        }
        self.policy = policy.with_max_retries(old.max_retries().unwrap_or(u32::MAX));
        self
    }

    /// Reports every attempt to `observer`.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn describe(&self) -> &str {
        &self.describe
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// POSTs `body` (JSON) to the endpoint, retrying as the module says; the
    /// 2xx body and its rate-limit state.
    pub async fn post_json(&self, body: &[u8], what: &str) -> Result<Answer, ProviderError> {
        self.send(Method::POST, &[], Some(Body::json(body)), what)
            .await
    }

    /// `method` on the endpoint's URL extended by `path` (`&[]`: the
    /// endpoint itself), under the same retry policy as
    /// [`HttpClient::post_json`].
    pub async fn send(
        &self,
        method: Method,
        path: &[&str],
        body: Option<Body<'_>>,
        what: &str,
    ) -> Result<Answer, ProviderError> {
        let mut headers = self.endpoint.auth_headers()?;
        if let Some(body) = body {
            let content_type = HeaderValue::from_str(body.content_type).map_err(|_| {
                ProviderError::Permanent(format!("bad content type {:?}", body.content_type))
            })?;
            headers.insert(CONTENT_TYPE, content_type);
        }
        let url = self.endpoint.url_under(path);
        let bytes = body.map(|b| b.bytes);
        let mut retries = 0u32;
        let answer = shared::backoff::retry(
            self.policy,
            || self.attempt(&method, &url, &headers, bytes, what),
            |failure| match failure {
                Failure::Fail(_) => Verdict::Stop,
                Failure::Retry {
                    wait_at_least: Some(asked),
                    ..
                } => Verdict::RetryAfter((*asked).min(MAX_RETRY_AFTER)),
                Failure::Retry { .. } => Verdict::Retry,
            },
            |failure, delay| {
                retries += 1;
                if let Failure::Retry { reason, .. } = failure {
                    tracing::warn!(
                        provider = %self.describe,
                        attempt = retries,
                        retry_in_ms = delay.as_millis() as u64,
                        "{what} request failed, retrying: {reason}"
                    );
                }
            },
        )
        .await;
        match answer {
            Ok(mut answer) => {
                answer.attempts = retries + 1;
                Ok(answer)
            }
            Err(Failure::Fail(e)) => Err(e),
            Err(Failure::Retry { reason, .. }) => Err(ProviderError::Transient(format!(
                "{}: gave up after {} attempts: {reason}",
                self.describe,
                retries + 1
            ))),
        }
    }

    fn observe(&self, status: Option<StatusCode>, rate_limit: RateLimit) {
        if let Some(observer) = &self.observer {
            observer(&Attempted { status, rate_limit });
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&[u8]>,
        what: &str,
    ) -> Result<Answer, Failure> {
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .headers(headers.clone());
        if let Some(body) = body {
            request = request.body(body.to_vec());
        }
        let started = std::time::Instant::now();
        let sent = request.send().await;
        let api = self.endpoint.api.name();
        shared::metrics::provider_attempt(
            api,
            what,
            sent.as_ref().ok().map(|r| r.status().as_u16()),
            started.elapsed(),
        );
        let mut response = sent.map_err(|e| {
            self.observe(None, RateLimit::default());
            Failure::Retry {
                reason: transport_error(&e),
                wait_at_least: None,
            }
        })?;
        let status = response.status();
        let rate_limit = RateLimit::from_headers(response.headers());
        self.observe(Some(status), rate_limit);
        let wait_at_least = rate_limit.wait_hint();
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_BODY {
                        return Err(Failure::Fail(ProviderError::Permanent(format!(
                            "{}: HTTP {}: the response is larger than {} MB",
                            self.describe,
                            status.as_u16(),
                            MAX_BODY >> 20
                        ))));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure::Retry {
                        reason: format!("HTTP {status}, reading the body: {}", transport_error(&e)),
                        wait_at_least,
                    })
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            return Ok(Answer {
                body: text,
                rate_limit,
                attempts: 1,
            });
        }
        let message = self.scrub(&provider_message(&text));
        let reason = format!("HTTP {}: {message}", status.as_u16());
        Err(if is_retryable(status) {
            Failure::Retry {
                reason,
                wait_at_least,
            }
        } else {
            Failure::Fail(ProviderError::Permanent(format!(
                "{}: {reason}",
                self.describe
            )))
        })
    }

    /// Removes the key from text that came back from the provider.
    fn scrub(&self, text: &str) -> String {
        let key = self.endpoint.key.expose();
        if key.len() >= 4 && text.contains(key) {
            text.replace(key, "(redacted)")
        } else {
            text.to_string()
        }
    }
}

/// A transport error without the URL (shown elsewhere, redacted) or anything else.
fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// The provider's error message: `error.message` (OpenAI and Azure), else the body.
fn provider_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| {
            let e = v.get("error")?;
            let message = e
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
                .or_else(|| e.as_str().map(str::to_string))?;
            let code = e.get("code").and_then(|c| {
                c.as_str()
                    .map(str::to_string)
                    .or_else(|| c.as_i64().map(|n| n.to_string()))
            });
            Some(match code {
                Some(code) if !code.is_empty() => format!("{message} (code {code})"),
                _ => message,
            })
        })
        .unwrap_or_else(|| body.trim().to_string());
    let message = if message.is_empty() {
        "(empty body)".to_string()
    } else {
        message
    };
    if message.chars().count() > MAX_MESSAGE {
        let cut: String = message.chars().take(MAX_MESSAGE).collect();
        format!("{cut}…")
    } else {
        message
    }
}

fn parse_base(variable: &str, raw: &str) -> Result<Url, ProviderError> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        ProviderError::Permanent(format!(
            "{variable} = {} is not a URL: {e}",
            redact_url(raw)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(ProviderError::Permanent(format!(
            "{variable} = {} must be an http(s) URL",
            redact_url(raw)
        )));
    }
    Ok(url)
}

fn push_segments(url: &mut Url, segments: &[&str]) {
    let mut path = url.path_segments_mut().expect("checked: can be a base");
    path.pop_if_empty();
    path.extend(segments);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn rate_limit_durations_parse_as_the_providers_write_them() {
        assert_eq!(parse_duration("12ms"), Some(12 * MS));
        assert_eq!(parse_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("0.5s"), Some(500 * MS));
        assert_eq!(
            parse_duration("1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_duration("20"), Some(Duration::from_secs(20)));
        for bad in ["", "soon", "5 minutes", "3x", "ms", "-1", "1.2.3s"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn retry_after_wins_then_the_reset_of_an_exhausted_budget() {
        let limit = RateLimit::from_headers(&headers(&[("retry-after", "3")]));
        assert_eq!(limit.wait_hint(), Some(Duration::from_secs(3)));
        let limit =
            RateLimit::from_headers(&headers(&[("retry-after", "3"), ("retry-after-ms", "250")]));
        assert_eq!(limit.wait_hint(), Some(250 * MS), "the finer header wins");
        let limit = RateLimit::from_headers(&headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]));
        assert_eq!(limit.remaining_requests, Some(0));
        assert_eq!(limit.wait_hint(), Some(Duration::from_secs(360)));
        let limit = RateLimit::from_headers(&headers(&[
            ("x-ratelimit-remaining-requests", "12"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "12ms"),
        ]));
        assert_eq!(
            limit.wait_hint(),
            Some(12 * MS),
            "only the exhausted budget counts"
        );
        let limit = RateLimit::from_headers(&headers(&[("x-ratelimit-remaining-requests", "5")]));
        assert_eq!(limit.wait_hint(), None);
        let limit = RateLimit::from_headers(&headers(&[("retry-after", "Wed, 21 Oct 2026")]));
        assert_eq!(
            limit.wait_hint(),
            None,
            "a date is not a delay we can trust"
        );
    }

    #[test]
    fn only_429_408_and_5xx_are_retried() {
        for code in [429, 408, 500, 502, 503, 504] {
            assert!(is_retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 413, 422] {
            assert!(!is_retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[test]
    fn urls_are_built_per_api_and_shown_without_secrets() {
        let key = Secret::new("sk-secret-0123");
        let e = Endpoint::openai(
            "http://127.0.0.1:9/v1/",
            &key,
            &["chat", "completions"],
            "x",
        )
        .unwrap();
        assert_eq!(e.url.as_str(), "http://127.0.0.1:9/v1/chat/completions");
        let e = Endpoint::azure(
            "https://res.openai.azure.com/?sig=abc",
            &key,
            ("LLM_MODEL", "gpt-4o"),
            &["chat", "completions"],
            "2024-08-01-preview",
            "ENRICH_PROVIDER=azure-openai",
        )
        .unwrap();
        assert_eq!(
            e.url.as_str(),
            "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-08-01-preview"
        );
        let err = Endpoint::azure(
            "",
            &key,
            ("LLM_MODEL", "m"),
            &[],
            "v",
            "ENRICH_PROVIDER=azure-openai",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("AZURE_OPENAI_ENDPOINT") && err.contains("ENRICH_PROVIDER"),
            "{err}"
        );
        let err = Endpoint::openai("https://api.openai.com/v1", &Secret::new(""), &[], "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("OPENAI_API_KEY"), "{err}");
        let err = Endpoint::openai("not a url api-key=sk-secret-0123", &key, &[], "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("OPENAI_BASE_URL") && !err.contains("sk-secret"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_total_wait_bounds_the_retries() {
        // Nothing listens on port 9: every attempt is a transport error.
        let endpoint =
            Endpoint::openai("http://127.0.0.1:9/v1", &Secret::new(""), &["x"], "t").unwrap();
        let limits = HttpLimits {
            timeout_secs: 1,
            max_retries: 1000,
            max_wait_secs: 1,
        };
        let client = HttpClient::new(endpoint, &limits, "test")
            .unwrap()
            .with_backoff(100 * MS, 400 * MS);
        let started = std::time::Instant::now();
        let err = client.post_json(b"{}", "test").await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, ProviderError::Transient(_)), "{err}");
        // 50..100 + 100..200 + 200..400 + 200..400 ms ... stops before 1 s slept
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        let attempts: u32 = err
            .to_string()
            .split("gave up after ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!((3..=12).contains(&attempts), "{attempts} attempts: {err}");
    }
}
