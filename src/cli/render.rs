//! The client's progress bars and short notices (listings and messages
//! are printed by [`super::output`]).

use crate::proto;
use indicatif::{ProgressBar, ProgressStyle};

use super::args::Connection;
use super::output::{print_message, Format};

pub(crate) fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A progress bar driven by the server's stage events.
pub(crate) struct StageBar {
    pub(crate) bar: ProgressBar,
    stage: String,
    started: std::time::Instant,
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
        Self {
            bar,
            stage: String::new(),
            started: std::time::Instant::now(),
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
        self.bar.set_length(p.total.max(1));
        self.bar.set_position(p.done);
        self.bar
            .set_message(format!("{} {}/{}", self.stage, p.done, p.total.max(1)));
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
