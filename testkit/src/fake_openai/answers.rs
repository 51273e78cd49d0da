//! Chat answers the fake writes by itself: one valid instance of the
//! request's strict JSON schema, and the faults a test can put in it.
//!
//! The instance is the smallest valid one, read off the schema alone: the
//! first branch of an `anyOf`, the first non-null value of an `enum`, null
//! where the type allows it, empty arrays, every property of an object. For
//! the enrichment's schema (a `reviews` object keyed by review id, each with
//! a nullable `main_aspect` and a list of `other_aspects`) that is, for every
//! review asked, its first allowed feature as the main aspect, positive.

use serde_json::{Map, Value};

/// Something wrong with an answer, as a provider sometimes answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFault {
    /// The text is cut in the middle: not JSON.
    Malformed,
    /// A review asked about is not in the answer.
    MissingReview,
    /// The review gets one more aspect, naming a feature that is not among
    /// its allowed names (as a model ignoring the schema would).
    UnknownFeature,
    /// A sentiment outside positive / negative / neutral.
    BadSentiment,
}

/// The feature name [`ChatFault::UnknownFeature`] adds.
pub const UNKNOWN_FEATURE: &str = "Teleportation Module";
/// The sentiment [`ChatFault::BadSentiment`] writes.
pub const BAD_SENTIMENT: &str = "ecstatic";

/// The keys of the `reviews` object the schema asks for: the review ids of
/// an enrichment request (empty for any other schema).
pub fn review_keys(schema: &Value) -> Vec<String> {
    schema
        .pointer("/properties/reviews/properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The smallest valid instance of `schema` (`root` resolves `$ref`s).
pub fn instance(schema: &Value, root: &Value) -> Value {
    let Some(object) = schema.as_object() else {
        return Value::Null;
    };
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or(&Value::Null);
        return instance(target, root);
    }
    if let Some(first) = object
        .get("anyOf")
        .and_then(Value::as_array)
        .and_then(|b| b.first())
    {
        return instance(first, root);
    }
    if let Some(value) = object.get("const") {
        return value.clone();
    }
    if let Some(values) = object.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .find(|v| !v.is_null())
            .or(values.first())
            .cloned()
            .unwrap_or(Value::Null);
    }
    let types: Vec<&str> = match object.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(t)) => t.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"null") {
        return Value::Null;
    }
    match types.first().copied() {
        Some("object") => {
            let mut out = Map::new();
            if let Some(properties) = object.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    out.insert(name.clone(), instance(property, root));
                }
            }
            Value::Object(out)
        }
        Some("array") => Value::Array(vec![]),
        Some("string") => Value::String(String::new()),
        Some("integer") | Some("number") => Value::from(0),
        Some("boolean") => Value::Bool(false),
        _ => Value::Null,
    }
}

/// `answer` with `fault` on the review `key`; `None` for
/// [`ChatFault::Malformed`], whose answer is not JSON at all.
pub fn apply_fault(answer: &mut Value, key: &str, fault: ChatFault) -> Option<()> {
    let reviews = answer.get_mut("reviews")?.as_object_mut()?;
    match fault {
        ChatFault::Malformed => return None,
        ChatFault::MissingReview => {
            reviews.remove(key);
        }
        ChatFault::UnknownFeature => {
            let review = reviews.get_mut(key)?;
            let mut aspect = first_with(review, "feature")?.clone();
            aspect["feature"] = Value::String(UNKNOWN_FEATURE.into());
            match first_array(review) {
                Some(list) => list.push(aspect),
                None => *first_with_mut(review, "feature")? = aspect,
            }
        }
        ChatFault::BadSentiment => {
            let review = reviews.get_mut(key)?;
            first_with_mut(review, "sentiment")?["sentiment"] = Value::String(BAD_SENTIMENT.into());
        }
    }
    Some(())
}

/// The text of a malformed answer: the valid one cut in half.
pub fn malformed(answer: &Value) -> String {
    let text = answer.to_string();
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_string()
}

/// The first object (depth first) holding the property `name`.
fn first_with<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Object(o) if o.contains_key(name) => Some(value),
        Value::Object(o) => o.values().find_map(|v| first_with(v, name)),
        Value::Array(items) => items.iter().find_map(|v| first_with(v, name)),
        _ => None,
    }
}

fn first_with_mut<'a>(value: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    if value.as_object().is_some_and(|o| o.contains_key(name)) {
        return Some(value);
    }
    match value {
        Value::Object(o) => o.values_mut().find_map(|v| first_with_mut(v, name)),
        Value::Array(items) => items.iter_mut().find_map(|v| first_with_mut(v, name)),
        _ => None,
    }
}

fn first_array(value: &mut Value) -> Option<&mut Vec<Value>> {
    value
        .as_object_mut()?
        .values_mut()
        .find_map(|v| v.as_array_mut())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn aspect(names: &[&str]) -> Value {
        json!({"type": "object", "additionalProperties": false,
            "required": ["feature", "sentiment", "evidence"],
            "properties": {
                "feature": {"type": "string", "enum": names},
                "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
                "evidence": {"type": ["string", "null"]}}})
    }

    fn schema() -> Value {
        json!({"type": "object", "additionalProperties": false, "required": ["reviews"],
            "properties": {"reviews": {"type": "object", "additionalProperties": false,
                "required": ["7", "9"],
                "properties": {
                    "7": {"type": "object", "additionalProperties": false,
                        "required": ["main_aspect", "other_aspects"],
                        "properties": {
                            "main_aspect": {"anyOf": [aspect(&["Screen", "Battery Life"]), {"type": "null"}]},
                            "other_aspects": {"type": "array", "items": aspect(&["Screen", "Battery Life"])}}},
                    "9": {"type": "object", "additionalProperties": false,
                        "required": ["main_aspect", "other_aspects"],
                        "properties": {
                            "main_aspect": aspect(&["Grip"]),
                            "other_aspects": {"type": "array", "items": aspect(&["Grip"])}}}}}}})
    }

    #[test]
    fn the_instance_answers_every_review_with_its_first_feature() {
        let s = schema();
        assert_eq!(review_keys(&s), ["7", "9"]);
        let answer = instance(&s, &s);
        assert_eq!(
            answer,
            json!({"reviews": {
                "7": {"main_aspect": {"feature": "Screen", "sentiment": "positive", "evidence": null},
                      "other_aspects": []},
                "9": {"main_aspect": {"feature": "Grip", "sentiment": "positive", "evidence": null},
                      "other_aspects": []}}})
        );
    }

    #[test]
    fn faults_touch_only_the_review_named() {
        let s = schema();
        let clean = instance(&s, &s);
        let mut missing = clean.clone();
        apply_fault(&mut missing, "9", ChatFault::MissingReview).unwrap();
        assert!(missing["reviews"].get("9").is_none());
        assert_eq!(missing["reviews"]["7"], clean["reviews"]["7"]);
        let mut unknown = clean.clone();
        apply_fault(&mut unknown, "7", ChatFault::UnknownFeature).unwrap();
        assert_eq!(
            unknown["reviews"]["7"]["other_aspects"][0]["feature"],
            UNKNOWN_FEATURE
        );
        assert_eq!(unknown["reviews"]["7"]["main_aspect"]["feature"], "Screen");
        let mut bad = clean.clone();
        apply_fault(&mut bad, "9", ChatFault::BadSentiment).unwrap();
        assert_eq!(
            bad["reviews"]["9"]["main_aspect"]["sentiment"],
            BAD_SENTIMENT
        );
        assert!(serde_json::from_str::<Value>(&malformed(&clean)).is_err());
    }
}
