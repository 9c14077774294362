//! Pictures and tables made from cached embeddings, kept as CBOR beside
//! the embedding cache (`<cache>/<kind>/<key>.cbor`) so that the same
//! request is answered at once and the same; the oldest beyond [`KEPT`] of
//! a kind go first. One that cannot be kept or read is made again.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::jobs::Engine;

/// Records kept per kind.
const KEPT: usize = 64;

/// Where the record `key` of `kind` is kept.
pub(super) fn path(engine: &Engine, kind: &str, key: &str) -> PathBuf {
    engine.cache_dir().join(kind).join(format!("{key}.cbor"))
}

/// The record kept at `path`, if any.
pub(super) async fn read<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = tokio::fs::read(path).await.ok()?;
    crate::database::decode_record(&bytes).ok()
}

/// Keeps `record` at `path` (written whole, then renamed).
pub(super) async fn write<T: Serialize>(path: &Path, record: &T) {
    let bytes = match crate::database::encode_record(record) {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::warn!(%err, "cannot keep a record; it will be made again");
            return;
        }
    };
    let path = path.to_path_buf();
    let kept = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let dir = path.parent().expect("a folder");
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)?;
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if files.len() > KEPT {
            files.sort();
            for (_, old) in &files[..files.len() - KEPT] {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(())
    })
    .await;
    if let Ok(Err(err)) = kept {
        tracing::warn!(%err, "cannot keep a record; it will be made again");
    }
}
