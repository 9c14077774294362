//! What a job is (its [`JobSpec`]), what it tells the world (its
//! [`Event`]s) and its live state while it runs ([`Live`]): one
//! cancellation token, why it was stopped, and a bounded broadcast of its
//! events that any number of watchers follow from wherever the job is.

use std::pin::Pin;
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
use crate::domain::{Comparison, ExcludedModel, Report, Status};
use crate::error::{Error, Result};
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
    /// The request's tags, set over the model's in the report.
    pub tags: std::collections::BTreeMap<String, String>,
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
    pub fn status(self) -> Status {
        match self {
            StopReason::Deadline(_) => Status::Failed,
            _ => Status::Cancelled,
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
            StopReason::HandedOver => Error::unavailable(
                crate::error::Unavailable::HandedOver,
                "this replica shut down and handed the job over to the others; follow it \
                 through any replica",
            ),
        }
    }
}

/// Where a job is in its life on this replica. The transitions, all of
/// them (each a method below; any other call leaves the state as it is):
///
/// ```text
/// Admitted{queued} --start--> Running
/// Admitted | Running --stop(reason)--> Stopped{reason, started}   (the first reason stays)
/// any --detach--> the same, detached          any --unrecorded--> the same, unrecorded
/// ```
///
/// How the job ends is a function of the state alone ([`JobState::ending`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobState {
    /// Its phase.
    pub phase: Phase,
    /// Whether admission put it in the queue (rather than straight into a slot).
    pub queued: bool,
    /// Whether it runs without its submitter.
    pub detached: bool,
    /// Whether a report of it could not be recorded.
    pub unrecorded: bool,
}

/// A job's phase ([`JobState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Admitted, waiting for its slot.
    Admitted,
    /// Holding a slot.
    Running,
    /// Stopped for `reason`; `started` when it held a slot by then.
    Stopped {
        /// The first reason given.
        reason: StopReason,
        /// Whether it had started.
        started: bool,
    },
}

/// What a job does once its work is over ([`JobState::ending`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every report was recorded: the job is marked ended.
    Finish,
    /// A report could not be recorded: the job is given back to the queue,
    /// to run its unrecorded evaluations again wherever it is taken.
    GiveBack,
    /// The replica shut down: the job is handed over to the others.
    HandOver,
    /// Another replica holds the job now, or nothing holds it here: this
    /// replica records nothing more of it.
    Leave,
}

impl JobState {
    /// A job just admitted, `queued` or given a slot at once.
    pub fn admitted(queued: bool) -> Self {
        Self {
            phase: Phase::Admitted,
            queued,
            detached: false,
            unrecorded: false,
        }
    }

    /// It took its slot.
    pub fn start(&mut self) {
        if self.phase == Phase::Admitted {
            self.phase = Phase::Running;
        }
    }

    /// It was stopped for `reason`; false when it already was (the first
    /// reason stays).
    pub fn stop(&mut self, reason: StopReason) -> bool {
        let started = match self.phase {
            Phase::Admitted => false,
            Phase::Running => true,
            Phase::Stopped { .. } => return false,
        };
        self.phase = Phase::Stopped { reason, started };
        true
    }

    /// Why it was stopped, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        match self.phase {
            Phase::Stopped { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Whether it held a slot.
    pub fn started(&self) -> bool {
        matches!(
            self.phase,
            Phase::Running | Phase::Stopped { started: true, .. }
        )
    }

    /// Whether it still waits in the queue it was admitted to.
    pub fn waiting_in_queue(&self) -> bool {
        self.queued && !self.started()
    }

    /// Whether another replica holds the job now (this one's lease was
    /// taken, or it handed the job over): then this replica records nothing
    /// more of it.
    pub fn moved(&self) -> bool {
        matches!(
            self.reason(),
            Some(StopReason::LeaseLost | StopReason::HandedOver)
        )
    }

    /// How the job ends once its work is over, with (`leased`) or without a
    /// hold on it in the database.
    pub fn ending(&self, leased: bool) -> Ending {
        match (self.reason(), self.unrecorded, leased) {
            (Some(StopReason::LeaseLost), _, _) => Ending::Leave,
            (Some(StopReason::HandedOver), _, true) => Ending::HandOver,
            (Some(StopReason::HandedOver), _, false) => Ending::Leave,
            (_, false, _) => Ending::Finish,
            (_, true, true) => Ending::GiveBack,
            (_, true, false) => Ending::Leave,
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
    state: Mutex<JobState>,
    events: broadcast::Sender<Event>,
    done: watch::Sender<Option<Event>>,
    latest: Mutex<Option<Progress>>,
    lease: OnceLock<Lease>,
    /// When the last renewal of `lease` that the database confirmed was
    /// sent: the lease holds, by this replica's clock, until that instant
    /// plus the lease's length.
    renewed: Mutex<Option<Instant>>,
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
            state: Mutex::new(JobState::admitted(queued)),
            events: broadcast::channel(EVENT_BUFFER).0,
            done: watch::channel(None).0,
            latest: Mutex::new(None),
            lease: OnceLock::new(),
            renewed: Mutex::new(None),
        }
    }

    /// Records the replica's hold on the job in the database (once, when
    /// the job is stored or claimed).
    pub fn set_lease(&self, lease: Lease) {
        self.lease_renewed(Instant::now());
        let _ = self.lease.set(lease);
    }

    /// The database confirmed a renewal of the lease sent at `sent`.
    pub fn lease_renewed(&self, sent: Instant) {
        *self.renewed.lock().expect("lease lock") = Some(sent);
    }

    /// Whether the lease may have lapsed: no renewal sent within nine
    /// tenths of `length` was confirmed (the tenth a margin for the clocks
    /// of the replicas that would take the job over). A replica cut off
    /// from the database, or stalled, must assume another took the job.
    pub fn lease_lapsed(&self, length: Duration) -> bool {
        match *self.renewed.lock().expect("lease lock") {
            Some(sent) => sent.elapsed() >= length.mul_f64(0.9),
            None => false,
        }
    }

    /// The replica's hold on the job, once stored.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.get()
    }

    /// The latest progress sent (for watchers on other replicas).
    pub fn latest_progress(&self) -> Option<Progress> {
        self.latest.lock().expect("progress lock").clone()
    }

    /// Its state now.
    pub fn state(&self) -> JobState {
        *self.state.lock().expect("state lock")
    }

    fn update<T>(&self, change: impl FnOnce(&mut JobState) -> T) -> T {
        change(&mut self.state.lock().expect("state lock"))
    }

    /// Records that the job holds a slot.
    pub fn mark_started(&self) {
        self.update(JobState::start);
    }

    /// Records that the job runs without its submitter.
    pub fn mark_detached(&self) {
        self.update(|s| s.detached = true);
    }

    /// Notes that a report of the job could not be recorded.
    pub fn mark_unrecorded(&self) {
        self.update(|s| s.unrecorded = true);
    }

    /// Whether the job runs without its submitter.
    pub fn is_detached(&self) -> bool {
        self.state().detached
    }

    /// Stops the job; the first reason given is the one recorded.
    pub fn stop(&self, reason: StopReason) {
        self.update(|s| s.stop(reason));
        self.token.cancel();
    }

    /// Why the job was stopped, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        self.state().reason()
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

    #[test]
    fn a_lease_not_renewed_for_nine_tenths_of_its_length_counts_as_lapsed() {
        let live = Live::new(vec!["e".into()], 1, false);
        // No lease (a job of one process): never lapsed.
        assert!(!live.lease_lapsed(Duration::ZERO));
        live.set_lease(crate::database::Lease {
            job_id: "j".into(),
            owner: "r0".into(),
            attempt: 1,
        });
        assert!(!live.lease_lapsed(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(50));
        // At least 50 ms since the lease was taken: past 0.9 × 50 ms.
        assert!(live.lease_lapsed(Duration::from_millis(50)));
        assert!(!live.lease_lapsed(Duration::from_secs(3600)));
        // A confirmed renewal holds it again, from when it was sent.
        live.lease_renewed(Instant::now());
        assert!(!live.lease_lapsed(Duration::from_secs(3600)));
    }

    #[test]
    fn a_job_moves_through_its_states_and_the_first_stop_reason_stays() {
        let mut s = JobState::admitted(true);
        assert!(s.waiting_in_queue() && !s.started() && s.reason().is_none());
        s.start();
        assert_eq!(s.phase, Phase::Running);
        assert!(!s.waiting_in_queue() && s.started());
        assert!(s.stop(StopReason::Cancelled));
        assert!(!s.stop(StopReason::Shutdown), "the first reason stays");
        assert_eq!(
            s.phase,
            Phase::Stopped {
                reason: StopReason::Cancelled,
                started: true
            }
        );
        s.start();
        assert_eq!(
            s.reason(),
            Some(StopReason::Cancelled),
            "a stopped job does not start"
        );
        let mut waiting = JobState::admitted(true);
        waiting.stop(StopReason::Shutdown);
        assert!(waiting.waiting_in_queue() && !waiting.started());
        assert!(
            !JobState::admitted(false).waiting_in_queue(),
            "given a slot at admission"
        );
    }

    #[test]
    fn how_a_job_ends_is_a_function_of_its_state() {
        let stopped = |reason| {
            let mut s = JobState::admitted(false);
            s.start();
            s.stop(reason);
            s
        };
        let unrecorded = |mut s: JobState| {
            s.unrecorded = true;
            s
        };
        let done = {
            let mut s = JobState::admitted(false);
            s.start();
            s
        };
        // Every report recorded: marked ended, with or without a lease.
        assert_eq!(done.ending(true), Ending::Finish);
        assert_eq!(done.ending(false), Ending::Finish);
        assert_eq!(stopped(StopReason::Cancelled).ending(true), Ending::Finish);
        assert_eq!(
            stopped(StopReason::Deadline(Duration::from_secs(1))).ending(true),
            Ending::Finish
        );
        // A report not recorded: given back to run again, never marked ended.
        assert_eq!(unrecorded(done).ending(true), Ending::GiveBack);
        assert_eq!(unrecorded(done).ending(false), Ending::Leave);
        // Moved elsewhere: nothing more is recorded here.
        assert_eq!(stopped(StopReason::LeaseLost).ending(true), Ending::Leave);
        assert!(stopped(StopReason::LeaseLost).moved());
        assert_eq!(
            unrecorded(stopped(StopReason::LeaseLost)).ending(true),
            Ending::Leave
        );
        // Handed over at shutdown: released to the others when held.
        assert_eq!(
            stopped(StopReason::HandedOver).ending(true),
            Ending::HandOver
        );
        assert_eq!(
            unrecorded(stopped(StopReason::HandedOver)).ending(true),
            Ending::HandOver
        );
        assert_eq!(stopped(StopReason::HandedOver).ending(false), Ending::Leave);
        assert!(!stopped(StopReason::Shutdown).moved());
    }
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
        assert_eq!(StopReason::Deadline(d).status(), Status::Failed);

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
