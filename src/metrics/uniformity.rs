//! Uniformity (Wang & Isola, ICML 2020):
//! L_u = log( mean_{i≠j} exp(−t‖z_i − z_j‖²) ), with ‖z_i − z_j‖² = 2 − 2 s_ij
//! for L2-normalised rows.
//!
//! Exact: all N(N−1)/2 distinct pairs through blocked Gram matrices (BLAS
//! sgemm, float32 products) over the upper triangle, with the exponential
//! fused into a running log-sum-exp in float64; rows of a block in parallel.
//! Memory is O(block × N), never N × N.
//!
//! Sampled: m seeded random distinct pairs, the log of their mean, and the
//! delta-method standard error sd(e) / (√m · mean(e)).

use rayon::prelude::*;

use super::{dot, Matrix};
use crate::blas;
use crate::cancel::Stop;
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// How a uniformity value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    /// Every distinct pair.
    Exact,
    /// Random distinct pairs.
    Sampled {
        /// Pairs drawn.
        pairs: u64,
        /// Seed of the draw.
        seed: u64,
    },
}

impl Estimator {
    /// "exact" or "sampled".
    pub fn as_str(&self) -> &'static str {
        match self {
            Estimator::Exact => "exact",
            Estimator::Sampled { .. } => "sampled",
        }
    }
}

/// A uniformity loss with how it was estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uniformity {
    /// L_u (≤ 0); `uniformity` is −L_u.
    pub loss: f64,
    /// Exact or sampled.
    pub estimator: Estimator,
    /// Standard error of a sampled loss (0 when exact).
    pub stderr: f64,
    /// Pairs the value averages over.
    pub pairs: u64,
}

/// Settings of [`uniformity`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UniformityOptions {
    /// t of the Gaussian potential (2 by default).
    pub t: f64,
    /// Above this many rows the sampled estimator is used.
    pub exact_max_rows: usize,
    /// Pairs drawn by the sampled estimator.
    pub samples: u64,
    /// Seed of the sampled estimator.
    pub seed: u64,
}

impl Default for UniformityOptions {
    fn default() -> Self {
        Self {
            t: 2.0,
            exact_max_rows: 50_000,
            samples: 1_000_000,
            seed: 0,
        }
    }
}

/// Uniformity of L2-normalised rows: exact up to `exact_max_rows`, sampled
/// above; `stop` is checked once per Gram block or chunk of pairs.
pub fn uniformity(z: &Matrix, opts: &UniformityOptions, stop: &Stop) -> Result<Uniformity> {
    if z.rows() <= opts.exact_max_rows {
        exact(z, opts.t, stop)
    } else {
        sampled(z, opts.t, opts.samples, opts.seed, stop)
    }
}

fn check(z: &Matrix, t: f64) -> Result<()> {
    if z.rows() < 2 {
        return Err(Error::InvalidArgument(format!(
            "uniformity needs at least two embeddings, got {}",
            z.rows()
        )));
    }
    if !(t.is_finite() && t > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "uniformity_t must be > 0, got {t}"
        )));
    }
    Ok(())
}

/// A log-sum-exp accumulator: the value is max + ln(sum).
#[derive(Debug, Clone, Copy)]
struct Lse {
    max: f64,
    sum: f64,
}

impl Lse {
    const EMPTY: Lse = Lse {
        max: f64::NEG_INFINITY,
        sum: 0.0,
    };

    fn merge(self, other: Lse) -> Lse {
        if other.sum == 0.0 {
            return self;
        }
        if self.sum == 0.0 {
            return other;
        }
        let max = self.max.max(other.max);
        Lse {
            max,
            sum: self.sum * (self.max - max).exp() + other.sum * (other.max - max).exp(),
        }
    }

    fn value(self) -> f64 {
        self.max + self.sum.ln()
    }
}

/// Log-sum-exp of −t(2 − 2c) over the Gram values `c` of one row.
fn row_lse(row: &[f32], t: f32) -> Lse {
    if row.is_empty() {
        return Lse::EMPTY;
    }
    let best = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let shift = -t * (2.0 - 2.0 * best).max(0.0);
    let sum: f64 = row
        .iter()
        .map(|&c| (-t * (2.0 - 2.0 * c).max(0.0) - shift).exp() as f64)
        .sum();
    Lse {
        max: shift as f64,
        sum,
    }
}

/// Rows per Gram block: the block holds about 8M floats (32 MB).
fn block_rows(n: usize) -> usize {
    (8 * 1024 * 1024 / n.max(1)).clamp(16, 1024)
}

/// Exact uniformity over all distinct pairs.
pub fn uniformity_exact(z: &Matrix, t: f64) -> Result<Uniformity> {
    exact(z, t, &Stop::never())
}

fn exact(z: &Matrix, t: f64, stop: &Stop) -> Result<Uniformity> {
    check(z, t)?;
    let (n, d) = (z.rows(), z.dim());
    let b = block_rows(n);
    let mut gram = vec![0f32; b * n];
    let mut total = Lse::EMPTY;
    let tf = t as f32;
    for r0 in (0..n).step_by(b) {
        stop.check()?;
        stop.advance(r0 as u64, n as u64);
        let rows = b.min(n - r0);
        let cols = n - r0;
        // Block [r0, r0 + rows) × [r0, n): the upper triangle from the diagonal on.
        blas::gemm_abt(
            &z.as_slice()[r0 * d..(r0 + rows) * d],
            &z.as_slice()[r0 * d..],
            rows,
            cols,
            d,
            &mut gram,
        );
        let block = gram[..rows * cols]
            .par_chunks(cols)
            .enumerate()
            .map(|(li, row)| row_lse(&row[li + 1..], tf))
            .reduce(|| Lse::EMPTY, Lse::merge);
        total = total.merge(block);
    }
    stop.advance(n as u64, n as u64);
    let pairs = (n as u64) * (n as u64 - 1) / 2;
    Ok(Uniformity {
        loss: total.value() - (pairs as f64).ln(),
        estimator: Estimator::Exact,
        stderr: 0.0,
        pairs,
    })
}

/// Pairs per parallel chunk of the sampled estimator (each chunk has its own
/// seeded stream, so the result does not depend on the thread count).
const SAMPLE_CHUNK: u64 = 65_536;

/// Sampled uniformity over `pairs` random distinct pairs, seeded.
pub fn uniformity_sampled(z: &Matrix, t: f64, pairs: u64, seed: u64) -> Result<Uniformity> {
    sampled(z, t, pairs, seed, &Stop::never())
}

fn sampled(z: &Matrix, t: f64, pairs: u64, seed: u64, stop: &Stop) -> Result<Uniformity> {
    check(z, t)?;
    if pairs < 2 {
        return Err(Error::InvalidArgument(format!(
            "the sampled uniformity needs at least 2 pairs, got {pairs}"
        )));
    }
    let n = z.rows() as u64;
    let chunks = pairs.div_ceil(SAMPLE_CHUNK);
    let (sum, sum_sq) = (0..chunks)
        .into_par_iter()
        .map(|c| {
            if stop.is_stopped() {
                return (0.0, 0.0);
            }
            let mut rng = SplitMix64::new(seed ^ c.wrapping_mul(0xD1B5_4A32_D192_ED03));
            let count = SAMPLE_CHUNK.min(pairs - c * SAMPLE_CHUNK);
            let (mut s, mut s2) = (0.0f64, 0.0f64);
            for _ in 0..count {
                let i = rng.below(n);
                let mut j = rng.below(n - 1);
                if j >= i {
                    j += 1;
                }
                let sim = dot(z.row(i as usize), z.row(j as usize));
                let e = (-t * (2.0 - 2.0 * sim).max(0.0)).exp();
                s += e;
                s2 += e * e;
            }
            (s, s2)
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    stop.check()?;
    stop.advance(pairs, pairs);
    let m = pairs as f64;
    let mean = sum / m;
    let var = ((sum_sq / m) - mean * mean).max(0.0) * m / (m - 1.0);
    Ok(Uniformity {
        loss: mean.ln(),
        estimator: Estimator::Sampled { pairs, seed },
        stderr: var.sqrt() / (m.sqrt() * mean),
        pairs,
    })
}
