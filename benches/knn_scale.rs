//! Benchmark (not a test) of the exact weighted kNN as the bank grows, at
//! the shapes where it once fell behind faiss (500,000 × 128 with 10,000
//! queries; 200,000 × 2,048 with 2,000 queries; k = 200, T = 0.1), against,
//! in the same run on the same data (bench/knn_scale.py):
//!
//! - one sgemm of the kNN's shape (numpy/OpenBLAS: queries × bankᵀ, in
//!   blocks of queries so that the product fits in memory): the floor;
//! - faiss-cpu's IndexFlatIP search plus the same vote in numpy.
//!
//! It prints the processor (model and the flags that decide the engine),
//! then for each shape a row per exact engine this processor runs (forced
//! through EMBEDEVAL_KNN_ENGINE; the processor's first guess marked) and a
//! last row for `auto`, which by then has measured them all and runs the
//! fastest: each time, the ratios (embedeval / sgemm, faiss / embedeval)
//! and the top-1 of both.
//!
//!   cargo bench --bench knn_scale [-- --small]
//!
//! `--small` runs both shapes at a tenth of the bank (a quick look). Run
//! through `bench/run` (it makes the Python environment), or with
//! EMBEDEVAL_BENCH_PYTHON pointing at a Python with bench/requirements.txt.

mod common;

use std::path::Path;

use common::best_of;
use embedeval::cancel::Stop;
use embedeval::data::npy::{NpyArray, NpyType};
use embedeval::eval::{knn_classify, KnnOptions};
use embedeval::index::{Engine, ENGINE_VARIABLE};
use embedeval::metrics::Matrix;
use embedeval::rng::SplitMix64;

/// L2-normalised clustered rows with labels: `classes` overlapping
/// Gaussian clusters.
fn data(
    n: usize,
    d: usize,
    centres: &[f32],
    classes: usize,
    rng: &mut SplitMix64,
) -> (Matrix, Vec<i64>) {
    // Noise growing with √d keeps the task equally hard at every width
    // (about half the queries right at d = 128).
    let spread = 4.0 * (d as f32 / 128.0).sqrt();
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let c = rng.below(classes as u64) as usize;
        for k in 0..d {
            x.push(centres[c * d + k] + spread * rng.normal() as f32);
        }
        y.push(c as i64);
    }
    (Matrix::new(x, d).unwrap().normalized().unwrap(), y)
}

fn save(dir: &Path, name: &str, x: &Matrix, y: &[i64]) {
    NpyArray::from_f32(vec![y.len(), x.dim()], x.as_slice())
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

fn main() {
    embedeval::blas::use_processor_kernels();
    let small = std::env::args().any(|a| a == "--small");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/knn-scale");
    std::fs::create_dir_all(&dir).unwrap();
    let python = std::env::var_os("EMBEDEVAL_BENCH_PYTHON").is_some();
    let scale = if small { 10 } else { 1 };
    println!("processor: {}", common::processor());
    println!("OpenBLAS kernels: {}", embedeval::blas::kernels());
    println!("| bank | queries | engine | embedeval kNN | one sgemm | faiss-cpu + vote | kNN / sgemm | faiss / kNN | top-1 (ours, faiss) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (n, d, q) in [(500_000, 128, 10_000), (200_000, 2048, 2_000)] {
        let n = n / scale;
        let mut rng = SplitMix64::new(7);
        let classes = 100;
        let centres: Vec<f32> = (0..classes * d).map(|_| rng.normal() as f32).collect();
        let (train, train_y) = data(n, d, &centres, classes, &mut rng);
        let (test, test_y) = data(q, d, &centres, classes, &mut rng);
        let opts = KnnOptions {
            ks: vec![200],
            temperature: 0.1,
            ..Default::default()
        };
        // Each engine forced, then `auto`: by then it has timed every
        // engine on this shape (forced runs are timed too) and runs the
        // fastest, as a server does after its first searches of a shape.
        let first_guess = Engine::choose_with(None, n, q, d, 200);
        let mut ours = Vec::new();
        for engine in Engine::ALL.into_iter().filter(|e| e.available()) {
            // No other thread reads the environment between runs.
            std::env::set_var(ENGINE_VARIABLE, engine.name());
            let (t, knn) = best_of(2, || {
                knn_classify(&train, &train_y, &test, &test_y, &opts, &Stop::never()).unwrap()
            });
            let name = if engine == first_guess {
                format!("{} (first guess)", engine.name())
            } else {
                engine.name().to_string()
            };
            ours.push((name, t.as_secs_f64(), knn[0].top1));
        }
        std::env::remove_var(ENGINE_VARIABLE);
        let (t, knn) = best_of(2, || {
            knn_classify(&train, &train_y, &test, &test_y, &opts, &Stop::never()).unwrap()
        });
        let learned = Engine::choose(n, q.min(4_096), d, 200);
        ours.push((
            format!("auto (measured: {})", learned.name()),
            t.as_secs_f64(),
            knn[0].top1,
        ));
        std::env::remove_var(ENGINE_VARIABLE);
        let (mut sgemm, mut faiss, mut faiss_top1) = (f64::NAN, f64::NAN, f64::NAN);
        if python {
            save(&dir, "train", &train, &train_y);
            save(&dir, "test", &test, &test_y);
            let base = common::python_baseline("bench/knn_scale.py", &dir).unwrap();
            let f = |k: &str| base[k].as_f64().unwrap();
            (sgemm, faiss, faiss_top1) = (f("sgemm_seconds"), f("faiss_seconds"), f("faiss_top1"));
        }
        for (name, t, top1) in ours {
            println!(
                "| {n} × {d} | {q} | {name} | {t:.2} s | {sgemm:.2} s | {faiss:.2} s | {:.2} | {:.2} | {top1:.4}, {faiss_top1:.4} |",
                t / sgemm,
                faiss / t,
            );
        }
    }
    if !python {
        println!("EMBEDEVAL_BENCH_PYTHON is not set: no baselines (use bench/run)");
    }
}
