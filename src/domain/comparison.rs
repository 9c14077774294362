//! A comparison of models on one dataset: their reports side by side, the
//! models left out, groups of runs that differ only by seed, and the τ to
//! train with per loss (Wang & Liu 2021: the balance of uniformity and
//! tolerance).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Report;

/// A model a comparison did not evaluate, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExcludedModel {
    /// Its registry name.
    pub model: String,
    /// "duplicate" (same ONNX file and preprocessing as another) or
    /// "incompatible" (does not take the dataset's images).
    pub kind: String,
    /// Why, in a sentence.
    pub reason: String,
    /// For a duplicate, the model evaluated in its place.
    pub same_as: String,
}

/// A stored comparison as lists show it: the models of its rows and the
/// dataset versions they were made on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComparisonSummary {
    /// Its id.
    pub id: String,
    /// The dataset it compared on.
    pub dataset: String,
    /// When it was made.
    pub created: super::Timestamp,
    /// The models of its rows, in its request's order.
    pub models: Vec<String>,
    /// How many evaluations it made.
    pub num_evaluations: u32,
    /// How many models it left out.
    pub num_excluded: u32,
    /// The short content ids of the dataset versions its rows were made on.
    pub dataset_ids: Vec<String>,
}

/// A comparison's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Comparison {
    /// One report per model evaluated, in the request's order.
    pub rows: Vec<Report>,
    /// Uniformity against tolerance (Wang & Liu 2021, Fig. 4), SVG.
    pub plot_svg: String,
    /// Accuracy against τ, SVG.
    pub accuracy_plot_svg: String,
    /// The comparison's id.
    pub id: String,
    /// The models left out.
    pub excluded: Vec<ExcludedModel>,
    /// The τ to train with, one per loss.
    pub recommendations: Vec<Recommendation>,
    /// The tag key the groups are made by ("": none).
    pub by: String,
    /// Models whose tags agree but for `by` and the seed, summarised.
    pub groups: Vec<TagGroup>,
}

/// Models whose tags agree (but for the seed), with each metric summarised
/// over them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TagGroup {
    /// The tags they share.
    pub tags: BTreeMap<String, String>,
    /// Its models.
    pub models: Vec<String>,
    /// Each model's value of the comparison's `by` key.
    pub values: Vec<String>,
    /// Mean, standard deviation and 95% interval per metric.
    pub metrics: Vec<MetricSummary>,
}

/// A metric over a group's models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricSummary {
    /// The metric's name as reports name it.
    pub metric: String,
    /// Models with a value.
    pub n: u32,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation (0 for one).
    pub std: f64,
    /// Half-width of the 95% Student-t interval of the mean.
    pub interval: f64,
}

/// The τ to train with for one loss (Pareto front of uniformity and
/// tolerance, its knee, the best accuracies with 95% Wilson intervals).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recommendation {
    /// The loss.
    pub loss: String,
    /// The models on the Pareto front, by τ.
    pub front: Vec<String>,
    /// The front's knee ("" with fewer than three models on it).
    pub knee: String,
    /// The best kNN top-1 with its interval.
    pub best_knn: Option<AccuracyInterval>,
    /// The best linear top-1 with its interval.
    pub best_linear: Option<AccuracyInterval>,
    /// Models whose accuracy interval overlaps the best's.
    pub tied: Vec<String>,
    /// The model recommended.
    pub recommended: String,
    /// Its training τ.
    pub recommended_temperature: f64,
    /// Why, in sentences naming the rule that decided.
    pub reason: String,
    /// The classes whose tolerance falls most from the largest τ to the
    /// smallest.
    pub tolerance_falls: Vec<ClassTolerance>,
}

/// How one class's tolerance changes from the largest τ to the smallest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassTolerance {
    /// The class's label.
    pub label: i64,
    /// Its tolerance at the largest τ.
    pub at_largest_tau: f64,
    /// Its tolerance at the smallest τ.
    pub at_smallest_tau: f64,
    /// The first less the second.
    pub fall: f64,
    /// Its name ("" where the dataset names none).
    pub name: String,
}

/// A top-1 accuracy with its 95% Wilson interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccuracyInterval {
    /// The model.
    pub model: String,
    /// Its training τ.
    pub temperature: f64,
    /// The accuracy.
    pub top1: f64,
    /// The interval's lower end.
    pub lo: f64,
    /// The interval's upper end.
    pub hi: f64,
}
