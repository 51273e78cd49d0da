//! Progress of a phase: a live bar on a terminal, plain log lines (every few
//! seconds, and at the end) when the output is a file or a pipe; and the
//! same numbers as metrics (`shared::metrics::phase`).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use shared::metrics::PhaseLabels;
use shared::store::PhaseCounts;

pub struct PhaseProgress {
    title: String,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    last_counts: PhaseCounts,
    labels: PhaseLabels,
}

impl PhaseProgress {
    pub fn start(title: String, total: i64, labels: PhaseLabels) -> PhaseProgress {
        let bar = if std::io::stderr().is_terminal()
            && shared::logging::format() == shared::logging::Format::Text
        {
            let bar = ProgressBar::new(total.max(0) as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} tasks {msg} ({elapsed}, ETA {eta})",
                )
                .expect("static template parses")
                .progress_chars("=> "),
            );
            bar.set_prefix(title.clone());
            bar.enable_steady_tick(Duration::from_millis(200));
            Some(bar)
        } else {
            shared::say!("{title}: {total} tasks");
            None
        };
        PhaseProgress {
            title,
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
            last_counts: PhaseCounts::default(),
            labels,
        }
    }

    /// Rows done per second since the phase started (`None` before any).
    fn rows_per_second(&self, rows: i64) -> Option<f64> {
        let secs = self.started.elapsed().as_secs_f64();
        (rows > 0 && secs > 0.0).then(|| rows as f64 / secs)
    }

    fn rate(&self, rows: i64) -> String {
        match self.rows_per_second(rows) {
            Some(rate) => format!(", {rows} rows, {rate:.0} rows/s"),
            None => String::new(),
        }
    }

    fn record(&self, counts: &PhaseCounts) {
        shared::metrics::phase(&self.labels, counts, self.rows_per_second(counts.rows_done));
    }

    pub fn update(&mut self, counts: &PhaseCounts) {
        self.record(counts);
        let detail = format!(
            "running {} retrying {} failed {}{}",
            counts.running,
            counts.retrying,
            counts.failed,
            self.rate(counts.rows_done)
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(counts.done.max(0) as u64);
                bar.set_message(detail);
            }
            None => {
                if *counts != self.last_counts && self.last_line.elapsed() >= Duration::from_secs(5)
                {
                    shared::say!(
                        "{}: {}/{} tasks done, {detail}",
                        self.title,
                        counts.done,
                        counts.total
                    );
                    self.last_line = Instant::now();
                }
            }
        }
        self.last_counts = counts.clone();
    }

    pub fn finish(self, counts: &PhaseCounts, ok: bool) {
        self.record(counts);
        let verdict = if ok { "done" } else { "FAILED" };
        let line = format!(
            "{}: {verdict}, {}/{} tasks in {:.1}s{}",
            self.title,
            counts.done,
            counts.total,
            self.started.elapsed().as_secs_f64(),
            self.rate(counts.rows_done)
        );
        match self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                shared::say!("{line}");
            }
            None => shared::say!("{line}"),
        }
    }
}
