//! Benchmark of the uniformity estimators (not a test): ratios against a
//! baseline measured in the same run.
//!
//! 1. Exact uniformity at N = 10,000, d = 128 against one bare sgemm of the
//!    full N × N Gram matrix (the floor).
//! 2. Exact uniformity at N = 50,000.
//! 3. The sampled estimator at N = 1,000,000, and its distance to the exact
//!    value on a 20,000-row check.
//!
//! Run: `cargo bench --bench metrics` (add `-- --quick` to skip N = 50,000
//! and 1,000,000).

mod common;

use common::best_of;
use embedeval::blas;
use embedeval::metrics::{uniformity_exact, uniformity_sampled, Matrix};
use embedeval::rng::SplitMix64;

/// Gaussian rows, L2-normalised, with some cluster structure so that the
/// exponentials are not all alike.
fn embeddings(n: usize, d: usize, seed: u64) -> Matrix {
    let mut rng = SplitMix64::new(seed);
    let centres: Vec<f64> = (0..16 * d).map(|_| rng.normal()).collect();
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        let c = rng.below(16) as usize;
        for k in 0..d {
            data.push((centres[c * d + k] + 1.5 * rng.normal()) as f32);
        }
    }
    Matrix::new(data, d).unwrap().normalized().unwrap()
}

fn main() {
    embedeval::blas::use_processor_kernels();
    let quick = std::env::args().any(|a| a == "--quick");
    let d = 128;

    let n = 10_000;
    let z = embeddings(n, d, 1);
    let mut gram = vec![0f32; n * n];
    let (floor, _) = best_of(3, || {
        blas::gemm_abt(z.as_slice(), z.as_slice(), n, n, d, &mut gram)
    });
    drop(gram);
    let (exact, u) = best_of(3, || uniformity_exact(&z, 2.0).unwrap());
    println!(
        "exact uniformity N={n} d={d}: {:.3} s; bare sgemm of the {n}x{n} Gram: {:.3} s; ratio {:.2} (target <= 2); uniformity {:.6}",
        exact.as_secs_f64(),
        floor.as_secs_f64(),
        exact.as_secs_f64() / floor.as_secs_f64(),
        -u.loss
    );

    let n = 20_000;
    let z = embeddings(n, d, 2);
    let (t_exact, exact) = best_of(1, || uniformity_exact(&z, 2.0).unwrap());
    let (t_sampled, sampled) = best_of(1, || uniformity_sampled(&z, 2.0, 1_000_000, 0).unwrap());
    println!(
        "check N={n}: exact {:.6} ({:.2} s), sampled 1e6 pairs {:.6} ± {:.6} ({:.2} s), |difference| {:.6} (target < 0.01)",
        exact.loss,
        t_exact.as_secs_f64(),
        sampled.loss,
        sampled.stderr,
        t_sampled.as_secs_f64(),
        (exact.loss - sampled.loss).abs()
    );

    if quick {
        return;
    }
    let n = 50_000;
    let z = embeddings(n, d, 3);
    let (t, u) = best_of(1, || uniformity_exact(&z, 2.0).unwrap());
    println!(
        "exact uniformity N={n} d={d}: {:.2} s, {} pairs, uniformity {:.6}",
        t.as_secs_f64(),
        u.pairs,
        -u.loss
    );
    drop(z);

    let n = 1_000_000;
    let z = embeddings(n, d, 4);
    let (t, u) = best_of(1, || uniformity_sampled(&z, 2.0, 1_000_000, 0).unwrap());
    println!(
        "sampled uniformity N={n} d={d}: {:.2} s for {} pairs, uniformity {:.6} ± {:.6}",
        t.as_secs_f64(),
        u.pairs,
        -u.loss,
        u.stderr
    );
}
