//! The [`Recorder`]: the one writer of reports and comparisons. A job's
//! QUEUED reports are stored with the job, every later write is fenced by
//! the job's lease (a replica that lost its job records nothing more of
//! it) and retried while the database cannot be reached, and the job's end
//! is marked once every report is recorded; comparisons and deletions go
//! through it too. The engine holds the only recorder; `scripts/check-layers`
//! holds the rest of the code to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::job::{EmbeddingsJob, Live, StopReason};
use crate::data::LoadedDataset;
use crate::database::{new_id, Lease, NewJob, ReportStore};
use crate::domain::{Report, Status};
use crate::error::{Error, Result};
use crate::registry::LoadedModel;

/// How long a report is retried while the database cannot be reached
/// (at least; a job's lease when longer).
const RECORD_RETRY: Duration = Duration::from_secs(120);

/// A fresh QUEUED report of `model` on `dataset`.
pub(super) fn queued_model_report(model: &LoadedModel, dataset: &LoadedDataset) -> Report {
    let mut input = model.input_info();
    let mut warnings = model.card.warnings.clone();
    let (_, mh, mw) = model.preprocessing().chw();
    let [ih, iw, _] = dataset.dataset.summary.image_shape;
    if let Some(note) = crate::encoder::resize_note((mh as usize, mw as usize), (ih, iw)) {
        input.image_height = ih as i64;
        input.image_width = iw as i64;
        input.resize_factor_height = note.factor_height;
        input.resize_factor_width = note.factor_width;
        warnings.extend(note.warning);
    }
    Report {
        id: new_id(),
        model: model.name.clone(),
        model_sha256: model.sha256.clone(),
        dataset: dataset.name.clone(),
        dataset_id: dataset.id.clone(),
        temperature: model.card.training.temperature,
        loss: model.card.training.loss.clone(),
        status: Status::Queued,
        created_at: Some(crate::domain::Timestamp::now()),
        preprocessing: Some(input),
        execution_provider: model.provider.to_string(),
        warnings,
        loss_name: model.card.training.loss_name.clone(),
        tags: model.card.tags.clone(),
        ..Default::default()
    }
}

/// A fresh QUEUED report of uploaded embeddings.
pub(super) fn queued_embeddings_report(job: &EmbeddingsJob) -> Report {
    Report {
        id: new_id(),
        model: job.name.clone(),
        dataset: job.dataset.clone(),
        temperature: job.temperature,
        loss: job.loss.clone(),
        loss_name: job.loss_name.clone(),
        status: Status::Queued,
        created_at: Some(crate::domain::Timestamp::now()),
        ..Default::default()
    }
}

/// Writes reports and comparisons, fenced by the lease of the job they
/// belong to.
#[derive(Debug)]
pub struct Recorder {
    store: Arc<ReportStore>,
    /// How long a lease holds without a heartbeat (how long a write is
    /// retried, at least).
    lease: Duration,
}

impl Recorder {
    /// The recorder over `store`, for leases of length `lease`.
    pub(super) fn new(store: Arc<ReportStore>, lease: Duration) -> Self {
        Self { store, lease }
    }

    /// Stores a new job, its QUEUED `reports` and its holder's lease, in one
    /// transaction: nothing is left QUEUED without a job behind it.
    pub(super) async fn admit(&self, job: &NewJob<'_>, reports: &[Report]) -> Result<Lease> {
        self.store.create_job(job, reports).await
    }

    /// Ends the job of `lease` as `status` with `why` (fenced by the lease):
    /// its evaluations `ids` that have not ended are marked so (one that
    /// has keeps its end), and the job ended; for a job taken over that
    /// cannot run here.
    pub(super) async fn end_job(
        &self,
        lease: &Lease,
        ids: &[String],
        status: Status,
        why: &str,
    ) -> Result<()> {
        for id in ids {
            let mut report = match self.store.get(id).await {
                Ok(r) => r,
                Err(Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            if !report.status.has_ended() {
                report.status = status;
                report.error = why.to_string();
                self.store.save_fenced(&report, lease).await?;
            }
        }
        self.store.finish_job(lease).await
    }

    /// Stores comparison `id` on `dataset`: the evaluations `ids` it made
    /// (in its request's order), when, in microseconds since the epoch, and
    /// the models it left out.
    pub(super) async fn record_comparison(
        &self,
        id: &str,
        dataset: &str,
        created_micros: i64,
        ids: &[String],
        excluded: &[crate::domain::ExcludedModel],
    ) -> Result<()> {
        self.store
            .save_comparison(id, dataset, created_micros, ids, excluded)
            .await
    }

    /// Removes a stored evaluation that has ended (FAILED_PRECONDITION for
    /// one still queued or running, NOT_FOUND for an unknown id).
    pub async fn delete_evaluation(&self, id: &str) -> Result<()> {
        self.store.delete(id).await
    }

    /// Removes a stored comparison, its evaluations kept (NOT_FOUND for an
    /// unknown id).
    pub async fn delete_comparison(&self, id: &str) -> Result<()> {
        self.store.delete_comparison(id).await
    }

    /// Stores a report of `live`'s job if this replica still holds it;
    /// when another replica took it over, stops the job here and says so.
    pub(super) async fn save(&self, live: &Live, report: &Report) -> Result<()> {
        let Some(lease) = live.lease() else {
            return self.store.save(report).await;
        };
        if self.store.save_fenced(report, lease).await? {
            self.store.tell(&lease.job_id).await;
            return Ok(());
        }
        live.stop(StopReason::LeaseLost);
        tracing::warn!(id = %report.id, job = %lease.job_id, "another replica holds the job now; this one records nothing more of it");
        Err(StopReason::LeaseLost.error())
    }

    /// Stores a report like [`Recorder::save`], retrying while the
    /// database cannot be reached (a restart, a failover) or its volume is
    /// full: for two minutes, or the lease's length when longer, the report
    /// kept in memory meanwhile and stored the moment the database takes it.
    /// The last error once that time is up.
    pub(super) async fn save_retrying(&self, live: &Live, report: &Report) -> Result<()> {
        // Long enough to ride out a database fail-over.
        let until = Instant::now() + self.lease.max(RECORD_RETRY);
        let mut wait = Duration::from_millis(100);
        loop {
            match self.save(live, report).await {
                Ok(()) => return Ok(()),
                Err(err) if err.may_be_stored_later() && Instant::now() < until => {
                    let msg = err.to_string();
                    tracing::warn!(id = %report.id, %msg, "cannot record the evaluation yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Stores how an evaluation ended ([`Recorder::save_retrying`]); a
    /// report that still cannot be stored is logged (it stays in the
    /// events) and the job is given back rather than marked ended, so that
    /// it is computed again rather than lost.
    pub(super) async fn record(&self, live: &Live, report: &Report) {
        match self.save_retrying(live, report).await {
            Ok(()) => {}
            // The job moved to another replica (said where it was
            // noticed): it records the evaluation, not this one.
            Err(_) if live.state().moved() => {}
            Err(err) => {
                tracing::error!(id = %report.id, %err, "cannot record the evaluation");
                live.mark_unrecorded();
            }
        }
    }

    /// Marks `live`'s job ended in the database (retrying while it cannot
    /// be reached or its volume is full).
    pub(super) async fn finish(&self, live: &Live) {
        let Some(lease) = live.lease() else { return };
        let until = Instant::now() + self.lease;
        loop {
            match self.store.finish_job(lease).await {
                Ok(()) => return,
                Err(err) if err.may_be_stored_later() && Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
                Err(err) => {
                    tracing::error!(job = %lease.job_id, %err, "cannot record the end of the job");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::database::{Lease, NewJob, ReportStore};
    use crate::domain::Status;
    use crate::jobs::cache::EmbeddingCache;
    use crate::jobs::engine::Engine;
    use crate::jobs::engine::EngineOptions;

    /// The shortest lease the engine takes.
    pub(in crate::jobs) const LEASE: Duration = Duration::from_millis(300);

    /// A results database (SQLite) and the engine of replica `a` over it; a
    /// second replica is the database's own calls made as `b`.
    pub(in crate::jobs) async fn replica_a() -> (tempfile::TempDir, Arc<ReportStore>, Arc<Engine>) {
        let tmp = tempfile::tempdir().unwrap();
        let url = ReportStore::default_url(tmp.path());
        let store = Arc::new(ReportStore::open(&url).await.unwrap());
        let cache = Arc::new(EmbeddingCache::new(tmp.path().join("cache"), 0).unwrap());
        let engine = Engine::new(
            store.clone(),
            cache,
            EngineOptions {
                replica: "a".into(),
                lease: LEASE,
                compute_threads: 1,
                ..EngineOptions::default()
            },
        )
        .unwrap();
        (tmp, store, engine)
    }

    /// A detached job of one evaluation `id`, stored QUEUED and held by `a`.
    pub(in crate::jobs) async fn job_of_a(store: &ReportStore, id: &str) -> (Lease, Live) {
        let report = Report {
            id: id.into(),
            model: "m".into(),
            dataset: "d".into(),
            status: Status::Queued,
            ..Default::default()
        };
        let lease = store
            .create_job(
                &NewJob {
                    id,
                    kind: "model",
                    request: Some(vec![1]),
                    detached: true,
                    owner: "a",
                    lease: LEASE,
                },
                &[report],
            )
            .await
            .unwrap();
        let live = Live::new(vec![id.into()], 1, false);
        live.set_lease(lease.clone());
        live.mark_detached();
        (lease, live)
    }

    fn completed(id: &str) -> Report {
        Report {
            id: id.into(),
            model: "m".into(),
            dataset: "d".into(),
            status: Status::Completed,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_replica_that_lost_its_job_records_nothing_more_of_it() {
        let (_tmp, store, a) = replica_a().await;
        let (_, live) = job_of_a(&store, "e1").await;
        // Held: the write goes through.
        a.recorder.save(&live, &completed("e1")).await.unwrap();
        assert_eq!(store.get("e1").await.unwrap().status, Status::Completed);
        a.recorder.finish(&live).await;

        let (_, live) = job_of_a(&store, "e2").await;
        // The lease lapses (no heartbeat renews it here) and `b` takes the job.
        tokio::time::sleep(LEASE + Duration::from_millis(200)).await;
        let taken = store
            .claim("b", Duration::from_secs(30), false, &[])
            .await
            .unwrap();
        let taken = taken.expect("b takes the job over");
        assert_eq!(taken.previous_owner, "a");
        assert_eq!(taken.members, vec!["e2".to_string()]);
        let err = a.recorder.save(&live, &completed("e2")).await.unwrap_err();
        assert!(matches!(err, crate::Error::Cancelled(_)), "{err}");
        assert_eq!(
            live.reason(),
            Some(StopReason::LeaseLost),
            "the job stops here"
        );
        assert_eq!(
            store.get("e2").await.unwrap().status,
            Status::Queued,
            "nothing written by the replica that lost the job"
        );
        // The recorder does not mark it unrecorded: it moved, it was not lost.
        a.recorder.record(&live, &completed("e2")).await;
        assert!(!live.state().unrecorded);
        assert_eq!(live.state().ending(true), crate::jobs::job::Ending::Leave);
    }

    #[tokio::test]
    async fn a_job_is_marked_ended_only_by_its_holder() {
        let (_tmp, store, a) = replica_a().await;
        let (lease, live) = job_of_a(&store, "e3").await;
        a.recorder.save(&live, &completed("e3")).await.unwrap();
        a.recorder.finish(&live).await;
        assert!(store.job_of("e3").await.unwrap().unwrap().done);
        // Ended: no replica claims it, even once its lease has lapsed.
        tokio::time::sleep(LEASE + Duration::from_millis(200)).await;
        assert!(store
            .claim("b", Duration::from_secs(30), false, &[])
            .await
            .unwrap()
            .is_none());
        let _ = lease;
    }

    #[tokio::test]
    async fn ending_a_job_marks_what_had_not_ended_and_keeps_the_rest() {
        let (_tmp, store, a) = replica_a().await;
        let (lease, live) = job_of_a(&store, "e4").await;
        a.recorder.save(&live, &completed("e4")).await.unwrap();
        a.recorder
            .end_job(
                &lease,
                &["e4".into(), "gone".into()],
                Status::Cancelled,
                "stop",
            )
            .await
            .unwrap();
        assert_eq!(store.get("e4").await.unwrap().status, Status::Completed);
        assert!(store.job_of("e4").await.unwrap().unwrap().done);

        let (lease, _) = job_of_a(&store, "e5").await;
        a.recorder
            .end_job(&lease, &["e5".into()], Status::Failed, "why")
            .await
            .unwrap();
        let e5 = store.get("e5").await.unwrap();
        assert_eq!((e5.status, e5.error.as_str()), (Status::Failed, "why"));
    }
}
