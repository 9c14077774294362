//! The one way to make a job: a transport-neutral request and the
//! registries give a [`JobSpec`]. Planning resolves the names (with the
//! nearest names on a miss), checks that each model takes the dataset's
//! images, chooses the models of a comparison (every model that fits, each
//! file once), and resolves and checks the settings. The gRPC edge only
//! translates its messages into these requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::encode::{check_fit, fit};
use super::job::{CompareJob, EmbeddingsJob, ModelJob};
use super::settings::{Settings, Splits};
use super::EvalData;
use crate::data::LoadedDataset;
use crate::domain::{ExcludedModel, MetricSpec};
use crate::error::{Error, Result};
use crate::registry::{LoadedModel, Registries};

/// What to evaluate one model on.
#[derive(Debug, Clone, Default)]
pub struct EvaluateRequest {
    /// The model's name.
    pub model: String,
    /// The dataset's name.
    pub dataset: String,
    /// The split evaluated ("": the dataset's default).
    pub test_split: String,
    /// The split of the kNN bank and the probe ("": the dataset's default).
    pub train_split: String,
    /// The settings asked for (absent fields take their defaults).
    pub spec: Option<MetricSpec>,
    /// Tags of this evaluation, set over the model's in the report.
    pub tags: BTreeMap<String, String>,
}

/// Which models to compare on a dataset.
#[derive(Debug, Clone, Default)]
pub struct CompareRequest {
    /// The models' names; empty means every model but the checkpoints of
    /// training runs (each ONNX file and preprocessing once).
    pub models: Vec<String>,
    /// The dataset's name.
    pub dataset: String,
    /// As [`EvaluateRequest::test_split`].
    pub test_split: String,
    /// As [`EvaluateRequest::train_split`].
    pub train_split: String,
    /// As [`EvaluateRequest::spec`].
    pub spec: Option<MetricSpec>,
    /// Only the models that have every one of these tags.
    pub tags: BTreeMap<String, String>,
}

/// Embeddings a client computed, and what they are of.
#[derive(Debug)]
pub struct EmbeddingsRequest {
    /// The name recorded as the report's model.
    pub name: String,
    /// The dataset recorded in the report.
    pub dataset: String,
    /// The training loss ("" when not said).
    pub loss: String,
    /// The name of a loss of the user's own (loss "other").
    pub loss_name: String,
    /// The training τ, when there is one.
    pub temperature: Option<f64>,
    /// The settings asked for.
    pub spec: Option<MetricSpec>,
    /// The embeddings.
    pub data: EvalData,
}

/// The job of one model on one dataset: INVALID_ARGUMENT when the model
/// does not take the dataset's images or a setting is out of bounds,
/// NOT_FOUND (with the nearest names) for a name that is not registered.
pub async fn evaluate(registries: &Registries, req: EvaluateRequest) -> Result<ModelJob> {
    let model = registries.named_model(&req.model).await?;
    let dataset = registries.named_dataset(&req.dataset).await?;
    let splits = Splits::for_dataset(&dataset, &req.test_split, &req.train_split)?;
    let settings = Settings::resolve(req.spec.as_ref(), model.card.training.temperature)?;
    crate::vocab::check_tags(&req.tags)?;
    model_job(model, dataset, splits, settings, req.tags)
}

/// The job of `model` on `dataset` with these splits and settings, once
/// the model takes the dataset's images and the settings fit the dataset:
/// the checks every one-model job passes, at admission ([`evaluate`]) and
/// when another replica rebuilds it from its stored request.
pub fn model_job(
    model: Arc<LoadedModel>,
    dataset: Arc<LoadedDataset>,
    splits: Splits,
    settings: Settings,
    tags: BTreeMap<String, String>,
) -> Result<ModelJob> {
    check_fit(&model, &dataset)?;
    settings.check_positives(&dataset, &splits.test)?;
    Ok(ModelJob {
        model,
        dataset,
        splits,
        settings,
        tags,
    })
}

/// The job of a comparison: the models named (each as named), or every
/// model but the checkpoints of runs; those that do not take the dataset's
/// images, and with every model the duplicates, are left out with why.
pub async fn compare(registries: &Registries, req: CompareRequest) -> Result<CompareJob> {
    let dataset = registries.named_dataset(&req.dataset).await?;
    let every = req.models.is_empty();
    let models: Vec<Arc<LoadedModel>> = if every {
        // One removed since the listing is left out.
        let listed = registries.listing::<LoadedModel>().await?;
        let mut all = Vec::with_capacity(listed.len());
        for info in listed {
            if info.training.as_ref().is_some_and(|t| !t.run.is_empty()) {
                continue;
            }
            match registries.model(&info.name).await {
                Ok(m) => all.push(m),
                Err(Error::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        all
    } else {
        let mut named = Vec::with_capacity(req.models.len());
        for m in &req.models {
            named.push(registries.named_model(m).await?);
        }
        named
    };
    crate::vocab::check_tags(&req.tags)?;
    let untagged = models.len();
    let models: Vec<Arc<LoadedModel>> = models
        .into_iter()
        .filter(|m| crate::registry::has_tags(&m.card.tags, &req.tags))
        .collect();
    if models.is_empty() {
        let why = if untagged > 0 {
            let tags: Vec<String> = req.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(" ({untagged} without the tags {})", tags.join(", "))
        } else {
            String::new()
        };
        return Err(Error::InvalidArgument(format!("no models to compare{why}")));
    }
    let splits = Splits::for_dataset(&dataset, &req.test_split, &req.train_split)?;
    let models = models
        .into_iter()
        .map(|m| {
            let settings = Settings::resolve(req.spec.as_ref(), m.card.training.temperature)?;
            Ok((m, settings))
        })
        .collect::<Result<Vec<_>>>()?;
    choose(dataset, splits, models, every)
}

/// The job of uploaded embeddings: the loss checked, the settings resolved.
pub fn embeddings(req: EmbeddingsRequest) -> Result<EmbeddingsJob> {
    let temperature = req.temperature.unwrap_or(0.0);
    let settings = Settings::resolve(req.spec.as_ref(), temperature)?;
    if !req.loss.is_empty() {
        let name = Some(req.loss_name.as_str()).filter(|n| !n.is_empty());
        crate::vocab::check_loss(&req.loss, name)
            .map_err(|e| Error::InvalidArgument(e.to_string().replace("training.", "")))?;
    }
    Ok(EmbeddingsJob {
        name: req.name,
        dataset: req.dataset,
        loss: req.loss,
        loss_name: req.loss_name,
        temperature,
        data: req.data,
        settings,
    })
}

/// The comparison of `candidates` (each with its settings) on `dataset`:
/// the models that do not take the dataset's images are left out with the
/// reason, and with `once` a model registered twice (same ONNX content,
/// same preprocessing) counts once. INVALID_ARGUMENT when no model is left
/// or the settings do not fit the dataset. The checks every comparison
/// passes, at admission ([`compare`]) and when another replica rebuilds it.
pub fn choose(
    dataset: Arc<LoadedDataset>,
    splits: Splits,
    candidates: Vec<(Arc<LoadedModel>, Settings)>,
    once: bool,
) -> Result<CompareJob> {
    if let Some((_, settings)) = candidates.first() {
        settings.check_positives(&dataset, &splits.test)?;
    }
    let mut models: Vec<(Arc<LoadedModel>, Settings)> = Vec::new();
    let mut excluded = Vec::new();
    let mut unfit: Vec<Arc<LoadedModel>> = Vec::new();
    for (model, settings) in candidates {
        let same = |seen: &Arc<LoadedModel>| {
            seen.sha256 == model.sha256 && seen.preprocessing() == model.preprocessing()
        };
        let seen = models
            .iter()
            .map(|(m, _)| m)
            .chain(&unfit)
            .find(|m| same(m))
            .map(|m| m.name.clone());
        if let (true, Some(first)) = (once, seen) {
            excluded.push(ExcludedModel {
                model: model.name.clone(),
                kind: "duplicate".into(),
                reason: format!(
                    "the same ONNX file and preprocessing as {first}, evaluated in its place"
                ),
                same_as: first,
            });
            continue;
        }
        match fit(&model, &dataset) {
            Ok(()) => models.push((model, settings)),
            Err(reason) => {
                excluded.push(ExcludedModel {
                    model: model.name.clone(),
                    kind: "does not fit".into(),
                    reason,
                    same_as: String::new(),
                });
                unfit.push(model);
            }
        }
    }
    if models.is_empty() {
        let reasons: Vec<String> = excluded
            .iter()
            .map(|e| format!("{}: {}", e.model, e.reason))
            .collect();
        return Err(Error::InvalidArgument(format!(
            "no model to compare takes the images of dataset {}: {}",
            dataset.name,
            reasons.join("; ")
        )));
    }
    Ok(CompareJob {
        id: crate::database::new_id(),
        dataset,
        splits,
        models,
        excluded,
    })
}
