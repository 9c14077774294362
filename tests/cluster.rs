//! Three replicas on loopback ports sharing one PostgreSQL (started here,
//! from the Debian package scripts/bootstrap installs) and one S3-compatible
//! object store (moto's server, from tests/cluster/.venv, behind a proxy
//! this test can take down):
//! - bundled models are read from the store, a model registered through one
//!   replica is evaluated through another, and ListModels of a third lists it
//!   from its registration without fetching it;
//! - 30 detached evaluations submitted round-robin all complete, each
//!   computed to completion exactly once (counted in the replicas' logs),
//!   while one replica is killed with SIGKILL mid-evaluation (its jobs are
//!   taken over by the others once their leases lapse) and PostgreSQL
//!   restarts (the replicas reconnect; nothing is lost);
//! - any replica watches and cancels a job another replica runs;
//! - the store going away gives UNAVAILABLE naming it, and it recovers;
//! - a replica stopped with SIGTERM hands its queued jobs over at once and
//!   the one it still runs when its grace is over too (finished elsewhere,
//!   never recorded FAILED).

mod common;
#[path = "../src/database/postgres_test.rs"]
mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::cluster::{get_riding_out, store_env, submit_detached, Moto, Proxy, Replica, BUCKET};

use embedeval::database::ReportStore;
use embedeval::object_stores::Remote;
use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::model_service_client::ModelServiceClient;
use embedeval::proto::{self, evaluate_event, EvaluateRequest, EvaluationStatus, MetricSpec};
use tonic::transport::Channel;
use tonic::Code;

const MODELS: [&str; 2] = ["infonce-t0.2", "infonce-t0.5"];

/// A quick spec: every metric but the linear probe.
fn quick() -> MetricSpec {
    MetricSpec {
        skip_linear: true,
        ..Default::default()
    }
}

fn evaluate(model: &str, spec: MetricSpec, detach: bool) -> EvaluateRequest {
    EvaluateRequest {
        model: model.into(),
        dataset: "digits".into(),
        spec: Some(spec),
        detach,
        ..Default::default()
    }
}

async fn submit(channel: &Channel, model: &str, spec: MetricSpec) -> String {
    submit_detached(channel, model, spec).await.unwrap()
}

/// An attached evaluation to its end: its report.
async fn run(channel: &Channel, model: &str) -> proto::EvaluationReport {
    let mut stream = EvaluationServiceClient::new(channel.clone())
        .evaluate(evaluate(model, quick(), false))
        .await
        .unwrap()
        .into_inner();
    let mut report = None;
    while let Some(e) = stream.message().await.unwrap() {
        if let Some(evaluate_event::Event::Report(r)) = e.event {
            report = Some(r);
        }
    }
    report.expect("a report")
}

/// Evaluates `model` through `channel` to COMPLETED, with the bytes `info`
/// registered.
async fn completes_as(channel: &Channel, model: &str, info: &proto::ModelInfo) {
    let report = run(channel, model).await;
    assert_eq!(
        report.status,
        EvaluationStatus::Completed as i32,
        "{}",
        report.error
    );
    assert_eq!(report.model_sha256, info.sha256);
}

/// Evaluation `id` through `channel`, riding out a database that restarts.
async fn get(channel: &Channel, id: &str) -> proto::EvaluationReport {
    get_riding_out(channel, id, Duration::from_secs(30)).await
}

fn ended(r: &proto::EvaluationReport) -> bool {
    r.status != EvaluationStatus::Queued as i32 && r.status != EvaluationStatus::Running as i32
}

async fn register(channel: &Channel, name: &str) -> Result<proto::ModelInfo, tonic::Status> {
    ModelServiceClient::new(channel.clone())
        .register_model(futures::stream::iter(common::zoo_upload(
            "infonce-t0.1",
            name,
        )))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_jobs_models_and_results_and_survive_a_death_and_restarts() {
    let pg = pg::TestPostgres::start();
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port).await;

    // The bundled models live in the store.
    let endpoint = format!("http://127.0.0.1:{}", proxy.port);
    let bundle = Remote::open_with(
        &format!("s3://{BUCKET}/models"),
        &[
            ("aws_endpoint", endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
            ("aws_region", "us-east-1"),
        ],
    )
    .unwrap();
    for model in MODELS {
        bundle
            .put_dir(model, &common::zoo().join(model))
            .await
            .unwrap();
    }

    let args: Vec<String> = [
        "--database-url",
        &pg.url,
        "--data-url",
        &format!("s3://{BUCKET}/shared"),
        "--models-dir",
        &format!("s3://{BUCKET}/models"),
        "--datasets-dir",
        common::zoo().join("../datasets").to_str().unwrap(),
        "--job-lease",
        "3s",
        "--max-evaluations",
        "1",
        "--compute-threads",
        "1",
        // One uploaded model (about 506 kB) fits, two do not.
        "--uploads-bytes",
        "700000",
        // A replica stopped hands what still runs 2 s later over.
        "--shutdown-grace",
        "2s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_embedeval"));
    let mut replicas: Vec<Replica> = ["r0", "r1", "r2"]
        .iter()
        .map(|name| Replica::start(bin, name, &args, &store_env(&proxy)))
        .collect();
    for r in &replicas {
        r.wait_serving().await;
    }
    let mut channels = Vec::new();
    for r in &replicas {
        channels.push(r.channel().await);
    }

    // A model registered through r0 is evaluated through r1 and listed by r2.
    let info = register(&channels[0], "shared-model").await.unwrap();
    completes_as(&channels[1], "shared-model", &info).await;
    let listed = ModelServiceClient::new(channels[2].clone())
        .list_models(proto::ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = listed.models.iter().map(|m| m.name.as_str()).collect();
    assert!(
        names.contains(&"shared-model") && names.contains(&MODELS[0]),
        "{names:?}"
    );
    // Listed from its registration: as registered, and not fetched to r2.
    let listed_info = listed.models.iter().find(|m| m.name == "shared-model");
    assert_eq!(listed_info, Some(&info));
    assert!(!replicas[2]
        .data_dir()
        .join("models")
        .join("shared-model")
        .exists());
    // A name registered elsewhere is taken everywhere.
    let taken = register(&channels[2], "shared-model").await.unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{}", taken.message());

    // 30 evaluations round-robin.
    let models = [MODELS[0], MODELS[1], "shared-model"];
    let mut ids: Vec<(usize, String)> = Vec::new();
    for i in 0..30 {
        let replica = i % 3;
        let id = submit(
            &channels[replica],
            models[(i / 3) % 3],
            MetricSpec::default(),
        )
        .await;
        ids.push((replica, id));
    }

    // Any replica follows a job another runs: r1 watches one of r0's.
    let watched = ids
        .iter()
        .filter(|(r, _)| *r == 0)
        .nth(1)
        .unwrap()
        .1
        .clone();
    let mut watch = EvaluationServiceClient::new(channels[1].clone())
        .watch_evaluation(proto::WatchEvaluationRequest {
            id: watched.clone(),
        })
        .await
        .unwrap()
        .into_inner();

    // r2 dies mid-evaluation.
    let victim: Vec<String> = ids
        .iter()
        .filter(|(r, _)| *r == 2)
        .map(|(_, id)| id.clone())
        .collect();
    let until = Instant::now() + Duration::from_secs(120);
    'wait: loop {
        for id in &victim {
            if get(&channels[2], id).await.status == EvaluationStatus::Running as i32 {
                break 'wait;
            }
        }
        assert!(
            Instant::now() < until,
            "r2 ran nothing: {}",
            replicas[2].tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    replicas[2].kill();
    let done_by_r2_before = replicas[2].completed();
    // What it was running when it died stays RUNNING until taken over.
    let mut running = None;
    for id in &victim {
        if get(&channels[0], id).await.status == EvaluationStatus::Running as i32 {
            running = Some(id.clone());
        }
    }
    let running = running.expect("r2 died mid-evaluation");

    // PostgreSQL restarts while the others work.
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.start_again();

    // Everything completes.
    let until = Instant::now() + Duration::from_secs(600);
    let mut reports = BTreeMap::new();
    for (_, id) in &ids {
        loop {
            let r = get(&channels[0], id).await;
            if ended(&r) {
                reports.insert(id.clone(), r);
                break;
            }
            assert!(
                Instant::now() < until,
                "{id} did not end:\nr0: {}\nr1: {}",
                replicas[0].tail(),
                replicas[1].tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for (id, r) in &reports {
        assert_eq!(
            r.status,
            EvaluationStatus::Completed as i32,
            "{id}: {}",
            r.error
        );
    }

    // The watcher on r1 saw r0's job to its end.
    let mut last = None;
    while let Some(e) = watch.message().await.unwrap() {
        last = e.event;
    }
    let Some(evaluate_event::Event::Report(seen)) = last else {
        panic!("the watch ends with the report")
    };
    assert_eq!(
        (seen.id.as_str(), seen.status),
        (watched.as_str(), EvaluationStatus::Completed as i32)
    );

    // Each evaluation was computed to completion exactly once, whoever ran
    // it; the one r2 was running when it died was finished by another.
    let mut completions: BTreeMap<String, usize> = BTreeMap::new();
    for r in &replicas {
        for id in r.completed() {
            *completions.entry(id).or_default() += 1;
        }
    }
    for (_, id) in &ids {
        assert_eq!(
            completions.get(id),
            Some(&1),
            "{id} completed {:?} times",
            completions.get(id)
        );
    }
    let store = ReportStore::open(&pg.url).await.unwrap();
    let job = store.job_of(&running).await.unwrap().unwrap();
    assert!(job.done && job.owner != "r2" && job.attempt >= 2, "{job:?}");
    let taken_over = {
        let mut n = 0;
        for id in &victim {
            if store.job_of(id).await.unwrap().unwrap().owner != "r2" {
                n += 1;
            }
        }
        n
    };
    assert!(taken_over >= 1);
    eprintln!(
        "r2 completed {} before it died; {taken_over} of its 10 were taken over",
        done_by_r2_before.len()
    );

    // Any replica lists every report once.
    let listed = EvaluationServiceClient::new(channels[1].clone())
        .list_evaluations(proto::ListEvaluationsRequest {
            dataset: "digits".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<String> = listed.evaluations.iter().map(|r| r.id.clone()).collect();
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len());
    assert!(ids.iter().all(|(_, id)| unique.contains(id)));

    // An idle replica takes detached jobs waiting on a busy one: eight
    // submitted to r0 alone are shared with r1.
    let mut crowd = Vec::new();
    for i in 0..8 {
        crowd.push(submit(&channels[0], models[i % 3], MetricSpec::default()).await);
    }
    let mut owners = BTreeMap::<String, usize>::new();
    for id in &crowd {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let r = get(&channels[0], id).await;
            if ended(&r) {
                assert_eq!(
                    r.status,
                    EvaluationStatus::Completed as i32,
                    "{id}: {}",
                    r.error
                );
                break;
            }
            assert!(Instant::now() < until, "{id}: {}", replicas[0].tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        *owners
            .entry(store.job_of(id).await.unwrap().unwrap().owner)
            .or_default() += 1;
    }
    assert!(
        owners.get("r1").is_some_and(|n| *n >= 1),
        "r1 took none: {owners:?}"
    );
    let mut crowd_completions: BTreeMap<String, usize> = BTreeMap::new();
    for r in &replicas {
        for id in r.completed() {
            *crowd_completions.entry(id).or_default() += 1;
        }
    }
    for id in &crowd {
        assert_eq!(crowd_completions.get(id), Some(&1), "{id}");
    }
    eprintln!("8 jobs submitted to r0 ran on {owners:?}");

    // Any replica cancels a job another runs.
    let runaway = MetricSpec {
        uniformity_exact_max_rows: Some(1),
        uniformity_samples: Some(1_000_000_000),
        ..common::only("uniformity")
    };
    let id = submit(&channels[0], MODELS[0], runaway.clone()).await;
    let until = Instant::now() + Duration::from_secs(60);
    while get(&channels[0], &id).await.status != EvaluationStatus::Running as i32 {
        assert!(Instant::now() < until);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let cancelled = EvaluationServiceClient::new(channels[1].clone())
        .cancel_evaluation(proto::CancelEvaluationRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, EvaluationStatus::Cancelled as i32);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The store goes away: UNAVAILABLE naming it; back, and it works.
    proxy.down().await;
    let err = register(&channels[1], "outage-model").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
    assert!(
        err.message().contains(&format!("s3://{BUCKET}/shared")),
        "{}",
        err.message()
    );
    proxy.up().await;
    let info = register(&channels[1], "outage-model").await.unwrap();
    completes_as(&channels[0], "outage-model", &info).await;

    // r0's local copies stay within --uploads-bytes: fetching outage-model
    // dropped shared-model (used longer ago, idle); asked for again, it is
    // fetched again.
    let local = |name: &str| replicas[0].data_dir().join("models").join(name).exists();
    assert!(local("outage-model") && !local("shared-model"));
    let again = run(&channels[0], "shared-model").await;
    assert_eq!(
        again.status,
        EvaluationStatus::Completed as i32,
        "{}",
        again.error
    );
    assert!(local("shared-model") && !local("outage-model"));

    // r1 stops (a rolling update): it hands its queued detached jobs over
    // at once, without waiting for their leases, and the one it runs when
    // its grace is over too: another replica finishes it (no FAILED row).
    let running = submit(&channels[1], MODELS[1], runaway).await;
    let until = Instant::now() + Duration::from_secs(60);
    while get(&channels[1], &running).await.status != EvaluationStatus::Running as i32 {
        assert!(Instant::now() < until);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut handed = Vec::new();
    for _ in 0..4 {
        handed.push(submit(&channels[1], MODELS[1], MetricSpec::default()).await);
    }
    let started = Instant::now();
    let code = tokio::task::block_in_place(|| replicas[1].terminate(Duration::from_secs(60)));
    assert_eq!(code, Some(0), "{}", replicas[1].tail());
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let job = store.job_of(&running).await.unwrap().unwrap();
        let report = get(&channels[0], &running).await;
        assert!(!ended(&report), "{:?}: {}", report.status, report.error);
        if job.owner == "r0" && report.status == EvaluationStatus::Running as i32 {
            break;
        }
        assert!(Instant::now() < until, "{}", replicas[0].tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cancelled = EvaluationServiceClient::new(channels[0].clone())
        .cancel_evaluation(proto::CancelEvaluationRequest { id: running })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, EvaluationStatus::Cancelled as i32);
    for id in &handed {
        let until = Instant::now() + Duration::from_secs(120);
        let r = loop {
            let r = get(&channels[0], id).await;
            if ended(&r) {
                break r;
            }
            assert!(Instant::now() < until, "{id}: {}", replicas[0].tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            r.status,
            EvaluationStatus::Completed as i32,
            "{id}: {}",
            r.error
        );
    }
    let mut moved = 0;
    for id in &handed {
        let job = store.job_of(id).await.unwrap().unwrap();
        if job.owner == "r0" {
            moved += 1;
        }
    }
    assert!(moved >= 1, "nothing was handed over");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "handed over jobs ran at once: {:?}",
        started.elapsed()
    );
    eprintln!("r1 stopped: {moved} of its 4 queued jobs were handed over to r0");
    store.close().await;
}
