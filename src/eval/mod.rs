//! Evaluation protocols on frozen embeddings: the weighted kNN classifier of
//! InstDisc (Wu et al. 2018) over the nearest-neighbour index, and a linear probe
//! (multinomial logistic regression, L-BFGS) that agrees with scikit-learn,
//! the retrieval metrics of pytorch-metric-learning's AccuracyCalculator
//! (MAP@R, R-Precision, Recall@K) and the NMI and AMI of a k-means
//! clustering.
//! Pure functions: no gRPC, no files.

pub mod clustering;
pub mod knn;
pub mod linear;
pub mod retrieval;

pub use clustering::{cluster, ClusteringResult, KmeansOptions};
pub use knn::{knn_classify, KnnOptions, KnnResult};
pub use linear::{linear_probe, LinearOptions, LinearResult};
pub use retrieval::{knn_and_retrieval, Gallery, RetrievalOptions, RetrievalResult};

use crate::error::{Error, Result};
use crate::metrics::Matrix;

/// Checks a labelled split: labels per row, finite values.
fn check_split(name: &str, x: &Matrix, labels: &[i64]) -> Result<()> {
    if x.rows() == 0 {
        return Err(Error::InvalidArgument(format!("the {name} split is empty")));
    }
    if labels.len() != x.rows() {
        return Err(Error::InvalidArgument(format!(
            "the {name} split has {} rows but {} labels",
            x.rows(),
            labels.len()
        )));
    }
    if let Some(pos) = x.as_slice().iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "the {name} split holds a non-finite value at row {}",
            pos / x.dim()
        )));
    }
    Ok(())
}

/// Checks that train and test are usable together.
fn check_pair(train: &Matrix, train_y: &[i64], test: &Matrix, test_y: &[i64]) -> Result<()> {
    check_split("train", train, train_y)?;
    check_split("test", test, test_y)?;
    if train.dim() != test.dim() {
        return Err(Error::InvalidArgument(format!(
            "train rows have dimension {} but test rows have {}",
            train.dim(),
            test.dim()
        )));
    }
    Ok(())
}

/// The classes: the sorted union of the train and test labels.
fn classes(train_y: &[i64], test_y: &[i64]) -> Vec<i64> {
    let mut c: Vec<i64> = train_y.iter().chain(test_y).copied().collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// Whether `truth` is among the `top` best classes of `scores` (ranked by
/// score, ties to the smaller label, i.e. the smaller class index).
fn in_top(scores: &[f64], truth: usize, top: usize) -> bool {
    let mine = scores[truth];
    let better = scores
        .iter()
        .enumerate()
        .filter(|&(c, &s)| s > mine || (s == mine && c < truth))
        .count();
    better < top
}

#[cfg(test)]
mod tests;
