//! The texts that get embedded, built from the source rows as DATA-FORMAT.md
//! says, and the content hash that decides whether a row needs embedding
//! again.
//!
//! Kept here, beside the providers, so that the embed workers and anything
//! else that wants to reproduce a stored vector build exactly the same text.
//! The functions are pure: the caller reads the rows, these shape the text.

use scraper::{Html, Node};

/// A product row with what its text needs.
#[derive(Debug, Clone, Default)]
pub struct ProductSource {
    pub category: Option<String>,
    /// HTML (`<h3>`, `<p>`, `<ul><li>`, ...).
    pub description_html: Option<String>,
    /// A JSON object of strings, as stored in `product.specifications`.
    pub specifications: Option<serde_json::Value>,
    /// `(variant_id, attribute_name, attribute_value)`, in a stable order.
    pub variant_attributes: Vec<(i64, String, String)>,
}

/// The product's text: the description without HTML, then its
/// specifications, its category and each variant's attributes
/// (`attribute_name: attribute_value`), one part per paragraph.
pub fn product_text(product: &ProductSource) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(html) = product.description_html.as_deref() {
        let text = html_to_text(html);
        if !text.is_empty() {
            parts.push(text);
        }
    }
    if let Some(specs) = product.specifications.as_ref() {
        let text = specifications_text(specs);
        if !text.is_empty() {
            parts.push(format!("Specifications: {text}"));
        }
    }
    if let Some(category) = product
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        parts.push(format!("Category: {category}"));
    }
    let variants = variants_text(&product.variant_attributes);
    if !variants.is_empty() {
        parts.push(format!("Variants: {variants}"));
    }
    parts.join("\n\n")
}

/// A review's text: its text, trimmed.
pub fn review_text(text: Option<&str>) -> String {
    text.unwrap_or_default().trim().to_string()
}

/// A memory's text: `payload->>'data'`, trimmed.
pub fn memory_text(data: Option<&str>) -> String {
    data.unwrap_or_default().trim().to_string()
}

/// The hash stored with a vector: it changes when the text changes, or when
/// the model that embeds it does (`model` names provider, model and
/// dimensions), so either one makes a re-run embed the row again.
pub fn content_hash(model: &str, text: &str) -> String {
    let mut input = Vec::with_capacity(model.len() + text.len() + 1);
    input.extend_from_slice(model.as_bytes());
    input.push(0);
    input.extend_from_slice(text.as_bytes());
    format!("{:x}", md5::compute(&input))
}

/// Visible text of an HTML fragment: block elements (headings, paragraphs,
/// list items, ...) on lines of their own, list items marked with `- `,
/// whitespace inside a line collapsed, entities decoded by the parser,
/// scripts and styles dropped.
pub fn html_to_text(html: &str) -> String {
    let document = Html::parse_fragment(html);
    let mut out = String::with_capacity(html.len());
    for child in document.root_element().children() {
        walk(child, &mut out);
    }
    tidy(&out)
}

fn walk(node: ego_tree_node::NodeRef<'_>, out: &mut String) {
    match node.value() {
        Node::Text(text) => out.push_str(text),
        Node::Element(element) => {
            let name = element.name();
            if matches!(name, "script" | "style" | "head" | "template" | "noscript") {
                return;
            }
            if name == "br" {
                out.push('\n');
                return;
            }
            let block = is_block(name);
            if block {
                out.push('\n');
            }
            if name == "li" {
                out.push_str("- ");
            }
            for child in node.children() {
                walk(child, out);
            }
            if block {
                out.push('\n');
            } else if matches!(name, "td" | "th") {
                out.push(' ');
            }
        }
        _ => {}
    }
}

/// scraper hands out ego-tree nodes; naming their type through scraper keeps
/// ego-tree out of this crate's direct dependencies.
mod ego_tree_node {
    pub type NodeRef<'a> = <scraper::ElementRef<'a> as std::ops::Deref>::Target;
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "ul"
            | "ol"
            | "li"
            | "dl"
            | "dt"
            | "dd"
            | "tr"
            | "table"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "blockquote"
            | "pre"
            | "hr"
            | "figure"
            | "figcaption"
    )
}

/// Collapses runs of whitespace inside lines and drops empty lines.
fn tidy(raw: &str) -> String {
    raw.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty() && line != "-")
        .collect::<Vec<_>>()
        .join("\n")
}

/// `key: value; key: value` of a JSON object (values that are not strings
/// are written as JSON); anything else as its JSON text.
fn specifications_text(specs: &serde_json::Value) -> String {
    match specs {
        serde_json::Value::Null => String::new(),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        serde_json::Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    }
}

/// One group per variant (`color: blue, storage: 128 GB`), groups joined
/// with `; `.
fn variants_text(attributes: &[(i64, String, String)]) -> String {
    let mut groups: Vec<(i64, Vec<String>)> = Vec::new();
    for (variant, name, value) in attributes {
        let pair = format!("{}: {}", name.trim(), value.trim());
        match groups.last_mut() {
            Some((v, pairs)) if v == variant => pairs.push(pair),
            _ => groups.push((*variant, vec![pair])),
        }
    }
    groups
        .into_iter()
        .map(|(_, pairs)| pairs.join(", "))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_parsed_not_stripped_with_a_regex() {
        let html = "<h3>Auralis QuietLine 700</h3>\n<p>Quiet &amp; comfy, <b>40 h</b> battery.</p><ul><li>ANC</li><li>USB-C</li></ul><script>alert(1)</script><p>a &lt;b&gt; c</p>";
        assert_eq!(
            html_to_text(html),
            "Auralis QuietLine 700\nQuiet & comfy, 40 h battery.\n- ANC\n- USB-C\na <b> c"
        );
    }

    #[test]
    fn product_text_combines_description_specifications_category_and_variants() {
        let product = ProductSource {
            category: Some("Headphones".into()),
            description_html: Some("<p>Great sound.</p>".into()),
            specifications: Some(serde_json::json!({"Battery": "40 h", "Weight": "250 g"})),
            variant_attributes: vec![
                (1, "color".into(), "black".into()),
                (1, "edition".into(), "standard".into()),
                (2, "color".into(), "blue".into()),
            ],
        };
        assert_eq!(
            product_text(&product),
            "Great sound.\n\nSpecifications: Battery: 40 h; Weight: 250 g\n\nCategory: Headphones\n\nVariants: color: black, edition: standard; color: blue"
        );
        assert_eq!(product_text(&ProductSource::default()), "");
    }

    #[test]
    fn the_hash_changes_with_the_text_and_with_the_model() {
        let a = content_hash("openai/text-embedding-3-small/1536", "hello");
        assert_eq!(
            a,
            content_hash("openai/text-embedding-3-small/1536", "hello")
        );
        assert_ne!(
            a,
            content_hash("openai/text-embedding-3-small/1536", "hello!")
        );
        assert_ne!(a, content_hash("local/all-MiniLM-L6-v2/384", "hello"));
    }
}
