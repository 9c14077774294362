//! The embedding cache: embedding matrices on disk under `<data-dir>/cache`,
//! so that a re-evaluation or a new metric does not run the encoder again.
//!
//! An entry is found by the sha256 of its whole [`CacheKey`]: every input
//! that changes an embedding (the ONNX file, the execution provider, the
//! effective preprocessing, the dataset content, the split, the output, the
//! view with the augmentation's parameters and seed, and the versions of the
//! preprocessing and augmentation code). Each file carries its key in a
//! header with the digest of its values; a read that finds another key, a
//! torn or altered file, is a mismatch: treated as a miss, counted apart,
//! and the file is removed so that the next write replaces it.
//!
//! File layout (`<key digest>.emb`): the magic line `EMBEDEVAL-CACHE 1\n`;
//! the key as JSON; the shape and the sha256 of the values as JSON (each
//! JSON part after its length, a little-endian u32); then rows × dim
//! little-endian f32 values. The key is compared byte for byte with the
//! canonical JSON of the key asked for, so no float is ever re-parsed.
//!
//! Bounded in bytes; the least recently used files go first. Writes are
//! atomic (a temporary file renamed into place), so a crash never leaves a
//! torn entry.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::augment::{Augmenter, AUGMENT_VERSION};
use crate::encoder::Preprocessing;
use crate::error::{Error, Result};
use crate::metrics::Matrix;

/// First bytes of every cache file; the number is the file format's version.
const MAGIC: &[u8] = b"EMBEDEVAL-CACHE 1\n";
/// Extension of cache entries.
const EXTENSION: &str = "emb";
/// Largest header a reader accepts (a corrupt length must not allocate much).
const MAX_HEADER: usize = 1 << 20;

/// Which images a matrix embeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum View {
    /// The split's images as stored.
    Original,
    /// Seeded positive views of them, made by this augmenter.
    Positive {
        /// Every parameter of the views, the seed among them.
        augmenter: Augmenter,
        /// [`AUGMENT_VERSION`] of the code that made them.
        version: u32,
    },
}

impl View {
    /// The positive views `augmenter` makes with the current code.
    pub fn positive(augmenter: Augmenter) -> Self {
        View::Positive {
            augmenter,
            version: AUGMENT_VERSION,
        }
    }
}

/// Everything that decides an embedding matrix; the cache's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheKey {
    /// sha256 of the ONNX model.
    pub model_sha256: String,
    /// Where the model runs ("cpu", "cuda:0"): providers differ in the last bits.
    pub execution_provider: String,
    /// The effective preprocessing, with its code version.
    pub preprocessing: Preprocessing,
    /// Content id of the dataset.
    pub dataset_id: String,
    /// Split name.
    pub split: String,
    /// Model output.
    pub output: String,
    /// Original images or positive views.
    pub view: View,
}

impl CacheKey {
    /// sha256 of the key's canonical JSON, in hex: the entry's file name.
    pub fn digest(&self) -> String {
        let text = serde_json::to_vec(self).expect("a cache key serialises");
        hex::encode(Sha256::digest(text))
    }

    fn file_name(&self) -> String {
        format!("{}.{EXTENSION}", self.digest())
    }
}

/// What a cache file says of its values, after its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ValuesHeader {
    /// Rows of the matrix.
    rows: usize,
    /// Columns of the matrix.
    dim: usize,
    /// sha256 of the values as stored (little-endian f32).
    values_sha256: String,
}

/// What a cache read found.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// The matrix stored under this key.
    Hit(Matrix),
    /// Nothing stored under this key.
    Miss,
    /// A file under this key's name that is not this key's matrix (another
    /// key, a corrupt header or altered values); the reason says which.
    Mismatch(String),
}

impl Lookup {
    /// The metric label of the result: "hit", "miss" or "mismatch".
    pub fn label(&self) -> &'static str {
        match self {
            Lookup::Hit(_) => "hit",
            Lookup::Miss => "miss",
            Lookup::Mismatch(_) => "mismatch",
        }
    }

    /// The matrix, on a hit.
    pub fn into_matrix(self) -> Option<Matrix> {
        match self {
            Lookup::Hit(m) => Some(m),
            _ => None,
        }
    }
}

/// Counts of cache reads since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads that returned a matrix.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Reads that found a file that was not the key's matrix.
    pub mismatches: u64,
}

/// The cache folder and its bound.
#[derive(Debug)]
pub struct EmbeddingCache {
    dir: PathBuf,
    max_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    mismatches: AtomicU64,
    evict_lock: Mutex<()>,
    shared: Option<crate::object_stores::Remote>,
}

impl EmbeddingCache {
    /// A cache in `dir` holding at most `max_bytes` (0 turns it off). Files
    /// of an older layout, which carry no key to check, are removed.
    pub fn new(dir: PathBuf, max_bytes: u64) -> Result<Self> {
        if max_bytes > 0 {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("create cache dir {}", dir.display()), e))?;
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if entry.path().extension().is_some_and(|e| e == "npy") {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
            }
        }
        Ok(Self {
            dir,
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            mismatches: AtomicU64::new(0),
            evict_lock: Mutex::new(()),
            shared: None,
        })
    }

    /// The same cache over a store the replicas share: an entry this one
    /// misses is looked for there ([`EmbeddingCache::fetch_shared`]), and
    /// an entry it stores is copied there ([`EmbeddingCache::share`]). The
    /// local folder stays bounded by its size.
    pub fn with_shared(mut self, remote: crate::object_stores::Remote) -> Self {
        self.shared = (self.max_bytes > 0).then_some(remote);
        self
    }

    /// `key`'s matrix from the shared store (kept locally too), when
    /// another replica computed it; a store that cannot be reached is a
    /// miss (logged), not an error.
    pub async fn fetch_shared(&self, key: &CacheKey) -> Option<Matrix> {
        let remote = self.shared.as_ref()?;
        let name = key.file_name();
        let bytes = match remote.get(&name).await {
            Ok(b) => b,
            Err(Error::NotFound { .. }) => return None,
            Err(err) => {
                tracing::warn!(%err, "shared embedding cache unreachable; computing instead");
                return None;
            }
        };
        let m = match decode(&bytes, key) {
            Ok(m) => m,
            Err(reason) => {
                tracing::warn!(%name, %reason, "shared embedding cache entry does not match its key; ignored");
                return None;
            }
        };
        let path = self.dir.join(&name);
        let tmp = self
            .dir
            .join(format!(".{name}.{}.fetch", std::process::id()));
        let written = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(err) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(%err, "cannot keep a shared cache entry locally");
        } else {
            self.evict();
        }
        Some(m)
    }

    /// Copies `key`'s local entry to the shared store (if there is one).
    pub async fn share(&self, key: &CacheKey) -> Result<()> {
        let Some(remote) = &self.shared else {
            return Ok(());
        };
        let path = self.path(key);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        remote.put(&key.file_name(), bytes).await
    }

    /// Reads since start.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            mismatches: self.mismatches.load(Ordering::Relaxed),
        }
    }

    /// The path of `key`'s entry.
    pub fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(key.file_name())
    }

    /// Looks `key` up; a hit marks the entry recently used, a mismatch
    /// removes the file.
    pub fn get(&self, key: &CacheKey) -> Lookup {
        if self.max_bytes == 0 {
            return Lookup::Miss;
        }
        let path = self.path(key);
        let found = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Lookup::Miss,
            Err(e) => Lookup::Mismatch(format!("unreadable: {e}")),
            Ok(bytes) => match decode(&bytes, key) {
                Ok(m) => Lookup::Hit(m),
                Err(reason) => Lookup::Mismatch(reason),
            },
        };
        let counter = match &found {
            Lookup::Hit(_) => {
                if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                    let _ = file.set_modified(SystemTime::now());
                }
                &self.hits
            }
            Lookup::Miss => &self.misses,
            Lookup::Mismatch(reason) => {
                tracing::warn!(file = %path.display(), %reason, "embedding cache entry does not match its key; discarded");
                let _ = std::fs::remove_file(&path);
                &self.mismatches
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores a matrix under `key`, then evicts the least recently used
    /// files beyond the bound.
    pub fn put(&self, key: &CacheKey, m: &Matrix) -> Result<()> {
        if self.max_bytes == 0 {
            return Ok(());
        }
        let name = key.file_name();
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            file.write_all(&header(key, m))?;
            for_values(m, |bytes| file.write_all(bytes))?;
            file.into_inner()?.sync_data()
        };
        write()
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(&name)))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::io(format!("store cache entry {name}"), e)
            })?;
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
            .filter(|e| e.path().extension().is_some_and(|x| x == EXTENSION))
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

/// Passes the values of `m` as little-endian bytes to `f`, a bounded
/// buffer at a time (the matrix is never copied whole).
fn for_values(m: &Matrix, mut f: impl FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<()> {
    let mut buffer = Vec::with_capacity(64 * 1024);
    for chunk in m.as_slice().chunks(16 * 1024) {
        buffer.clear();
        buffer.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        f(&buffer)?;
    }
    Ok(())
}

/// What a cache file holds before the values of `m` under `key`.
fn header(key: &CacheKey, m: &Matrix) -> Vec<u8> {
    let mut digest = Sha256::new();
    for_values(m, |bytes| {
        digest.update(bytes);
        Ok(())
    })
    .expect("hashing does not fail");
    let key = serde_json::to_vec(key).expect("a cache key serialises");
    let values = serde_json::to_vec(&ValuesHeader {
        rows: m.rows(),
        dim: m.dim(),
        values_sha256: hex::encode(digest.finalize()),
    })
    .expect("a cache header serialises");
    let mut out = Vec::with_capacity(MAGIC.len() + 8 + key.len() + values.len());
    out.extend_from_slice(MAGIC);
    for part in [&key, &values] {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// Splits a length-prefixed part off `bytes`.
fn part<'a>(bytes: &'a [u8], what: &str) -> std::result::Result<(&'a [u8], &'a [u8]), String> {
    let (len, rest) = bytes
        .split_at_checked(4)
        .ok_or_else(|| format!("truncated {what} length"))?;
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    if len > MAX_HEADER {
        return Err(format!("{what} length {len} is implausible"));
    }
    rest.split_at_checked(len)
        .ok_or_else(|| format!("truncated {what}"))
}

/// The matrix in `bytes` if they hold exactly `key`'s entry, else why not.
fn decode(bytes: &[u8], key: &CacheKey) -> std::result::Result<Matrix, String> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not an embedding cache file (bad magic)")?;
    let (stored_key, rest) = part(rest, "key")?;
    let wanted = serde_json::to_vec(key).expect("a cache key serialises");
    if stored_key != wanted.as_slice() {
        let held = String::from_utf8_lossy(stored_key);
        return Err(format!(
            "the file holds the key {held} (wanted {})",
            String::from_utf8_lossy(&wanted)
        ));
    }
    let (header, values) = part(rest, "header")?;
    let header: ValuesHeader =
        serde_json::from_slice(header).map_err(|e| format!("header does not parse: {e}"))?;
    let expected = header
        .rows
        .checked_mul(header.dim)
        .and_then(|n| n.checked_mul(4))
        .ok_or("header shape overflows")?;
    if values.len() != expected || header.dim == 0 {
        return Err(format!(
            "{} value bytes for a [{}, {}] matrix",
            values.len(),
            header.rows,
            header.dim
        ));
    }
    if hex::encode(Sha256::digest(values)) != header.values_sha256 {
        return Err("the values do not match their sha256".into());
    }
    let data = values
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Matrix::new(data, header.dim).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole cache file's bytes.
    fn encode(key: &CacheKey, m: &Matrix) -> Vec<u8> {
        let mut out = header(key, m);
        for_values(m, |bytes| {
            out.extend_from_slice(bytes);
            Ok(())
        })
        .unwrap();
        out
    }
    use crate::registry::card::{InputCard, InputDType, Layout};

    fn preprocessing(mean: f64) -> Preprocessing {
        InputCard {
            name: "images".into(),
            dtype: InputDType::Float32,
            shape: vec![-1, 1, 8, 8],
            layout: Layout::NCHW,
            scale: 1.0 / 16.0,
            preset: None,
            mean: vec![mean],
            std: vec![1.0],
            resize: crate::encoder::Resize::Bilinear,
        }
        .preprocessing()
    }

    fn key(split: &str) -> CacheKey {
        CacheKey {
            model_sha256: "m".into(),
            execution_provider: "cpu".into(),
            preprocessing: preprocessing(0.0),
            dataset_id: "d".into(),
            split: split.into(),
            output: "embedding".into(),
            view: View::Original,
        }
    }

    fn matrix() -> Matrix {
        Matrix::new((0..100).map(|v| v as f32).collect(), 10).unwrap()
    }

    #[test]
    fn every_input_of_an_embedding_changes_the_key() {
        let base = key("test");
        let aug = Augmenter::new(8, 8, 1, 16.0, 0);
        let variants = [
            CacheKey {
                model_sha256: "other".into(),
                ..base.clone()
            },
            CacheKey {
                execution_provider: "cuda:0".into(),
                ..base.clone()
            },
            CacheKey {
                preprocessing: preprocessing(0.5),
                ..base.clone()
            },
            CacheKey {
                preprocessing: Preprocessing {
                    version: 0,
                    ..preprocessing(0.0)
                },
                ..base.clone()
            },
            CacheKey {
                preprocessing: Preprocessing {
                    resize: crate::encoder::Resize::None,
                    ..preprocessing(0.0)
                },
                ..base.clone()
            },
            CacheKey {
                dataset_id: "e".into(),
                ..base.clone()
            },
            key("train"),
            CacheKey {
                output: "features".into(),
                ..base.clone()
            },
            CacheKey {
                view: View::positive(aug),
                ..base.clone()
            },
            CacheKey {
                view: View::positive(Augmenter { seed: 1, ..aug }),
                ..base.clone()
            },
            CacheKey {
                view: View::Positive {
                    augmenter: aug,
                    version: 0,
                },
                ..base.clone()
            },
        ];
        let mut digests: Vec<String> = variants.iter().map(CacheKey::digest).collect();
        digests.push(base.digest());
        let n = digests.len();
        digests.sort();
        digests.dedup();
        assert_eq!(digests.len(), n, "two different keys share a digest");
        assert_eq!(base.digest(), key("test").digest(), "the digest is stable");
    }

    #[test]
    fn round_trip_and_least_recently_used_eviction() {
        let dir = tempfile::tempdir().unwrap();
        let m = matrix();
        let size = encode(&key("a"), &m).len() as u64;
        // Room for two entries.
        let cache = EmbeddingCache::new(dir.path().to_path_buf(), 2 * size + 10).unwrap();
        assert_eq!(cache.get(&key("a")), Lookup::Miss);
        cache.put(&key("a"), &m).unwrap();
        assert_eq!(cache.get(&key("a")), Lookup::Hit(m.clone()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        cache.put(&key("b"), &m).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        cache.get(&key("a")).into_matrix().unwrap(); // a is now more recent than b
        std::thread::sleep(std::time::Duration::from_millis(20));
        cache.put(&key("c"), &m).unwrap();
        assert_eq!(
            cache.get(&key("b")),
            Lookup::Miss,
            "b was least recently used"
        );
        assert!(cache.get(&key("a")).into_matrix().is_some());
        assert!(cache.get(&key("c")).into_matrix().is_some());
        let stats = cache.stats();
        assert_eq!((stats.misses, stats.mismatches), (2, 0), "{stats:?}");
        assert!(stats.hits >= 4, "{stats:?}");
        let off = EmbeddingCache::new(dir.path().join("off"), 0).unwrap();
        off.put(&key("a"), &m).unwrap();
        assert_eq!(off.get(&key("a")), Lookup::Miss);
    }

    #[test]
    fn a_file_that_is_not_its_keys_matrix_is_a_mismatch_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::new(dir.path().to_path_buf(), 1 << 20).unwrap();
        let m = matrix();
        let other = Matrix::new((0..100).map(|v| -(v as f32)).collect(), 10).unwrap();
        let mean_half = CacheKey {
            preprocessing: preprocessing(0.5),
            ..key("test")
        };
        type Corrupt<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;
        let corruptions: Vec<(&str, Corrupt)> = vec![
            // Another key's file under this key's name: the wrong-numbers case.
            (
                "holds the key",
                Box::new(|b: &mut Vec<u8>| *b = encode(&mean_half, &other)),
            ),
            // A byte of the key flipped.
            (
                "holds the key",
                Box::new(|b: &mut Vec<u8>| b[MAGIC.len() + 6] ^= 0x20),
            ),
            // The shape header made unreadable.
            (
                "does not parse",
                Box::new(|b: &mut Vec<u8>| {
                    let key_len =
                        u32::from_le_bytes(b[MAGIC.len()..MAGIC.len() + 4].try_into().unwrap())
                            as usize;
                    b[MAGIC.len() + 4 + key_len + 4] = b'!'
                }),
            ),
            ("bad magic", Box::new(|b: &mut Vec<u8>| b[0] = b'X')),
            (
                "do not match their sha256",
                Box::new(|b: &mut Vec<u8>| {
                    let last = b.len() - 1;
                    b[last] ^= 1
                }),
            ),
            (
                "value bytes",
                Box::new(|b: &mut Vec<u8>| b.truncate(b.len() - 4)),
            ),
            (
                "implausible",
                Box::new(|b: &mut Vec<u8>| b[MAGIC.len() + 3] = 0xff),
            ),
        ];
        for (want, corrupt) in corruptions {
            cache.put(&key("test"), &m).unwrap();
            let path = cache.path(&key("test"));
            let mut bytes = std::fs::read(&path).unwrap();
            corrupt(&mut bytes);
            std::fs::write(&path, bytes).unwrap();
            match cache.get(&key("test")) {
                Lookup::Mismatch(reason) => assert!(reason.contains(want), "{want}: {reason}"),
                other => panic!("{want}: {other:?}"),
            }
            assert!(!path.exists(), "{want}: the bad file stays");
            assert_eq!(cache.get(&key("test")), Lookup::Miss);
        }
        assert_eq!(cache.stats().mismatches, 7);
        assert_eq!(cache.stats().hits, 0);
    }

    #[test]
    fn files_of_the_older_unkeyed_layout_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("0123.npy");
        std::fs::write(&old, b"\x93NUMPY").unwrap();
        let _cache = EmbeddingCache::new(dir.path().to_path_buf(), 1 << 20).unwrap();
        assert!(!old.exists());
    }
}
