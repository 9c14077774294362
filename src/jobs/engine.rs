//! The evaluation engine: it owns the slots and the queue ([`Scheduler`]),
//! the compute threads ([`ComputePool`]), the embedding cache and the
//! results store, and runs every job from admission to its stored end.
//!
//! A job is submitted ([`Engine::submit`]) and admitted at once or refused
//! (RESOURCE_EXHAUSTED); its evaluations are stored QUEUED, then RUNNING,
//! then COMPLETED, FAILED or CANCELLED, each when it happens. The submitter
//! gets a [`JobHandle`]: the ids and a bounded stream of events. Dropping a
//! handle that was not detached stops the job (the client went away, or its
//! deadline passed); a detached job runs on, and anyone can follow it
//! ([`Engine::watch`]) or stop it ([`Engine::cancel`]). Every stage checks
//! the job's one cancellation token, so a stopped job frees its slot and
//! its CPU within a block's time. [`Engine::shutdown`] stops admitting, gives
//! running jobs a grace period, then cancels them and records why.
//!
//! Jobs are rows of the results database ([`crate::database::jobs`]), each
//! held under a lease; taking, renewing, handing over and stealing jobs is
//! the replica protocol ([`super::replica`]), and writing a job's reports,
//! fenced by its lease, is the recorder's ([`super::record`]). How a job
//! ends is decided by its state alone ([`super::job::JobState::ending`]).
//!
//! Nothing here knows about gRPC: the services translate requests into
//! [`JobSpec`]s and events into messages.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::cache::EmbeddingCache;
use super::job::{
    Deadline, Ending, Event, EventStream, JobSpec, Live, Reporter, StopOnDrop, StopReason,
};
use super::pool::ComputePool;
use super::record::Recorder;
use super::replica::Replica;
use super::scheduler::{Scheduler, Ticket};
use super::stored_request::Resolve;
use crate::database::{ReportStore, Reports};
use crate::domain::{Report, Status};
use crate::error::{Error, Result};

/// How long [`Engine::cancel`] waits for a job to record its end.
const CANCEL_WAIT: Duration = Duration::from_secs(5);
/// How long shutdown waits for cancelled jobs to record their end.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Sizes of the engine and its place among the replicas.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Jobs that run at once (at least one).
    pub slots: usize,
    /// Jobs that may wait for a slot.
    pub queue: usize,
    /// Compute threads (0: one per core).
    pub compute_threads: usize,
    /// This replica's name among those sharing the database: the owner of
    /// the jobs it runs. A replica restarted under the same name takes its
    /// own open jobs back at once.
    pub replica: String,
    /// How long a job's lease holds without a heartbeat: a replica that
    /// dies has its jobs taken over this long after its last heartbeat.
    pub lease: Duration,
    /// Take detached jobs waiting on other replicas when a slot is free
    /// (when every replica can resolve every model: uploads shared).
    pub steal: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            slots: 2,
            queue: 16,
            compute_threads: 0,
            replica: default_replica(""),
            lease: Duration::from_secs(30),
            steal: false,
        }
    }
}

/// A replica name from the host's name and `suffix` (the serving port:
/// replicas on one host stay apart, and a restarted pod keeps its name).
pub fn default_replica(suffix: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    if suffix.is_empty() {
        host
    } else {
        format!("{host}:{suffix}")
    }
}

/// How a job is submitted.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubmitOptions {
    /// Run on without the submitter: dropping the handle does not stop it.
    pub detach: bool,
    /// The submitter's deadline (ignored when detached).
    pub deadline: Option<Deadline>,
}

/// The submitter's side of a job: its evaluation ids and its events. A
/// stream of [`Event`]s; dropping it stops the job unless it was detached.
pub struct JobHandle {
    /// The job's evaluation ids (one, or one per compared model).
    pub ids: Vec<String>,
    /// Whether the job waits in the queue.
    pub queued: bool,
    events: EventStream,
    guard: Option<StopOnDrop>,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle")
            .field("ids", &self.ids)
            .field("queued", &self.queued)
            .finish_non_exhaustive()
    }
}

impl JobHandle {
    /// Lets the job run on without this handle; returns its ids.
    pub fn detach(mut self) -> Vec<String> {
        if let Some(guard) = self.guard.take() {
            guard.disarm();
        }
        std::mem::take(&mut self.ids)
    }
}

impl Stream for JobHandle {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.events.poll_next_unpin(cx)
    }
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    /// The one writer of reports and comparisons.
    pub(super) recorder: Recorder,
    /// This replica's side of the job queue: the leases.
    pub(super) replica: Replica,
    /// The results, to read.
    pub(super) reports: Reports,
    pub(super) cache: Arc<EmbeddingCache>,
    pub(super) scheduler: Scheduler,
    pub(super) pool: ComputePool,
    pub(super) live: Mutex<HashMap<String, Arc<Live>>>,
    pub(super) accepting: AtomicBool,
    pub(super) tracker: TaskTracker,
    pub(super) resolver: OnceLock<Arc<dyn Resolve>>,
    pub(super) background: CancellationToken,
}

impl Engine {
    /// An engine over `store` and `cache`.
    pub fn new(
        store: Arc<ReportStore>,
        cache: Arc<EmbeddingCache>,
        opts: EngineOptions,
    ) -> Result<Arc<Self>> {
        let lease = opts.lease.max(Duration::from_millis(300));
        let engine = Arc::new(Self {
            recorder: Recorder::new(store.clone(), lease),
            replica: Replica::new(store.clone(), opts.replica, lease, opts.steal),
            reports: Reports::of(store),
            cache,
            scheduler: Scheduler::new(opts.slots, opts.queue),
            pool: ComputePool::new(opts.compute_threads)?,
            live: Mutex::new(HashMap::new()),
            accepting: AtomicBool::new(true),
            tracker: TaskTracker::new(),
            resolver: OnceLock::new(),
            background: CancellationToken::new(),
        });
        engine.start_heartbeat();
        Ok(engine)
    }

    /// This replica's name.
    pub fn replica(&self) -> &str {
        self.replica.name()
    }

    /// The embedding cache's folder (pictures made from its embeddings are
    /// kept beside them).
    pub fn cache_dir(&self) -> std::path::PathBuf {
        self.cache.dir().to_path_buf()
    }

    /// The cached embedding of split `split` of `dataset` under `model`, if
    /// an evaluation made it and the cache still keeps it.
    pub async fn cached_embedding(
        &self,
        model: &crate::registry::LoadedModel,
        dataset: &crate::data::LoadedDataset,
        split: &str,
    ) -> Option<Arc<crate::metrics::Matrix>> {
        super::encode::cached_embedding(&self.cache, model, dataset, split).await
    }

    /// The results, to read: writes go through the recorder alone.
    pub fn reports(&self) -> Reports {
        self.reports.clone()
    }

    /// The one writer of reports and comparisons (deletions included).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The slots and the queue.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Compute tasks (metrics, probes, augmentation) running now.
    pub fn active_compute(&self) -> usize {
        self.pool.active()
    }

    /// Jobs admitted and not yet ended.
    pub fn live_jobs(&self) -> usize {
        self.tracker.len()
    }

    /// Admits a job (or refuses it: RESOURCE_EXHAUSTED when the slots and
    /// the queue are full, UNAVAILABLE while shutting down), stores its
    /// evaluations as QUEUED and starts it.
    pub async fn submit(self: &Arc<Self>, spec: JobSpec, opts: SubmitOptions) -> Result<JobHandle> {
        // Admission runs as its own task: a caller that goes away halfway
        // (its future dropped) cannot leave rows QUEUED with no job behind
        // them; the job it started then sees its handle dropped and stops.
        let engine = self.clone();
        tokio::spawn(async move { engine.admit(spec, opts).await })
            .await
            .map_err(|e| Error::join("admission", e))?
    }

    async fn admit(self: Arc<Self>, spec: JobSpec, opts: SubmitOptions) -> Result<JobHandle> {
        // Held until the job's task is tracked, so that shutdown waits for it.
        let _tracked = self.tracker.token();
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(Error::unavailable(
                crate::error::Unavailable::ShuttingDown,
                "the server is shutting down and admits no new evaluations",
            ));
        }
        let ticket = self.scheduler.admit()?;
        let mut reports: Vec<Report> = match &spec {
            JobSpec::Model(job) => {
                let mut report = super::record::queued_model_report(&job.model, &job.dataset);
                report.tags.extend(job.tags.clone());
                vec![report]
            }
            JobSpec::Embeddings(job) => vec![super::record::queued_embeddings_report(job)],
            JobSpec::Compare(job) => job
                .models
                .iter()
                .map(|(model, _)| super::record::queued_model_report(model, &job.dataset))
                .collect(),
        };
        let ids: Vec<String> = reports.iter().map(|r| r.id.clone()).collect();
        let lease = self
            .recorder
            .admit(&self.replica.new_job(&spec, &ids[0], opts.detach), &reports)
            .await?;
        let queued = ticket.is_queued();
        let runs = reports
            .iter()
            .filter(|r| r.status == Status::Queued)
            .count();
        let live = Arc::new(Live::new(ids.clone(), runs, queued));
        live.set_lease(lease);
        if opts.detach {
            live.mark_detached();
        }
        if let JobSpec::Compare(job) = &spec {
            let created = reports.first().map_or(0, |r| {
                r.created_at
                    .map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
            });
            let saved = self
                .recorder
                .record_comparison(&job.id, &job.dataset.name, created, &ids, &job.excluded)
                .await;
            if let Err(err) = saved {
                for report in &mut reports {
                    report.status = Status::Failed;
                    report.error = err.to_string();
                    self.recorder.record(&live, report).await;
                }
                self.recorder.finish(&live).await;
                return Err(err);
            }
        }
        if !self.accepting.load(Ordering::SeqCst) {
            // Shutdown began while the rows were stored: the job records
            // that it was cancelled, like the others.
            live.stop(StopReason::Shutdown);
        }
        let events = live.follow();
        let deadline = opts.deadline.filter(|_| !opts.detach);
        let guard = (!opts.detach).then(|| StopOnDrop::new(live.clone(), deadline));
        tracing::info!(ids = ?ids, queued, detach = opts.detach, "evaluation admitted");
        self.start(live, spec, reports, ticket, deadline);
        Ok(JobHandle {
            ids,
            queued,
            events,
            guard,
        })
    }

    /// Runs a stored job (admitted here, or taken over) to its end.
    pub(super) fn start(
        self: &Arc<Self>,
        live: Arc<Live>,
        spec: JobSpec,
        reports: Vec<Report>,
        ticket: Ticket,
        deadline: Option<Deadline>,
    ) {
        {
            let mut map = self.live.lock().expect("live lock");
            for id in &live.ids {
                map.insert(id.clone(), live.clone());
            }
        }
        let engine = self.clone();
        self.tracker.spawn(async move {
            engine
                .lifecycle(live, spec, reports, ticket, deadline)
                .await;
            // What the job's buffers held goes back to the system.
            let released = tokio::task::spawn_blocking(crate::memory::release).await;
            if let Err(err) = released {
                tracing::warn!(%err, "memory release did not run");
            }
            tracing::debug!(
                rss_bytes = crate::memory::resident_bytes(),
                "evaluation memory released"
            );
        });
    }

    /// The events of the job that evaluation `id` belongs to, from now on;
    /// for an evaluation that has ended, its stored report alone. A job
    /// that another replica runs is followed through the database.
    pub async fn watch(&self, id: &str) -> Result<EventStream> {
        let live = self.live.lock().expect("live lock").get(id).cloned();
        if let Some(live) = live {
            let events = self.replica.follow_here(&live, id);
            // A member of a comparison may have ended already: its report.
            let report = self.reports.get(id).await?;
            if !report.status.has_ended() {
                return Ok(events);
            }
            return Ok(Box::pin(futures::stream::iter([Event::Evaluated(
                Box::new(report),
            )])));
        }
        let report = self.reports.get(id).await?;
        if report.status.has_ended() || self.replica.job_of(id).await?.is_none() {
            return Ok(Box::pin(futures::stream::iter([Event::Evaluated(
                Box::new(report),
            )])));
        }
        let job = self
            .replica
            .job_of(id)
            .await?
            .map(|j| j.id)
            .unwrap_or_default();
        Ok(self.replica.follow_elsewhere(id, job))
    }

    /// Stops the job that evaluation `id` belongs to, waits (a few seconds
    /// at most) for it to record its end, and returns the stored status.
    pub async fn cancel(&self, id: &str) -> Result<Status> {
        let live = self.live.lock().expect("live lock").get(id).cloned();
        if let Some(live) = live {
            let mut events = live.follow();
            live.stop(StopReason::Cancelled);
            let _ = tokio::time::timeout(CANCEL_WAIT, async {
                while let Some(event) = events.next().await {
                    if matches!(event, Event::Done(_)) {
                        break;
                    }
                }
            })
            .await;
        } else if let Some(job) = self.replica.job_of(id).await?.filter(|j| !j.done) {
            // Another replica holds it: it reads the request at its next
            // heartbeat (or the replica that takes it over does).
            self.replica.request_cancel(&job.id).await?;
            let until = Instant::now() + CANCEL_WAIT;
            while Instant::now() < until && !self.reports.get(id).await?.status.has_ended() {
                tokio::time::sleep(self.replica.tick().min(Duration::from_millis(100))).await;
            }
        }
        let report = self.reports.get(id).await?;
        Ok(report.status)
    }

    /// Stops `live` because this replica shuts down: a detached job is
    /// handed over to the other replicas when the database is shared, any
    /// other is cancelled and records why.
    pub(super) fn stop_for_shutdown(&self, live: &Live) {
        if self.replica.shares_jobs() && live.is_detached() {
            live.stop(StopReason::HandedOver);
        } else {
            live.stop(StopReason::Shutdown);
        }
    }

    /// Stops admitting; stops the jobs still queued (handing detached ones
    /// over to the other replicas when the database is shared, cancelling
    /// the rest); lets running jobs finish for `grace`, then stops them the
    /// same way; returns once every job has recorded its end (or `grace` +
    /// 5 s have passed).
    pub async fn shutdown(&self, grace: Duration) {
        self.accepting.store(false, Ordering::SeqCst);
        self.tracker.close();
        for live in self
            .live_list()
            .into_iter()
            .filter(|l| l.state().waiting_in_queue())
        {
            self.stop_for_shutdown(&live);
        }
        let running = self.tracker.len();
        if running > 0 {
            tracing::info!(
                running,
                grace_s = grace.as_secs_f64(),
                "shutting down: waiting for running evaluations"
            );
        }
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            let live = self.live_list();
            tracing::warn!(
                jobs = live.len(),
                "shutdown grace period over: cancelling running evaluations"
            );
            for live in live {
                self.stop_for_shutdown(&live);
            }
            if tokio::time::timeout(STOP_WAIT, self.tracker.wait())
                .await
                .is_err()
            {
                tracing::error!("evaluations did not stop within 5 s of being cancelled");
            }
        }
        self.background.cancel();
    }

    pub(super) fn live_list(&self) -> Vec<Arc<Live>> {
        let map = self.live.lock().expect("live lock");
        let mut seen: Vec<Arc<Live>> = Vec::new();
        for live in map.values() {
            if !seen.iter().any(|l| Arc::ptr_eq(l, live)) {
                seen.push(live.clone());
            }
        }
        seen
    }

    /// A job from its slot to its stored end.
    async fn lifecycle(
        self: Arc<Self>,
        live: Arc<Live>,
        spec: JobSpec,
        mut reports: Vec<Report>,
        ticket: Ticket,
        deadline: Option<Deadline>,
    ) {
        let first = live.ids[0].clone();
        if ticket.is_queued() {
            for r in reports.iter().filter(|r| !r.status.has_ended()) {
                Reporter::new(live.clone(), &r.id, &r.model).send("queued", 0, 1);
            }
        }
        let work = AssertUnwindSafe(self.execute(&live, spec, &mut reports, ticket)).catch_unwind();
        let timer = async {
            if let Some(d) = deadline {
                tokio::time::sleep_until(d.at.into()).await;
                live.stop(StopReason::Deadline(d.length));
            }
            std::future::pending::<()>().await
        };
        let outcome = tokio::select! {
            out = work => out,
            _ = timer => unreachable!("the timer never ends"),
        };
        let outcome = outcome.unwrap_or_else(|payload| {
            let err = Error::panicked(format!("evaluation {first}"), payload.as_ref());
            tracing::error!(%err, "evaluation task panicked");
            Err(err)
        });
        // Whatever has not recorded its end records it now (a job another
        // replica took over, or takes over, records nothing more here).
        let lost = live.state().moved();
        for report in reports
            .iter_mut()
            .filter(|r| !r.status.has_ended() && !lost)
        {
            let (status, error) = match (live.reason(), &outcome) {
                (Some(reason), _) => (reason.status(), reason.error().to_string()),
                (None, Err(err)) => (super::run::status_of(err), err.to_string()),
                (None, Ok(_)) => (
                    Status::Failed,
                    "the job ended before this evaluation ran".into(),
                ),
            };
            report.status = status;
            report.error = crate::error::scrub_paths(&error);
            self.recorder.record(&live, report).await;
            live.emit(Event::Evaluated(Box::new(report.clone())));
        }
        match (live.state().ending(live.lease().is_some()), live.lease()) {
            (Ending::Finish, _) => self.recorder.finish(&live).await,
            // A report that could not be recorded: the job is not marked
            // ended but given back, and whichever replica takes it (this
            // one, say) runs its unrecorded evaluations again.
            (Ending::GiveBack, Some(lease)) => self.replica.give_back(lease).await,
            (Ending::HandOver, Some(lease)) => self.replica.hand_over(lease).await,
            _ => {}
        }
        match &outcome {
            Ok(_) => tracing::info!(id = %first, "evaluation job ended"),
            Err(err) => tracing::info!(id = %first, %err, "evaluation job ended without a result"),
        }
        live.finish(outcome.map_err(Arc::new));
        self.live
            .lock()
            .expect("live lock")
            .retain(|_, l| !Arc::ptr_eq(l, &live));
    }
}
