//! The client's progress bars and short notices (listings and messages
//! are printed by [`super::output`]). On a terminal progress is a bar; when
//! stderr is a file or a pipe (CI logs, `2> log`) it is a plain line when a
//! stage starts and every [`LINE_EVERY`] after.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proto;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed within one stage.
pub(crate) const LINE_EVERY: Duration = Duration::from_secs(5);

/// Whether progress is drawn as bars (stderr is a terminal) or printed as lines.
fn plain() -> bool {
    !std::io::stderr().is_terminal()
}

/// When the last plain line was printed, and of what.
#[derive(Debug, Default)]
struct Lines {
    last: Option<(Instant, String)>,
}

impl Lines {
    /// Prints `line` when `key` (the stage) changed or [`LINE_EVERY`] passed.
    fn offer(&mut self, key: &str, line: impl FnOnce() -> String) {
        let due = match &self.last {
            None => true,
            Some((at, last)) => last != key || at.elapsed() >= LINE_EVERY,
        };
        if due {
            eprintln!("{}", line());
            self.last = Some((Instant::now(), key.to_string()));
        }
    }
}

/// What a [`Bar`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Bytes, shown as KiB, MiB, … with a rate per second.
    Bytes,
    /// Rows of a dataset split.
    Rows,
}

impl Unit {
    /// `n` of this unit, for people.
    fn show(self, n: u64) -> String {
        match self {
            Unit::Bytes => indicatif::HumanBytes(n).to_string(),
            Unit::Rows => format!("{n} rows"),
        }
    }
}

/// A byte or row count's progress: a bar on a terminal, lines elsewhere.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    inner: ProgressBar,
    what: String,
    unit: Unit,
    started: Instant,
    lines: Option<Arc<Mutex<Lines>>>,
}

impl Bar {
    /// Adds `n` to the count.
    pub(crate) fn inc(&self, n: u64) {
        self.inner.inc(n);
        self.line();
    }

    /// Sets the count.
    pub(crate) fn set_position(&self, n: u64) {
        self.inner.set_position(n);
        self.line();
    }

    fn line(&self) {
        if let Some(lines) = &self.lines {
            lines
                .lock()
                .expect("progress lines")
                .offer(&self.what, || self.progress_line());
        }
    }

    /// `upload: 1.50 MiB of 6.79 MiB (22%, 3.10 MiB/s)`.
    fn progress_line(&self) -> String {
        let (pos, len) = (self.inner.position(), self.inner.length().unwrap_or(0));
        let percent = (100 * pos).checked_div(len).unwrap_or(100);
        format!(
            "{}: {} of {} ({percent}%, {})",
            self.what,
            self.unit.show(pos),
            self.unit.show(len),
            self.rate()
        )
    }

    /// The count per second since the bar started.
    fn rate(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let per_second = (self.inner.position() as f64 / seconds) as u64;
        format!("{}/s", self.unit.show(per_second))
    }

    /// Ends the bar (a last line when printing lines).
    pub(crate) fn finish_and_clear(&self) {
        self.inner.finish_and_clear();
        if self.lines.is_some() {
            eprintln!(
                "{}: {} done ({:.1} s, {})",
                self.what,
                self.unit.show(self.inner.position()),
                self.started.elapsed().as_secs_f64(),
                self.rate()
            );
        }
    }
}

use super::args::Connection;
use super::output::{print_message, Format};

/// Progress of `total` `unit`s of `what`.
pub(crate) fn bar(total: u64, what: &str, unit: Unit) -> Bar {
    let bar = ProgressBar::new(total);
    let template = match unit {
        Unit::Bytes => "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, eta {eta})",
        Unit::Rows => "{msg} [{bar:30}] {pos}/{len} rows ({per_sec}, eta {eta})",
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    let lines = plain().then(|| {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        Arc::new(Mutex::new(Lines::default()))
    });
    Bar {
        inner: bar,
        what: what.to_string(),
        unit,
        started: Instant::now(),
        lines,
    }
}

/// A progress bar driven by the server's stage events.
pub(crate) struct StageBar {
    pub(crate) bar: ProgressBar,
    stage: String,
    started: std::time::Instant,
    lines: Option<Lines>,
    /// The evaluation the last progress event was of.
    pub(crate) evaluation_id: String,
}

impl StageBar {
    pub(crate) fn new() -> Self {
        let bar = ProgressBar::new(1);
        // The count is part of the message, so that a label never shows
        // with another stage's count.
        bar.set_style(
            ProgressStyle::with_template("[{bar:30}] {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let lines = plain().then(|| {
            bar.set_draw_target(ProgressDrawTarget::hidden());
            Lines::default()
        });
        Self {
            bar,
            stage: String::new(),
            started: std::time::Instant::now(),
            lines,
            evaluation_id: String::new(),
        }
    }

    pub(crate) fn update(&mut self, p: &proto::Progress) {
        let label = if p.model.is_empty() {
            p.stage.clone()
        } else if p.models > 1 {
            // A comparison: which model of how many, and when it should end
            // at the pace of the models done so far.
            let done = p.model_index.saturating_sub(1);
            let eta = if done > 0 {
                let per = self.started.elapsed().as_secs_f64() / done as f64;
                format!(", ~{:.0} s left", per * (p.models - done) as f64)
            } else {
                String::new()
            };
            format!(
                "[{}/{}{eta}] {} {}",
                p.model_index, p.models, p.model, p.stage
            )
        } else {
            format!("{} {}", p.model, p.stage)
        };
        self.stage = label;
        if !p.evaluation_id.is_empty() {
            self.evaluation_id = p.evaluation_id.clone();
        }
        self.bar.set_length(p.total.max(1));
        self.bar.set_position(p.done);
        let message = format!("{} {}/{}", self.stage, p.done, p.total.max(1));
        if let Some(lines) = &mut self.lines {
            let key = format!("{} {} {}", p.model_index, p.model, p.stage);
            lines.offer(&key, || message.clone());
        }
        self.bar.set_message(message);
    }
}

/// Prints the ids and status of a detached job.
pub(crate) fn print_accepted(conn: &Connection, a: &proto::Accepted) -> anyhow::Result<()> {
    let status = proto::EvaluationStatus::try_from(a.status)
        .map(|s| s.as_str_name())
        .unwrap_or("?");
    if conn.output() == Format::Json {
        return print_message("Accepted", a);
    }
    for id in &a.evaluation_ids {
        println!("{id} {status}");
    }
    Ok(())
}

/// A timestamp as tables show it: UTC to the second
/// (`2026-12-06T23:51:18Z`), "-" when there is none.
pub(crate) fn timestamp(t: Option<&prost_types::Timestamp>) -> String {
    match t {
        Some(t) => prost_types::Timestamp {
            seconds: t.seconds,
            nanos: 0,
        }
        .to_string(),
        None => "-".into(),
    }
}
