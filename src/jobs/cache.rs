//! The embedding cache: embeddings on disk under `<data-dir>/cache`, keyed
//! by (model sha256, dataset id, split, output, view, seed), so that a
//! re-evaluation or a new metric does not run the encoder again. Bounded in
//! bytes; the least recently used files go first. Writes are atomic (a
//! temporary file renamed into place), so a crash never leaves a torn entry.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::data::npy::{NpyArray, NpyType};
use crate::error::{Error, Result};
use crate::metrics::Matrix;

/// What identifies a cached embedding matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// sha256 of the ONNX model.
    pub model_sha256: String,
    /// Content id of the dataset.
    pub dataset_id: String,
    /// Split name.
    pub split: String,
    /// Model output.
    pub output: String,
    /// "original" or "positive".
    pub view: String,
    /// Seed of the view (0 for originals).
    pub seed: u64,
}

impl CacheKey {
    fn file_name(&self) -> String {
        let text = format!(
            "{}|{}|{}|{}|{}|{}",
            self.model_sha256, self.dataset_id, self.split, self.output, self.view, self.seed
        );
        format!("{}.npy", hex::encode(Sha256::digest(text)))
    }
}

/// The cache folder and its bound.
#[derive(Debug)]
pub struct EmbeddingCache {
    dir: PathBuf,
    max_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    evict_lock: Mutex<()>,
}

impl EmbeddingCache {
    /// A cache in `dir` holding at most `max_bytes` (0 turns it off).
    pub fn new(dir: PathBuf, max_bytes: u64) -> Result<Self> {
        if max_bytes > 0 {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("create cache dir {}", dir.display()), e))?;
        }
        Ok(Self {
            dir,
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evict_lock: Mutex::new(()),
        })
    }

    /// (hits, misses) since start.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The cached matrix, if there is one (and marks it recently used).
    pub fn get(&self, key: &CacheKey) -> Option<Matrix> {
        if self.max_bytes == 0 {
            return None;
        }
        let path = self.dir.join(key.file_name());
        let found = NpyArray::read(&path)
            .ok()
            .filter(|a| a.shape.len() == 2)
            .and_then(|a| Matrix::new(a.to_f32().ok()?, a.shape[1]).ok());
        match &found {
            Some(_) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                    let _ = file.set_modified(SystemTime::now());
                }
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
            }
        }
        found
    }

    /// Stores a matrix, then evicts the least recently used files beyond the bound.
    pub fn put(&self, key: &CacheKey, m: &Matrix) -> Result<()> {
        if self.max_bytes == 0 {
            return Ok(());
        }
        let name = key.file_name();
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        NpyArray {
            dtype: NpyType::F32,
            shape: vec![m.rows(), m.dim()],
            data: m.as_slice().iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
        .write(&tmp)?;
        std::fs::rename(&tmp, self.dir.join(&name))
            .map_err(|e| Error::io(format!("store cache entry {name}"), e))?;
        self.evict();
        Ok(())
    }

    fn evict(&self) {
        let _guard = self.evict_lock.lock();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".npy"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                tracing::debug!(file = %path.display(), "embedding cache evicted");
            }
        }
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(split: &str) -> CacheKey {
        CacheKey {
            model_sha256: "m".into(),
            dataset_id: "d".into(),
            split: split.into(),
            output: "embedding".into(),
            view: "original".into(),
            seed: 0,
        }
    }

    #[test]
    fn round_trip_and_least_recently_used_eviction() {
        let dir = tempfile::tempdir().unwrap();
        // Room for about two 100-value entries.
        let cache = EmbeddingCache::new(dir.path().to_path_buf(), 2 * 528 + 10).unwrap();
        let m = Matrix::new((0..100).map(|v| v as f32).collect(), 10).unwrap();
        assert!(cache.get(&key("a")).is_none());
        cache.put(&key("a"), &m).unwrap();
        assert_eq!(cache.get(&key("a")).unwrap(), m);
        std::thread::sleep(std::time::Duration::from_millis(20));
        cache.put(&key("b"), &m).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        cache.get(&key("a")).unwrap(); // a is now more recent than b
        std::thread::sleep(std::time::Duration::from_millis(20));
        cache.put(&key("c"), &m).unwrap();
        assert!(cache.get(&key("b")).is_none(), "b was least recently used");
        assert!(cache.get(&key("a")).is_some() && cache.get(&key("c")).is_some());
        let (hits, misses) = cache.stats();
        assert!(hits >= 4 && misses == 2, "{hits} {misses}");
        let off = EmbeddingCache::new(dir.path().join("off"), 0).unwrap();
        off.put(&key("a"), &m).unwrap();
        assert!(off.get(&key("a")).is_none());
    }
}
