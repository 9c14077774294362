//! Training runs: the models whose cards name a run (`[training] run`,
//! `step`) are that run's checkpoints. A run is read, never stored: its
//! checkpoints come from the registry's listing, each one's latest COMPLETED report
//! on a dataset from the results store (same sha256: a checkpoint
//! re-registered with other bytes is not mixed up with its earlier
//! self), the warnings from the path those reports draw (`warnings`) and
//! the checkpoint to keep (`report::checkpoint_to_keep`).

pub mod warnings;

use std::collections::BTreeMap;

use crate::database::Reports;
use crate::domain::{Report, RunMember, Status};
use crate::error::{Error, Result};

/// The checkpoints of each run among `models`, in step order (ties by
/// name).
fn by_run(models: &[RunMember]) -> BTreeMap<String, Vec<&RunMember>> {
    let mut runs: BTreeMap<String, Vec<&RunMember>> = BTreeMap::new();
    for m in models {
        if !m.run.is_empty() {
            runs.entry(m.run.clone()).or_default().push(m);
        }
    }
    for checkpoints in runs.values_mut() {
        checkpoints.sort_by(|a, b| (a.step, &a.name).cmp(&(b.step, &b.name)));
    }
    runs
}

/// One summary per run, sorted by name.
pub fn summaries(models: &[RunMember]) -> Vec<crate::domain::RunSummary> {
    by_run(models)
        .into_iter()
        .map(|(name, checkpoints)| {
            let first = checkpoints[0];
            let last = checkpoints[checkpoints.len() - 1];
            crate::domain::RunSummary {
                name,
                checkpoints: checkpoints.len() as u32,
                first_step: first.step,
                last_step: last.step,
                loss: last.loss.clone(),
                temperature: last.temperature,
            }
        })
        .collect()
}

/// The latest COMPLETED report of exactly `model` (its sha256) on `dataset`.
async fn latest(store: &Reports, model: &RunMember, dataset: &str) -> Result<Option<Report>> {
    let mut token = String::new();
    loop {
        let (page, next) = store
            .list(&model.name, dataset, crate::database::MAX_PAGE, &token)
            .await?;
        if let Some(r) = page
            .into_iter()
            .find(|r| r.status == Status::Completed && r.model_sha256 == model.sha256)
        {
            return Ok(Some(r));
        }
        if next.is_empty() {
            return Ok(None);
        }
        token = next;
    }
}

/// Run `name` on `dataset`: its checkpoints in step order with their latest
/// reports, and its warnings. NOT_FOUND when no model belongs to it.
pub async fn run(
    models: &[RunMember],
    store: &Reports,
    name: &str,
    dataset: &str,
) -> Result<crate::domain::Run> {
    if dataset.is_empty() {
        return Err(Error::InvalidArgument(
            "GetRun needs the dataset whose reports to show".into(),
        ));
    }
    let checkpoints = by_run(models).remove(name).ok_or_else(|| Error::NotFound {
        kind: "run",
        name: name.to_string(),
        hint: String::new(),
    })?;
    let mut out = Vec::with_capacity(checkpoints.len());
    for m in checkpoints {
        out.push(crate::domain::Checkpoint {
            step: m.step,
            model: m.name.clone(),
            model_sha256: m.sha256.clone(),
            report: latest(store, m, dataset).await?,
        });
    }
    let path: Vec<(u64, &Report)> = out
        .iter()
        .filter_map(|c| c.report.as_ref().map(|r| (c.step, r)))
        .collect();
    Ok(crate::domain::Run {
        name: name.to_string(),
        dataset: dataset.to_string(),
        warnings: warnings::detect(&path),
        checkpoint_to_keep: crate::report::checkpoint_to_keep(&path).map(|r| r.to_recommendation()),
        checkpoints: out,
    })
}
