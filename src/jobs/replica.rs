//! The [`Replica`]: this replica's side of the job queue that replicas
//! sharing the results database share, and the only holder of leases. A
//! job is held under a lease that the engine's heartbeat renews every tick
//! with the job's progress (`super::takeover`); a lease lapses when its
//! replica stops renewing it, and another replica may then claim the job.
//! Watchers of a job held elsewhere follow it through the database
//! ([`remote_events`]), woken by notices (PostgreSQL's LISTEN/NOTIFY). On a
//! single process (SQLite) the same code holds leases no one else claims.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use tokio::sync::broadcast::error::RecvError;

use super::job::{Event, EventStream, JobSpec, Live, StopReason};
use super::stored_request::{self, StoredProgress};
use crate::database::notices::RELEASED;
use crate::database::{ClaimedJob, Hold, Lease, NewJob, Renewal, ReportStore};
use crate::error::{Error, Result};

/// This replica in the shared job queue: its name, its leases' length and
/// whether it takes waiting jobs from busy replicas.
#[derive(Debug)]
pub struct Replica {
    store: Arc<ReportStore>,
    name: String,
    lease: Duration,
    steal: bool,
    /// Notices from the other replicas (PostgreSQL's LISTEN/NOTIFY).
    notices: Option<tokio::sync::broadcast::Sender<String>>,
}

impl Replica {
    /// Replica `name` over `store`, holding leases of length `lease`;
    /// `steal`: it takes detached jobs waiting on busier replicas.
    pub(super) fn new(store: Arc<ReportStore>, name: String, lease: Duration, steal: bool) -> Self {
        let notices = store.listen();
        Self {
            store,
            name,
            lease,
            steal,
            notices,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long its leases hold without a heartbeat.
    pub(super) fn lease(&self) -> Duration {
        self.lease
    }

    /// The job of `spec` (its first evaluation `id`) to store, held by this
    /// replica ([`super::record::Recorder::admit`] stores it with its
    /// reports).
    pub(super) fn new_job<'a>(&'a self, spec: &JobSpec, id: &'a str, detached: bool) -> NewJob<'a> {
        NewJob {
            id,
            kind: stored_request::kind(spec),
            request: stored_request::encode(spec),
            detached,
            owner: &self.name,
            lease: self.lease,
        }
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

    /// The events of evaluation `id` of job `job`, held by another replica,
    /// through the database.
    pub(super) fn follow_elsewhere(&self, id: &str, job: String) -> EventStream {
        remote_events(
            self.store.clone(),
            id.to_string(),
            job,
            self.tick(),
            self.subscribe(),
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
        let notices = self.subscribe();
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
                self.store.tell(RELEASED).await;
            }
            // Its lease lapses and another replica takes it over then.
            Err(err) => {
                tracing::warn!(job = %lease.job_id, %err, "cannot hand the job over; it moves when its lease lapses")
            }
        }
    }

    /// How often leases are renewed and lapsed jobs looked for.
    pub(super) fn tick(&self) -> Duration {
        (self.lease / 3).min(Duration::from_secs(1))
    }

    /// Whether other replicas may share the database and take jobs over
    /// (PostgreSQL; an SQLite file belongs to one process).
    pub(super) fn shares_jobs(&self) -> bool {
        self.store.backend() == crate::database::Backend::Postgres
    }

    /// Renews `lease` (with the job's latest progress, when it changed).
    pub(super) async fn renew(&self, lease: &Lease, progress: Option<Vec<u8>>) -> Result<Renewal> {
        self.store.renew(lease, self.lease, progress).await
    }

    /// Claims a job whose lease lapsed, or (stealing) one waiting on
    /// another replica, but those of `skipped`.
    pub(super) async fn claim(&self, skipped: &[String]) -> Result<Option<ClaimedJob>> {
        self.store
            .claim(&self.name, self.lease, self.steal, skipped)
            .await
    }

    /// Gives this replica's open jobs from before a restart back to the
    /// queue (to claim at once); how many.
    pub(super) async fn release_own(&self) -> Result<u64> {
        self.store.release_own(&self.name).await
    }

    /// Gives a claimed job back to `previous`, its holder before the claim.
    pub(super) async fn unclaim(&self, lease: &Lease, previous: &Hold) -> Result<()> {
        self.store.unclaim(lease, previous).await
    }

    /// The job evaluation `id` belongs to (None for one of no job).
    pub(super) async fn job_of(&self, id: &str) -> Result<Option<crate::database::JobState>> {
        self.store.job_of(id).await
    }

    /// Asks the holder of job `job_id` to cancel it.
    pub(super) async fn request_cancel(&self, job_id: &str) -> Result<()> {
        self.store.request_cancel(job_id).await
    }

    /// The notices of the other replicas from now on (None without
    /// LISTEN/NOTIFY).
    pub(super) fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.notices.as_ref().map(|n| n.subscribe())
    }

    /// Tells the other replicas that job `job` moved (best effort).
    pub(super) async fn tell(&self, job: &str) {
        self.store.tell(job).await;
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
        a.replica.hand_over(&lease).await;
        let job = store.claim("b", far, false, &[]).await.unwrap().unwrap();
        assert_eq!(
            (job.previous_owner.as_str(), job.lease.owner.as_str()),
            ("a", "b")
        );
        let (lease, _live) = job_of_a(&store, "e2").await;
        a.replica.give_back(&lease).await;
        let job = store.claim("c", far, false, &[]).await.unwrap().unwrap();
        assert_eq!(job.members, vec!["e2".to_string()]);
        // A lease that is no longer the holder's gives nothing back.
        a.replica.give_back(&lease).await;
        assert!(store.claim("d", far, false, &[]).await.unwrap().is_none());
    }
}
