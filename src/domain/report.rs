//! One evaluation's report: the metrics of a model on a dataset (README,
//! "Metrics", for each definition with its paper and equation), the
//! settings used, and where the evaluation stands.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::MetricSpec;

/// Where an evaluation stands. The numbers are those the database's
/// `status` column holds (and the contract's `EvaluationStatus`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Not set (a report being built).
    #[default]
    Unspecified,
    /// Accepted, waiting for a worker.
    Queued,
    /// Being computed.
    Running,
    /// Done; the metrics are filled in.
    Completed,
    /// Ended with an error (`Report::error`).
    Failed,
    /// Stopped by a cancellation.
    Cancelled,
    /// Made by earlier releases for a model of a comparison that did not
    /// take the dataset's images (comparisons now list such models as
    /// excluded).
    Skipped,
}

impl Status {
    /// Every status, in the order of their codes.
    pub const ALL: [Status; 7] = [
        Status::Unspecified,
        Status::Queued,
        Status::Running,
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
        Status::Skipped,
    ];

    /// The number the database and the contract use.
    pub fn code(self) -> i32 {
        match self {
            Status::Unspecified => 0,
            Status::Queued => 1,
            Status::Running => 2,
            Status::Completed => 3,
            Status::Failed => 4,
            Status::Cancelled => 5,
            Status::Skipped => 6,
        }
    }

    /// The status of a code ([`Status::Unspecified`] for one unknown).
    pub fn from_code(code: i32) -> Status {
        Status::ALL
            .into_iter()
            .find(|s| s.code() == code)
            .unwrap_or_default()
    }

    /// Its name as users read it: "QUEUED", "COMPLETED", …
    pub fn name(self) -> &'static str {
        match self {
            Status::Unspecified => "EVALUATION_STATUS_UNSPECIFIED",
            Status::Queued => "QUEUED",
            Status::Running => "RUNNING",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
            Status::Cancelled => "CANCELLED",
            Status::Skipped => "SKIPPED",
        }
    }

    /// Whether nothing more will happen to it: neither queued nor running.
    pub fn has_ended(self) -> bool {
        !matches!(self, Status::Queued | Status::Running)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A point in time: seconds and nanoseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(default)]
pub struct Timestamp {
    /// Whole seconds since the epoch.
    pub seconds: i64,
    /// Nanoseconds within the second, 0 ..= 999,999,999.
    pub nanos: i32,
}

impl Timestamp {
    /// Now, from the system clock.
    pub fn now() -> Timestamp {
        Timestamp::from(std::time::SystemTime::now())
    }

    /// Microseconds since the epoch (the database's sort key).
    pub fn micros(self) -> i64 {
        self.seconds * 1_000_000 + i64::from(self.nanos) / 1000
    }

    /// The time `micros` microseconds after the epoch.
    pub fn from_micros(micros: i64) -> Timestamp {
        Timestamp {
            seconds: micros.div_euclid(1_000_000),
            nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
        }
    }
}

impl From<std::time::SystemTime> for Timestamp {
    fn from(t: std::time::SystemTime) -> Timestamp {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }
    }
}

/// Weighted kNN (Wu et al. 2018): votes exp(s/T) over the top-k of the
/// train bank.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KnnResult {
    /// Top-1 accuracy on the test split.
    pub top1: f64,
    /// Top-5 accuracy on the test split.
    pub top5: f64,
    /// k used (after clamping to the bank size).
    pub k: u32,
    /// T of the votes.
    pub temperature: f64,
    /// "cosine".
    pub metric: String,
}

/// Multinomial logistic regression on frozen features.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinearResult {
    /// Top-1 accuracy on the test split.
    pub top1: f64,
    /// Top-5 accuracy on the test split.
    pub top5: f64,
    /// Top-1 accuracy on the rows it was fitted on.
    pub train_top1: f64,
    /// Inverse L2 strength.
    pub c: f64,
    /// L-BFGS iterations run.
    pub iterations: u32,
    /// The model output the probe was trained on.
    pub feature_output: String,
    /// Whether the gradient fell below the tolerance.
    pub converged: bool,
    /// Train rows the probe was fitted on.
    pub train_rows: u64,
    /// Wall-clock seconds per L-BFGS iteration.
    pub seconds_per_iteration: f64,
}

/// Retrieval metrics of the test split's rows as queries against a gallery
/// ranked by cosine similarity (Musgrave, Belongie and Lim 2020, Sec. 3.2,
/// as pytorch-metric-learning's AccuracyCalculator computes them): the
/// means over the queries whose class has gallery rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetrievalResult {
    /// Fraction of queries whose first ranked row is of their class.
    pub precision_at_1: f64,
    /// Mean fraction of the first R ranked rows of the query's class.
    pub r_precision: f64,
    /// Mean average precision at R.
    pub map_at_r: f64,
    /// (K, Recall@K) for each K asked for, in that order.
    pub recall_at_k: Vec<(u32, f64)>,
    /// "train" or "test" (leave-one-out).
    pub gallery: String,
    /// Queries scored.
    pub queries: u64,
    /// Queries left out: their class has no gallery row.
    pub lone_queries: u64,
}

/// NMI and AMI of a k-means clustering of the test split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusteringResult {
    /// Normalised mutual information (arithmetic mean).
    pub nmi: f64,
    /// Adjusted mutual information (arithmetic mean).
    pub ami: f64,
    /// Clusters: the test split's classes.
    pub clusters: u32,
    /// Lloyd iterations per run.
    pub iterations: u32,
    /// Runs, the lowest objective kept.
    pub restarts: u32,
    /// Seed of the starting centroids.
    pub seed: u64,
    /// Sum of squared distances of the rows to their centroids.
    pub objective: f64,
}

/// A histogram with fixed bins over [lo, hi].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Histogram {
    /// What is counted, e.g. "positive" or "negative_rank_1".
    pub name: String,
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Upper edge of the last bin.
    pub hi: f64,
    /// Count per bin.
    pub counts: Vec<u64>,
}

/// Where the semantic structure holds and where it breaks, class by class
/// (Wang & Liu 2021, Sec. 4). Classes in increasing label order; C × C
/// matrices row-major (row: the anchor's class).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PerClass {
    /// The test split's labels.
    pub labels: Vec<i64>,
    /// Test rows per class.
    pub counts: Vec<u64>,
    /// Mean similarity of distinct same-class pairs (Eq. 11 within the
    /// class); NaN for a class of one row.
    pub tolerance: Vec<f64>,
    /// Fraction of each class's rows the weighted kNN gets right.
    pub knn_top1: Vec<f64>,
    /// The same for the linear probe.
    pub linear_top1: Vec<f64>,
    /// C × C mean cosine similarity between classes.
    pub similarity: Vec<f32>,
    /// C × C: how many of the k nearest other rows of class a's rows are of
    /// class b.
    pub nearest_negative_classes: Vec<u64>,
    /// The k of `nearest_negative_classes`.
    pub nearest_negative_k: u32,
    /// Each label's class name (empty where the dataset names none).
    pub names: Vec<String>,
    /// Each class's MAP@R (NaN where its class has no gallery row; empty
    /// when the retrieval metrics were skipped).
    pub map_at_r: Vec<f64>,
    /// Each class's R-Precision.
    pub r_precision: Vec<f64>,
}

/// The preprocessing a model's images go through, and for a report, the
/// images' own size and how much they were resized.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InputInfo {
    /// The model input's name.
    pub name: String,
    /// "float32" or "uint8".
    pub dtype: String,
    /// Its shape (-1 for a dynamic axis).
    pub shape: Vec<i64>,
    /// "NCHW" or "NHWC".
    pub layout: String,
    /// Pixel scale applied before normalisation.
    pub scale: f64,
    /// Per-channel mean subtracted.
    pub mean: Vec<f64>,
    /// Per-channel standard deviation divided by.
    pub std: Vec<f64>,
    /// The resize policy.
    pub resize: String,
    /// The named preset the values came from.
    pub preset: String,
    /// The dataset's image height (0 when not known).
    pub image_height: i64,
    /// The dataset's image width.
    pub image_width: i64,
    /// Model height over image height.
    pub resize_factor_height: f64,
    /// Model width over image width.
    pub resize_factor_width: f64,
}

/// One evaluation of a model on a dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    /// The evaluation id.
    pub id: String,
    /// The model's registry name.
    pub model: String,
    /// SHA-256 of its ONNX file.
    pub model_sha256: String,
    /// The dataset's name.
    pub dataset: String,
    /// The dataset version's content id.
    pub dataset_id: String,
    /// Training τ of the model.
    pub temperature: f64,
    /// Training loss of the model.
    pub loss: String,
    /// The name of a loss of the user's own (loss "other").
    pub loss_name: String,
    /// Test rows.
    pub num_test: u64,
    /// Train rows.
    pub num_train: u64,
    /// Embedding dimension.
    pub embedding_dim: u32,
    /// -uniformity_loss; higher is more uniform.
    pub uniformity: Option<f64>,
    /// log mean over distinct pairs of exp(-t ||z_i - z_j||²), at most 0
    /// (Wang & Isola 2020, Eq. 2).
    pub uniformity_loss: Option<f64>,
    /// Mean ||z(x) - z(x+)||^α over positive pairs (Wang & Isola 2020,
    /// Eq. 1).
    pub alignment: Option<f64>,
    /// Mean similarity of distinct same-label pairs (Wang & Liu 2021,
    /// Eq. 11).
    pub tolerance: Option<f64>,
    /// Mean z(x)ᵀz(x+).
    pub positive_similarity: Option<f64>,
    /// Mean similarity of the 1st … k-th nearest other sample.
    pub nearest_negative_similarity: Vec<f64>,
    /// Mean relative penalty r_i (Wang & Liu 2021, Eq. 5) on the 1st … k-th
    /// nearest negative.
    pub relative_penalty: Vec<f64>,
    /// Mean entropy of r_i, in nats.
    pub penalty_entropy: Option<f64>,
    /// exp(penalty_entropy): the effective number of negatives.
    pub effective_negatives: Option<f64>,
    /// RankMe of the test embeddings (Garrido et al. 2023).
    pub effective_rank: Option<f64>,
    /// The weighted kNN (None: skipped or not yet computed).
    pub knn: Option<KnnResult>,
    /// The linear probe (None: skipped or not yet computed).
    pub linear: Option<LinearResult>,
    /// The retrieval metrics (None: skipped or not yet computed).
    pub retrieval: Option<RetrievalResult>,
    /// The clustering metrics (None: skipped or not yet computed).
    pub clustering: Option<ClusteringResult>,
    /// The settings used, every field filled in.
    pub spec: Option<MetricSpec>,
    /// Seconds per stage.
    pub timings: BTreeMap<String, f64>,
    /// When the evaluation was accepted.
    pub created_at: Option<Timestamp>,
    /// Where it stands.
    pub status: Status,
    /// Why it failed, when it did.
    pub error: String,
    /// "exact" or "sampled".
    pub uniformity_estimator: String,
    /// Standard error of a sampled uniformity loss (0 when exact).
    pub uniformity_stderr: f64,
    /// Histograms of the positive similarity and of each nearest-negative
    /// rank.
    pub histograms: Vec<Histogram>,
    /// The effective preprocessing (None for embeddings a client sent).
    pub preprocessing: Option<InputInfo>,
    /// Where the model ran: "cpu" or "cuda:N".
    pub execution_provider: String,
    /// The split evaluated.
    pub test_split: String,
    /// The split the kNN bank and the probe were fitted on.
    pub train_split: String,
    /// What the service assumed and the user should check.
    pub warnings: Vec<String>,
    /// Per-class diagnostics (None when skipped).
    pub per_class: Option<PerClass>,
    /// The model's tags with the request's over them.
    pub tags: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_round_trip_and_match_the_contract() {
        for s in Status::ALL {
            assert_eq!(Status::from_code(s.code()), s);
        }
        assert_eq!(Status::Completed.code(), 3);
        assert_eq!(Status::from_code(99), Status::Unspecified);
        assert!(Status::Cancelled.has_ended() && !Status::Running.has_ended());
    }

    #[test]
    fn timestamps_convert_to_micros_and_back() {
        let t = Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_456_000,
        };
        assert_eq!(Timestamp::from_micros(t.micros()), t);
        assert_eq!(Timestamp::from_micros(-1).nanos, 999_999_000);
    }
}
