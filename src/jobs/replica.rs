//! The replica protocol: how replicas that share the results database
//! share its jobs. Each job is held under a lease that the [`heartbeat`]
//! renews every tick with the job's progress; the [`claimer`] takes over,
//! whenever a slot is free, jobs whose replica stopped renewing (its lease
//! lapsed) and detached jobs still waiting on another replica (work
//! stealing), rebuilt from their stored request
//! ([`super::stored_request`]); a job that cannot be rebuilt goes back where
//! it was. Watchers of a job held elsewhere follow it through the database
//! ([`remote_events`]), woken by notices (PostgreSQL's LISTEN/NOTIFY). On a
//! single process (SQLite) the same code holds leases no one else claims.
//! Only this module takes, renews and gives back leases.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::StreamExt;
use prost::Message;
use tokio::sync::broadcast::error::RecvError;

use super::engine::Engine;
use super::job::{Event, EventStream, JobSpec, Live, StopReason};
use super::scheduler::Ticket;
use super::stored_request::{self, Resolve, StoredProgress};
use crate::database::notices::RELEASED;
use crate::database::{ClaimedJob, Lease, NewJob, Renewal, ReportStore};
use crate::domain::{Report, Status};
use crate::error::{Error, Result};

/// How long a replica leaves alone a job it took from another replica and
/// could not rebuild (given back to that one; longer than a lease, so that
/// its holder takes it back should it have dropped it meanwhile).
const SKIP_UNBUILDABLE: Duration = Duration::from_secs(600);

/// How long a replica leaves alone a job whose lease lapsed and that it
/// could not rebuild for want of the store or the database.
const SKIP_UNAVAILABLE: Duration = Duration::from_secs(10);

/// How many times a job is taken over before it is recorded FAILED (a job
/// that stops every replica that runs it must not go round forever).
const MAX_ATTEMPTS: i64 = 10;

impl Engine {
    /// Stores a new job of `spec` (its first evaluation `id`), its
    /// `reports` and this replica's lease on it, in one transaction:
    /// nothing is left QUEUED without a job behind it.
    pub(super) async fn hold_new(
        &self,
        spec: &JobSpec,
        id: &str,
        detached: bool,
        reports: &[Report],
    ) -> Result<Lease> {
        self.store
            .create_job(
                &NewJob {
                    id,
                    kind: stored_request::kind(spec),
                    request: stored_request::encode(spec),
                    detached,
                    owner: &self.replica,
                    lease: self.lease,
                },
                reports,
            )
            .await
    }

    /// Records that `live`'s job took its slot here; a job another replica
    /// took while it waited stops (the lease lost).
    pub(super) async fn confirm_start(&self, live: &Live) -> Result<()> {
        let Some(lease) = live.lease() else {
            return Ok(());
        };
        match self.store.mark_started(lease).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                // An idle replica took it while it waited here.
                live.stop(StopReason::LeaseLost);
                Err(StopReason::LeaseLost.error())
            }
            // Its writes are fenced: if another replica takes it
            // meanwhile, this one stops at its next write.
            Err(err) => {
                tracing::warn!(job = %lease.job_id, %err, "cannot record that the job started");
                Ok(())
            }
        }
    }

    /// Starts renewing this replica's leases (until the engine is dropped).
    pub(super) fn start_heartbeat(self: &Arc<Self>) {
        tokio::spawn(heartbeat(Arc::downgrade(self)));
    }

    /// The events of evaluation `id` of job `job`, held by another replica,
    /// through the database.
    pub(super) fn follow_elsewhere(&self, id: &str, job: String) -> EventStream {
        remote_events(
            self.store.clone(),
            id.to_string(),
            job,
            self.tick(),
            self.notices.as_ref().map(|n| n.subscribe()),
        )
    }

    /// The events of `live` (a job of this replica) for a watcher of
    /// evaluation `id`; if the job moves to another replica meanwhile
    /// (taken while it waited, or handed over at shutdown), they go on from
    /// the database.
    pub(super) fn follow_here(&self, live: &Arc<Live>, id: &str) -> EventStream {
        let moved = |live: &Live| live.state().moved();
        let here = {
            let live = live.clone();
            live.follow().filter(move |event| {
                let end_of_move = matches!(event, Event::Done(Err(_))) && moved(&live);
                std::future::ready(!end_of_move)
            })
        };
        let (store, live) = (self.store.clone(), live.clone());
        let (id, tick) = (id.to_string(), self.tick());
        let notices = self.notices.as_ref().map(|n| n.subscribe());
        let there = futures::stream::once(async move {
            match live.lease().filter(|_| moved(&live)) {
                Some(lease) => remote_events(store, id, lease.job_id.clone(), tick, notices),
                None => Box::pin(futures::stream::empty()) as EventStream,
            }
        })
        .flatten();
        Box::pin(here.chain(there))
    }

    /// Gives job `lease` back to the queue, for any replica (this one
    /// included) to run its unrecorded evaluations again.
    pub(super) async fn give_back(&self, lease: &Lease) {
        match self.store.release(lease).await {
            Ok(()) => {
                tracing::warn!(job = %lease.job_id, "a report was not recorded: the job is given back to run again")
            }
            Err(err) => {
                tracing::warn!(job = %lease.job_id, %err, "a report was not recorded and the job cannot be given back; it runs again when its lease lapses")
            }
        }
    }

    /// Hands job `lease` over to the other replicas at shutdown, and tells
    /// them.
    pub(super) async fn hand_over(&self, lease: &Lease) {
        match self.store.release(lease).await {
            Ok(()) => {
                tracing::info!(job = %lease.job_id, "handed over to the other replicas");
                self.tell(RELEASED).await;
            }
            // Its lease lapses and another replica takes it over then.
            Err(err) => {
                tracing::warn!(job = %lease.job_id, %err, "cannot hand the job over; it moves when its lease lapses")
            }
        }
    }

    /// Starts taking over jobs through `resolver` (this replica's models
    /// and datasets, once loaded): first this replica's own open jobs from
    /// before a restart, then any whose replica died (its lease lapsed).
    pub async fn take_over(self: &Arc<Self>, resolver: Arc<dyn Resolve>) -> Result<()> {
        if self.resolver.set(resolver).is_err() {
            return Ok(());
        }
        // The claimer runs whatever happens here: without it this replica
        // would never take a job over.
        tokio::spawn(claimer(Arc::downgrade(self)));
        let own = self.store.release_own(&self.replica).await?;
        if own > 0 {
            tracing::info!(jobs = own, replica = %self.replica, "taking back this replica's open jobs from before its restart");
        }
        Ok(())
    }

    /// How often leases are renewed and lapsed jobs looked for.
    pub(super) fn tick(&self) -> Duration {
        (self.lease / 3).min(Duration::from_secs(1))
    }

    /// Runs a job taken over (from a replica whose lease lapsed, or that had
    /// it waiting) in `ticket`'s slot: a detached job that can be rebuilt
    /// runs from its first evaluation that had not ended; the others end
    /// here with why.
    pub(super) async fn adopt(self: &Arc<Self>, job: ClaimedJob, ticket: Ticket) -> Result<()> {
        let previous = job.previous_owner.clone();
        tracing::info!(job = %job.lease.job_id, from = %previous, attempt = job.lease.attempt, "taking a job over (its replica stopped renewing its lease, or had it waiting while this one is idle)");
        metrics::counter!("embedeval_jobs_taken_over_total").increment(1);
        let refuse = |status: Status, why: String| {
            let store = self.store.clone();
            let lease = job.lease.clone();
            let ids = job.members.clone();
            async move { super::record::end_job(&store, &lease, &ids, status, &why).await }
        };
        if job.lease.attempt > MAX_ATTEMPTS {
            return refuse(
                Status::Failed,
                format!(
                    "gave up after {MAX_ATTEMPTS} attempts: the replicas running it stopped or \
                     could not record it (the last was {previous})"
                ),
            )
            .await;
        }
        if job.cancel_requested {
            return refuse(Status::Cancelled, "cancelled by CancelEvaluation".into()).await;
        }
        if !job.detached {
            return refuse(
                Status::Failed,
                format!(
                    "interrupted: replica {previous} stopped while running it, and the client's \
                     stream with it (submit with detach to have another replica finish a job)"
                ),
            )
            .await;
        }
        let Some(request) = job.request.as_deref() else {
            return refuse(
                Status::Failed,
                format!(
                    "interrupted: replica {previous} stopped before evaluating the uploaded \
                     embeddings it held; upload them again"
                ),
            )
            .await;
        };
        let resolver = self.resolver.get().cloned().ok_or_else(|| {
            Error::unavailable(
                crate::error::Unavailable::NotReady,
                "this replica takes over jobs only once its models load",
            )
        })?;
        let spec = match stored_request::decode(&job.kind, request, resolver.as_ref()).await {
            Ok(spec) => spec,
            Err(err) if job.stolen || err.is_transient() => {
                // Taken from a replica that had it waiting: back there (it
                // may resolve what this one cannot, its own bundle say).
                // Otherwise the store or the database is away: the job
                // waits, no attempt spent, for a replica that can rebuild
                // it.
                if let Err(e) = self.store.unclaim(&job.lease, &job.previous).await {
                    tracing::warn!(job = %job.lease.job_id, %e, "cannot give the job back");
                }
                return Err(err);
            }
            Err(err) => {
                return refuse(
                    Status::Failed,
                    crate::error::scrub_paths(&format!(
                        "cannot run the job after replica {previous} stopped: {err}"
                    )),
                )
                .await
            }
        };
        let mut reports = Vec::with_capacity(job.members.len());
        for id in &job.members {
            let mut report = self.store.get(id).await?;
            if !report.status.has_ended() {
                report.status = Status::Queued;
                report.error.clear();
            }
            reports.push(report);
        }
        let runs = reports.iter().filter(|r| !r.status.has_ended()).count();
        let live = Arc::new(Live::new(job.members.clone(), runs, false));
        live.set_lease(job.lease);
        live.mark_detached();
        if !self.accepting.load(Ordering::SeqCst) {
            self.stop_for_shutdown(&live);
        }
        self.start(live, spec, reports, ticket, None);
        Ok(())
    }

    /// Whether other replicas may share the database and take jobs over
    /// (PostgreSQL; an SQLite file belongs to one process).
    pub(super) fn shares_jobs(&self) -> bool {
        self.store.backend() == crate::database::Backend::Postgres
    }
}

/// Renews the leases of the jobs this replica runs, records their progress
/// for watchers elsewhere, and stops those that a CancelEvaluation reached
/// through the database or that another replica took over.
pub(super) async fn heartbeat(engine: Weak<Engine>) {
    // The progress last recorded per job: only a change is written and told.
    let mut recorded: HashMap<String, Vec<u8>> = HashMap::new();
    loop {
        let Some(e) = engine.upgrade() else { return };
        let tick = e.tick();
        let stopped = e.background.clone();
        let live_jobs = e.live_list();
        recorded.retain(|job, _| {
            live_jobs
                .iter()
                .any(|l| l.lease().is_some_and(|lease| &lease.job_id == job))
        });
        for live in live_jobs {
            let Some(lease) = live.lease() else { continue };
            let progress = live
                .latest_progress()
                .map(|p| StoredProgress::from(&p).encode_to_vec())
                .filter(|p| recorded.get(&lease.job_id) != Some(p));
            let changed = progress.clone();
            let sent = std::time::Instant::now();
            // Bounded: a connection to a database that went silent (a cut
            // network) must not hold the heartbeat past the lease.
            let wait = e.lease / 2;
            let renewal = match tokio::time::timeout(wait, e.store.renew(lease, e.lease, progress))
                .await
            {
                Ok(renewal) => renewal,
                Err(_) => Err(crate::error::Error::unavailable(
                    crate::error::Unavailable::Unreachable,
                    format!("the results database did not answer a lease renewal within {wait:?}"),
                )),
            };
            match renewal {
                Ok(Renewal::Held {
                    cancel_requested: true,
                }) => live.stop(StopReason::Cancelled),
                Ok(Renewal::Held { .. }) => {
                    live.lease_renewed(sent);
                    if let Some(p) = changed {
                        recorded.insert(lease.job_id.clone(), p);
                        e.tell(&lease.job_id).await;
                    }
                }
                Ok(Renewal::Lost) => {
                    tracing::warn!(job = %lease.job_id, "lease lost: another replica took the job over");
                    live.stop(StopReason::LeaseLost);
                }
                Err(err) if e.shares_jobs() && live.lease_lapsed(e.lease) => {
                    tracing::warn!(job = %lease.job_id, %err, lease = ?e.lease, "lease lapsed: not renewed for the lease's length, so another replica may take the job over; stopping it here");
                    live.stop(StopReason::LeaseLost);
                }
                Err(err) => {
                    tracing::warn!(job = %lease.job_id, %err, "cannot renew the job's lease")
                }
            }
        }
        drop(e);
        tokio::select! {
            _ = stopped.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Takes over jobs whose lease lapsed while this replica has a free slot.
pub(super) async fn claimer(engine: Weak<Engine>) {
    // Jobs this replica claimed and could not rebuild (given back): left
    // to the others for a while (SKIP_UNBUILDABLE, SKIP_UNAVAILABLE).
    let mut skip: HashMap<String, Instant> = HashMap::new();
    loop {
        let Some(e) = engine.upgrade() else { return };
        let tick = e.tick();
        let stopped = e.background.clone();
        let free = e.scheduler.running() < e.scheduler.size() && e.scheduler.waiting() == 0;
        skip.retain(|_, until| *until > Instant::now());
        if free && e.accepting.load(Ordering::SeqCst) {
            let skipped: Vec<String> = skip.keys().cloned().collect();
            match e.store.claim(&e.replica, e.lease, e.steal, &skipped).await {
                Ok(Some(job)) => {
                    let ticket = e.scheduler.admit();
                    let id = job.lease.job_id.clone();
                    // Until it is adopted: one this replica cannot rebuild
                    // (given back) is left to the others for a while.
                    let wait = if job.stolen {
                        SKIP_UNBUILDABLE
                    } else {
                        SKIP_UNAVAILABLE
                    };
                    skip.insert(id.clone(), Instant::now() + wait);
                    let adopted = match ticket {
                        Ok(ticket) => e.adopt(job, ticket).await,
                        Err(err) => Err(err),
                    };
                    match adopted {
                        // Look again at once: more may be waiting.
                        Ok(()) => {
                            skip.remove(&id);
                            continue;
                        }
                        // It is claimable again (given back, or when its
                        // lease lapses); this replica waits a tick.
                        Err(err) => tracing::warn!(job = %id, %err, "cannot take the job over now"),
                    }
                }
                Ok(None) => {}
                Err(err) => tracing::debug!(%err, "cannot look for jobs to take over"),
            }
        }
        let mut notices = e.notices.as_ref().map(|n| n.subscribe());
        drop(e);
        // A job given up elsewhere is claimed at once; a lapsed lease at
        // the next tick.
        tokio::select! {
            _ = stopped.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
            _ = notice(notices.as_mut(), RELEASED) => {}
        }
    }
}

/// Resolves when `notices` carries `payload` (never without notices).
pub(super) async fn notice(
    notices: Option<&mut tokio::sync::broadcast::Receiver<String>>,
    payload: &str,
) {
    let Some(rx) = notices else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            // Lagged: the missed notices may have been this one.
            Ok(p) if p == payload => return,
            Err(RecvError::Lagged(_)) => return,
            Ok(_) => {}
            Err(RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// The events of evaluation `id`, run by another replica, read from the
/// database: its progress as it changes, then its report. The database is
/// read when the job's holder tells of it (LISTEN/NOTIFY), and every
/// `tick` without notices; with them, every 5 `tick`s in case one was lost
/// (while the listener reconnected).
pub(super) fn remote_events(
    store: Arc<ReportStore>,
    id: String,
    job: String,
    tick: Duration,
    notices: Option<tokio::sync::broadcast::Receiver<String>>,
) -> EventStream {
    let tick = if notices.is_some() { tick * 5 } else { tick };
    let notices = Arc::new(tokio::sync::Mutex::new(notices));
    Box::pin(futures::stream::unfold(
        (store, id, None::<StoredProgress>, false),
        move |(store, id, last, over)| {
            let (notices, job) = (notices.clone(), job.clone());
            async move {
                if over {
                    return None;
                }
                loop {
                    match store.get(&id).await {
                        Ok(report) if report.status.has_ended() => {
                            return Some((
                                Event::Evaluated(Box::new(report)),
                                (store, id, last, true),
                            ))
                        }
                        Ok(_) => {}
                        Err(err) if err.is_transient() => {}
                        Err(err) => {
                            return Some((Event::Done(Err(Arc::new(err))), (store, id, last, true)))
                        }
                    }
                    if let Ok(Some(job)) = store.job_of(&id).await {
                        if job.done {
                            // Ended: the report was recorded before the job
                            // was marked so, unless its recording failed.
                            let report = store.get(&id).await;
                            let event = match report {
                                Ok(report) if report.status.has_ended() => {
                                    Event::Evaluated(Box::new(report))
                                }
                                Ok(_) => Event::Done(Err(Arc::new(Error::Internal {
                                    task: format!("job {}", job.id),
                                    message: "the job ended without recording this evaluation"
                                        .into(),
                                }))),
                                Err(err) => Event::Done(Err(Arc::new(err))),
                            };
                            return Some((event, (store, id, last, true)));
                        }
                        let progress = job
                            .progress
                            .and_then(|b| StoredProgress::decode(b.as_slice()).ok());
                        if progress.is_some() && progress != last {
                            let p = progress.clone().expect("checked");
                            return Some((Event::Progress(p.into()), (store, id, progress, false)));
                        }
                    }
                    // Until the job's replica says something of it, or a tick.
                    let mut rx = notices.lock().await;
                    tokio::select! {
                        _ = tokio::time::sleep(tick) => {}
                        _ = notice(rx.as_mut(), &job) => {}
                    }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::jobs::record::tests::{job_of_a, replica_a, LEASE};

    #[tokio::test]
    async fn a_held_job_is_claimed_only_once_its_lease_lapses() {
        let (_tmp, store, _a) = replica_a().await;
        let (_, _live) = job_of_a(&store, "e1").await;
        let far = Duration::from_secs(30);
        assert!(
            store.claim("b", far, false, &[]).await.unwrap().is_none(),
            "held by a: not claimable"
        );
        tokio::time::sleep(LEASE + Duration::from_millis(200)).await;
        let job = store.claim("b", far, false, &[]).await.unwrap().unwrap();
        assert_eq!(job.previous_owner, "a");
        assert_eq!(job.lease.owner, "b");
        assert_eq!(job.lease.attempt, 2, "one more claim than at submission");
        assert!(
            store.claim("c", far, false, &[]).await.unwrap().is_none(),
            "held by b now"
        );
    }

    #[tokio::test]
    async fn a_job_handed_over_or_given_back_is_claimable_at_once() {
        let (_tmp, store, a) = replica_a().await;
        let far = Duration::from_secs(30);
        let (lease, _live) = job_of_a(&store, "e1").await;
        assert!(store.claim("b", far, false, &[]).await.unwrap().is_none());
        a.hand_over(&lease).await;
        let job = store.claim("b", far, false, &[]).await.unwrap().unwrap();
        assert_eq!(
            (job.previous_owner.as_str(), job.lease.owner.as_str()),
            ("a", "b")
        );
        let (lease, _live) = job_of_a(&store, "e2").await;
        a.give_back(&lease).await;
        let job = store.claim("c", far, false, &[]).await.unwrap().unwrap();
        assert_eq!(job.members, vec!["e2".to_string()]);
        // A lease that is no longer the holder's gives nothing back.
        a.give_back(&lease).await;
        assert!(store.claim("d", far, false, &[]).await.unwrap().is_none());
    }
}
