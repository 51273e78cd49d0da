//! Splitting a CSV file into byte ranges that start and end on record
//! boundaries, so that many seed workers can load one file together.
//!
//! Both sides use this module: the orchestrator scans each file once and
//! plans one task per range; a worker reads the header itself (every range
//! needs it to match columns by name), then seeks to its range and parses
//! only that. A record boundary is not simply a newline: a quoted field may
//! hold commas, doubled quotes and newlines. The scanner follows the same
//! state machine as the `csv` crate the workers parse with (RFC 4180, `"`
//! as quote and escape, `\n`, `\r` or `\r\n` ending a record, blank lines
//! skipped), so a range always holds whole records as the worker sees them.
//!
//! Line numbers are physical lines (1-based, the header is line 1), as an
//! editor shows them; errors use them to point at the bad record.

use anyhow::Context;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// One range of whole records of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Chunk {
    /// Byte offset of the first record of the range.
    pub start: u64,
    /// Byte offset just past the last record of the range.
    pub end: u64,
    /// Physical line (1-based) of the byte at `start`: a parser reading the
    /// range from there adds its own (1-based) line number minus one.
    pub first_line: u64,
    /// Records in the range.
    pub records: u64,
    /// The content hash of the range's bytes ([`digest`]), taken when the
    /// file was scanned: a worker that reads other bytes there is not
    /// loading what was planned, whatever the file's size and times say.
    /// `None` in tasks planned before ranges carried one.
    #[serde(default)]
    pub digest: Option<u64>,
}

/// The header of a file and where its data starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Column names as written (unquoted; a leading UTF-8 byte-order mark removed).
    pub columns: Vec<String>,
    /// Byte offset of the first data record.
    pub data_start: u64,
    /// Physical line of the byte at `data_start`.
    pub data_line: u64,
}

/// What a whole-file scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub header: Header,
    pub chunks: Vec<Chunk>,
    /// Data records in the file.
    pub records: u64,
    pub bytes: u64,
    /// The content hash of the header's bytes (`[0, data_start)`).
    pub header_digest: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field (also the start of a record).
    FieldStart,
    /// Inside a field that did not start with a quote.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: either the closing quote or
    /// the first half of a doubled one.
    QuoteInQuoted,
}

/// Record boundaries, found one buffer at a time.
struct Splitter {
    state: State,
    /// True while the current record has at least one byte (blank lines are
    /// not records).
    in_record: bool,
    /// Physical line of the current position (1-based).
    line: u64,
    /// Line on which the current record started.
    record_line: u64,
}

impl Splitter {
    fn new(first_line: u64) -> Splitter {
        Splitter {
            state: State::FieldStart,
            in_record: false,
            line: first_line,
            record_line: first_line,
        }
    }

    /// Feeds bytes; calls `on_end(offset in buf just past the terminator,
    /// line there)` for every record that ends in `buf`. Returns early (with
    /// the offset consumed) when `on_end` returns false.
    fn feed(&mut self, buf: &[u8], mut on_end: impl FnMut(usize, u64) -> bool) -> usize {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            i += 1;
            if b == b'\n' {
                self.line += 1;
            }
            let terminator = b == b'\n' || b == b'\r';
            match self.state {
                State::Quoted => {
                    if b == b'"' {
                        self.state = State::QuoteInQuoted;
                    }
                    continue;
                }
                State::FieldStart | State::Unquoted | State::QuoteInQuoted => {
                    if terminator {
                        if self.in_record {
                            self.state = State::FieldStart;
                            self.in_record = false;
                            self.record_line = self.line;
                            if !on_end(i, self.line) {
                                return i;
                            }
                        } else {
                            // A blank line, or the `\n` of a `\r\n`.
                            self.record_line = self.line;
                        }
                        continue;
                    }
                    if !self.in_record {
                        self.in_record = true;
                        self.record_line = self.line;
                    }
                    self.state = match (self.state, b) {
                        (State::FieldStart, b'"') => State::Quoted,
                        (State::QuoteInQuoted, b'"') => State::Quoted,
                        (_, b',') => State::FieldStart,
                        _ => State::Unquoted,
                    };
                }
            }
        }
        i
    }
}

const SCAN_BUFFER: usize = 1 << 20;

/// Reads the header record of a CSV file.
pub fn read_header(path: &Path) -> anyhow::Result<Header> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut splitter = Splitter::new(1);
    let mut consumed: u64 = 0;
    let mut header_end: Option<u64> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut raw = Vec::new();
    while header_end.is_none() {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        let used = splitter.feed(&buf[..n], |offset, _| {
            header_end = Some(consumed + offset as u64);
            false
        });
        raw.extend_from_slice(&buf[..used]);
        consumed += used as u64;
        if raw.len() > 16 << 20 {
            anyhow::bail!(
                "{}: the header line is longer than 16 MB; is this a CSV file?",
                path.display()
            );
        }
    }
    let data_start = header_end.unwrap_or(consumed);
    let raw = raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&raw);
    let columns = parse_header(raw)
        .with_context(|| format!("{}: reading the header (line 1)", path.display()))?;
    Ok(Header {
        columns,
        data_start,
        data_line: splitter.line,
    })
}

fn parse_header(raw: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(raw);
    let mut record = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut record)? {
        anyhow::bail!("the file is empty: expected a header row naming the columns");
    }
    record
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let name = std::str::from_utf8(field)
                .map_err(|_| anyhow::anyhow!("header column {} is not valid UTF-8", i + 1))?;
            let name = if i == 0 {
                name.trim_start_matches('\u{feff}')
            } else {
                name
            };
            Ok(name.trim().to_string())
        })
        .collect()
}

/// Scans a whole file and splits its data records into ranges of at most
/// `records_per_chunk` records. An empty file (header only) has no range.
pub fn scan(path: &Path, records_per_chunk: u64) -> anyhow::Result<Scan> {
    let records_per_chunk = records_per_chunk.max(1);
    let header = read_header(path)?;
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let bytes = file.metadata()?.len();
    file.seek(SeekFrom::Start(header.data_start))?;
    let mut splitter = Splitter::new(header.data_line);
    let mut chunks = Vec::new();
    let mut current = Chunk {
        start: header.data_start,
        end: header.data_start,
        first_line: header.data_line,
        records: 0,
        digest: None,
    };
    let mut records: u64 = 0;
    let mut position = header.data_start;
    let mut buf = vec![0u8; SCAN_BUFFER];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        let base = position;
        splitter.feed(&buf[..n], |offset, line| {
            current.records += 1;
            records += 1;
            current.end = base + offset as u64;
            if current.records == records_per_chunk {
                chunks.push(current);
                current = Chunk {
                    start: current.end,
                    end: current.end,
                    first_line: line,
                    records: 0,
                    digest: None,
                };
            }
            true
        });
        position += n as u64;
    }
    match splitter.state {
        State::Quoted => anyhow::bail!(
            "{} line {}: a quoted field starts on this line and is never closed (a missing '\"')",
            path.display(),
            splitter.record_line
        ),
        _ if splitter.in_record => {
            // The last record has no line ending.
            current.records += 1;
            records += 1;
            current.end = bytes;
        }
        _ => {}
    }
    if current.records > 0 {
        chunks.push(current);
    }
    // A second, sequential read (from the page cache, at memory speed):
    // each range's digest covers exactly its bytes.
    for chunk in &mut chunks {
        chunk.digest = Some(digest(path, chunk.start, chunk.end)?);
    }
    let header_digest = digest(path, 0, header.data_start)?;
    Ok(Scan {
        header,
        chunks,
        records,
        bytes,
        header_digest,
    })
}

/// The content hash (xxh3, 64 bits) of the bytes `[start, end)` of a file:
/// the identity of a range of a data file, which an edit that keeps the
/// file's size (and even its modification time) still changes.
pub fn digest(path: &Path, start: u64, end: u64) -> anyhow::Result<u64> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    file.seek(SeekFrom::Start(start))?;
    let mut range = file.take(end.saturating_sub(start));
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; SCAN_BUFFER];
    loop {
        let n = range
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.digest())
}

/// Opens a file positioned at `chunk.start`, reading no further than
/// `chunk.end`.
pub fn open_chunk(path: &Path, chunk: &Chunk) -> std::io::Result<std::io::Take<BufReader<File>>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(chunk.start))?;
    Ok(BufReader::with_capacity(256 * 1024, file).take(chunk.end - chunk.start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(content: &[u8]) -> tempfile_path::TempPath {
        tempfile_path::TempPath::new(content)
    }

    /// A tiny temporary file without a tempfile dependency.
    mod tempfile_path {
        use std::path::PathBuf;
        pub struct TempPath(pub PathBuf);
        impl TempPath {
            pub fn new(content: &[u8]) -> TempPath {
                let path =
                    std::env::temp_dir().join(format!("csv-chunks-{}.csv", uuid::Uuid::new_v4()));
                std::fs::write(&path, content).unwrap();
                TempPath(path)
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn records_of(path: &Path, chunk: &Chunk) -> Vec<Vec<String>> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(open_chunk(path, chunk).unwrap());
        reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn ranges_hold_whole_records_even_with_quoted_newlines_and_commas() {
        let mut content = Vec::new();
        writeln!(content, "\"id\",\"text\"").unwrap();
        for i in 1..=10 {
            writeln!(content, "{i},\"line one, with comma\nline \"\"two\"\"\"").unwrap();
        }
        let file = write(&content);
        let scan = scan(&file.0, 3).unwrap();
        assert_eq!(scan.header.columns, vec!["id", "text"]);
        assert_eq!(scan.records, 10);
        assert_eq!(scan.chunks.len(), 4);
        assert_eq!(
            scan.chunks.iter().map(|c| c.records).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        let mut ids = Vec::new();
        for chunk in &scan.chunks {
            for record in records_of(&file.0, chunk) {
                assert_eq!(record[1], "line one, with comma\nline \"two\"");
                ids.push(record[0].parse::<u32>().unwrap());
            }
        }
        assert_eq!(ids, (1..=10).collect::<Vec<_>>());
        // Every record takes two physical lines after the header.
        assert_eq!(scan.chunks[1].first_line, 2 + 3 * 2);
    }

    #[test]
    fn an_edit_that_keeps_the_size_changes_the_digest_of_its_range_only() {
        let before = b"id,name\n1,alpha\n2,bravo\n3,charlie\n4,delta\n";
        let after = b"id,name\n1,alpha\n2,bravo\n3,charlie\n4,DELTA\n";
        assert_eq!(before.len(), after.len());
        let file = write(before);
        let planned = scan(&file.0, 2).unwrap();
        std::fs::write(&file.0, after).unwrap();
        let edited = scan(&file.0, 2).unwrap();
        assert_eq!(planned.bytes, edited.bytes);
        assert_eq!(planned.header_digest, edited.header_digest);
        assert_eq!(planned.chunks[0].digest, edited.chunks[0].digest);
        assert_ne!(planned.chunks[1].digest, edited.chunks[1].digest);
        let [first, second] = [&planned.chunks[0], &planned.chunks[1]];
        assert_eq!(
            Some(digest(&file.0, first.start, first.end).unwrap()),
            first.digest
        );
        assert_ne!(
            Some(digest(&file.0, second.start, second.end).unwrap()),
            second.digest
        );
    }

    #[test]
    fn crlf_blank_lines_and_a_missing_final_newline() {
        let content = b"\xef\xbb\xbfid,name\r\n1,a\r\n\r\n2,b\r\n3,\"c\r\nd\"";
        let file = write(content);
        let scan = scan(&file.0, 2).unwrap();
        assert_eq!(scan.header.columns, vec!["id", "name"]);
        assert_eq!(scan.records, 3);
        assert_eq!(scan.chunks.len(), 2);
        assert_eq!(scan.chunks[0].first_line, 1);
        // Starts at the `\n` of line 4's `\r\n`.
        assert_eq!(scan.chunks[1].first_line, 4);
        assert_eq!(scan.chunks[1].end, content.len() as u64);
        let last = records_of(&file.0, &scan.chunks[1]);
        assert_eq!(last, vec![vec!["3".to_string(), "c\r\nd".to_string()]]);
    }

    #[test]
    fn an_unclosed_quote_is_an_error_naming_the_line() {
        let file = write(b"id,text\n1,ok\n2,\"never closed\n3,x\n");
        let err = scan(&file.0, 10).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_literal() {
        let file = write(b"id,text\n1,a 5\" screen\n2,b\n");
        let scan = scan(&file.0, 1).unwrap();
        assert_eq!(scan.records, 2);
        assert_eq!(scan.chunks[1].first_line, 3);
    }
}
