//! DatasetService end to end: upload (embedeval-npy, CIFAR binary), the
//! content id, validation of what is uploaded, deletion; nothing is left
//! behind by a refused upload.

mod common;

use std::path::Path;

use common::{copy_model, zoo, TestServer};
use embedeval::proto::dataset_service_client::DatasetServiceClient;
use embedeval::proto::embedding_service_client::EmbeddingServiceClient;
use embedeval::proto::register_dataset_request::Payload;
use embedeval::proto::{
    DatasetFileChunk, DatasetUpload, DeleteDatasetRequest, EmbedRequest, GetDatasetRequest,
    RegisterDatasetRequest,
};
use embedeval::ServeConfig;
use tonic::Code;

fn header(name: &str, format: &str) -> RegisterDatasetRequest {
    RegisterDatasetRequest {
        payload: Some(Payload::Header(DatasetUpload {
            name: name.into(),
            format: format.into(),
            ..Default::default()
        })),
    }
}

fn file(path: &str, data: &[u8], chunk: usize) -> Vec<RegisterDatasetRequest> {
    data.chunks(chunk.max(1))
        .map(|c| RegisterDatasetRequest {
            payload: Some(Payload::File(DatasetFileChunk {
                path: path.into(),
                data: c.to_vec(),
            })),
        })
        .collect()
}

fn cifar_record(label: u8) -> Vec<u8> {
    let mut r = vec![label];
    r.extend((0..3072).map(|i| (i % 251) as u8));
    r
}

fn cifar_upload(name: &str, truncate_test: bool) -> Vec<RegisterDatasetRequest> {
    let mut msgs = vec![header(name, "cifar10")];
    for i in 1..=5u8 {
        let bytes = [cifar_record(i), cifar_record(9)].concat();
        msgs.extend(file(&format!("data_batch_{i}.bin"), &bytes, 1000));
    }
    let mut test = cifar_record(3);
    if truncate_test {
        test.truncate(2000);
    }
    msgs.extend(file("test_batch.bin", &test, 1000));
    msgs
}

fn leftovers(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn upload_get_embed_and_delete_datasets() {
    let models = tempfile::tempdir().unwrap();
    copy_model("infonce-t0.5", models.path(), "m");
    let datasets = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::with_models_dir(models.path());
    config.datasets_dir = datasets.path().to_path_buf();
    config.max_dataset_bytes = Some(1 << 20);
    // A bundled dataset (read-only) next to the uploads under the data dir.
    let bundled = datasets.path().join("bundled");
    std::fs::create_dir(&bundled).unwrap();
    for entry in std::fs::read_dir(zoo().join("../datasets/digits"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(entry.path(), bundled.join(entry.file_name())).unwrap();
    }
    let server = TestServer::start(config).await;
    server.wait_serving().await;
    let uploads = server.data_dir.as_ref().unwrap().path().join("datasets");
    let mut client = DatasetServiceClient::new(server.channel.clone());

    // The digits, uploaded in the project's format, keep their content id.
    let digits_dir = zoo().join("../datasets/digits");
    let mut msgs = vec![header("digits2", "")];
    for name in [
        "dataset.toml",
        "train_images.npy",
        "train_labels.npy",
        "test_images.npy",
        "test_labels.npy",
    ] {
        msgs.extend(file(
            name,
            &std::fs::read(digits_dir.join(name)).unwrap(),
            7000,
        ));
    }
    let info = client
        .register_dataset(tokio_stream::iter(msgs))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.id, embedeval::data::content_id(&digits_dir).unwrap());
    assert_eq!(info.num_classes, 10);
    let chunks = EmbeddingServiceClient::new(server.channel.clone())
        .embed(EmbedRequest {
            model: "m".into(),
            dataset: "digits2".into(),
            split: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let labels: usize = futures_count(chunks).await;
    assert_eq!(labels, 540);

    // CIFAR-10 binary batches with the format in the header.
    let info = client
        .register_dataset(tokio_stream::iter(cifar_upload("tiny-cifar", false)))
        .await
        .unwrap()
        .into_inner();
    let sizes: Vec<(String, u64)> = info
        .splits
        .iter()
        .map(|s| (s.name.clone(), s.size))
        .collect();
    assert_eq!(sizes, vec![("test".into(), 1), ("train".into(), 10)]);
    assert_eq!(info.image_shape, vec![32, 32, 3]);
    // The 8×8 greyscale model cannot embed 32×32 RGB images.
    let err = EmbeddingServiceClient::new(server.channel.clone())
        .embed(EmbedRequest {
            model: "m".into(),
            dataset: "tiny-cifar".into(),
            split: "train".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("[32, 32, 3]"), "{}", err.message());

    // Refused uploads, each leaving nothing behind.
    let cases: Vec<(&str, Vec<RegisterDatasetRequest>, Code, &str)> = vec![
        (
            "truncated CIFAR file",
            cifar_upload("cut", true),
            Code::InvalidArgument,
            "truncated CIFAR file test_batch.bin",
        ),
        (
            "name taken",
            cifar_upload("tiny-cifar", false),
            Code::AlreadyExists,
            "dataset already exists",
        ),
        (
            "name with ../",
            cifar_upload("../up", false),
            Code::InvalidArgument,
            "not allowed",
        ),
        (
            "path with ..",
            [
                vec![header("p", "cifar10")],
                file("../escape.bin", b"x", 10),
            ]
            .concat(),
            Code::InvalidArgument,
            "not allowed",
        ),
        (
            "over the limit",
            [
                vec![header("big", "cifar10")],
                file("data_batch_1.bin", &vec![0u8; (1 << 20) + 1], 1 << 16),
            ]
            .concat(),
            Code::ResourceExhausted,
            "exceeds the limit",
        ),
        (
            "unknown format",
            vec![header("f", "parquet")],
            Code::InvalidArgument,
            "unknown dataset format",
        ),
    ];
    for (what, msgs, code, needle) in cases {
        let err = client
            .register_dataset(tokio_stream::iter(msgs))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{what}: {}", err.message());
        assert!(err.message().contains(needle), "{what}: {}", err.message());
        assert!(
            leftovers(&uploads).is_empty(),
            "{what}: {:?}",
            leftovers(&uploads)
        );
    }

    client
        .delete_dataset(DeleteDatasetRequest {
            name: "tiny-cifar".into(),
        })
        .await
        .unwrap();
    assert!(!uploads.join("tiny-cifar").exists());
    let err = client
        .delete_dataset(DeleteDatasetRequest {
            name: "bundled".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(bundled.join("dataset.toml").is_file());
    let err = client
        .get_dataset(GetDatasetRequest {
            name: "tiny-cifar".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .delete_dataset(DeleteDatasetRequest {
            name: "tiny-cifar".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.stop().await;
}

/// Rows in an Embed stream.
async fn futures_count(mut s: tonic::Streaming<embedeval::proto::EmbedResponse>) -> usize {
    let mut n = 0;
    while let Some(m) = s.message().await.unwrap() {
        n += m.labels.len();
    }
    n
}
