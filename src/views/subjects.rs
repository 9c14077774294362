//! What the embedding-space and neighbour views draw from: the models (a
//! comparison's, or named), their dataset, and the embeddings of a split
//! that their evaluations cached.

use std::sync::Arc;

use crate::data::LoadedDataset;
use crate::domain::Report;
use crate::error::{Error, Result};
use crate::jobs::Engine;
use crate::metrics::Matrix;
use crate::registry::{LoadedModel, Registries};

/// The most models drawn side by side.
pub const MAX_MODELS: usize = 8;

/// Models and the dataset they are drawn on.
pub(super) struct Subjects {
    /// The models, in the order asked.
    pub models: Vec<Arc<LoadedModel>>,
    /// The dataset.
    pub dataset: Arc<LoadedDataset>,
}

/// The models named (none: `default` of comparison `comparison_id`'s
/// rows) and the dataset (the comparison's when one is named).
pub(super) async fn subjects(
    engine: &Engine,
    registries: &Registries,
    comparison_id: &str,
    models: &[String],
    dataset: &str,
    default: impl FnOnce(&[Report]) -> Vec<String>,
) -> Result<Subjects> {
    let (mut models, mut dataset) = (models.to_vec(), dataset.to_string());
    if !comparison_id.is_empty() {
        let rows = engine.reports().reports_of(comparison_id).await?;
        let Some(first) = rows.first() else {
            return Err(Error::NotFound {
                kind: "comparison",
                name: comparison_id.to_string(),
                hint: String::new(),
            });
        };
        dataset = first.dataset.clone();
        if models.is_empty() {
            models = default(&rows);
        }
    }
    if models.is_empty() || dataset.is_empty() {
        return Err(Error::InvalidArgument(
            "name the models and the dataset, or a comparison".into(),
        ));
    }
    if models.len() > MAX_MODELS {
        return Err(Error::InvalidArgument(format!(
            "at most {MAX_MODELS} models side by side, got {}",
            models.len()
        )));
    }
    let dataset = registries.named_dataset(&dataset).await?;
    let mut loaded = Vec::with_capacity(models.len());
    for name in &models {
        loaded.push(registries.named_model(name).await?);
    }
    Ok(Subjects {
        models: loaded,
        dataset,
    })
}

/// The embedding of split `split` that an evaluation of `model` cached;
/// FAILED_PRECONDITION naming the evaluation to run when there is none.
pub(super) async fn cached(
    engine: &Engine,
    model: &LoadedModel,
    dataset: &LoadedDataset,
    split: &str,
    role: &str,
) -> Result<Arc<Matrix>> {
    engine
        .cached_embedding(model, dataset, split)
        .await
        .ok_or_else(|| {
            let flag = if role == "train" {
                "--train-split"
            } else {
                "--test-split"
            };
            Error::FailedPrecondition(format!(
                "the embeddings of model {} on split {split} of dataset {} are not cached: \
                 evaluate it first (embedeval eval {} --dataset {} {flag} {split}), then draw",
                model.name, dataset.name, model.name, dataset.name
            ))
        })
}

/// A model's τ as its card gives it (0 for none).
pub(super) fn temperature(m: &LoadedModel) -> f64 {
    m.info().training.map_or(0.0, |t| t.temperature)
}
