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

use std::sync::Arc;

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::data::{Dataset, LoadedDataset};
use crate::encoder::Runtime;
use crate::error::{Error, Result};
pub use card::ModelCard;
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

    /// The model registered as `name`, loaded from the uploads root if
    /// another replica sharing it registered the model since this one
    /// scanned.
    pub fn find(&self, name: &str, runtime: &Runtime) -> Result<Arc<LoadedModel>> {
        self.get_or_load(name, |dir| LoadedModel::load(runtime, dir))
    }
}

impl Catalog<LoadedDataset> {
    /// Opens every dataset folder (one with a `dataset.toml`) under the root.
    pub fn scan(&self) -> Result<()> {
        self.scan_with(
            |dir| dir.join("dataset.toml").is_file(),
            |name, dir| {
                let dataset = Dataset::open(dir)?;
                let id = crate::data::content_id(dir)?;
                Ok(LoadedDataset::new(name.to_string(), id, dataset))
            },
        )
    }

    /// The dataset registered as `name`, opened from the uploads root if
    /// another replica sharing it registered the dataset since this one
    /// scanned.
    pub fn find(&self, name: &str) -> Result<Arc<LoadedDataset>> {
        self.get_or_load(name, |dir| {
            let dataset = Dataset::open(dir)?;
            let id = crate::data::content_id(dir)?;
            Ok(LoadedDataset::new(name.to_string(), id, dataset))
        })
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
    pub last_use: Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
}

impl Registries {
    /// The model registered as `name`. With shared uploads, one that
    /// another replica registered or replaced is fetched and loaded here
    /// first, and one it removed is dropped here (NOT_FOUND); without, one
    /// that appeared in the uploads root is loaded.
    pub async fn model(&self, name: &str) -> Result<Arc<LoadedModel>> {
        let Some(shared) = &self.shared else {
            return self.models.find(name, &self.runtime);
        };
        self.touch("model", name);
        let local = self.models.get(name).ok();
        if let Some(m) = local.as_ref().filter(|m| self.models.is_bundled(m)) {
            return Ok(m.clone());
        }
        match shared.registered("model", name).await? {
            Some(id) if local.as_ref().is_some_and(|m| m.sha256 == id) => {
                Ok(local.expect("checked"))
            }
            Some(id) => {
                let staging = shared.fetch(&self.models, "model", name).await?;
                let (runtime, models, name) =
                    (self.runtime.clone(), self.models.clone(), name.to_string());
                let fetched = tokio::task::spawn_blocking(move || -> Result<Arc<LoadedModel>> {
                    let card_path = staging.dir().join("model.toml");
                    let text = std::fs::read_to_string(&card_path)
                        .map_err(|e| Error::io(format!("read {}", card_path.display()), e))?;
                    let card = card::CardFile::parse(&text)?;
                    let onnx_path = staging.dir().join("model.onnx");
                    let onnx = std::fs::read(&onnx_path)
                        .map_err(|e| Error::io(format!("read {}", onnx_path.display()), e))?;
                    let target = models.uploads().join(&name);
                    let model = LoadedModel::from_parts(&runtime, name.clone(), target, card, &onnx)?;
                    if model.sha256 != id {
                        return Err(Error::Unavailable(format!(
                            "model {name} in the store is not the registered one (being replaced?); retry"
                        )));
                    }
                    Ok(models.install(staging, model, true)?.0)
                })
                .await
                .map_err(|e| Error::join("model fetch", e))??;
                self.trim().await;
                Ok(fetched)
            }
            None => {
                if local.is_some() {
                    self.forget(&self.models, name).await;
                }
                Err(Error::NotFound {
                    kind: "model",
                    name: name.to_string(),
                })
            }
        }
    }

    /// The dataset registered as `name` (see [`Registries::model`]).
    pub async fn dataset(&self, name: &str) -> Result<Arc<LoadedDataset>> {
        let Some(shared) = &self.shared else {
            return self.datasets.find(name);
        };
        self.touch("dataset", name);
        let local = self.datasets.get(name).ok();
        if let Some(d) = local.as_ref().filter(|d| self.datasets.is_bundled(d)) {
            return Ok(d.clone());
        }
        match shared.registered("dataset", name).await? {
            Some(id) if local.as_ref().is_some_and(|d| d.id == id) => Ok(local.expect("checked")),
            Some(id) => {
                let staging = shared.fetch(&self.datasets, "dataset", name).await?;
                let (datasets, name) = (self.datasets.clone(), name.to_string());
                let fetched = tokio::task::spawn_blocking(move || -> Result<Arc<LoadedDataset>> {
                    let found = crate::data::content_id(staging.dir())?;
                    if found != id {
                        return Err(Error::Unavailable(format!(
                            "dataset {name} in the store is not the registered one (being replaced?); retry"
                        )));
                    }
                    let mut opened = Dataset::open(staging.dir())?;
                    opened.dir = datasets.uploads().join(&name);
                    let entry = LoadedDataset::new(name, id, opened);
                    Ok(datasets.install(staging, entry, true)?.0)
                })
                .await
                .map_err(|e| Error::join("dataset fetch", e))??;
                self.trim().await;
                Ok(fetched)
            }
            None => {
                if local.is_some() {
                    self.forget(&self.datasets, name).await;
                }
                Err(Error::NotFound {
                    kind: "dataset",
                    name: name.to_string(),
                })
            }
        }
    }

    /// Brings this replica in line with the shared registrations (before a
    /// listing): what others registered is fetched, what they removed is
    /// dropped. An entry that cannot be fetched is logged and left out.
    pub async fn sync(&self) -> Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let models = shared.registrations("model").await?;
        for (name, _) in &models {
            if let Err(err) = self.model(name).await {
                tracing::warn!(model = %name, %err, "cannot fetch a shared model");
            }
        }
        for m in self.models.list() {
            if !self.models.is_bundled(&m) && !models.iter().any(|(n, _)| *n == m.name) {
                self.forget(&self.models, &m.name).await;
            }
        }
        let datasets = shared.registrations("dataset").await?;
        for (name, _) in &datasets {
            if let Err(err) = self.dataset(name).await {
                tracing::warn!(dataset = %name, %err, "cannot fetch a shared dataset");
            }
        }
        for d in self.datasets.list() {
            if !self.datasets.is_bundled(&d) && !datasets.iter().any(|(n, _)| *n == d.name) {
                self.forget(&self.datasets, &d.name).await;
            }
        }
        Ok(())
    }

    /// ALREADY_EXISTS when another replica registered `name` (an upload
    /// that does not replace must take a free name everywhere).
    pub async fn check_free<T: Entry>(&self, name: &str) -> Result<()> {
        if let Some(shared) = &self.shared {
            if shared.registered(T::KIND, name).await?.is_some() {
                return Err(Error::AlreadyExists {
                    kind: T::KIND,
                    name: name.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Shares an entry just installed in `catalog` with the other replicas
    /// (nothing to do without shared uploads). When the store cannot take
    /// it, the entry is removed here too and the error returned: an upload
    /// is registered everywhere or nowhere.
    pub async fn publish<T: Entry>(&self, catalog: &Arc<Catalog<T>>, entry: &T) -> Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let published = shared
            .publish(T::KIND, entry.name(), entry.dir(), entry.content_id())
            .await;
        if let Err(err) = published {
            self.forget(catalog, entry.name()).await;
            return Err(err);
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
            shared_had = shared.registered(T::KIND, name).await?.is_some();
            shared.withdraw(T::KIND, name).await?;
        }
        let (c, n) = (catalog.clone(), name.to_string());
        let removed = tokio::task::spawn_blocking(move || c.remove(&n))
            .await
            .map_err(|e| Error::join("removal", e))?;
        match removed {
            Err(Error::NotFound { .. }) if shared_had => Ok(()),
            other => other,
        }
    }

    /// Drops a local upload whose registration another replica removed.
    async fn forget<T: Entry>(&self, catalog: &Arc<Catalog<T>>, name: &str) {
        let (catalog, name) = (catalog.clone(), name.to_string());
        let removed =
            tokio::task::spawn_blocking(move || catalog.remove(&name).map(|()| name)).await;
        match removed {
            Ok(Ok(name)) => {
                tracing::info!(kind = T::KIND, %name, "removed through another replica; dropped here")
            }
            Ok(Err(err)) => {
                tracing::warn!(kind = T::KIND, %err, "cannot drop an entry removed elsewhere")
            }
            Err(err) => tracing::warn!(%err, "entry removal did not run"),
        }
    }
}

impl crate::jobs::Resolve for Registries {
    fn model<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<LoadedModel>>> {
        Box::pin(Registries::model(self, name))
    }

    fn dataset<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<LoadedDataset>>> {
        Box::pin(Registries::dataset(self, name))
    }
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
mod tests {
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
