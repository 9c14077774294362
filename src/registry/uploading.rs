//! Uploads: every model and dataset registered through the API follows one
//! all-or-nothing sequence ([`Registries::register`]: the name taken, a
//! staging folder filled, the entry opened and checked off the async
//! threads, installed, shared), and removals undo it. The rules of an
//! upload live here, whatever the transport: a model's card checked
//! against its session and written beside it, a rename as an upload under
//! the new name, a dataset's file paths, its manifest from the upload's
//! settings, its decoded size.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::card::{self, CardFile};
use super::sync::{is_shared_copy, unmark_shared};
use super::{upload, validate_name, Catalog, Entry, Kind, LoadedModel, Registries};
use crate::data::dataset::{Format, Manifest};
use crate::data::{content_id, Dataset, LoadedDataset};
use crate::error::{Error, Result};
use crate::memory::PayloadLimit;

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
    pub(super) fn is_uploading(&self, kind: &str, name: &str) -> bool {
        let uploading = self.uploading.lock().expect("uploads lock");
        uploading.contains_key(&format!("{kind}/{name}"))
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
}

impl Registries {
    /// Registers the model of `upload` from the ONNX file `fill` puts in the
    /// staging folder and its card: its session is built and
    /// the card checked against it off the async threads before it is
    /// installed, its card written beside it, and shared. At most `limit`
    /// bytes. ALREADY_EXISTS names what differs from the model under a
    /// name taken ([`Self::taken_model`]).
    pub async fn install_model(
        &self,
        upload: ModelUpload<'_>,
        limit: u64,
        fill: impl AsyncFnOnce(&mut upload::Staging) -> Result<()>,
    ) -> Result<Arc<LoadedModel>> {
        let ModelUpload {
            name,
            card,
            card_text,
            replace,
            sha256,
        } = upload;
        let runtime = self.runtime.clone();
        let model_name = name.to_string();
        let given = card.clone();
        let open = move |dir: &Path, at: PathBuf| {
            let onnx_path = dir.join("model.onnx");
            let onnx = std::fs::read(&onnx_path)
                .map_err(|e| Error::io(format!("read {}", onnx_path.display()), e))?;
            let model = LoadedModel::from_parts(&runtime, model_name, at, card, &card_text, &onnx)?;
            std::fs::write(dir.join("model.toml"), &card_text)
                .map_err(|e| Error::io("write model.toml", e))?;
            Ok(model)
        };
        let (model, old) = match self.register(name, replace, limit, fill, open).await {
            Err(Error::AlreadyExists { kind, name, detail }) if detail.is_empty() => {
                let detail = self.taken_model(&name, sha256, &given).await;
                return Err(Error::AlreadyExists { kind, name, detail });
            }
            other => other?,
        };
        match old {
            Some(old) => tracing::info!(
                model = %model.name, sha256 = %model.sha256, replaced = %old.sha256, "model replaced"
            ),
            None => tracing::info!(model = %model.name, sha256 = %model.sha256, "model registered"),
        }
        Ok(model)
    }

    /// What the message of a model name already taken adds: whether the
    /// model under it has the ONNX file of sha256 `sha256` (unknown when
    /// empty), and then which card keys differ from `given`.
    pub async fn taken_model(&self, name: &str, sha256: &str, given: &CardFile) -> String {
        let Ok(model) = self.model(name).await else {
            return String::new();
        };
        let choose = "give another name, or replace it (`replace`)";
        if sha256.is_empty() {
            format!(": {choose}")
        } else if !sha256.eq_ignore_ascii_case(&model.sha256) {
            format!(
                " with another ONNX file (sha256 {}…): {choose}",
                &model.sha256[..12]
            )
        } else {
            let diff = card::differences(&model.card, given);
            if diff.is_empty() {
                " with the same ONNX file and card: it is already registered".into()
            } else {
                format!(
                    " with the same ONNX file and another card ({}): {choose}",
                    diff.join("; ")
                )
            }
        }
    }

    /// Gives uploaded model `name` the name `new_name`: its files are
    /// registered under the new name (all or nothing, shared like any
    /// upload), then the old name is removed.
    pub async fn rename_model(
        &self,
        name: &str,
        new_name: &str,
        limit: u64,
    ) -> Result<Arc<LoadedModel>> {
        validate_name("model", name)?;
        validate_name("model", new_name)?;
        let model = self.model(name).await?;
        self.models.check_writable(name)?;
        let card_text = tokio::fs::read_to_string(model.dir.join("model.toml"))
            .await
            .map_err(|e| Error::io(format!("read the card of model {name}"), e))?;
        let card = CardFile::parse(&card_text)?;
        let onnx = model.dir.join("model.onnx");
        let fill = async |staging: &mut upload::Staging| {
            tokio::fs::copy(&onnx, staging.dir().join("model.onnx"))
                .await
                .map(drop)
                .map_err(|e| Error::io(format!("copy the ONNX file of model {name}"), e))
        };
        let upload = ModelUpload {
            name: new_name,
            card,
            card_text,
            replace: false,
            sha256: "",
        };
        let renamed = self.install_model(upload, limit, fill).await?;
        drop(model);
        self.remove(&self.models, name).await?;
        tracing::info!(model = %name, to = %new_name, "model renamed");
        Ok(renamed)
    }

    /// Registers dataset `name` from the files `fill` stages
    /// ([`StagedFiles`]) and `settings` (the manifest written when the
    /// upload has no `dataset.toml`): the dataset is opened and every split
    /// read off the async threads (a truncated or malformed file is
    /// refused, and one that decodes to more than `limit` allows), then
    /// installed and shared.
    pub async fn install_dataset(
        &self,
        name: &str,
        settings: DatasetSettings,
        replace: bool,
        limit: PayloadLimit,
        fill: impl AsyncFnOnce(&mut upload::Staging) -> Result<()>,
    ) -> Result<Arc<LoadedDataset>> {
        validate_name("dataset", name)?;
        if !settings.format.is_empty() {
            Format::parse(&settings.format)?;
        }
        let max_bytes = limit.bytes;
        let dataset_name = name.to_string();
        let open = move |dir: &Path, at: PathBuf| {
            let manifest = dir.join("dataset.toml");
            if manifest.exists() {
                if settings.any() {
                    return Err(Error::InvalidArgument(
                        "the upload has a dataset.toml: put channels, image_size, crop_fraction and the splits in it \
                         rather than in the header (`channels`, `image_size`, `crop_fraction`, `test_split`, `train_split`)"
                            .into(),
                    ));
                }
            } else {
                let text = settings.manifest(&dataset_name, dir)?;
                std::fs::write(&manifest, text).map_err(|e| Error::io("write dataset.toml", e))?;
            }
            let mut opened = Dataset::open(dir)?;
            // Decoded, the images may be far larger than the upload.
            let decoded = opened.summary.decoded_bytes().unwrap_or(u64::MAX);
            if decoded > max_bytes {
                return Err(Error::ResourceExhausted(format!(
                    "dataset {dataset_name} decodes to {decoded} bytes of pixels, over the limit of {max_bytes} ({})",
                    limit.source
                )));
            }
            for split in opened.summary.splits.keys() {
                opened.load_split(split)?;
            }
            let id = content_id(dir)?;
            // It is served from where the install moves it.
            opened.dir = at;
            Ok(LoadedDataset::new(dataset_name, id, opened))
        };
        let (dataset, _) = self.register(name, replace, max_bytes, fill, open).await?;
        tracing::info!(dataset = %dataset.name, id = %dataset.id, "dataset registered");
        Ok(dataset)
    }
}

/// A model upload: its name, its card (parsed, and as written), whether it
/// replaces the model under that name, and the sha256 it declared.
#[derive(Debug)]
pub struct ModelUpload<'a> {
    /// The registry name.
    pub name: &'a str,
    /// The card.
    pub card: CardFile,
    /// The card as written (kept beside the ONNX file).
    pub card_text: String,
    /// Whether it replaces the model registered under `name`.
    pub replace: bool,
    /// The sha256 the upload declared ("": none).
    pub sha256: &'a str,
}

/// What a dataset upload without a `dataset.toml` says of its files
/// (empty or 0: not given).
#[derive(Debug, Clone, Default)]
pub struct DatasetSettings {
    /// "embedeval-npy", "cifar10", "cifar100" or "image-folder" ("": told
    /// from the files).
    pub format: String,
    /// Channels of the images.
    pub channels: u32,
    /// Side the images are resized to.
    pub image_size: u32,
    /// Central crop before the resize.
    pub crop_fraction: f64,
    /// The split evaluated.
    pub test_split: String,
    /// The split the kNN bank and the probe are fitted on.
    pub train_split: String,
}

impl DatasetSettings {
    /// Whether any setting that goes into a `dataset.toml` is given.
    fn any(&self) -> bool {
        self.channels != 0
            || self.image_size != 0
            || self.crop_fraction != 0.0
            || !self.test_split.is_empty()
            || !self.train_split.is_empty()
    }

    /// The `dataset.toml` of dataset `name` in `dir`: these settings, with
    /// the format told from the files when none is given.
    fn manifest(&self, name: &str, dir: &Path) -> Result<String> {
        let format = if self.format.is_empty() {
            Format::detect(dir).ok_or_else(|| {
                Error::InvalidArgument(
                    "the dataset has no dataset.toml and its format cannot be told from its files: \
                     add a dataset.toml, or give its `format` (embedeval-npy, cifar10, cifar100 or image-folder)"
                        .into(),
                )
            })?
        } else {
            Format::parse(&self.format)?
        };
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let manifest = Manifest {
            name: name.to_string(),
            format: format.as_str().to_string(),
            channels: (self.channels != 0).then_some(self.channels as usize),
            image_size: (self.image_size != 0).then_some(self.image_size as usize),
            crop_fraction: (self.crop_fraction != 0.0).then_some(self.crop_fraction),
            test_split: text(&self.test_split),
            train_split: text(&self.train_split),
            ..Manifest::default()
        };
        toml::to_string(&manifest).map_err(|e| Error::Internal {
            task: "dataset.toml".into(),
            message: e.to_string(),
        })
    }
}

/// The files of a dataset upload, written into its staging folder as their
/// chunks arrive: each path checked ([`checked_path`]), each file sent in
/// one run of chunks.
#[derive(Debug, Default)]
pub struct StagedFiles {
    current: Option<(String, upload::StagedFile)>,
    written: BTreeSet<String>,
}

impl StagedFiles {
    /// Writes `data`, the next chunk of file `path`, into `staging`.
    pub async fn write(
        &mut self,
        staging: &mut upload::Staging,
        path: &str,
        data: &[u8],
    ) -> Result<()> {
        staging.charge(data.len() as u64)?;
        if self.current.as_ref().map(|(p, _)| p.as_str()) != Some(path) {
            if let Some((_, file)) = self.current.take() {
                file.finish().await?;
            }
            let rel = checked_path(path)?;
            if !self.written.insert(path.to_string()) {
                return Err(Error::InvalidArgument(format!(
                    "file {path:?} was sent in two separate runs of chunks"
                )));
            }
            let full = staging.dir().join(rel);
            if let Some(parent) = full.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
            }
            self.current = Some((path.to_string(), upload::StagedFile::create(&full).await?));
        }
        if let Some((_, file)) = self.current.as_mut() {
            file.write(data).await?;
        }
        Ok(())
    }

    /// Closes the last file.
    pub async fn finish(mut self) -> Result<()> {
        if let Some((_, file)) = self.current.take() {
            file.finish().await?;
        }
        Ok(())
    }
}

/// Checks a file path inside a dataset upload: relative, at most three
/// parts (split/class/file), each of `[A-Za-z0-9._-]` and not starting with
/// '.'.
pub fn checked_path(path: &str) -> Result<PathBuf> {
    let parts: Vec<&str> = path.split('/').collect();
    let ok = !path.is_empty()
        && parts.len() <= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if ok {
        Ok(parts.iter().collect())
    } else {
        Err(Error::InvalidArgument(format!(
            "file path {path:?} is not allowed: use up to three '/'-separated parts of [A-Za-z0-9._-], none starting with '.'"
        )))
    }
}
