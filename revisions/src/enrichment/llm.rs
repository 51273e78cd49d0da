//! The LLM analysers (`ENRICH_PROVIDER=openai` or `azure-openai`): a chat
//! model decides each review's aspects, through Chat Completions with a
//! strict JSON schema, or through the Batch API (`ENRICH_BATCH_API=true`).
//!
//! - **Requests.** Up to `ENRICH_REVIEWS_PER_REQUEST` reviews go in one
//!   request. The schema gives each review id its own entry, whose feature
//!   names are an `enum` of that review's product's features only: a
//!   `main_aspect` (nullable, or fixed to the review's known feature) and a
//!   list of `other_aspects`, each a feature, a sentiment and an optional
//!   verbatim quote. Reviews whose product has no features are decided
//!   without asking (no aspects, no main feature).
//! - **Pace.** [`Pace`] lets `ENRICH_CONCURRENCY` requests of this worker
//!   be in flight at most. It sees every HTTP attempt (an
//!   [`providers::http::Observer`]), the 429s that the HTTP client retries
//!   itself included: a 429 halves the limit and holds every new request
//!   until the time the provider asked for (`Retry-After`, or the reset of
//!   an exhausted `x-ratelimit-remaining-*` budget, which a successful
//!   answer may report too); the limit then grows back by one after as many
//!   successes in a row as the limit. 5xx and time-outs are retried by the
//!   HTTP client, within `LLM_HTTP_MAX_RETRIES` and `LLM_HTTP_MAX_WAIT_SECS`;
//!   past them the whole call fails and the task is retried.
//! - **Validation.** An aspect naming a feature that is not the review's is
//!   dropped (and counted); names match case-insensitively, as the original
//!   matches them. Malformed JSON, a review missing from the answer, an
//!   unknown sentiment, or no sentiment about a review's known feature make
//!   the request asked again, for the reviews still undecided, up to
//!   `ENRICH_ANSWER_TRIES` tries; then those reviews are
//!   [`ReviewOutcome::Failed`] with the last reason, and the others stand.
//! - **Batch API.** [`BatchAnalyser::submit_batch`] uploads the same requests
//!   as a JSONL file and creates a batch; [`BatchAnalyser::poll_batch`] reads
//!   its state and, once it is done, its output file, validated as above
//!   (an unusable answer is not asked again inside a batch: its reviews
//!   fail).

use super::analyser::{AnalysedBatch, BatchAnalyser, BatchPoll, ReviewAnalyser, ReviewOutcome};
use analysis::{Aspect, Review, ReviewAspects, Sentiment};
use futures_util::{StreamExt, TryStreamExt};
use providers::batch::{Batch, BatchClient};
use providers::chat::{ChatAnswer, ChatClient, JsonSchema, Message, Usage};
use providers::http::Attempted;
use providers::ProviderError;
use serde_json::{json, Value};
use shared::config::EnrichProvider;
use shared::exec::Permanent;
use shared::Config;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A chat model gives no calibrated confidence; its aspects are recorded
/// with this one, the top of the local analyser's scale.
pub const LLM_CONFIDENCE: f32 = 1.0;

/// OpenAI's limit on enum values across one strict schema; reviews with
/// long feature lists go in smaller requests to stay under it.
pub const MAX_ENUM_VALUES: usize = 1000;

/// After a 429 that names no time to wait, how long further 429s count as
/// the same rate limit (no second halving); the HTTP client's own back-off
/// spaces the retries.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

const SYSTEM_PROMPT: &str = "\
You analyse product reviews feature by feature (aspect-based sentiment analysis).

You receive a JSON list of reviews. Each has an id, its text, the star rating its author gave \
(1 to 5) when known, and `features`: the features of the reviewed product, the only ones you may name \
for that review. For every review, answer under its id:

- The features of its list that the review talks about, each with the sentiment the review expresses \
about that feature: \"positive\", \"negative\", or \"neutral\" (mentioned without a clear opinion, or with \
praise and criticism that balance out).
- Judge each feature only on what is said about it, not on the tone of the whole review: one review can \
praise one feature and criticise another. Read negation (\"not bad\", \"no longer works\"), contrast \
(\"but\", \"although\", \"except\"), comparisons and sarcasm for what they mean. The rating is the author's \
overall score; use it only to settle a feature whose sentiment the text leaves unclear.
- A feature counts when the review talks about it, with its name or in other words (a synonym, a part \
of it, what it does). Do not name a feature the review does not talk about, and never a name that is \
not in the review's list: spell names exactly as listed.
- `main_aspect` is the feature the review is mostly about, with its sentiment; `other_aspects` holds \
every other feature it talks about, each once. When the review talks about none of its features, \
`main_aspect` is null and `other_aspects` is empty.
- When a review has `main_feature`, that feature is known to be its main one: `main_aspect` is that \
feature, with the sentiment the review expresses about it (\"neutral\" when it says nothing clear \
about it).
- `evidence` is the shortest part of the review text that carries the sentiment (a clause or a \
sentence), copied character for character, or null when no part of the text does.

Answer for every review id you are given.";

/// The batch id [`BatchAnalyser::submit_batch`] answers when no review
/// needs the provider (their products have no features), as a batch cannot
/// be empty; [`BatchAnalyser::poll_batch`] decides them with no request.
pub const NO_BATCH: &str = "none:no-review-needs-the-provider";

pub struct LlmAnalyser {
    chat: ChatClient,
    /// With `ENRICH_BATCH_API=true`.
    batch: Option<BatchClient>,
    source: String,
    per_request: usize,
    answer_tries: u32,
    pace: Arc<Pace>,
}

impl LlmAnalyser {
    /// The analyser `ENRICH_PROVIDER` names, or why the settings do not
    /// allow it (a missing key or endpoint, named by its variable).
    pub fn new(config: &Config) -> Result<LlmAnalyser, String> {
        let e = &config.enrichment;
        let setting = format!("ENRICH_PROVIDER={}", e.provider);
        let pace = Arc::new(Pace::new(e.concurrency));
        let observer = {
            let pace = pace.clone();
            Arc::new(move |attempt: &Attempted| pace.observe(attempt))
        };
        let (chat, batch) = match e.provider {
            EnrichProvider::OpenAi => (
                ChatClient::openai(&config.openai, &e.llm_model, &setting),
                e.batch_api
                    .then(|| BatchClient::openai(&config.openai, &setting))
                    .transpose(),
            ),
            EnrichProvider::AzureOpenAi => (
                ChatClient::azure(&config.openai, &e.llm_model, &setting),
                e.batch_api
                    .then(|| BatchClient::azure(&config.openai, &setting))
                    .transpose(),
            ),
            EnrichProvider::Local => {
                return Err("ENRICH_PROVIDER=local is not an LLM provider".into());
            }
        };
        let chat = chat.map_err(|e| e.to_string())?.with_observer(observer);
        let batch = batch.map_err(|e| e.to_string())?;
        Ok(LlmAnalyser {
            source: format!("{}:{}", chat.api().name(), chat.model()),
            chat,
            batch,
            per_request: e.reviews_per_request.max(1),
            answer_tries: e.answer_tries.max(1),
            pace,
        })
    }

    /// Changes the HTTP back-off delays (tests use milliseconds).
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.chat = self.chat.with_backoff(base, max);
        self.batch = self.batch.map(|b| b.with_backoff(base, max));
        self
    }

    /// The pace of this analyser's requests, as it stands.
    pub fn pace(&self) -> PaceReport {
        self.pace.report()
    }

    fn batch_client(&self) -> anyhow::Result<&BatchClient> {
        self.batch.as_ref().ok_or_else(|| {
            Permanent::new(format!(
                "{}: the Batch API is used only with ENRICH_BATCH_API=true",
                self.source
            ))
            .into()
        })
    }

    /// The outcomes of a finished batch's output (and error) file.
    fn read_batch_output(
        &self,
        batch: &Batch,
        output: &str,
        errors: &str,
        reviews: &[Review],
    ) -> AnalysedBatch {
        let mut result = AnalysedBatch::default();
        // Every review's answer, whichever line holds it.
        let mut answered: HashMap<String, Value> = HashMap::new();
        let mut line_problems: HashMap<String, String> = HashMap::new();
        for line in output.lines().chain(errors.lines()) {
            let Ok(line) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            result.requests += 1;
            let id = line["custom_id"].as_str().unwrap_or_default().to_string();
            let status = line.pointer("/response/status_code").and_then(Value::as_u64);
            let body = line.pointer("/response/body");
            if status != Some(200) {
                let message = body
                    .and_then(|b| b.pointer("/error/message"))
                    .or_else(|| line.pointer("/error/message"))
                    .and_then(Value::as_str)
                    .unwrap_or("no answer");
                let status = status.map_or_else(String::new, |s| format!("HTTP {s}: "));
                line_problems.insert(id, format!("{status}{message}"));
                continue;
            }
            let body = body.map(Value::to_string).unwrap_or_default();
            match self.chat.read_completion(&body) {
                Ok(answer) => {
                    add_usage(&mut result, answer.usage);
                    match parse_answer(&answer.content) {
                        Ok(map) => answered.extend(map),
                        Err(problem) => {
                            line_problems.insert(id, problem);
                        }
                    }
                }
                Err(ProviderError::Unusable { reason, usage }) => {
                    add_usage(&mut result, usage);
                    line_problems.insert(id, reason);
                }
                Err(e) => {
                    line_problems.insert(id, e.to_string());
                }
            }
        }
        let asked: Vec<&Review> = reviews.iter().filter(|r| !r.features.is_empty()).collect();
        let mut problem_of: HashMap<i64, &String> = HashMap::new();
        for (i, group) in requests(&asked, self.per_request).iter().enumerate() {
            if let Some(problem) = line_problems.get(&custom_id(i)) {
                problem_of.extend(group.iter().map(|r| (r.id, problem)));
            }
        }
        for review in reviews {
            let outcome = if review.features.is_empty() {
                Ok((no_aspects(review), 0))
            } else {
                match answered.get(&review.id.to_string()) {
                    Some(entry) => decide(review, entry),
                    None => Err(match problem_of.get(&review.id) {
                        Some(problem) => (*problem).clone(),
                        None => format!(
                            "no answer for review {} in the output of the {} batch",
                            review.id, batch.status
                        ),
                    }),
                }
            };
            result.outcomes.push((
                review.id,
                match outcome {
                    Ok((aspects, dropped)) => {
                        result.dropped_features += dropped;
                        ReviewOutcome::Analysed(aspects)
                    }
                    Err(reason) => ReviewOutcome::Failed(format!(
                        "{} batch {}: {reason}",
                        self.source, batch.id
                    )),
                },
            ));
        }
        result
    }

    /// One request's reviews, asked until each is decided or the tries are
    /// spent.
    async fn decide_group(&self, group: Vec<&Review>) -> anyhow::Result<GroupResult> {
        let mut result = GroupResult::default();
        let mut pending = group;
        let mut problems: HashMap<i64, String> = HashMap::new();
        for attempt in 1..=self.answer_tries {
            let (messages, schema) = request(&pending);
            let answer = {
                let _permit = self.pace.acquire().await;
                self.chat.complete(&messages, Some(&schema)).await
            };
            let content = match answer {
                Ok(ChatAnswer {
                    content,
                    usage,
                    attempts,
                    ..
                }) => {
                    result.requests += u64::from(attempts);
                    result.usage.prompt_tokens += usage.prompt_tokens;
                    result.usage.completion_tokens += usage.completion_tokens;
                    Ok(content)
                }
                Err(ProviderError::Unusable { reason, usage }) => {
                    result.requests += 1;
                    result.usage.prompt_tokens += usage.prompt_tokens;
                    result.usage.completion_tokens += usage.completion_tokens;
                    Err(reason)
                }
                Err(e) => return Err(provider_error(&self.source, e)),
            };
            let answered = content.and_then(|c| parse_answer(&c));
            let mut still = Vec::new();
            for review in pending {
                let decided = match &answered {
                    Ok(map) => match map.get(&review.id.to_string()) {
                        Some(entry) => decide(review, entry),
                        None => Err(format!("the answer has no entry for review {}", review.id)),
                    },
                    Err(problem) => Err(problem.clone()),
                };
                match decided {
                    Ok((aspects, dropped)) => {
                        result.dropped_features += dropped;
                        result.outcomes.insert(review.id, ReviewOutcome::Analysed(aspects));
                    }
                    Err(problem) => {
                        problems.insert(review.id, problem);
                        still.push(review);
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if attempt < self.answer_tries {
                tracing::warn!(
                    "{}: the answer for {} review(s) is unusable (try {attempt} of {}), asking again: {}",
                    self.source,
                    pending.len(),
                    self.answer_tries,
                    problems[&pending[0].id]
                );
            }
        }
        for review in pending {
            let problem = problems.remove(&review.id).unwrap_or_default();
            result.outcomes.insert(
                review.id,
                ReviewOutcome::Failed(format!(
                    "{}: {problem} (after {} tries)",
                    self.source, self.answer_tries
                )),
            );
        }
        Ok(result)
    }
}

#[async_trait::async_trait]
impl ReviewAnalyser for LlmAnalyser {
    fn source(&self) -> String {
        self.source.clone()
    }

    fn batch(&self) -> Option<&dyn BatchAnalyser> {
        self.batch.as_ref().map(|_| self as &dyn BatchAnalyser)
    }

    async fn analyse(&self, reviews: Vec<Review>) -> anyhow::Result<AnalysedBatch> {
        let asked: Vec<&Review> = reviews.iter().filter(|r| !r.features.is_empty()).collect();
        let groups = requests(&asked, self.per_request);
        // The pace admits the requests; this only bounds the futures alive.
        let mut asks = Vec::with_capacity(groups.len());
        for group in groups {
            asks.push(self.decide_group(group));
        }
        let results: Vec<GroupResult> = futures_util::stream::iter(asks)
            .buffer_unordered(self.pace.max.max(1))
            .try_collect()
            .await?;
        let mut batch = AnalysedBatch::default();
        let mut outcomes = HashMap::new();
        for result in results {
            batch.requests += result.requests;
            batch.dropped_features += result.dropped_features;
            add_usage(&mut batch, result.usage);
            outcomes.extend(result.outcomes);
        }
        batch.outcomes = reviews
            .iter()
            .map(|r| {
                let outcome = match outcomes.remove(&r.id) {
                    Some(outcome) => outcome,
                    None => ReviewOutcome::Analysed(no_aspects(r)),
                };
                (r.id, outcome)
            })
            .collect();
        Ok(batch)
    }
}

#[async_trait::async_trait]
impl BatchAnalyser for LlmAnalyser {
    /// Uploads the requests for `reviews` as a JSONL file and creates a
    /// batch of them; its id ([`NO_BATCH`] when none needs the provider).
    async fn submit_batch(&self, reviews: &[Review]) -> anyhow::Result<String> {
        let client = self.batch_client()?;
        let asked: Vec<&Review> = reviews.iter().filter(|r| !r.features.is_empty()).collect();
        if asked.is_empty() {
            return Ok(NO_BATCH.to_string());
        }
        let mut jsonl = String::new();
        for (i, group) in requests(&asked, self.per_request).iter().enumerate() {
            let (messages, schema) = request(group);
            let line = self
                .chat
                .batch_line(&custom_id(i), &messages, Some(&schema));
            jsonl.push_str(&line.to_string());
            jsonl.push('\n');
        }
        let filename = format!(
            "enrichment-reviews-{}-{}.jsonl",
            asked[0].id,
            asked[asked.len() - 1].id
        );
        let file_id = client
            .upload(&filename, jsonl.as_bytes())
            .await
            .map_err(|e| provider_error(&self.source, e))?;
        let batch = client
            .create(&file_id)
            .await
            .map_err(|e| provider_error(&self.source, e))?;
        tracing::info!(
            "{}: batch {} submitted for {} reviews (file {file_id})",
            self.source,
            batch.id,
            asked.len()
        );
        Ok(batch.id)
    }

    /// The state of batch `batch_id`, submitted for `reviews`; once it is
    /// done, one outcome per review of `reviews`, in order. An answer the
    /// output file holds that cannot be used fails its reviews: a batch is
    /// not asked again.
    async fn poll_batch(&self, batch_id: &str, reviews: &[Review]) -> anyhow::Result<BatchPoll> {
        if batch_id == NO_BATCH {
            return Ok(BatchPoll::Done(AnalysedBatch {
                outcomes: reviews
                    .iter()
                    .map(|r| (r.id, ReviewOutcome::Analysed(no_aspects(r))))
                    .collect(),
                ..AnalysedBatch::default()
            }));
        }
        let client = self.batch_client()?;
        let fail = |e| provider_error(&self.source, e);
        let batch = client.retrieve(batch_id).await.map_err(fail)?;
        if batch.is_pending() {
            return Ok(BatchPoll::Pending(batch.status));
        }
        let Some(output_file) = batch.output_file_id.clone().filter(|_| batch.status != "failed")
        else {
            return Ok(BatchPoll::Failed(batch.error_summary()));
        };
        let output = client.content(&output_file).await.map_err(fail)?;
        let errors = match &batch.error_file_id {
            Some(file) => client.content(file).await.map_err(fail)?,
            None => String::new(),
        };
        Ok(BatchPoll::Done(self.read_batch_output(
            &batch, &output, &errors, reviews,
        )))
    }
}

#[derive(Default)]
struct GroupResult {
    outcomes: HashMap<i64, ReviewOutcome>,
    usage: Usage,
    requests: u64,
    dropped_features: u64,
}

fn add_usage(batch: &mut AnalysedBatch, usage: Usage) {
    batch.prompt_tokens += usage.prompt_tokens;
    batch.completion_tokens += usage.completion_tokens;
}

/// A provider error as the executor should see it: a refusal that no retry
/// changes (a 4xx other than 429) fails the task at once.
fn provider_error(source: &str, e: ProviderError) -> anyhow::Error {
    match e {
        ProviderError::Permanent(message) => {
            Permanent::new(format!("LLM provider ({source}): {message}")).into()
        }
        other => anyhow::anyhow!("LLM provider ({source}): {other}"),
    }
}

fn custom_id(request: usize) -> String {
    format!("request-{request}")
}

/// A review decided without asking: its product has no features.
fn no_aspects(review: &Review) -> ReviewAspects {
    ReviewAspects {
        review_id: review.id,
        aspects: Vec::new(),
        main_feature: None,
    }
}

/// The reviews' distinct feature names, in their order (case-insensitively
/// distinct: the schema's enum cannot repeat a value).
fn feature_names(review: &Review) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    review
        .features
        .iter()
        .map(|f| f.name.trim())
        .filter(|name| !name.is_empty() && seen.insert(name.to_lowercase()))
        .collect()
}

fn known_name(review: &Review) -> Option<&str> {
    let known = review.known_feature?;
    review
        .features
        .iter()
        .find(|f| f.id == known)
        .map(|f| f.name.trim())
}

/// How many enum values a review adds to a schema.
fn enum_cost(review: &Review) -> usize {
    feature_names(review).len() + usize::from(review.known_feature.is_some())
}

/// `reviews` in requests of at most `per_request`, each schema within
/// [`MAX_ENUM_VALUES`] (a review over it alone still goes, alone).
fn requests<'a>(reviews: &[&'a Review], per_request: usize) -> Vec<Vec<&'a Review>> {
    let mut groups: Vec<Vec<&Review>> = Vec::new();
    let mut cost = 0;
    for review in reviews {
        let review_cost = enum_cost(review);
        let full = groups.last().is_none_or(|g| {
            g.len() >= per_request || cost + review_cost + Sentiment::ALL.len() > MAX_ENUM_VALUES
        });
        if full {
            groups.push(Vec::new());
            cost = 0;
        }
        cost += review_cost;
        groups.last_mut().expect("just pushed").push(review);
    }
    groups
}

/// The messages and the schema of one request.
fn request(reviews: &[&Review]) -> (Vec<Message>, JsonSchema) {
    let listed: Vec<Value> = reviews
        .iter()
        .map(|r| {
            let mut entry = json!({
                "id": r.id.to_string(),
                "text": r.text,
                "features": feature_names(r),
            });
            if let Some(rating) = r.rating {
                entry["rating"] = json!(rating);
            }
            if let Some(known) = known_name(r) {
                entry["main_feature"] = json!(known);
            }
            entry
        })
        .collect();
    let user = format!(
        "Reviews:\n{}",
        serde_json::to_string_pretty(&listed).expect("JSON values serialise")
    );
    (
        vec![Message::system(SYSTEM_PROMPT), Message::user(user)],
        schema(reviews),
    )
}

/// The strict schema of one request: `{"reviews": {"<id>": {"main_aspect",
/// "other_aspects"}}}`, each review's features as its own enum.
pub fn schema(reviews: &[&Review]) -> JsonSchema {
    let mut defs = serde_json::Map::new();
    defs.insert(
        "sentiment".into(),
        json!({"type": "string", "enum": Sentiment::ALL.map(|s| s.as_str())}),
    );
    let aspect = |names: Vec<&str>| {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["feature", "sentiment", "evidence"],
            "properties": {
                "feature": {"type": "string", "enum": names},
                "sentiment": {"$ref": "#/$defs/sentiment"},
                "evidence": {"type": ["string", "null"]},
            },
        })
    };
    let mut properties = serde_json::Map::new();
    for review in reviews {
        let id = review.id.to_string();
        let any = format!("aspect_{id}");
        defs.insert(any.clone(), aspect(feature_names(review)));
        let main = match known_name(review) {
            Some(known) => {
                let fixed = format!("known_{id}");
                defs.insert(fixed.clone(), aspect(vec![known]));
                json!({"$ref": format!("#/$defs/{fixed}")})
            }
            None => json!({"anyOf": [{"$ref": format!("#/$defs/{any}")}, {"type": "null"}]}),
        };
        properties.insert(
            id,
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["main_aspect", "other_aspects"],
                "properties": {
                    "main_aspect": main,
                    "other_aspects": {"type": "array", "items": {"$ref": format!("#/$defs/{any}")}},
                },
            }),
        );
    }
    let required: Vec<String> = properties.keys().cloned().collect();
    JsonSchema {
        name: "review_aspects".into(),
        schema: json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["reviews"],
            "properties": {
                "reviews": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": required,
                    "properties": properties,
                },
            },
            "$defs": defs,
        }),
    }
}

/// The answer's entries by review id, or why it is not the JSON asked for.
fn parse_answer(content: &str) -> Result<serde_json::Map<String, Value>, String> {
    let value: Value = serde_json::from_str(content)
        .map_err(|e| format!("the answer is not JSON: {e}"))?;
    match value.get("reviews") {
        Some(Value::Object(map)) => Ok(map.clone()),
        _ => Err("the answer has no \"reviews\" object".into()),
    }
}

/// One aspect as answered: its feature name, sentiment and quote.
struct Answered<'a> {
    feature: &'a str,
    sentiment: Sentiment,
    evidence: Option<&'a str>,
}

fn read_aspect<'a>(review: &Review, value: &'a Value) -> Result<Answered<'a>, String> {
    let feature = value
        .get("feature")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("review {}: an aspect without a feature name", review.id))?;
    let sentiment = value
        .get("sentiment")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("review {}: {feature:?} has no sentiment", review.id))?;
    let sentiment = sentiment
        .parse()
        .map_err(|e| format!("review {}: {feature:?}: {e}", review.id))?;
    Ok(Answered {
        feature,
        sentiment,
        evidence: value.get("evidence").and_then(Value::as_str),
    })
}

/// One review's entry as its aspects, and how many named features were
/// not the review's; `Err` when the entry cannot be used.
fn decide(review: &Review, entry: &Value) -> Result<(ReviewAspects, u64), String> {
    let main = match entry.get("main_aspect") {
        None | Some(Value::Null) => None,
        Some(value) => Some(read_aspect(review, value)?),
    };
    let others = match entry.get("other_aspects") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| read_aspect(review, v))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(format!("review {}: other_aspects is not a list", review.id)),
    };
    let id_of = |name: &str| {
        let name = name.trim().to_lowercase();
        review
            .features
            .iter()
            .find(|f| f.name.trim().to_lowercase() == name)
            .map(|f| f.id)
    };
    let mut dropped = 0u64;
    let mut aspects: Vec<Aspect> = Vec::new();
    let mut main_feature = None;
    for (is_main, answered) in main
        .iter()
        .map(|a| (true, a))
        .chain(others.iter().map(|a| (false, a)))
    {
        let Some(feature_id) = id_of(answered.feature) else {
            dropped += 1;
            tracing::debug!(
                "review {}: dropped the aspect {:?}, not a feature of its product",
                review.id,
                answered.feature
            );
            continue;
        };
        if aspects.iter().any(|a| a.feature_id == feature_id) {
            continue;
        }
        if is_main {
            main_feature = Some(feature_id);
        }
        let (span, evidence) = locate(&review.text, answered.evidence);
        aspects.push(Aspect {
            feature_id,
            sentiment: answered.sentiment,
            confidence: LLM_CONFIDENCE,
            span,
            evidence,
        });
    }
    if let Some(known) = review.known_feature {
        let Some(i) = aspects.iter().position(|a| a.feature_id == known) else {
            return Err(format!(
                "review {}: no sentiment about its feature {:?}",
                review.id,
                known_name(review).unwrap_or("?")
            ));
        };
        let first = aspects.remove(i);
        aspects.insert(0, first);
        main_feature = Some(known);
    } else if main_feature.is_none() {
        // Aspects without a main one: the first named stands for it.
        main_feature = aspects.first().map(|a| a.feature_id);
    }
    Ok((
        ReviewAspects {
            review_id: review.id,
            aspects,
            main_feature,
        },
        dropped,
    ))
}

/// Where `quote` is in `text`, and the text there, verbatim; a quote that is
/// not in the text (the model paraphrased) is not kept as evidence.
fn locate(text: &str, quote: Option<&str>) -> (std::ops::Range<usize>, String) {
    let Some(quote) = quote.map(str::trim).filter(|q| !q.is_empty()) else {
        return (0..0, String::new());
    };
    let start = text.find(quote).or_else(|| {
        // ASCII case folding keeps byte offsets, so the span is the text's.
        text.to_ascii_lowercase()
            .find(&quote.to_ascii_lowercase())
            .filter(|&i| text.is_char_boundary(i) && text.is_char_boundary(i + quote.len()))
    });
    match start {
        Some(start) => {
            let span = start..start + quote.len();
            (span.clone(), text[span].to_string())
        }
        None => (0..0, String::new()),
    }
}

/// The adaptive concurrency of one analyser's requests; see the module
/// documentation.
pub struct Pace {
    max: usize,
    state: Mutex<PaceState>,
    wake: tokio::sync::Notify,
}

#[derive(Debug)]
struct PaceState {
    limit: usize,
    in_flight: usize,
    successes: usize,
    /// No request starts before this.
    hold_until: Option<Instant>,
    /// 429s before this belong to the rate limit already acted on.
    calm_after: Option<Instant>,
    lowered: u64,
    raised: u64,
    refused: u64,
}

/// What [`Pace`] has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceReport {
    pub max: usize,
    pub limit: usize,
    pub in_flight: usize,
    /// Times the limit was halved, and raised again by one.
    pub lowered: u64,
    pub raised: u64,
    /// 429s seen.
    pub refused: u64,
}

/// A request's place in flight; gives it back when dropped.
pub struct PacePermit<'a>(&'a Pace);

impl Drop for PacePermit<'_> {
    fn drop(&mut self) {
        self.0.state.lock().unwrap().in_flight -= 1;
        self.0.wake.notify_waiters();
    }
}

impl Pace {
    pub fn new(max: usize) -> Pace {
        let max = max.max(1);
        Pace {
            max,
            state: Mutex::new(PaceState {
                limit: max,
                in_flight: 0,
                successes: 0,
                hold_until: None,
                calm_after: None,
                lowered: 0,
                raised: 0,
                refused: 0,
            }),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn report(&self) -> PaceReport {
        let s = self.state.lock().unwrap();
        PaceReport {
            max: self.max,
            limit: s.limit,
            in_flight: s.in_flight,
            lowered: s.lowered,
            raised: s.raised,
            refused: s.refused,
        }
    }

    /// Waits until a request may start: fewer than the limit in flight, and
    /// past any time the provider asked to wait.
    pub async fn acquire(&self) -> PacePermit<'_> {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let hold = {
                let mut s = self.state.lock().unwrap();
                match s.hold_until.filter(|&until| until > Instant::now()) {
                    Some(until) => Some(until),
                    None if s.in_flight < s.limit => {
                        s.in_flight += 1;
                        return PacePermit(self);
                    }
                    None => None,
                }
            };
            match hold {
                Some(until) => tokio::time::sleep_until(until.into()).await,
                None => woken.await,
            }
        }
    }

    /// One HTTP attempt's outcome.
    pub fn observe(&self, attempt: &Attempted) {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap();
        let wait = attempt.rate_limit.wait_hint();
        match attempt.status {
            Some(status) if status.as_u16() == 429 => {
                s.refused += 1;
                s.successes = 0;
                let pause = wait
                    .unwrap_or(DEFAULT_PAUSE)
                    .min(providers::http::MAX_RETRY_AFTER);
                if s.calm_after.is_none_or(|calm| now >= calm) {
                    s.limit = (s.limit / 2).max(1);
                    s.lowered += 1;
                    s.calm_after = Some(now + pause);
                }
                if wait.is_some() {
                    s.hold_until = s.hold_until.max(Some(now + pause));
                }
            }
            Some(status) if status.is_success() => {
                if let Some(wait) = wait {
                    // The budget is spent: hold new requests until it refills.
                    let until = now + wait.min(providers::http::MAX_RETRY_AFTER);
                    s.hold_until = s.hold_until.max(Some(until));
                }
                s.successes += 1;
                if s.limit < self.max && s.successes >= s.limit {
                    s.limit += 1;
                    s.raised += 1;
                    s.successes = 0;
                    drop(s);
                    self.wake.notify_waiters();
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use analysis::Feature;
    use providers::http::RateLimit;
    use providers::http::StatusCode;

    fn review(id: i64, text: &str, features: &[(i64, &str)], known: Option<i64>) -> Review {
        Review {
            id,
            text: text.into(),
            rating: Some(4.0),
            features: features
                .iter()
                .map(|(id, name)| Feature {
                    id: *id,
                    name: name.to_string(),
                })
                .collect(),
            known_feature: known,
        }
    }

    #[test]
    fn names_map_back_case_insensitively_and_strangers_are_dropped() {
        let r = review(
            5,
            "The Battery lasts. Screen is dim.",
            &[(1, "Battery Life"), (2, "Screen")],
            None,
        );
        let entry = json!({
            "main_aspect": {"feature": "battery life", "sentiment": "positive", "evidence": "the battery lasts"},
            "other_aspects": [
                {"feature": "SCREEN", "sentiment": "negative", "evidence": "Screen is dim."},
                {"feature": "Warp Drive", "sentiment": "positive", "evidence": null},
                {"feature": "Battery Life", "sentiment": "negative", "evidence": null}
            ]
        });
        let (aspects, dropped) = decide(&r, &entry).unwrap();
        assert_eq!(dropped, 1);
        assert_eq!(aspects.main_feature, Some(1));
        let got: Vec<(i64, Sentiment, &str)> = aspects
            .aspects
            .iter()
            .map(|a| (a.feature_id, a.sentiment, a.evidence.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1, Sentiment::Positive, "The Battery lasts"),
                (2, Sentiment::Negative, "Screen is dim.")
            ],
            "evidence is the text's own spelling; a repeated feature keeps its first aspect"
        );
        assert_eq!(&r.text[aspects.aspects[0].span.clone()], "The Battery lasts");
    }

    #[test]
    fn a_known_feature_is_the_main_one_or_the_entry_is_unusable() {
        let r = review(5, "ok", &[(1, "Battery Life"), (2, "Screen")], Some(2));
        let entry = json!({
            "main_aspect": {"feature": "Battery Life", "sentiment": "positive", "evidence": null},
            "other_aspects": [{"feature": "Screen", "sentiment": "neutral", "evidence": null}]
        });
        let (aspects, _) = decide(&r, &entry).unwrap();
        assert_eq!(aspects.main_feature, Some(2));
        assert_eq!(aspects.aspects[0].feature_id, 2);
        let entry = json!({
            "main_aspect": {"feature": "Battery Life", "sentiment": "positive", "evidence": null},
            "other_aspects": []
        });
        let err = decide(&r, &entry).unwrap_err();
        assert!(err.contains("Screen"), "{err}");
        let bad = json!({"main_aspect": {"feature": "Screen", "sentiment": "great", "evidence": null}, "other_aspects": []});
        let err = decide(&r, &bad).unwrap_err();
        assert!(err.contains("great"), "{err}");
    }

    #[test]
    fn no_main_and_no_aspects_is_a_review_about_none_of_its_features() {
        let r = review(5, "Arrived on time.", &[(1, "Battery Life")], None);
        let (aspects, dropped) =
            decide(&r, &json!({"main_aspect": null, "other_aspects": []})).unwrap();
        assert_eq!((aspects.main_feature, aspects.aspects.len(), dropped), (None, 0, 0));
    }

    #[test]
    fn requests_hold_at_most_the_set_number_and_the_enum_budget() {
        let small: Vec<Review> = (0..25)
            .map(|i| review(i, "t", &[(1, "A"), (2, "B")], None))
            .collect();
        let refs: Vec<&Review> = small.iter().collect();
        let sizes: Vec<usize> = requests(&refs, 10).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let names: Vec<(i64, String)> = (0..400).map(|i| (i, format!("feature {i}"))).collect();
        let named: Vec<(i64, &str)> = names.iter().map(|(i, n)| (*i, n.as_str())).collect();
        let big: Vec<Review> = (0..5).map(|i| review(i, "t", &named, None)).collect();
        let refs: Vec<&Review> = big.iter().collect();
        let sizes: Vec<usize> = requests(&refs, 10).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1], "400 names each: two fit under 1000 enum values");
    }

    #[test]
    fn a_429_halves_the_limit_once_and_successes_grow_it_back_by_one() {
        let pace = Pace::new(4);
        let refused = Attempted {
            status: Some(StatusCode::TOO_MANY_REQUESTS),
            rate_limit: RateLimit {
                retry_after: Some(Duration::from_millis(200)),
                ..RateLimit::default()
            },
        };
        pace.observe(&refused);
        pace.observe(&refused);
        let report = pace.report();
        assert_eq!(
            (report.limit, report.lowered, report.refused),
            (2, 1, 2),
            "the 429s of one limit halve once"
        );
        let ok = Attempted {
            status: Some(StatusCode::OK),
            rate_limit: RateLimit::default(),
        };
        pace.observe(&ok);
        assert_eq!(pace.report().limit, 2);
        pace.observe(&ok);
        assert_eq!(pace.report().limit, 3, "after 2 successes at limit 2");
        for _ in 0..3 {
            pace.observe(&ok);
        }
        assert_eq!(pace.report().limit, 4);
        for _ in 0..10 {
            pace.observe(&ok);
        }
        assert_eq!(pace.report().limit, 4, "never above ENRICH_CONCURRENCY");
    }

    #[tokio::test]
    async fn requests_wait_for_a_place_and_for_the_time_asked() {
        let pace = Pace::new(2);
        let a = pace.acquire().await;
        let _b = pace.acquire().await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), pace.acquire()).await;
        assert!(waiting.is_err(), "a third waits while two are in flight");
        drop(a);
        let c = tokio::time::timeout(Duration::from_millis(50), pace.acquire())
            .await
            .expect("a place freed");
        pace.observe(&Attempted {
            status: Some(StatusCode::OK),
            rate_limit: RateLimit {
                remaining_requests: Some(0),
                reset_requests: Some(Duration::from_millis(300)),
                ..RateLimit::default()
            },
        });
        drop(c);
        let started = Instant::now();
        let _d = pace.acquire().await;
        assert!(
            started.elapsed() >= Duration::from_millis(280),
            "an exhausted budget holds new requests until its reset: {:?}",
            started.elapsed()
        );
    }
}
