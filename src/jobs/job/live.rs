//! A job while it runs: [`Live`] holds one cancellation token, why it was
//! stopped, its lease, and a bounded broadcast of its events that any
//! number of watchers follow from wherever the job is; [`Reporter`] sends
//! an evaluation's progress, [`StopOnDrop`] stops a job its submitter
//! left.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::{Deadline, Event, EventStream, JobState, Outcome, Progress, StopReason};
use crate::cancel::Stop;
use crate::database::Lease;
use crate::error::{Error, Result};

/// Events a watcher may fall behind by before it skips progress.
const EVENT_BUFFER: usize = 256;

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
    /// tenths of `length` was confirmed (the tenth a margin for the delay
    /// between the database setting the lease and this replica hearing of
    /// it, and for the rate of its clock against the database's). A replica cut off
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
