//! Embed end to end: the real server, the real zoo, checked against
//! onnxruntime-python (tests/data/ort_python, made by
//! training/ort_reference.py) to 1e-5 and PyTorch's golden outputs to 1e-4;
//! and every bad input answered with its code while the server keeps serving.

mod common;

use std::path::Path;

use common::{zoo, TestServer};
use embedeval::data::npy::NpyArray;
use embedeval::proto::embedding_service_client::EmbeddingServiceClient;
use embedeval::proto::{DataType, EmbedRequest, EmbedResponse, Tensor};
use tonic::Code;

const MODEL: &str = "infonce-t0.5";

async fn server() -> TestServer {
    common::zoo_server().await
}

fn floats(t: &Tensor) -> Vec<f32> {
    assert_eq!(t.dtype, DataType::Float32 as i32);
    t.data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

async fn embed_all(
    server: &TestServer,
    req: EmbedRequest,
) -> Result<Vec<EmbedResponse>, tonic::Status> {
    let mut stream = EmbeddingServiceClient::new(server.channel.clone())
        .embed(req)
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(msg) = stream.message().await? {
        out.push(msg);
    }
    Ok(out)
}

fn request(dataset: &str, split: &str) -> EmbedRequest {
    EmbedRequest {
        model: MODEL.into(),
        dataset: dataset.into(),
        split: split.into(),
        ..Default::default()
    }
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn npy(path: &Path) -> Vec<f32> {
    NpyArray::read(path).unwrap().to_f32().unwrap()
}

#[tokio::test]
async fn embeddings_match_onnxruntime_python_and_pytorch() {
    let server = server().await;
    let reference = zoo().join("../tests/data/ort_python");
    let digits = embedeval::data::Dataset::open(&zoo().join("../datasets/digits")).unwrap();
    let test = digits.load_split("test").unwrap();
    for (output, file) in [("embedding", "embedding"), ("features", "features")] {
        let mut req = request("digits", "test");
        req.output = output.into();
        req.chunk_rows = 100;
        let chunks = embed_all(&server, req).await.unwrap();
        assert_eq!(chunks.len(), 6, "540 rows in chunks of 100");
        let mut rows = Vec::new();
        let mut labels: Vec<i64> = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.offset, i as u64 * 100);
            let t = c.embeddings.as_ref().unwrap();
            assert_eq!(t.shape[1], 128);
            rows.extend(floats(t));
            labels.extend(&c.labels);
        }
        assert_eq!(labels, test.labels);
        let want = npy(&reference.join(format!("{MODEL}.test.{file}.npy")));
        let diff = max_abs(&rows, &want);
        assert!(
            diff <= 1e-5,
            "{output}: max abs {diff} to onnxruntime-python"
        );
        let golden = npy(&zoo().join(MODEL).join(format!("golden_{file}.npy")));
        let diff = max_abs(&rows[..golden.len()], &golden);
        assert!(diff <= 1e-4, "{output}: max abs {diff} to PyTorch");
    }
    server.stop().await;
}

#[tokio::test]
async fn inline_images_tensors_normalisation_and_concurrent_batching() {
    let server = server().await;
    let digits = embedeval::data::Dataset::open(&zoo().join("../datasets/digits")).unwrap();
    let test = digits.load_split("test").unwrap();
    let from_dataset: Vec<f32> = embed_all(&server, request("digits", "test"))
        .await
        .unwrap()
        .iter()
        .flat_map(|c| floats(c.embeddings.as_ref().unwrap()))
        .collect();

    // UINT8 images get the card's preprocessing: the same rows.
    let images = |range: std::ops::Range<usize>| Tensor {
        dtype: DataType::Uint8 as i32,
        shape: vec![range.len() as i64, 8, 8, 1],
        data: test.pixels[range.start * 64..range.end * 64].to_vec(),
    };
    let inline = |t: Tensor| EmbedRequest {
        model: MODEL.into(),
        inputs: Some(t),
        ..Default::default()
    };
    let got = embed_all(&server, inline(images(10..20))).await.unwrap();
    assert!(got[0].labels.is_empty());
    let rows = floats(got[0].embeddings.as_ref().unwrap());
    assert!(max_abs(&rows, &from_dataset[10 * 128..20 * 128]) <= 1e-6);

    // FLOAT32 is fed as it is: preprocess by hand (x / 16, NCHW with C = 1).
    let values: Vec<f32> = test.pixels[..5 * 64]
        .iter()
        .map(|&p| p as f32 * 0.0625)
        .collect();
    let t = Tensor {
        dtype: DataType::Float32 as i32,
        shape: vec![5, 1, 8, 8],
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    };
    let got = embed_all(&server, inline(t)).await.unwrap();
    let rows = floats(got[0].embeddings.as_ref().unwrap());
    assert!(max_abs(&rows, &from_dataset[..5 * 128]) <= 1e-6);

    // normalize: unit rows in the same direction.
    let mut req = inline(images(0..3));
    req.normalize = true;
    let got = embed_all(&server, req).await.unwrap();
    let rows = floats(got[0].embeddings.as_ref().unwrap());
    for (r, raw) in rows.chunks(128).zip(from_dataset.chunks(128)) {
        let norm: f32 = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        let raw_norm: f32 = raw.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(r
            .iter()
            .zip(raw)
            .all(|(a, b)| (a - b / raw_norm).abs() < 1e-5));
    }

    // Many small concurrent requests are batched on the worker and each
    // gets its own rows back.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let channel = server.channel.clone();
            let req = inline(images(i * 3..i * 3 + 3));
            tokio::spawn(async move {
                let mut s = EmbeddingServiceClient::new(channel)
                    .embed(req)
                    .await
                    .unwrap()
                    .into_inner();
                let msg = s.message().await.unwrap().unwrap();
                (i, floats(msg.embeddings.as_ref().unwrap()))
            })
        })
        .collect();
    for task in tasks {
        let (i, rows) = task.await.unwrap();
        assert!(
            max_abs(&rows, &from_dataset[i * 3 * 128..(i * 3 + 3) * 128]) <= 1e-6,
            "request {i}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_their_codes_and_the_server_keeps_serving() {
    let server = server().await;
    let inline = |dtype: DataType, shape: Vec<i64>, data: Vec<u8>| EmbedRequest {
        model: MODEL.into(),
        inputs: Some(Tensor {
            dtype: dtype as i32,
            shape,
            data,
        }),
        ..Default::default()
    };
    let cases: Vec<(&str, EmbedRequest, Code, &str)> = vec![
        (
            "wrong channels (another size is resized, other channels are not)",
            inline(DataType::Uint8, vec![2, 16, 16, 3], vec![0; 1536]),
            Code::InvalidArgument,
            "(resized to 8 x 8), 1]",
        ),
        (
            "wrong dtype",
            inline(DataType::Int64, vec![1, 8, 8, 1], vec![0; 512]),
            Code::InvalidArgument,
            "INT64",
        ),
        (
            "float32 of the wrong shape",
            inline(DataType::Float32, vec![1, 8, 8, 1], vec![0; 256]),
            Code::InvalidArgument,
            "[1, 1, 8, 8]",
        ),
        (
            "empty input",
            inline(DataType::Uint8, vec![0, 8, 8, 1], vec![]),
            Code::InvalidArgument,
            "empty input",
        ),
        (
            "short data",
            inline(DataType::Uint8, vec![2, 8, 8, 1], vec![0; 100]),
            Code::InvalidArgument,
            "needs 128 bytes",
        ),
        (
            "unknown model",
            EmbedRequest {
                model: "nope".into(),
                ..request("digits", "test")
            },
            Code::NotFound,
            "model not found: nope",
        ),
        (
            "unknown dataset",
            request("cifar10", "test"),
            Code::NotFound,
            "dataset not found: cifar10",
        ),
        (
            "unknown split",
            request("digits", "validation"),
            Code::InvalidArgument,
            "no split \"validation\"",
        ),
        (
            "unknown output",
            EmbedRequest {
                output: "logits".into(),
                ..request("digits", "test")
            },
            Code::InvalidArgument,
            "no output \"logits\"",
        ),
        (
            "nothing to embed",
            EmbedRequest {
                model: MODEL.into(),
                ..Default::default()
            },
            Code::InvalidArgument,
            "nothing to embed",
        ),
    ];
    for (what, req, code, needle) in cases {
        let err = embed_all(&server, req).await.unwrap_err();
        assert_eq!(err.code(), code, "{what}: {}", err.message());
        assert!(err.message().contains(needle), "{what}: {}", err.message());
    }

    // A client that cancels mid-stream: read two chunks of many, then drop.
    let mut req = request("digits", "train");
    req.chunk_rows = 1;
    let mut stream = EmbeddingServiceClient::new(server.channel.clone())
        .embed(req)
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    stream.message().await.unwrap().unwrap();
    drop(stream);

    // Still serving.
    let chunks = embed_all(&server, request("digits", "test")).await.unwrap();
    assert_eq!(chunks.iter().map(|c| c.labels.len()).sum::<usize>(), 540);
    server.stop().await;
}
