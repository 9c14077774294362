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

/// A byte or row count's progress: a bar on a terminal, lines elsewhere.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    inner: ProgressBar,
    what: String,
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
            let (pos, len) = (self.inner.position(), self.inner.length().unwrap_or(0));
            lines
                .lock()
                .expect("progress lines")
                .offer(&self.what, || format!("{}: {pos}/{len}", self.what));
        }
    }

    /// Ends the bar (a last line when printing lines).
    pub(crate) fn finish_and_clear(&self) {
        self.inner.finish_and_clear();
        if self.lines.is_some() {
            eprintln!("{}: {} done", self.what, self.inner.position());
        }
    }
}

use super::args::Connection;
use super::output::{print_message, Format};

/// Progress of `total` units of `what`.
pub(crate) fn bar(total: u64, what: &str) -> Bar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
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
