//! kill -9 during an evaluation: after a restart under the same replica name
//! the results database opens, the earlier reports are intact, and the
//! replica takes its interrupted job back: an attached comparison (whose
//! client went with the process) is marked failed.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{zoo, TestServer};
use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::{self, EvaluationStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_evaluation_leaves_a_consistent_database() {
    let data = tempfile::tempdir().unwrap();
    let addr = common::free_addr();
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedeval"))
        .args([
            "serve",
            "--addr",
            &addr,
            "--data-dir",
            data.path().to_str().unwrap(),
            "--replica-id",
            "crash-test",
        ])
        .arg("--models-dir")
        .arg(zoo())
        .arg("--datasets-dir")
        .arg(zoo().join("../datasets"))
        .env("EMBEDEVAL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let channel = common::connect(&addr).await;
    let mut client = EvaluationServiceClient::new(channel.clone());
    let evaluate = |model: &str| proto::EvaluateRequest {
        model: model.into(),
        dataset: "digits".into(),
        detach: false,
        test_split: String::new(),
        train_split: String::new(),
        spec: None,
        ..Default::default()
    };

    // One evaluation that completes (retried while the models load).
    let finished = loop {
        match client.evaluate(evaluate("infonce-t0.2")).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                let mut report = None;
                while let Some(e) = stream.message().await.unwrap() {
                    if let Some(proto::evaluate_event::Event::Report(r)) = e.event {
                        report = Some(r);
                    }
                }
                break report.unwrap();
            }
            Err(s) if s.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(s) => panic!("{s}"),
        }
    };

    // A comparison of the whole zoo, killed once it is under way.
    let (_stream, p) = common::compare_all_started(channel.clone()).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let mut config = common::zoo_config();
    config.data_dir = data.path().to_path_buf();
    config.replica_id = Some("crash-test".into());
    let server = TestServer::start(config).await;
    server.wait_serving().await;
    let mut client = EvaluationServiceClient::new(server.channel.clone());
    let earlier = client
        .get_evaluation(proto::GetEvaluationRequest {
            id: finished.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(earlier, finished, "the completed report is intact");
    // The replica takes its own job back as soon as its models load.
    let running = [
        EvaluationStatus::Queued as i32,
        EvaluationStatus::Running as i32,
    ];
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let interrupted = loop {
        let r = client
            .get_evaluation(proto::GetEvaluationRequest {
                id: p.evaluation_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if !running.contains(&r.status) || std::time::Instant::now() > until {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(interrupted.status, EvaluationStatus::Failed as i32);
    assert!(
        interrupted.error.contains("interrupted"),
        "{}",
        interrupted.error
    );
    server.stop().await;
}
