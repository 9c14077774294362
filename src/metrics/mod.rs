//! The science of embedeval: pure functions over float32 embedding matrices
//! (no gRPC, no files). Definitions (docs/book/metrics.md gives each with
//! its equation):
//! z = f(x)/‖f(x)‖, s_ij = z_iᵀz_j.
//!
//! - [`uniformity`]: Wang & Isola (ICML 2020), L_u = log mean_{i≠j} exp(−t‖z_i−z_j‖²).
//! - [`alignment`], [`positive_similarity`]: Wang & Isola (2020) over positive pairs.
//! - [`tolerance`]: Wang & Liu (CVPR 2021) Eq. 11.
//! - [`nearest_negatives`]: Wang & Liu Fig. 8, the similarity of the 1st … k-th nearest other sample.
//! - [`penalty_profile`]: Wang & Liu Eq. 5, the relative penalty r_i and its entropy.
//! - [`effective_rank`]: RankMe (Garrido et al., ICML 2023).
//! - [`per_class`]: per-class tolerance, the class-to-class similarity matrix and the classes
//!   of the nearest negatives (Wang & Liu Sec. 4, class by class).

mod classes;
mod profile;
mod uniformity;

pub use classes::{per_class, PerClass};
pub use profile::{nearest_negatives, penalty_profile, NeighborProfile, PenaltyProfile};
pub use uniformity::{
    uniformity, uniformity_exact, uniformity_sampled, Estimator, Uniformity, UniformityOptions,
};

use crate::blas;
use crate::error::{Error, Result};

/// A row-major float32 matrix of embeddings, [rows, dim].
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    data: Vec<f32>,
    rows: usize,
    dim: usize,
}

impl Matrix {
    /// Wraps row-major values; `data.len()` must be a multiple of `dim`.
    pub fn new(data: Vec<f32>, dim: usize) -> Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(Error::InvalidArgument(format!(
                "{} values are not whole rows of dimension {dim}",
                data.len()
            )));
        }
        Ok(Self {
            rows: data.len() / dim,
            data,
            dim,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows L2-normalised (norms in float64). A row that is zero or holds
    /// NaN/Inf is an error naming it.
    pub fn normalized(&self) -> Result<Matrix> {
        let norms = row_norms(&self.data, self.dim)?;
        let mut out = self.data.clone();
        for (row, norm) in out.chunks_exact_mut(self.dim).zip(norms) {
            row.iter_mut().for_each(|v| *v = (*v as f64 / norm) as f32);
        }
        Ok(Matrix {
            data: out,
            rows: self.rows,
            dim: self.dim,
        })
    }

    /// Each row's inverse L2 norm, for cosine similarity against these rows
    /// without a normalised copy ([`crate::index::VectorIndex::cosine`]);
    /// the errors of [`Matrix::normalized`].
    pub fn inverse_norms(&self) -> Result<Vec<f32>> {
        Ok(row_norms(&self.data, self.dim)?
            .into_iter()
            .map(|n| (1.0 / n) as f32)
            .collect())
    }
}

/// The L2 norm of each row (in f64); INVALID_ARGUMENT for a row holding a
/// non-finite value or only zeros, naming it.
fn row_norms(data: &[f32], dim: usize) -> Result<Vec<f64>> {
    data.chunks_exact(dim)
        .enumerate()
        .map(|(i, row)| {
            if let Some(v) = row.iter().find(|v| !v.is_finite()) {
                return Err(Error::InvalidArgument(format!(
                    "embedding row {i} holds a non-finite value ({v})"
                )));
            }
            let norm = row
                .iter()
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>()
                .sqrt();
            if norm == 0.0 {
                return Err(Error::InvalidArgument(format!(
                    "embedding row {i} is all zeros and cannot be normalised"
                )));
            }
            Ok(norm)
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn check_pairs(z: &Matrix, positives: &Matrix) -> Result<()> {
    if z.rows() != positives.rows() || z.dim() != positives.dim() {
        return Err(Error::InvalidArgument(format!(
            "positive views are [{}, {}] but the anchors are [{}, {}]",
            positives.rows(),
            positives.dim(),
            z.rows(),
            z.dim()
        )));
    }
    if z.rows() == 0 {
        return Err(Error::InvalidArgument("no positive pairs".into()));
    }
    Ok(())
}

/// Alignment (Wang & Isola 2020): mean ‖z_i − z⁺_i‖^α over positive pairs of
/// L2-normalised rows.
pub fn alignment(z: &Matrix, positives: &Matrix, alpha: f64) -> Result<f64> {
    check_pairs(z, positives)?;
    let total: f64 = (0..z.rows())
        .map(|i| {
            let sq: f64 = z
                .row(i)
                .iter()
                .zip(positives.row(i))
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum();
            sq.powf(alpha / 2.0)
        })
        .sum();
    Ok(total / z.rows() as f64)
}

/// Mean cosine similarity z_iᵀz⁺_i of positive pairs of L2-normalised rows.
pub fn positive_similarity(z: &Matrix, positives: &Matrix) -> Result<f64> {
    check_pairs(z, positives)?;
    let total: f64 = (0..z.rows()).map(|i| dot(z.row(i), positives.row(i))).sum();
    Ok(total / z.rows() as f64)
}

/// Positive similarities, one per pair (for histograms).
pub fn positive_similarities(z: &Matrix, positives: &Matrix) -> Result<Vec<f64>> {
    check_pairs(z, positives)?;
    Ok((0..z.rows())
        .map(|i| dot(z.row(i), positives.row(i)))
        .collect())
}

/// Tolerance (Wang & Liu 2021, Eq. 11): the mean s_ij over pairs of distinct
/// samples with the same label, in O(N·d) through per-class sums:
/// Σ_c (‖Σ_{i∈c} z_i‖² − Σ_{i∈c} ‖z_i‖²) / Σ_c n_c(n_c − 1) (the rows' own
/// squared norms, 1 up to float32 rounding, taken as they are so that the
/// value is the pairs' mean exactly). Labels are any int64 values.
pub fn tolerance(z: &Matrix, labels: &[i64]) -> Result<f64> {
    if labels.len() != z.rows() {
        return Err(Error::InvalidArgument(format!(
            "{} labels for {} embeddings",
            labels.len(),
            z.rows()
        )));
    }
    let mut sums: std::collections::BTreeMap<i64, (Vec<f64>, f64, u64)> = Default::default();
    for (i, &label) in labels.iter().enumerate() {
        let (sum, squares, count) = sums
            .entry(label)
            .or_insert_with(|| (vec![0.0; z.dim()], 0.0, 0));
        sum.iter_mut()
            .zip(z.row(i))
            .for_each(|(s, &v)| *s += v as f64);
        *squares += z.row(i).iter().map(|&v| v as f64 * v as f64).sum::<f64>();
        *count += 1;
    }
    let (mut num, mut den) = (0.0, 0.0);
    for (sum, squares, n) in sums.values() {
        let n = *n as f64;
        num += sum.iter().map(|v| v * v).sum::<f64>() - squares;
        den += n * (n - 1.0);
    }
    if den == 0.0 {
        return Err(Error::InvalidArgument(
            "tolerance needs a class with at least two samples; every label occurs once".into(),
        ));
    }
    Ok(num / den)
}

/// Effective rank (RankMe, Garrido et al. 2023): with σ the singular values
/// of the matrix of L2-normalised rows, p_k = σ_k / Σσ + ε, the rank is
/// exp(−Σ_k p_k log p_k). The min(rows, dim) singular values are used; ε is
/// 1e-7 by default.
pub fn effective_rank(z: &Matrix, eps: f64) -> Result<f64> {
    let (n, d) = (z.rows(), z.dim());
    if n == 0 {
        return Err(Error::InvalidArgument("effective rank of no rows".into()));
    }
    let wide: Vec<f64> = z.as_slice().iter().map(|&v| v as f64).collect();
    let gram = blas::syrk_ata(&wide, n, d);
    let mut eig = blas::symmetric_eigenvalues(gram, d).map_err(Error::InvalidArgument)?;
    eig.sort_by(|a, b| b.total_cmp(a));
    let sigma: Vec<f64> = eig
        .into_iter()
        .take(n.min(d))
        .map(|l| l.max(0.0).sqrt())
        .collect();
    let total: f64 = sigma.iter().sum();
    let entropy: f64 = sigma
        .iter()
        .map(|s| {
            let p = s / total + eps;
            -p * p.ln()
        })
        .sum();
    Ok(entropy.exp())
}

/// Counts of `values` in `bins` equal bins over [lo, hi]; values outside are
/// clamped into the first or last bin.
pub fn histogram(values: impl IntoIterator<Item = f64>, bins: usize, lo: f64, hi: f64) -> Vec<u64> {
    let mut counts = vec![0u64; bins];
    let width = (hi - lo) / bins as f64;
    for v in values {
        let b = ((v - lo) / width).floor();
        let b = if b.is_nan() {
            0
        } else {
            (b.max(0.0) as usize).min(bins - 1)
        };
        counts[b] += 1;
    }
    counts
}

#[cfg(test)]
mod tests;
