//! A training run: the checkpoints of one run registered as models, their
//! reports on one dataset, what went wrong along the way, and the
//! checkpoint to keep.

use serde::{Deserialize, Serialize};

use super::{Recommendation, Report};

/// A run as listings show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSummary {
    /// The run's name.
    pub name: String,
    /// Registered checkpoints.
    pub checkpoints: u32,
    /// The first checkpoint's step.
    pub first_step: u64,
    /// The last checkpoint's step.
    pub last_step: u64,
    /// Training loss of its latest checkpoint.
    pub loss: String,
    /// Training τ of its latest checkpoint.
    pub temperature: f64,
}

/// One checkpoint of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Checkpoint {
    /// Its training step.
    pub step: u64,
    /// Its registry name.
    pub model: String,
    /// SHA-256 of its ONNX file.
    pub model_sha256: String,
    /// The latest completed evaluation of exactly this checkpoint on the
    /// run's dataset (None before one).
    pub report: Option<Report>,
}

/// Something about a run's path a user wants to know while it trains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunWarning {
    /// "dimensional_collapse", "complete_collapse" or "small_tau".
    pub kind: String,
    /// The step where it began.
    pub step: u64,
    /// What it means, in a sentence.
    pub message: String,
}

/// A run's checkpoints and their reports on one dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Run {
    /// The run's name.
    pub name: String,
    /// The dataset whose reports are shown.
    pub dataset: String,
    /// In step order.
    pub checkpoints: Vec<Checkpoint>,
    /// What went wrong along the way.
    pub warnings: Vec<RunWarning>,
    /// The checkpoint to keep (None before one with uniformity and
    /// tolerance is evaluated).
    pub checkpoint_to_keep: Option<Recommendation>,
}

/// A registered model as the runs view sees it: its name, its content and
/// the training facts of its card (`[training] run`, `step`, loss, τ).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunMember {
    /// Its registry name.
    pub name: String,
    /// SHA-256 of its ONNX file.
    pub sha256: String,
    /// The run it is a checkpoint of ("" when none).
    pub run: String,
    /// Its training step.
    pub step: u64,
    /// Its training loss.
    pub loss: String,
    /// Its training τ.
    pub temperature: f64,
}
