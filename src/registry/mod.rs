//! The registries: the models root (one folder per model, `<name>/model.onnx`
//! with its card `<name>/model.toml`) and the datasets root (one folder per
//! dataset with its `dataset.toml`), both one [`Catalog`]: scanned at start
//! (an entry that fails is skipped with its reason, the rest serve), filled
//! by all-or-nothing uploads ([`upload`]), and content-addressed (a model by
//! the sha256 of its ONNX file, a dataset by the sha256 over its files).

pub mod card;
pub mod catalog;
pub mod model;
pub mod shared;
pub mod upload;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::data::LoadedDataset;
use crate::encoder::Runtime;
use crate::error::{Error, Result};
use crate::proto;
pub use card::ModelCard;

/// Whether `tags` hold every key of `wanted` with its value.
pub fn has_tags(
    tags: &std::collections::BTreeMap<String, String>,
    wanted: &std::collections::BTreeMap<String, String>,
) -> bool {
    wanted.iter().all(|(k, v)| tags.get(k) == Some(v))
}
pub use catalog::{Catalog, Entry, Skipped};
pub use model::{input_info, LoadedModel};
pub use shared::Shared;

/// The models root and the models loaded from it.
pub type ModelRegistry = Catalog<LoadedModel>;

/// The datasets root and the datasets opened from it.
pub type DatasetRegistry = Catalog<LoadedDataset>;

impl Catalog<LoadedModel> {
    /// Loads, checks and warms up every model folder under the root.
    pub fn scan(&self, runtime: &Runtime) -> Result<()> {
        self.scan_with(|_| true, |_, dir| LoadedModel::load(runtime, dir))
    }
}

impl Catalog<LoadedDataset> {
    /// Opens every dataset folder (one with a `dataset.toml`) under the root.
    pub fn scan(&self) -> Result<()> {
        self.scan_with(
            |dir| dir.join("dataset.toml").is_file(),
            |name, dir| LoadedDataset::open(name, dir, dir.to_path_buf()),
        )
    }
}

/// What [`Registries`] does differently for models and datasets.
pub trait Kind: Entry + Sized {
    /// This kind's catalog.
    fn catalog(registries: &Registries) -> &Arc<Catalog<Self>>;
    /// Opens entry `name` from the files in `from`, to live in `at` once
    /// installed (blocking: reads and checks every file, builds a model's
    /// session).
    fn open(registries: &Registries, name: &str, from: &Path, at: PathBuf) -> Result<Self>;
    /// Makes a description another replica registered this replica's.
    fn localize(_registries: &Registries, _info: &mut Self::Info) {}
    /// The name a description is of.
    fn info_name(info: &Self::Info) -> &str;
}

impl Kind for LoadedModel {
    fn catalog(registries: &Registries) -> &Arc<Catalog<Self>> {
        &registries.models
    }

    fn open(registries: &Registries, name: &str, from: &Path, at: PathBuf) -> Result<Self> {
        LoadedModel::open(&registries.runtime, name, from, at)
    }

    fn info_name(info: &proto::ModelInfo) -> &str {
        &info.name
    }

    /// The execution provider is the one this replica runs the model on.
    fn localize(registries: &Registries, info: &mut proto::ModelInfo) {
        info.execution_provider = registries.runtime.provider().to_string();
    }
}

impl Entry for LoadedDataset {
    const KIND: &'static str = "dataset";

    fn name(&self) -> &str {
        &self.name
    }

    fn dir(&self) -> &Path {
        &self.dataset.dir
    }

    fn content_id(&self) -> &str {
        &self.id
    }

    type Info = proto::DatasetInfo;

    fn describe(&self) -> proto::DatasetInfo {
        self.info()
    }
}

impl Kind for LoadedDataset {
    fn catalog(registries: &Registries) -> &Arc<Catalog<Self>> {
        &registries.datasets
    }

    fn info_name(info: &proto::DatasetInfo) -> &str {
        &info.name
    }

    fn open(_: &Registries, name: &str, from: &Path, at: PathBuf) -> Result<Self> {
        LoadedDataset::open(name, from, at)
    }
}

/// One replica's registries: its models and datasets by name, kept in
/// line with the other replicas' uploads when they are shared ([`shared`]).
#[derive(Debug, Clone)]
pub struct Registries {
    /// The models.
    pub models: Arc<ModelRegistry>,
    /// The datasets.
    pub datasets: Arc<DatasetRegistry>,
    /// ONNX Runtime, to load a model this replica has not loaded yet.
    pub runtime: Arc<Runtime>,
    /// Uploads shared with other replicas (`--data-url`), if they are.
    pub shared: Option<Shared>,
    /// With shared uploads, the most bytes of uploaded models and datasets
    /// kept under `--data-dir` (least recently used go first, never one in
    /// use; 0: no bound). They are fetched again when needed.
    pub keep_bytes: u64,
    /// When each upload was last asked for ("kind/name").
    pub last_use: Arc<Mutex<HashMap<String, std::time::Instant>>>,
    /// The uploads being installed and shared here ("kind/name", how many).
    pub uploading: Arc<Mutex<HashMap<String, usize>>>,
}

/// An upload in progress on this replica, until dropped
/// ([`Registries::begin_upload`]).
#[derive(Debug)]
pub struct Uploading {
    uploading: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Uploading {
    fn new(uploading: &Arc<Mutex<HashMap<String, usize>>>, kind: &str, name: &str) -> Self {
        let key = format!("{kind}/{name}");
        *uploading
            .lock()
            .expect("uploads lock")
            .entry(key.clone())
            .or_default() += 1;
        Self {
            uploading: uploading.clone(),
            key,
        }
    }
}

impl Drop for Uploading {
    fn drop(&mut self) {
        let mut uploading = self.uploading.lock().expect("uploads lock");
        if let Some(n) = uploading.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                uploading.remove(&self.key);
            }
        }
    }
}

impl Registries {
    /// The model registered as `name` (see [`Registries::entry`]).
    pub async fn model(&self, name: &str) -> Result<Arc<LoadedModel>> {
        self.entry(name).await
    }

    /// The dataset registered as `name` (see [`Registries::entry`]).
    pub async fn dataset(&self, name: &str) -> Result<Arc<LoadedDataset>> {
        self.entry(name).await
    }

    /// The entry of kind `T` registered as `name`. With shared uploads, one
    /// that another replica registered or replaced is fetched and loaded
    /// here first, and the copy of one it removed is dropped here
    /// (NOT_FOUND); an upload of this replica's that was never shared is
    /// served as it is (FAILED_PRECONDITION when another replica registered
    /// other content under its name). Without shared uploads, one that
    /// appeared in the uploads root is loaded.
    pub async fn entry<T: Kind>(&self, name: &str) -> Result<Arc<T>> {
        let catalog = T::catalog(self);
        let Some(shared) = &self.shared else {
            return catalog.get_or_load(name, |dir| T::open(self, name, dir, dir.to_path_buf()));
        };
        self.touch(T::KIND, name);
        let local = catalog.get(name).ok();
        if let Some(e) = local
            .as_ref()
            .filter(|e| catalog.is_bundled(e) || self.is_uploading(T::KIND, name))
        {
            return Ok(e.clone());
        }
        let not_found = || Error::NotFound {
            kind: T::KIND,
            name: name.to_string(),
            hint: String::new(),
        };
        let own = local
            .as_ref()
            .filter(|e| !is_shared_copy(catalog, e.as_ref()));
        let registration = match shared.registration(T::KIND, name).await? {
            Some(r) if !r.removed => r,
            // Removed elsewhere, or never registered: this replica's own
            // upload is served; a copy of the removed one goes.
            _ if own.is_some() => return Ok(own.expect("checked").clone()),
            Some(_) => {
                if local.is_some() {
                    self.forget(catalog, name).await;
                }
                return Err(not_found());
            }
            None => return Err(not_found()),
        };
        if let Some(local) = local
            .as_ref()
            .filter(|e| e.share_id() == registration.content_id)
        {
            return Ok(local.clone());
        }
        if let Some(own) = own {
            return Err(Error::FailedPrecondition(format!(
                "{kind} {name} here is an upload never shared ({}) and another replica registered \
                 other content under its name ({}): remove or rename one of them",
                own.share_id(),
                registration.content_id,
                kind = T::KIND,
            )));
        }
        let staging = shared.fetch(catalog, &registration).await?;
        let (this, name, id) = (self.clone(), name.to_string(), registration.content_id);
        let fetched = tokio::task::spawn_blocking(move || -> Result<Arc<T>> {
            let catalog = T::catalog(&this);
            let at = catalog.uploads().join(&name);
            let entry = T::open(&this, &name, staging.dir(), at)?;
            if entry.share_id() != id {
                return Err(Error::unavailable(
                    crate::error::Unavailable::Changing,
                    format!(
                        "{} {name} in the store is not the registered one (being replaced?); retry",
                        T::KIND
                    ),
                ));
            }
            // Marked first: whatever stops the install, the copy here is
            // (still) a cache.
            mark_shared(catalog, &name)?;
            let uploading = || this.is_uploading(T::KIND, &name);
            catalog
                .install_fetched(staging, entry, uploading)?
                .ok_or_else(|| {
                    Error::unavailable(
                        crate::error::Unavailable::Changing,
                        format!(
                            "{} {name} is being uploaded through this replica; retry",
                            T::KIND
                        ),
                    )
                })
        })
        .await
        .map_err(|e| Error::join("fetch", e))??;
        self.trim().await;
        Ok(fetched)
    }

    /// Every entry of kind `T` as listings show it, by name. With shared
    /// uploads: the bundled ones, every registration's description (without
    /// fetching any: a listing costs one query, whatever `--uploads-bytes`
    /// keeps here) and this replica's uploads never shared; local copies of
    /// entries removed elsewhere are dropped on the way.
    pub async fn listing<T: Kind>(&self) -> Result<Vec<T::Info>> {
        let catalog = T::catalog(self);
        let Some(shared) = &self.shared else {
            return Ok(catalog.list().iter().map(|e| e.describe()).collect());
        };
        let registrations = shared.registrations(T::KIND).await?;
        let mut listed = std::collections::BTreeMap::new();
        for e in catalog.list() {
            let registered = registrations.iter().find(|r| r.name == e.name());
            let removed = registered.is_some_and(|r| r.removed);
            if catalog.is_bundled(&e) {
                listed.insert(e.name().to_string(), e.describe());
            } else if !is_shared_copy(catalog, e.as_ref()) && (registered.is_none() || removed) {
                // This replica's own upload, never shared.
                listed.insert(e.name().to_string(), e.describe());
            } else if removed {
                self.forget(catalog, e.name()).await;
            }
        }
        for r in registrations.into_iter().filter(|r| !r.removed) {
            if listed.contains_key(&r.name) {
                continue; // this replica's bundled entry of that name
            }
            match <T::Info as prost::Message>::decode(r.info.as_slice()) {
                Ok(mut info) => {
                    T::localize(self, &mut info);
                    listed.insert(r.name, info);
                }
                Err(err) => {
                    tracing::warn!(kind = T::KIND, name = %r.name, %err, "unreadable registration left out")
                }
            }
        }
        Ok(listed.into_values().collect())
    }

    /// Shares this replica's uploads that were never shared (made before
    /// `--data-url` was given, or whose sharing failed) and drops the local
    /// copies of entries removed through another replica while this one
    /// was away. At start, once the catalogs are scanned; what fails is
    /// logged and left as it is (an upload of this replica's is never
    /// dropped).
    pub async fn reconcile_at_start(&self) {
        self.reconcile_kind::<LoadedModel>().await;
        self.reconcile_kind::<LoadedDataset>().await;
    }

    async fn reconcile_kind<T: Kind>(&self) {
        let Some(shared) = &self.shared else { return };
        let catalog = T::catalog(self);
        // One query for every upload here.
        let registrations = match shared.registrations(T::KIND).await {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(kind = T::KIND, %err, "cannot check the uploads' registrations");
                return;
            }
        };
        for e in catalog
            .list()
            .into_iter()
            .filter(|e| !catalog.is_bundled(e))
        {
            let (kind, name) = (T::KIND, e.name());
            let copy = is_shared_copy(catalog, e.as_ref());
            match registrations.iter().find(|r| r.name == name) {
                Some(r) if !r.removed && r.content_id == e.share_id() => {
                    if let Err(err) = mark_shared(catalog, name) {
                        tracing::warn!(kind, name, %err, "cannot mark a shared copy");
                    }
                }
                // Replaced elsewhere: the copy is fetched again at its next use.
                Some(r) if !r.removed && copy => {}
                Some(r) if !r.removed => tracing::warn!(
                    kind, name, here = %e.share_id(), registered = %r.content_id,
                    "an upload never shared and another replica's registration hold one name: \
                     neither is served here until one is removed or renamed"
                ),
                Some(_) if copy => {
                    let why =
                        "removed through another replica while this one was away; dropped here";
                    self.drop_local(catalog, name, why).await;
                }
                // Not through `publish`: an upload of this replica's that
                // the store does not take stays here.
                _ => match shared.publish(e.as_ref(), false).await {
                    Ok(()) => {
                        if let Err(err) = mark_shared(catalog, name) {
                            tracing::warn!(kind, name, %err, "cannot mark a shared copy");
                        }
                        tracing::info!(kind, name, "an upload never shared is shared now")
                    }
                    Err(err) => {
                        tracing::warn!(kind, name, %err, "cannot share an upload; this replica alone serves it")
                    }
                },
            }
        }
    }

    /// Starts an upload of entry `name` (a valid name): FAILED_PRECONDITION
    /// for a bundled name; without `replace`, ALREADY_EXISTS when the name
    /// is taken here or, with shared uploads, registered through any
    /// replica (a local copy of an entry removed elsewhere is dropped
    /// first). Until the returned guard is dropped this replica's copy of
    /// `name` is the one it serves: no listing or use drops it or fetches
    /// another while it is installed and shared ([`Registries::publish`]).
    pub async fn begin_upload<T: Kind>(&self, name: &str, replace: bool) -> Result<Uploading> {
        let catalog = T::catalog(self);
        let taken = || Error::AlreadyExists {
            kind: T::KIND,
            name: name.to_string(),
            detail: String::new(),
        };
        if replace {
            catalog.check_writable(name)?;
        } else {
            if let Some(shared) = &self.shared {
                match shared.registration(T::KIND, name).await? {
                    Some(r) if !r.removed => return Err(taken()),
                    // A copy of the entry removed elsewhere frees the name.
                    Some(_)
                        if catalog
                            .get(name)
                            .is_ok_and(|e| is_shared_copy(catalog, &*e)) =>
                    {
                        self.forget(catalog, name).await
                    }
                    _ => {}
                }
            }
            if catalog.is_taken(name) {
                return Err(taken());
            }
        }
        Ok(Uploading::new(&self.uploading, T::KIND, name))
    }

    /// Whether an upload of `kind` `name` is being installed or shared here.
    fn is_uploading(&self, kind: &str, name: &str) -> bool {
        let uploading = self.uploading.lock().expect("uploads lock");
        uploading.contains_key(&format!("{kind}/{name}"))
    }

    /// Model `name` as [`Self::model`] gives it, a NOT_FOUND naming the
    /// nearest registered names ("did you mean …?").
    pub async fn named_model(&self, name: &str) -> Result<Arc<LoadedModel>> {
        let found = self.model(name).await;
        self.suggest::<LoadedModel, _>(found).await
    }

    /// Dataset `name` as [`Self::dataset`] gives it, a NOT_FOUND naming the
    /// nearest registered names.
    pub async fn named_dataset(&self, name: &str) -> Result<Arc<LoadedDataset>> {
        let found = self.dataset(name).await;
        self.suggest::<LoadedDataset, _>(found).await
    }

    /// A NOT_FOUND of kind `T` with the nearest registered names added.
    async fn suggest<T: Kind, V>(&self, found: Result<V>) -> Result<V> {
        match found {
            Err(Error::NotFound { kind, name, hint }) if hint.is_empty() => {
                let names: Vec<String> = self
                    .listing::<T>()
                    .await
                    .map(|infos| infos.iter().map(|i| T::info_name(i).to_string()).collect())
                    .unwrap_or_default();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let hint = crate::suggest::did_you_mean(&name, &names);
                Err(Error::NotFound { kind, name, hint })
            }
            other => other,
        }
    }

    /// Registers an upload of entry `name`, all or nothing, in the one
    /// sequence every upload follows: the name taken ([`Self::begin_upload`]),
    /// a staging folder filled by `fill` (at most `limit` bytes), the entry
    /// opened and checked by `open` off the async threads (given the staging
    /// folder and where the entry will live), installed, and shared with the
    /// other replicas ([`Self::publish`]). Returns the entry and the one it
    /// replaced.
    pub async fn register<T: Kind + Send + Sync + 'static>(
        &self,
        name: &str,
        replace: bool,
        limit: u64,
        fill: impl AsyncFnOnce(&mut upload::Staging) -> Result<()>,
        open: impl FnOnce(&Path, PathBuf) -> Result<T> + Send + 'static,
    ) -> Result<(Arc<T>, Option<Arc<T>>)> {
        let catalog = T::catalog(self);
        let _uploading = self.begin_upload::<T>(name, replace).await?;
        tokio::fs::create_dir_all(catalog.uploads())
            .await
            .map_err(|e| Error::io(format!("create {}", catalog.uploads().display()), e))?;
        let mut staging = upload::Staging::begin(catalog.uploads(), name, limit, T::KIND).await?;
        fill(&mut staging).await?;
        let registry = catalog.clone();
        let target = catalog.uploads().join(name);
        let (entry, old) = tokio::task::spawn_blocking(move || -> Result<_> {
            let entry = open(staging.dir(), target)?;
            registry.install(staging, entry, replace)
        })
        .await
        .map_err(|e| Error::join(format!("{} validation", T::KIND), e))??;
        self.publish(catalog, &entry, replace).await?;
        Ok((entry, old))
    }

    /// Shares an entry just installed in `catalog` with the other replicas
    /// (nothing to do without shared uploads); `replace` as the upload
    /// asked. When the store cannot take it, or another replica registered
    /// the name meanwhile (ALREADY_EXISTS), the entry is removed here too
    /// and the error returned: an upload is registered everywhere or
    /// nowhere.
    pub async fn publish<T: Entry>(
        &self,
        catalog: &Arc<Catalog<T>>,
        entry: &T,
        replace: bool,
    ) -> Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let published = shared.publish(entry, replace).await;
        if let Err(err) = published {
            let why = "the store did not take the upload; undone here";
            self.drop_local(catalog, entry.name(), why).await;
            return Err(err);
        }
        // Not marked, it would pass for an upload never shared until the
        // next start (which marks what is registered as it is here).
        if let Err(err) = mark_shared(catalog, entry.name()) {
            tracing::warn!(kind = T::KIND, name = entry.name(), %err, "cannot mark a shared copy");
        }
        self.touch(T::KIND, entry.name());
        self.trim().await;
        Ok(())
    }

    /// Records that `kind` `name` was asked for now.
    fn touch(&self, kind: &str, name: &str) {
        let mut used = self.last_use.lock().expect("last use lock");
        used.insert(format!("{kind}/{name}"), std::time::Instant::now());
    }

    /// Keeps the uploads under `--data-dir` within `keep_bytes`: the least
    /// recently used that nothing uses go first (the store keeps them).
    async fn trim(&self) {
        if self.shared.is_none() || self.keep_bytes == 0 {
            return;
        }
        let this = self.clone();
        let trimmed = tokio::task::spawn_blocking(move || {
            let mut sizes: Vec<(String, String, u64)> = Vec::new();
            for (name, bytes) in this.models.upload_sizes() {
                sizes.push(("model".into(), name, bytes));
            }
            for (name, bytes) in this.datasets.upload_sizes() {
                sizes.push(("dataset".into(), name, bytes));
            }
            let mut total: u64 = sizes.iter().map(|s| s.2).sum();
            if total <= this.keep_bytes {
                return;
            }
            let used = this.last_use.lock().expect("last use lock").clone();
            sizes.sort_by_key(|(kind, name, _)| used.get(&format!("{kind}/{name}")).copied());
            for (kind, name, bytes) in sizes {
                if total <= this.keep_bytes {
                    break;
                }
                let evicted = if kind == "model" {
                    this.models.evict_if_idle(&name)
                } else {
                    this.datasets.evict_if_idle(&name)
                };
                match evicted {
                    Ok(true) => {
                        if kind == "model" {
                            unmark_shared(&this.models, &name);
                        } else {
                            unmark_shared(&this.datasets, &name);
                        }
                        total -= bytes;
                        tracing::info!(%kind, %name, bytes, "dropped from the local copies (the store keeps it)");
                    }
                    Ok(false) => {}
                    Err(err) => tracing::warn!(%kind, %name, %err, "cannot drop a local copy"),
                }
            }
        })
        .await;
        if let Err(err) = trimmed {
            tracing::warn!(%err, "trimming the local copies did not run");
        }
    }

    /// Removes uploaded entry `name`: from the shared registrations and
    /// store first (with shared uploads), then here. NOT_FOUND when neither
    /// had it; a bundled entry is FAILED_PRECONDITION.
    pub async fn remove<T: Entry>(&self, catalog: &Arc<Catalog<T>>, name: &str) -> Result<()> {
        catalog.check_writable(name)?;
        let mut shared_had = false;
        if let Some(shared) = &self.shared {
            shared_had = shared.withdraw(T::KIND, name).await?;
        }
        let (c, n) = (catalog.clone(), name.to_string());
        let removed = tokio::task::spawn_blocking(move || {
            unmark_shared(&c, &n);
            c.remove(&n)
        })
        .await
        .map_err(|e| Error::join("removal", e))?;
        match removed {
            Err(Error::NotFound { .. }) if shared_had => Ok(()),
            other => other,
        }
    }

    /// [`Self::remove`] of entry `name` of kind `T`, a NOT_FOUND naming the
    /// nearest registered names ("did you mean …?").
    pub async fn remove_named<T: Kind>(&self, name: &str) -> Result<()> {
        let removed = self.remove(T::catalog(self), name).await;
        self.suggest::<T, _>(removed).await
    }

    /// Drops a local upload whose registration another replica removed
    /// (never one being uploaded here: it is not registered yet).
    async fn forget<T: Entry>(&self, catalog: &Arc<Catalog<T>>, name: &str) {
        if !self.is_uploading(T::KIND, name) {
            self.drop_local(
                catalog,
                name,
                "removed through another replica; dropped here",
            )
            .await;
        }
    }

    /// Removes the local copy of `name`, logging `why` (or why it could
    /// not be removed).
    async fn drop_local<T: Entry>(&self, catalog: &Arc<Catalog<T>>, name: &str, why: &str) {
        let (catalog, name) = (catalog.clone(), name.to_string());
        let removed = tokio::task::spawn_blocking(move || {
            unmark_shared(&catalog, &name);
            catalog.remove(&name).map(|()| name)
        })
        .await;
        match removed {
            Ok(Ok(name)) => tracing::info!(kind = T::KIND, %name, "{why}"),
            Ok(Err(err)) => tracing::warn!(kind = T::KIND, %err, "cannot drop a local copy"),
            Err(err) => tracing::warn!(%err, "entry removal did not run"),
        }
    }
}

/// Where the mark that the local copy of `name` is a shared upload
/// (fetched from the store, or shared from here) lives: an empty file under
/// `<uploads>/.shared/` (hidden: never scanned as an entry). A copy so
/// marked is a cache, dropped or replaced as the registrations say; an
/// upload without one is this replica's own and never dropped.
fn shared_mark<T: Entry>(catalog: &Catalog<T>, name: &str) -> PathBuf {
    catalog.uploads().join(".shared").join(name)
}

/// Marks the local copy of `name` as a shared upload.
fn mark_shared<T: Entry>(catalog: &Catalog<T>, name: &str) -> Result<()> {
    let path = shared_mark(catalog, name);
    std::fs::create_dir_all(path.parent().expect("under .shared"))
        .and_then(|()| std::fs::write(&path, b""))
        .map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Removes the mark of `name`'s local copy.
fn unmark_shared<T: Entry>(catalog: &Catalog<T>, name: &str) {
    let _ = std::fs::remove_file(shared_mark(catalog, name));
}

/// Whether the local copy of `entry` is a shared upload.
fn is_shared_copy<T: Entry>(catalog: &Catalog<T>, entry: &T) -> bool {
    shared_mark(catalog, entry.name()).is_file()
}

/// Checks a registry name: 1-128 characters of `[a-z0-9._-]`, not starting
/// with a dot (so no `..`, no hidden folders, no path separators).
pub fn validate_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        let shown: String = name.chars().take(64).collect();
        let cut = if shown.len() < name.len() { "…" } else { "" };
        Err(Error::InvalidArgument(format!(
            "{kind} name {shown:?}{cut} is not allowed: use 1-128 characters of [a-z0-9._-], not starting with '.'"
        )))
    }
}

/// Lowercase hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["infonce-t0.2", "a", "simple_1"] {
            validate_name("model", good).unwrap();
        }
        for bad in [
            "", "../x", "a/b", ".hidden", "Upper", "sp ace", "..", "a\\b",
        ] {
            assert!(validate_name("model", bad).is_err(), "{bad:?}");
        }
    }

    /// A replica's registries under `dir`, sharing uploads through
    /// `store` and the folder `shared`.
    fn replica(
        dir: &Path,
        shared: &Path,
        store: &Arc<crate::database::ReportStore>,
        runtime: &Arc<Runtime>,
    ) -> Registries {
        let remote =
            crate::object_stores::Remote::open(&format!("file://{}", shared.display())).unwrap();
        Registries {
            models: Arc::new(ModelRegistry::empty(dir.join("models"))),
            datasets: Arc::new(DatasetRegistry::empty(dir.join("datasets"))),
            runtime: runtime.clone(),
            shared: Some(Shared::new(remote, store.clone())),
            keep_bytes: 0,
            last_use: Arc::default(),
            uploading: Arc::default(),
        }
    }

    /// Two replicas' registries sharing one SQLite database and one store
    /// folder (`<tmp>/shared`), under the returned temporary folder.
    pub(crate) async fn two_replicas() -> (tempfile::TempDir, Registries, Registries) {
        let tmp = tempfile::tempdir().unwrap();
        let url = crate::database::ReportStore::default_url(tmp.path());
        let store = Arc::new(crate::database::ReportStore::open(&url).await.unwrap());
        let runtime = Arc::new(Runtime::new(&Default::default()).unwrap());
        let shared = tmp.path().join("shared");
        let a = replica(&tmp.path().join("a"), &shared, &store, &runtime);
        let b = replica(&tmp.path().join("b"), &shared, &store, &runtime);
        (tmp, a, b)
    }

    /// Installs a copy of the bundled digits as dataset `name` in `r`.
    pub(crate) async fn install_digits(r: &Registries, name: &str) -> Arc<LoadedDataset> {
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/digits");
        let staging = upload::Staging::begin(r.datasets.uploads(), name, u64::MAX, "dataset")
            .await
            .unwrap();
        for file in std::fs::read_dir(&bundled).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, staging.dir().join(file.file_name().unwrap())).unwrap();
        }
        let at = r.datasets.uploads().join(name);
        let entry = LoadedDataset::open(name, staging.dir(), at).unwrap();
        r.datasets.install(staging, entry, false).unwrap().0
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_uploads_are_listed_without_fetching_and_an_upload_in_progress_is_kept() {
        let (_tmp, a, b) = two_replicas().await;

        // Installed on a but not registered yet: a listing on a shows it,
        // one on b does not, and neither drops it.
        let uploading = a.begin_upload::<LoadedDataset>("d", false).await.unwrap();
        let entry = install_digits(&a, "d").await;
        assert_eq!(a.listing::<LoadedDataset>().await.unwrap(), [entry.info()]);
        assert!(b.listing::<LoadedDataset>().await.unwrap().is_empty());
        assert_eq!(a.dataset("d").await.unwrap().id, entry.id);
        a.publish(&a.datasets, entry.as_ref(), false).await.unwrap();
        drop(uploading);
        assert!(matches!(
            b.begin_upload::<LoadedDataset>("d", false).await,
            Err(Error::AlreadyExists { .. })
        ));

        // b lists it from the registration, fetching nothing, and fetches
        // it at its first use.
        let listed = b.listing::<LoadedDataset>().await.unwrap();
        assert_eq!(listed, [entry.info()]);
        assert!(b.datasets.get("d").is_err());
        assert_eq!(b.dataset("d").await.unwrap().id, entry.id);
        assert!(b.datasets.uploads().join("d/dataset.toml").is_file());

        // Removed through a: b's listing drops its copy, and the name is
        // free again everywhere.
        a.remove(&a.datasets, "d").await.unwrap();
        assert!(b.listing::<LoadedDataset>().await.unwrap().is_empty());
        assert!(b.datasets.get("d").is_err());
        assert!(!b.datasets.uploads().join("d").exists());
        drop(b.begin_upload::<LoadedDataset>("d", false).await.unwrap());
        assert!(matches!(b.dataset("d").await, Err(Error::NotFound { .. })));

        // Two replicas register one new name at once: the one that records
        // second gets ALREADY_EXISTS and its copy is undone.
        let on_a = install_digits(&a, "e").await;
        let on_b = install_digits(&b, "e").await;
        a.publish(&a.datasets, on_a.as_ref(), false).await.unwrap();
        assert!(matches!(
            b.publish(&b.datasets, on_b.as_ref(), false).await,
            Err(Error::AlreadyExists { .. })
        ));
        assert!(b.datasets.get("e").is_err());
        assert_eq!(b.dataset("e").await.unwrap().id, on_a.id);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uploads_from_before_sharing_are_shared_and_copies_removed_meanwhile_dropped() {
        let (_tmp, a, b) = two_replicas().await;

        // An upload made before uploads were shared: listed and served by
        // its replica (never dropped), shared at its start.
        let old = install_digits(&a, "old").await;
        assert_eq!(a.listing::<LoadedDataset>().await.unwrap(), [old.info()]);
        assert_eq!(a.dataset("old").await.unwrap().id, old.id);
        assert!(b.listing::<LoadedDataset>().await.unwrap().is_empty());
        a.reconcile_at_start().await;
        assert_eq!(b.listing::<LoadedDataset>().await.unwrap(), [old.info()]);
        assert_eq!(b.dataset("old").await.unwrap().id, old.id);

        // Removed through a while b was away: b's copy is dropped at its
        // start, but an upload of b's own under a removed name is shared.
        a.remove(&a.datasets, "old").await.unwrap();
        assert!(b.datasets.get("old").is_ok());
        install_digits(&b, "mine").await;
        install_digits(&a, "mine").await;
        a.reconcile_at_start().await;
        a.remove(&a.datasets, "mine").await.unwrap();
        b.reconcile_at_start().await;
        assert!(b.datasets.get("old").is_err());
        assert!(!b.datasets.uploads().join("old").exists());
        assert!(b.datasets.get("mine").is_ok());
        assert_eq!(a.dataset("mine").await.unwrap().id, old.id);

        // An upload of b's own under a name a registered with other content
        // is kept, and neither is served on b until one goes.
        let card = zoo_card();
        let theirs = install_model(&a, "m", &card, false).await;
        a.publish(&a.models, theirs.as_ref(), false).await.unwrap();
        install_model(&b, "m", &card.replace("tau = 0.5", "tau 0.5, b's"), false).await;
        b.reconcile_at_start().await;
        assert!(matches!(
            b.model("m").await,
            Err(Error::FailedPrecondition(_))
        ));
        assert!(b.models.get("m").is_ok());
    }

    /// The card of the bundled infonce-t0.5.
    pub(crate) fn zoo_card() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/infonce-t0.5/model.toml");
        std::fs::read_to_string(path).unwrap()
    }

    /// Installs the bundled infonce-t0.5 with card `card` as model `name`
    /// in `r`.
    pub(crate) async fn install_model(
        r: &Registries,
        name: &str,
        card: &str,
        replace: bool,
    ) -> Arc<LoadedModel> {
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/infonce-t0.5");
        let staging = upload::Staging::begin(r.models.uploads(), name, u64::MAX, "model")
            .await
            .unwrap();
        std::fs::copy(bundled.join("model.onnx"), staging.dir().join("model.onnx")).unwrap();
        std::fs::write(staging.dir().join("model.toml"), card).unwrap();
        let at = r.models.uploads().join(name);
        let entry = LoadedModel::open(&r.runtime, name, staging.dir(), at).unwrap();
        r.models.install(staging, entry, replace).unwrap().0
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_card_replaced_over_the_same_onnx_reaches_the_other_replicas() {
        let (tmp, a, b) = two_replicas().await;
        let card = zoo_card();
        let first = install_model(&a, "m", &card, false).await;
        a.publish(&a.models, first.as_ref(), false).await.unwrap();
        assert_eq!(b.model("m").await.unwrap().card.training.temperature, 0.5);

        // The same ONNX file with tau 0.2 in its card: b evaluates with 0.2.
        let fixed = card.replace("temperature = 0.5", "temperature = 0.2");
        let second = install_model(&a, "m", &fixed, true).await;
        assert_eq!(second.sha256, first.sha256);
        a.publish(&a.models, second.as_ref(), true).await.unwrap();
        let on_b = b.model("m").await.unwrap();
        assert_eq!(on_b.card.training.temperature, 0.2);
        assert_eq!(on_b.share_id(), second.share_id());
        // One upload's files in the store: the replaced one's are gone
        // (a file store may keep the empty folder).
        let with_files = std::fs::read_dir(tmp.path().join("shared/models/m"))
            .unwrap()
            .filter(|d| {
                std::fs::read_dir(d.as_ref().unwrap().path())
                    .unwrap()
                    .next()
                    .is_some()
            })
            .count();
        assert_eq!(with_files, 1);
    }

    #[test]
    fn finds_the_bundled_digits() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets");
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
        assert_eq!(registry.find_content(&info.id).len(), 1);
        assert!(matches!(
            registry.get("nope"),
            Err(Error::NotFound {
                kind: "dataset",
                ..
            })
        ));
        assert!(registry.skipped().is_empty());
    }

    #[test]
    fn sha256_of_known_bytes() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
