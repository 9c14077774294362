//! The datasets root: one folder per dataset in the `embedeval-npy` format.
//! A dataset's id is the sha256 over its files (names and contents), so the
//! same content has the same id wherever it lives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};

use super::{Dataset, Split};
use crate::error::{Error, Result};
use crate::proto;

/// A dataset that opened, with its content id and the splits read so far.
#[derive(Debug)]
pub struct LoadedDataset {
    /// Registry name (the folder name).
    pub name: String,
    /// sha256 over the dataset's files.
    pub id: String,
    /// The dataset.
    pub dataset: Dataset,
    splits: Mutex<BTreeMap<String, Arc<Split>>>,
}

impl LoadedDataset {
    /// Wraps an opened dataset.
    pub fn new(name: String, id: String, dataset: Dataset) -> Self {
        Self {
            name,
            id,
            dataset,
            splits: Mutex::new(BTreeMap::new()),
        }
    }

    /// A split, read from disk the first time and kept in memory after.
    /// Blocking: call it off the async workers.
    pub fn split(&self, name: &str) -> Result<Arc<Split>> {
        let mut splits = self.splits.lock().map_err(|_| Error::Internal {
            task: format!("dataset {}", self.name),
            message: "the split cache lock is poisoned".into(),
        })?;
        if let Some(split) = splits.get(name) {
            return Ok(split.clone());
        }
        let split = Arc::new(self.dataset.load_split(name)?);
        splits.insert(name.to_string(), split.clone());
        Ok(split)
    }

    /// The dataset as the API describes it.
    pub fn info(&self) -> proto::DatasetInfo {
        let m = &self.dataset.manifest;
        let summary = &self.dataset.summary;
        proto::DatasetInfo {
            name: self.name.clone(),
            id: self.id.clone(),
            format: m.format.clone(),
            splits: summary
                .splits
                .iter()
                .map(|(name, &size)| proto::SplitInfo {
                    name: name.clone(),
                    size,
                })
                .collect(),
            num_classes: summary.num_classes,
            image_shape: summary.image_shape.iter().map(|&v| v as i64).collect(),
            source: m.source.clone(),
            license: m.license.clone(),
        }
    }
}

/// Every regular file under `dir`, by path relative to it, sorted.
fn walk(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> Result<()> {
    for entry in
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("read {}", dir.display()), e))?
    {
        let entry = entry.map_err(|e| Error::io(format!("read {}", dir.display()), e))?;
        let path = entry.path();
        let rel = rel.join(entry.file_name());
        if path.is_dir() {
            walk(&path, &rel, out)?;
        } else if path.is_file() {
            out.push((rel, path));
        }
    }
    Ok(())
}

/// sha256 over the regular files under `dir` (sorted by relative path): each
/// file contributes its relative path, its length and its bytes.
pub fn content_id(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for (rel, path) in files {
        let bytes =
            std::fs::read(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        let name = rel.to_string_lossy();
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The datasets root and the datasets found in it.
#[derive(Debug)]
pub struct DatasetRegistry {
    root: PathBuf,
    datasets: RwLock<BTreeMap<String, Arc<LoadedDataset>>>,
}

impl DatasetRegistry {
    /// An empty registry over `root`.
    pub fn empty(root: PathBuf) -> Self {
        Self {
            root,
            datasets: RwLock::new(BTreeMap::new()),
        }
    }

    /// Opens every dataset folder under the root; a bad one is logged and
    /// skipped. A missing root is an empty registry.
    pub fn scan(&self) -> Result<()> {
        let mut found = BTreeMap::new();
        if self.root.is_dir() {
            crate::registry::upload::clean_leftovers(&self.root);
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(&self.root)
                .map_err(|e| Error::io(format!("read datasets dir {}", self.root.display()), e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("dataset.toml").is_file())
                .collect();
            dirs.sort();
            for dir in dirs {
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let opened = crate::registry::validate_name("dataset", &name)
                    .and_then(|_| Dataset::open(&dir))
                    .and_then(|dataset| Ok((content_id(&dir)?, dataset)));
                match opened {
                    Ok((id, dataset)) => {
                        tracing::info!(dataset = %name, id = %id, "dataset found");
                        found.insert(
                            name.clone(),
                            Arc::new(LoadedDataset::new(name, id, dataset)),
                        );
                    }
                    Err(err) => tracing::warn!(dataset = %name, reason = %err, "dataset skipped"),
                }
            }
        }
        *self.datasets.write().expect("registry lock") = found;
        Ok(())
    }

    /// Every dataset, sorted by name.
    pub fn list(&self) -> Vec<Arc<LoadedDataset>> {
        self.datasets
            .read()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }

    /// The datasets root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a dataset of that name is registered or its folder exists.
    pub fn is_taken(&self, name: &str) -> bool {
        self.datasets
            .read()
            .expect("registry lock")
            .contains_key(name)
            || self.root.join(name).exists()
    }

    /// Adds a dataset that was validated and moved into the root.
    pub fn insert(&self, dataset: LoadedDataset) -> Result<Arc<LoadedDataset>> {
        let mut all = self.datasets.write().expect("registry lock");
        if all.contains_key(&dataset.name) {
            return Err(Error::AlreadyExists {
                kind: "dataset",
                name: dataset.name.clone(),
            });
        }
        let dataset = Arc::new(dataset);
        all.insert(dataset.name.clone(), dataset.clone());
        Ok(dataset)
    }

    /// Takes a dataset out of the registry and removes its folder.
    pub fn remove(&self, name: &str) -> Result<Arc<LoadedDataset>> {
        let dataset = self
            .datasets
            .write()
            .expect("registry lock")
            .remove(name)
            .ok_or_else(|| Error::NotFound {
                kind: "dataset",
                name: name.to_string(),
            })?;
        crate::registry::upload::remove_dir(&self.root, &dataset.dataset.dir, name)?;
        Ok(dataset)
    }

    /// One dataset by name.
    pub fn get(&self, name: &str) -> Result<Arc<LoadedDataset>> {
        self.datasets
            .read()
            .expect("registry lock")
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                kind: "dataset",
                name: name.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_follows_the_content() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("x.npy"), b"same").unwrap();
        std::fs::write(b.path().join("x.npy"), b"same").unwrap();
        assert_eq!(content_id(a.path()).unwrap(), content_id(b.path()).unwrap());
        std::fs::write(b.path().join("x.npy"), b"other").unwrap();
        assert_ne!(content_id(a.path()).unwrap(), content_id(b.path()).unwrap());
    }

    #[test]
    fn finds_the_bundled_digits() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets");
        let registry = DatasetRegistry::empty(root);
        registry.scan().unwrap();
        let digits = registry.get("digits").unwrap();
        let info = digits.info();
        assert_eq!(info.num_classes, 10);
        assert_eq!(info.image_shape, vec![8, 8, 1]);
        let sizes: Vec<(String, u64)> = info
            .splits
            .iter()
            .map(|s| (s.name.clone(), s.size))
            .collect();
        assert_eq!(sizes, vec![("test".into(), 540), ("train".into(), 1257)]);
        assert_eq!(info.id.len(), 64);
        assert!(matches!(registry.get("nope"), Err(Error::NotFound { .. })));
    }
}
