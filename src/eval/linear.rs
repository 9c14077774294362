//! Linear probe: multinomial logistic regression on frozen features,
//! standardised with the train split's mean and standard deviation, with an
//! L2 penalty, fitted by L-BFGS. The objective is scikit-learn's
//! (LogisticRegression, lbfgs): mean cross-entropy + ‖W‖² / (2 C n), the
//! intercept unpenalised; convergence when the largest gradient component
//! is at most `tol`. Matrix products go through BLAS; the fit is
//! deterministic.

use super::{check_pair, in_top};
use crate::blas::dgemm;
use crate::cancel::Stop;
use crate::error::{Error, Result};
use crate::metrics::Matrix;

/// Settings of the probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearOptions {
    /// Inverse L2 strength C.
    pub c: f64,
    /// Most L-BFGS iterations.
    pub max_iter: usize,
    /// Gradient tolerance (max-norm).
    pub tol: f64,
}

impl Default for LinearOptions {
    fn default() -> Self {
        Self {
            c: 1.0,
            max_iter: 1000,
            tol: 1e-4,
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
    /// Train top-1 accuracy.
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
}

/// Standardises columns with the train statistics (population std; a
/// constant column keeps scale 1, as scikit-learn's StandardScaler).
fn standardize(train: &Matrix, test: &Matrix) -> (Vec<f64>, Vec<f64>) {
    let (n, p) = (train.rows(), train.dim());
    let mut mean = vec![0.0; p];
    for row in train.as_slice().chunks_exact(p) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0; p];
    for row in train.as_slice().chunks_exact(p) {
        var.iter_mut()
            .zip(row.iter().zip(&mean))
            .for_each(|(s, (&v, m))| *s += (v as f64 - m).powi(2));
    }
    let scale: Vec<f64> = var
        .iter()
        .map(|s| {
            let sd = (s / n as f64).sqrt();
            if sd > 1e-12 {
                sd
            } else {
                1.0
            }
        })
        .collect();
    let apply = |x: &Matrix| -> Vec<f64> {
        x.as_slice()
            .chunks_exact(p)
            .flat_map(|row| {
                row.iter()
                    .zip(mean.iter().zip(&scale))
                    .map(|(&v, (m, s))| (v as f64 - m) / s)
            })
            .collect()
    };
    (apply(train), apply(test))
}

/// The multinomial objective on standardised data X [n, p] with classes y.
struct Problem<'a> {
    x: &'a [f64],
    y: &'a [usize],
    n: usize,
    p: usize,
    k: usize,
    c: f64,
}

impl Problem<'_> {
    /// Parameters: W [k, p] row-major, then b [k].
    fn dim(&self) -> usize {
        self.k * self.p + self.k
    }

    /// logits [n, k] = X Wᵀ + b.
    fn logits(&self, x: &[f64], rows: usize, theta: &[f64]) -> Vec<f64> {
        let (p, k) = (self.p, self.k);
        let mut z = vec![0.0; rows * k];
        dgemm(x, false, &theta[..k * p], true, rows, k, p, &mut z);
        let b = &theta[k * p..];
        z.chunks_exact_mut(k)
            .for_each(|row| row.iter_mut().zip(b).for_each(|(v, bj)| *v += bj));
        z
    }

    /// Objective and gradient at theta.
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (n, p, k) = (self.n, self.p, self.k);
        let mut z = self.logits(self.x, n, theta);
        let mut loss = 0.0;
        // z becomes (softmax − onehot) / n.
        for (row, &yi) in z.chunks_exact_mut(k).zip(self.y) {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
            let lse = max + sum.ln();
            loss += lse - row[yi];
            row.iter_mut()
                .for_each(|v| *v = (*v - lse).exp() / n as f64);
            row[yi] -= 1.0 / n as f64;
        }
        let w = &theta[..k * p];
        let reg = 1.0 / (self.c * n as f64);
        // ∇W = Gᵀ X + reg W; ∇b = column sums of G.
        dgemm(&z, true, self.x, false, k, p, n, &mut grad[..k * p]);
        grad[..k * p]
            .iter_mut()
            .zip(w)
            .for_each(|(g, wi)| *g += reg * wi);
        let gb = &mut grad[k * p..];
        gb.iter_mut().for_each(|g| *g = 0.0);
        for row in z.chunks_exact(k) {
            gb.iter_mut().zip(row).for_each(|(g, v)| *g += v);
        }
        loss / n as f64 + 0.5 * reg * w.iter().map(|v| v * v).sum::<f64>()
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

/// Fits the probe on `train` and reports accuracy on `test` (raw features;
/// standardised here with the train statistics); `stop` is checked at every
/// L-BFGS iteration.
pub fn linear_probe(
    train: &Matrix,
    train_y: &[i64],
    test: &Matrix,
    test_y: &[i64],
    opts: &LinearOptions,
    stop: &Stop,
) -> Result<LinearResult> {
    check_pair(train, train_y, test, test_y)?;
    if !(opts.c.is_finite() && opts.c > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "linear_c must be > 0, got {}",
            opts.c
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
    let y: Vec<usize> = train_y
        .iter()
        .map(|l| classes.binary_search(l).expect("train label"))
        .collect();
    let (xtr, xte) = standardize(train, test);
    let problem = Problem {
        x: &xtr,
        y: &y,
        n: train.rows(),
        p: train.dim(),
        k: classes.len(),
        c: opts.c,
    };
    let (theta, objective, iterations, converged) = lbfgs(&problem, opts.max_iter, opts.tol, stop)?;
    let hits = |x: &[f64], labels: &[i64], top: usize| -> Vec<bool> {
        let logits = problem.logits(x, labels.len(), &theta);
        logits
            .chunks_exact(classes.len())
            .zip(labels)
            .map(|(row, label)| match classes.binary_search(label) {
                Ok(truth) => in_top(row, truth, top),
                Err(_) => false,
            })
            .collect()
    };
    let accuracy = |x: &[f64], labels: &[i64], top: usize| {
        hits(x, labels, top).iter().filter(|&&h| h).count() as f64 / labels.len() as f64
    };
    let correct = hits(&xte, test_y, 1);
    Ok(LinearResult {
        top1: correct.iter().filter(|&&h| h).count() as f64 / test_y.len() as f64,
        top5: accuracy(&xte, test_y, 5),
        train_top1: accuracy(&xtr, train_y, 1),
        c: opts.c,
        iterations,
        converged,
        objective,
        correct,
    })
}
