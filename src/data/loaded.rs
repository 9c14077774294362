//! A dataset of the registry: the opened dataset, its content id and the
//! splits read so far. A dataset's id is the sha256 over its files (names
//! and contents), so the same content has the same id wherever it lives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{Dataset, Split};
use crate::error::{Error, Result};

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

    /// Opens dataset `name` from the files in `from`, to live in the folder
    /// `at` (where `from` is installed, when they differ).
    pub fn open(name: &str, from: &Path, at: PathBuf) -> Result<Self> {
        let mut dataset = Dataset::open(from)?;
        let id = content_id(from)?;
        dataset.dir = at;
        Ok(Self::new(name.to_string(), id, dataset))
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
    pub fn info(&self) -> crate::domain::DatasetInfo {
        let m = &self.dataset.manifest;
        let summary = &self.dataset.summary;
        crate::domain::DatasetInfo {
            name: self.name.clone(),
            id: self.id.clone(),
            format: m.format.clone(),
            splits: summary
                .splits
                .iter()
                .map(|(name, &size)| crate::domain::SplitInfo {
                    name: name.clone(),
                    size,
                })
                .collect(),
            num_classes: summary.num_classes,
            image_shape: summary.image_shape.iter().map(|&v| v as i64).collect(),
            source: m.source.clone(),
            license: m.license.clone(),
            image_size: self.dataset.fit().map_or(0, |f| f.side as u32),
            crop_fraction: self.dataset.fit().map_or(0.0, |f| f.crop_fraction),
            test_split: m.test_split.clone().unwrap_or_default(),
            train_split: m.train_split.clone().unwrap_or_default(),
            class_names: summary.class_names.clone(),
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
}
