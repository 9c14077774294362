//! Linear probe: multinomial logistic regression on frozen features,
//! standardised with the fitted rows' mean and standard deviation, with an
//! L2 penalty, fitted by L-BFGS. The objective is scikit-learn's
//! (LogisticRegression, lbfgs): mean cross-entropy + ‖W‖² / (2 C n), the
//! intercept unpenalised; convergence when the largest gradient component
//! is at most `tol`. Matrix products go through BLAS; the fit is
//! deterministic.
//!
//! Memory stays bounded whatever the number of rows: the objective runs
//! over tiles of rows (standardised float64 features and logits of one tile
//! at a time, [`TILE_BYTES`]), reading the caller's float32 rows in place;
//! only a train set whose standardised copy fits [`CACHE_BYTES`] is
//! standardised once and kept. The probe can be fitted on a stratified
//! fraction of the train rows ([`stratified_rows`]), the semi-supervised
//! protocol of SimCLR (Chen et al. 2020, Table 7) and BYOL (Grill et al.
//! 2020, Table 2).

use std::time::Instant;

use rayon::prelude::*;

use super::{check_pair, in_top};
use crate::blas::dgemm;
use crate::cancel::Stop;
use crate::error::{Error, Result};
use crate::metrics::Matrix;
use crate::rng::SplitMix64;

/// Bytes of one tile's standardised features and logits (float64).
pub const TILE_BYTES: usize = 64 << 20;
/// A train set whose standardised float64 copy is at most this size is
/// standardised once and kept for the whole fit; a larger one is
/// standardised tile by tile at each evaluation of the objective.
pub const CACHE_BYTES: usize = 256 << 20;

/// Settings of the probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearOptions {
    /// Inverse L2 strength C.
    pub c: f64,
    /// Most L-BFGS iterations.
    pub max_iter: usize,
    /// Gradient tolerance (max-norm).
    pub tol: f64,
    /// Fraction of the train rows fitted on, in (0, 1] ([`stratified_rows`]).
    pub train_fraction: f64,
    /// Seed of the train subset.
    pub train_seed: u64,
}

impl Default for LinearOptions {
    fn default() -> Self {
        Self {
            c: 1.0,
            max_iter: 1000,
            tol: 1e-4,
            train_fraction: 1.0,
            train_seed: 0,
        }
    }
}

/// What the probe measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearResult {
    /// Test top-1 accuracy.
    pub top1: f64,
    /// Test top-5 accuracy.
    pub top5: f64,
    /// Train top-1 accuracy (on the rows fitted).
    pub train_top1: f64,
    /// C used.
    pub c: f64,
    /// L-BFGS iterations run.
    pub iterations: usize,
    /// Whether the gradient reached the tolerance within max_iter.
    pub converged: bool,
    /// Final objective value.
    pub objective: f64,
    /// Per test row, whether its best class is its label.
    pub correct: Vec<bool>,
    /// Train rows fitted on.
    pub train_rows: usize,
    /// Seconds per L-BFGS iteration.
    pub seconds_per_iteration: f64,
}

/// The key that orders a row within its class for the subset of `seed`:
/// splitmix64(splitmix64(seed) XOR row).
fn subset_key(seed_mix: u64, row: usize) -> u64 {
    SplitMix64::new(seed_mix ^ row as u64).next_u64()
}

/// The train rows of a stratified `fraction` of `labels`, ascending: each
/// class keeps max(1, ⌊fraction × its rows + 0.5⌋) rows, those with the
/// smallest [`subset_key`] (ties: the smaller row). All rows when
/// `fraction` is 1. Any client can rebuild the subset from the rule.
pub fn stratified_rows(labels: &[i64], fraction: f64, seed: u64) -> Vec<usize> {
    if fraction >= 1.0 {
        return (0..labels.len()).collect();
    }
    let seed_mix = SplitMix64::new(seed).next_u64();
    let mut by_class: std::collections::BTreeMap<i64, Vec<(u64, usize)>> = Default::default();
    for (row, &label) in labels.iter().enumerate() {
        by_class
            .entry(label)
            .or_default()
            .push((subset_key(seed_mix, row), row));
    }
    let mut rows: Vec<usize> = by_class
        .into_values()
        .flat_map(|mut members| {
            let keep = ((fraction * members.len() as f64 + 0.5).floor() as usize).max(1);
            members.sort_unstable();
            members.truncate(keep);
            members.into_iter().map(|(_, row)| row)
        })
        .collect();
    rows.sort_unstable();
    rows
}

/// Column means and scales of the rows `idx` of `x` (population std; a
/// constant column keeps scale 1, as scikit-learn's StandardScaler).
#[derive(Debug, Clone)]
struct Standardizer {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl Standardizer {
    fn fit(x: &Matrix, idx: &[usize]) -> Self {
        let p = x.dim();
        let n = idx.len() as f64;
        let mut mean = vec![0.0; p];
        for &i in idx {
            mean.iter_mut()
                .zip(x.row(i))
                .for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; p];
        for &i in idx {
            var.iter_mut()
                .zip(x.row(i).iter().zip(&mean))
                .for_each(|(s, (&v, m))| *s += (v as f64 - m).powi(2));
        }
        let scale = var
            .iter()
            .map(|s| {
                let sd = (s / n).sqrt();
                if sd > 1e-12 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Self { mean, scale }
    }

    /// Writes the standardised rows `idx` of `x` into `out`, row-major.
    fn apply(&self, x: &Matrix, idx: &[usize], out: &mut [f64]) {
        let p = x.dim();
        out[..idx.len() * p]
            .par_chunks_mut(p)
            .zip(idx.par_iter())
            .for_each(|(dst, &i)| {
                dst.iter_mut()
                    .zip(x.row(i).iter().zip(self.mean.iter().zip(&self.scale)))
                    .for_each(|(d, (&v, (m, s)))| *d = (v as f64 - m) / s);
            });
    }
}

/// Standardised rows of a matrix, read a tile at a time: from a copy made
/// once when it fits [`CACHE_BYTES`], else standardised on the fly.
struct Rows<'a> {
    x: &'a Matrix,
    idx: Vec<usize>,
    std: &'a Standardizer,
    cached: Option<Vec<f64>>,
    tile: usize,
}

/// Tile and cache sizes of the probe ([`TILE_BYTES`], [`CACHE_BYTES`]).
#[derive(Debug, Clone, Copy)]
struct Limits {
    tile_bytes: usize,
    cache_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tile_bytes: TILE_BYTES,
            cache_bytes: CACHE_BYTES,
        }
    }
}

impl<'a> Rows<'a> {
    fn new(
        x: &'a Matrix,
        idx: Vec<usize>,
        std: &'a Standardizer,
        classes: usize,
        limits: Limits,
    ) -> Self {
        let p = x.dim();
        let tile = (limits.tile_bytes / ((p + classes) * 8)).max(1);
        let cached = (idx.len() * p * 8 <= limits.cache_bytes).then(|| {
            let mut out = vec![0.0; idx.len() * p];
            std.apply(x, &idx, &mut out);
            out
        });
        Self {
            x,
            idx,
            std,
            cached,
            tile,
        }
    }

    fn len(&self) -> usize {
        self.idx.len()
    }

    /// Calls `f(first row, standardised rows)` for each tile in order.
    fn for_each_tile(&self, mut f: impl FnMut(usize, &[f64])) {
        let p = self.x.dim();
        let mut buf = Vec::new();
        for start in (0..self.len()).step_by(self.tile) {
            let end = (start + self.tile).min(self.len());
            match &self.cached {
                Some(all) => f(start, &all[start * p..end * p]),
                None => {
                    buf.resize((end - start) * p, 0.0);
                    self.std.apply(self.x, &self.idx[start..end], &mut buf);
                    f(start, &buf);
                }
            }
        }
    }
}

/// The multinomial objective on the standardised rows with classes y.
struct Problem<'a> {
    rows: &'a Rows<'a>,
    y: &'a [usize],
    p: usize,
    k: usize,
    c: f64,
}

impl Problem<'_> {
    /// Parameters: W [k, p] row-major, then b [k].
    fn dim(&self) -> usize {
        self.k * self.p + self.k
    }

    /// logits [rows, k] = X Wᵀ + b.
    fn logits(&self, x: &[f64], rows: usize, theta: &[f64]) -> Vec<f64> {
        let (p, k) = (self.p, self.k);
        let mut z = vec![0.0; rows * k];
        dgemm(x, false, &theta[..k * p], true, rows, k, p, &mut z);
        let b = &theta[k * p..];
        z.chunks_exact_mut(k)
            .for_each(|row| row.iter_mut().zip(b).for_each(|(v, bj)| *v += bj));
        z
    }

    /// Objective and gradient at theta, a tile of rows at a time.
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (n, p, k) = (self.rows.len(), self.p, self.k);
        let mut loss = 0.0;
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut tile_grad = vec![0.0; k * p];
        self.rows.for_each_tile(|start, x| {
            let rows = x.len() / p;
            let mut z = self.logits(x, rows, theta);
            // z becomes (softmax − onehot) / n.
            for (row, &yi) in z.chunks_exact_mut(k).zip(&self.y[start..start + rows]) {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
                let lse = max + sum.ln();
                loss += lse - row[yi];
                row.iter_mut()
                    .for_each(|v| *v = (*v - lse).exp() / n as f64);
                row[yi] -= 1.0 / n as f64;
            }
            // ∇W += Gᵀ X; ∇b += column sums of G.
            dgemm(&z, true, x, false, k, p, rows, &mut tile_grad);
            grad[..k * p]
                .iter_mut()
                .zip(&tile_grad)
                .for_each(|(g, t)| *g += t);
            let gb = &mut grad[k * p..];
            for row in z.chunks_exact(k) {
                gb.iter_mut().zip(row).for_each(|(g, v)| *g += v);
            }
        });
        let w = &theta[..k * p];
        let reg = 1.0 / (self.c * n as f64);
        grad[..k * p]
            .iter_mut()
            .zip(w)
            .for_each(|(g, wi)| *g += reg * wi);
        loss / n as f64 + 0.5 * reg * w.iter().map(|v| v * v).sum::<f64>()
    }

    /// For each row of `rows`, whether its label (`None`: a class the fit
    /// never saw) is among its `top` best classes.
    fn hits(
        &self,
        rows: &Rows<'_>,
        truth: &[Option<usize>],
        top: usize,
        theta: &[f64],
    ) -> Vec<bool> {
        let mut out = Vec::with_capacity(rows.len());
        rows.for_each_tile(|start, x| {
            let n = x.len() / self.p;
            let logits = self.logits(x, n, theta);
            out.extend(
                logits
                    .chunks_exact(self.k)
                    .zip(&truth[start..start + n])
                    .map(|(row, t)| t.is_some_and(|t| in_top(row, t, top))),
            );
        });
        out
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// L-BFGS (Nocedal & Wright, Alg. 7.4/7.5) with memory 10 and a backtracking
/// Armijo line search; returns (theta, objective, iterations, converged).
/// L-BFGS on the probe's objective; `stop` is checked before every
/// evaluation of the objective.
fn lbfgs(
    problem: &Problem<'_>,
    max_iter: usize,
    tol: f64,
    stop: &Stop,
) -> Result<(Vec<f64>, f64, usize, bool)> {
    const MEMORY: usize = 10;
    let dim = problem.dim();
    let mut theta = vec![0.0; dim];
    let mut grad = vec![0.0; dim];
    let mut f = problem.eval(&theta, &mut grad);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    let mut new_theta = vec![0.0; dim];
    let mut new_grad = vec![0.0; dim];
    for iter in 0..max_iter {
        stop.check()?;
        stop.advance(iter as u64, max_iter as u64);
        if max_abs(&grad) <= tol {
            stop.advance(max_iter as u64, max_iter as u64);
            return Ok((theta, f, iter, true));
        }
        // Two-loop recursion: direction = −H ∇f.
        let mut q = grad.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        let gamma = history
            .back()
            .map_or(1.0 / max_abs(&grad).max(1.0), |(s, y, _)| {
                dot(s, y) / dot(y, y)
            });
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let direction: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&grad, &direction);
        let direction = if slope >= 0.0 {
            // Not a descent direction (numerical trouble): restart on the gradient.
            history.clear();
            slope = -dot(&grad, &grad);
            grad.iter().map(|v| -v).collect()
        } else {
            direction
        };
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..60 {
            stop.check()?;
            new_theta
                .iter_mut()
                .zip(theta.iter().zip(&direction))
                .for_each(|(nt, (t, d))| *nt = t + step * d);
            let nf = problem.eval(&new_theta, &mut new_grad);
            if nf <= f + 1e-4 * step * slope {
                let s: Vec<f64> = new_theta.iter().zip(&theta).map(|(a, b)| a - b).collect();
                let y: Vec<f64> = new_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
                let sy = dot(&s, &y);
                if sy > 1e-12 {
                    if history.len() == MEMORY {
                        history.pop_front();
                    }
                    history.push_back((s, y, 1.0 / sy));
                }
                std::mem::swap(&mut theta, &mut new_theta);
                std::mem::swap(&mut grad, &mut new_grad);
                let improvement = f - nf;
                f = nf;
                accepted = true;
                // scipy's factr-style stop: no relative progress left.
                if improvement <= 64.0 * f64::EPSILON * f.abs().max(1.0) {
                    return Ok((theta, f, iter + 1, max_abs(&grad) <= tol));
                }
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            return Ok((theta, f, iter + 1, max_abs(&grad) <= tol));
        }
    }
    let converged = max_abs(&grad) <= tol;
    Ok((theta, f, max_iter, converged))
}

/// Fits the probe on `train` (or its [`LinearOptions::train_fraction`]
/// subset) and reports accuracy on `test` (raw features; standardised here
/// with the fitted rows' statistics); `stop` is checked at every L-BFGS
/// iteration.
pub fn linear_probe(
    train: &Matrix,
    train_y: &[i64],
    test: &Matrix,
    test_y: &[i64],
    opts: &LinearOptions,
    stop: &Stop,
) -> Result<LinearResult> {
    fit(train, train_y, test, test_y, opts, stop, Limits::default())
}

/// [`linear_probe`] with the given tile and cache sizes.
fn fit(
    train: &Matrix,
    train_y: &[i64],
    test: &Matrix,
    test_y: &[i64],
    opts: &LinearOptions,
    stop: &Stop,
    limits: Limits,
) -> Result<LinearResult> {
    check_pair(train, train_y, test, test_y)?;
    if !(opts.c.is_finite() && opts.c > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "linear_c must be > 0, got {}",
            opts.c
        )));
    }
    let f = opts.train_fraction;
    if !(f.is_finite() && f > 0.0 && f <= 1.0) {
        return Err(Error::InvalidArgument(format!(
            "linear_train_fraction must be in (0, 1], got {f}"
        )));
    }
    let mut classes: Vec<i64> = train_y.to_vec();
    classes.sort_unstable();
    classes.dedup();
    if classes.len() < 2 {
        return Err(Error::InvalidArgument(format!(
            "the linear probe needs at least two classes in the train split, found {:?}",
            classes
        )));
    }
    let fitted = stratified_rows(train_y, f, opts.train_seed);
    let y: Vec<usize> = fitted
        .iter()
        .map(|&i| classes.binary_search(&train_y[i]).expect("train label"))
        .collect();
    let std = Standardizer::fit(train, &fitted);
    let (p, k) = (train.dim(), classes.len());
    let share = |hits: &[bool]| hits.iter().filter(|&&h| h).count() as f64 / hits.len() as f64;
    // The train rows' copy (when kept) is freed before the test rows'.
    let (theta, objective, iterations, converged, train_top1, n_fitted, seconds_per_iteration) = {
        let train_rows = Rows::new(train, fitted, &std, k, limits);
        let problem = Problem {
            rows: &train_rows,
            y: &y,
            p,
            k,
            c: opts.c,
        };
        let start = Instant::now();
        let (theta, objective, iterations, converged) =
            lbfgs(&problem, opts.max_iter, opts.tol, stop)?;
        let per_iteration = start.elapsed().as_secs_f64() / iterations.max(1) as f64;
        let truth: Vec<Option<usize>> = y.iter().map(|&c| Some(c)).collect();
        let train_top1 = share(&problem.hits(&train_rows, &truth, 1, &theta));
        let n = train_rows.len();
        (
            theta,
            objective,
            iterations,
            converged,
            train_top1,
            n,
            per_iteration,
        )
    };
    let test_rows = Rows::new(test, (0..test.rows()).collect(), &std, k, limits);
    let scorer = Problem {
        rows: &test_rows,
        y: &[],
        p,
        k,
        c: opts.c,
    };
    let test_truth: Vec<Option<usize>> = test_y
        .iter()
        .map(|l| classes.binary_search(l).ok())
        .collect();
    let correct = scorer.hits(&test_rows, &test_truth, 1, &theta);
    let top5 = share(&scorer.hits(&test_rows, &test_truth, 5, &theta));
    Ok(LinearResult {
        top1: share(&correct),
        top5,
        train_top1,
        c: opts.c,
        iterations,
        converged,
        objective,
        correct,
        train_rows: n_fitted,
        seconds_per_iteration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{load, matrix};

    #[test]
    fn the_stratified_subset_keeps_each_class_share_by_the_published_rule() {
        let labels: Vec<i64> = (0..1000).map(|i| [3, 1, 1, 7][i % 4]).collect();
        let rows = stratified_rows(&labels, 0.1, 5);
        // Class 1 has 500 rows (50 kept); classes 3 and 7 have 250 (25 each).
        let count = |c: i64| rows.iter().filter(|&&r| labels[r] == c).count();
        assert_eq!((count(1), count(3), count(7)), (50, 25, 25));
        assert!(
            rows.windows(2).all(|w| w[0] < w[1]),
            "ascending, no repeats"
        );
        // The rule: per class the rows with the smallest keys.
        let mix = SplitMix64::new(5).next_u64();
        let mut class3: Vec<(u64, usize)> = (0..1000)
            .filter(|&r| labels[r] == 3)
            .map(|r| (subset_key(mix, r), r))
            .collect();
        class3.sort_unstable();
        let mut want: Vec<usize> = class3[..25].iter().map(|&(_, r)| r).collect();
        want.sort_unstable();
        let got: Vec<usize> = rows.iter().copied().filter(|&r| labels[r] == 3).collect();
        assert_eq!(got, want);
        // Another seed, another subset; a tiny fraction keeps one row per class.
        assert_ne!(stratified_rows(&labels, 0.1, 6), rows);
        assert_eq!(stratified_rows(&labels, 1e-6, 0).len(), 3);
        assert_eq!(
            stratified_rows(&labels, 1.0, 0),
            (0..1000).collect::<Vec<_>>()
        );
    }

    #[test]
    fn tiles_and_the_kept_copy_give_the_same_fit() {
        let train = matrix("clustered10", "train_x");
        let train_y = load("clustered10", "train_y").to_i64().unwrap();
        let test = matrix("clustered10", "test_x");
        let test_y = load("clustered10", "test_y").to_i64().unwrap();
        let opts = LinearOptions::default();
        let run = |limits| {
            fit(
                &train,
                &train_y,
                &test,
                &test_y,
                &opts,
                &Stop::never(),
                limits,
            )
            .unwrap()
        };
        let kept = run(Limits::default());
        // Tiles of 7 rows, nothing kept: every evaluation standardises anew.
        let tiled = run(Limits {
            tile_bytes: 7 * (train.dim() + 10) * 8,
            cache_bytes: 0,
        });
        assert_eq!(kept.correct, tiled.correct);
        assert_eq!(kept.iterations, tiled.iterations);
        assert!((kept.objective - tiled.objective).abs() < 1e-10 * kept.objective.abs());
        assert_eq!(kept.train_rows, train.rows());
    }

    #[test]
    fn a_fraction_is_the_probe_fitted_on_those_rows() {
        let train = matrix("clustered10", "train_x");
        let train_y = load("clustered10", "train_y").to_i64().unwrap();
        let test = matrix("clustered10", "test_x");
        let test_y = load("clustered10", "test_y").to_i64().unwrap();
        let opts = LinearOptions {
            train_fraction: 0.25,
            train_seed: 3,
            ..Default::default()
        };
        let got = linear_probe(&train, &train_y, &test, &test_y, &opts, &Stop::never()).unwrap();
        let rows = stratified_rows(&train_y, 0.25, 3);
        let sub: Vec<f32> = rows.iter().flat_map(|&r| train.row(r).to_vec()).collect();
        let sub = Matrix::new(sub, train.dim()).unwrap();
        let sub_y: Vec<i64> = rows.iter().map(|&r| train_y[r]).collect();
        let whole = LinearOptions::default();
        let want = linear_probe(&sub, &sub_y, &test, &test_y, &whole, &Stop::never()).unwrap();
        assert_eq!(got.train_rows, rows.len());
        assert_eq!(got.correct, want.correct);
        assert_eq!(got.objective, want.objective);
        assert!(got.seconds_per_iteration > 0.0);
    }
}
