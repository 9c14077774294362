//! One registry for every kind of entry (models, datasets) over two roots: a
//! read-only bundle (`--models-dir`, `--datasets-dir`: what ships with the
//! service) and the uploads root under `--data-dir`, where uploads land and
//! from where they are removed or replaced. It keeps the entries by name,
//! the folders that did not load with their reasons, and finds entries by
//! content (the sha256 that identifies what an entry holds, whatever its
//! name).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use super::{upload, validate_name};
use crate::error::{Error, Result};

/// What a catalog holds.
pub trait Entry: Send + Sync + 'static {
    /// "model" or "dataset", for messages and errors.
    const KIND: &'static str;
    /// Registry name (the folder name).
    fn name(&self) -> &str;
    /// The entry's folder.
    fn dir(&self) -> &Path;
    /// sha256 of what the entry holds.
    fn content_id(&self) -> &str;
    /// The description listings show (ModelInfo, DatasetInfo).
    type Info: serde::Serialize + serde::de::DeserializeOwned;
    /// The entry's description.
    fn describe(&self) -> Self::Info;
    /// What another replica's copy must match to be the same entry: the
    /// content id, and what of the description it does not cover.
    fn share_id(&self) -> String {
        self.content_id().to_string()
    }
}

/// A folder under a root that did not load.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// Folder name.
    pub name: String,
    /// Why it was skipped.
    pub reason: String,
}

/// The bundle and the uploads root, and the entries loaded from them.
#[derive(Debug)]
pub struct Catalog<T> {
    bundle: Option<PathBuf>,
    uploads: PathBuf,
    entries: RwLock<BTreeMap<String, Arc<T>>>,
    skipped: RwLock<Vec<Skipped>>,
    /// Held while an install or a removal changes the disk and the entries,
    /// so that the two always agree.
    writes: Mutex<()>,
}

impl<T: Entry> Catalog<T> {
    /// An empty catalog whose only root is the writable `uploads`.
    pub fn empty(uploads: PathBuf) -> Self {
        Self::with_bundle(None, uploads)
    }

    /// An empty catalog over a read-only `bundle` and the writable `uploads`.
    pub fn with_bundle(bundle: Option<PathBuf>, uploads: PathBuf) -> Self {
        Self {
            bundle,
            uploads,
            entries: RwLock::new(BTreeMap::new()),
            skipped: RwLock::new(Vec::new()),
            writes: Mutex::new(()),
        }
    }

    /// Loads every folder of the bundle, then of the uploads root, that
    /// `is_entry` accepts, with `load(name, dir)`, in name order. Hidden
    /// folders (uploads in progress) are ignored and a crash's leftovers in
    /// the uploads root removed; an entry that fails (a bad name, or an
    /// upload named like a bundled entry, included) is logged and recorded
    /// with its reason. A missing root holds nothing.
    pub fn scan_with(
        &self,
        is_entry: impl Fn(&Path) -> bool,
        load: impl Fn(&str, &Path) -> Result<T>,
    ) -> Result<()> {
        let mut entries = BTreeMap::new();
        let mut skipped = Vec::new();
        upload::clean_leftovers(&self.uploads);
        for root in self.bundle.iter().chain(std::iter::once(&self.uploads)) {
            self.scan_root(root, &is_entry, &load, &mut entries, &mut skipped)?;
        }
        *self.entries.write().expect("registry lock") = entries;
        *self.skipped.write().expect("registry lock") = skipped;
        Ok(())
    }

    /// Loads the entries of one root into `entries`.
    fn scan_root(
        &self,
        root: &Path,
        is_entry: &impl Fn(&Path) -> bool,
        load: &impl Fn(&str, &Path) -> Result<T>,
        entries: &mut BTreeMap<String, Arc<T>>,
        skipped: &mut Vec<Skipped>,
    ) -> Result<()> {
        if !root.is_dir() {
            return Ok(());
        }
        let listing = std::fs::read_dir(root)
            .map_err(|e| Error::io(format!("read {}s dir {}", T::KIND, root.display()), e))?;
        let mut dirs: Vec<PathBuf> = listing
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && is_entry(p))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
            })
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let started = std::time::Instant::now();
            let clash = || {
                if entries.contains_key(&name) {
                    Err(Error::AlreadyExists {
                        kind: T::KIND,
                        name: name.to_string(),
                        detail: " (bundled; this upload is not loaded)".into(),
                    })
                } else {
                    Ok(())
                }
            };
            match validate_name(T::KIND, &name)
                .and_then(|()| clash())
                .and_then(|()| load(&name, &dir))
            {
                Ok(entry) => {
                    tracing::info!(
                        kind = T::KIND,
                        name = %name,
                        id = %entry.content_id(),
                        ms = started.elapsed().as_millis() as u64,
                        "loaded"
                    );
                    entries.insert(name, Arc::new(entry));
                }
                Err(err) => {
                    tracing::warn!(kind = T::KIND, name = %name, reason = %err, "skipped");
                    skipped.push(Skipped {
                        name,
                        reason: err.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The writable root: where uploads land.
    pub fn uploads(&self) -> &Path {
        &self.uploads
    }

    /// Whether `entry` comes from the read-only bundle.
    pub fn is_bundled(&self, entry: &T) -> bool {
        self.bundle
            .as_deref()
            .is_some_and(|b| entry.dir().starts_with(b))
    }

    /// FAILED_PRECONDITION when `name` is a bundled entry (which no upload
    /// replaces and no request removes).
    pub fn check_writable(&self, name: &str) -> Result<()> {
        let loaded_bundled = self.get(name).is_ok_and(|e| self.is_bundled(&e));
        let bundle_folder = self
            .bundle
            .as_deref()
            .is_some_and(|b| b.join(name).exists());
        if loaded_bundled || bundle_folder {
            return Err(Error::FailedPrecondition(format!(
                "{} {name} is bundled with the server (read-only); upload under another name",
                T::KIND
            )));
        }
        Ok(())
    }

    /// Every entry, sorted by name.
    pub fn list(&self) -> Vec<Arc<T>> {
        let entries = self.entries.read().expect("registry lock");
        entries.values().cloned().collect()
    }

    /// The folders that did not load, with their reasons.
    pub fn skipped(&self) -> Vec<Skipped> {
        self.skipped.read().expect("registry lock").clone()
    }

    /// One entry by name; NOT_FOUND names the kind.
    pub fn get(&self, name: &str) -> Result<Arc<T>> {
        let entries = self.entries.read().expect("registry lock");
        entries.get(name).cloned().ok_or_else(|| Error::NotFound {
            kind: T::KIND,
            name: name.to_string(),
            hint: String::new(),
        })
    }

    /// One entry by name; one this catalog has not loaded is loaded with
    /// `load` from its folder in the uploads root when the folder is there
    /// (another replica sharing the root installed it). NOT_FOUND names the
    /// kind.
    pub fn get_or_load(&self, name: &str, load: impl FnOnce(&Path) -> Result<T>) -> Result<Arc<T>> {
        if let Ok(entry) = self.get(name) {
            return Ok(entry);
        }
        let missing = || Error::NotFound {
            kind: T::KIND,
            name: name.to_string(),
            hint: String::new(),
        };
        validate_name(T::KIND, name).map_err(|_| missing())?;
        let dir = self.uploads.join(name);
        if !dir.is_dir() {
            return Err(missing());
        }
        let _writes = self.writes.lock().expect("registry write lock");
        if let Ok(entry) = self.get(name) {
            return Ok(entry);
        }
        let entry = Arc::new(load(&dir)?);
        tracing::info!(
            kind = T::KIND,
            name,
            "loaded: registered through another replica"
        );
        self.entries
            .write()
            .expect("registry lock")
            .insert(name.to_string(), entry.clone());
        Ok(entry)
    }

    /// The entries that hold exactly this content, by name.
    pub fn find_content(&self, content_id: &str) -> Vec<Arc<T>> {
        let entries = self.entries.read().expect("registry lock");
        let same = entries.values().filter(|e| e.content_id() == content_id);
        same.cloned().collect()
    }

    /// Whether an entry of that name is loaded or its folder exists.
    pub fn is_taken(&self, name: &str) -> bool {
        let loaded = self
            .entries
            .read()
            .expect("registry lock")
            .contains_key(name);
        let on_disk = |root: &Path| root.join(name).exists();
        loaded || on_disk(&self.uploads) || self.bundle.as_deref().is_some_and(on_disk)
    }

    /// Moves a validated upload (`staging`, holding `entry`'s files) into
    /// the uploads root and serves `entry`, the disk and the entries
    /// changing together. A name that is taken is ALREADY_EXISTS; with
    /// `replace`, an uploaded entry of that name is swapped out in one step
    /// and returned (requests already running keep their handle to it), and
    /// a bundled one is FAILED_PRECONDITION.
    pub fn install(
        &self,
        staging: upload::Staging,
        entry: T,
        replace: bool,
    ) -> Result<(Arc<T>, Option<Arc<T>>)> {
        let _writes = self.writes.lock().expect("registry write lock");
        self.install_locked(staging, entry, replace)
    }

    /// Installs an entry fetched from elsewhere over any of its name, unless
    /// `superseded()` (asked under the write lock, so that no install comes
    /// between) says a newer one is on its way here: then nothing changes
    /// and None is returned.
    pub fn install_fetched(
        &self,
        staging: upload::Staging,
        entry: T,
        superseded: impl FnOnce() -> bool,
    ) -> Result<Option<Arc<T>>> {
        let _writes = self.writes.lock().expect("registry write lock");
        if superseded() {
            return Ok(None);
        }
        Ok(Some(self.install_locked(staging, entry, true)?.0))
    }

    /// [`Catalog::install`] under the write lock.
    fn install_locked(
        &self,
        staging: upload::Staging,
        entry: T,
        replace: bool,
    ) -> Result<(Arc<T>, Option<Arc<T>>)> {
        let name = entry.name().to_string();
        let target = self.uploads.join(&name);
        if replace {
            self.check_writable(&name)?;
            staging.commit_replacing(&target, &name)?;
        } else {
            if self.is_taken(&name) {
                return Err(Error::AlreadyExists {
                    kind: T::KIND,
                    name,
                    detail: String::new(),
                });
            }
            staging.commit(&target, T::KIND, &name)?;
        }
        self.skipped
            .write()
            .expect("registry lock")
            .retain(|s| s.name != name);
        let entry = Arc::new(entry);
        let old = self
            .entries
            .write()
            .expect("registry lock")
            .insert(name, entry.clone());
        Ok((entry, old))
    }

    /// Takes uploaded entry `name` out and removes its folder if nothing
    /// but the catalog holds it (no request or job uses it); whether it
    /// did. For entries kept as a cache of what another replica
    /// registered: the next use fetches it again.
    pub fn evict_if_idle(&self, name: &str) -> Result<bool> {
        let _writes = self.writes.lock().expect("registry write lock");
        {
            // Under the write lock no `get` can take a handle meanwhile.
            let mut entries = self.entries.write().expect("registry lock");
            match entries.get(name) {
                Some(e) if Arc::strong_count(e) == 1 && !self.is_bundled(e) => {
                    entries.remove(name);
                }
                _ => return Ok(false),
            }
        }
        upload::remove_dir(&self.uploads, &self.uploads.join(name), name)?;
        Ok(true)
    }

    /// The bytes on disk of each loaded upload's folder, by name.
    pub fn upload_sizes(&self) -> Vec<(String, u64)> {
        fn size(path: &Path) -> u64 {
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.is_dir() => std::fs::read_dir(path)
                    .map(|d| d.flatten().map(|e| size(&e.path())).sum())
                    .unwrap_or(0),
                Ok(m) => m.len(),
                Err(_) => 0,
            }
        }
        self.list()
            .iter()
            .filter(|e| !self.is_bundled(e))
            .map(|e| (e.name().to_string(), size(&self.uploads.join(e.name()))))
            .collect()
    }

    /// Takes an uploaded entry out and removes its folder (an upload that
    /// did not load, listed as skipped, is removed too); a bundled one is
    /// FAILED_PRECONDITION. Requests already running keep their handle and
    /// finish.
    pub fn remove(&self, name: &str) -> Result<()> {
        let _writes = self.writes.lock().expect("registry write lock");
        self.check_writable(name)?;
        let removed = self.entries.write().expect("registry lock").remove(name);
        let dir = self.uploads.join(name);
        let was_skipped = {
            let mut skipped = self.skipped.write().expect("registry lock");
            let before = skipped.len();
            skipped.retain(|s| s.name != name);
            skipped.len() != before
        };
        if removed.is_none() && !(was_skipped && dir.is_dir()) {
            return Err(Error::NotFound {
                kind: T::KIND,
                name: name.to_string(),
                hint: String::new(),
            });
        }
        upload::remove_dir(&self.uploads, &dir, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Note {
        name: String,
        dir: PathBuf,
        id: String,
    }

    impl Entry for Note {
        const KIND: &'static str = "note";
        fn name(&self) -> &str {
            &self.name
        }
        fn dir(&self) -> &Path {
            &self.dir
        }
        fn content_id(&self) -> &str {
            &self.id
        }
        type Info = ();
        fn describe(&self) {}
    }

    /// A staged upload of a note folder under `root`.
    fn stage(root: &Path, name: &str) -> upload::Staging {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let staging = rt
            .block_on(upload::Staging::begin(root, name, 1 << 20, "note"))
            .unwrap();
        std::fs::write(staging.dir().join("note.txt"), name).unwrap();
        staging
    }

    /// Hidden folders left under `root`.
    fn upload_leftovers(root: &Path) -> Vec<String> {
        std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    fn load(name: &str, dir: &Path) -> Result<Note> {
        let text =
            std::fs::read_to_string(dir.join("note.txt")).map_err(|e| Error::io("read note", e))?;
        Ok(Note {
            name: name.into(),
            dir: dir.into(),
            id: text,
        })
    }

    #[test]
    fn scans_skips_with_reasons_finds_by_content_and_removes() {
        let root = tempfile::tempdir().unwrap();
        for (dir, text) in [
            ("a", Some("x")),
            ("b", Some("x")),
            ("c", None),
            ("Bad", Some("y")),
        ] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
            if let Some(text) = text {
                std::fs::write(root.path().join(dir).join("note.txt"), text).unwrap();
            }
        }
        std::fs::create_dir(root.path().join(".upload-x")).unwrap();
        let catalog: Catalog<Note> = Catalog::empty(root.path().to_path_buf());
        catalog.scan_with(|_| true, load).unwrap();
        let names: Vec<String> = catalog.list().iter().map(|n| n.name.clone()).collect();
        assert_eq!(names, ["a", "b"]);
        let skipped: Vec<String> = catalog.skipped().iter().map(|s| s.name.clone()).collect();
        assert_eq!(skipped, ["Bad", "c"]);
        assert!(catalog.skipped()[0].reason.contains("not allowed"));
        assert!(!root.path().join(".upload-x").exists(), "leftovers removed");
        assert_eq!(catalog.find_content("x").len(), 2);
        assert!(matches!(
            catalog.get("z"),
            Err(Error::NotFound { kind: "note", .. })
        ));
        let again = load("a", &root.path().join("a")).unwrap();
        let staging = stage(root.path(), "a");
        assert!(matches!(
            catalog.install(staging, again, false),
            Err(Error::AlreadyExists { .. })
        ));
        assert!(catalog.is_taken("c"), "its folder exists");
        catalog.remove("a").unwrap();
        assert!(!root.path().join("a").exists());
        assert!(catalog.get("a").is_err());

        let missing: Catalog<Note> = Catalog::empty(root.path().join("none"));
        missing.scan_with(|_| true, load).unwrap();
        assert!(missing.list().is_empty());
    }

    #[test]
    fn an_idle_upload_is_evicted_and_one_in_use_is_not() {
        let uploads = tempfile::tempdir().unwrap();
        let catalog: Catalog<Note> = Catalog::empty(uploads.path().to_path_buf());
        for name in ["a", "b"] {
            let dir = uploads.path().join(name);
            let note = Note {
                name: name.into(),
                dir,
                id: name.into(),
            };
            catalog
                .install(stage(uploads.path(), name), note, false)
                .unwrap();
        }
        let mut sizes = catalog.upload_sizes();
        sizes.sort();
        assert_eq!(sizes, [("a".to_string(), 1), ("b".to_string(), 1)]);
        let held = catalog.get("a").unwrap();
        assert!(!catalog.evict_if_idle("a").unwrap(), "in use");
        assert!(catalog.evict_if_idle("b").unwrap());
        assert!(catalog.get("b").is_err() && !uploads.path().join("b").exists());
        drop(held);
        assert!(catalog.evict_if_idle("a").unwrap());
        assert!(!uploads.path().join("a").exists());
        assert!(!catalog.evict_if_idle("a").unwrap(), "gone already");
    }

    #[test]
    fn a_bundle_is_read_only_and_wins_over_an_upload_of_its_name() {
        let bundle = tempfile::tempdir().unwrap();
        let uploads = tempfile::tempdir().unwrap();
        for (root, dir, text) in [
            (bundle.path(), "a", "bundled"),
            (uploads.path(), "a", "uploaded"),
            (uploads.path(), "b", "uploaded"),
        ] {
            std::fs::create_dir(root.join(dir)).unwrap();
            std::fs::write(root.join(dir).join("note.txt"), text).unwrap();
        }
        let catalog: Catalog<Note> =
            Catalog::with_bundle(Some(bundle.path().into()), uploads.path().into());
        catalog.scan_with(|_| true, load).unwrap();
        assert_eq!(catalog.get("a").unwrap().id, "bundled");
        assert_eq!(catalog.skipped()[0].name, "a");
        assert!(catalog.skipped()[0].reason.contains("bundled"));
        let err = catalog.remove("a").unwrap_err();
        assert!(matches!(err, Error::FailedPrecondition(_)), "{err}");
        assert!(bundle.path().join("a").exists());
        catalog.remove("b").unwrap();
        assert!(!uploads.path().join("b").exists());
        let note = |id: &str| Note {
            name: "c".into(),
            dir: uploads.path().join("c"),
            id: id.into(),
        };
        let (first, old) = catalog
            .install(stage(uploads.path(), "c"), note("first"), false)
            .unwrap();
        assert!(old.is_none());
        assert_eq!(first.id, "first");
        let (new, old) = catalog
            .install(stage(uploads.path(), "c"), note("second"), true)
            .unwrap();
        assert_eq!(
            (new.id.as_str(), old.unwrap().id.as_str()),
            ("second", "first")
        );
        assert_eq!(catalog.get("c").unwrap().id, "second");
        assert!(upload_leftovers(uploads.path()).is_empty());
        let bundled_name = Note {
            name: "a".into(),
            dir: uploads.path().join("a"),
            id: "x".into(),
        };
        let err = catalog
            .install(stage(uploads.path(), "a"), bundled_name, true)
            .unwrap_err();
        assert!(matches!(err, Error::FailedPrecondition(_)), "{err}");
    }
}
