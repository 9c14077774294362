//! Read models assembled from the results store and the registries for the
//! edges: the gRPC services and the web dashboard show the same comparison,
//! list, run, embedding space and neighbours, built here once. Nothing here
//! writes to the results store (pictures made from cached embeddings are
//! kept beside the cache, `kept`); drawing (CPU work) runs off the async
//! threads.

mod kept;
mod neighbours;
mod projection;
mod subjects;

pub use neighbours::{nearest_images, NearestRequest};
pub use projection::{project, smallest_and_largest_tau, ProjectionRequest};

use crate::database::{Reports, StoredComparison};
use crate::domain::{self, Comparison, ComparisonSummary, Report};
use crate::error::{Error, Result};
use crate::registry::{LoadedModel, Registries};
use crate::report::figures;

/// The short form of a dataset's content id, as tables show it.
pub fn short_id(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// Stored comparison `id` as it reads now: its rows sorted as figures and
/// tables show them, its two figures drawn, the models it left out, and
/// its groups along the tag `by` (none when ""). NOT_FOUND for an unknown
/// id; FAILED_PRECONDITION for rows made on two versions of the dataset.
pub async fn comparison(reports: &Reports, id: &str, by: &str) -> Result<Comparison> {
    if reports.comparison(id).await?.is_none() {
        return Err(Error::NotFound {
            kind: "comparison",
            name: id.to_string(),
            hint: String::new(),
        });
    }
    let mut rows = reports.reports_of(id).await?;
    one_dataset_version(id, &rows)?;
    let excluded = reports.comparison_excluded(id).await?;
    figures::sort_rows(&mut rows);
    let owned = id.to_string();
    // Drawing is CPU work: off the async threads.
    let comparison = tokio::task::spawn_blocking(move || figures::comparison(owned, rows))
        .await
        .map_err(|e| Error::join("a comparison's figures", e))?;
    Ok(with_groups(
        Comparison {
            excluded,
            ..comparison
        },
        by,
    ))
}

/// A comparison with its groups along the tag `by` (none when "").
pub fn with_groups(mut comparison: Comparison, by: &str) -> Comparison {
    if !by.is_empty() {
        comparison.groups = crate::report::groups::groups(&comparison.rows, by);
        comparison.by = by.to_string();
    }
    comparison
}

/// The stored comparisons on `dataset` (any when ""), newest first, a page
/// at a time, each with the models of its rows; the next page's token ("":
/// none).
pub async fn comparisons(
    reports: &Reports,
    dataset: &str,
    page_size: usize,
    page_token: &str,
) -> Result<(Vec<ComparisonSummary>, String)> {
    let (stored, next) = reports.comparisons(dataset, page_size, page_token).await?;
    let mut summaries = Vec::with_capacity(stored.len());
    for c in stored {
        let rows = reports.reports(&c.evaluation_ids).await?;
        summaries.push(summary(c, &rows));
    }
    Ok((summaries, next))
}

/// A stored comparison listed with the models of its rows and the dataset
/// versions they were made on.
pub fn summary(c: StoredComparison, rows: &[Report]) -> ComparisonSummary {
    let mut dataset_ids: Vec<String> = Vec::new();
    for r in rows {
        let id = short_id(&r.dataset_id).to_string();
        if !id.is_empty() && !dataset_ids.contains(&id) {
            dataset_ids.push(id);
        }
    }
    ComparisonSummary {
        id: c.id,
        dataset: c.dataset,
        created: domain::Timestamp::from_micros(c.created_micros),
        models: rows.iter().map(|r| r.model.clone()).collect(),
        num_evaluations: c.evaluation_ids.len() as u32,
        num_excluded: c.num_excluded as u32,
        dataset_ids,
    }
}

/// Refuses a comparison whose rows were made on two versions of its
/// dataset (the dataset was replaced while it ran): their numbers are not
/// comparable. The message names each version and its models.
pub fn one_dataset_version(id: &str, rows: &[Report]) -> Result<()> {
    let mut versions: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in rows.iter().filter(|r| !r.dataset_id.is_empty()) {
        let v = short_id(&r.dataset_id);
        match versions.iter_mut().find(|(x, _)| *x == v) {
            Some((_, models)) => models.push(&r.model),
            None => versions.push((v, vec![&r.model])),
        }
    }
    if versions.len() < 2 {
        return Ok(());
    }
    let dataset = rows.first().map_or("", |r| r.dataset.as_str());
    let named = versions
        .iter()
        .map(|(v, models)| format!("{v} ({})", models.join(", ")))
        .collect::<Vec<_>>()
        .join(" and ");
    Err(Error::FailedPrecondition(format!(
        "comparison {id} holds evaluations on {} versions of dataset {dataset}: {named}; \
         their numbers are not comparable: compare the models again on the current version",
        versions.len()
    )))
}

/// The training runs among the registered models.
pub async fn runs(registries: &Registries) -> Result<Vec<domain::RunSummary>> {
    let models = registries.listing::<LoadedModel>().await?;
    Ok(crate::runs::summaries(&run_members(&models)))
}

/// Training run `name` on `dataset`: its checkpoints in step order with
/// their latest reports, its warnings and the checkpoint to keep.
pub async fn run(
    registries: &Registries,
    reports: &Reports,
    name: &str,
    dataset: &str,
) -> Result<domain::Run> {
    let models = registries.listing::<LoadedModel>().await?;
    crate::runs::run(&run_members(&models), reports, name, dataset).await
}

/// What the runs view needs of each model of a listing.
pub fn run_members(models: &[domain::ModelInfo]) -> Vec<domain::RunMember> {
    models
        .iter()
        .map(|m| {
            let training = m.training.clone().unwrap_or_default();
            domain::RunMember {
                name: m.name.clone(),
                sha256: m.sha256.clone(),
                run: training.run,
                step: training.step,
                loss: training.loss,
                temperature: training.temperature,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comparison_over_two_versions_of_its_dataset_is_refused_naming_them() {
        let row = |model: &str, id: &str| domain::Report {
            model: model.into(),
            dataset: "photos".into(),
            dataset_id: id.into(),
            ..Default::default()
        };
        let one = [row("a", "aaaaaaaaaaaa1111"), row("b", "aaaaaaaaaaaa1111")];
        assert!(one_dataset_version("c1", &one).is_ok());
        let two = [
            row("a", "aaaaaaaaaaaa1111"),
            row("b", "bbbbbbbbbbbb2222"),
            row("c", "aaaaaaaaaaaa1111"),
        ];
        let err = one_dataset_version("c2", &two).unwrap_err().to_string();
        assert!(
            err.contains("2 versions of dataset photos: aaaaaaaaaaaa (a, c) and bbbbbbbbbbbb (b)"),
            "{err}"
        );
        let summary = summary(
            crate::database::StoredComparison {
                id: "c2".into(),
                dataset: "photos".into(),
                created_micros: 1_500_000,
                evaluation_ids: vec!["1".into(), "2".into(), "3".into(), "4".into()],
                num_excluded: 1,
            },
            &two,
        );
        assert_eq!(summary.dataset_ids, ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]);
        assert_eq!(summary.models, ["a", "b", "c"]);
        assert_eq!(summary.num_evaluations, 4);
        assert_eq!(summary.created.micros(), 1_500_000);
    }
}
