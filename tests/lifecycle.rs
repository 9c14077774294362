//! The life of an evaluation through gRPC: QUEUED visible, CancelEvaluation
//! inside a runaway stage, a client deadline, a client that leaves (also for
//! EvaluateEmbeddings), detach then watch, the bounds of the spec, and the
//! server process under SIGTERM (grace, then cancel and record; a second
//! signal exits at once).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestServer;
use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::{
    self, compare_event, evaluate_event, EvaluateRequest, EvaluationStatus, MetricSpec,
};
use tonic::transport::Channel;
use tonic::Code;

type Client = EvaluationServiceClient<Channel>;

/// A spec whose sampled uniformity runs for many minutes.
fn runaway() -> MetricSpec {
    MetricSpec {
        uniformity_exact_max_rows: Some(1),
        uniformity_samples: Some(1_000_000_000),
        ..common::only("uniformity")
    }
}

fn request(model: &str, spec: Option<MetricSpec>, detach: bool) -> EvaluateRequest {
    EvaluateRequest {
        model: model.into(),
        dataset: "digits".into(),
        spec,
        detach,
        ..Default::default()
    }
}

/// One model of the zoo, one slot, `queue` places; the server and its
/// models folder.
async fn server(queue: usize) -> (TestServer, tempfile::TempDir) {
    let models = tempfile::tempdir().unwrap();
    common::copy_model("infonce-t0.5", models.path(), "infonce-t0.5");
    let mut config = embedeval::ServeConfig::with_models_dir(models.path());
    config.datasets_dir = common::zoo().join("../datasets");
    config.max_evaluations = 1;
    config.evaluation_queue = queue;
    config.shutdown_grace = Duration::from_millis(500);
    let server = TestServer::start(config).await;
    server.wait_serving().await;
    (server, models)
}

/// Reads an Evaluate stream until `stage` starts; returns the evaluation id.
async fn until_stage(stream: &mut tonic::Streaming<proto::EvaluateEvent>, stage: &str) -> String {
    while let Some(e) = stream.message().await.unwrap() {
        if let Some(evaluate_event::Event::Progress(p)) = e.event {
            if p.stage == stage {
                return p.evaluation_id;
            }
        }
    }
    panic!("no {stage} stage")
}

async fn report(client: &mut Client, id: &str) -> proto::EvaluationReport {
    client
        .get_evaluation(proto::GetEvaluationRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

/// Waits (up to `within`) until evaluation `id` has ended; returns its report.
async fn ended(client: &mut Client, id: &str, within: Duration) -> proto::EvaluationReport {
    let until = Instant::now() + within;
    loop {
        let r = report(client, id).await;
        if r.status != EvaluationStatus::Running as i32
            && r.status != EvaluationStatus::Queued as i32
        {
            return r;
        }
        assert!(
            Instant::now() < until,
            "{id} still {} after {within:?}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a runaway evaluation and returns its stream (at its uniformity
/// stage) and id.
async fn start_runaway(client: &mut Client) -> (tonic::Streaming<proto::EvaluateEvent>, String) {
    let mut stream = client
        .evaluate(request("infonce-t0.5", Some(runaway()), false))
        .await
        .unwrap()
        .into_inner();
    let id = until_stage(&mut stream, "uniformity").await;
    (stream, id)
}

/// The slot is free: a quick evaluation is admitted and completes.
async fn slot_is_free(client: &mut Client) {
    let quick = MetricSpec {
        skip_knn: true,
        skip_linear: true,
        ..Default::default()
    };
    let mut stream = client
        .evaluate(request("infonce-t0.5", Some(quick), false))
        .await
        .expect("the slot is free")
        .into_inner();
    let mut done = None;
    while let Some(e) = stream.message().await.unwrap() {
        if let Some(evaluate_event::Event::Report(r)) = e.event {
            done = Some(r);
        }
    }
    assert_eq!(done.unwrap().status, EvaluationStatus::Completed as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_deadline_and_a_client_that_leaves_each_stop_a_runaway_stage_within_a_second() {
    let (server, _models) = server(0).await;
    let mut client = EvaluationServiceClient::new(server.channel.clone());

    // CancelEvaluation answers once the evaluation has recorded its end.
    let (mut stream, id) = start_runaway(&mut client).await;
    let t = Instant::now();
    let answer = client
        .cancel_evaluation(proto::CancelEvaluationRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(answer.status, EvaluationStatus::Cancelled as i32);
    let err = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(err.code(), Code::Cancelled, "{}", err.message());
    assert_eq!(
        report(&mut client, &id).await.error,
        "cancelled: cancelled by CancelEvaluation"
    );
    slot_is_free(&mut client).await;

    // A 50 ms deadline: the client gets DEADLINE_EXCEEDED, the report says
    // FAILED with the deadline named, the slot is free.
    let mut req = tonic::Request::new(request("infonce-t0.5", Some(runaway()), false));
    req.set_timeout(Duration::from_millis(50));
    let status = match client.evaluate(req).await {
        Ok(stream) => {
            let mut stream = stream.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("no error"),
                    Err(s) => break s,
                }
            }
        }
        Err(s) => s,
    };
    assert_eq!(status.code(), Code::DeadlineExceeded);
    // The newest evaluation is the one that ran out of time.
    let id = client
        .list_evaluations(proto::ListEvaluationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .evaluations[0]
        .id
        .clone();
    let r = ended(&mut client, &id, Duration::from_secs(1)).await;
    assert_eq!(r.status, EvaluationStatus::Failed as i32);
    assert!(r.error.contains("deadline of 0.050 s"), "{}", r.error);
    slot_is_free(&mut client).await;

    // A client that drops its stream.
    let (stream, id) = start_runaway(&mut client).await;
    drop(stream);
    let r = ended(&mut client, &id, Duration::from_secs(1)).await;
    assert_eq!(r.status, EvaluationStatus::Cancelled as i32);
    assert!(r.error.contains("client went away"), "{}", r.error);
    slot_is_free(&mut client).await;

    // EvaluateEmbeddings abandoned after 0.5 s: not RUNNING forever.
    let mut rows = Vec::new();
    let mut rng = embedeval::rng::SplitMix64::new(1);
    for _ in 0..2000 * 16 {
        rows.extend((rng.normal() as f32).to_le_bytes());
    }
    let messages = vec![
        proto::EvaluateEmbeddingsRequest {
            payload: Some(proto::evaluate_embeddings_request::Payload::Header(
                proto::EmbeddingsHeader {
                    name: "uploaded".into(),
                    spec: Some(runaway()),
                    ..Default::default()
                },
            )),
        },
        proto::EvaluateEmbeddingsRequest {
            payload: Some(proto::evaluate_embeddings_request::Payload::Chunk(
                proto::EmbeddingsChunk {
                    split: "test".into(),
                    embeddings: Some(proto::Tensor {
                        dtype: proto::DataType::Float32 as i32,
                        shape: vec![2000, 16],
                        data: rows,
                    }),
                    labels: (0..2000).map(|i| i % 10).collect(),
                },
            )),
        },
    ];
    let mut req = tonic::Request::new(futures::stream::iter(messages));
    req.set_timeout(Duration::from_millis(500));
    let err = client.evaluate_embeddings(req).await.unwrap_err();
    // The server's timeout (tonic answers CANCELLED) or the client's own.
    assert!(
        [Code::DeadlineExceeded, Code::Cancelled].contains(&err.code()),
        "{err}"
    );
    let t = Instant::now();
    loop {
        let list = client
            .list_evaluations(proto::ListEvaluationsRequest {
                model: "uploaded".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let r = &list.evaluations[0];
        if r.status == EvaluationStatus::Failed as i32 {
            assert!(r.error.contains("deadline"), "{}", r.error);
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(1), "still {}", r.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    slot_is_free(&mut client).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_jobs_answer_at_once_show_queued_and_are_watched_to_the_end() {
    let (server, _models) = server(2).await;
    let mut client = EvaluationServiceClient::new(server.channel.clone());
    let (_running, runaway_id) = start_runaway(&mut client).await;

    // Detached while the slot is busy: QUEUED, at once.
    let t = Instant::now();
    let mut stream = client
        .evaluate(request("infonce-t0.5", None, true))
        .await
        .unwrap()
        .into_inner();
    let Some(evaluate_event::Event::Accepted(accepted)) =
        stream.message().await.unwrap().unwrap().event
    else {
        panic!("a detached request answers with Accepted")
    };
    assert!(
        stream.message().await.unwrap().is_none(),
        "and nothing else"
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(accepted.status, EvaluationStatus::Queued as i32);
    let id = accepted.evaluation_ids[0].clone();
    assert_eq!(
        report(&mut client, &id).await.status,
        EvaluationStatus::Queued as i32
    );

    // A detached comparison: one id per model.
    let mut stream = client
        .compare(proto::CompareRequest {
            models: vec!["infonce-t0.5".into(), "infonce-t0.5".into()],
            dataset: "digits".into(),
            spec: None,
            detach: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let Some(compare_event::Event::Accepted(compared)) =
        stream.message().await.unwrap().unwrap().event
    else {
        panic!("Accepted")
    };
    assert_eq!(compared.evaluation_ids.len(), 2);
    // Its comparison is stored at once, its rows still queued.
    let stored = client
        .get_comparison(proto::GetComparisonRequest {
            id: compared.comparison_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids: Vec<String> = stored.rows.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    let mut want = compared.evaluation_ids.clone();
    want.sort();
    assert_eq!(ids, want);

    // Watch the queued one from another connection while the runaway goes.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watcher = EvaluationServiceClient::new(channel);
    let mut watch = watcher
        .watch_evaluation(proto::WatchEvaluationRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    client
        .cancel_evaluation(proto::CancelEvaluationRequest { id: runaway_id })
        .await
        .unwrap();
    let mut stages = Vec::new();
    let mut last = None;
    while let Some(e) = watch.message().await.unwrap() {
        match e.event {
            Some(evaluate_event::Event::Progress(p)) => {
                assert_eq!(p.evaluation_id, id, "only its own progress");
                stages.push(p.stage);
            }
            Some(evaluate_event::Event::Report(r)) => last = Some(r),
            _ => {}
        }
    }
    let last = last.expect("the report last");
    assert_eq!(
        last.status,
        EvaluationStatus::Completed as i32,
        "{}",
        last.error
    );
    assert!(stages.iter().any(|s| s == "knn"), "{stages:?}");
    assert_eq!(report(&mut client, &id).await, last);
    // Each compared model completes on its own, watched or polled.
    for cid in &compared.evaluation_ids {
        let r = ended(&mut client, cid, Duration::from_secs(60)).await;
        assert_eq!(r.status, EvaluationStatus::Completed as i32);
    }
    // Watching an ended evaluation gives its report at once.
    let mut watch = client
        .watch_evaluation(proto::WatchEvaluationRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    let Some(evaluate_event::Event::Report(r)) = watch.message().await.unwrap().unwrap().event
    else {
        panic!("the report")
    };
    assert_eq!(r, last);
    let err = client
        .watch_evaluation(proto::WatchEvaluationRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_that_sets_work_has_a_bound_named_in_the_error() {
    let (server, _models) = server(0).await;
    let mut client = EvaluationServiceClient::new(server.channel.clone());
    for (spec, field, bound) in [
        (
            MetricSpec {
                uniformity_samples: Some(2_000_000_000_000),
                ..Default::default()
            },
            "uniformity_samples",
            "1000000000",
        ),
        (
            MetricSpec {
                linear_max_iter: Some(1_000_000),
                ..Default::default()
            },
            "linear_max_iter",
            "100000",
        ),
        (
            MetricSpec {
                knn_k: Some(50_000),
                ..Default::default()
            },
            "knn_k",
            "10000",
        ),
    ] {
        let err = client
            .evaluate(request("infonce-t0.5", Some(spec), false))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().contains(field) && err.message().contains(bound),
            "{}",
            err.message()
        );
    }
    server.stop().await;
}

/// A server process over one zoo model.
struct Process {
    child: Child,
    addr: String,
    data: tempfile::TempDir,
    _models: tempfile::TempDir,
}

impl Process {
    fn start(grace: &str) -> Self {
        let models = tempfile::tempdir().unwrap();
        common::copy_model("infonce-t0.5", models.path(), "infonce-t0.5");
        let data = tempfile::tempdir().unwrap();
        let addr = common::free_addr();
        let child = Command::new(env!("CARGO_BIN_EXE_embedeval"))
            .args(["serve", "--addr", &addr, "--shutdown-grace", grace])
            .arg("--data-dir")
            .arg(data.path())
            .arg("--models-dir")
            .arg(models.path())
            .arg("--datasets-dir")
            .arg(common::zoo().join("../datasets"))
            .env("EMBEDEVAL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            addr,
            data,
            _models: models,
        }
    }

    async fn client(&self) -> Client {
        EvaluationServiceClient::new(common::connect(&self.addr).await)
    }

    /// A runaway evaluation, retried while the models load.
    async fn runaway(&self, client: &mut Client) -> String {
        loop {
            match client
                .evaluate(request("infonce-t0.5", Some(runaway()), true))
                .await
            {
                Ok(stream) => {
                    let first = stream.into_inner().message().await.unwrap().unwrap();
                    let Some(evaluate_event::Event::Accepted(a)) = first.event else {
                        panic!("Accepted")
                    };
                    return a.evaluation_ids[0].clone();
                }
                Err(s) if s.code() == Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(s) => panic!("{s}"),
            }
        }
    }

    fn signal(&self) {
        common::sigterm(&self.child);
    }

    /// Waits (up to `within`) for the process to exit; its exit code.
    fn exit_within(&mut self, within: Duration) -> Option<i32> {
        common::exit_within(&mut self.child, within, "the server", String::new)
    }

    /// Evaluation `id` as the results database holds it after the process.
    async fn stored(&self, id: &str) -> embedeval::domain::Report {
        let url = embedeval::database::ReportStore::default_url(self.data.path());
        let store = embedeval::database::ReportStore::open(&url).await.unwrap();
        store.get(id).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_a_runaway_its_grace_then_cancels_and_records_it() {
    let mut server = Process::start("1s");
    let mut client = server.client().await;
    let id = server.runaway(&mut client).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        report(&mut client, &id).await.status,
        EvaluationStatus::Running as i32
    );
    let t = Instant::now();
    server.signal();
    // During the grace period: reads are served, new jobs refused.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        report(&mut client, &id).await.status,
        EvaluationStatus::Running as i32
    );
    let refused = client
        .evaluate(request("infonce-t0.5", None, false))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{}", refused.message());
    let code = tokio::task::block_in_place(|| server.exit_within(Duration::from_secs(1 + 5)));
    let took = t.elapsed();
    assert_eq!(code, Some(0));
    assert!(took >= Duration::from_secs(1), "{took:?}");
    let r = server.stored(&id).await;
    assert_eq!(r.status, embedeval::domain::Status::Cancelled);
    assert_eq!(
        r.error,
        "cancelled: the server shut down before the evaluation finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once() {
    let mut server = Process::start("60s");
    let mut client = server.client().await;
    let id = server.runaway(&mut client).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    server.signal();
    let code = tokio::task::block_in_place(|| server.exit_within(Duration::from_secs(3)));
    assert_eq!(code, Some(130));
    assert!(t.elapsed() < Duration::from_secs(2));
    // The detached job is left to its replica, which takes it back (or
    // another replica, once its lease lapses): opening the database does
    // not end it.
    let r = server.stored(&id).await;
    assert_eq!(r.status, embedeval::domain::Status::Running);
    let url = embedeval::database::ReportStore::default_url(server.data.path());
    let store = embedeval::database::ReportStore::open(&url).await.unwrap();
    let job = store.job_of(&id).await.unwrap().expect("the job is stored");
    assert!(!job.done);
    assert!(
        job.owner
            .ends_with(&format!(":{}", server.addr.rsplit(':').next().unwrap())),
        "{}",
        job.owner
    );
}
