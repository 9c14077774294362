//! Taking jobs over: the engine's loops that keep this replica's side of
//! the shared queue. The [`heartbeat`] renews the leases of the jobs this
//! replica runs every tick, with their progress; the [`claimer`] takes over,
//! whenever a slot is free, jobs whose replica stopped renewing (its lease
//! lapsed) and detached jobs still waiting on another replica (work
//! stealing), rebuilt from their stored request
//! ([`super::stored_request`]); a job that cannot be rebuilt goes back where
//! it was, and one that cannot run here ends through the recorder. The
//! leases themselves are the [`super::replica::Replica`]'s.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use prost::Message;

use super::engine::Engine;
use super::job::{Live, StopReason};
use super::replica::notice;
use super::scheduler::Ticket;
use super::stored_request::{self, Resolve, StoredProgress};
use crate::database::notices::RELEASED;
use crate::database::{ClaimedJob, Renewal};
use crate::domain::Status;
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
    /// Starts renewing this replica's leases (until the engine is dropped).
    pub(super) fn start_heartbeat(self: &Arc<Self>) {
        tokio::spawn(heartbeat(Arc::downgrade(self)));
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
        let own = self.replica.release_own().await?;
        if own > 0 {
            tracing::info!(jobs = own, replica = %self.replica.name(), "taking back this replica's open jobs from before its restart");
        }
        Ok(())
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
            let lease = job.lease.clone();
            let ids = job.members.clone();
            async move { self.recorder.end_job(&lease, &ids, status, &why).await }
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
                if let Err(e) = self.replica.unclaim(&job.lease, &job.previous).await {
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
            let mut report = self.reports.get(id).await?;
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
}

/// Renews the leases of the jobs this replica runs, records their progress
/// for watchers elsewhere, and stops those that a CancelEvaluation reached
/// through the database or that another replica took over.
pub(super) async fn heartbeat(engine: Weak<Engine>) {
    // The progress last recorded per job: only a change is written and told.
    let mut recorded: HashMap<String, Vec<u8>> = HashMap::new();
    loop {
        let Some(e) = engine.upgrade() else { return };
        let tick = e.replica.tick();
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
            let wait = e.replica.lease() / 2;
            let renewal = match tokio::time::timeout(wait, e.replica.renew(lease, progress)).await {
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
                        e.replica.tell(&lease.job_id).await;
                    }
                }
                Ok(Renewal::Lost) => {
                    tracing::warn!(job = %lease.job_id, "lease lost: another replica took the job over");
                    live.stop(StopReason::LeaseLost);
                }
                Err(err) if e.replica.shares_jobs() && live.lease_lapsed(e.replica.lease()) => {
                    tracing::warn!(job = %lease.job_id, %err, lease = ?e.replica.lease(), "lease lapsed: not renewed for the lease's length, so another replica may take the job over; stopping it here");
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
        let tick = e.replica.tick();
        let stopped = e.background.clone();
        let free = e.scheduler.running() < e.scheduler.size() && e.scheduler.waiting() == 0;
        skip.retain(|_, until| *until > Instant::now());
        if free && e.accepting.load(Ordering::SeqCst) {
            let skipped: Vec<String> = skip.keys().cloned().collect();
            match e.replica.claim(&skipped).await {
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
        let mut notices = e.replica.subscribe();
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
