//! The registries: the models root (one folder per model, `<name>/model.onnx`
//! with its card `<name>/model.toml`) and the datasets root (one folder per
//! dataset with its `dataset.toml`), both one [`Catalog`]: scanned at start
//! (an entry that fails is skipped with its reason, the rest serve), filled
//! by all-or-nothing uploads ([`upload`]), and content-addressed (a model by
//! the sha256 of its ONNX file, a dataset by the sha256 over its files).
//!
//! [`Registries`] is the one face of both: `lookup` finds entries by name
//! (fetching what another replica registered), `uploading` registers,
//! renames and removes them with every upload rule (names, paths, cards,
//! a dataset's manifest), `sync` keeps the uploads in line with the other
//! replicas' ([`shared`]).

pub mod card;
pub mod catalog;
mod lookup;
pub mod model;
pub mod shared;
mod sync;
pub mod upload;
mod uploading;

pub use uploading::{checked_path, DatasetSettings, ModelUpload, StagedFiles, Uploading};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::data::LoadedDataset;
use crate::encoder::Runtime;
use crate::error::{Error, Result};
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

    fn info_name(info: &crate::domain::ModelInfo) -> &str {
        &info.name
    }

    /// The execution provider is the one this replica runs the model on.
    fn localize(registries: &Registries, info: &mut crate::domain::ModelInfo) {
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

    type Info = crate::domain::DatasetInfo;

    fn describe(&self) -> crate::domain::DatasetInfo {
        self.info()
    }
}

impl Kind for LoadedDataset {
    fn catalog(registries: &Registries) -> &Arc<Catalog<Self>> {
        &registries.datasets
    }

    fn info_name(info: &crate::domain::DatasetInfo) -> &str {
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
