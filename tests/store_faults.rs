//! The object store slow, failing and cutting answers short: moto's S3
//! server (from tests/cluster/.venv) behind the test's proxy
//! ([`common::cluster::Fault`]), and one replica reading its bundled models
//! from the store and keeping uploads there (`--models-dir s3://…`,
//! `--data-url s3://…`).
//!
//! - Every answer cut short while the replica starts: it retries the
//!   mirror and stays NOT_SERVING, with no partial model where the registry
//!   reads; once the store answers whole, it serves models byte-identical to
//!   the bundle's.
//! - 503 on every request, then resets: a registration retries within its
//!   budget, then is UNAVAILABLE naming the store; nothing half-registered
//!   is listed, and the name registers once the store is back.
//! - A slow store (each connection held 1.5 s): only slower.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::{store_env, Fault, Moto, Proxy, Replica, BUCKET};
use embedeval::object_stores::Remote;
use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::model_service_client::ModelServiceClient;
use embedeval::proto::{self, evaluate_event, EvaluateRequest, EvaluationStatus, MetricSpec};
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const MODELS: [&str; 2] = ["infonce-t0.2", "infonce-t0.5"];

async fn register(channel: &Channel, name: &str) -> Result<proto::ModelInfo, tonic::Status> {
    ModelServiceClient::new(channel.clone())
        .register_model(futures::stream::iter(common::zoo_upload(
            "infonce-t0.1",
            name,
        )))
        .await
        .map(|r| r.into_inner())
}

async fn listed(channel: &Channel) -> Vec<String> {
    ModelServiceClient::new(channel.clone())
        .list_models(proto::ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .models
        .into_iter()
        .map(|m| m.name)
        .collect()
}

/// An attached evaluation of `model` on digits without the probe: its report.
async fn evaluate(channel: &Channel, model: &str) -> proto::EvaluationReport {
    let mut stream = EvaluationServiceClient::new(channel.clone())
        .evaluate(EvaluateRequest {
            model: model.into(),
            dataset: "digits".into(),
            spec: Some(MetricSpec {
                skip_linear: true,
                ..Default::default()
            }),
            ..Default::default()
        })
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

/// The files under `dir` whose names do not start with a dot, relative.
fn visible(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if entry.path().is_dir() {
            found.extend(
                visible(&entry.path())
                    .into_iter()
                    .map(|f| format!("{name}/{f}")),
            );
        } else {
            found.push(name);
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_failing_store_is_retried_then_refused_clearly_and_nothing_partial_is_used() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port).await;
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

    // 1. Every answer cut after 2,000 bytes while the replica starts.
    proxy.set(Fault::CutAfter(2000)).await;
    let args: Vec<String> = [
        "--models-dir",
        &format!("s3://{BUCKET}/models"),
        "--data-url",
        &format!("s3://{BUCKET}/shared"),
        "--datasets-dir",
        common::zoo().join("../datasets").to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let bin = Path::new(env!("CARGO_BIN_EXE_embedeval"));
    let replica = Replica::start(bin, "r", &args, &store_env(&proxy));
    let channel = replica.channel().await;
    let mirror = replica.data_dir().join("mirror/models");
    let cut_since = Instant::now();
    while cut_since.elapsed() < Duration::from_secs(6) {
        let status = HealthClient::new(channel.clone())
            .check(HealthCheckRequest::default())
            .await
            .map(|r| r.into_inner().status());
        assert!(
            !matches!(status, Ok(ServingStatus::Serving)),
            "serving from a store that cuts every answer: {}",
            replica.tail()
        );
        assert_eq!(visible(&mirror), Vec::<String>::new(), "a partial model");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        replica
            .tail()
            .contains("cannot mirror the bundle yet; retrying"),
        "{}",
        replica.tail()
    );
    proxy.set(Fault::None).await;
    let healed = Instant::now();
    replica.wait_serving().await;
    eprintln!(
        "store faults: SERVING {:.1} s after the store answered whole",
        healed.elapsed().as_secs_f64()
    );
    for model in MODELS {
        let zoo = common::zoo().join(model);
        let files = visible(&zoo);
        assert_eq!(visible(&mirror.join(model)), files);
        for file in files {
            assert!(
                std::fs::read(mirror.join(model).join(&file)).unwrap()
                    == std::fs::read(zoo.join(&file)).unwrap(),
                "{model}/{file} differs from the bundle's"
            );
        }
    }
    let report = evaluate(&channel, MODELS[0]).await;
    assert_eq!(
        report.status(),
        EvaluationStatus::Completed,
        "{}",
        report.error
    );

    // 2. 503 on every request, then resets: UNAVAILABLE naming the store,
    // after retries within the budget (three retries, ten seconds).
    for fault in [Fault::Unavailable, Fault::Reset] {
        proxy.set(fault).await;
        let asked = Instant::now();
        let err = register(&channel, "faulty").await.unwrap_err();
        let took = asked.elapsed();
        eprintln!(
            "store faults: {fault:?}: {:?} after {:.1} s: {}",
            err.code(),
            took.as_secs_f64(),
            err.message()
        );
        assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
        assert!(
            err.message()
                .contains(&format!("the object store s3://{BUCKET}/shared")),
            "{}",
            err.message()
        );
        assert!(took < Duration::from_secs(30), "{took:?}");
        proxy.set(Fault::None).await;
        assert!(!listed(&channel).await.contains(&"faulty".to_string()));
    }

    // 3. A slow store is only slower.
    proxy.set(Fault::Delay(Duration::from_millis(1500))).await;
    let asked = Instant::now();
    let slow = register(&channel, "slow").await.unwrap();
    eprintln!(
        "store faults: a registration through a store 1.5 s slow per connection took {:.1} s",
        asked.elapsed().as_secs_f64()
    );
    assert!(asked.elapsed() >= Duration::from_millis(1500));
    proxy.set(Fault::None).await;

    // 4. The refused name registers now, once, and both evaluate.
    let info = register(&channel, "faulty").await.unwrap();
    let names = listed(&channel).await;
    assert_eq!(names.iter().filter(|n| *n == "faulty").count(), 1);
    for (name, sha) in [("faulty", &info.sha256), ("slow", &slow.sha256)] {
        let report = evaluate(&channel, name).await;
        assert_eq!(
            report.status(),
            EvaluationStatus::Completed,
            "{}",
            report.error
        );
        assert_eq!(&report.model_sha256, sha);
    }
}
