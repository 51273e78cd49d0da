//! One logging set-up for every binary: `RUST_LOG` filters (default `info`),
//! lines go to stderr so that stdout stays for a command's own output.
//!
//! `LOG_FORMAT` picks the line format: `text` (the default) or `json`, one
//! JSON object per line for a platform's collector. A JSON line is flat:
//! `timestamp` (RFC 3339, UTC), `level`, `target`, then the fields of every
//! span the line was logged in, outermost first (the worker's `worker`; a
//! task's `run`, `revision`, `task`, `kind`, `role`, `attempt`), then the
//! event's own fields with `message` among them. An inner field of the same
//! name wins over an outer one, the event's over any span's. Text lines show
//! the same spans as `worker{worker=…}:task{run=… …}: message`.
//!
//! Colour escapes only reach a terminal: a worker's log redirected to a file
//! or collected by a platform must be plain text, and `NO_COLOR` (any value)
//! turns them off even on a terminal, as <https://no-color.org> asks. These
//! are read here rather than through `Config` because logging starts before
//! the configuration is read (so that configuration errors are logged too):
//! they come from the environment only, not from `.env`.

use serde_json::{Map, Value};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The line format of the log (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    /// `LOG_FORMAT`'s value; unset or empty is `text`.
    pub fn parse(value: Option<&str>) -> Result<Format, String> {
        match value.map(str::trim) {
            None | Some("") | Some("text") => Ok(Format::Text),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(format!(
                "LOG_FORMAT={other:?} is not a log format: use text (the default) or json"
            )),
        }
    }
}

static FORMAT: OnceLock<Format> = OnceLock::new();

/// The format [`init`] chose (text before it ran).
pub fn format() -> Format {
    FORMAT.get().copied().unwrap_or(Format::Text)
}

/// Sets up the log. A `LOG_FORMAT` that names no format stops the program
/// here, with the variable and the values it takes (exit code 1, as any
/// other setting that cannot be read).
pub fn init() {
    let format = match Format::parse(std::env::var("LOG_FORMAT").ok().as_deref()) {
        Ok(format) => format,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let _ = FORMAT.set(format);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,lapin=off,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        Format::Text => builder
            .with_ansi(colour_wanted(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").is_some(),
            ))
            .with_target(false)
            .try_init(),
        Format::Json => builder
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .try_init(),
    };
}

/// A line of a command's own report on stderr ("== upgrade …", a phase's
/// progress): as it is in text format, an `INFO` line with
/// `LOG_FORMAT=json`, so that stderr is JSON throughout.
#[macro_export]
macro_rules! say {
    ($($arg:tt)+) => {
        if $crate::logging::format() == $crate::logging::Format::Json {
            ::tracing::info!($($arg)+)
        } else {
            ::std::eprintln!($($arg)+)
        }
    };
}

/// The last word of a program that failed: `prefix: message` on stderr,
/// or, with `LOG_FORMAT=json`, an `ERROR` line, so that the log stays JSON
/// to its end.
pub fn fatal(prefix: &str, error: &anyhow::Error) {
    match format() {
        Format::Json => tracing::error!("{error:#}"),
        Format::Text => eprintln!("{prefix}: {error:#}"),
    }
}

fn colour_wanted(stderr_is_terminal: bool, no_color_set: bool) -> bool {
    stderr_is_terminal && !no_color_set
}

/// One flat JSON object per event (see the module's documentation). Span
/// fields are kept by [`JsonFields`] as JSON objects, merged here.
struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// An event's fields into a JSON object: numbers and booleans as such,
/// everything else as its text.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// A worker's name: `host:pid`, after `label@` when it has one (the local
/// workers of `--with-workers` are labelled `worker-1`, `worker-2`, ...).
/// Unique among the workers of a database, since it holds the pid.
pub fn worker_name(label: Option<&str>, pid: u32) -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    match label {
        Some(label) => format!("{label}@{}:{pid}", host.trim()),
        None => format!("{}:{pid}", host.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour_wanted(true, false));
        assert!(
            !colour_wanted(false, false),
            "a file or pipe gets no escapes"
        );
        assert!(!colour_wanted(true, true), "NO_COLOR wins on a terminal");
        assert!(!colour_wanted(false, true));
    }

    #[test]
    fn log_format_is_text_or_json_and_anything_else_names_the_variable() {
        assert_eq!(Format::parse(None), Ok(Format::Text));
        assert_eq!(Format::parse(Some("")), Ok(Format::Text));
        assert_eq!(Format::parse(Some("text")), Ok(Format::Text));
        assert_eq!(Format::parse(Some("json")), Ok(Format::Json));
        let e = Format::parse(Some("xml")).unwrap_err();
        assert!(e.contains("LOG_FORMAT") && e.contains("\"xml\""), "{e}");
        assert!(e.contains("text") && e.contains("json"), "{e}");
    }

    #[test]
    fn a_json_line_is_flat_with_the_fields_of_every_span_and_the_event() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let written = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || written.clone())
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let worker = tracing::info_span!("worker", worker = "w-1@h:1");
            let _w = worker.enter();
            let task = tracing::info_span!(
                "task",
                task = 7,
                role = "seed",
                attempt = tracing::field::Empty
            );
            task.record("attempt", 2);
            let _t = task.enter();
            tracing::warn!(rows = 3, "a \"quoted\" line");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["worker"], "w-1@h:1");
        assert_eq!(line["task"], 7);
        assert_eq!(line["role"], "seed");
        assert_eq!(line["attempt"], 2);
        assert_eq!(line["rows"], 3);
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "a \"quoted\" line");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
