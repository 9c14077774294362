//! End to end: the real server on an ephemeral port, called with the
//! generated clients.

mod common;

use common::{copy_model, TestServer, ZOO_MODEL};
use embedeval::proto::model_service_client::ModelServiceClient;
use embedeval::proto::{self, GetModelRequest, ListModelsRequest};
use embedeval::ServeConfig;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

#[tokio::test]
async fn serves_health_models_and_reflection() {
    let server = common::zoo_server().await;

    let mut models = ModelServiceClient::new(server.channel.clone());
    let list = models
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        list.skipped.is_empty(),
        "zoo models skipped: {:?}",
        list.skipped
    );
    let names: Vec<&str> = list.models.iter().map(|m| m.name.as_str()).collect();
    assert!(names.contains(&ZOO_MODEL), "{names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ListModels is sorted by name");

    let info = models
        .get_model(GetModelRequest {
            name: ZOO_MODEL.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, ZOO_MODEL);
    assert_eq!(info.sha256.len(), 64);
    let training = info.training.unwrap();
    assert_eq!(training.loss, "infonce");
    assert_eq!(training.temperature, 0.1);
    assert_eq!(training.dataset, "digits");
    let input = info.input.unwrap();
    assert_eq!(input.shape, vec![-1, 1, 8, 8]);
    assert_eq!(input.dtype, proto::DataType::Float32 as i32);
    assert_eq!(info.embedding_output, "embedding");
    assert_eq!(info.feature_output.as_deref(), Some("features"));
    assert_eq!(info.execution_provider, "cpu");
    let dims: Vec<(String, i64)> = info
        .outputs
        .iter()
        .map(|o| (o.name.clone(), o.dim))
        .collect();
    assert_eq!(
        dims,
        vec![
            ("embedding".to_string(), 128),
            ("features".to_string(), 128)
        ]
    );

    let missing = models
        .get_model(GetModelRequest {
            name: "no-such-model".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("no-such-model"));

    // Reflection v1 lists the four embedeval services.
    let mut reflection = ServerReflectionClient::new(server.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(services)) = reply.message_response else {
        panic!("unexpected reflection reply {reply:?}");
    };
    let services: Vec<String> = services.service.into_iter().map(|s| s.name).collect();
    for name in embedeval::server::SERVICE_NAMES {
        assert!(
            services.iter().any(|s| s == name),
            "{name} not in {services:?}"
        );
    }

    // The bundled dataset.
    let mut datasets =
        proto::dataset_service_client::DatasetServiceClient::new(server.channel.clone());
    let listed = datasets
        .list_datasets(proto::ListDatasetsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = listed.datasets.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, vec!["digits"]);
    let digits = datasets
        .get_dataset(proto::GetDatasetRequest {
            name: "digits".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (digits.num_classes, digits.image_shape.clone()),
        (10, vec![8, 8, 1])
    );
    assert_eq!(digits.format, "embedeval-npy");
    let err = datasets
        .get_dataset(proto::GetDatasetRequest {
            name: "cifar10".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // An unknown evaluation.
    let mut evals =
        proto::evaluation_service_client::EvaluationServiceClient::new(server.channel.clone());
    let err = evals
        .get_evaluation(proto::GetEvaluationRequest { id: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("evaluation not found: x"),
        "{}",
        err.message()
    );

    server.stop().await;
}

#[tokio::test]
async fn bad_models_are_skipped_with_reasons_while_good_ones_load() {
    let dir = tempfile::tempdir().unwrap();
    copy_model(ZOO_MODEL, dir.path(), "good");

    let corrupt = copy_model(ZOO_MODEL, dir.path(), "corrupt");
    std::fs::write(corrupt.join("model.onnx"), b"this is not an onnx graph").unwrap();
    let card = std::fs::read_to_string(corrupt.join("model.toml")).unwrap();
    let unhashed: String = card
        .lines()
        .filter(|l| !l.starts_with("onnx_sha256"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(corrupt.join("model.toml"), &unhashed).unwrap();

    let wrong_shape = copy_model(ZOO_MODEL, dir.path(), "wrong-shape");
    std::fs::write(
        wrong_shape.join("model.toml"),
        card.replace("shape = [-1, 1, 8, 8]", "shape = [-1, 1, 16, 16]"),
    )
    .unwrap();

    let missing_field = copy_model(ZOO_MODEL, dir.path(), "missing-field");
    std::fs::write(
        missing_field.join("model.toml"),
        card.replace("loss = \"infonce\"\n", ""),
    )
    .unwrap();

    let server = TestServer::start(ServeConfig::with_models_dir(dir.path())).await;
    server.wait_serving().await;
    let list = ModelServiceClient::new(server.channel.clone())
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let loaded: Vec<&str> = list.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(loaded, vec!["good"]);
    let reason = |name: &str| {
        list.skipped
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} not skipped: {:?}", list.skipped))
            .reason
            .clone()
    };
    let corrupt = reason("corrupt");
    assert!(corrupt.contains("onnx model does not load"), "{corrupt}");
    let shape = reason("wrong-shape");
    assert!(
        shape.contains("input.shape is [-1, 1, 16, 16]") && shape.contains("[-1, 1, 8, 8]"),
        "{shape}"
    );
    let field = reason("missing-field");
    assert!(field.contains("missing field `loss`"), "{field}");
    assert_eq!(list.skipped.len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn auth_token_guards_the_api_but_not_health() {
    let dir = tempfile::tempdir().unwrap();
    copy_model(ZOO_MODEL, dir.path(), "m");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let mut config = ServeConfig::with_models_dir(dir.path());
    config.auth_token_file = Some(token);
    let server = TestServer::start(config).await;
    server.wait_serving().await;

    let mut client = ModelServiceClient::new(server.channel.clone());
    let err = client
        .list_models(ListModelsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let mut request = tonic::Request::new(ListModelsRequest::default());
    request
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    let list = client.list_models(request).await.unwrap().into_inner();
    assert_eq!(list.models.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_bad_ort_lib_flag_fails_start_up_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::with_models_dir(dir.path());
    config.ort_lib = Some(dir.path().join("nope.so"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = embedeval::serve(config, listener, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`ort_lib`") && err.contains("nope.so"),
        "{err}"
    );
}

#[tokio::test]
async fn a_tls_certificate_without_its_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::with_models_dir(dir.path());
    config.tls_cert = Some(dir.path().join("cert.pem"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = embedeval::serve(config, listener, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--tls-cert and --tls-key go together"),
        "{err}"
    );
}
