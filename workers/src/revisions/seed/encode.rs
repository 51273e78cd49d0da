//! CSV records to PostgreSQL `COPY` text, one range of a file at a time, in
//! a blocking thread: the async side only forwards full buffers to the
//! server, so parsing and sending overlap and memory holds a few buffers,
//! whatever the file size.
//!
//! Every field is checked here, where its file, line and column are known,
//! rather than left to the server, which would stop at the first bad value
//! and name only its position in the COPY stream. After the first bad record
//! nothing more is sent (the COPY will be aborted), but checking goes on to
//! report up to [`ERROR_CAP`] bad records of the range.

use super::tables::{Column, Kind, Table, PREFERENCES};
use csv::ByteRecord;
use shared::csv_chunks::{self, Chunk};
use shared::seed::HeaderRenames;
use std::path::Path;

/// Bad records reported per range.
pub const ERROR_CAP: usize = 20;
/// Bytes of COPY data per message to the server.
pub const SEND_BUFFER: usize = 1 << 20;

/// Which CSV column feeds which table column.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The file name as it is on disk (older or current naming), for messages.
    pub file: String,
    pub header: Vec<String>,
    /// Table columns present in the header, in the order of the COPY column
    /// list: (index in the record, column).
    pub copied: Vec<(usize, &'static Column)>,
    /// Index of `users.preferences`, which becomes memories.
    pub preferences: Option<usize>,
    /// CSV columns the table does not have.
    pub ignored: Vec<String>,
}

impl Mapping {
    /// Matches the header to the table by name, through the older names
    /// `renames` lists. A missing required column or a column named twice is
    /// an error.
    pub fn new(
        table: &'static Table,
        file: &str,
        header: &[String],
        renames: &HeaderRenames,
    ) -> Result<Mapping, String> {
        let mut copied = Vec::new();
        let mut preferences = None;
        let mut ignored = Vec::new();
        for (i, name) in header.iter().enumerate() {
            if header[..i].contains(name) {
                return Err(format!(
                    "{file} line 1: column {name:?} appears twice in the header"
                ));
            }
            let Some(as_column) = renames.column(name) else {
                continue;
            };
            if let Some(column) = table.column(as_column) {
                copied.push((i, column));
            } else if table.name == "users" && name == PREFERENCES {
                preferences = Some(i);
            } else {
                ignored.push(name.clone());
            }
        }
        let missing: Vec<&str> = table
            .columns
            .iter()
            .filter(|c| c.required && !header.iter().any(|h| renames.column(h) == Some(c.name)))
            .map(|c| c.name)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{file} line 1: the header has no column {} (required: {}); the header is: {}",
                missing
                    .iter()
                    .map(|m| format!("{m:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                table
                    .columns
                    .iter()
                    .filter(|c| c.required)
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", "),
                header.join(",")
            ));
        }
        copied.sort_by_key(|(_, c)| table.columns.iter().position(|t| t.name == c.name));
        Ok(Mapping {
            file: file.to_string(),
            header: header.to_vec(),
            copied,
            preferences,
            ignored,
        })
    }

    /// The COPY column list, e.g. `id, product_id, rating`.
    pub fn column_list(&self) -> String {
        self.copied
            .iter()
            .map(|(_, c)| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Where a table column is in the record.
    pub fn header_index(&self, column: &str) -> Option<usize> {
        self.copied
            .iter()
            .find(|(_, c)| c.name == column)
            .map(|(i, _)| *i)
            .or_else(|| self.header.iter().position(|h| h == column))
    }

    /// A table column as the file's header names it, for messages.
    pub fn header_name<'a>(&'a self, column: &'a str) -> &'a str {
        self.copied
            .iter()
            .find(|(_, c)| c.name == column)
            .map_or(column, |(i, _)| self.header[*i].as_str())
    }
}

/// One bad record (or field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, column {column}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// What encoding a range produced besides the COPY data.
#[derive(Debug, Default)]
pub struct Encoded {
    pub records: u64,
    pub errors: Vec<FieldError>,
    /// More bad records than [`ERROR_CAP`] (the rest were not looked at).
    pub truncated: bool,
    /// `(user id, preference texts)` of the users in the range.
    pub memories: Vec<(i32, Vec<String>)>,
}

fn chunk_reader(
    path: &Path,
    chunk: &Chunk,
) -> std::io::Result<csv::Reader<std::io::Take<std::io::BufReader<std::fs::File>>>> {
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv_chunks::open_chunk(path, chunk)?))
}

fn physical_line(chunk: &Chunk, record: &ByteRecord) -> u64 {
    chunk.first_line + record.position().map_or(1, |p| p.line()) - 1
}

/// Encodes a range, handing full buffers to `send` (which returns false
/// when nobody listens any more). With `line_column`, each row ends with its
/// physical line number (the staging tables' `_line`).
pub fn encode(
    path: &Path,
    chunk: &Chunk,
    mapping: &Mapping,
    line_column: bool,
    mut send: impl FnMut(Vec<u8>) -> bool,
) -> anyhow::Result<Encoded> {
    let mut reader = chunk_reader(path, chunk)?;
    let mut record = ByteRecord::new();
    let mut out = Encoded::default();
    let mut buf: Vec<u8> = Vec::with_capacity(SEND_BUFFER + 64 * 1024);
    let mut scratch = String::new();
    let fields = mapping.header.len();
    let id_index = mapping.header_index("id");
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e
                    .position()
                    .map_or(chunk.first_line, |p| chunk.first_line + p.line() - 1);
                out.errors.push(FieldError {
                    line,
                    column: None,
                    message: format!("the record cannot be read as CSV: {e}"),
                });
                break;
            }
        }
        out.records += 1;
        let line = physical_line(chunk, &record);
        if record.len() != fields {
            out.errors.push(FieldError {
                line,
                column: None,
                message: format!(
                    "expected {fields} fields, as in the header, but found {} (an unquoted ',' or an unbalanced '\"' often causes this)",
                    record.len()
                ),
            });
        } else {
            let mut row_ok = true;
            for (n, (index, column)) in mapping.copied.iter().enumerate() {
                if n > 0 {
                    buf.push(b'\t');
                }
                if let Err(message) = write_field(&mut buf, column, &record[*index], &mut scratch) {
                    row_ok = false;
                    out.errors.push(FieldError {
                        line,
                        column: Some(mapping.header[*index].clone()),
                        message,
                    });
                    if out.errors.len() >= ERROR_CAP {
                        break;
                    }
                }
            }
            if let Some(index) = mapping.preferences {
                match parse_list(&record[index]) {
                    Ok(items) => {
                        let user = id_index
                            .and_then(|i| std::str::from_utf8(&record[i]).ok())
                            .and_then(|s| s.trim().parse::<i32>().ok());
                        let texts: Vec<String> = items
                            .into_iter()
                            .flatten()
                            .filter(|s| !s.is_empty())
                            .collect();
                        if let (Some(user), false) = (user, texts.is_empty()) {
                            out.memories.push((user, texts));
                        }
                    }
                    Err(message) => {
                        row_ok = false;
                        out.errors.push(FieldError {
                            line,
                            column: Some(PREFERENCES.to_string()),
                            message,
                        });
                    }
                }
            }
            if line_column {
                buf.push(b'\t');
                buf.extend_from_slice(line.to_string().as_bytes());
            }
            buf.push(b'\n');
            if !row_ok || !out.errors.is_empty() {
                // Nothing more goes to the server; keep checking.
                buf.clear();
            }
        }
        if out.errors.len() >= ERROR_CAP {
            out.truncated = reader.read_byte_record(&mut record).unwrap_or(false);
            break;
        }
        if buf.len() >= SEND_BUFFER {
            let full = std::mem::replace(&mut buf, Vec::with_capacity(SEND_BUFFER + 64 * 1024));
            if !send(full) {
                return Ok(out);
            }
        }
    }
    if out.errors.is_empty() && !buf.is_empty() {
        send(buf);
    }
    Ok(out)
}

/// Physical lines of the records of a range for which `matches` holds (at
/// most `cap`), for pointing at the records behind a constraint error.
pub fn find_lines(
    path: &Path,
    chunk: &Chunk,
    cap: usize,
    matches: impl Fn(&ByteRecord) -> bool,
) -> anyhow::Result<Vec<u64>> {
    let mut reader = chunk_reader(path, chunk)?;
    let mut record = ByteRecord::new();
    let mut lines = Vec::new();
    while lines.len() < cap && reader.read_byte_record(&mut record)? {
        if matches(&record) {
            lines.push(physical_line(chunk, &record));
        }
    }
    Ok(lines)
}

/// Calls `visit(physical line, field)` with the field at `index` of every
/// record of a range, until it returns false.
pub fn visit_column(
    path: &Path,
    chunk: &Chunk,
    index: usize,
    mut visit: impl FnMut(u64, &[u8]) -> bool,
) -> anyhow::Result<()> {
    let mut reader = chunk_reader(path, chunk)?;
    let mut record = ByteRecord::new();
    while reader.read_byte_record(&mut record)? {
        if let Some(field) = record.get(index) {
            if !visit(physical_line(chunk, &record), field) {
                break;
            }
        }
    }
    Ok(())
}

/// The physical line of the `n`-th record (1-based) of a range.
pub fn line_of_record(path: &Path, chunk: &Chunk, n: u64) -> anyhow::Result<Option<u64>> {
    let mut reader = chunk_reader(path, chunk)?;
    let mut record = ByteRecord::new();
    let mut seen = 0;
    while reader.read_byte_record(&mut record)? {
        seen += 1;
        if seen == n {
            return Ok(Some(physical_line(chunk, &record)));
        }
    }
    Ok(None)
}

fn preview(s: &str) -> String {
    let mut shown: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// Writes one field in COPY text format, or says what was expected.
pub fn write_field(
    buf: &mut Vec<u8>,
    column: &Column,
    raw: &[u8],
    scratch: &mut String,
) -> Result<(), String> {
    let s = std::str::from_utf8(raw).map_err(|e| {
        format!(
            "is not valid UTF-8 (bad byte at position {} of the field); the file must be encoded in UTF-8",
            e.valid_up_to() + 1
        )
    })?;
    if s.is_empty() {
        if column.required {
            return Err("is empty, but a value is required".into());
        }
        buf.extend_from_slice(b"\\N");
        return Ok(());
    }
    match column.kind {
        Kind::Int => {
            let t = s.trim();
            t.parse::<i32>()
                .map_err(|_| format!("expected an integer, found {}", preview(s)))?;
            buf.extend_from_slice(t.as_bytes());
        }
        Kind::Numeric { precision, scale } => {
            let t = s.trim();
            check_numeric(t, precision, scale).map_err(|why| {
                format!(
                    "expected a number like 5 or 26.99, found {}{why}",
                    preview(s)
                )
            })?;
            buf.extend_from_slice(t.as_bytes());
        }
        Kind::Text(limit) => {
            if s.contains('\0') {
                return Err("contains a NUL byte, which PostgreSQL text cannot hold".into());
            }
            if let Some(limit) = limit {
                if s.len() > limit {
                    let chars = s.chars().count();
                    if chars > limit {
                        return Err(format!(
                            "is {chars} characters long; the column holds at most {limit}"
                        ));
                    }
                }
            }
            escape_into(buf, s);
        }
        Kind::Json => {
            serde_json::from_str::<serde::de::IgnoredAny>(s)
                .map_err(|e| format!("expected JSON, found {}: {e}", preview(s)))?;
            escape_into(buf, s);
        }
        Kind::JsonList => {
            let items = parse_list(raw)?;
            let json = serde_json::to_string(&items).expect("a list of strings serialises");
            escape_into(buf, &json);
        }
        Kind::TextArray => {
            let items = parse_list(raw)?;
            scratch.clear();
            scratch.push('{');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    scratch.push(',');
                }
                match item {
                    None => scratch.push_str("NULL"),
                    Some(text) => {
                        if text.contains('\0') {
                            return Err(
                                "contains a NUL byte, which PostgreSQL text cannot hold".into()
                            );
                        }
                        scratch.push('"');
                        for c in text.chars() {
                            if c == '"' || c == '\\' {
                                scratch.push('\\');
                            }
                            scratch.push(c);
                        }
                        scratch.push('"');
                    }
                }
            }
            scratch.push('}');
            escape_into(buf, scratch);
        }
    }
    Ok(())
}

/// COPY text escaping: backslash, newline, carriage return and tab.
pub fn escape_into(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(escaped);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// `-12`, `5`, `5.00`, `.5`: digits with an optional sign and fraction,
/// small enough for `numeric(precision, scale)`.
fn check_numeric(t: &str, precision: u32, scale: u32) -> Result<(), String> {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(String::new());
    }
    let int_digits = int.trim_start_matches('0').len() as u32;
    if int_digits > precision - scale {
        return Err(format!(
            " (too large: the column holds at most {} digits before the decimal point)",
            precision - scale
        ));
    }
    Ok(())
}

/// A list field: a JSON array (`["a", "b"]`) or a Python literal list
/// (`['a', 'b']`, as the original data's `categories`). `None` is a null
/// element.
pub fn parse_list(raw: &[u8]) -> Result<Vec<Option<String>>, String> {
    let s = std::str::from_utf8(raw).map_err(|e| {
        format!(
            "is not valid UTF-8 (bad byte at position {} of the field)",
            e.valid_up_to() + 1
        )
    })?;
    let t = s.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    if let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(t) {
        return Ok(values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s),
                other => Some(other.to_string()),
            })
            .collect());
    }
    python_list(t).ok_or_else(|| {
        format!(
            "expected a list: a JSON array like [\"a\", \"b\"] or a Python list like ['a', 'b'], found {}",
            preview(s)
        )
    })
}

/// Parses a Python literal list of strings (and `None`, numbers, booleans).
fn python_list(s: &str) -> Option<Vec<Option<String>>> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if chars.get(i) != Some(&'[') {
        return None;
    }
    i += 1;
    let mut items = Vec::new();
    loop {
        skip_ws(&mut i);
        match chars.get(i)? {
            ']' => {
                i += 1;
                break;
            }
            &quote @ ('\'' | '"') => {
                i += 1;
                let mut text = String::new();
                loop {
                    let c = *chars.get(i)?;
                    i += 1;
                    if c == quote {
                        break;
                    }
                    if c == '\\' {
                        let next = *chars.get(i)?;
                        i += 1;
                        match next {
                            'n' => text.push('\n'),
                            't' => text.push('\t'),
                            'r' => text.push('\r'),
                            '\\' | '\'' | '"' => text.push(next),
                            other => {
                                text.push('\\');
                                text.push(other);
                            }
                        }
                    } else {
                        text.push(c);
                    }
                }
                items.push(Some(text));
            }
            _ => {
                let start = i;
                while i < chars.len() && chars[i] != ',' && chars[i] != ']' {
                    i += 1;
                }
                let bare: String = chars[start..i]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_string();
                match bare.as_str() {
                    "None" => items.push(None),
                    "True" => items.push(Some("true".into())),
                    "False" => items.push(Some("false".into())),
                    b if !b.is_empty() && b.parse::<f64>().is_ok() => {
                        items.push(Some(b.to_string()))
                    }
                    _ => return None,
                }
            }
        }
        skip_ws(&mut i);
        match chars.get(i)? {
            ',' => i += 1,
            ']' => {
                i += 1;
                break;
            }
            _ => return None,
        }
    }
    skip_ws(&mut i);
    (i == chars.len()).then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revisions::seed::tables;

    fn field(table: &str, column: &str, raw: &str) -> Result<String, String> {
        let column = tables::find(table).unwrap().column(column).unwrap();
        let mut buf = Vec::new();
        write_field(&mut buf, column, raw.as_bytes(), &mut String::new())?;
        Ok(String::from_utf8(buf).unwrap())
    }

    #[test]
    fn fields_become_copy_text() {
        assert_eq!(field("product_reviews", "rating", "5").unwrap(), "5");
        assert_eq!(field("product_reviews", "rating", "5.00").unwrap(), "5.00");
        assert!(field("product_reviews", "rating", "five")
            .unwrap_err()
            .contains("expected a number"));
        assert!(field("product_reviews", "rating", "1234.5")
            .unwrap_err()
            .contains("too large"));
        assert_eq!(field("product_reviews", "feature_id", "").unwrap(), "\\N");
        assert_eq!(
            field("product_reviews", "review", "a\tb\nc\\d").unwrap(),
            "a\\tb\\nc\\\\d"
        );
        assert_eq!(
            field("features", "categories", "['Headphones', 'Tablets']").unwrap(),
            r#"["Headphones","Tablets"]"#
        );
        assert_eq!(
            field(
                "users",
                "hobbies",
                r#"["Running", "say \"hi\"", "back\\slash"]"#
            )
            .unwrap(),
            r#"{"Running","say \\"hi\\"","back\\\\slash"}"#
        );
        assert!(field("products", "specifications", "{bad")
            .unwrap_err()
            .contains("expected JSON"));
        assert!(field("features", "feature_name", "")
            .unwrap_err()
            .contains("required"));
        let column = tables::find("product_reviews")
            .unwrap()
            .column("review")
            .unwrap();
        let err = write_field(&mut Vec::new(), column, b"caf\xe9", &mut String::new()).unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn python_lists_parse() {
        assert_eq!(
            python_list("['a', \"b's\", None]").unwrap(),
            vec![Some("a".into()), Some("b's".into()), None]
        );
        assert_eq!(python_list("[]").unwrap(), Vec::<Option<String>>::new());
        assert!(python_list("['a'").is_none());
        assert!(python_list("[a b]").is_none());
    }
}
