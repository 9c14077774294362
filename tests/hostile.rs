//! Hostile input, table-driven: well over a hundred bad requests across
//! every RPC, each with the code it must get. After the whole table the
//! server still serves, nothing outside its roots changed (a file that a
//! manifest tries to reach stays unread: no dataset holds it), and no panic
//! happened anywhere in the process.

mod common;

use common::RawCodec;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use embedeval::data::npy::{NpyArray, NpyType};
use embedeval::proto::{self, evaluation_service_client::EvaluationServiceClient};
use embedeval::proto::{
    dataset_service_client::DatasetServiceClient, embedding_service_client::EmbeddingServiceClient,
    model_service_client::ModelServiceClient,
};
use embedeval::ServeConfig;
use tonic::transport::Channel;
use tonic::{Code, Status};

static PANICS: AtomicUsize = AtomicUsize::new(0);

type Call = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

/// One bad request and the code it must get.
struct Case {
    name: String,
    expect: Code,
    call: Call,
}

fn case(
    name: impl Into<String>,
    expect: Code,
    call: impl Future<Output = Result<(), Status>> + Send + 'static,
) -> Case {
    Case {
        name: name.into(),
        expect,
        call: Box::pin(call),
    }
}

/// A unary answer, its value dropped.
async fn unary<T>(
    f: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<(), Status> {
    f.await.map(|_| ())
}

/// A streamed answer read to its end: the first error, if any.
async fn streamed<T>(
    f: impl Future<Output = Result<tonic::Response<tonic::Streaming<T>>, Status>>,
) -> Result<(), Status> {
    let mut stream = f.await?.into_inner();
    while stream.message().await?.is_some() {}
    Ok(())
}

/// Sends raw bytes as the request message of `path` (a unary RPC).
async fn raw(channel: Channel, path: &'static str, body: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(|_| ())
}

/// A protobuf string field `field` holding raw `bytes` (invalid UTF-8 allowed).
fn string_field(field: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(field << 3) | 2];
    let mut len = bytes.len();
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(bytes);
    out
}

fn npy_u8(shape: Vec<usize>) -> Vec<u8> {
    let n = shape.iter().product();
    NpyArray {
        dtype: NpyType::U8,
        shape,
        data: vec![1; n],
    }
    .to_bytes()
}

fn npy_labels(n: usize) -> Vec<u8> {
    NpyArray {
        dtype: NpyType::I64,
        shape: vec![n],
        data: (0..n as i64).flat_map(|i| (i % 2).to_le_bytes()).collect(),
    }
    .to_bytes()
}

/// A RegisterDataset upload of `files` (path, bytes) under `name`.
fn dataset_upload(
    name: &str,
    format: &str,
    files: Vec<(String, Vec<u8>)>,
) -> Vec<proto::RegisterDatasetRequest> {
    use proto::register_dataset_request::Payload;
    let mut out = vec![proto::RegisterDatasetRequest {
        payload: Some(Payload::Header(proto::DatasetUpload {
            name: name.into(),
            format: format.into(),
            ..Default::default()
        })),
    }];
    for (path, data) in files {
        out.push(proto::RegisterDatasetRequest {
            payload: Some(Payload::File(proto::DatasetFileChunk { path, data })),
        });
    }
    out
}

/// An embedeval-npy manifest whose test split names `images`.
fn manifest(images: &str, size: u64, shape: [usize; 3]) -> Vec<u8> {
    format!(
        "format = \"embedeval-npy\"\nnum_classes = 2\nimage_shape = [{}, {}, {}]\n\n[splits.test]\nimages = \"{images}\"\nlabels = \"labels.npy\"\nsize = {size}\n",
        shape[0], shape[1], shape[2]
    )
    .into_bytes()
}

/// A RegisterModel upload.
fn model_upload(
    name: &str,
    card: String,
    onnx: &[u8],
    declared: Option<u64>,
    sha: &str,
) -> Vec<proto::RegisterModelRequest> {
    use proto::register_model_request::Payload;
    let mut out = vec![proto::RegisterModelRequest {
        payload: Some(Payload::Card(proto::ModelUpload {
            name: name.into(),
            card_toml: card,
            size_bytes: declared.unwrap_or(onnx.len() as u64),
            sha256: sha.into(),
            replace: false,
        })),
    }];
    out.extend(onnx.chunks(1 << 20).map(|c| proto::RegisterModelRequest {
        payload: Some(Payload::Chunk(c.to_vec())),
    }));
    out
}

fn header(
    temperature: Option<f64>,
    spec: Option<proto::MetricSpec>,
) -> proto::EvaluateEmbeddingsRequest {
    proto::EvaluateEmbeddingsRequest {
        payload: Some(proto::evaluate_embeddings_request::Payload::Header(
            proto::EmbeddingsHeader {
                name: "uploaded".into(),
                temperature,
                spec,
                ..Default::default()
            },
        )),
    }
}

fn chunk(
    split: &str,
    dtype: proto::DataType,
    shape: Vec<i64>,
    data: Vec<u8>,
    labels: Vec<i64>,
) -> proto::EvaluateEmbeddingsRequest {
    proto::EvaluateEmbeddingsRequest {
        payload: Some(proto::evaluate_embeddings_request::Payload::Chunk(
            proto::EmbeddingsChunk {
                split: split.into(),
                embeddings: Some(proto::Tensor {
                    dtype: dtype as i32,
                    shape,
                    data,
                }),
                labels,
            },
        )),
    }
}

fn floats(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| ((i % 7) as f32 - 3.0).to_le_bytes())
        .collect()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

/// A PNG of `w` × `h` zeros (a few KiB that decode to megabytes).
fn zeros_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::new(w, h);
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_across_every_rpc_gets_its_code_and_harms_nothing() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        hook(info);
    }));

    // The server's roots and, beside them, a file it must never serve.
    let sandbox = tempfile::tempdir().unwrap();
    let (models, datasets, data, outside) = (
        sandbox.path().join("models"),
        sandbox.path().join("datasets"),
        sandbox.path().join("data"),
        sandbox.path().join("outside"),
    );
    common::copy_model("infonce-t0.5", &models, "m");
    std::fs::create_dir_all(datasets.join("digits")).unwrap();
    for entry in std::fs::read_dir(common::zoo().join("../datasets/digits")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            datasets.join("digits").join(entry.file_name()),
        )
        .unwrap();
    }
    std::fs::create_dir_all(&outside).unwrap();
    let secret = outside.join("secret.npy");
    std::fs::write(&secret, npy_u8(vec![4, 8, 8, 1])).unwrap();
    std::fs::write(outside.join("labels.npy"), npy_labels(4)).unwrap();
    let before = snapshot(&outside);

    let mut config = ServeConfig::with_models_dir(&models);
    config.datasets_dir = datasets.clone();
    config.data_dir = data.clone();
    config.max_message_bytes = 4 << 20;
    config.max_dataset_bytes = Some(32 << 20);
    config.max_model_bytes = 16 << 20;
    let server = common::TestServer::start(config).await;
    server.wait_serving().await;
    let ch = server.channel.clone();
    let models_api = || ModelServiceClient::new(ch.clone());
    let datasets_api = || DatasetServiceClient::new(ch.clone());
    let embed_api = || EmbeddingServiceClient::new(ch.clone());
    let eval_api = || EvaluationServiceClient::new(ch.clone());

    let card = std::fs::read_to_string(models.join("m/model.toml")).unwrap();
    let onnx = std::fs::read(models.join("m/model.onnx")).unwrap();
    let mut cases: Vec<Case> = Vec::new();

    // Names that name nothing (or try to name a path) on every lookup.
    let long = "x".repeat(10_000);
    let bad_names = [
        "",
        "../m",
        "/etc/passwd",
        "m/../m",
        "M",
        "naïve",
        long.as_str(),
        "m\u{0}",
        ".hidden",
    ];
    // One case per RPC that looks a name up: `$label`, the code, a client,
    // and the call with the name `n`.
    macro_rules! lookup {
        ($name:expr, $($label:literal $code:ident $api:ident |$n:ident, $c:ident| $call:expr;)*) => {$(
            let $n = $name.to_string();
            let mut $c = $api();
            let shown: String = $name.chars().take(12).collect();
            cases.push(case(format!("{} {shown:?}", $label), Code::$code, async move { $call }));
        )*};
    }
    for name in bad_names {
        // A delete checks the name first: a name that could never be
        // registered is the client's mistake.
        lookup!(name,
            "GetModel" NotFound models_api |n, c| unary(c.get_model(proto::GetModelRequest { name: n })).await;
            "DeleteModel" InvalidArgument models_api |n, c| unary(c.delete_model(proto::DeleteModelRequest { name: n })).await;
            "GetDataset" NotFound datasets_api |n, c| unary(c.get_dataset(proto::GetDatasetRequest { name: n })).await;
            "DeleteDataset" InvalidArgument datasets_api |n, c| unary(c.delete_dataset(proto::DeleteDatasetRequest { name: n })).await;
            "Evaluate model" NotFound eval_api |n, c| streamed(c.evaluate(proto::EvaluateRequest { model: n, dataset: "digits".into(), ..Default::default() })).await;
            "Evaluate dataset" NotFound eval_api |n, c| streamed(c.evaluate(proto::EvaluateRequest { model: "m".into(), dataset: n, ..Default::default() })).await;
            "Embed model" NotFound embed_api |n, c| streamed(c.embed(proto::EmbedRequest { model: n, dataset: "digits".into(), ..Default::default() })).await;
            "Compare" NotFound eval_api |n, c| streamed(c.compare(proto::CompareRequest { models: vec!["m".into(), n], dataset: "digits".into(), ..Default::default() })).await;
            "GetEvaluation" NotFound eval_api |n, c| unary(c.get_evaluation(proto::GetEvaluationRequest { id: n })).await;
            "CancelEvaluation" NotFound eval_api |n, c| unary(c.cancel_evaluation(proto::CancelEvaluationRequest { id: n })).await;
            "DeleteEvaluation" NotFound eval_api |n, c| unary(c.delete_evaluation(proto::DeleteEvaluationRequest { id: n })).await;
            "RenameModel from" InvalidArgument models_api |n, c| unary(c.rename_model(proto::RenameModelRequest { name: n, new_name: "fine".into() })).await;
            "RenameModel to" InvalidArgument models_api |n, c| unary(c.rename_model(proto::RenameModelRequest { name: "m".into(), new_name: n })).await;
            "WatchEvaluation" NotFound eval_api |n, c| streamed(c.watch_evaluation(proto::WatchEvaluationRequest { id: n })).await;
        );
    }

    // Embed: shapes that overflow, lie or do not fit.
    let tensor = |dtype: proto::DataType, shape: Vec<i64>, data: Vec<u8>| proto::Tensor {
        dtype: dtype as i32,
        shape,
        data,
    };
    let embed_cases = vec![
        (
            "uint8 rows overflow",
            tensor(
                proto::DataType::Uint8,
                vec![288_230_376_151_711_745, 8, 8, 1],
                vec![0; 64],
            ),
            Code::InvalidArgument,
        ),
        (
            "float rows overflow",
            tensor(
                proto::DataType::Float32,
                vec![72_057_594_037_927_937, 1, 8, 8],
                vec![0; 256],
            ),
            Code::InvalidArgument,
        ),
        (
            "negative axis",
            tensor(proto::DataType::Uint8, vec![-1, 8, 8, 1], vec![0; 64]),
            Code::InvalidArgument,
        ),
        (
            "bytes short of the shape",
            tensor(proto::DataType::Uint8, vec![2, 8, 8, 1], vec![0; 64]),
            Code::InvalidArgument,
        ),
        (
            "bytes beyond the shape",
            tensor(proto::DataType::Uint8, vec![1, 8, 8, 1], vec![0; 65]),
            Code::InvalidArgument,
        ),
        (
            "wrong channels",
            tensor(proto::DataType::Uint8, vec![1, 9, 9, 3], vec![0; 243]),
            Code::InvalidArgument,
        ),
        (
            "three axes",
            tensor(proto::DataType::Uint8, vec![1, 64, 1], vec![0; 64]),
            Code::InvalidArgument,
        ),
        (
            "empty",
            tensor(proto::DataType::Uint8, vec![0, 8, 8, 1], vec![]),
            Code::InvalidArgument,
        ),
        (
            "unknown dtype",
            proto::Tensor {
                dtype: 99,
                shape: vec![1, 8, 8, 1],
                data: vec![0; 64],
            },
            Code::InvalidArgument,
        ),
        (
            "float wrong layout",
            tensor(proto::DataType::Float32, vec![1, 8, 8, 1], vec![0; 256]),
            Code::InvalidArgument,
        ),
        (
            "float bytes short",
            tensor(proto::DataType::Float32, vec![1, 1, 8, 8], vec![0; 255]),
            Code::InvalidArgument,
        ),
    ];
    for (what, t, code) in embed_cases {
        let mut c = embed_api();
        cases.push(case(format!("Embed {what}"), code, async move {
            streamed(c.embed(proto::EmbedRequest {
                model: "m".into(),
                inputs: Some(t),
                ..Default::default()
            }))
            .await
        }));
    }
    for (what, req, code) in [
        (
            "both inputs and dataset",
            proto::EmbedRequest {
                model: "m".into(),
                dataset: "digits".into(),
                inputs: Some(tensor(
                    proto::DataType::Uint8,
                    vec![1, 8, 8, 1],
                    vec![0; 64],
                )),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            "nothing to embed",
            proto::EmbedRequest {
                model: "m".into(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            "unknown output",
            proto::EmbedRequest {
                model: "m".into(),
                dataset: "digits".into(),
                output: "logits".into(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            "unknown split",
            proto::EmbedRequest {
                model: "m".into(),
                dataset: "digits".into(),
                split: "../train".into(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
    ] {
        let mut c = embed_api();
        cases.push(case(format!("Embed {what}"), code, async move {
            streamed(c.embed(req)).await
        }));
    }

    // Evaluate: every bound of the spec and every value out of range.
    let spec_cases: Vec<(&str, proto::MetricSpec)> = vec![
        (
            "uniformity_samples 2e12",
            proto::MetricSpec {
                uniformity_samples: Some(2_000_000_000_000),
                ..Default::default()
            },
        ),
        (
            "uniformity_samples 1",
            proto::MetricSpec {
                uniformity_samples: Some(1),
                ..Default::default()
            },
        ),
        (
            "uniformity_exact_max_rows 1e9",
            proto::MetricSpec {
                uniformity_exact_max_rows: Some(1_000_000_000),
                ..Default::default()
            },
        ),
        (
            "neighbors_k 0",
            proto::MetricSpec {
                neighbors_k: Some(0),
                ..Default::default()
            },
        ),
        (
            "neighbors_k 1e6",
            proto::MetricSpec {
                neighbors_k: Some(1_000_000),
                ..Default::default()
            },
        ),
        (
            "knn_k 0",
            proto::MetricSpec {
                knn_k: Some(0),
                ..Default::default()
            },
        ),
        (
            "knn_k 1e6",
            proto::MetricSpec {
                knn_k: Some(1_000_000),
                ..Default::default()
            },
        ),
        (
            "linear_max_iter 0",
            proto::MetricSpec {
                linear_max_iter: Some(0),
                ..Default::default()
            },
        ),
        (
            "linear_max_iter 1e7",
            proto::MetricSpec {
                linear_max_iter: Some(10_000_000),
                ..Default::default()
            },
        ),
        (
            "uniformity_t NaN",
            proto::MetricSpec {
                uniformity_t: Some(f64::NAN),
                ..Default::default()
            },
        ),
        (
            "uniformity_t -1",
            proto::MetricSpec {
                uniformity_t: Some(-1.0),
                ..Default::default()
            },
        ),
        (
            "penalty_temperature 0",
            proto::MetricSpec {
                penalty_temperature: Some(0.0),
                ..Default::default()
            },
        ),
        (
            "knn_temperature inf",
            proto::MetricSpec {
                knn_temperature: Some(f64::INFINITY),
                ..Default::default()
            },
        ),
        (
            "linear_c -1",
            proto::MetricSpec {
                linear_c: Some(-1.0),
                ..Default::default()
            },
        ),
        (
            "linear_tol NaN",
            proto::MetricSpec {
                linear_tol: Some(f64::NAN),
                ..Default::default()
            },
        ),
        (
            "alignment_alpha 0",
            proto::MetricSpec {
                alignment_alpha: Some(0.0),
                ..Default::default()
            },
        ),
        (
            "an unknown augmentation recipe",
            proto::MetricSpec {
                augmentation: Some(proto::Augmentation {
                    recipe: "byol".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        (
            "a crop scale above 1",
            proto::MetricSpec {
                augmentation: Some(proto::Augmentation {
                    crop_scale_max: Some(1.5),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        (
            "a positives split the dataset lacks",
            proto::MetricSpec {
                positives_split: "views".into(),
                ..Default::default()
            },
        ),
    ];
    for (what, spec) in spec_cases {
        let s = spec.clone();
        let mut c = eval_api();
        cases.push(case(
            format!("Evaluate {what}"),
            Code::InvalidArgument,
            async move {
                streamed(c.evaluate(proto::EvaluateRequest {
                    model: "m".into(),
                    dataset: "digits".into(),
                    spec: Some(s),
                    ..Default::default()
                }))
                .await
            },
        ));
        let mut c = eval_api();
        cases.push(case(
            format!("Compare {what}"),
            Code::InvalidArgument,
            async move {
                streamed(c.compare(proto::CompareRequest {
                    models: vec!["m".into()],
                    dataset: "digits".into(),
                    spec: Some(spec),
                    ..Default::default()
                }))
                .await
            },
        ));
    }
    {
        let mut c = eval_api();
        cases.push(case(
            "ListEvaluations bad page token",
            Code::InvalidArgument,
            async move {
                unary(c.list_evaluations(proto::ListEvaluationsRequest {
                    page_token: "-3".into(),
                    ..Default::default()
                }))
                .await
            },
        ));
    }

    // EvaluateEmbeddings: headers and chunks that lie.
    use proto::DataType::{Float32, Uint8};
    let ee_cases: Vec<(&str, Vec<proto::EvaluateEmbeddingsRequest>, Code)> = vec![
        (
            "no header",
            vec![chunk(
                "test",
                Float32,
                vec![4, 2],
                floats(8),
                vec![0, 1, 0, 1],
            )],
            Code::InvalidArgument,
        ),
        ("nothing at all", vec![], Code::InvalidArgument),
        (
            "temperature -0.5",
            vec![header(Some(-0.5), None)],
            Code::InvalidArgument,
        ),
        (
            "temperature NaN",
            vec![header(Some(f64::NAN), None)],
            Code::InvalidArgument,
        ),
        (
            "temperature inf",
            vec![header(Some(f64::INFINITY), None)],
            Code::InvalidArgument,
        ),
        (
            "two headers",
            vec![header(None, None), header(None, None)],
            Code::InvalidArgument,
        ),
        (
            "no test rows",
            vec![
                header(None, None),
                chunk("train", Float32, vec![4, 2], floats(8), vec![0, 1, 0, 1]),
            ],
            Code::InvalidArgument,
        ),
        (
            "unknown split",
            vec![
                header(None, None),
                chunk("../test", Float32, vec![4, 2], floats(8), vec![0, 1, 0, 1]),
            ],
            Code::InvalidArgument,
        ),
        (
            "uint8 rows",
            vec![
                header(None, None),
                chunk("test", Uint8, vec![4, 2], vec![0; 8], vec![0, 1, 0, 1]),
            ],
            Code::InvalidArgument,
        ),
        (
            "shape overflow",
            vec![
                header(None, None),
                chunk(
                    "test",
                    Float32,
                    vec![4_611_686_018_427_387_904, 4],
                    floats(8),
                    vec![0, 1],
                ),
            ],
            Code::InvalidArgument,
        ),
        (
            "negative rows",
            vec![
                header(None, None),
                chunk("test", Float32, vec![-4, 2], floats(8), vec![0, 1, 0, 1]),
            ],
            Code::InvalidArgument,
        ),
        (
            "three axes",
            vec![
                header(None, None),
                chunk("test", Float32, vec![4, 2, 1], floats(8), vec![0, 1, 0, 1]),
            ],
            Code::InvalidArgument,
        ),
        (
            "bytes short",
            vec![
                header(None, None),
                chunk("test", Float32, vec![4, 2], floats(7), vec![0, 1, 0, 1]),
            ],
            Code::InvalidArgument,
        ),
        (
            "labels short",
            vec![
                header(None, None),
                chunk("test", Float32, vec![4, 2], floats(8), vec![0, 1]),
            ],
            Code::InvalidArgument,
        ),
        (
            "dimension changes",
            vec![
                header(None, None),
                chunk("test", Float32, vec![4, 2], floats(8), vec![0, 1, 0, 1]),
                chunk("test", Float32, vec![2, 4], floats(8), vec![0, 1]),
            ],
            Code::InvalidArgument,
        ),
        (
            "positives do not pair",
            vec![
                header(None, None),
                chunk("test", Float32, vec![4, 2], floats(8), vec![0, 1, 0, 1]),
                chunk("test_positive", Float32, vec![3, 2], floats(6), vec![]),
            ],
            Code::InvalidArgument,
        ),
        (
            "one row",
            vec![
                header(None, None),
                chunk("test", Float32, vec![1, 2], floats(2), vec![0]),
            ],
            Code::InvalidArgument,
        ),
        (
            "spec over its bound",
            vec![
                header(
                    None,
                    Some(proto::MetricSpec {
                        knn_k: Some(1_000_000),
                        ..Default::default()
                    }),
                ),
                chunk("test", Float32, vec![4, 2], floats(8), vec![0, 1, 0, 1]),
            ],
            Code::InvalidArgument,
        ),
        (
            "over --max-message-bytes",
            vec![
                header(None, None),
                chunk(
                    "test",
                    Float32,
                    vec![1_310_720, 1],
                    floats(1_310_720),
                    vec![0; 1_310_720],
                ),
            ],
            Code::ResourceExhausted,
        ),
    ];
    for (what, messages, code) in ee_cases {
        let mut c = eval_api();
        cases.push(case(
            format!("EvaluateEmbeddings {what}"),
            code,
            async move { unary(c.evaluate_embeddings(futures::stream::iter(messages))).await },
        ));
    }

    // RegisterModel: cards and bytes that lie.
    let giant_shape = card.replace(
        "shape = [-1, 1, 8, 8]",
        "shape = [-1, 1, 2147483648, 2147483648]",
    );
    let model_cases: Vec<(&str, Vec<proto::RegisterModelRequest>, Code)> = vec![
        (
            "no card",
            model_upload("x", card.clone(), &onnx, None, "")[1..].to_vec(),
            Code::InvalidArgument,
        ),
        (
            "bad name",
            model_upload("../x", card.clone(), &onnx, None, ""),
            Code::InvalidArgument,
        ),
        (
            "taken name",
            model_upload("m", card.clone(), &onnx, None, ""),
            Code::AlreadyExists,
        ),
        (
            "card not toml",
            model_upload("x1", "[[[".into(), &onnx, None, ""),
            Code::InvalidArgument,
        ),
        (
            "card without training",
            model_upload(
                "x2",
                card[card.find("[input]").unwrap()..].to_string(),
                &onnx,
                None,
                "",
            ),
            Code::InvalidArgument,
        ),
        (
            "giant input shape",
            model_upload("x3", giant_shape, &onnx, None, ""),
            Code::InvalidArgument,
        ),
        (
            "golden outside",
            model_upload(
                "x4",
                card.replace(
                    "embedding = \"golden_embedding.npy\"",
                    "embedding = \"/etc/passwd\"",
                ),
                &onnx,
                None,
                "",
            ),
            Code::InvalidArgument,
        ),
        (
            "size that lies",
            model_upload("x5", card.clone(), &onnx, Some(onnx.len() as u64 + 10), ""),
            Code::InvalidArgument,
        ),
        (
            "sha256 that lies",
            model_upload("x6", card.clone(), &onnx, None, &"0".repeat(64)),
            Code::InvalidArgument,
        ),
        (
            "over --max-model-bytes",
            model_upload("x7", card.clone(), &onnx, Some(1 << 30), ""),
            Code::ResourceExhausted,
        ),
        (
            "not onnx",
            model_upload(
                "x8",
                card.replace(&format!("onnx_sha256 = \"{}\"", sha(&onnx)), ""),
                b"not an onnx graph",
                None,
                "",
            ),
            Code::InvalidArgument,
        ),
    ];
    for (what, messages, code) in model_cases {
        let mut c = models_api();
        cases.push(case(format!("RegisterModel {what}"), code, async move {
            unary(c.register_model(futures::stream::iter(messages))).await
        }));
    }

    // RegisterDataset: manifests that reach out, lie or would decode to too much.
    let secret_abs = secret.display().to_string();
    let labels4 = ("labels.npy".to_string(), npy_labels(4));
    let images4 = ("images.npy".to_string(), npy_u8(vec![4, 8, 8, 1]));
    let mut bomb: Vec<(String, Vec<u8>)> = (0..16)
        .map(|i| {
            (
                format!(
                    "{}/c{}/{i}.png",
                    if i < 8 { "train" } else { "test" },
                    i % 2
                ),
                zeros_png(2048, 2048),
            )
        })
        .collect();
    bomb.push((
        "dataset.toml".into(),
        b"format = \"image-folder\"\n".to_vec(),
    ));
    let dataset_cases: Vec<(&str, Vec<proto::RegisterDatasetRequest>, Code)> = vec![
        (
            "absolute path in the manifest",
            dataset_upload(
                "d1",
                "",
                vec![
                    ("dataset.toml".into(), manifest(&secret_abs, 4, [8, 8, 1])),
                    labels4.clone(),
                ],
            ),
            Code::InvalidArgument,
        ),
        (
            "'..' in the manifest",
            dataset_upload(
                "d2",
                "",
                vec![
                    (
                        "dataset.toml".into(),
                        manifest("../../outside/secret.npy", 4, [8, 8, 1]),
                    ),
                    labels4.clone(),
                ],
            ),
            Code::InvalidArgument,
        ),
        (
            "'..' in an upload path",
            dataset_upload("d3", "", vec![("../evil.npy".into(), vec![1, 2, 3])]),
            Code::InvalidArgument,
        ),
        (
            "absolute upload path",
            dataset_upload("d4", "", vec![("/tmp/evil.npy".into(), vec![1, 2, 3])]),
            Code::InvalidArgument,
        ),
        (
            "empty split",
            dataset_upload(
                "d5",
                "",
                vec![
                    ("dataset.toml".into(), manifest("images.npy", 0, [8, 8, 1])),
                    ("images.npy".into(), npy_u8(vec![0, 8, 8, 1])),
                    ("labels.npy".into(), npy_labels(0)),
                ],
            ),
            Code::InvalidArgument,
        ),
        (
            "size that lies",
            dataset_upload(
                "d6",
                "",
                vec![
                    ("dataset.toml".into(), manifest("images.npy", 5, [8, 8, 1])),
                    images4.clone(),
                    labels4.clone(),
                ],
            ),
            Code::InvalidArgument,
        ),
        (
            "giant image shape",
            dataset_upload(
                "d7",
                "",
                vec![
                    (
                        "dataset.toml".into(),
                        manifest("images.npy", 4, [1 << 30, 1 << 30, 3]),
                    ),
                    images4.clone(),
                    labels4.clone(),
                ],
            ),
            Code::InvalidArgument,
        ),
        (
            "truncated npy",
            dataset_upload(
                "d8",
                "",
                vec![
                    ("dataset.toml".into(), manifest("images.npy", 4, [8, 8, 1])),
                    (
                        "images.npy".into(),
                        npy_u8(vec![4, 8, 8, 1])[..100].to_vec(),
                    ),
                    labels4.clone(),
                ],
            ),
            Code::InvalidArgument,
        ),
        (
            "no manifest and no format",
            dataset_upload("d9", "", vec![images4.clone()]),
            Code::InvalidArgument,
        ),
        (
            "unknown format",
            dataset_upload("d10", "parquet", vec![images4.clone()]),
            Code::InvalidArgument,
        ),
        (
            "truncated cifar",
            dataset_upload(
                "d11",
                "cifar10",
                vec![("test_batch.bin".into(), vec![0; 3000])],
            ),
            Code::InvalidArgument,
        ),
        (
            "decompression bomb",
            dataset_upload("d12", "", bomb),
            Code::ResourceExhausted,
        ),
        (
            "taken name",
            dataset_upload("digits", "", vec![images4.clone()]),
            Code::AlreadyExists,
        ),
    ];
    for (what, messages, code) in dataset_cases {
        let mut c = datasets_api();
        cases.push(case(format!("RegisterDataset {what}"), code, async move {
            unary(c.register_dataset(futures::stream::iter(messages))).await
        }));
    }

    // Bytes that are not the message they claim to be.
    let raw_cases: Vec<(&str, &'static str, Vec<u8>, Code)> = vec![
        (
            "GetModel invalid UTF-8",
            "/embedeval.v1.ModelService/GetModel",
            string_field(1, &[0xff, 0xfe, b'm']),
            Code::InvalidArgument,
        ),
        (
            "GetDataset invalid UTF-8",
            "/embedeval.v1.DatasetService/GetDataset",
            string_field(1, &[0xc3, 0x28]),
            Code::InvalidArgument,
        ),
        (
            "GetEvaluation invalid UTF-8",
            "/embedeval.v1.EvaluationService/GetEvaluation",
            string_field(1, &[0x80]),
            Code::InvalidArgument,
        ),
        (
            "GetModel garbage",
            "/embedeval.v1.ModelService/GetModel",
            vec![0xff; 32],
            Code::InvalidArgument,
        ),
        (
            "ListEvaluations truncated",
            "/embedeval.v1.EvaluationService/ListEvaluations",
            vec![0x0a, 0x50, b'x'],
            Code::InvalidArgument,
        ),
        (
            "GetModel over --max-message-bytes",
            "/embedeval.v1.ModelService/GetModel",
            string_field(1, &vec![b'x'; 5 << 20]),
            Code::ResourceExhausted,
        ),
        (
            "unknown method",
            "/embedeval.v1.ModelService/Nope",
            vec![],
            Code::Unimplemented,
        ),
    ];
    for (what, path, body, code) in raw_cases {
        let channel = ch.clone();
        cases.push(case(format!("raw {what}"), code, raw(channel, path, body)));
    }

    assert!(cases.len() >= 100, "{} cases", cases.len());
    let mut failures = Vec::new();
    for Case { name, expect, call } in cases.drain(..) {
        match call.await {
            Ok(()) => failures.push(format!("{name}: OK, expected {expect:?}")),
            Err(status) if status.code() != expect => failures.push(format!(
                "{name}: {:?} {:?}, expected {expect:?}",
                status.code(),
                status.message()
            )),
            Err(status) => {
                let message = status.message();
                if message.contains(sandbox.path().to_str().unwrap()) {
                    failures.push(format!(
                        "{name}: the message shows a server path: {message}"
                    ));
                }
                if message.len() > 1000 {
                    failures.push(format!("{name}: a message of {} bytes", message.len()));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The server still serves, the outside file was never copied in, nothing
    // outside the roots changed, and no panic happened anywhere.
    assert_eq!(
        server.health().await,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let listed = datasets_api()
        .list_datasets(proto::ListDatasetsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<String> = listed.datasets.iter().map(|d| d.name.clone()).collect();
    assert_eq!(names, ["digits"]);
    let secret_bytes = std::fs::read(&secret).unwrap();
    for (path, bytes) in snapshot(&datasets) {
        assert_ne!(
            bytes,
            secret_bytes,
            "{} holds the outside file",
            path.display()
        );
    }
    assert_eq!(snapshot(&outside), before, "the outside folder changed");
    let mut top: Vec<String> = std::fs::read_dir(sandbox.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["data", "datasets", "models", "outside"]);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic happened");
    server.stop().await;
}

fn sha(bytes: &[u8]) -> String {
    embedeval::registry::sha256_hex(bytes)
}
