//! Uploads into a registry root, all or nothing: bytes go to a hidden
//! temporary folder under the root (`.upload-…`, ignored by scans), are
//! validated, and the folder is renamed into place in one step. A failed or
//! interrupted upload removes its folder; leftovers of a crash are removed
//! at the next start ([`clean_leftovers`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The entry name in a hidden folder's name `.replaced-<name>-<pid>-<ns>-<n>`.
fn replaced_entry(folder: &str) -> Option<&str> {
    let rest = folder.strip_prefix(".replaced-")?;
    let mut parts = rest.rsplitn(4, '-');
    let suffix: Vec<&str> = parts.by_ref().take(3).collect();
    let name = parts.next()?;
    let numeric = suffix.len() == 3 && suffix.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    numeric.then_some(name)
}

/// Cleans what a crash left in `root`: unfinished uploads (`.upload-*`) are
/// removed; a folder a replacement moved aside (`.replaced-<name>-…`, still
/// whole: it is only removed after the new folder took its place) is put
/// back when nothing took its place (the replacement is undone rather than
/// losing the entry), and removed otherwise; a removal's `.removed-*` folder
/// (perhaps half deleted, so never put back) and the `.deleted-*` folders of
/// earlier versions are removed.
pub fn clean_leftovers(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(original) = replaced_entry(&name) {
            let target = root.join(original);
            if !target.exists() {
                match std::fs::rename(entry.path(), &target) {
                    Ok(()) => {
                        tracing::warn!(folder = %original, "restored an entry whose replacement did not finish");
                        continue;
                    }
                    Err(err) => {
                        tracing::warn!(folder = %name, %err, "cannot restore a moved-aside entry")
                    }
                }
            }
        }
        let leftover = [".upload-", ".replaced-", ".removed-", ".deleted-"];
        if leftover.iter().any(|p| name.starts_with(p)) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::info!(folder = %name, "removed an unfinished upload or deletion")
                }
                Err(err) => tracing::warn!(folder = %name, %err, "cannot remove leftover folder"),
            }
        }
    }
}

/// A hidden folder `prefix-<name>-<unique>` under `root`.
fn hidden_dir(root: &Path, prefix: &str, name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    root.join(format!(
        "{prefix}-{name}-{}-{nanos}-{n}",
        std::process::id()
    ))
}

/// A temporary folder being filled; removed on drop unless committed.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    committed: bool,
    written: u64,
    limit: u64,
    what: &'static str,
}

impl Staging {
    /// Creates the hidden folder for upload `name` under `root`; `limit`
    /// bounds the bytes written in all, `what` names the upload in errors.
    pub async fn begin(root: &Path, name: &str, limit: u64, what: &'static str) -> Result<Self> {
        let dir = hidden_dir(root, ".upload", name);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        Ok(Self {
            dir,
            committed: false,
            written: 0,
            limit,
            what,
        })
    }

    /// The folder being filled.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Counts `len` more bytes against the limit.
    pub fn charge(&mut self, len: u64) -> Result<()> {
        self.written += len;
        if self.written > self.limit {
            return Err(Error::ResourceExhausted(format!(
                "{} upload exceeds the limit of {} bytes",
                self.what, self.limit
            )));
        }
        Ok(())
    }

    /// Renames the folder to `target`; ALREADY_EXISTS when it is taken.
    pub fn commit(mut self, target: &Path, kind: &'static str, name: &str) -> Result<()> {
        if target.exists() {
            return Err(Error::AlreadyExists {
                kind,
                name: name.to_string(),
                detail: String::new(),
            });
        }
        std::fs::rename(&self.dir, target)
            .map_err(|e| Error::io(format!("move the upload into {}", target.display()), e))?;
        self.committed = true;
        Ok(())
    }
}

impl Staging {
    /// Renames the folder to `target`, moving what is there out of the way
    /// first (to a hidden `.replaced-…` sibling, removed afterwards): readers
    /// see the old folder or the new one, never neither for long and never a
    /// mix. When the second rename fails the old folder is put back.
    pub fn commit_replacing(mut self, target: &Path, name: &str) -> Result<()> {
        let root = target.parent().unwrap_or(Path::new("."));
        let trash = hidden_dir(root, ".replaced", name);
        let had_old = target.exists();
        if had_old {
            std::fs::rename(target, &trash)
                .map_err(|e| Error::io(format!("move {} aside", target.display()), e))?;
        }
        if let Err(e) = std::fs::rename(&self.dir, target) {
            if had_old {
                if let Err(err) = std::fs::rename(&trash, target) {
                    // Put back at the next start (see clean_leftovers).
                    tracing::error!(folder = %trash.display(), %err, "cannot put the replaced folder back");
                }
            }
            return Err(Error::io(
                format!("move the upload into {}", target.display()),
                e,
            ));
        }
        self.committed = true;
        if had_old {
            if let Err(err) = std::fs::remove_dir_all(&trash) {
                tracing::warn!(folder = %trash.display(), %err, "cannot remove the replaced folder");
            }
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A file being streamed into a staging folder, hashed as it goes. A full
/// volume is RESOURCE_EXHAUSTED naming it ([`Error::io_at`]).
#[derive(Debug)]
pub struct StagedFile {
    file: tokio::fs::File,
    path: PathBuf,
    hasher: Sha256,
    len: u64,
    expected: Option<u64>,
}

impl StagedFile {
    /// Creates `path`.
    pub async fn create(path: &Path) -> Result<Self> {
        let file = tokio::fs::File::create(path)
            .await
            .map_err(|e| Error::io_at(format!("create {}", path.display()), path, None, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            hasher: Sha256::new(),
            len: 0,
            expected: None,
        })
    }

    /// Says how many bytes the whole file will have (0: unknown), so that a
    /// full volume's message says how much more was needed.
    pub fn expecting(mut self, size: u64) -> Self {
        self.expected = (size > 0).then_some(size);
        self
    }

    fn needed(&self) -> Option<u64> {
        self.expected.map(|e| e.saturating_sub(self.len))
    }

    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.hasher.update(chunk);
        let needed = self.needed();
        self.len += chunk.len() as u64;
        let path = &self.path;
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| Error::io_at("write the upload", path, needed, e))
    }

    /// Flushes to disk; returns (length, sha256 hex).
    pub async fn finish(self) -> Result<(u64, String)> {
        self.file
            .sync_all()
            .await
            .map_err(|e| Error::io_at("flush the upload", &self.path, None, e))?;
        Ok((self.len, hex::encode(self.hasher.finalize())))
    }
}

/// Moves `dir` out of the way (a hidden `.removed-…` sibling, which a crash
/// may leave half deleted and [`clean_leftovers`] therefore never puts
/// back) and removes it.
pub fn remove_dir(root: &Path, dir: &Path, name: &str) -> Result<()> {
    let trash = hidden_dir(root, ".removed", name);
    std::fs::rename(dir, &trash).map_err(|e| Error::io(format!("remove {}", dir.display()), e))?;
    std::fs::remove_dir_all(&trash).map_err(|e| Error::io(format!("remove {}", trash.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_aside_entry_is_put_back_unless_something_took_its_place() {
        assert_eq!(
            replaced_entry(".replaced-my-model-12-345-6"),
            Some("my-model")
        );
        assert_eq!(replaced_entry(".replaced-x"), None);
        let root = tempfile::tempdir().unwrap();
        let aside = hidden_dir(root.path(), ".replaced", "kept");
        std::fs::create_dir(&aside).unwrap();
        let stale = hidden_dir(root.path(), ".replaced", "taken");
        std::fs::create_dir(&stale).unwrap();
        std::fs::create_dir(root.path().join("taken")).unwrap();
        std::fs::create_dir(hidden_dir(root.path(), ".upload", "half")).unwrap();
        // A removal cut short: not put back, though nothing has its name.
        std::fs::create_dir(hidden_dir(root.path(), ".removed", "gone")).unwrap();
        std::fs::create_dir(hidden_dir(root.path(), ".deleted", "old")).unwrap();
        clean_leftovers(root.path());
        let mut left: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["kept", "taken"]);
    }
}
