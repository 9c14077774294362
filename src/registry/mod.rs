//! The models root: one folder per model, `<name>/model.onnx` with its card
//! `<name>/model.toml`. At start every folder is loaded, checked against its
//! ONNX session and warmed up; a model that fails is skipped with its reason,
//! and the rest serve.

pub mod card;
pub mod upload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::encoder::{
    Encoder, EncoderSession, ExecutionProvider, InputData, Preprocessing, Runtime,
};
use crate::error::{Error, Result};
use crate::proto;
pub use card::ModelCard;

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
        Err(Error::InvalidArgument(format!(
            "{kind} name {name:?} is not allowed: use 1-128 characters of [a-z0-9._-], not starting with '.'"
        )))
    }
}

/// Lowercase hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A model that loaded: its card, its session and what was read off it.
#[derive(Debug)]
pub struct LoadedModel {
    /// Registry name (the folder name).
    pub name: String,
    /// The model's folder.
    pub dir: PathBuf,
    /// The parsed card.
    pub card: ModelCard,
    /// sha256 of model.onnx.
    pub sha256: String,
    /// Size of model.onnx in bytes.
    pub size_bytes: u64,
    /// Output name to its dimension, as measured at warm-up.
    pub output_dims: BTreeMap<String, i64>,
    /// Provider the session runs on.
    pub provider: ExecutionProvider,
    /// The ONNX Runtime session (also owned by the worker thread).
    pub session: Arc<EncoderSession>,
    /// The worker thread that encodes batches for requests.
    pub encoder: Encoder,
}

impl LoadedModel {
    /// Loads, checks and warms up the model in `dir`.
    pub fn load(runtime: &Runtime, dir: &Path) -> Result<Self> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::InvalidArgument(format!("bad folder name {}", dir.display())))?
            .to_string();
        validate_name("model", &name)?;
        let card_path = dir.join("model.toml");
        let onnx_path = dir.join("model.onnx");
        if !card_path.is_file() {
            return Err(Error::InvalidCard("model.toml is missing".into()));
        }
        if !onnx_path.is_file() {
            return Err(Error::InvalidArgument("model.onnx is missing".into()));
        }
        let text = std::fs::read_to_string(&card_path)
            .map_err(|e| Error::io(format!("read {}", card_path.display()), e))?;
        let card = ModelCard::parse(&text)?;
        let onnx = std::fs::read(&onnx_path)
            .map_err(|e| Error::io(format!("read {}", onnx_path.display()), e))?;
        Self::from_parts(runtime, name, dir.to_path_buf(), card, &onnx)
    }

    /// Builds the session for ONNX bytes, checks the card against it and
    /// warms it up.
    pub fn from_parts(
        runtime: &Runtime,
        name: String,
        dir: PathBuf,
        card: ModelCard,
        onnx: &[u8],
    ) -> Result<Self> {
        let sha256 = sha256_hex(onnx);
        if let Some(expected) = &card.onnx_sha256 {
            if !expected.eq_ignore_ascii_case(&sha256) {
                return Err(Error::InvalidCard(format!(
                    "onnx_sha256 is {expected} but model.onnx hashes to {sha256}"
                )));
            }
        }
        let session = runtime.load_bytes(onnx)?;
        card.check_against(session.inputs(), session.outputs())?;
        let output_dims = warm_up(&session, &card)?;
        let session = Arc::new(session);
        let encoder = Encoder::spawn(
            &name,
            session.clone(),
            card.input.preprocessing(),
            runtime.worker_options(),
        )?;
        Ok(Self {
            name,
            dir,
            card,
            sha256,
            size_bytes: onnx.len() as u64,
            output_dims,
            provider: runtime.provider(),
            session,
            encoder,
        })
    }

    /// The effective preprocessing of the model's input.
    pub fn preprocessing(&self) -> Preprocessing {
        self.card.input.preprocessing()
    }

    /// The model as the API describes it.
    pub fn info(&self) -> proto::ModelInfo {
        let card = &self.card;
        proto::ModelInfo {
            name: self.name.clone(),
            sha256: self.sha256.clone(),
            training: Some(proto::TrainingInfo {
                loss: card.training.loss.clone(),
                temperature: card.training.temperature,
                dataset: card.training.dataset.clone(),
                epochs: card.training.epochs,
                seed: card.training.seed,
            }),
            input: Some(input_info(&self.preprocessing())),
            outputs: card
                .outputs
                .names
                .iter()
                .map(|name| proto::OutputInfo {
                    name: name.clone(),
                    dim: self.output_dims.get(name).copied().unwrap_or(-1),
                })
                .collect(),
            embedding_output: card.outputs.embedding.clone(),
            feature_output: card.outputs.features.clone(),
            execution_provider: self.provider.to_string(),
            description: card.description.clone(),
            size_bytes: self.size_bytes,
        }
    }
}

/// The API's description of a preprocessing (in model infos and reports).
pub fn input_info(p: &Preprocessing) -> proto::InputInfo {
    let dtype = match p.dtype {
        card::InputDType::Float32 => proto::DataType::Float32,
        card::InputDType::Uint8 => proto::DataType::Uint8,
    };
    proto::InputInfo {
        name: p.input.clone(),
        dtype: dtype as i32,
        shape: p.shape.clone(),
        layout: p.layout.as_str().to_string(),
        scale: p.scale,
        mean: p.mean.clone(),
        std: p.std.clone(),
    }
}

/// Runs one all-zero image through every output; returns each output's
/// dimension and fails when an output is not [1, d].
fn warm_up(session: &EncoderSession, card: &ModelCard) -> Result<BTreeMap<String, i64>> {
    let mut shape = card.input.shape.clone();
    shape[0] = 1;
    let count = shape.iter().product::<i64>() as usize;
    let data = match card.input.dtype {
        card::InputDType::Float32 => InputData::F32(vec![0.0; count]),
        card::InputDType::Uint8 => InputData::U8(vec![0; count]),
    };
    let names: Vec<&str> = card.outputs.names.iter().map(String::as_str).collect();
    let outputs = session
        .run(&card.input.name, &shape, data, &names)
        .map_err(|e| Error::InvalidCard(format!("warm-up run failed: {e}")))?;
    names
        .iter()
        .zip(outputs)
        .map(|(name, out)| match out.shape.as_slice() {
            [1, d] if *d > 0 => Ok((name.to_string(), *d)),
            other => Err(Error::InvalidCard(format!(
                "output {name:?} has shape {other:?} for one image, expected [1, dim]"
            ))),
        })
        .collect()
}

/// A folder under the models root that did not load.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// Folder name.
    pub name: String,
    /// Why it was skipped.
    pub reason: String,
}

/// The models root and the models loaded from it.
#[derive(Debug)]
pub struct ModelRegistry {
    root: PathBuf,
    models: RwLock<BTreeMap<String, Arc<LoadedModel>>>,
    skipped: RwLock<Vec<Skipped>>,
}

impl ModelRegistry {
    /// An empty registry over `root` (nothing loaded yet).
    pub fn empty(root: PathBuf) -> Self {
        Self {
            root,
            models: RwLock::new(BTreeMap::new()),
            skipped: RwLock::new(Vec::new()),
        }
    }

    /// Loads every model folder under the root. Folders whose names start
    /// with '.' are ignored (uploads in progress). A model that fails is
    /// logged and recorded with its reason; only an unreadable root is an error.
    pub fn scan(&self, runtime: &Runtime) -> Result<()> {
        upload::clean_leftovers(&self.root);
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| Error::io(format!("read models dir {}", self.root.display()), e))?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
            })
            .collect();
        dirs.sort();
        let mut models = BTreeMap::new();
        let mut skipped = Vec::new();
        for dir in dirs {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let started = std::time::Instant::now();
            match LoadedModel::load(runtime, &dir) {
                Ok(model) => {
                    tracing::info!(
                        model = %name,
                        sha256 = %model.sha256,
                        provider = %model.provider,
                        ms = started.elapsed().as_millis() as u64,
                        "model loaded"
                    );
                    models.insert(name, Arc::new(model));
                }
                Err(err) => {
                    tracing::warn!(model = %name, reason = %err, "model skipped");
                    skipped.push(Skipped {
                        name,
                        reason: err.to_string(),
                    });
                }
            }
        }
        *self.models.write().expect("registry lock") = models;
        *self.skipped.write().expect("registry lock") = skipped;
        Ok(())
    }

    /// The models root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every loaded model, sorted by name.
    pub fn list(&self) -> Vec<Arc<LoadedModel>> {
        self.models
            .read()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }

    /// The folders that did not load, with their reasons.
    pub fn skipped(&self) -> Vec<Skipped> {
        self.skipped.read().expect("registry lock").clone()
    }

    /// Adds a model that was validated and moved into the root.
    pub fn insert(&self, model: LoadedModel) -> Result<Arc<LoadedModel>> {
        let mut models = self.models.write().expect("registry lock");
        if models.contains_key(&model.name) {
            return Err(Error::AlreadyExists {
                kind: "model",
                name: model.name.clone(),
            });
        }
        let model = Arc::new(model);
        models.insert(model.name.clone(), model.clone());
        Ok(model)
    }

    /// Whether a model of that name is loaded or its folder exists.
    pub fn is_taken(&self, name: &str) -> bool {
        self.models
            .read()
            .expect("registry lock")
            .contains_key(name)
            || self.root.join(name).exists()
    }

    /// Takes a model out of the registry and removes its folder. Requests
    /// already running keep their handle and finish.
    pub fn remove(&self, name: &str) -> Result<Arc<LoadedModel>> {
        let model = self
            .models
            .write()
            .expect("registry lock")
            .remove(name)
            .ok_or_else(|| Error::model_not_found(name))?;
        upload::remove_dir(&self.root, &model.dir, name)?;
        Ok(model)
    }

    /// One model by name.
    pub fn get(&self, name: &str) -> Result<Arc<LoadedModel>> {
        self.models
            .read()
            .expect("registry lock")
            .get(name)
            .cloned()
            .ok_or_else(|| Error::model_not_found(name))
    }
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
    fn sha256_of_known_bytes() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
