//! What a job is (its [`JobSpec`]), what it tells the world (its
//! [`Event`]s) and its live state while it runs ([`Live`]): one
//! cancellation token, why it was stopped, and a bounded broadcast of its
//! events that any number of watchers follow from wherever the job is.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::Stream;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::compute::EvalData;
use super::settings::{Settings, Splits};
use crate::cancel::Stop;
use crate::data::LoadedDataset;
use crate::database::Lease;
use crate::error::{Error, Result};
use crate::proto::{Comparison, EvaluationReport, EvaluationStatus, ExcludedModel};
use crate::registry::LoadedModel;

/// Events a watcher may fall behind by before it skips progress.
const EVENT_BUFFER: usize = 256;

/// A job to run.
#[derive(Debug)]
pub enum JobSpec {
    /// One model over a dataset: its test and train splits and the
    /// positive views of the test images.
    Model(ModelJob),
    /// Embeddings the client computed.
    Embeddings(Box<EmbeddingsJob>),
    /// Several models over one dataset, one after the other in one slot.
    Compare(CompareJob),
}

/// One model on one dataset.
#[derive(Debug, Clone)]
pub struct ModelJob {
    /// The model.
    pub model: Arc<LoadedModel>,
    /// The dataset.
    pub dataset: Arc<LoadedDataset>,
    /// Its splits that play test and train.
    pub splits: Splits,
    /// The resolved settings.
    pub settings: Settings,
}

/// Uploaded embeddings and how the client described them.
#[derive(Debug)]
pub struct EmbeddingsJob {
    /// Name of the model that made them (for the report).
    pub name: String,
    /// Name of the dataset they embed (for the report).
    pub dataset: String,
    /// Training loss (for the report).
    pub loss: String,
    /// The name of a loss of the user's own, with loss "other" (for the report).
    pub loss_name: String,
    /// Training τ (for the report).
    pub temperature: f64,
    /// The embeddings.
    pub data: EvalData,
    /// The resolved settings.
    pub settings: Settings,
}

/// Several models on one dataset.
#[derive(Debug)]
pub struct CompareJob {
    /// The comparison's id (stored with its evaluation ids at admission).
    pub id: String,
    /// The dataset.
    pub dataset: Arc<LoadedDataset>,
    /// Its splits that play test and train.
    pub splits: Splits,
    /// Each model that takes the dataset's images, with its settings.
    pub models: Vec<(Arc<LoadedModel>, Settings)>,
    /// The models left out, with why: those that do not take the dataset's
    /// images and the duplicates (no report is stored for them).
    pub excluded: Vec<ExcludedModel>,
}

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
    Report(Box<EvaluationReport>),
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
    Evaluated(Box<EvaluationReport>),
    /// The job ended: what it produced, or why not.
    Done(Result<Outcome, Arc<Error>>),
}

/// How close to its deadline a client that leaves is taken to have left
/// because of it (the server's timer and the client's run apart by a little).
const DEADLINE_TOLERANCE: Duration = Duration::from_millis(10);

/// A client's deadline: when it gives up, and the length it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When it passes.
    pub at: Instant,
    /// The length the client gave.
    pub length: Duration,
}

impl Deadline {
    /// A deadline `length` from now.
    pub fn after(length: Duration) -> Self {
        Self {
            at: Instant::now() + length,
            length,
        }
    }

    /// Whether it has passed (or is within a few milliseconds).
    pub fn passed(&self) -> bool {
        Instant::now() + DEADLINE_TOLERANCE >= self.at
    }
}

/// Why a job was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// CancelEvaluation.
    Cancelled,
    /// The client that submitted it (without detach) went away.
    ClientGone,
    /// The client's deadline passed.
    Deadline(Duration),
    /// The server shut down and the grace period ran out.
    Shutdown,
    /// Another replica took the job over: this one's lease lapsed (it could
    /// not renew it in time), and the other records the job's end.
    LeaseLost,
    /// The replica shut down and handed the detached job back to the
    /// database, where another replica takes it over.
    HandedOver,
}

impl StopReason {
    /// The status an evaluation stopped for this reason is stored with.
    pub fn status(self) -> EvaluationStatus {
        match self {
            StopReason::Deadline(_) => EvaluationStatus::Failed,
            _ => EvaluationStatus::Cancelled,
        }
    }

    /// The error a job stopped for this reason ends with.
    pub fn error(self) -> Error {
        match self {
            StopReason::Cancelled => Error::Cancelled("cancelled by CancelEvaluation".into()),
            StopReason::ClientGone => Error::Cancelled(
                "the client went away (submit with detach to keep a job running without it)".into(),
            ),
            StopReason::Deadline(d) => Error::DeadlineExceeded(format!(
                "the client's deadline of {:.3} s passed before the evaluation finished",
                d.as_secs_f64()
            )),
            StopReason::Shutdown => {
                Error::Cancelled("the server shut down before the evaluation finished".into())
            }
            StopReason::LeaseLost => Error::Cancelled(
                "another replica took the job over (this one could not renew its lease)".into(),
            ),
            StopReason::HandedOver => Error::Unavailable(
                "this replica shut down and handed the job over to the others; follow it \
                 through any replica"
                    .into(),
            ),
        }
    }
}

/// A job while it is admitted and not yet ended.
#[derive(Debug)]
pub struct Live {
    /// The ids of its evaluations (one, or one per compared model; those
    /// that run first, then any SKIPPED ones a job of an earlier version
    /// stored).
    pub ids: Vec<String>,
    /// How many of `ids` run (the others were SKIPPED at admission).
    runs: usize,
    token: CancellationToken,
    queued: bool,
    started: AtomicBool,
    detached: AtomicBool,
    /// Set when a report of the job could not be recorded.
    unrecorded: AtomicBool,
    reason: Mutex<Option<StopReason>>,
    events: broadcast::Sender<Event>,
    done: watch::Sender<Option<Event>>,
    latest: Mutex<Option<Progress>>,
    lease: OnceLock<Lease>,
}

/// A stream of a job's events.
pub type EventStream = Pin<Box<dyn Stream<Item = Event> + Send>>;

impl Live {
    /// A job with these evaluation ids, of which the first `runs` run;
    /// `queued` when admission put it in the queue rather than in a slot.
    pub fn new(ids: Vec<String>, runs: usize, queued: bool) -> Self {
        Self {
            ids,
            runs,
            token: CancellationToken::new(),
            queued,
            started: AtomicBool::new(false),
            detached: AtomicBool::new(false),
            unrecorded: AtomicBool::new(false),
            reason: Mutex::new(None),
            events: broadcast::channel(EVENT_BUFFER).0,
            done: watch::channel(None).0,
            latest: Mutex::new(None),
            lease: OnceLock::new(),
        }
    }

    /// Records the replica's hold on the job in the database (once, when
    /// the job is stored or claimed).
    pub fn set_lease(&self, lease: Lease) {
        let _ = self.lease.set(lease);
    }

    /// The replica's hold on the job, once stored.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.get()
    }

    /// The latest progress sent (for watchers on other replicas).
    pub fn latest_progress(&self) -> Option<Progress> {
        self.latest.lock().expect("progress lock").clone()
    }

    /// Whether admission put the job in the queue.
    pub fn was_queued(&self) -> bool {
        self.queued
    }

    /// Records that the job holds a slot.
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    /// Records that the job runs without its submitter.
    pub fn mark_detached(&self) {
        self.detached.store(true, Ordering::SeqCst);
    }

    /// Notes that a report of the job could not be recorded.
    pub fn mark_unrecorded(&self) {
        self.unrecorded.store(true, Ordering::SeqCst);
    }

    /// Whether every report of the job so far was recorded.
    pub fn all_recorded(&self) -> bool {
        !self.unrecorded.load(Ordering::SeqCst)
    }

    /// Whether the job runs without its submitter.
    pub fn is_detached(&self) -> bool {
        self.detached.load(Ordering::SeqCst)
    }

    /// Whether the job got a slot (false while it waits in the queue).
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Stops the job; the first reason given is the one recorded.
    pub fn stop(&self, reason: StopReason) {
        let mut r = self.reason.lock().expect("reason lock");
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.token.cancel();
    }

    /// Why the job was stopped, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().expect("reason lock")
    }

    /// The job's token.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// The stop signal its computations check.
    pub fn stop_signal(&self) -> Stop {
        Stop::new(self.token.clone())
    }

    /// The error a job that stopped ends with (cancellation when no reason
    /// was recorded).
    pub fn stopped_error(&self) -> Error {
        self.reason()
            .map(StopReason::error)
            .unwrap_or_else(|| Error::Cancelled("the job was stopped".into()))
    }

    /// Tells the watchers (a watcher that falls behind skips events).
    pub fn emit(&self, event: Event) {
        if let Event::Progress(p) = &event {
            *self.latest.lock().expect("progress lock") = Some(p.clone());
        }
        let _ = self.events.send(event);
    }

    /// Tells the watchers how the job ended; later watchers see it too.
    pub fn finish(&self, outcome: Result<Outcome, Arc<Error>>) {
        let event = Event::Done(outcome);
        self.done.send_replace(Some(event.clone()));
        self.emit(event);
    }

    /// The job's events from now on, ending with [`Event::Done`] (at once,
    /// when the job has already ended).
    pub fn follow(&self) -> EventStream {
        use broadcast::error::{RecvError, TryRecvError};
        let rx = self.events.subscribe();
        let done = self.done.subscribe();
        Box::pin(futures::stream::unfold(
            (rx, done, false),
            |(mut rx, done, ended)| async move {
                if ended {
                    return None;
                }
                let next = |ev: Event, rx, done| {
                    let last = matches!(ev, Event::Done(_));
                    Some((ev, (rx, done, last)))
                };
                loop {
                    // What was sent since subscribing comes first; then the
                    // end, if the job has ended; else wait.
                    let received = match rx.try_recv() {
                        Ok(ev) => Ok(ev),
                        Err(TryRecvError::Lagged(_)) => continue,
                        Err(TryRecvError::Closed) => Err(RecvError::Closed),
                        Err(TryRecvError::Empty) => {
                            let ended = done.borrow().clone();
                            if let Some(ev) = ended {
                                // Whatever was sent before the end is in the
                                // buffer by now: it comes first.
                                return match rx.try_recv() {
                                    Ok(first) => next(first, rx, done),
                                    Err(_) => next(ev, rx, done),
                                };
                            }
                            rx.recv().await
                        }
                    };
                    match received {
                        Ok(ev) => return next(ev, rx, done),
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => {
                            let ended = done.borrow().clone();
                            return ended.and_then(|ev| next(ev, rx, done));
                        }
                    }
                }
            },
        ))
    }
}

/// Sends the progress of one evaluation of a job to its watchers.
#[derive(Debug, Clone)]
pub struct Reporter {
    live: Arc<Live>,
    evaluation_id: String,
    model: String,
    model_index: u32,
}

impl Reporter {
    /// Progress of evaluation `evaluation_id` (of `model`) of `live`.
    pub fn new(live: Arc<Live>, evaluation_id: &str, model: &str) -> Self {
        let model_index = live
            .ids
            .iter()
            .position(|id| id == evaluation_id)
            .unwrap_or(0) as u32
            + 1;
        Self {
            live,
            evaluation_id: evaluation_id.to_string(),
            model: model.to_string(),
            model_index,
        }
    }

    /// Stage `stage` is at `done` of `total`.
    pub fn send(&self, stage: &str, done: u64, total: u64) {
        self.live.emit(Event::Progress(Progress {
            evaluation_id: self.evaluation_id.clone(),
            model: self.model.clone(),
            model_index: self.model_index,
            models: self.live.runs as u32,
            stage: stage.to_string(),
            done,
            total,
        }));
    }

    /// The job's stop signal.
    pub fn stop(&self) -> Stop {
        self.live.stop_signal()
    }

    /// The job's token.
    pub fn token(&self) -> &CancellationToken {
        self.live.token()
    }

    /// The error the job ends with once stopped.
    pub fn stopped_error(&self) -> Error {
        self.live.stopped_error()
    }
}

/// Stops a job when dropped, unless disarmed: the submitter's hold on a job
/// that was not detached. Dropped after its deadline it records the
/// deadline, else that the client went away.
#[derive(Debug)]
pub struct StopOnDrop {
    live: Option<Arc<Live>>,
    deadline: Option<Deadline>,
}

impl StopOnDrop {
    /// Holds `live` for a client with `deadline`.
    pub fn new(live: Arc<Live>, deadline: Option<Deadline>) -> Self {
        Self {
            live: Some(live),
            deadline,
        }
    }

    /// Lets the job run on without the holder.
    pub fn disarm(mut self) {
        self.live = None;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            let reason = match self.deadline {
                Some(d) if d.passed() => StopReason::Deadline(d.length),
                _ => StopReason::ClientGone,
            };
            live.stop(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn progress(stage: &str) -> Event {
        Event::Progress(Progress {
            evaluation_id: "e".into(),
            model: "m".into(),
            model_index: 1,
            models: 1,
            stage: stage.into(),
            done: 0,
            total: 1,
        })
    }

    #[tokio::test]
    async fn followers_see_events_in_order_and_late_ones_see_the_end() {
        let live = Live::new(vec!["e".into()], 1, false);
        let early = live.follow();
        live.emit(progress("a"));
        live.emit(progress("b"));
        live.finish(Err(Arc::new(Error::Cancelled("x".into()))));
        let events: Vec<Event> = early.collect().await;
        assert_eq!(events.len(), 3);
        assert!(matches!(&events[1], Event::Progress(p) if p.stage == "b"));
        assert!(matches!(events[2], Event::Done(Err(_))));
        let late: Vec<Event> = live.follow().collect().await;
        assert!(matches!(late.as_slice(), [Event::Done(Err(_))]));
    }

    #[test]
    fn the_first_reason_stays_and_a_guard_past_its_deadline_records_it() {
        let live = Arc::new(Live::new(vec!["e".into()], 1, false));
        live.stop(StopReason::Cancelled);
        live.stop(StopReason::Shutdown);
        assert_eq!(live.reason(), Some(StopReason::Cancelled));
        assert!(live.token().is_cancelled());

        let live = Arc::new(Live::new(vec!["e".into()], 1, false));
        let d = Duration::from_millis(1);
        drop(StopOnDrop::new(live.clone(), Some(Deadline::after(d))));
        assert_eq!(live.reason(), Some(StopReason::Deadline(d)));
        assert_eq!(StopReason::Deadline(d).status(), EvaluationStatus::Failed);

        let live = Arc::new(Live::new(vec!["e".into()], 1, false));
        let far = Deadline::after(Duration::from_secs(60));
        drop(StopOnDrop::new(live.clone(), Some(far)));
        assert_eq!(live.reason(), Some(StopReason::ClientGone));

        let live = Arc::new(Live::new(vec!["e".into()], 1, false));
        StopOnDrop::new(live.clone(), None).disarm();
        assert_eq!(live.reason(), None);
        drop(StopOnDrop::new(live.clone(), None));
        assert_eq!(live.reason(), Some(StopReason::ClientGone));
    }
}
