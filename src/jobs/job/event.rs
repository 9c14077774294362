//! What a job tells the world: its [`Event`]s, in order: progress, each
//! evaluation's report as it ends, and last how the job ended.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;

use crate::domain::{Comparison, Report};
use crate::error::Error;

/// Progress of one evaluation of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The evaluation it belongs to.
    pub evaluation_id: String,
    /// The model evaluated.
    pub model: String,
    /// Its place among the job's models, from 1.
    pub model_index: u32,
    /// The job's models.
    pub models: u32,
    /// The stage: "queued", "embed_test", "uniformity", …
    pub stage: String,
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// What a job produced.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The report of a one-model or embeddings job.
    Report(Box<Report>),
    /// The rows and plots of a comparison.
    Comparison(Comparison),
}

/// What a job tells its watchers, in order: progress, each evaluation's
/// report as it ends, and last how the job ended.
#[derive(Debug, Clone)]
pub enum Event {
    /// A stage started or advanced.
    Progress(Progress),
    /// One evaluation ended (completed, failed or cancelled); its report as stored.
    Evaluated(Box<Report>),
    /// The job ended: what it produced, or why not.
    Done(Result<Outcome, Arc<Error>>),
}

/// A stream of a job's events.
pub type EventStream = Pin<Box<dyn Stream<Item = Event> + Send>>;
