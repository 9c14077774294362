//! RegisterModel and DeleteModel: uploads are validated before they become
//! visible, all or nothing, and land under the data dir (the bundled models
//! folder is read-only); `replace` swaps a model in one step; nothing is
//! left behind by a failed or interrupted upload; the server keeps serving.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{copy_model, zoo, TestServer};
use embedeval::proto::model_service_client::ModelServiceClient;
use embedeval::proto::register_model_request::Payload;
use embedeval::proto::{DeleteModelRequest, ListModelsRequest, ModelUpload, RegisterModelRequest};
use embedeval::ServeConfig;
use tonic::Code;

const SOURCE: &str = "infonce-t0.2";

fn card_text() -> String {
    std::fs::read_to_string(zoo().join(SOURCE).join("model.toml")).unwrap()
}

fn onnx() -> Vec<u8> {
    std::fs::read(zoo().join(SOURCE).join("model.onnx")).unwrap()
}

fn messages(name: &str, card: String, bytes: &[u8], chunk: usize) -> Vec<RegisterModelRequest> {
    upload(name, card, bytes, chunk, false)
}

fn upload(
    name: &str,
    card: String,
    bytes: &[u8],
    chunk: usize,
    replace: bool,
) -> Vec<RegisterModelRequest> {
    let mut out = vec![RegisterModelRequest {
        payload: Some(Payload::Card(ModelUpload {
            name: name.into(),
            card_toml: card,
            size_bytes: bytes.len() as u64,
            sha256: String::new(),
            replace,
        })),
    }];
    out.extend(bytes.chunks(chunk).map(|c| RegisterModelRequest {
        payload: Some(Payload::Chunk(c.to_vec())),
    }));
    out
}

/// Hidden upload folders left in the models root.
fn leftovers(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// A server over the bundled models in `bundle`, uploads under `data`.
async fn start(bundle: &Path, data: &Path, max_model_bytes: u64) -> TestServer {
    let mut config = ServeConfig::with_models_dir(bundle);
    config.data_dir = data.to_path_buf();
    config.max_model_bytes = max_model_bytes;
    let server = TestServer::start(config).await;
    server.wait_serving().await;
    server
}

async fn names(server: &TestServer) -> Vec<String> {
    ModelServiceClient::new(server.channel.clone())
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .models
        .into_iter()
        .map(|m| m.name)
        .collect()
}

#[tokio::test]
async fn upload_list_embed_delete() {
    let bundle = tempfile::tempdir().unwrap();
    copy_model(SOURCE, bundle.path(), "base");
    let data = tempfile::tempdir().unwrap();
    let uploads = data.path().join("models");
    let server = start(bundle.path(), data.path(), 64 << 20).await;
    let mut client = ModelServiceClient::new(server.channel.clone());

    let info = client
        .register_model(tokio_stream::iter(messages(
            "uploaded",
            card_text(),
            &onnx(),
            64 * 1024,
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "uploaded");
    assert_eq!(info.training.unwrap().temperature, 0.2);
    assert_eq!(info.size_bytes, onnx().len() as u64);
    assert_eq!(names(&server).await, vec!["base", "uploaded"]);
    assert!(uploads.join("uploaded/model.onnx").is_file());
    assert!(uploads.join("uploaded/model.toml").is_file());
    assert!(
        !bundle.path().join("uploaded").exists(),
        "the bundle is read-only"
    );
    assert!(leftovers(&uploads).is_empty());

    // The name is taken now.
    let err = client
        .register_model(tokio_stream::iter(messages(
            "uploaded",
            card_text(),
            &onnx(),
            1 << 20,
        )))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    // --replace swaps it for another checkpoint (same graph, another card
    // and another preprocessing, so another model to the cache), in one step.
    let retrained = card_text()
        .lines()
        .filter(|l| !l.starts_with("onnx_sha256"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("temperature = 0.2", "temperature = 0.5");
    let info = client
        .register_model(tokio_stream::iter(upload(
            "uploaded",
            retrained.clone(),
            &onnx(),
            1 << 20,
            true,
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.training.unwrap().temperature, 0.5);
    let card_on_disk = std::fs::read_to_string(uploads.join("uploaded/model.toml")).unwrap();
    assert!(card_on_disk.contains("temperature = 0.5"), "{card_on_disk}");
    assert!(leftovers(&uploads).is_empty(), "{:?}", leftovers(&uploads));
    // A replacement that does not validate leaves the old one in place.
    let err = client
        .register_model(tokio_stream::iter(upload(
            "uploaded",
            retrained.clone(),
            b"not an onnx graph",
            1 << 20,
            true,
        )))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let kept = client
        .get_model(embedeval::proto::GetModelRequest {
            name: "uploaded".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.training.unwrap().temperature, 0.5);
    assert!(uploads.join("uploaded/model.onnx").is_file());

    // After a restart the upload is served from the data dir, replaced.
    server.stop().await;
    let server = start(bundle.path(), data.path(), 64 << 20).await;
    let mut client = ModelServiceClient::new(server.channel.clone());
    assert_eq!(names(&server).await, vec!["base", "uploaded"]);
    let again = client
        .get_model(embedeval::proto::GetModelRequest {
            name: "uploaded".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.training.unwrap().temperature, 0.5);

    // A bundled model is neither replaced nor removed.
    let err = client
        .register_model(tokio_stream::iter(upload(
            "base",
            retrained,
            &onnx(),
            1 << 20,
            true,
        )))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(err.message().contains("bundled"), "{}", err.message());
    let err = client
        .delete_model(DeleteModelRequest {
            name: "base".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(bundle.path().join("base/model.onnx").is_file());

    // Delete, then it is gone, on disk too; a second delete is NOT_FOUND.
    client
        .delete_model(DeleteModelRequest {
            name: "uploaded".into(),
        })
        .await
        .unwrap();
    assert_eq!(names(&server).await, vec!["base"]);
    assert!(!uploads.join("uploaded").exists());
    assert!(leftovers(&uploads).is_empty());
    let err = client
        .delete_model(DeleteModelRequest {
            name: "uploaded".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing_behind() {
    let bundle = tempfile::tempdir().unwrap();
    copy_model(SOURCE, bundle.path(), "base");
    let data = tempfile::tempdir().unwrap();
    let uploads = data.path().join("models");
    std::fs::create_dir_all(&uploads).unwrap();
    let limit = onnx().len() as u64 + 10;
    let server = start(bundle.path(), data.path(), limit).await;
    let mut client = ModelServiceClient::new(server.channel.clone());
    let unhashed: String = card_text()
        .lines()
        .filter(|l| !l.starts_with("onnx_sha256"))
        .map(|l| format!("{l}\n"))
        .collect();

    let cases: Vec<(&str, Vec<RegisterModelRequest>, Code, &str)> = vec![
        (
            "corrupt onnx",
            messages("corrupt", unhashed.clone(), b"not an onnx graph at all", 8),
            Code::InvalidArgument,
            "onnx model does not load",
        ),
        (
            "card and model disagree",
            messages(
                "mismatch",
                unhashed.replace("[-1, 1, 8, 8]", "[-1, 1, 16, 16]"),
                &onnx(),
                1 << 16,
            ),
            Code::InvalidArgument,
            "input.shape is [-1, 1, 16, 16]",
        ),
        (
            "a name with ../",
            messages("../evil", card_text(), &onnx(), 1 << 16),
            Code::InvalidArgument,
            "not allowed",
        ),
        (
            "a card without its loss",
            messages(
                "nofield",
                card_text().replace("loss = \"infonce\"\n", ""),
                &onnx(),
                1 << 16,
            ),
            Code::InvalidArgument,
            "missing field `loss`",
        ),
        (
            "over the limit",
            {
                let mut big = onnx();
                big.extend(vec![0u8; 100]);
                let mut m = messages("big", unhashed.clone(), &big, 1 << 16);
                // Do not declare the size, so the limit is hit while streaming.
                if let Some(Payload::Card(c)) = &mut m[0].payload {
                    c.size_bytes = 0;
                }
                m
            },
            Code::ResourceExhausted,
            "exceeds the limit",
        ),
        (
            "declared over the limit",
            messages(
                "big2",
                unhashed.clone(),
                &vec![0u8; limit as usize + 1],
                1 << 16,
            ),
            Code::ResourceExhausted,
            "exceeds the limit",
        ),
        (
            "chunks before the card",
            vec![RegisterModelRequest {
                payload: Some(Payload::Chunk(vec![1, 2, 3])),
            }],
            Code::InvalidArgument,
            "first RegisterModel message",
        ),
    ];
    for (what, msgs, code, needle) in cases {
        let err = client
            .register_model(tokio_stream::iter(msgs))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{what}: {}", err.message());
        assert!(err.message().contains(needle), "{what}: {}", err.message());
        assert!(
            leftovers(&uploads).is_empty(),
            "{what} left {:?}",
            leftovers(&uploads)
        );
    }

    // An upload interrupted by the client: card and a few chunks, then the
    // call is aborted.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let channel = server.channel.clone();
    let call = tokio::spawn(async move {
        ModelServiceClient::new(channel)
            .register_model(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    for m in messages("interrupted", unhashed.clone(), &onnx(), 4096)
        .into_iter()
        .take(5)
    {
        tx.send(m).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    call.abort();
    drop(tx);
    let mut clean = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if leftovers(&uploads).is_empty() {
            clean = true;
            break;
        }
    }
    assert!(clean, "interrupted upload left {:?}", leftovers(&uploads));

    // Nothing became visible, and the server still serves.
    assert_eq!(names(&server).await, vec!["base"]);
    server.stop().await;
}
