//! What a job is: a [`JobSpec`], made by `jobs::plan` alone (or rebuilt
//! from a stored request), with the models, dataset, splits and settings
//! resolved.

use std::sync::Arc;

use super::super::compute::EvalData;
use super::super::settings::{Settings, Splits};
use crate::data::LoadedDataset;
use crate::domain::ExcludedModel;
use crate::registry::LoadedModel;

/// A job to run.
#[derive(Debug)]
pub enum JobSpec {
    /// One model over a dataset: its test and train splits and the
    /// positive views of the test images.
    Model(Box<ModelJob>),
    /// Embeddings the client computed.
    Embeddings(Box<EmbeddingsJob>),
    /// Several models over one dataset, one after the other in one slot.
    Compare(CompareJob),
}

/// One model on one dataset.
#[derive(Debug, Clone)]
pub struct ModelJob {
    /// The model.
    pub model: Arc<LoadedModel>,
    /// The dataset.
    pub dataset: Arc<LoadedDataset>,
    /// Its splits that play test and train.
    pub splits: Splits,
    /// The resolved settings.
    pub settings: Settings,
    /// The request's tags, set over the model's in the report.
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Uploaded embeddings and how the client described them.
#[derive(Debug)]
pub struct EmbeddingsJob {
    /// Name of the model that made them (for the report).
    pub name: String,
    /// Name of the dataset they embed (for the report).
    pub dataset: String,
    /// Training loss (for the report).
    pub loss: String,
    /// The name of a loss of the user's own, with loss "other" (for the report).
    pub loss_name: String,
    /// Training τ (for the report).
    pub temperature: f64,
    /// The embeddings.
    pub data: EvalData,
    /// The resolved settings.
    pub settings: Settings,
}

/// Several models on one dataset.
#[derive(Debug)]
pub struct CompareJob {
    /// The comparison's id (stored with its evaluation ids at admission).
    pub id: String,
    /// The dataset.
    pub dataset: Arc<LoadedDataset>,
    /// Its splits that play test and train.
    pub splits: Splits,
    /// Each model that takes the dataset's images, with its settings.
    pub models: Vec<(Arc<LoadedModel>, Settings)>,
    /// The models left out, with why: those that do not take the dataset's
    /// images and the duplicates (no report is stored for them).
    pub excluded: Vec<ExcludedModel>,
}
