//! Helpers shared by the integration tests: an in-process server on an
//! ephemeral port, and the bundled models to copy from.
#![allow(dead_code)]

pub mod cluster;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use embedeval::ServeConfig;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// The RegisterModel stream that uploads the bundled model `model` (its
/// card and ONNX file, in 256 KiB chunks) under `name`.
pub fn zoo_upload(model: &str, name: &str) -> Vec<embedeval::proto::RegisterModelRequest> {
    use embedeval::proto::register_model_request::Payload;
    use embedeval::proto::{ModelUpload, RegisterModelRequest};
    let source = zoo().join(model);
    let card = std::fs::read_to_string(source.join("model.toml")).unwrap();
    let bytes = std::fs::read(source.join("model.onnx")).unwrap();
    let mut out = vec![RegisterModelRequest {
        payload: Some(Payload::Card(ModelUpload {
            name: name.into(),
            card_toml: card,
            size_bytes: bytes.len() as u64,
            sha256: String::new(),
            replace: false,
        })),
    }];
    out.extend(bytes.chunks(256 * 1024).map(|c| RegisterModelRequest {
        payload: Some(Payload::Chunk(c.to_vec())),
    }));
    out
}

/// A model of the bundled zoo that the tests copy and query.
pub const ZOO_MODEL: &str = "infonce-t0.1";

/// The repository's models root.
pub fn zoo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Copies a zoo model folder into `dest/<name>`.
pub fn copy_model(model: &str, dest: &Path, name: &str) -> PathBuf {
    let to = dest.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(zoo().join(model)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

/// Starts a Compare of every model on the digits and reads its first
/// event, which must be progress; returns the stream and that event.
pub async fn compare_all_started(
    channel: Channel,
) -> (
    tonic::Streaming<embedeval::proto::CompareEvent>,
    embedeval::proto::Progress,
) {
    use embedeval::proto::{compare_event, CompareRequest};
    let mut stream =
        embedeval::proto::evaluation_service_client::EvaluationServiceClient::new(channel)
            .compare(CompareRequest {
                models: vec![],
                dataset: "digits".into(),
                detach: false,
                test_split: String::new(),
                train_split: String::new(),
                spec: None,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    let Some(compare_event::Event::Progress(p)) = first.event else {
        panic!("the first event of a comparison is progress")
    };
    (stream, p)
}

/// A spec that runs `stage` alone ("uniformity", "nearest_negatives",
/// "penalty" (on the neighbours' profile), "knn" or "linear").
pub fn only(stage: &str) -> embedeval::proto::MetricSpec {
    let mut spec = embedeval::proto::MetricSpec {
        skip_uniformity: true,
        skip_alignment: true,
        skip_tolerance: true,
        skip_nearest_negatives: true,
        skip_penalty: true,
        skip_effective_rank: true,
        skip_knn: true,
        skip_linear: true,
        skip_retrieval: true,
        skip_clustering: true,
        ..Default::default()
    };
    match stage {
        "uniformity" => spec.skip_uniformity = false,
        "nearest_negatives" => spec.skip_nearest_negatives = false,
        "penalty" => spec.skip_penalty = false,
        "knn" => spec.skip_knn = false,
        "linear" => spec.skip_linear = false,
        "retrieval" => spec.skip_retrieval = false,
        other => panic!("{other}"),
    }
    spec
}

/// Sends SIGTERM to `child`.
pub fn sigterm(child: &std::process::Child) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM {}", child.id());
}

/// Waits (up to `within`) for `child` to exit; its exit code (None when a
/// signal ended it). Past `within` the child is killed and the test fails,
/// naming `what` and `detail()` (its log, say).
pub fn exit_within(
    child: &mut std::process::Child,
    within: Duration,
    what: &str,
    detail: impl Fn() -> String,
) -> Option<i32> {
    let until = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {within:?}: {}", detail());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free loopback address (host:port) for a server process.
pub fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// Connects to a server at `addr` (host:port), waiting up to 30 s for it.
pub async fn connect(addr: &str) -> Channel {
    for _ in 0..600 {
        if let Ok(ch) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        {
            return ch;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start");
}

/// How many CIFAR-10 models the bundled zoo holds (`models/cifar10-*`).
pub fn cifar_models() -> usize {
    std::fs::read_dir(zoo())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("cifar10-"))
        })
        .count()
}

/// A configuration serving the bundled zoo and datasets.
pub fn zoo_config() -> ServeConfig {
    let mut config = ServeConfig::with_models_dir(zoo());
    config.datasets_dir = zoo().join("../datasets");
    config
}

/// A server over the bundled zoo and datasets, SERVING.
pub async fn zoo_server() -> TestServer {
    let server = TestServer::start(zoo_config()).await;
    server.wait_serving().await;
    server
}

/// A server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The web dashboard's address, when started with one.
    pub web: Option<SocketAddr>,
    /// The server's --data-dir (a temporary folder unless the config named one).
    pub data_dir: Option<tempfile::TempDir>,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<embedeval::Result<()>>,
}

impl TestServer {
    /// Starts a server on 127.0.0.1:0 with `config` and connects to it.
    pub async fn start(config: ServeConfig) -> Self {
        Self::start_on(config, false).await
    }

    /// [`TestServer::start`] with the web dashboard on another port of
    /// 127.0.0.1.
    pub async fn start_with_web(config: ServeConfig) -> Self {
        Self::start_on(config, true).await
    }

    async fn start_on(mut config: ServeConfig, web: bool) -> Self {
        let data_dir = if config.data_dir == Path::new(".embedeval") {
            let dir = tempfile::tempdir().unwrap();
            config.data_dir = dir.path().to_path_buf();
            Some(dir)
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        config.addr = addr;
        let dashboard = if web {
            let at = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            Some(embedeval::server::web::Listening::on(at).unwrap())
        } else {
            None
        };
        let web = dashboard.as_ref().map(|d| d.addr);
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(embedeval::serve_with_dashboard(
            config,
            listener,
            dashboard,
            async {
                let _ = stopped.await;
            },
        ));
        let channel = loop {
            match tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
            {
                Ok(ch) => break ch,
                Err(_) if !handle.is_finished() => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => match handle.await {
                    Ok(Err(err)) => panic!("server did not start: {err}"),
                    _ => panic!("server did not start: {e}"),
                },
            }
        };
        Self {
            addr,
            web,
            data_dir,
            channel,
            stop: Some(stop),
            handle,
        }
    }

    /// The overall health status.
    pub async fn health(&self) -> ServingStatus {
        HealthClient::new(self.channel.clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status()
    }

    /// Waits (up to 60 s) until health says SERVING.
    pub async fn wait_serving(&self) {
        for _ in 0..3000 {
            if self.health().await == ServingStatus::Serving {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server never became SERVING");
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.handle).await.unwrap().unwrap();
    }
}

/// A codec that sends and receives messages as raw bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}
