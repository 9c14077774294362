//! Bundled models and datasets read from an object store (`--models-dir
//! s3://…`, `--datasets-dir s3://…`), mirrored under `<data-dir>/mirror/`
//! before the server serves; a local folder is read where it is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{is_url, mirror, Remote};
use crate::error::Result;

/// The bundles' stores, for those given as URLs.
#[derive(Debug)]
pub struct Bundles {
    /// The models' store (None: a local folder).
    pub models: Option<Remote>,
    /// The datasets' store (None: a local folder).
    pub datasets: Option<Remote>,
}

impl Bundles {
    /// The stores of `models_dir` and `datasets_dir` where they are URLs.
    pub fn open(models_dir: &Path, datasets_dir: &Path) -> Result<Self> {
        let remote = |dir: &Path| {
            let text = dir.to_string_lossy();
            is_url(&text).then(|| Remote::open(&text)).transpose()
        };
        Ok(Self {
            models: remote(models_dir)?,
            datasets: remote(datasets_dir)?,
        })
    }

    /// The local folder the registry reads `kind`'s bundle ("models" or
    /// "datasets") from: its mirror under `data_dir`, or `given` itself
    /// when it is a local folder.
    pub fn local(&self, data_dir: &Path, kind: &str, given: &Path) -> PathBuf {
        let remote = if kind == "models" {
            &self.models
        } else {
            &self.datasets
        };
        match remote {
            Some(_) => data_dir.join("mirror").join(kind),
            None => given.to_path_buf(),
        }
    }

    /// Mirrors the remote bundles into `root`, retrying while the store
    /// cannot be reached (the server stays NOT_SERVING meanwhile); an error
    /// a retry cannot mend (credentials refused, an empty store, a local
    /// disk that fails) is returned.
    pub async fn mirror(&self, root: &Path) -> Result<()> {
        for (kind, remote) in [("models", &self.models), ("datasets", &self.datasets)] {
            let Some(remote) = remote else { continue };
            let mut wait = Duration::from_secs(1);
            loop {
                match mirror(remote, &root.join(kind)).await {
                    Ok(fetched) => {
                        tracing::info!(kind, store = %remote.url(), fetched = ?fetched, "bundle mirrored");
                        break;
                    }
                    Err(err) if err.is_transient() => {
                        tracing::warn!(kind, %err, "cannot mirror the bundle yet; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(())
    }
}
