//! The gRPC server: the four embedeval services, health (NOT_SERVING until
//! every model is loaded and warmed up), reflection v1 and v1alpha, message
//! size limits, optional bearer-token auth and graceful shutdown: on the
//! first SIGINT or SIGTERM the engine stops admitting, running evaluations
//! get `--shutdown-grace` to finish and are then cancelled and recorded; a
//! second signal exits at once.

pub mod convert;
mod datasets;
mod embedding;
mod evaluation;
mod models;
pub mod status;
pub mod telemetry;
pub mod web;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::{Request, Status};
use tonic_health::ServingStatus;

use crate::config::ServeConfig;

use crate::encoder::Runtime;
use crate::error::{Error, Result};
use crate::jobs::cache::EmbeddingCache;
use crate::jobs::{Engine, EngineOptions};
use crate::object_stores::Bundles;
use crate::proto;
use crate::proto::dataset_service_server::DatasetServiceServer;
use crate::proto::embedding_service_server::EmbeddingServiceServer;
use crate::proto::evaluation_service_server::EvaluationServiceServer;
use crate::proto::model_service_server::ModelServiceServer;
use crate::registry::{DatasetRegistry, ModelRegistry, Registries, Shared};

/// Fully qualified names of the embedeval services, as health and
/// reflection list them.
pub const SERVICE_NAMES: [&str; 4] = [
    "embedeval.v1.ModelService",
    "embedeval.v1.DatasetService",
    "embedeval.v1.EmbeddingService",
    "embedeval.v1.EvaluationService",
];

/// State shared by the services.
#[derive(Debug)]
pub struct AppState {
    /// The models root and loaded models.
    pub models: Arc<ModelRegistry>,
    /// The datasets root and its datasets.
    pub datasets: Arc<DatasetRegistry>,
    /// Set once every model has been loaded and warmed up.
    pub ready: tokio::sync::watch::Receiver<bool>,
    /// ONNX Runtime, for models uploaded while serving.
    pub runtime: Arc<Runtime>,
    /// Largest model upload, in bytes.
    pub max_model_bytes: u64,
    /// Largest dataset upload, in bytes (`None`: from the memory available,
    /// [`crate::memory::payload_limit`]).
    pub max_dataset_bytes: Option<u64>,
    /// The evaluation engine: jobs, their slots, the cache and the results.
    pub engine: Arc<Engine>,
    /// The same models and datasets, kept in line with the other replicas.
    pub registries: Registries,
}

impl AppState {
    /// A model by name; one that another replica registered (uploads
    /// shared through `--data-url`) is fetched and loaded here first.
    pub async fn model(&self, name: &str) -> Result<Arc<crate::registry::LoadedModel>> {
        self.registries.named_model(name).await
    }

    /// A dataset by name; one that another replica registered is fetched
    /// and opened here first.
    pub async fn dataset(&self, name: &str) -> Result<Arc<crate::data::LoadedDataset>> {
        self.registries.named_dataset(name).await
    }

    /// UNAVAILABLE until the models are loaded.
    pub fn ensure_ready(&self) -> Result<()> {
        if *self.ready.borrow() {
            Ok(())
        } else {
            Err(Error::unavailable(
                crate::error::Unavailable::NotReady,
                "models are still loading; health reports SERVING when they are ready",
            ))
        }
    }
}

/// Checks the `authorization: Bearer <token>` header when auth is on.
#[derive(Clone)]
struct Auth {
    token: Option<Arc<str>>,
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, request: Request<()>) -> std::result::Result<Request<()>, Status> {
        let Some(token) = &self.token else {
            return Ok(request);
        };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(request),
            Some(_) => Err(Status::unauthenticated("wrong bearer token")),
            None => Err(Status::unauthenticated(
                "missing authorization header: send 'authorization: Bearer <token>'",
            )),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_token(path: &Path) -> Result<Arc<str>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("read auth token file {}", path.display()), e))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::Config(format!(
            "auth token file {} is empty",
            path.display()
        )));
    }
    Ok(token.into())
}

/// The server's TLS identity, when --tls-cert and --tls-key are given.
fn tls_config(config: &ServeConfig) -> Result<Option<tonic::transport::ServerTlsConfig>> {
    match (&config.tls_cert, &config.tls_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            let read = |p: &Path| {
                std::fs::read(p).map_err(|e| Error::io(format!("read {}", p.display()), e))
            };
            let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
            Ok(Some(
                tonic::transport::ServerTlsConfig::new().identity(identity),
            ))
        }
        _ => Err(Error::Config(
            "--tls-cert and --tls-key go together: give both or neither".into(),
        )),
    }
}

/// Binds `config.addr` and serves until SIGINT or SIGTERM; a second
/// signal while shutting down exits at once.
pub async fn run(config: ServeConfig) -> Result<()> {
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::io(format!("bind {}", config.addr), e))?;
    let (first, stop) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = first.send(());
        shutdown_signal().await;
        tracing::warn!("second signal: exiting at once");
        std::process::exit(130);
    });
    serve(config, listener, async {
        let _ = stop.await;
    })
    .await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT: shutting down"),
        _ = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

/// The port `listener` serves on, as text ("" when unknown).
fn listener_port(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map(|a| a.port().to_string())
        .unwrap_or_default()
}

/// Serves on `listener` until `shutdown` resolves, and the web dashboard
/// on `config.http_addr`. ONNX Runtime is loaded before the first
/// connection (a missing library fails here); models load in the
/// background while health says NOT_SERVING.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let dashboard = web::bind(config.http_addr).await?;
    serve_with_dashboard(config, listener, dashboard, shutdown).await
}

/// [`serve`] with the dashboard on `dashboard` (none: no dashboard),
/// whatever `config.http_addr` says.
pub async fn serve_with_dashboard(
    config: ServeConfig,
    listener: TcpListener,
    dashboard: Option<web::Listening>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    crate::use_ring_for_tls();
    // An engine forced that this processor cannot run stops the start.
    let knn_engine = crate::index::Engine::forced()?;
    let tls = tls_config(&config)?;
    let token = config
        .auth_token_file
        .as_deref()
        .map(read_token)
        .transpose()?;
    if let Some(addr) = config.metrics_addr {
        telemetry::install(addr)?;
    }
    let runtime_options = config.runtime_options();
    let runtime = Arc::new(
        tokio::task::spawn_blocking(move || Runtime::new(&runtime_options))
            .await
            .map_err(|e| Error::join("runtime start-up", e))??,
    );
    // Bundles read from an object store are mirrored under --data-dir.
    let bundles = Bundles::open(&config.models_dir, &config.datasets_dir)?;
    if bundles.models.is_none() && !config.models_dir.is_dir() {
        return Err(Error::Config(format!(
            "models dir {} is not a folder",
            config.models_dir.display()
        )));
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    for name in SERVICE_NAMES {
        health
            .set_service_status(name, ServingStatus::NotServing)
            .await;
    }

    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::io(format!("create data dir {}", config.data_dir.display()), e))?;
    // A full volume under it is named as the --data-dir volume.
    crate::volume::name_root(&config.data_dir, "--data-dir");
    let database_url = config
        .database_url
        .clone()
        .unwrap_or_else(|| crate::database::ReportStore::default_url(&config.data_dir));
    let reports = Arc::new(crate::database::ReportStore::open(&database_url).await?);
    tracing::info!(backend = ?reports.backend(), "results database open");
    let shared = config
        .data_url
        .as_deref()
        .map(|url| crate::object_stores::Remote::open(url).map(|r| Shared::new(r, reports.clone())))
        .transpose()?;
    let mut cache = EmbeddingCache::new(config.data_dir.join("cache"), config.cache_bytes)?;
    if let Some(shared) = &shared {
        tracing::info!(store = %shared.url(), "uploads and the embedding cache shared with the other replicas");
        cache = cache.with_shared(shared.cache());
    }
    let cache = Arc::new(cache);
    let engine = Engine::new(
        reports,
        cache,
        EngineOptions {
            slots: config.max_evaluations,
            queue: config.evaluation_queue,
            compute_threads: config.compute_threads,
            replica: config
                .replica_id
                .clone()
                .unwrap_or_else(|| crate::jobs::default_replica(&listener_port(&listener))),
            lease: config.job_lease,
            // Every replica resolves every model only when uploads are shared.
            steal: config.data_url.is_some(),
        },
    )?;
    tracing::info!(
        replica = %engine.replica(),
        blas_kernels = %crate::blas::kernels(),
        knn_engine = knn_engine.map_or("auto", crate::index::Engine::name),
        knn_fastest = crate::index::Engine::fastest().name(),
        "engine started"
    );
    let models_bundle = bundles.local(&config.data_dir, "models", &config.models_dir);
    let datasets_bundle = bundles.local(&config.data_dir, "datasets", &config.datasets_dir);
    for (bundle, kind, flag) in [
        (&models_bundle, "models", "--models-dir"),
        (&datasets_bundle, "datasets", "--datasets-dir"),
    ] {
        check_apart(bundle, &config.uploads_dir(kind), flag)?;
    }
    let models = Arc::new(ModelRegistry::with_bundle(
        Some(models_bundle),
        config.uploads_dir("models"),
    ));
    let datasets = Arc::new(DatasetRegistry::with_bundle(
        Some(datasets_bundle),
        config.uploads_dir("datasets"),
    ));
    let registries = Registries {
        models: models.clone(),
        datasets: datasets.clone(),
        runtime: runtime.clone(),
        shared: shared.clone(),
        keep_bytes: config.uploads_bytes,
        last_use: Arc::default(),
        uploading: Arc::default(),
    };
    let (ready_tx, ready) = tokio::sync::watch::channel(false);
    let state = Arc::new(AppState {
        models: models.clone(),
        datasets: datasets.clone(),
        ready,
        runtime: runtime.clone(),
        max_model_bytes: config.max_model_bytes,
        max_dataset_bytes: config.max_dataset_bytes,
        engine: engine.clone(),
        registries: registries.clone(),
    });

    let loader_health = health.clone();
    let loader_engine = engine.clone();
    let mirror_dir = config.data_dir.join("mirror");
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        if let Err(err) = bundles.mirror(&mirror_dir).await {
            tracing::error!(%err, "cannot mirror the bundles; staying NOT_SERVING");
            return;
        }
        let scanned = tokio::task::spawn_blocking(move || {
            datasets.scan()?;
            models.scan(&runtime).map(|_| models)
        })
        .await;
        match scanned {
            Ok(Ok(models)) => {
                tracing::info!(
                    loaded = models.list().len(),
                    skipped = models.skipped().len(),
                    ms = started.elapsed().as_millis() as u64,
                    "models ready"
                );
                registries.reconcile_at_start().await;
                // Jobs of replicas that died (and this one's own from
                // before a restart) can be rebuilt now.
                if let Err(err) = loader_engine.take_over(Arc::new(registries)).await {
                    tracing::error!(%err, "cannot take over the jobs of stopped replicas");
                }
                let _ = ready_tx.send(true);
                loader_health
                    .set_service_status("", ServingStatus::Serving)
                    .await;
                for name in SERVICE_NAMES {
                    loader_health
                        .set_service_status(name, ServingStatus::Serving)
                        .await;
                }
            }
            Ok(Err(err)) => tracing::error!(%err, "cannot load models; staying NOT_SERVING"),
            Err(err) => tracing::error!(%err, "model loading panicked; staying NOT_SERVING"),
        }
    });

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Config(format!("reflection: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Error::Config(format!("reflection: {e}")))?;

    let limit = config.max_message_bytes;
    let grace = config.shutdown_grace;
    let auth = Auth { token };
    let models_svc = ModelServiceServer::new(models::ModelApi::new(state.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let datasets_svc = DatasetServiceServer::new(datasets::DatasetApi::new(state.clone()))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    // Streamed answers stay well under the message limit (and under the
    // 4 MiB a default gRPC client accepts).
    let response_bytes = config
        .response_bytes
        .min(limit.saturating_sub(64 << 10).max(1));
    let embedding_svc = EmbeddingServiceServer::new(embedding::EmbeddingApi::new(
        state.clone(),
        config.embed_chunk_rows,
        response_bytes,
    ))
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let evaluation_svc =
        EvaluationServiceServer::new(evaluation::EvaluationApi::new(state.clone()))
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);

    let local = listener
        .local_addr()
        .map_err(|e| Error::io("read the listening address", e))?;
    tracing::info!(
        addr = %local,
        models_dir = %config.models_dir.display(),
        max_message_bytes = limit,
        auth = auth.token.is_some(),
        tls = config.tls_cert.is_some(),
        "serving gRPC"
    );
    let stop = tokio_util::sync::CancellationToken::new();
    if let Some(dashboard) = dashboard {
        let scheme = if config.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(url = %format!("{scheme}://{}", dashboard.addr), auth = auth.token.is_some(), "serving the web dashboard");
        let router = web::router(state.clone(), auth.token.clone(), config.tls_cert.is_some());
        let tls_files = config.tls_cert.clone().zip(config.tls_key.clone());
        let stopped = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let tls = tls_files.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
            if let Err(err) = web::serve(dashboard, router, tls, stopped).await {
                tracing::error!(%err, "the web dashboard stopped");
            }
        });
    }
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tls)
            .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    }
    builder
        .layer(telemetry::RpcMetricsLayer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(InterceptedService::new(models_svc, auth.clone()))
        .add_service(InterceptedService::new(datasets_svc, auth.clone()))
        .add_service(InterceptedService::new(embedding_svc, auth.clone()))
        .add_service(InterceptedService::new(evaluation_svc, auth))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            shutdown.await;
            stop.cancel();
            engine.shutdown(grace).await;
        })
        .await
        .map_err(|e| Error::Internal {
            task: "grpc server".into(),
            message: e.to_string(),
        })?;
    tracing::info!("server stopped");
    Ok(())
}

/// Refuses a bundle folder that is, holds or lies inside the uploads folder
/// of its kind: the bundle is read-only and uploads live under --data-dir,
/// so one folder cannot be both.
fn check_apart(bundle: &std::path::Path, uploads: &std::path::Path, flag: &str) -> Result<()> {
    std::fs::create_dir_all(uploads)
        .map_err(|e| Error::io(format!("create {}", uploads.display()), e))?;
    let (Ok(b), Ok(u)) = (bundle.canonicalize(), uploads.canonicalize()) else {
        return Ok(());
    };
    if b.starts_with(&u) || u.starts_with(&b) {
        return Err(Error::Config(format!(
            "{flag} {} and the uploads folder {} overlap: bundled entries are read-only and uploads \
             live under --data-dir; point {flag} elsewhere (uploads of earlier versions kept in \
             {flag} can be moved to {})",
            bundle.display(),
            uploads.display(),
            uploads.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn auth_interceptor_checks_the_bearer_token() {
        use tonic::service::Interceptor;
        let mut auth = Auth {
            token: Some("s3cret".into()),
        };
        let mut ok = Request::new(());
        ok.metadata_mut()
            .insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(auth.call(ok).is_ok());
        let mut wrong = Request::new(());
        wrong
            .metadata_mut()
            .insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(
            auth.call(wrong).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            auth.call(Request::new(())).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut open = Auth { token: None };
        assert!(open.call(Request::new(())).is_ok());
    }
}
