//! Benchmark (not a test) of what the retrieval metrics (MAP@R, R-Precision,
//! Precision@1, Recall@K) add to the kNN stage when they share its pass over
//! the train split, at 500,000 × 128 (k = 200, T = 0.1) with 1,000 classes
//! (R ≈ 500) and with 10 classes (R ≈ 50,000): in the same run, on the same
//! data, the kNN alone (`knn_classify`, the engine the processor takes) and
//! the kNN with the retrieval metrics (`knn_and_retrieval`), the overhead
//! as their ratio. Also the k-means behind NMI and AMI on the queries.
//!
//!   cargo bench --bench retrieval [-- --small]
//!
//! `--small` runs at a tenth of the bank. Prints the processor and its
//! flags first.

mod common;

use common::best_of;
use embedeval::cancel::Stop;
use embedeval::eval::{
    cluster, knn_and_retrieval, knn_classify, Gallery, KmeansOptions, KnnOptions, RetrievalOptions,
};
use embedeval::metrics::Matrix;
use embedeval::rng::SplitMix64;

/// L2-normalised rows of `classes` overlapping Gaussian clusters.
fn data(n: usize, d: usize, centres: &[f32], classes: usize, seed: u64) -> (Matrix, Vec<i64>) {
    let mut rng = SplitMix64::new(seed);
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let c = rng.below(classes as u64) as usize;
        for k in 0..d {
            x.push(centres[c * d + k] + 4.0 * rng.normal() as f32);
        }
        y.push(c as i64);
    }
    (Matrix::new(x, d).unwrap().normalized().unwrap(), y)
}

fn main() {
    embedeval::blas::use_processor_kernels();
    let small = std::env::args().any(|a| a == "--small");
    let (n, d, queries) = (if small { 50_000 } else { 500_000 }, 128, 2_048);
    println!("processor: {}", common::processor());
    println!("OpenBLAS kernels: {}", embedeval::blas::kernels());
    println!(
        "exact kNN engine: {}",
        embedeval::index::Engine::choose(n, queries, d, 200).name()
    );
    let knn = KnnOptions {
        ks: vec![200],
        temperature: 0.1,
        ..Default::default()
    };
    let opts = RetrievalOptions {
        recall_ks: vec![1, 2, 4, 8],
        gallery: Gallery::Train,
    };
    for classes in [1_000, 10] {
        let mut rng = SplitMix64::new(7);
        let centres: Vec<f32> = (0..classes * d).map(|_| rng.normal() as f32).collect();
        let (train, train_y) = data(n, d, &centres, classes, 1);
        let (test, test_y) = data(queries, d, &centres, classes, 2);
        let stop = Stop::never();
        let (alone, a) = best_of(2, || {
            knn_classify(&train, &train_y, &test, &test_y, &knn, &stop).unwrap()
        });
        let (both, (b, r)) = best_of(2, || {
            knn_and_retrieval(
                Some((&train, &train_y)),
                &test,
                &test_y,
                Some(&knn),
                &opts,
                &stop,
            )
            .unwrap()
        });
        let b = b.unwrap();
        let same = a[0]
            .correct
            .iter()
            .zip(&b[0].correct)
            .filter(|(x, y)| x == y)
            .count();
        println!(
            "{n} x {d}, {queries} queries, {classes} classes (R about {}): kNN alone {:.2} s, \
             kNN + retrieval {:.2} s: overhead {:+.1}%; MAP@R {:.4}, R-Precision {:.4}; \
             kNN top-1 {:.4} and {:.4} ({same} of {queries} votes the same)",
            n / classes,
            alone.as_secs_f64(),
            both.as_secs_f64(),
            100.0 * (both.as_secs_f64() / alone.as_secs_f64() - 1.0),
            r.map_at_r,
            r.r_precision,
            a[0].top1,
            b[0].top1,
        );
        let kmeans = KmeansOptions {
            iterations: 20,
            restarts: 1,
            seed: 1234,
        };
        let (t, c) = best_of(1, || cluster(&test, &test_y, &kmeans, &stop).unwrap());
        println!(
            "  k-means of the {queries} queries into {classes} clusters: {:.2} s (NMI {:.4}, AMI {:.4})",
            t.as_secs_f64(),
            c.nmi,
            c.ami
        );
    }
}
