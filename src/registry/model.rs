//! A model of the registry: its card, its ONNX session checked against the
//! card and warmed up, its encoder thread, and how the API describes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::card::{self, CardFile, ModelCard};
use super::catalog::Entry;
use super::{sha256_hex, validate_name};
use crate::domain;
use crate::encoder::{
    Encoder, EncoderSession, ExecutionProvider, InputData, Preprocessing, Runtime,
};
use crate::error::{Error, Result};

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
    /// sha256 of its card file as written (model.toml).
    pub card_sha256: String,
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
        Self::open(runtime, &name, dir, dir.to_path_buf())
    }

    /// Loads model `name` from the card and ONNX file in `from`, to live
    /// in the folder `at` (where `from` is installed, when they differ).
    pub fn open(runtime: &Runtime, name: &str, from: &Path, at: PathBuf) -> Result<Self> {
        validate_name("model", name)?;
        let card_path = from.join("model.toml");
        let onnx_path = from.join("model.onnx");
        if !card_path.is_file() {
            return Err(Error::InvalidCard("model.toml is missing".into()));
        }
        if !onnx_path.is_file() {
            return Err(Error::InvalidArgument("model.onnx is missing".into()));
        }
        let text = std::fs::read_to_string(&card_path)
            .map_err(|e| Error::io(format!("read {}", card_path.display()), e))?;
        let card = CardFile::parse(&text)?;
        let onnx = std::fs::read(&onnx_path)
            .map_err(|e| Error::io(format!("read {}", onnx_path.display()), e))?;
        Self::from_parts(runtime, name.to_string(), at, card, &text, &onnx)
    }

    /// Builds the session for ONNX bytes, completes the card (`card`, parsed
    /// from `card_text`) from its graph, checks the card against it and
    /// warms it up.
    pub fn from_parts(
        runtime: &Runtime,
        name: String,
        dir: PathBuf,
        card: CardFile,
        card_text: &str,
        onnx: &[u8],
    ) -> Result<Self> {
        let sha256 = sha256_hex(onnx);
        let card_sha256 = sha256_hex(card_text.as_bytes());
        if let Some(expected) = &card.onnx_sha256 {
            if !expected.eq_ignore_ascii_case(&sha256) {
                return Err(Error::InvalidCard(format!(
                    "onnx_sha256 is {expected} but model.onnx hashes to {sha256}"
                )));
            }
        }
        let session = runtime.load_bytes(onnx)?;
        let card = card.resolve_with(session.inputs(), session.outputs(), session.metadata())?;
        card.check_against(session.inputs(), session.outputs())?;
        let output_dims = warm_up(&session, &card)?;
        // The graph's parsing and optimisation buffers go back to the system.
        crate::memory::release();
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
            card_sha256,
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

    /// Its input as reports describe it: the effective preprocessing and
    /// the card's preset.
    pub fn input_info(&self) -> domain::InputInfo {
        domain::InputInfo {
            preset: self
                .card
                .input
                .preset
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            ..input_info(&self.preprocessing())
        }
    }

    /// The model as the API describes it.
    pub fn info(&self) -> domain::ModelInfo {
        let card = &self.card;
        domain::ModelInfo {
            name: self.name.clone(),
            sha256: self.sha256.clone(),
            training: Some(domain::TrainingInfo {
                loss: card.training.loss.clone(),
                temperature: card.training.temperature,
                dataset: card.training.dataset.clone(),
                epochs: card.training.epochs,
                seed: card.training.seed,
                run: card.training.run.clone(),
                step: card.training.step,
                loss_name: card.training.loss_name.clone(),
            }),
            input: Some(self.input_info()),
            outputs: card
                .outputs
                .names
                .iter()
                .map(|name| domain::OutputInfo {
                    name: name.clone(),
                    dim: self.output_dims.get(name).copied().unwrap_or(-1),
                })
                .collect(),
            embedding_output: card.outputs.embedding.clone(),
            feature_output: card.outputs.features.clone(),
            execution_provider: self.provider.to_string(),
            description: card.description.clone(),
            size_bytes: self.size_bytes,
            inferred: card.inferred.clone(),
            warnings: card.warnings.clone(),
            tags: card.tags.clone(),
        }
    }
}

/// The description of a preprocessing (in model infos and reports).
pub fn input_info(p: &Preprocessing) -> domain::InputInfo {
    let dtype = match p.dtype {
        card::InputDType::Float32 => "float32",
        card::InputDType::Uint8 => "uint8",
    };
    domain::InputInfo {
        name: p.input.clone(),
        dtype: dtype.to_string(),
        shape: p.shape.clone(),
        layout: p.layout.as_str().to_string(),
        scale: p.scale,
        mean: p.mean.clone(),
        std: p.std.clone(),
        resize: p.resize.as_str().to_string(),
        preset: String::new(),
        ..Default::default()
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

impl Entry for LoadedModel {
    const KIND: &'static str = "model";

    fn name(&self) -> &str {
        &self.name
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn content_id(&self) -> &str {
        &self.sha256
    }

    type Info = domain::ModelInfo;

    fn describe(&self) -> domain::ModelInfo {
        self.info()
    }

    /// The sha256 of the ONNX file and of the card file (a card replaced
    /// over the same ONNX file is another entry to share).
    fn share_id(&self) -> String {
        format!("{}-{}", self.sha256, &self.card_sha256[..16])
    }
}
