//! Recording a job's reports: every write fenced by the job's lease (a
//! replica that lost its job records nothing more of it), retried while the
//! database cannot be reached, and the job's end marked once every report
//! is recorded. Only this module writes a job's reports.

use std::time::{Duration, Instant};

use super::engine::Engine;
use super::job::{Live, StopReason};
use crate::error::{Error, Result};
use crate::proto::EvaluationReport;

/// How long a report is retried while the database cannot be reached
/// (at least; a job's lease when longer).
const RECORD_RETRY: Duration = Duration::from_secs(120);

impl Engine {
    /// Tells the other replicas that job `job` moved (a notice; best effort).
    pub(super) async fn tell(&self, job: &str) {
        if let Err(err) = self.store.notify(job).await {
            tracing::debug!(%err, "cannot send a notice");
        }
    }

    /// Stores a report of `live`'s job if this replica still holds it;
    /// when another replica took it over, stops the job here and says so.
    pub(super) async fn save(&self, live: &Live, report: &EvaluationReport) -> Result<()> {
        let Some(lease) = live.lease() else {
            return self.store.save(report).await;
        };
        if self.store.save_fenced(report, lease).await? {
            self.tell(&lease.job_id).await;
            return Ok(());
        }
        live.stop(StopReason::LeaseLost);
        tracing::warn!(id = %report.id, job = %lease.job_id, "another replica holds the job now; this one records nothing more of it");
        Err(StopReason::LeaseLost.error())
    }

    /// Stores a report, retrying while the database cannot be reached (for
    /// two minutes, or the lease's length when longer); a report that still
    /// cannot be stored is logged (it stays in the events) and the job is
    /// given back rather than marked ended.
    pub(super) async fn record(&self, live: &Live, report: &EvaluationReport) {
        // Long enough to ride out a database fail-over.
        let until = Instant::now() + self.lease.max(RECORD_RETRY);
        let mut wait = Duration::from_millis(100);
        loop {
            match self.save(live, report).await {
                Ok(()) => return,
                Err(Error::Unavailable(msg)) if Instant::now() < until => {
                    tracing::warn!(id = %report.id, %msg, "cannot record the evaluation yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(err) => {
                    tracing::error!(id = %report.id, %err, "cannot record the evaluation");
                    live.mark_unrecorded();
                    return;
                }
            }
        }
    }

    /// Marks `live`'s job ended in the database (retrying while it cannot
    /// be reached).
    pub(super) async fn finish(&self, live: &Live) {
        let Some(lease) = live.lease() else { return };
        let until = Instant::now() + self.lease;
        loop {
            match self.store.finish_job(lease).await {
                Ok(()) => return,
                Err(Error::Unavailable(_)) if Instant::now() < until => {
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
