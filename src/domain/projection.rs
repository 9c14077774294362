//! Pictures of the embedding space: each model's embeddings of a sample
//! of a split, projected to two dimensions (PCA or t-SNE), side by side so
//! that uniformity against tolerance can be seen (Wang & Liu 2021, Fig. 1).

use serde::{Deserialize, Serialize};

/// One model's projection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Projection {
    /// The model.
    pub model: String,
    /// Its τ (0 for the τ-free losses), as its report says.
    pub temperature: f64,
    /// Two coordinates per sampled row, row-major.
    pub coordinates: Vec<f32>,
    /// PCA: the share of the variance along each of the two axes.
    pub explained_variance: Vec<f64>,
    /// t-SNE: the Kullback–Leibler divergence of the fit.
    pub kl_divergence: Option<f64>,
}

/// Projections of several models' embeddings of the same rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Projections {
    /// The dataset.
    pub dataset: String,
    /// Its content id.
    pub dataset_id: String,
    /// The split the rows come from.
    pub split: String,
    /// The sampled rows of the split, ascending.
    pub rows: Vec<u64>,
    /// Their labels.
    pub labels: Vec<i64>,
    /// The class names by label (empty where the dataset names none).
    pub class_names: Vec<String>,
    /// "pca" or "tsne".
    pub method: String,
    /// The seed of the sample.
    pub seed: u64,
    /// t-SNE's perplexity (0 for PCA).
    pub perplexity: f64,
    /// The most rows asked for.
    pub max_rows: u32,
    /// One per model, in the order asked.
    pub projections: Vec<Projection>,
    /// The picture: the models side by side, one colour per class.
    pub svg: String,
}
