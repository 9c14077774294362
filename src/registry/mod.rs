//! The registries: the models root (one folder per model, `<name>/model.onnx`
//! with its card `<name>/model.toml`) and the datasets root (one folder per
//! dataset with its `dataset.toml`), both one [`Catalog`]: scanned at start
//! (an entry that fails is skipped with its reason, the rest serve), filled
//! by all-or-nothing uploads ([`upload`]), and content-addressed (a model by
//! the sha256 of its ONNX file, a dataset by the sha256 over its files).

pub mod card;
pub mod catalog;
pub mod model;
pub mod upload;

use sha2::{Digest, Sha256};

use crate::data::{Dataset, LoadedDataset};
use crate::encoder::Runtime;
use crate::error::{Error, Result};
pub use card::ModelCard;
pub use catalog::{Catalog, Entry, Skipped};
pub use model::{input_info, LoadedModel};

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
    pub fn find(&self, name: &str, runtime: &Runtime) -> Result<std::sync::Arc<LoadedModel>> {
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
    pub fn find(&self, name: &str) -> Result<std::sync::Arc<LoadedDataset>> {
        self.get_or_load(name, |dir| {
            let dataset = Dataset::open(dir)?;
            let id = crate::data::content_id(dir)?;
            Ok(LoadedDataset::new(name.to_string(), id, dataset))
        })
    }
}

/// One replica's registries, as the engine finds models and datasets by
/// name when it runs a job another replica admitted.
#[derive(Debug, Clone)]
pub struct Registries {
    /// The models.
    pub models: std::sync::Arc<ModelRegistry>,
    /// The datasets.
    pub datasets: std::sync::Arc<DatasetRegistry>,
    /// ONNX Runtime, to load a model this replica has not loaded yet.
    pub runtime: std::sync::Arc<Runtime>,
}

impl crate::jobs::Resolve for Registries {
    fn model(&self, name: &str) -> Result<std::sync::Arc<LoadedModel>> {
        self.models.find(name, &self.runtime)
    }

    fn dataset(&self, name: &str) -> Result<std::sync::Arc<LoadedDataset>> {
        self.datasets.find(name)
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
