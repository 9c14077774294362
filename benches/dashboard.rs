//! Benchmark of the web dashboard (not a test): a comparison of 100 models
//! served as a page by a real server (its table, its seven figures with a
//! tooltip per mark), the lists, and the t-SNE of 5,000 × 128 rows.
//! Budgets (issue "See the sweep"): a page in under 200 ms and under 1 MB,
//! the t-SNE in under 15 s, then kept.
//!
//! Run: `cargo bench --bench dashboard` (release build).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use embedeval::database::ReportStore;
use embedeval::domain::{KnnResult, LinearResult, MetricSpec, PerClass, Report, Status, Timestamp};
use embedeval::rng::SplitMix64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Models in the comparison.
const MODELS: usize = 100;
/// Classes of each report's per-class part.
const CLASSES: usize = 10;

/// A plausible completed report of model `i` of a sweep over τ and seeds.
fn report(i: usize, rng: &mut SplitMix64) -> Report {
    let tau = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 5.0][i % 10];
    let seed = i / 10;
    let u = |lo: f64, hi: f64, rng: &mut SplitMix64| lo + (hi - lo) * rng.unit();
    let mut tags = std::collections::BTreeMap::new();
    tags.insert("seed".to_string(), seed.to_string());
    tags.insert("arch".to_string(), "resnet18".to_string());
    Report {
        id: format!("{:032x}", 0xbe7c_0000u64 + i as u64),
        model: format!("infonce-t{tau}-s{seed}"),
        dataset: "digits".into(),
        dataset_id: "d".repeat(64),
        temperature: tau,
        loss: "infonce".into(),
        num_test: 10_000,
        num_train: 50_000,
        embedding_dim: 128,
        uniformity: Some(3.8 - tau.ln().abs() * 0.1 + u(0.0, 0.05, rng)),
        uniformity_loss: Some(-3.8),
        alignment: Some(u(0.1, 0.6, rng)),
        tolerance: Some((0.1 + 0.3 * tau).min(0.95) + u(0.0, 0.02, rng)),
        positive_similarity: Some(u(0.6, 0.9, rng)),
        nearest_negative_similarity: (0..10).map(|k| 0.8 - 0.02 * k as f64).collect(),
        relative_penalty: (0..10).map(|k| 0.3 / (k + 1) as f64).collect(),
        penalty_entropy: Some(1.2),
        effective_negatives: Some(40.0),
        effective_rank: Some(u(20.0, 90.0, rng)),
        knn: Some(KnnResult {
            top1: u(0.8, 0.92, rng),
            top5: 0.99,
            k: 200,
            temperature: 0.07,
            metric: "cosine".into(),
        }),
        linear: Some(LinearResult {
            top1: u(0.82, 0.93, rng),
            top5: 0.99,
            train_top1: 0.95,
            c: 1.0,
            iterations: 100,
            feature_output: "features".into(),
            converged: true,
            train_rows: 50_000,
            seconds_per_iteration: 0.01,
        }),
        spec: Some(MetricSpec::default()),
        created_at: Some(Timestamp::now()),
        status: Status::Completed,
        test_split: "test".into(),
        train_split: "train".into(),
        per_class: Some(PerClass {
            labels: (0..CLASSES as i64).collect(),
            counts: vec![1000; CLASSES],
            tolerance: (0..CLASSES).map(|_| u(0.1, 0.6, rng)).collect(),
            knn_top1: (0..CLASSES).map(|_| u(0.7, 0.95, rng)).collect(),
            linear_top1: (0..CLASSES).map(|_| u(0.7, 0.95, rng)).collect(),
            similarity: (0..CLASSES * CLASSES)
                .map(|_| u(0.0, 0.5, rng) as f32)
                .collect(),
            nearest_negative_classes: (0..CLASSES * CLASSES).map(|_| rng.below(50)).collect(),
            nearest_negative_k: 10,
            names: (0..CLASSES).map(|c| format!("class {c}")).collect(),
            map_at_r: (0..CLASSES).map(|_| u(0.2, 0.6, rng)).collect(),
            r_precision: (0..CLASSES).map(|_| u(0.3, 0.7, rng)).collect(),
        }),
        tags,
        ..Default::default()
    }
}

/// GET `path` (gzip accepted, as browsers ask); the status, the bytes of
/// the body on the wire and the time to the last byte.
async fn get(addr: SocketAddr, path: &str) -> (u16, usize, Duration) {
    let start = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let took = start.elapsed();
    let head = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&raw[9..12]).unwrap().parse().unwrap();
    (status, raw.len() - head - 4, took)
}

fn main() {
    embedeval::blas::use_processor_kernels();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = ReportStore::open(&ReportStore::default_url(dir.path()))
            .await
            .unwrap();
        let mut rng = SplitMix64::new(1);
        let reports: Vec<Report> = (0..MODELS).map(|i| report(i, &mut rng)).collect();
        for r in &reports {
            store.save(r).await.unwrap();
        }
        let ids: Vec<String> = reports.iter().map(|r| r.id.clone()).collect();
        let comparison = "c".repeat(32);
        store
            .save_comparison(&comparison, "digits", 1, &ids, &[])
            .await
            .unwrap();
        store.close().await;

        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut config = embedeval::ServeConfig::with_models_dir(root.join("models"));
        config.datasets_dir = root.join("datasets");
        config.data_dir = dir.path().to_path_buf();
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let web = embedeval::server::web::Listening::on(web).unwrap();
        let addr = web.addr;
        tokio::spawn(embedeval::serve_with_dashboard(
            config,
            grpc,
            Some(web),
            std::future::pending(),
        ));
        while get(addr, "/comparisons").await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("dashboard, a comparison of {MODELS} models (best of 10 after a warm-up):");
        for (name, path) in [
            ("comparison page", format!("/comparisons/{comparison}")),
            ("comparisons list", "/comparisons".to_string()),
            ("evaluations list", "/evaluations".to_string()),
            ("a report", format!("/evaluations/{}", ids[0])),
        ] {
            let (status, bytes, _) = get(addr, &path).await;
            assert_eq!(status, 200, "{path}");
            let mut best = Duration::MAX;
            for _ in 0..10 {
                best = best.min(get(addr, &path).await.2);
            }
            println!(
                "  {name:<18} {:>7.1} ms  {:>7.1} KiB gzip   (budget 200 ms, 1024 KiB)",
                best.as_secs_f64() * 1e3,
                bytes as f64 / 1024.0
            );
        }
    });

    // t-SNE of 5,000 × 128 rows in 10 clusters.
    let (n, d) = (5000, 128);
    let mut rng = SplitMix64::new(7);
    let centres: Vec<f64> = (0..10 * d).map(|_| rng.normal()).collect();
    let x: Vec<f32> = (0..n)
        .flat_map(|i| {
            let c = i % 10;
            (0..d)
                .map(|k| (centres[c * d + k] + 0.8 * rng.normal()) as f32)
                .collect::<Vec<_>>()
        })
        .collect();
    let (took, _) = common::best_of(1, || {
        embedeval::report::projection::tsne(&x, n, d, 30.0).unwrap()
    });
    let (pca, _) = common::best_of(3, || embedeval::report::projection::pca(&x, n, d).unwrap());
    println!(
        "projection of {n} x {d}: t-SNE {:.2} s (budget 15 s, one thread), PCA {:.1} ms",
        took.as_secs_f64(),
        pca.as_secs_f64() * 1e3
    );
}
