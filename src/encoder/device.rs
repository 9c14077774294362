//! Execution providers: parsing `--device` and registering the provider on
//! session builders. Without the `cuda` cargo feature only the CPU exists;
//! `cuda:N` is then an error at start, never a silent fall-back.

use std::fmt;
use std::str::FromStr;

use ort::session::builder::SessionBuilder;

use crate::error::{Error, Result};

/// What `--device` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// CUDA when the build and the library have it and a GPU is visible, else CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(u32),
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("device must be auto, cpu or cuda:N, got {s:?}")),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Auto => f.write_str("auto"),
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The provider sessions actually run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// CUDA device N.
    Cuda(u32),
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecutionProvider::Cpu => f.write_str("cpu"),
            ExecutionProvider::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Whether the loaded ONNX Runtime has the CUDA provider and a GPU is visible.
#[cfg(feature = "cuda")]
fn cuda_available() -> bool {
    use ort::ep::ExecutionProvider as _;
    let provider = ort::ep::CUDA::is_available().unwrap_or(false);
    let gpu = std::path::Path::new("/dev/nvidia0").exists()
        || std::path::Path::new("/proc/driver/nvidia/gpus").exists();
    provider && gpu
}

/// Resolves `--device` to a provider.
pub(crate) fn resolve(device: Device) -> Result<ExecutionProvider> {
    match device {
        Device::Cpu => Ok(ExecutionProvider::Cpu),
        #[cfg(feature = "cuda")]
        Device::Auto => Ok(if cuda_available() {
            ExecutionProvider::Cuda(0)
        } else {
            ExecutionProvider::Cpu
        }),
        #[cfg(not(feature = "cuda"))]
        Device::Auto => Ok(ExecutionProvider::Cpu),
        #[cfg(feature = "cuda")]
        Device::Cuda(n) => {
            if cuda_available() {
                Ok(ExecutionProvider::Cuda(n))
            } else {
                Err(Error::Config(format!(
                    "--device cuda:{n}: the loaded onnx runtime has no CUDA provider or no GPU is \
                     visible (install the onnxruntime-gpu library with scripts/bootstrap --gpu)"
                )))
            }
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(n) => Err(Error::Config(format!(
            "--device cuda:{n}: this build has no CUDA support (build with --features cuda)"
        ))),
    }
}

/// Registers the provider on a session builder; failure is an error.
pub(crate) fn register(
    builder: SessionBuilder,
    provider: ExecutionProvider,
    arena: bool,
) -> Result<SessionBuilder> {
    match provider {
        ExecutionProvider::Cpu => builder
            .with_execution_providers([ort::ep::CPU::default()
                .with_arena_allocator(arena)
                .build()
                .error_on_failure()])
            .map_err(|e| Error::Config(format!("cannot configure the CPU provider: {e}"))),
        #[cfg(feature = "cuda")]
        ExecutionProvider::Cuda(n) => builder
            .with_execution_providers([ort::ep::CUDA::default()
                .with_device_id(n as i32)
                .build()
                .error_on_failure()])
            .map_err(|e| Error::Config(format!("cannot use cuda:{n}: {e}"))),
        #[cfg(not(feature = "cuda"))]
        ExecutionProvider::Cuda(n) => Err(Error::Config(format!(
            "cuda:{n}: this build has no CUDA support"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("auto".parse::<Device>(), Ok(Device::Auto));
        assert_eq!("cpu".parse::<Device>(), Ok(Device::Cpu));
        assert_eq!("cuda:1".parse::<Device>(), Ok(Device::Cuda(1)));
        assert!("gpu".parse::<Device>().is_err());
        assert!("cuda:x".parse::<Device>().is_err());
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn cpu_is_always_available() {
        assert_eq!(resolve(Device::Cpu).unwrap(), ExecutionProvider::Cpu);
    }

    /// With the feature but without a GPU (as in CI), auto falls back to the
    /// CPU and an explicit cuda:N is refused.
    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_build_without_a_gpu_falls_back_only_on_auto() {
        // The provider query needs ONNX Runtime loaded, as Runtime::new does first.
        crate::encoder::environment(&crate::encoder::resolve_ort_lib(None).unwrap()).unwrap();
        if cuda_available() {
            assert_eq!(resolve(Device::Auto).unwrap(), ExecutionProvider::Cuda(0));
            return;
        }
        assert_eq!(resolve(Device::Auto).unwrap(), ExecutionProvider::Cpu);
        let err = resolve(Device::Cuda(0)).unwrap_err().to_string();
        assert!(err.contains("no CUDA provider or no GPU"), "{err}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_an_error_not_a_fallback() {
        let err = resolve(Device::Cuda(0)).unwrap_err().to_string();
        assert!(err.contains("no CUDA support"), "{err}");
        assert_eq!(resolve(Device::Auto).unwrap(), ExecutionProvider::Cpu);
    }
}
