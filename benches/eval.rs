//! Benchmark of the evaluation protocols (not a test), against Python
//! baselines run on the same data in the same run (bench/baselines.py):
//!
//! 1. Weighted kNN, 10,000 queries against a 50,000-row bank, d = 128,
//!    k = 200: embedeval against faiss-cpu + numpy doing the same vote
//!    vectorised.
//! 2. The linear probe on 20,000 × 128 features, 10 classes: embedeval
//!    against scikit-learn's lbfgs LogisticRegression, time and accuracy.
//!
//! Run through `bench/run` (it makes the Python environment), or with
//! EMBEDEVAL_BENCH_PYTHON pointing at a Python with bench/requirements.txt.

mod common;

use common::best_of;
use std::path::Path;

use embedeval::cancel::Stop;
use embedeval::data::npy::{NpyArray, NpyType};
use embedeval::eval::{knn_classify, linear_probe, KnnOptions, LinearOptions};
use embedeval::index::IndexKind;
use embedeval::metrics::Matrix;
use embedeval::rng::SplitMix64;

/// Clustered Gaussian rows with labels: 10 classes, overlapping clusters.
fn data(
    n: usize,
    d: usize,
    centres: &[f64],
    spread: f64,
    rng: &mut SplitMix64,
) -> (Vec<f32>, Vec<i64>) {
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let c = rng.below(10) as usize;
        for k in 0..d {
            x.push((centres[c * d + k] + spread * rng.normal()) as f32);
        }
        y.push(c as i64);
    }
    (x, y)
}

fn save(dir: &Path, name: &str, x: &[f32], y: &[i64], d: usize) {
    NpyArray::from_f32(vec![y.len(), d], x)
        .write(&dir.join(format!("{name}_x.npy")))
        .unwrap();
    NpyArray {
        dtype: NpyType::I64,
        shape: vec![y.len()],
        data: y.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
    .write(&dir.join(format!("{name}_y.npy")))
    .unwrap();
}

fn normalized(x: Vec<f32>, d: usize) -> Matrix {
    Matrix::new(x, d).unwrap().normalized().unwrap()
}

fn main() {
    embedeval::blas::use_processor_kernels();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let d = 128;
    let mut rng = SplitMix64::new(42);
    let centres: Vec<f64> = (0..10 * d).map(|_| rng.normal()).collect();

    let (ktr, ktr_y) = data(50_000, d, &centres, 2.0, &mut rng);
    let (kte, kte_y) = data(10_000, d, &centres, 2.0, &mut rng);
    let (ktr, kte) = (normalized(ktr, d), normalized(kte, d));
    save(&dir, "knn_train", ktr.as_slice(), &ktr_y, d);
    save(&dir, "knn_test", kte.as_slice(), &kte_y, d);
    let opts = KnnOptions {
        ks: vec![200],
        temperature: 0.1,
        ..Default::default()
    };
    let run =
        |opts: &KnnOptions| knn_classify(&ktr, &ktr_y, &kte, &kte_y, opts, &Stop::never()).unwrap();
    let (t_knn, knn) = best_of(2, || run(&opts));
    let flat_opts = KnnOptions {
        index: IndexKind::FaissFlat,
        ..opts.clone()
    };
    let (t_flat, flat) = best_of(2, || run(&flat_opts));
    let hnsw_opts = KnnOptions {
        index: IndexKind::Hnsw {
            m: 32,
            ef_search: 256,
        },
        ..opts.clone()
    };
    let (t_hnsw, hnsw) = best_of(1, || run(&hnsw_opts));

    let (ptr, ptr_y) = data(20_000, d, &centres, 3.0, &mut rng);
    let (pte, pte_y) = data(5_000, d, &centres, 3.0, &mut rng);
    let (ptr, pte) = (Matrix::new(ptr, d).unwrap(), Matrix::new(pte, d).unwrap());
    save(&dir, "probe_train", ptr.as_slice(), &ptr_y, d);
    save(&dir, "probe_test", pte.as_slice(), &pte_y, d);
    let (t_probe, probe) = best_of(2, || {
        linear_probe(
            &ptr,
            &ptr_y,
            &pte,
            &pte_y,
            &LinearOptions::default(),
            &Stop::never(),
        )
        .unwrap()
    });

    println!(
        "embedeval kNN 10000x50000 d=128 k=200: {:.3} s, top1 {:.4}, top5 {:.4}",
        t_knn.as_secs_f64(),
        knn[0].top1,
        knn[0].top5
    );
    println!(
        "  (same vote on faiss IndexFlatIP as built here: {:.3} s, top1 {:.4}; on faiss HNSW32 ef_search 256: {:.3} s with the index build, top1 {:.4}, recall@200 {:.4})",
        t_flat.as_secs_f64(),
        flat[0].top1,
        t_hnsw.as_secs_f64(),
        hnsw[0].top1,
        hnsw[0].recall.unwrap_or(f64::NAN)
    );
    println!(
        "embedeval linear probe 20000x128, 10 classes: {:.3} s, top1 {:.4}, {} iterations, converged {}",
        t_probe.as_secs_f64(),
        probe.top1,
        probe.iterations,
        probe.converged
    );
    let Some(base) = common::python_baseline("bench/baselines.py", &dir) else {
        println!("EMBEDEVAL_BENCH_PYTHON is not set: no baselines (use bench/run)");
        return;
    };
    let f = |k: &str| base[k].as_f64().unwrap();
    println!(
        "faiss-cpu {} + numpy kNN: {:.3} s, top1 {:.4}, top5 {:.4}; speed ratio (python / embedeval) {:.2} (target >= 1)",
        base["faiss"],
        f("knn_seconds"),
        f("knn_top1"),
        f("knn_top5"),
        f("knn_seconds") / t_knn.as_secs_f64()
    );
    println!(
        "scikit-learn lbfgs probe: {:.3} s, top1 {:.4}, {} iterations; speed ratio (sklearn / embedeval) {:.2} (target >= 1); accuracy difference {:.2} points (target <= 0.5)",
        f("probe_seconds"),
        f("probe_top1"),
        base["probe_iterations"],
        f("probe_seconds") / t_probe.as_secs_f64(),
        (probe.top1 - f("probe_top1")).abs() * 100.0
    );
}
