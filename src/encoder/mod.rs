//! The encoder runtime: ONNX Runtime located and initialised once per
//! process, the execution provider chosen from `--device`, and sessions that
//! turn image batches into embeddings.

mod device;
mod preprocess;
mod worker;

pub use device::{Device, ExecutionProvider};
pub use preprocess::{
    preprocess, resize_bilinear, resize_note, ImageBatch, InputDType, Layout, Preprocessing,
    Resize, ResizeNote, PREPROCESS_VERSION,
};
pub use worker::{Encoder, EncoderInput, WorkerOptions};

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{Tensor, TensorElementType, ValueType};

use crate::error::{Error, Result};

/// File name of the ONNX Runtime library that scripts/bootstrap installs.
pub const ORT_LIB_NAME: &str = "libonnxruntime.so.1.31.1";

/// Where scripts/bootstrap unpacks ONNX Runtime, relative to the repository.
pub const ORT_SETUP_DIR: &str = ".deps/onnxruntime";

/// The set-up locations searched after `--ort-lib` and `ORT_DYLIB_PATH`:
/// next to the running binary (the container layout), then the repository's
/// bootstrap folder.
pub fn setup_locations() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        out.push(dir.join(ORT_LIB_NAME));
    }
    out.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(ORT_SETUP_DIR)
            .join(ORT_LIB_NAME),
    );
    out
}

/// Finds the ONNX Runtime library: `flag` (`--ort-lib` / `EMBEDEVAL_ORT_LIB`),
/// then `ORT_DYLIB_PATH`, then [`setup_locations`]. The error names all three.
pub fn resolve_ort_lib(flag: Option<&Path>) -> Result<PathBuf> {
    let from_env = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
    search_ort_lib(flag, from_env.as_deref(), &setup_locations())
}

/// The search of [`resolve_ort_lib`] over explicit inputs.
fn search_ort_lib(
    flag: Option<&Path>,
    from_env: Option<&Path>,
    candidates: &[PathBuf],
) -> Result<PathBuf> {
    let given = |path: &Path, what: &str| {
        if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(Error::Config(format!(
                "{what} {} is not a file",
                path.display()
            )))
        }
    };
    if let Some(path) = flag {
        return given(path, "`ort_lib`");
    }
    if let Some(path) = from_env {
        return given(path, "ORT_DYLIB_PATH=");
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let searched: Vec<String> =
                candidates.iter().map(|p| p.display().to_string()).collect();
            Error::Config(format!(
                "onnx runtime library not found: give `ort_lib=PATH` (or EMBEDEVAL_ORT_LIB), \
             set ORT_DYLIB_PATH, or run scripts/bootstrap to install it in the set-up location \
             (searched {})",
                searched.join(", ")
            ))
        })
}

static ENVIRONMENT: OnceLock<(PathBuf, Environment)> = OnceLock::new();
static ENVIRONMENT_INIT: Mutex<()> = Mutex::new(());

/// The process-wide ONNX Runtime environment, loading `lib` the first time.
/// ONNX Runtime allows one environment per process; a later call with another
/// library path is an error rather than a silent reuse.
pub fn environment(lib: &Path) -> Result<&'static Environment> {
    let _guard = ENVIRONMENT_INIT
        .lock()
        .map_err(|_| Error::runtime("environment lock poisoned"))?;
    if let Some((loaded, env)) = ENVIRONMENT.get() {
        if loaded != lib {
            return Err(Error::Config(format!(
                "onnx runtime is already loaded from {} in this process; cannot load {}",
                loaded.display(),
                lib.display()
            )));
        }
        return Ok(env);
    }
    let builder = ort::init_from(lib).map_err(|e| {
        Error::Config(format!(
            "cannot load onnx runtime from {}: {e}",
            lib.display()
        ))
    })?;
    let env = builder
        .with_name("embedeval")
        .with_telemetry(false)
        .build()?;
    tracing::info!(library = %lib.display(), "onnx runtime loaded");
    let _ = ENVIRONMENT.set((lib.to_path_buf(), env));
    Ok(&ENVIRONMENT.get().expect("set above").1)
}

/// Settings of the encoder runtime.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The ONNX Runtime library (`None`: the search of [`resolve_ort_lib`]).
    pub ort_lib: Option<PathBuf>,
    /// Which execution provider to use.
    pub device: Device,
    /// Threads per session for intra-op parallelism (0: ONNX Runtime's default).
    pub intra_threads: usize,
    /// Batching and queue of each model's worker thread.
    pub worker: WorkerOptions,
    /// Whether CPU sessions keep ONNX Runtime's memory arena (and memory
    /// pattern): faster repeated runs, but the memory of the largest batch
    /// stays with the process. Off, each run's buffers are freed after it.
    pub arena: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            ort_lib: None,
            device: Device::Auto,
            intra_threads: 0,
            worker: WorkerOptions::default(),
            arena: false,
        }
    }
}

/// The loaded ONNX Runtime with its execution provider: builds sessions.
pub struct Runtime {
    env: &'static Environment,
    provider: ExecutionProvider,
    intra_threads: usize,
    worker: WorkerOptions,
    arena: bool,
    library: PathBuf,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("provider", &self.provider)
            .field("intra_threads", &self.intra_threads)
            .field("arena", &self.arena)
            .field("library", &self.library)
            .finish()
    }
}

impl Runtime {
    /// Loads ONNX Runtime and resolves the execution provider. A `cuda:N`
    /// that cannot be honoured is an error, never a silent fall-back.
    pub fn new(opts: &RuntimeOptions) -> Result<Self> {
        let library = resolve_ort_lib(opts.ort_lib.as_deref())?;
        let env = environment(&library)?;
        let provider = device::resolve(opts.device)?;
        tracing::info!(device = %opts.device, provider = %provider, "execution provider chosen");
        Ok(Self {
            env,
            provider,
            intra_threads: opts.intra_threads,
            worker: opts.worker,
            arena: opts.arena,
            library,
        })
    }

    /// The execution provider sessions run on.
    pub fn provider(&self) -> ExecutionProvider {
        self.provider
    }

    /// Settings of the models' worker threads.
    pub fn worker_options(&self) -> WorkerOptions {
        self.worker
    }

    /// The ONNX Runtime library in use.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// Builds a session for the ONNX file at `path` (graph optimisation
    /// level 3, the configured threads and provider).
    pub fn load(&self, path: &Path) -> Result<EncoderSession> {
        let bytes =
            std::fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        self.load_bytes(&bytes)
    }

    /// Builds a session from ONNX bytes held in memory.
    pub fn load_bytes(&self, onnx: &[u8]) -> Result<EncoderSession> {
        let rt =
            |e: ort::Error<ort::session::builder::SessionBuilder>| Error::runtime(e.to_string());
        let mut builder = Session::builder(self.env)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(rt)?;
        if self.intra_threads > 0 {
            builder = builder.with_intra_threads(self.intra_threads).map_err(rt)?;
        }
        if !self.arena {
            builder = builder.with_memory_pattern(false).map_err(rt)?;
        }
        builder = device::register(builder, self.provider, self.arena)?;
        let session = builder.commit_from_memory(onnx).map_err(|e| {
            Error::InvalidArgument(format!(
                "onnx model does not load: {e}{}",
                not_onnx_hint(onnx)
            ))
        })?;
        EncoderSession::new(session)
    }
}

/// What a file that is not ONNX probably is, and how to make an ONNX file
/// of it ("" when it looks like nothing else): torch.save writes a zip
/// archive (or, before PyTorch 1.6, a pickle).
pub fn not_onnx_hint(bytes: &[u8]) -> &'static str {
    let pickle = bytes.first() == Some(&0x80) && bytes.get(1).is_some_and(|v| (2..=5).contains(v));
    if bytes.starts_with(b"PK\x03\x04") || pickle {
        " (this is a PyTorch checkpoint as torch.save writes it, not ONNX: export the model with \
         torch.onnx.export(model, torch.randn(1, C, H, W), \"model.onnx\", \
         input_names=[\"images\"], output_names=[\"embedding\"], \
         dynamic_axes={\"images\": {0: \"batch\"}}))"
    } else {
        " (an ONNX file is what torch.onnx.export or tf2onnx writes)"
    }
}

/// Element types embedeval feeds to or reads from models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// 32-bit float.
    Float32,
    /// 8-bit unsigned integer.
    Uint8,
    /// 64-bit signed integer.
    Int64,
    /// Anything else the graph declares (not usable as an image input).
    Other,
}

impl ElementType {
    fn from_ort(ty: TensorElementType) -> Self {
        match ty {
            TensorElementType::Float32 => ElementType::Float32,
            TensorElementType::Uint8 => ElementType::Uint8,
            TensorElementType::Int64 => ElementType::Int64,
            _ => ElementType::Other,
        }
    }

    /// Lowercase name as model cards spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ElementType::Float32 => "float32",
            ElementType::Uint8 => "uint8",
            ElementType::Int64 => "int64",
            ElementType::Other => "other",
        }
    }
}

/// One input or output of an ONNX graph: its name, element type and shape
/// (-1 for a dynamic axis).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Graph name.
    pub name: String,
    /// Element type (`None` for non-tensor values).
    pub dtype: Option<ElementType>,
    /// Shape, -1 for dynamic axes.
    pub shape: Vec<i64>,
}

fn tensor_spec(outlet: &ort::value::Outlet) -> TensorSpec {
    let (dtype, shape) = match outlet.dtype() {
        ValueType::Tensor { ty, shape, .. } => (Some(ElementType::from_ort(*ty)), shape.to_vec()),
        _ => (None, Vec::new()),
    };
    TensorSpec {
        name: outlet.name().to_string(),
        dtype,
        shape,
    }
}

/// Values fed to a graph input.
#[derive(Debug, Clone, PartialEq)]
pub enum InputData {
    /// float32 values.
    F32(Vec<f32>),
    /// uint8 values.
    U8(Vec<u8>),
}

impl InputData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            InputData::F32(v) => v.len(),
            InputData::U8(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A float32 output of a run: its shape and row-major values.
#[derive(Debug, Clone)]
pub struct OutputTensor {
    /// Shape of the output, e.g. [n, d].
    pub shape: Vec<i64>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// An ONNX Runtime session with the graph's inputs and outputs read off it.
/// Runs are serialised on the session (ONNX Runtime sessions take `&mut`).
pub struct EncoderSession {
    session: Mutex<Session>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    metadata: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for EncoderSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncoderSession")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

impl EncoderSession {
    fn new(session: Session) -> Result<Self> {
        let inputs = session.inputs().iter().map(tensor_spec).collect();
        let outputs = session.outputs().iter().map(tensor_spec).collect();
        // The graph's custom metadata (`metadata_props`), best effort.
        let metadata = session
            .metadata()
            .ok()
            .map(|m| {
                m.custom_keys()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|k| m.custom(&k).map(|v| (k, v)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            session: Mutex::new(session),
            inputs,
            outputs,
            metadata,
        })
    }

    /// The graph's custom metadata (ONNX `metadata_props`).
    pub fn metadata(&self) -> &std::collections::BTreeMap<String, String> {
        &self.metadata
    }

    /// The graph's inputs.
    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    /// The graph's outputs.
    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    /// Runs the graph on one input and returns the named float32 outputs, in
    /// the order asked for.
    pub fn run(
        &self,
        input_name: &str,
        shape: &[i64],
        data: InputData,
        outputs: &[&str],
    ) -> Result<Vec<OutputTensor>> {
        let expected: i64 = shape.iter().product();
        if shape.iter().any(|&d| d < 0) || expected as usize != data.len() {
            return Err(Error::InvalidArgument(format!(
                "input shape {shape:?} does not hold {} values",
                data.len()
            )));
        }
        let value: ort::value::DynValue = match data {
            InputData::F32(v) => Tensor::from_array((shape.to_vec(), v))?.into_dyn(),
            InputData::U8(v) => Tensor::from_array((shape.to_vec(), v))?.into_dyn(),
        };
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::runtime("session lock poisoned"))?;
        let result = session.run(ort::inputs![input_name => value])?;
        outputs
            .iter()
            .map(|name| {
                let value = result
                    .get(*name)
                    .ok_or_else(|| Error::runtime(format!("model has no output {name:?}")))?;
                let (shape, values) = value.try_extract_tensor::<f32>()?;
                Ok(OutputTensor {
                    shape: shape.to_vec(),
                    data: values.to_vec(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_search_order_and_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.so");
        let b = dir.path().join("b.so");
        let c = dir.path().join("c.so");
        std::fs::write(&a, b"").unwrap();
        std::fs::write(&b, b"").unwrap();
        std::fs::write(&c, b"").unwrap();
        let candidates = vec![dir.path().join("missing.so"), c.clone()];
        assert_eq!(search_ort_lib(Some(&a), Some(&b), &candidates).unwrap(), a);
        assert_eq!(search_ort_lib(None, Some(&b), &candidates).unwrap(), b);
        assert_eq!(search_ort_lib(None, None, &candidates).unwrap(), c);

        let err = search_ort_lib(None, None, &candidates[..1])
            .unwrap_err()
            .to_string();
        for needle in [
            "`ort_lib=PATH`",
            "ORT_DYLIB_PATH",
            "scripts/bootstrap",
            "missing.so",
        ] {
            assert!(err.contains(needle), "{needle} not in {err}");
        }
        let err = search_ort_lib(None, Some(&dir.path().join("x.so")), &candidates)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ORT_DYLIB_PATH") && err.contains("x.so"),
            "{err}"
        );
    }
}
