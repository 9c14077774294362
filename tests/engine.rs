//! The evaluation engine without gRPC: admission and the queue (QUEUED
//! visible, first come first served, RESOURCE_EXHAUSTED beyond), a stop
//! inside each long stage (the slot free and no compute running within 1 s,
//! the report CANCELLED), a deadline, a dropped handle, detach then watch,
//! and shutdown with a runaway stage.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use embedeval::data::npy::{NpyArray, NpyType};

use embedeval::database::ReportStore;
use embedeval::domain::{MetricSpec, Status as EvaluationStatus};
use embedeval::encoder::{Runtime, RuntimeOptions};
use embedeval::jobs::cache::EmbeddingCache;
use embedeval::jobs::{
    Deadline, EmbeddingsJob, Engine, EngineOptions, EvalData, Event, JobHandle, JobSpec, ModelJob,
    Outcome, Settings, SubmitOptions,
};
use embedeval::metrics::Matrix;
use embedeval::registry::{DatasetRegistry, ModelRegistry};
use embedeval::rng::SplitMix64;
use embedeval::Error;
use futures::StreamExt;

/// An engine over a fresh SQLite store and cache.
struct Bench {
    engine: Arc<Engine>,
    dir: tempfile::TempDir,
}

async fn bench(slots: usize, queue: usize) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let store = ReportStore::open(&ReportStore::default_url(dir.path()))
        .await
        .unwrap();
    let cache = EmbeddingCache::new(dir.path().join("cache"), 1 << 30).unwrap();
    let engine = Engine::new(
        Arc::new(store),
        Arc::new(cache),
        EngineOptions {
            slots,
            queue,
            compute_threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    Bench { engine, dir }
}

impl Bench {
    async fn status(&self, id: &str) -> EvaluationStatus {
        let r = self.engine.reports().get(id).await.unwrap();
        r.status
    }

    /// Stops `id` and checks that within 1 s the job recorded CANCELLED,
    /// its slot is free and no compute task of it runs.
    async fn cancel_within_a_second(&self, id: &str, what: &str) {
        let started = Instant::now();
        let status = self.engine.cancel(id).await.unwrap();
        let took = started.elapsed();
        assert_eq!(status, EvaluationStatus::Cancelled, "{what}");
        assert!(took < Duration::from_secs(1), "{what}: {took:?} to stop");
        assert_eq!(self.engine.scheduler().running(), 0, "{what}: slot held");
        // The compute task answers as soon as its loop sees the stop.
        wait_for(|| self.engine.active_compute() == 0, Duration::from_secs(1)).await;
        eprintln!("{what}: stopped in {took:?}");
    }
}

async fn wait_for(mut ok: impl FnMut() -> bool, within: Duration) {
    let until = Instant::now() + within;
    while !ok() {
        assert!(
            Instant::now() < until,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Rows of seeded Gaussian values.
fn gaussian(n: usize, d: usize, seed: u64) -> Arc<Matrix> {
    let mut rng = SplitMix64::new(seed);
    let values = (0..n * d).map(|_| rng.normal() as f32).collect();
    Arc::new(Matrix::new(values, d).unwrap())
}

fn labels(n: usize, classes: i64) -> Vec<i64> {
    (0..n as i64).map(|i| i % classes).collect()
}

/// The settings that compute `stage` alone, as the engine takes them.
fn only(stage: &str) -> MetricSpec {
    common::only(stage).into()
}

fn embeddings(test: Arc<Matrix>, train: Option<Arc<Matrix>>, spec: MetricSpec) -> JobSpec {
    let n = test.rows();
    JobSpec::Embeddings(Box::new(EmbeddingsJob {
        name: "synthetic".into(),
        dataset: "gaussian".into(),
        loss: "infonce".into(),
        loss_name: String::new(),
        temperature: 0.5,
        data: EvalData {
            test,
            test_labels: labels(n, 10),
            test_positive: None,
            train: train.map(|t| {
                let n = t.rows();
                (t, labels(n, 10))
            }),
            probe: None,
            class_names: Vec::new(),
        },
        settings: Settings::resolve(Some(&spec), 0.5).unwrap(),
    }))
}

/// A job whose uniformity stage runs for minutes.
fn runaway() -> JobSpec {
    embeddings(
        gaussian(500, 16, 1),
        None,
        MetricSpec {
            uniformity_exact_max_rows: Some(1),
            uniformity_samples: Some(1_000_000_000),
            ..only("uniformity")
        },
    )
}

/// A job that ends at once.
fn quick() -> JobSpec {
    embeddings(gaussian(50, 8, 2), None, only("uniformity"))
}

/// Reads `handle` until `stage` starts.
async fn until_stage(handle: &mut JobHandle, stage: &str) {
    while let Some(event) = handle.next().await {
        match event {
            Event::Progress(p) if p.stage == stage => return,
            Event::Done(outcome) => panic!("ended before {stage}: {outcome:?}"),
            _ => {}
        }
    }
    panic!("no {stage} stage");
}

/// The outcome of `handle`.
async fn outcome(handle: &mut JobHandle) -> Result<Outcome, Arc<Error>> {
    while let Some(event) = handle.next().await {
        if let Event::Done(outcome) = event {
            return outcome;
        }
    }
    panic!("no end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_is_first_come_first_served_and_queued_jobs_are_visible() {
    let b = bench(1, 2).await;
    let opts = SubmitOptions::default();
    let mut first = b.engine.submit(runaway(), opts).await.unwrap();
    assert!(!first.queued);
    until_stage(&mut first, "uniformity").await;
    let second = b.engine.submit(runaway(), opts).await.unwrap();
    let mut third = b.engine.submit(quick(), opts).await.unwrap();
    assert!(second.queued && third.queued);
    assert_eq!(b.status(&second.ids[0]).await, EvaluationStatus::Queued);
    assert_eq!(b.status(&third.ids[0]).await, EvaluationStatus::Queued);
    let refused = b.engine.submit(quick(), opts).await.unwrap_err();
    assert!(matches!(refused, Error::ResourceExhausted(_)), "{refused}");

    // The first leaves: the second (admitted before the third) runs, the
    // third still waits.
    b.engine.cancel(&first.ids[0]).await.unwrap();
    wait_for(
        || b.engine.scheduler().running() == 1,
        Duration::from_secs(1),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b.status(&second.ids[0]).await, EvaluationStatus::Running);
    assert_eq!(b.status(&third.ids[0]).await, EvaluationStatus::Queued);
    b.engine.cancel(&second.ids[0]).await.unwrap();
    let Ok(Outcome::Report(report)) = outcome(&mut third).await else {
        panic!("the third completes")
    };
    assert_eq!(report.status, EvaluationStatus::Completed);
    assert_eq!(b.status(&third.ids[0]).await, EvaluationStatus::Completed);
    // A queued job that is cancelled leaves the queue at once.
    let mut running = b.engine.submit(runaway(), opts).await.unwrap();
    until_stage(&mut running, "uniformity").await;
    let queued = b.engine.submit(runaway(), opts).await.unwrap();
    assert_eq!(b.engine.scheduler().waiting(), 1);
    assert_eq!(
        b.engine.cancel(&queued.ids[0]).await.unwrap(),
        EvaluationStatus::Cancelled
    );
    assert_eq!(b.engine.scheduler().waiting(), 0);
    b.cancel_within_a_second(&running.ids[0], "runaway").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_inside_each_long_stage_frees_the_slot_and_the_cpu_within_a_second() {
    let b = bench(1, 0).await;
    let big = gaussian(30_000, 32, 3);
    let cases: Vec<(&str, &str, JobSpec)> = vec![
        ("sampled uniformity", "uniformity", runaway()),
        (
            "exact uniformity",
            "uniformity",
            embeddings(
                big.clone(),
                None,
                MetricSpec {
                    uniformity_exact_max_rows: Some(200_000),
                    ..only("uniformity")
                },
            ),
        ),
        (
            "nearest negatives",
            "nearest_negatives",
            embeddings(big.clone(), None, only("nearest_negatives")),
        ),
        (
            "penalty profile",
            "penalty",
            embeddings(
                gaussian(8_000, 32, 4),
                None,
                MetricSpec {
                    neighbors_k: Some(1),
                    ..only("penalty")
                },
            ),
        ),
        (
            "knn",
            "knn",
            embeddings(big.clone(), Some(gaussian(30_000, 32, 5)), only("knn")),
        ),
        (
            "linear probe",
            "linear",
            embeddings(
                gaussian(2_000, 64, 6),
                Some(gaussian(50_000, 64, 7)),
                MetricSpec {
                    linear_max_iter: Some(100_000),
                    linear_tol: Some(1e-300),
                    linear_c: Some(1e6),
                    ..only("linear")
                },
            ),
        ),
    ];
    for (what, stage, job) in cases {
        let mut handle = b
            .engine
            .submit(job, SubmitOptions::default())
            .await
            .unwrap();
        until_stage(&mut handle, stage).await;
        // Well inside the stage.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            b.status(&handle.ids[0]).await,
            EvaluationStatus::Running,
            "{what} ended too soon to test"
        );
        b.cancel_within_a_second(&handle.ids[0], what).await;
        let report = b.engine.reports().get(&handle.ids[0]).await.unwrap();
        assert_eq!(report.error, "cancelled: cancelled by CancelEvaluation");
        assert!(matches!(
            outcome(&mut handle).await,
            Err(e) if matches!(*e, Error::Cancelled(_))
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_between_encoder_batches_ends_a_long_embedding_stage() {
    // A model of the zoo over 300,000 images: a minute of encoding.
    let models = tempfile::tempdir().unwrap();
    common::copy_model("infonce-t0.5", models.path(), "m");
    let datasets = tempfile::tempdir().unwrap();
    let big = datasets.path().join("big");
    std::fs::create_dir(&big).unwrap();
    let n = 300_000;
    let mut rng = SplitMix64::new(9);
    NpyArray {
        dtype: NpyType::U8,
        shape: vec![n, 8, 8, 1],
        data: (0..n * 64).map(|_| rng.below(17) as u8).collect(),
    }
    .write(&big.join("images.npy"))
    .unwrap();
    NpyArray {
        dtype: NpyType::I64,
        shape: vec![n],
        data: labels(n, 10).iter().flat_map(|l| l.to_le_bytes()).collect(),
    }
    .write(&big.join("labels.npy"))
    .unwrap();
    std::fs::write(
        big.join("dataset.toml"),
        format!(
            "name = \"big\"\nformat = \"embedeval-npy\"\nnum_classes = 10\nimage_shape = [8, 8, 1]\npixel_max = 16\n\n[splits.test]\nimages = \"images.npy\"\nlabels = \"labels.npy\"\nsize = {n}\n"
        ),
    )
    .unwrap();
    let runtime = Runtime::new(&RuntimeOptions::default()).unwrap();
    let registry = ModelRegistry::empty(models.path().to_path_buf());
    registry.scan(&runtime).unwrap();
    let data = DatasetRegistry::empty(datasets.path().to_path_buf());
    data.scan().unwrap();
    let job = JobSpec::Model(Box::new(ModelJob {
        model: registry.get("m").unwrap(),
        dataset: data.get("big").unwrap(),
        splits: embedeval::jobs::Splits {
            test: "test".into(),
            train: None,
        },
        settings: Settings::resolve(Some(&only("uniformity")), 0.5).unwrap(),
        tags: Default::default(),
    }));
    let b = bench(1, 0).await;
    let mut handle = b
        .engine
        .submit(job, SubmitOptions::default())
        .await
        .unwrap();
    // Wait until some batches are done.
    loop {
        match handle.next().await.unwrap() {
            Event::Progress(p) if p.stage == "embed_test" && p.done > 0 => break,
            Event::Done(o) => panic!("{o:?}"),
            _ => {}
        }
    }
    b.cancel_within_a_second(&handle.ids[0], "embedding").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_fails_the_job_and_names_it_and_a_dropped_handle_cancels() {
    let b = bench(1, 0).await;
    let opts = SubmitOptions {
        detach: false,
        deadline: Some(Deadline::after(Duration::from_millis(300))),
    };
    let started = Instant::now();
    let mut handle = b.engine.submit(runaway(), opts).await.unwrap();
    let Err(err) = outcome(&mut handle).await else {
        panic!("the deadline stops the runaway")
    };
    assert!(matches!(*err, Error::DeadlineExceeded(_)), "{err}");
    assert!(started.elapsed() < Duration::from_millis(1300));
    let report = b.engine.reports().get(&handle.ids[0]).await.unwrap();
    assert_eq!(report.status, EvaluationStatus::Failed);
    assert!(
        report.error.contains("deadline of 0.300 s"),
        "{}",
        report.error
    );
    wait_for(
        || b.engine.scheduler().running() == 0,
        Duration::from_secs(1),
    )
    .await;

    // A client that goes away: its handle is dropped.
    let mut handle = b
        .engine
        .submit(runaway(), SubmitOptions::default())
        .await
        .unwrap();
    until_stage(&mut handle, "uniformity").await;
    let id = handle.ids[0].clone();
    drop(handle);
    wait_for(|| b.engine.live_jobs() == 0, Duration::from_secs(1)).await;
    let report = b.engine.reports().get(&id).await.unwrap();
    assert_eq!(report.status, EvaluationStatus::Cancelled);
    assert!(
        report.error.contains("client went away"),
        "{}",
        report.error
    );
    assert_eq!(
        (b.engine.scheduler().running(), b.engine.active_compute()),
        (0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_job_runs_on_and_is_watched_to_its_report() {
    let b = bench(1, 1).await;
    let detached = SubmitOptions {
        detach: true,
        deadline: Some(Deadline::after(Duration::from_millis(1))),
    };
    // A job with some work: the nearest-negative profile of 4,000 rows.
    let job = embeddings(gaussian(4_000, 32, 8), None, only("nearest_negatives"));
    let id = b
        .engine
        .submit(job, detached)
        .await
        .unwrap()
        .detach()
        .remove(0);
    // The handle is gone and the deadline (which a detached job ignores) past.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut watch = b.engine.watch(&id).await.unwrap();
    let mut stages = Vec::new();
    let mut report = None;
    while let Some(event) = watch.next().await {
        match event {
            Event::Progress(p) => stages.push(p.stage),
            Event::Evaluated(r) => report = Some(*r),
            Event::Done(_) => break,
        }
    }
    let report = report.unwrap();
    assert_eq!(
        report.status,
        EvaluationStatus::Completed,
        "{}",
        report.error
    );
    assert_eq!(report.nearest_negative_similarity.len(), 10);
    // Watching an ended evaluation gives its report (the stored one, or
    // the job's end while the engine lets go of it).
    let again: Vec<Event> = b.engine.watch(&id).await.unwrap().collect().await;
    assert!(
        matches!(again.as_slice(),
            [Event::Evaluated(r)] | [Event::Done(Ok(Outcome::Report(r)))] if **r == report),
        "{again:?}"
    );
    assert!(matches!(
        b.engine.watch("nope").await,
        Err(Error::NotFound { .. })
    ));
    drop(b.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_the_grace_period_then_cancels_and_records() {
    let b = bench(1, 2).await;
    let mut running = b
        .engine
        .submit(runaway(), SubmitOptions::default())
        .await
        .unwrap();
    until_stage(&mut running, "uniformity").await;
    let queued = b
        .engine
        .submit(quick(), SubmitOptions::default())
        .await
        .unwrap();
    let detached = b
        .engine
        .submit(
            runaway(),
            SubmitOptions {
                detach: true,
                deadline: None,
            },
        )
        .await
        .unwrap()
        .detach();
    let grace = Duration::from_millis(500);
    let started = Instant::now();
    b.engine.shutdown(grace).await;
    let took = started.elapsed();
    assert!(
        took >= grace && took < grace + Duration::from_secs(5),
        "{took:?}"
    );
    for id in [&running.ids[0], &queued.ids[0], &detached[0]] {
        let report = b.engine.reports().get(id).await.unwrap();
        assert_eq!(report.status, EvaluationStatus::Cancelled);
        assert_eq!(
            report.error,
            "cancelled: the server shut down before the evaluation finished"
        );
    }
    let refused = b
        .engine
        .submit(quick(), SubmitOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Unavailable {
                kind: embedeval::error::Unavailable::ShuttingDown,
                ..
            }
        ),
        "{refused}"
    );
    assert_eq!(b.engine.live_jobs(), 0);
}
