//! Running a job's evaluations once it has its slot: each model's
//! embeddings (from the cache or the encoder), its numbers on the compute
//! threads, and its report recorded as it begins and ends.

use std::sync::Arc;
use std::time::Instant;

use super::compute::{compute, EvalData, StageProgress};
use super::encode::Gather;
use super::engine::Engine;
use super::job::{EmbeddingsJob, Event, JobSpec, Live, Outcome, Reporter, StopReason};
use super::scheduler::{Slot, Ticket};
use super::settings::{Settings, Splits};
use crate::data::LoadedDataset;
use crate::domain::{Comparison, Report, Status};
use crate::error::{Error, Result};
use crate::registry::LoadedModel;

impl Engine {
    /// Waits for a slot, then runs the job's evaluations.
    pub(super) async fn execute(
        &self,
        live: &Arc<Live>,
        spec: JobSpec,
        reports: &mut [Report],
        ticket: Ticket,
    ) -> Result<Outcome> {
        // The slot is handed to the last evaluation, which frees it just
        // before recording its end: whoever sees the end can start another.
        let mut slot = Some(tokio::select! {
            biased;
            _ = live.token().cancelled() => return Err(live.stopped_error()),
            slot = ticket.slot() => slot?,
        });
        live.mark_started();
        self.replica.confirm_start(live).await?;
        match spec {
            JobSpec::Model(job) => {
                let report = &mut reports[0];
                if report.status.has_ended() {
                    // Taken over after it had recorded its end.
                    return Ok(Outcome::Report(Box::new(report.clone())));
                }
                self.evaluate_model(
                    live,
                    &job.model,
                    &job.dataset,
                    &job.splits,
                    &job.settings,
                    report,
                    &mut slot,
                )
                .await?;
                Ok(Outcome::Report(Box::new(report.clone())))
            }
            JobSpec::Embeddings(job) => {
                let report = &mut reports[0];
                self.evaluate_embeddings(live, *job, report, &mut slot)
                    .await?;
                Ok(Outcome::Report(Box::new(report.clone())))
            }
            JobSpec::Compare(job) => {
                let last = reports.iter().rposition(|r| !r.status.has_ended());
                for (i, ((model, settings), report)) in
                    job.models.iter().zip(reports.iter_mut()).enumerate()
                {
                    if report.status.has_ended() {
                        // Recorded before the job was taken over.
                        continue;
                    }
                    let mut held = None;
                    let release = if Some(i) == last {
                        &mut slot
                    } else {
                        &mut held
                    };
                    let result = self
                        .evaluate_model(
                            live,
                            model,
                            &job.dataset,
                            &job.splits,
                            settings,
                            report,
                            release,
                        )
                        .await;
                    // A model that fails leaves a FAILED row; a stopped job
                    // stops.
                    if let Err(err) = result {
                        if live.token().is_cancelled() || matches!(err, Error::Store { .. }) {
                            return Err(err);
                        }
                    }
                }
                let mut rows = reports.to_vec();
                crate::report::figures::sort_rows(&mut rows);
                // Drawing the figures is CPU work: off the async threads.
                let id = job.id.clone();
                let drawn = tokio::task::spawn_blocking(move || {
                    crate::report::figures::comparison(id, rows)
                })
                .await
                .map_err(|e| Error::join("drawing a comparison's figures", e))?;
                Ok(Outcome::Comparison(Comparison {
                    excluded: job.excluded.clone(),
                    ..drawn
                }))
            }
        }
    }

    /// One model on one dataset: RUNNING, the embeddings, the numbers, the
    /// end (`slot`, if given, is freed just before the end is recorded).
    #[allow(clippy::too_many_arguments)]
    async fn evaluate_model(
        &self,
        live: &Arc<Live>,
        model: &Arc<LoadedModel>,
        dataset: &Arc<LoadedDataset>,
        splits: &Splits,
        settings: &Settings,
        report: &mut Report,
        slot: &mut Option<Slot>,
    ) -> Result<()> {
        report.test_split = splits.test.clone();
        report.train_split = splits.train.clone().unwrap_or_default();
        let started = self.begin(live, report).await?;
        let reporter = Reporter::new(live.clone(), &report.id, &report.model);
        let result = async {
            let gather = Gather {
                cache: &self.cache,
                pool: &self.pool,
                reporter: &reporter,
            };
            let data = gather
                .eval_data(model, dataset, splits, settings, report)
                .await?;
            self.compute(&reporter, data, settings, report).await
        }
        .await;
        self.conclude(live, report, result, started, slot).await
    }

    /// Uploaded embeddings: RUNNING, the numbers, the end.
    async fn evaluate_embeddings(
        &self,
        live: &Arc<Live>,
        job: EmbeddingsJob,
        report: &mut Report,
        slot: &mut Option<Slot>,
    ) -> Result<()> {
        let started = self.begin(live, report).await?;
        let reporter = Reporter::new(live.clone(), &report.id, &report.model);
        let result = self
            .compute(&reporter, job.data, &job.settings, report)
            .await;
        self.conclude(live, report, result, started, slot).await
    }

    /// Records an evaluation as RUNNING.
    async fn begin(&self, live: &Live, report: &mut Report) -> Result<Instant> {
        if live.token().is_cancelled() {
            return Err(live.stopped_error());
        }
        report.status = Status::Running;
        // A database that restarts or fails over meanwhile is waited for:
        // the job is not failed for it, but a cancellation ends the wait.
        tokio::select! {
            biased;
            _ = live.token().cancelled() => return Err(live.stopped_error()),
            saved = self.recorder.save_retrying(live, report) => saved?,
        }
        tracing::info!(id = %report.id, model = %report.model, dataset = %report.dataset, "evaluation started");
        Ok(Instant::now())
    }

    /// The metrics and protocols on the compute threads.
    async fn compute(
        &self,
        reporter: &Reporter,
        data: EvalData,
        settings: &Settings,
        report: &mut Report,
    ) -> Result<()> {
        let mut working = report.clone();
        let settings = settings.clone();
        let stop = reporter.stop();
        let sender = reporter.clone();
        let progress: StageProgress =
            Arc::new(move |stage, done, total| sender.send(stage, done, total));
        let task = format!("metrics of evaluation {}", report.id);
        *report = self
            .pool
            .run(task, move || {
                compute(&data, &settings, &mut working, &stop, &progress)?;
                Ok(working)
            })
            .await?;
        Ok(())
    }

    /// Records how an evaluation ended and tells the watchers; the error
    /// it ended with, if any, is returned. `slot`, if given, is freed first.
    async fn conclude(
        &self,
        live: &Live,
        report: &mut Report,
        result: Result<()>,
        started: Instant,
        slot: &mut Option<Slot>,
    ) -> Result<()> {
        let result = result.map_err(|err| match (live.reason(), &err) {
            // A stop shows up as Cancelled from whichever stage saw it.
            (Some(reason), Error::Cancelled(_)) => reason.error(),
            _ => err,
        });
        // A replica whose lease may have lapsed (cut off from the database,
        // or stalled) counts the job as moved: it neither reports it
        // completed nor writes it (the write would be fenced anyway).
        if self.replica.shares_jobs()
            && live.lease().is_some()
            && live.lease_lapsed(self.replica.lease())
        {
            tracing::warn!(id = %report.id, "lease lapsed before the evaluation ended: another replica runs it again");
            live.stop(StopReason::LeaseLost);
        }
        // The job moved: the replica that holds it now runs this evaluation
        // again and records its end (watchers here follow it there).
        match live.reason() {
            Some(StopReason::LeaseLost) => return result,
            Some(StopReason::HandedOver) if result.is_err() => return result,
            _ => {}
        }
        match &result {
            Ok(()) => {
                report
                    .timings
                    .insert("total".into(), started.elapsed().as_secs_f64());
                report.status = Status::Completed;
                for (stage, seconds) in &report.timings {
                    metrics::histogram!("embedeval_stage_seconds", "stage" => stage.clone())
                        .record(*seconds);
                }
                tracing::info!(id = %report.id, seconds = started.elapsed().as_secs_f64(), "evaluation completed");
            }
            Err(err) => {
                report.status = status_of(err);
                report.error = crate::error::scrub_paths(&err.to_string());
                tracing::warn!(id = %report.id, %err, "evaluation ended without a result");
            }
        }
        drop(slot.take());
        self.recorder.record(live, report).await;
        live.emit(Event::Evaluated(Box::new(report.clone())));
        result
    }
}

/// The status an evaluation that ended with `err` is stored with.
pub(super) fn status_of(err: &Error) -> Status {
    match err {
        Error::Cancelled(_) => Status::Cancelled,
        _ => Status::Failed,
    }
}
