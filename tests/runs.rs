//! Training runs end to end: `embedeval watch` follows a folder the test
//! writes checkpoints into (zoo exports, one written under a hidden name and
//! renamed when complete, and a collapsed encoder whose ONNX the test builds
//! itself); each checkpoint is evaluated exactly once, in step order; the
//! run's path agrees with the individual reports; the collapse warnings
//! fire at the collapsed checkpoint and not before; after a server restart
//! nothing is redone.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{zoo, TestServer};
use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::{self, EvaluationStatus};
use prost::Message;

/// The few ONNX messages a constant encoder needs (onnx.proto3 field numbers).
mod onnx {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Model {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OpSet>,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<Graph>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OpSet {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Graph {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<Node>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<Tensor>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfo>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfo>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Node {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "4")]
        pub op_type: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        #[prost(string, tag = "8")]
        pub name: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfo {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<Type>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Type {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TensorType>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorType {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<Shape>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Shape {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dim>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dim {
        #[prost(int64, optional, tag = "1")]
        pub dim_value: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub dim_param: Option<String>,
    }
}

/// A float tensor type of `dims` (None: the batch axis).
fn tensor_type(dims: &[Option<i64>]) -> Option<onnx::Type> {
    Some(onnx::Type {
        tensor_type: Some(onnx::TensorType {
            elem_type: 1,
            shape: Some(onnx::Shape {
                dim: dims
                    .iter()
                    .map(|d| onnx::Dim {
                        dim_value: *d,
                        dim_param: d.is_none().then(|| "batch".to_string()),
                    })
                    .collect(),
            }),
        }),
    })
}

/// A completely collapsed encoder of 8×8 greyscale images: Flatten, MatMul
/// by zeros, Add ones: every image maps to the same 16-d embedding.
fn collapsed_onnx() -> Vec<u8> {
    let model = onnx::Model {
        ir_version: 8,
        opset_import: vec![onnx::OpSet {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(onnx::Graph {
            name: "collapsed".into(),
            node: vec![
                onnx::Node {
                    input: vec!["images".into()],
                    output: vec!["flat".into()],
                    op_type: "Flatten".into(),
                },
                onnx::Node {
                    input: vec!["flat".into(), "w".into()],
                    output: vec!["zero".into()],
                    op_type: "MatMul".into(),
                },
                onnx::Node {
                    input: vec!["zero".into(), "b".into()],
                    output: vec!["embedding".into()],
                    op_type: "Add".into(),
                },
            ],
            initializer: vec![
                onnx::Tensor {
                    dims: vec![64, 16],
                    data_type: 1,
                    float_data: vec![0.0; 64 * 16],
                    name: "w".into(),
                },
                onnx::Tensor {
                    dims: vec![16],
                    data_type: 1,
                    float_data: vec![1.0; 16],
                    name: "b".into(),
                },
            ],
            input: vec![onnx::ValueInfo {
                name: "images".into(),
                r#type: tensor_type(&[None, Some(1), Some(8), Some(8)]),
            }],
            output: vec![onnx::ValueInfo {
                name: "embedding".into(),
                r#type: tensor_type(&[None, Some(16)]),
            }],
        }),
    };
    model.encode_to_vec()
}

/// The card every checkpoint of the run shares (the zoo's preprocessing).
const CARD: &str = r#"
[training]
loss = "infonce"
temperature = 0.5
dataset = "digits"

[input]
scale = 0.0625
mean = [0.0]
std = [1.0]
"#;

/// `embedeval watch` as a child process; its stdout lines arrive on a channel.
fn watcher(
    server: &TestServer,
    dir: &Path,
    card: &Path,
    once: bool,
) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_embedeval"));
    cmd.args([
        "watch",
        dir.to_str().unwrap(),
        "--run",
        "r1",
        "--dataset",
        "digits",
        "--card",
        card.to_str().unwrap(),
        "--poll",
        "0.2",
        "--skip-linear",
    ])
    .env("EMBEDEVAL_SERVER", format!("{}", server.addr))
    .stdout(Stdio::piped());
    if once {
        cmd.arg("--once");
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The next line starting with `prefix`, within two minutes (blocking this
/// worker thread only).
fn expect_line(rx: &mpsc::Receiver<String>, prefix: &str, seen: &mut Vec<String>) -> String {
    tokio::task::block_in_place(|| next_line(rx, prefix, seen))
}

fn next_line(rx: &mpsc::Receiver<String>, prefix: &str, seen: &mut Vec<String>) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.starts_with(prefix) {
                    return line;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line starting with {prefix:?}; saw {seen:#?}");
}

async fn evaluations(server: &TestServer) -> Vec<proto::EvaluationReport> {
    EvaluationServiceClient::new(server.channel.clone())
        .list_evaluations(proto::ListEvaluationsRequest {
            dataset: "digits".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .evaluations
}

// Multi-threaded: the test blocks a thread reading the watcher's output
// while the in-process server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_watched_folder_becomes_a_run_evaluated_once_per_checkpoint() {
    let data = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = common::zoo_config();
        c.data_dir = data.path().to_path_buf();
        c
    };
    let server = TestServer::start(config()).await;
    server.wait_serving().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("exports");
    std::fs::create_dir(&dir).unwrap();
    let card = work.path().join("card.toml");
    std::fs::write(&card, CARD).unwrap();

    let zoo_onnx = |m: &str| std::fs::read(zoo().join(m).join("model.onnx")).unwrap();
    std::fs::write(dir.join("epoch_001.onnx"), zoo_onnx("infonce-t0.2")).unwrap();
    // The second checkpoint is being written under a hidden name.
    let second = zoo_onnx("infonce-t0.5");
    let partial = dir.join(".epoch_002.onnx.part");
    std::fs::write(&partial, &second[..second.len() / 2]).unwrap();

    let (mut child, rx) = watcher(&server, &dir, &card, false);
    let mut seen = Vec::new();
    expect_line(&rx, "step", &mut seen);
    let row1 = expect_line(&rx, "1 ", &mut seen);
    assert!(row1.contains("r1-step1"), "{row1}");

    // Completed, then renamed into place.
    std::fs::write(&partial, &second).unwrap();
    std::fs::rename(&partial, dir.join("epoch_002.onnx")).unwrap();
    let row2 = expect_line(&rx, "2 ", &mut seen);
    assert!(row2.contains("r1-step2"), "{row2}");

    // A collapsed encoder, its step from a side-car card.
    std::fs::write(dir.join("collapsed.onnx"), collapsed_onnx()).unwrap();
    std::fs::write(
        dir.join("collapsed.toml"),
        format!("{CARD}\n[outputs]\nembedding = \"embedding\"\n")
            .replace("dataset = \"digits\"", "dataset = \"digits\"\nstep = 3"),
    )
    .unwrap();
    let row3 = expect_line(&rx, "3 ", &mut seen);
    assert!(row3.contains("r1-step3"), "{row3}");
    let warning = expect_line(&rx, "warning: ", &mut seen);
    assert!(warning.contains("collapse at step 3"), "{warning}");
    child.kill().unwrap();
    tokio::task::block_in_place(|| child.wait().unwrap());

    // Exactly one evaluation per checkpoint, in step order.
    let mut reports = evaluations(&server).await;
    reports.reverse();
    let models: Vec<&str> = reports.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(models, ["r1-step1", "r1-step2", "r1-step3"]);
    assert!(reports
        .iter()
        .all(|r| r.status == EvaluationStatus::Completed as i32));

    // The run agrees with the individual reports; the warnings begin at 3.
    let mut client = EvaluationServiceClient::new(server.channel.clone());
    let run = client
        .get_run(proto::GetRunRequest {
            name: "r1".into(),
            dataset: "digits".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let steps: Vec<u64> = run.checkpoints.iter().map(|c| c.step).collect();
    assert_eq!(steps, [1, 2, 3]);
    for (c, r) in run.checkpoints.iter().zip(&reports) {
        assert_eq!(c.report.as_ref(), Some(r));
    }
    let collapsed = reports[2].clone();
    assert!(collapsed.uniformity.unwrap() < 1e-3, "{collapsed:?}");
    assert!(collapsed.positive_similarity.unwrap() > 0.999);
    let kinds: Vec<(String, u64)> = run
        .warnings
        .iter()
        .map(|w| (w.kind.clone(), w.step))
        .collect();
    assert!(
        kinds.contains(&("complete_collapse".into(), 3)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("dimensional_collapse".into(), 3)),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().all(|(_, s)| *s == 3),
        "nothing before: {kinds:?}"
    );
    let runs = client
        .list_runs(proto::ListRunsRequest {})
        .await
        .unwrap()
        .into_inner()
        .runs;
    let r1 = runs.iter().find(|r| r.name == "r1").unwrap();
    assert_eq!((r1.checkpoints, r1.first_step, r1.last_step), (3, 1, 3));

    // `runs show` prints the same numbers, and draws the path.
    let path_png = work.path().join("path.png");
    let out = Command::new(env!("CARGO_BIN_EXE_embedeval"))
        .args(["runs", "show", "r1", "--dataset", "digits", "--plot"])
        .arg(&path_png)
        .arg("--metrics-plot")
        .arg(work.path().join("metrics.svg"))
        .env("EMBEDEVAL_SERVER", format!("{}", server.addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("path.png: 3 marks drawn"), "{stderr}");
    assert!(
        stderr.contains("warning: complete collapse at step 3"),
        "{stderr}"
    );
    // Four panels (uniformity, tolerance, effective rank, kNN), a mark per
    // checkpoint in each.
    assert!(stderr.contains("metrics.svg: 12 marks drawn"), "{stderr}");
    let png = image::open(&path_png).unwrap();
    assert_eq!((png.width(), png.height()), (1280, 860));
    let out = Command::new(env!("CARGO_BIN_EXE_embedeval"))
        .args([
            "runs",
            "show",
            "r1",
            "--dataset",
            "digits",
            "--format",
            "csv",
        ])
        .env("EMBEDEVAL_SERVER", format!("{}", server.addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    for (line, r) in lines[1..].iter().zip(&reports) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[1], r.model);
        assert_eq!(cells[2], format!("{:.4}", r.uniformity.unwrap()));
        assert_eq!(cells[3], format!("{:.4}", r.tolerance.unwrap()));
    }
    server.stop().await;

    // After a restart, nothing is redone.
    let server = TestServer::start(config()).await;
    server.wait_serving().await;
    let (mut child, rx) = watcher(&server, &dir, &card, true);
    let status = tokio::task::block_in_place(|| child.wait().unwrap());
    assert!(status.success());
    let rows: Vec<String> = rx.try_iter().collect();
    assert_eq!(rows.len(), 1, "only the header: {rows:?}");
    assert_eq!(evaluations(&server).await.len(), 3);
    server.stop().await;
}

/// The bundled run (models/infonce-t0.2-e*/, `training/train.py
/// --checkpoint-every`): its checkpoints in step order, its path evaluated
/// checkpoint by checkpoint, no warning on its final checkpoint, and none
/// of it in a comparison of every model.
#[tokio::test]
async fn the_bundled_run_is_a_healthy_path() {
    let server = common::zoo_server().await;
    let mut client = EvaluationServiceClient::new(server.channel.clone());
    let runs = client
        .list_runs(proto::ListRunsRequest {})
        .await
        .unwrap()
        .into_inner()
        .runs;
    let bundled = runs
        .iter()
        .find(|r| r.name == "infonce-t0.2-run")
        .expect("the bundled run");
    assert!(bundled.checkpoints >= 4, "{bundled:?}");
    assert_eq!(bundled.first_step, 1);
    let get = |client: &mut EvaluationServiceClient<tonic::transport::Channel>| {
        let mut client = client.clone();
        async move {
            client
                .get_run(proto::GetRunRequest {
                    name: "infonce-t0.2-run".into(),
                    dataset: "digits".into(),
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let run = get(&mut client).await;
    let steps: Vec<u64> = run.checkpoints.iter().map(|c| c.step).collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert!(run.checkpoints.iter().all(|c| c.report.is_none()));
    assert!(run.checkpoint_to_keep.is_none(), "nothing evaluated yet");
    for c in &run.checkpoints {
        let mut stream = client
            .evaluate(proto::EvaluateRequest {
                model: c.model.clone(),
                dataset: "digits".into(),
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
    let run = get(&mut client).await;
    assert!(run.checkpoints.iter().all(|c| c.report.is_some()));
    let last = run.checkpoints.last().unwrap().step;
    assert!(
        run.warnings.iter().all(|w| w.step != last),
        "no warning on the final checkpoint: {:?}",
        run.warnings
    );
    // Uniformity rises from the first checkpoint to the last.
    let u = |c: &proto::Checkpoint| c.report.as_ref().unwrap().uniformity.unwrap();
    assert!(u(run.checkpoints.last().unwrap()) > u(&run.checkpoints[0]));
    // The checkpoint to keep: the rule of a comparison's recommendation over
    // the checkpoints' reports (the probe skipped: by kNN), named by step.
    let keep = run
        .checkpoint_to_keep
        .as_ref()
        .expect("a checkpoint to keep");
    let owned: Vec<(u64, embedeval::domain::Report)> = run
        .checkpoints
        .iter()
        .map(|c| (c.step, c.report.clone().unwrap().into()))
        .collect();
    let reports: Vec<(u64, &embedeval::domain::Report)> =
        owned.iter().map(|(step, r)| (*step, r)).collect();
    let want = embedeval::report::checkpoint_to_keep(&reports)
        .unwrap()
        .to_recommendation();
    assert_eq!(keep.recommended, want.recommended);
    assert_eq!(keep.reason, want.reason);
    assert_eq!(keep.front, want.front);
    let kept = run
        .checkpoints
        .iter()
        .find(|c| c.model == keep.recommended)
        .expect("the kept checkpoint is one of the run's");
    assert!(
        keep.reason.starts_with(&format!("step {}: ", kept.step)),
        "{}",
        keep.reason
    );
    assert!(keep.reason.contains("best kNN top-1"), "{}", keep.reason);
    assert!(keep.best_linear.is_none() && keep.best_knn.is_some());
    server.stop().await;
}
