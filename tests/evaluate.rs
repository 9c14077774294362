//! EvaluationService end to end on the real zoo and the digits, checked
//! against the independent numpy / scikit-learn measurement of the zoo
//! (training/measured.json, training/measure.py) and the reference vectors.

mod common;

use std::time::Duration;

use common::{zoo, TestServer};
use embedeval::data::npy::NpyArray;
use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::{self, evaluate_event, EvaluateRequest, EvaluationStatus, MetricSpec};
use tonic::Code;

async fn server() -> TestServer {
    common::zoo_server().await
}

fn measured(model: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(zoo().join("../training/measured.json")).unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    rows.into_iter().find(|r| r["name"] == model).unwrap()
}

#[tokio::test]
async fn evaluate_matches_the_independent_measurement() {
    let server = server().await;
    let mut client = EvaluationServiceClient::new(server.channel.clone());
    let mut stream = client
        .evaluate(EvaluateRequest {
            model: "infonce-t0.5".into(),
            dataset: "digits".into(),
            detach: false,
            test_split: String::new(),
            train_split: String::new(),
            spec: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut stages = Vec::new();
    let mut report = None;
    while let Some(event) = stream.message().await.unwrap() {
        match event.event.unwrap() {
            evaluate_event::Event::Progress(p) => stages.push(p.stage),
            evaluate_event::Event::Report(r) => report = Some(r),
            evaluate_event::Event::Accepted(_) => panic!("not detached"),
        }
    }
    let report = report.expect("the last event is the report");
    for stage in [
        "embed_test",
        "embed_train",
        "embed_positive",
        "uniformity",
        "knn",
        "linear",
    ] {
        assert!(
            stages.iter().any(|s| s == stage),
            "no progress for {stage}: {stages:?}"
        );
    }
    let want = measured("infonce-t0.5");
    let close = |got: f64, key: &str, tol: f64| {
        let w = want[key].as_f64().unwrap();
        assert!((got - w).abs() <= tol, "{key}: {got} vs numpy {w}");
    };
    close(report.uniformity.unwrap(), "uniformity", 1e-4);
    close(report.tolerance.unwrap(), "tolerance", 1e-4);
    close(report.knn.as_ref().unwrap().top1, "knn", 1e-9);
    close(
        report.linear.as_ref().unwrap().top1,
        "linear",
        1.0 / 540.0 + 1e-9,
    );
    assert_eq!(report.linear.as_ref().unwrap().feature_output, "features");
    assert_eq!(report.status, EvaluationStatus::Completed as i32);
    assert_eq!(
        (report.num_test, report.num_train, report.embedding_dim),
        (540, 1257, 128)
    );
    assert_eq!(report.nearest_negative_similarity.len(), 10);
    assert_eq!(report.relative_penalty.len(), 10);
    assert!(report.alignment.unwrap() > 0.0 && report.positive_similarity.unwrap() > 0.0);
    assert!(report.effective_rank.unwrap() > 1.0);
    let spec = report.spec.clone().unwrap();
    assert_eq!(
        spec.penalty_temperature,
        Some(0.5),
        "the model's tau is the default"
    );
    assert_eq!((spec.knn_k, spec.knn_temperature), (Some(200), Some(0.1)));
    assert_eq!(report.uniformity_estimator, "exact");
    assert!(report.timings.contains_key("total"));

    // Stored: Get and List find it.
    let got = client
        .get_evaluation(proto::GetEvaluationRequest {
            id: report.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, report);
    let list = client
        .list_evaluations(proto::ListEvaluationsRequest {
            model: "infonce-t0.5".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.evaluations[0].id, report.id);
    server.stop().await;
}

fn chunk(split: &str, x: &NpyArray, labels: Vec<i64>) -> proto::EvaluateEmbeddingsRequest {
    proto::EvaluateEmbeddingsRequest {
        payload: Some(proto::evaluate_embeddings_request::Payload::Chunk(
            proto::EmbeddingsChunk {
                split: split.into(),
                embeddings: Some(proto::Tensor {
                    dtype: proto::DataType::Float32 as i32,
                    shape: x.shape.iter().map(|&d| d as i64).collect(),
                    data: x.data.clone(),
                }),
                labels,
            },
        )),
    }
}

#[tokio::test]
async fn evaluate_embeddings_reproduces_the_reference() {
    let server = server().await;
    let dir = zoo().join("../tests/data/reference");
    let load = |p: &str| NpyArray::read(&dir.join(format!("clustered10.{p}.npy"))).unwrap();
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let want = &expected["clustered10"];
    let header = proto::EvaluateEmbeddingsRequest {
        payload: Some(proto::evaluate_embeddings_request::Payload::Header(
            proto::EmbeddingsHeader {
                name: "uploaded".into(),
                detach: false,
                spec: Some(MetricSpec {
                    penalty_temperature: Some(0.2),
                    ..Default::default()
                }),
                temperature: Some(0.2),
                loss: "infonce".into(),
                loss_name: String::new(),
                dataset: "clustered10".into(),
            },
        )),
    };
    let msgs = vec![
        header,
        chunk("test", &load("test_x"), load("test_y").to_i64().unwrap()),
        chunk("test_positive", &load("test_x_aug"), vec![]),
        chunk("train", &load("train_x"), load("train_y").to_i64().unwrap()),
    ];
    let report = EvaluationServiceClient::new(server.channel.clone())
        .evaluate_embeddings(tokio_stream::iter(msgs))
        .await
        .unwrap()
        .into_inner();
    let rel = |got: f64, key: &str| {
        let w = want[key].as_f64().unwrap();
        assert!((got - w).abs() <= 1e-5 * w.abs(), "{key}: {got} vs {w}");
    };
    rel(report.uniformity.unwrap(), "uniformity");
    rel(report.alignment.unwrap(), "alignment");
    rel(report.tolerance.unwrap(), "tolerance");
    rel(report.penalty_entropy.unwrap(), "penalty_entropy");
    rel(report.effective_rank.unwrap(), "effective_rank");
    assert_eq!(
        report.knn.as_ref().unwrap().top1,
        want["knn"]["top1"].as_f64().unwrap()
    );
    assert_eq!(report.linear.as_ref().unwrap().feature_output, "embedding");

    // Without test rows it is refused.
    let only_header = vec![proto::EvaluateEmbeddingsRequest {
        payload: Some(proto::evaluate_embeddings_request::Payload::Header(
            Default::default(),
        )),
    }];
    let err = EvaluationServiceClient::new(server.channel.clone())
        .evaluate_embeddings(tokio_stream::iter(only_header))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test]
async fn compare_sorts_rows_and_plots_and_errors_have_their_codes() {
    let server = server().await;
    let mut client = EvaluationServiceClient::new(server.channel.clone());
    let spec = MetricSpec {
        skip_linear: true,
        ..Default::default()
    };
    let mut stream = client
        .compare(proto::CompareRequest {
            models: vec![
                "infonce-t1".into(),
                "hard-infonce-t0.2".into(),
                "infonce-t0.1".into(),
            ],
            dataset: "digits".into(),
            detach: false,
            test_split: String::new(),
            train_split: String::new(),
            spec: Some(spec),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut comparison = None;
    let mut positions = std::collections::BTreeSet::new();
    while let Some(e) = stream.message().await.unwrap() {
        match e.event {
            Some(proto::compare_event::Event::Comparison(c)) => comparison = Some(c),
            Some(proto::compare_event::Event::Progress(p)) => {
                positions.insert((p.model_index, p.models));
            }
            _ => {}
        }
    }
    let c = comparison.unwrap();
    // Progress says which model of how many.
    assert_eq!(
        positions.into_iter().collect::<Vec<_>>(),
        [(1, 3), (2, 3), (3, 3)]
    );
    let order: Vec<&str> = c.rows.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(
        order,
        ["hard-infonce-t0.2", "infonce-t0.1", "infonce-t1"],
        "by loss then tau"
    );
    for r in &c.rows {
        let want = measured(&r.model);
        assert!((r.uniformity.unwrap() - want["uniformity"].as_f64().unwrap()).abs() < 1e-4);
        assert!(r.linear.is_none(), "skipped");
    }
    assert!(c.plot_svg.starts_with("<svg") && c.plot_svg.contains("0.1"));
    assert!(c.accuracy_plot_svg.starts_with("<svg"));

    for (req, code) in [
        (
            EvaluateRequest {
                model: "nope".into(),
                dataset: "digits".into(),
                detach: false,
                test_split: String::new(),
                train_split: String::new(),
                spec: None,
                ..Default::default()
            },
            Code::NotFound,
        ),
        (
            EvaluateRequest {
                model: "simple".into(),
                dataset: "nope".into(),
                detach: false,
                test_split: String::new(),
                train_split: String::new(),
                spec: None,
                ..Default::default()
            },
            Code::NotFound,
        ),
        (
            EvaluateRequest {
                model: "simple".into(),
                dataset: "digits".into(),
                detach: false,
                test_split: String::new(),
                train_split: String::new(),
                spec: Some(MetricSpec {
                    knn_temperature: Some(-1.0),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
    ] {
        assert_eq!(client.evaluate(req).await.unwrap_err().code(), code);
    }
    let err = client
        .get_evaluation(proto::GetEvaluationRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // A client that leaves: the evaluation ends and is recorded (cancelled,
    // or completed when it finished before the server noticed).
    let mut stream = client
        .evaluate(EvaluateRequest {
            model: "simple".into(),
            dataset: "digits".into(),
            detach: false,
            test_split: String::new(),
            train_split: String::new(),
            spec: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    let Some(evaluate_event::Event::Progress(p)) = first.event else {
        panic!("progress first")
    };
    drop(stream);
    let mut status = EvaluationStatus::Running as i32;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        status = client
            .get_evaluation(proto::GetEvaluationRequest {
                id: p.evaluation_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        if status != EvaluationStatus::Running as i32 {
            break;
        }
    }
    assert!(
        status == EvaluationStatus::Cancelled as i32
            || status == EvaluationStatus::Completed as i32,
        "status {status}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_beyond_the_slots_and_queue_are_refused_and_list_models_stays_fast() {
    let mut config = common::zoo_config();
    config.max_evaluations = 1;
    config.evaluation_queue = 1;
    let server = TestServer::start(config).await;
    server.wait_serving().await;
    let mut client = EvaluationServiceClient::new(server.channel.clone());
    let compare = |client: &mut EvaluationServiceClient<tonic::transport::Channel>| {
        let mut c = client.clone();
        async move {
            c.compare(proto::CompareRequest {
                models: vec![],
                dataset: "digits".into(),
                detach: false,
                test_split: String::new(),
                train_split: String::new(),
                spec: None,
                ..Default::default()
            })
            .await
        }
    };
    // One runs, one waits in the queue, the third is refused.
    let mut running = compare(&mut client).await.unwrap().into_inner();
    let mut queued = compare(&mut client).await.unwrap().into_inner();
    let err = compare(&mut client).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    assert!(err.message().contains("waiting"), "{}", err.message());

    // The queued one says so.
    let first = queued.message().await.unwrap().unwrap();
    let Some(proto::compare_event::Event::Progress(p)) = first.event else {
        panic!("progress first")
    };
    assert_eq!(p.stage, "queued");

    // ListModels answers quickly while evaluations run.
    let started = std::time::Instant::now();
    embedeval::proto::model_service_client::ModelServiceClient::new(server.channel.clone())
        .list_models(proto::ListModelsRequest::default())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "ListModels took {:?}",
        started.elapsed()
    );

    // Both finish with a comparison.
    for stream in [&mut running, &mut queued] {
        let mut rows = 0;
        while let Some(e) = stream.message().await.unwrap() {
            if let Some(proto::compare_event::Event::Comparison(c)) = e.event {
                rows = c.rows.len();
            }
        }
        assert_eq!(rows, 14);
    }
    server.stop().await;
}

/// Evaluates `model` on the digits; returns the report and the stages that
/// reported progress.
async fn evaluate_once(server: &TestServer, model: &str) -> (proto::EvaluationReport, Vec<String>) {
    evaluate_with(server, model, None).await
}

/// Evaluates `model` on the digits with `spec`; the report and the stages
/// that reported progress.
async fn evaluate_with(
    server: &TestServer,
    model: &str,
    spec: Option<MetricSpec>,
) -> (proto::EvaluationReport, Vec<String>) {
    let mut stream = EvaluationServiceClient::new(server.channel.clone())
        .evaluate(EvaluateRequest {
            model: model.into(),
            dataset: "digits".into(),
            detach: false,
            test_split: String::new(),
            train_split: String::new(),
            spec,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut report = None;
    let mut stages = Vec::new();
    while let Some(e) = stream.message().await.unwrap() {
        match e.event {
            Some(evaluate_event::Event::Report(r)) => report = Some(r),
            Some(evaluate_event::Event::Progress(p)) => stages.push(p.stage),
            _ => {}
        }
    }
    (report.unwrap(), stages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_evaluation_after_a_restart_comes_from_the_embedding_cache() {
    let data = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = common::zoo_config();
        c.data_dir = data.path().to_path_buf();
        c
    };
    let server = TestServer::start(config()).await;
    server.wait_serving().await;
    let (first, first_stages) = evaluate_once(&server, "infonce-t0.3").await;
    assert!(
        first_stages.iter().any(|s| s == "embed_test"),
        "the first run encodes"
    );
    server.stop().await;
    // The cache is written in the background; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cached = std::fs::read_dir(data.path().join("cache"))
        .unwrap()
        .count();
    assert_eq!(
        cached, 5,
        "test and train embeddings and features, and the positive views"
    );

    let server = TestServer::start(config()).await;
    server.wait_serving().await;
    // The earlier report survived the restart.
    let listed = EvaluationServiceClient::new(server.channel.clone())
        .list_evaluations(proto::ListEvaluationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.evaluations, vec![first.clone()]);
    let (second, second_stages) = evaluate_once(&server, "infonce-t0.3").await;
    // The encoder never ran: every embedding came from the cache.
    assert!(
        !second_stages.iter().any(|s| s.starts_with("embed_")),
        "the repeat ran the encoder: {second_stages:?}"
    );
    let embed = |r: &proto::EvaluationReport| -> f64 {
        ["embed_test", "embed_train", "embed_positive"]
            .iter()
            .map(|k| r.timings[*k])
            .sum()
    };
    // A figure for the record, not a timed assertion (timings vary with load).
    eprintln!(
        "embedding stages: {:.4} s encoded, {:.4} s from the cache ({:.0}x)",
        embed(&first),
        embed(&second),
        embed(&first) / embed(&second).max(1e-9)
    );
    assert_eq!(first.uniformity, second.uniformity);
    assert_eq!(first.alignment, second.alignment);
    assert_eq!(first.knn, second.knn);
    assert_eq!(untimed(first.linear), untimed(second.linear));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_evaluation_stops_a_running_comparison() {
    let server = server().await;
    let mut client = EvaluationServiceClient::new(server.channel.clone());
    let (mut stream, p) = common::compare_all_started(server.channel.clone()).await;
    let answer = client
        .cancel_evaluation(proto::CancelEvaluationRequest {
            id: p.evaluation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status, EvaluationStatus::Cancelled as i32);
    // The stream ends with CANCELLED instead of a comparison.
    let err = loop {
        match stream.message().await {
            Ok(Some(e)) => assert!(
                !matches!(e.event, Some(proto::compare_event::Event::Comparison(_))),
                "a cancelled comparison must not complete"
            ),
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(err.code(), Code::Cancelled, "{}", err.message());
    let report = client
        .get_evaluation(proto::GetEvaluationRequest {
            id: p.evaluation_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.status, EvaluationStatus::Cancelled as i32);
    let err = client
        .cancel_evaluation(proto::CancelEvaluationRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.stop().await;
}

/// Waits (up to 20 s) until the cache folder holds `n` entries: the cache
/// is written in the background.
async fn wait_for_cache_entries(dir: &std::path::Path, n: usize) {
    let count = || {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "emb"))
                    .count()
            })
            .unwrap_or(0)
    };
    for _ in 0..400 {
        if count() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the cache holds {} entries, expected {n}", count());
}

/// The numbers of a report that depend on its embeddings.
/// The probe's result without its time per iteration (which varies).
fn untimed(linear: Option<proto::LinearResult>) -> Option<proto::LinearResult> {
    linear.map(|l| proto::LinearResult {
        seconds_per_iteration: 0.0,
        ..l
    })
}

fn numbers(r: &proto::EvaluationReport) -> impl PartialEq + std::fmt::Debug {
    (
        (
            r.uniformity,
            r.alignment,
            r.tolerance,
            r.positive_similarity,
        ),
        r.nearest_negative_similarity.clone(),
        r.effective_rank,
        r.knn.clone(),
        untimed(r.linear.clone()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_key_holds_the_preprocessing_and_the_view_and_a_bad_entry_is_a_miss() {
    use embedeval::encoder::{ElementType, TensorSpec};
    use embedeval::jobs::cache::{CacheKey, View};
    use embedeval::registry::card::CardFile;

    // One ONNX file registered twice: the second card changes only mean/std
    // (and drops the golden outputs, which were made with the first).
    let models = tempfile::tempdir().unwrap();
    common::copy_model("infonce-t0.5", models.path(), "plain");
    let shifted = common::copy_model("infonce-t0.5", models.path(), "shifted");
    let card = std::fs::read_to_string(shifted.join("model.toml")).unwrap();
    let card = card[..card.find("[golden]").unwrap()]
        .replace("mean = [0.0]", "mean = [0.1]")
        .replace("std = [1.0]", "std = [0.9]");
    std::fs::write(shifted.join("model.toml"), &card).unwrap();
    let data = tempfile::tempdir().unwrap();
    let cache_dir = data.path().join("cache");
    let config = || {
        let mut c = embedeval::ServeConfig::with_models_dir(models.path());
        c.datasets_dir = zoo().join("../datasets");
        c.data_dir = data.path().to_path_buf();
        c
    };
    let seeded = |seed| {
        Some(MetricSpec {
            augmentation_seed: Some(seed),
            ..Default::default()
        })
    };
    let runs = [("plain", 0), ("shifted", 0), ("plain", 7)];

    // Three cold evaluations.
    let server = TestServer::start(config()).await;
    server.wait_serving().await;
    let mut cold = Vec::new();
    for (model, seed) in runs {
        cold.push(evaluate_with(&server, model, seeded(seed)).await);
    }
    let [(plain, plain_stages), (shift, shift_stages), (plain7, plain7_stages)] =
        <[_; 3]>::try_from(cold.clone()).unwrap();
    assert_eq!(plain.model_sha256, shift.model_sha256, "one ONNX file");
    assert!(
        shift_stages.iter().any(|s| s == "embed_test"),
        "the second preprocessing was served the first one's embeddings: {shift_stages:?}"
    );
    assert!(plain_stages.iter().any(|s| s == "embed_positive"));
    assert!(
        plain7_stages.iter().any(|s| s == "embed_positive")
            && !plain7_stages.iter().any(|s| s == "embed_test"),
        "a new seed makes new positive views and only those: {plain7_stages:?}"
    );
    assert_ne!(plain.uniformity, shift.uniformity);
    assert_ne!(plain.tolerance, shift.tolerance);
    assert_ne!(plain.alignment, plain7.alignment);
    assert_eq!(plain.uniformity, plain7.uniformity, "same test embeddings");
    // Each report echoes the preprocessing and where the model ran.
    let pre = |r: &proto::EvaluationReport| r.preprocessing.clone().unwrap();
    assert_eq!((pre(&plain).mean, pre(&plain).std), (vec![0.0], vec![1.0]));
    assert_eq!((pre(&shift).mean, pre(&shift).std), (vec![0.1], vec![0.9]));
    assert_eq!(
        (pre(&plain).scale, pre(&plain).layout.as_str()),
        (0.0625, "NCHW")
    );
    assert_eq!(plain.execution_provider, "cpu");
    assert_eq!(plain7.spec.as_ref().unwrap().augmentation_seed, Some(7));
    server.stop().await;
    // test and train embeddings and features and the positive views, twice,
    // and the positive views of seed 7.
    wait_for_cache_entries(&cache_dir, 11).await;

    // Three warm evaluations, after a restart: the encoder never runs and
    // each equals its own cold run.
    let server = TestServer::start(config()).await;
    server.wait_serving().await;
    for ((model, seed), (cold, _)) in runs.into_iter().zip(&cold) {
        let (warm, stages) = evaluate_with(&server, model, seeded(seed)).await;
        assert!(
            !stages.iter().any(|s| s.starts_with("embed_")),
            "{model} seed {seed} ran the encoder: {stages:?}"
        );
        assert_eq!(numbers(&warm), numbers(cold), "{model} seed {seed}");
    }

    // Another key's entry (valid, but for the other preprocessing) put in
    // place of plain's test embeddings: a miss, never its numbers.
    let key = |card: &str| CacheKey {
        model_sha256: plain.model_sha256.clone(),
        execution_provider: "cpu".into(),
        preprocessing: {
            let spec = |name: &str, shape: &[i64]| TensorSpec {
                name: name.into(),
                dtype: Some(ElementType::Float32),
                shape: shape.to_vec(),
            };
            let inputs = [spec("images", &[-1, 1, 8, 8])];
            let outputs = [spec("embedding", &[-1, 128]), spec("features", &[-1, 128])];
            CardFile::parse(card)
                .and_then(|f| f.resolve(&inputs, &outputs))
                .unwrap()
                .input
                .preprocessing()
        },
        dataset_id: plain.dataset_id.clone(),
        split: "test".into(),
        output: "embedding".into(),
        view: View::Original,
    };
    let plain_card = std::fs::read_to_string(models.path().join("plain/model.toml")).unwrap();
    let plain_file = cache_dir.join(format!("{}.emb", key(&plain_card).digest()));
    let shift_file = cache_dir.join(format!("{}.emb", key(&card).digest()));
    assert!(plain_file.exists() && shift_file.exists());
    std::fs::copy(&shift_file, &plain_file).unwrap();
    let (again, stages) = evaluate_with(&server, "plain", seeded(0)).await;
    assert!(
        stages.iter().any(|s| s == "embed_test"),
        "a mismatched entry was used: {stages:?}"
    );
    assert_eq!(numbers(&again), numbers(&plain));
    // A header scribbled over: also a miss, and the numbers stay right.
    let mut bytes = std::fs::read(&shift_file).unwrap();
    bytes[30] ^= 0x41;
    std::fs::write(&shift_file, bytes).unwrap();
    let (again, stages) = evaluate_with(&server, "shifted", seeded(0)).await;
    assert!(stages.iter().any(|s| s == "embed_test"), "{stages:?}");
    assert_eq!(numbers(&again), numbers(&shift));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_with_train_and_val_is_evaluated_on_val_and_says_so() {
    // The digits again, their test split named "val".
    let datasets = tempfile::tempdir().unwrap();
    let dir = datasets.path().join("digits-val");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(zoo().join("../datasets/digits")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let manifest = std::fs::read_to_string(dir.join("dataset.toml")).unwrap();
    std::fs::write(
        dir.join("dataset.toml"),
        manifest.replace("[splits.test]", "[splits.val]"),
    )
    .unwrap();
    let mut config = common::zoo_config();
    config.datasets_dir = datasets.path().to_path_buf();
    let server = TestServer::start(config).await;
    server.wait_serving().await;
    let mut client = EvaluationServiceClient::new(server.channel.clone());
    let request = |test_split: &str| EvaluateRequest {
        model: "infonce-t0.5".into(),
        dataset: "digits-val".into(),
        test_split: test_split.into(),
        spec: Some(MetricSpec {
            skip_linear: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut stream = client.evaluate(request("")).await.unwrap().into_inner();
    let mut report = None;
    while let Some(e) = stream.message().await.unwrap() {
        if let Some(evaluate_event::Event::Report(r)) = e.event {
            report = Some(r);
        }
    }
    let report = report.unwrap();
    assert_eq!(
        (report.test_split.as_str(), report.train_split.as_str()),
        ("val", "train")
    );
    let want = measured("infonce-t0.5");
    assert!((report.uniformity.unwrap() - want["uniformity"].as_f64().unwrap()).abs() < 1e-4);
    assert_eq!(report.num_test, 540);
    let err = client.evaluate(request("test")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("`test_split`"), "{}", err.message());
    server.stop().await;
}

/// Every stage reports how far it is in its own units: embedding stages in
/// images of their split, the metric loops in rows of the test split, the
/// probe in L-BFGS iterations of at most `linear_max_iter`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_reports_progress_in_its_own_units() {
    let server = common::zoo_server().await;
    let mut stream = EvaluationServiceClient::new(server.channel.clone())
        .evaluate(EvaluateRequest {
            model: "infonce-t0.5".into(),
            dataset: "digits".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen: std::collections::BTreeMap<String, Vec<(u64, u64)>> = Default::default();
    let mut completed = false;
    while let Some(e) = stream.message().await.unwrap() {
        match e.event {
            Some(evaluate_event::Event::Progress(p)) => {
                assert!(p.done <= p.total, "{p:?}");
                seen.entry(p.stage).or_default().push((p.done, p.total));
            }
            Some(evaluate_event::Event::Report(r)) => {
                completed = r.status == proto::EvaluationStatus::Completed as i32
            }
            _ => {}
        }
    }
    assert!(completed);
    let reached = |stage: &str, total: u64| {
        let events = seen
            .get(stage)
            .unwrap_or_else(|| panic!("no {stage}: {seen:?}"));
        assert!(
            events.contains(&(total, total)),
            "{stage} never reached {total}/{total}: {events:?}"
        );
    };
    reached("embed_test", 540);
    reached("embed_train", 1257);
    reached("embed_positive", 540);
    for stage in ["uniformity", "nearest_negatives", "penalty", "knn"] {
        reached(stage, 540);
    }
    let linear = &seen["linear"];
    assert!(
        linear
            .iter()
            .any(|&(done, total)| total == 1000 && done > 0),
        "{linear:?}"
    );
    server.stop().await;
}
