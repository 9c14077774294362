//! The settings of an evaluation's metrics: what a request asks for (every
//! field optional, a default standing in for one left out) and, in a
//! report, what was used (every field filled in by `jobs::settings`).

use serde::{Deserialize, Serialize};

/// The metrics' settings; `None` takes the default of `jobs::settings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricSpec {
    /// t of the uniformity loss (Wang & Isola 2020, Eq. 2).
    pub uniformity_t: Option<f64>,
    /// How many nearest negatives the profiles cover.
    pub neighbors_k: Option<u32>,
    /// Seed of the augmentations that make positives.
    pub augmentation_seed: Option<u64>,
    /// τ of the relative penalty (Wang & Liu 2021, Eq. 5).
    pub penalty_temperature: Option<f64>,
    /// k of the weighted kNN.
    pub knn_k: Option<u32>,
    /// Temperature of the weighted kNN's votes (Wu et al. 2018).
    pub knn_temperature: Option<f64>,
    /// Inverse L2 strength of the linear probe.
    pub linear_c: Option<f64>,
    /// Most L-BFGS iterations of the probe.
    pub linear_max_iter: Option<u32>,
    /// The probe's gradient tolerance.
    pub linear_tol: Option<f64>,
    /// α of the alignment (Wang & Isola 2020, Eq. 1).
    pub alignment_alpha: Option<f64>,
    /// Most rows the uniformity is computed exactly over.
    pub uniformity_exact_max_rows: Option<u64>,
    /// Pairs sampled above that.
    pub uniformity_samples: Option<u64>,
    /// The augmentations that make positives (None: the default recipe).
    pub augmentation: Option<Augmentation>,
    /// The split the positives are drawn from ("": the test split).
    pub positives_split: String,
    /// Fraction of the train split the probe is fitted on.
    pub linear_train_fraction: Option<f64>,
    /// Seed of that subset.
    pub linear_train_seed: Option<u64>,
    /// The K of Recall@K (empty: the default).
    pub recall_ks: Vec<u32>,
    /// The retrieval gallery: "train" or "test" ("": the default).
    pub retrieval_gallery: String,
    /// Lloyd iterations of the k-means.
    pub kmeans_iterations: Option<u32>,
    /// k-means runs from different starts.
    pub kmeans_restarts: Option<u32>,
    /// Seed of the k-means's starting centroids.
    pub kmeans_seed: Option<u64>,
    /// Leave the uniformity out.
    pub skip_uniformity: bool,
    /// Leave the alignment out.
    pub skip_alignment: bool,
    /// Leave the tolerance out.
    pub skip_tolerance: bool,
    /// Leave the nearest negatives out.
    pub skip_nearest_negatives: bool,
    /// Leave the relative penalty out.
    pub skip_penalty: bool,
    /// Leave the effective rank out.
    pub skip_effective_rank: bool,
    /// Leave the weighted kNN out.
    pub skip_knn: bool,
    /// Leave the linear probe out.
    pub skip_linear: bool,
    /// Leave the per-class diagnostics out.
    pub skip_per_class: bool,
    /// Leave the retrieval metrics out.
    pub skip_retrieval: bool,
    /// Leave the clustering metrics out.
    pub skip_clustering: bool,
}

/// The augmentations that make a positive pair: a named recipe and its
/// overrides (`None`: the recipe's value).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Augmentation {
    /// "simclr", "moco-v1", … ("": the default).
    pub recipe: String,
    /// Smallest area fraction of the random resized crop.
    pub crop_scale_min: Option<f64>,
    /// Largest area fraction of the random resized crop.
    pub crop_scale_max: Option<f64>,
    /// Colour-jitter strength.
    pub jitter: Option<f64>,
    /// Probability of greyscale.
    pub grayscale: Option<f64>,
    /// Probability of a horizontal flip.
    pub flip: Option<f64>,
    /// Probability of a Gaussian blur.
    pub blur: Option<f64>,
}
