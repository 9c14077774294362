//! Settings of `embedeval serve`: every flag also reads an `EMBEDEVAL_*`
//! environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::encoder::{Device, RuntimeOptions, WorkerOptions};

/// Default gRPC address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";
/// Default largest gRPC message, both ways: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Where the web dashboard listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAddr {
    /// No dashboard.
    Off,
    /// [`HttpAddr::DEFAULT`], or none when that port is taken.
    Auto,
    /// This address; one that cannot be bound fails start-up.
    At(SocketAddr),
}

impl HttpAddr {
    /// The address "auto" stands for.
    pub const DEFAULT: &str = "127.0.0.1:8080";
}

impl std::str::FromStr for HttpAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" | "" => Ok(HttpAddr::Off),
            "auto" => Ok(HttpAddr::Auto),
            addr => addr
                .parse()
                .map(HttpAddr::At)
                .map_err(|e| format!("{addr:?} is not auto, off or HOST:PORT: {e}")),
        }
    }
}

/// Everything `embedeval serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address the gRPC server listens on.
    #[arg(long, env = "EMBEDEVAL_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Bundled models, read-only: <name>/model.onnx with <name>/model.toml;
    /// a folder, or an object store URL (s3://bucket/prefix, gs://…, az://…)
    /// mirrored into <data-dir>/mirror/models at start.
    #[arg(long, env = "EMBEDEVAL_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
    /// Bundled datasets, read-only: <name>/dataset.toml with its files; a
    /// folder or an object store URL (mirrored like --models-dir).
    #[arg(long, env = "EMBEDEVAL_DATASETS_DIR", default_value = "datasets")]
    pub datasets_dir: PathBuf,
    /// Folder for the service's own state: uploaded models and datasets
    /// (<data-dir>/models, <data-dir>/datasets), the embedding cache and
    /// the results database. The one folder to keep on a volume.
    #[arg(long, env = "EMBEDEVAL_DATA_DIR", default_value = ".embedeval")]
    pub data_dir: PathBuf,
    /// Execution provider: auto, cpu or cuda:N.
    #[arg(long, env = "EMBEDEVAL_DEVICE", default_value = "auto")]
    pub device: Device,
    /// ONNX Runtime library (else ORT_DYLIB_PATH, else the set-up location).
    #[arg(long, env = "EMBEDEVAL_ORT_LIB")]
    pub ort_lib: Option<PathBuf>,
    /// Intra-op threads per ONNX Runtime session (0: ONNX Runtime's default).
    #[arg(long, env = "EMBEDEVAL_INTRA_THREADS", default_value_t = 0)]
    pub intra_threads: usize,
    /// Keep ONNX Runtime's CPU memory arena: repeated runs reuse its
    /// buffers, but the memory of the largest batch stays with the process
    /// (off: each run's buffers are freed after it).
    #[arg(long, env = "EMBEDEVAL_ORT_ARENA")]
    pub ort_arena: bool,
    /// Most malloc arenas (glibc), set before any thread starts: fewer keep
    /// less freed memory stranded after large evaluations (0: glibc's
    /// default of eight per core).
    #[arg(long, env = "EMBEDEVAL_MALLOC_ARENAS", default_value_t = 2)]
    pub malloc_arenas: usize,
    /// Most rows per ONNX Runtime run (concurrent requests are batched up to it).
    #[arg(long, env = "EMBEDEVAL_MAX_BATCH", default_value_t = 1024)]
    pub max_batch: usize,
    /// Requests that may wait for each model's worker thread.
    #[arg(long, env = "EMBEDEVAL_ENCODER_QUEUE", default_value_t = 64)]
    pub encoder_queue: usize,
    /// Default rows per Embed response (a request may ask for fewer).
    #[arg(long, env = "EMBEDEVAL_EMBED_CHUNK_ROWS", default_value_t = 1024)]
    pub embed_chunk_rows: usize,
    /// Most bytes of values in one streamed response (Embed): rows are cut
    /// to fit whatever the dimension; kept under --max-message-bytes.
    #[arg(long, env = "EMBEDEVAL_RESPONSE_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub response_bytes: usize,
    /// Evaluations (Evaluate, EvaluateEmbeddings, each model of a Compare) that run at once.
    #[arg(long, env = "EMBEDEVAL_MAX_EVALUATIONS", default_value_t = 2)]
    pub max_evaluations: usize,
    /// Evaluations that may wait for a slot; beyond it requests get RESOURCE_EXHAUSTED.
    #[arg(long, env = "EMBEDEVAL_EVALUATION_QUEUE", default_value_t = 16)]
    pub evaluation_queue: usize,
    /// Seconds running evaluations get to finish at shutdown before they
    /// are cancelled ("30", "30s", "500ms").
    #[arg(long, env = "EMBEDEVAL_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Threads for the CPU-heavy parts of evaluations (0: one per core).
    #[arg(long, env = "EMBEDEVAL_COMPUTE_THREADS", default_value_t = 0)]
    pub compute_threads: usize,
    /// Bytes of embeddings kept on disk under <data-dir>/cache (0: no cache).
    #[arg(long, env = "EMBEDEVAL_CACHE_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub cache_bytes: u64,
    /// Largest model (ONNX) upload, in bytes.
    #[arg(long, env = "EMBEDEVAL_MAX_MODEL_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_model_bytes: u64,
    /// Largest dataset upload (all files together, and the values of an
    /// EvaluateEmbeddings upload), in bytes [derived from the memory
    /// available when each upload begins: (available - 256 MiB) / 1.25].
    #[arg(long, env = "EMBEDEVAL_MAX_DATASET_BYTES")]
    pub max_dataset_bytes: Option<u64>,
    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, env = "EMBEDEVAL_MAX_MESSAGE_BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// File holding a bearer token that every embedeval RPC must present
    /// (health and reflection stay open).
    #[arg(long, env = "EMBEDEVAL_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Address of the read-only web dashboard, behind the same TLS and
    /// token as gRPC: "auto" is 127.0.0.1:8080 (left out, with a warning,
    /// when that port is taken), "off" serves none.
    #[arg(long, env = "EMBEDEVAL_HTTP_ADDR", default_value = "auto")]
    pub http_addr: HttpAddr,
    /// Address of the Prometheus metrics endpoint.
    #[arg(long, env = "EMBEDEVAL_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Results database URL (sqlite:// or postgres://). PostgreSQL with
    /// standbys: list every host as libpq does
    /// (`postgres://user@primary:5432,standby:5432/db`); the server writes
    /// to the one that accepts writes and follows a failover by itself.
    #[arg(long, env = "EMBEDEVAL_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Object store the replicas share uploads and the embedding cache
    /// through (`s3://bucket/prefix`, `gs://…`, `az://…`, `file:///…`):
    /// models and datasets registered through any replica are copied there
    /// and recorded in the database, and the others fetch them into their
    /// --data-dir when asked for them. Credentials come from the
    /// environment (AWS_*, GOOGLE_*, AZURE_*).
    #[arg(long, env = "EMBEDEVAL_DATA_URL")]
    pub data_url: Option<String>,
    /// With --data-url: the most bytes of uploaded models and datasets kept
    /// under <data-dir> (the least recently used go first, never one in
    /// use; the store keeps them and they are fetched again when asked
    /// for; 0: no bound).
    #[arg(long, env = "EMBEDEVAL_UPLOADS_BYTES", default_value_t = 16 * 1024 * 1024 * 1024)]
    pub uploads_bytes: u64,
    /// This replica's name among the replicas sharing the database (the
    /// owner of the jobs it runs; default: host name and serving port). A
    /// replica restarted under the same name takes its open jobs back at once.
    #[arg(long, env = "EMBEDEVAL_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// How long a job's lease holds without a heartbeat: the jobs of a
    /// replica that dies are taken over by another this long after its last
    /// heartbeat ("30s", "5s").
    #[arg(long, env = "EMBEDEVAL_JOB_LEASE", default_value = "30s", value_parser = parse_duration)]
    pub job_lease: Duration,
    /// TLS certificate (PEM).
    #[arg(long, env = "EMBEDEVAL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "EMBEDEVAL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Logs as JSON lines.
    #[arg(long, env = "EMBEDEVAL_LOG_JSON")]
    pub log_json: bool,
}

/// A duration as seconds ("30", "2.5"), or with a unit ("30s", "500ms").
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = t.strip_suffix('s') {
        (s, 1.0)
    } else {
        (t, 1.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| Duration::from_secs_f64(v * scale))
        .ok_or_else(|| format!("{text:?} is not a duration (e.g. 30, 30s, 500ms)"))
}

impl ServeConfig {
    /// A configuration with every default, serving `models_dir`.
    pub fn with_models_dir(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            addr: DEFAULT_ADDR.parse().expect("valid default address"),
            models_dir: models_dir.into(),
            datasets_dir: "datasets".into(),
            data_dir: ".embedeval".into(),
            device: Device::Auto,
            ort_lib: None,
            intra_threads: 0,
            ort_arena: false,
            malloc_arenas: 2,
            max_batch: 1024,
            encoder_queue: 64,
            embed_chunk_rows: 1024,
            response_bytes: 2 * 1024 * 1024,
            max_evaluations: 2,
            evaluation_queue: 16,
            shutdown_grace: Duration::from_secs(30),
            compute_threads: 0,
            cache_bytes: 4 * 1024 * 1024 * 1024,
            max_model_bytes: 512 * 1024 * 1024,
            max_dataset_bytes: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            auth_token_file: None,
            metrics_addr: None,
            http_addr: HttpAddr::Off,
            database_url: None,
            data_url: None,
            uploads_bytes: 16 * 1024 * 1024 * 1024,
            replica_id: None,
            job_lease: Duration::from_secs(30),
            tls_cert: None,
            tls_key: None,
            log_json: false,
        }
    }

    /// Where uploads of `kind` ("models" or "datasets") live.
    pub fn uploads_dir(&self, kind: &str) -> PathBuf {
        self.data_dir.join(kind)
    }

    /// The encoder runtime's part of the settings.
    pub fn runtime_options(&self) -> RuntimeOptions {
        RuntimeOptions {
            ort_lib: self.ort_lib.clone(),
            device: self.device,
            intra_threads: self.intra_threads,
            arena: self.ort_arena,
            worker: WorkerOptions {
                max_batch: self.max_batch,
                queue: self.encoder_queue,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_seconds_and_milliseconds() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
