//! The `embedeval` client subcommands against an in-process server.

mod common;

use std::process::Command;

use common::{zoo, TestServer};
use embedeval::data::npy::NpyArray;
use embedeval::ServeConfig;

fn cli(server: &TestServer, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_embedeval"))
        .args(args)
        .env("EMBEDEVAL_SERVER", format!("http://{}", server.addr))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_datasets_and_embed_from_the_command_line() {
    let mut config = ServeConfig::with_models_dir(zoo());
    config.datasets_dir = zoo().join("../datasets");
    let server = TestServer::start(config).await;
    server.wait_serving().await;

    let out = cli(&server, &["models", "ls"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("NAME"), "{text}");
    assert_eq!(text.lines().count(), 15, "header and 14 models:\n{text}");

    let out = cli(&server, &["datasets", "ls", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["name"], "digits");
    assert_eq!(json[0]["num_classes"], 10);

    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("e.npy");
    let out = cli(
        &server,
        &[
            "embed",
            "infonce-t0.5",
            "--dataset",
            "digits",
            "--split",
            "test",
            "-o",
            npy.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = NpyArray::read(&npy).unwrap();
    assert_eq!(got.shape, vec![540, 128]);
    let want =
        NpyArray::read(&zoo().join("../tests/data/ort_python/infonce-t0.5.test.embedding.npy"))
            .unwrap();
    let diff = got
        .to_f32()
        .unwrap()
        .iter()
        .zip(want.to_f32().unwrap())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff <= 1e-5, "{diff}");
    let labels = NpyArray::read(&dir.path().join("e.labels.npy"))
        .unwrap()
        .to_i64()
        .unwrap();
    assert_eq!(labels.len(), 540);

    let out = cli(&server, &["models", "show", "nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("NotFound") && err.contains("model not found: nope"),
        "{err}"
    );
    server.stop().await;
}
