//! The positive / nearest-negative profile (Wang & Liu 2021, Fig. 8) and the
//! relative-penalty profile (their Eq. 5).
//!
//! For anchor i the relative penalty on negative j at temperature τ is
//! r_i(s_ij) = exp(s_ij/τ) / Σ_{k≠i} exp(s_ik/τ), the softmax over every other
//! sample. Reported: the mean r_i on the 1st … k-th nearest negatives, the mean
//! entropy H(r_i) = −Σ_j r_ij ln r_ij and the effective number of negatives
//! exp(mean H). The softmax is exact over all N − 1 others, through blocked
//! Gram matrices like the uniformity: memory O(block × N).

use rayon::prelude::*;

use super::Matrix;
use crate::blas;
use crate::cancel::Stop;
use crate::error::{Error, Result};
use crate::index::VectorIndex;

/// Each anchor's nearest other samples.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighborProfile {
    /// Neighbours per anchor (k clamped to N − 1).
    pub k: usize,
    /// Mean similarity of the 1st … k-th nearest other sample over anchors.
    pub mean_similarity: Vec<f64>,
    /// Row-major [N, k]: each anchor's neighbour similarities, best first.
    pub similarities: Vec<f32>,
    /// Row-major [N, k]: each anchor's neighbour rows.
    pub ids: Vec<i64>,
}

impl NeighborProfile {
    /// The similarities at rank `r` (0-based) of every anchor.
    pub fn rank(&self, r: usize) -> impl Iterator<Item = f64> + '_ {
        self.similarities
            .chunks_exact(self.k)
            .map(move |row| row[r] as f64)
    }
}

/// The 1st … k-th nearest *other* sample of every row, through the exact
/// inner-product index ([`crate::index`]) over the L2-normalised rows,
/// searched in chunks of queries; `stop` is checked before each chunk.
pub fn nearest_negatives(z: &Matrix, k: usize, stop: &Stop) -> Result<NeighborProfile> {
    let n = z.rows();
    if n < 2 {
        return Err(Error::InvalidArgument(format!(
            "the nearest-negative profile needs at least two embeddings, got {n}"
        )));
    }
    if k == 0 {
        return Err(Error::InvalidArgument(
            "neighbors_k must be at least 1".into(),
        ));
    }
    let k = k.min(n - 1);
    let index = VectorIndex::new(z.as_slice(), z.dim())?;
    let d = z.dim();
    let mut similarities = Vec::with_capacity(n * k);
    let mut ids = Vec::with_capacity(n * k);
    let chunk = index.query_chunk();
    for start in (0..n).step_by(chunk) {
        stop.check()?;
        stop.advance(start as u64, n as u64);
        let end = (start + chunk).min(n);
        let found = index.search_stoppable(&z.as_slice()[start * d..end * d], k + 1, stop)?;
        collect_negatives(&found, start, end, k, &mut ids, &mut similarities);
    }
    stop.advance(n as u64, n as u64);
    let mut mean_similarity = vec![0.0; k];
    for row in similarities.chunks_exact(k) {
        for (m, &s) in mean_similarity.iter_mut().zip(row) {
            *m += s as f64;
        }
    }
    mean_similarity.iter_mut().for_each(|m| *m /= n as f64);
    Ok(NeighborProfile {
        k,
        mean_similarity,
        similarities,
        ids,
    })
}

/// Appends the k nearest others of anchors `start..end` from their k + 1
/// nearest rows, the anchor itself dropped.
fn collect_negatives(
    found: &crate::index::Neighbors,
    start: usize,
    end: usize,
    k: usize,
    ids: &mut Vec<i64>,
    similarities: &mut Vec<f32>,
) {
    for (q, i) in (start..end).enumerate() {
        let row_ids = &found.ids[q * (k + 1)..(q + 1) * (k + 1)];
        let row_sims = &found.similarities[q * (k + 1)..(q + 1) * (k + 1)];
        // Drop the anchor itself (rank 0 unless it has exact duplicates);
        // if the search did not return it, the k best are the first k.
        let skip = row_ids.iter().position(|&id| id == i as i64).unwrap_or(k);
        for (r, (&id, &s)) in row_ids.iter().zip(row_sims).enumerate() {
            if r != skip {
                ids.push(id);
                similarities.push(s);
            }
        }
    }
}

/// The relative-penalty profile at temperature `tau`.
#[derive(Debug, Clone, PartialEq)]
pub struct PenaltyProfile {
    /// τ used.
    pub temperature: f64,
    /// Mean r_i on the 1st … k-th nearest negative.
    pub relative_penalty: Vec<f64>,
    /// Mean entropy H(r_i), nats.
    pub entropy: f64,
    /// exp(entropy): the effective number of negatives.
    pub effective_negatives: f64,
}

/// Per anchor: the softmax's log-normaliser parts and its entropy.
#[derive(Debug, Clone, Copy)]
struct RowSoftmax {
    /// max_j s_ij/τ over j ≠ i.
    max: f64,
    /// Σ_j exp(s_ij/τ − max).
    sum: f64,
    /// H(r_i).
    entropy: f64,
}

fn row_softmax(row: &[f32], skip: usize, inv_tau: f64) -> RowSoftmax {
    let max = row
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != skip)
        .map(|(_, &c)| c as f64 * inv_tau)
        .fold(f64::NEG_INFINITY, f64::max);
    let (mut s0, mut s1) = (0.0f64, 0.0f64);
    for (j, &c) in row.iter().enumerate() {
        if j == skip {
            continue;
        }
        let a = c as f64 * inv_tau - max;
        let e = (a as f32).exp() as f64;
        s0 += e;
        s1 += a * e;
    }
    RowSoftmax {
        max,
        sum: s0,
        entropy: s0.ln() - s1 / s0,
    }
}

/// The relative-penalty profile (Wang & Liu Eq. 5) of L2-normalised rows at
/// temperature `tau`, on the neighbours of `neighbors`; `stop` is checked
/// once per Gram block.
pub fn penalty_profile(
    z: &Matrix,
    tau: f64,
    neighbors: &NeighborProfile,
    stop: &Stop,
) -> Result<PenaltyProfile> {
    let (n, d) = (z.rows(), z.dim());
    if !(tau.is_finite() && tau > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "penalty_temperature must be > 0, got {tau}"
        )));
    }
    if neighbors.similarities.len() != n * neighbors.k {
        return Err(Error::InvalidArgument(
            "the neighbour profile does not belong to these embeddings".into(),
        ));
    }
    let inv_tau = 1.0 / tau;
    let b = (8 * 1024 * 1024 / n.max(1)).clamp(16, 1024);
    let mut gram = vec![0f32; b * n];
    let mut rows = Vec::with_capacity(n);
    for r0 in (0..n).step_by(b) {
        stop.check()?;
        stop.advance(r0 as u64, n as u64);
        let count = b.min(n - r0);
        blas::gemm_abt(
            &z.as_slice()[r0 * d..(r0 + count) * d],
            z.as_slice(),
            count,
            n,
            d,
            &mut gram,
        );
        let block: Vec<RowSoftmax> = gram[..count * n]
            .par_chunks(n)
            .enumerate()
            .map(|(li, row)| row_softmax(row, r0 + li, inv_tau))
            .collect();
        rows.extend(block);
    }
    stop.advance(n as u64, n as u64);
    let k = neighbors.k;
    let mut penalty = vec![0.0; k];
    for (soft, sims) in rows.iter().zip(neighbors.similarities.chunks_exact(k)) {
        for (p, &s) in penalty.iter_mut().zip(sims) {
            *p += (s as f64 * inv_tau - soft.max).exp() / soft.sum;
        }
    }
    penalty.iter_mut().for_each(|p| *p /= n as f64);
    let entropy = rows.iter().map(|r| r.entropy).sum::<f64>() / n as f64;
    Ok(PenaltyProfile {
        temperature: tau,
        relative_penalty: penalty,
        entropy,
        effective_negatives: entropy.exp(),
    })
}
