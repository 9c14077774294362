//! The Prometheus endpoint on --metrics-addr: requests by RPC and status,
//! latencies, evaluation load, stage durations, embedding-cache results.

mod common;

use std::io::{Read, Write};

use common::TestServer;
use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::model_service_client::ModelServiceClient;
use embedeval::proto::{self, GetModelRequest, ListModelsRequest};

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// Evaluates the simple model on the digits, without the probe, to its end.
async fn evaluate_simple(server: &TestServer) {
    let mut stream = EvaluationServiceClient::new(server.channel.clone())
        .evaluate(proto::EvaluateRequest {
            model: "simple".into(),
            dataset: "digits".into(),
            detach: false,
            test_split: String::new(),
            train_split: String::new(),
            spec: Some(proto::MetricSpec {
                skip_linear: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while stream.message().await.unwrap().is_some() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_rpcs_evaluations_and_cache_use() {
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut config = common::zoo_config();
    config.metrics_addr = Some(metrics_addr);
    let server = TestServer::start(config).await;
    server.wait_serving().await;

    let mut models = ModelServiceClient::new(server.channel.clone());
    models
        .list_models(ListModelsRequest::default())
        .await
        .unwrap();
    models
        .get_model(GetModelRequest {
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    evaluate_simple(&server).await;
    // Scribble over the header of every cache entry written so far (the
    // cache is written in the background: wait for the first one); the
    // repeat finds them and counts mismatches.
    let cache = server.data_dir.as_ref().unwrap().path().join("cache");
    let entries = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "emb"))
            .collect()
    };
    for _ in 0..400 {
        if !entries().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for path in entries() {
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 0x41;
        std::fs::write(&path, bytes).unwrap();
    }
    evaluate_simple(&server).await;

    let text = tokio::task::spawn_blocking(move || scrape(metrics_addr))
        .await
        .unwrap();
    for needle in [
        r#"embedeval_requests_total{rpc="/embedeval.v1.ModelService/ListModels",status="OK"} 1"#,
        r#"embedeval_requests_total{rpc="/embedeval.v1.ModelService/GetModel",status="NOT_FOUND"} 1"#,
        "embedeval_request_seconds_bucket",
        r#"embedeval_stage_seconds_count{stage="knn"} 2"#,
        r#"embedeval_embedding_cache_total{result="miss"}"#,
        r#"embedeval_embedding_cache_total{result="mismatch"}"#,
        "embedeval_evaluations_running 0",
        "embedeval_evaluations_queued 0",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    server.stop().await;
}
