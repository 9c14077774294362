//! What the registries hold, as listings describe it: a model (its
//! training facts, input and outputs) and a dataset (its splits, classes
//! and image shape). Shared registrations keep these descriptions in the
//! database, so that a replica lists another's uploads without fetching
//! them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::InputInfo;

/// How a model was trained, from its card.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingInfo {
    /// The training loss.
    pub loss: String,
    /// Its τ.
    pub temperature: f64,
    /// The dataset it was trained on.
    pub dataset: String,
    /// Training epochs.
    pub epochs: u32,
    /// Training seed.
    pub seed: u64,
    /// The run it is a checkpoint of ("" when none).
    pub run: String,
    /// Its step in that run.
    pub step: u64,
    /// The name of a loss of the user's own (loss "other").
    pub loss_name: String,
}

/// One output of a model's graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputInfo {
    /// The output's name.
    pub name: String,
    /// Its dimension (-1 when not known).
    pub dim: i64,
}

/// A registered model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelInfo {
    /// The registry name.
    pub name: String,
    /// SHA-256 of its ONNX file.
    pub sha256: String,
    /// How it was trained.
    pub training: Option<TrainingInfo>,
    /// Its input and the preprocessing of its images.
    pub input: Option<InputInfo>,
    /// Its graph's outputs.
    pub outputs: Vec<OutputInfo>,
    /// The output evaluated.
    pub embedding_output: String,
    /// The output the linear probe is fitted on, when not the embedding.
    pub feature_output: Option<String>,
    /// Where it runs: "cpu" or "cuda:N".
    pub execution_provider: String,
    /// Its card's description.
    pub description: String,
    /// Size of its ONNX file.
    pub size_bytes: u64,
    /// Card keys read from the graph rather than given.
    pub inferred: Vec<String>,
    /// What the service assumed and the user should check.
    pub warnings: Vec<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// One split of a dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SplitInfo {
    /// The split's name.
    pub name: String,
    /// Its rows.
    pub size: u64,
}

/// A registered dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatasetInfo {
    /// The registry name.
    pub name: String,
    /// The content id (sha256 over its files).
    pub id: String,
    /// Its format.
    pub format: String,
    /// Its splits, by name.
    pub splits: Vec<SplitInfo>,
    /// Its classes.
    pub num_classes: u32,
    /// [H, W, C] of its images as evaluated.
    pub image_shape: Vec<i64>,
    /// Where it came from.
    pub source: String,
    /// Its licence.
    pub license: String,
    /// The side images are resized to (0: not resized).
    pub image_size: u32,
    /// The centre crop before the resize.
    pub crop_fraction: f64,
    /// Its default split evaluated.
    pub test_split: String,
    /// Its default split the kNN bank and the probe are fitted on.
    pub train_split: String,
    /// Each label's class name.
    pub class_names: Vec<String>,
}

/// The name of class `label` among a dataset's class names (by label), or
/// the label itself where the dataset names none.
pub fn class_name(names: &[String], label: i64) -> String {
    usize::try_from(label)
        .ok()
        .and_then(|i| names.get(i))
        .filter(|n| !n.is_empty())
        .cloned()
        .unwrap_or_else(|| label.to_string())
}
