//! The evidence behind "a cat's nearest images are dogs": a test image's
//! nearest training images under each model, and for each class the class
//! its rows' nearest training images most often come from instead.

use serde::{Deserialize, Serialize};

/// One training image near a query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Neighbour {
    /// Its row of the training split.
    pub row: u64,
    /// Its label.
    pub label: i64,
    /// Its cosine similarity to the query.
    pub similarity: f32,
}

/// A test row whose nearest training image is of another class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfusedPair {
    /// The test row.
    pub test_row: u64,
    /// Its nearest training row.
    pub train_row: u64,
    /// Their cosine similarity.
    pub similarity: f32,
}

/// A class and the class its rows' nearest training images most often
/// come from when not their own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassConfusion {
    /// The class.
    pub label: i64,
    /// Its test rows.
    pub rows: u64,
    /// The other class its rows' nearest training images come from most.
    pub confused_with: i64,
    /// The share of its rows whose nearest training image is of that class.
    pub share: f64,
    /// The most similar such pairs, most similar first.
    pub pairs: Vec<ConfusedPair>,
}

/// One model's view of the query and of the classes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelNeighbours {
    /// The model.
    pub model: String,
    /// Its τ (0 for the τ-free losses).
    pub temperature: f64,
    /// The query's nearest training images, nearest first.
    pub neighbours: Vec<Neighbour>,
    /// Per class with a confusion, ascending by label.
    pub confusions: Vec<ClassConfusion>,
}

/// A test image's nearest training images under several models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NearestImages {
    /// The dataset.
    pub dataset: String,
    /// Its content id.
    pub dataset_id: String,
    /// The split of the query and of the confusions' test rows.
    pub test_split: String,
    /// The split of the neighbours.
    pub train_split: String,
    /// The query's row of the test split.
    pub row: u64,
    /// Its label.
    pub label: i64,
    /// The class names by label (empty where the dataset names none).
    pub class_names: Vec<String>,
    /// One per model, in the order asked.
    pub models: Vec<ModelNeighbours>,
}
