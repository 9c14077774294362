//! Model cards (`model.toml`). A card as written ([`CardFile`]) needs only
//! `[training] loss` (and `temperature` where the loss has one); the rest is
//! read off the ONNX graph when absent ([`CardFile::resolve`]): the input's
//! name, element type, shape and layout, and which outputs hold the
//! embedding and the backbone features. Preprocessing presets give mean,
//! std and scale. The resolved [`ModelCard`] is checked on its own
//! ([`ModelCard::check`]) and against the session's real inputs and outputs
//! ([`ModelCard::check_against`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::encoder::{ElementType, Preprocessing, Resize, TensorSpec};
pub use crate::encoder::{InputDType, Layout};
use crate::error::{Error, Result};

/// Most values in one image of a model's input (64 MiB of float32).
pub const MAX_INPUT_VALUES: i64 = 1 << 24;

pub use crate::vocab::{
    check_loss, check_preset, check_resize, check_tag, check_tags, parse_tag, tag_text,
    KNOWN_LOSSES, MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE, MEASURED_KEYS, MISSING_LOSS, PRESETS,
    RESIZES, TEMPERATURE_LOSSES,
};

/// Output names taken as the embedding when the card does not say.
const EMBEDDING_NAMES: [&str; 7] = [
    "embedding",
    "embeddings",
    "emb",
    "z",
    "projection",
    "proj",
    "head",
];
/// Output names taken as the backbone features when the card does not say.
const FEATURE_NAMES: [&str; 7] = [
    "features",
    "feature",
    "feats",
    "h",
    "backbone",
    "representation",
    "pooled",
];

/// A model card as written: only the training loss is required.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CardFile {
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// sha256 of model.onnx; checked at load when present.
    #[serde(default)]
    pub onnx_sha256: Option<String>,
    /// How the checkpoint was trained.
    pub training: TrainingFile,
    /// The image input and its preprocessing (read off the graph when absent).
    #[serde(default)]
    pub input: InputFile,
    /// The outputs (read off the graph when absent).
    #[serde(default)]
    pub outputs: OutputsFile,
    /// Reference outputs of the training framework, for checking the runtime.
    #[serde(default)]
    pub golden: Option<GoldenCard>,
    /// Free key = value tags beyond the `[training]` keys (which are tags
    /// already): e.g. `augmentation = "crop+flip"`, `sweep = "seeds"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, toml::Value>,
}

/// `[training]` as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingFile {
    /// One of [`KNOWN_LOSSES`].
    pub loss: String,
    /// The name of a loss of the user's own (loss "other").
    #[serde(default)]
    pub loss_name: Option<String>,
    /// The contrastive temperature tau; required for [`TEMPERATURE_LOSSES`].
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Dataset trained on.
    #[serde(default)]
    pub dataset: Option<String>,
    /// Epochs trained.
    #[serde(default)]
    pub epochs: Option<u32>,
    /// Random seed.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The training run the model is a checkpoint of.
    #[serde(default)]
    pub run: Option<String>,
    /// Its step in the run.
    #[serde(default)]
    pub step: Option<u64>,
    /// Everything else the trainer recorded.
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

/// `[input]` as written; every key is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    /// Graph input name [the graph's only input].
    pub name: Option<String>,
    /// Element type [the graph's].
    pub dtype: Option<InputDType>,
    /// Shape, -1 for the batch axis [the graph's].
    pub shape: Option<Vec<i64>>,
    /// Axis order [told from the shape: channels of 1, 3 or 4 first or last].
    pub layout: Option<Layout>,
    /// Where scale, mean and std come from when not given ["none"].
    pub preset: Option<Preset>,
    /// Multiplier applied to raw pixels [the preset's].
    pub scale: Option<f64>,
    /// Per-channel mean subtracted after scaling [the preset's].
    pub mean: Option<Vec<f64>>,
    /// Per-channel standard deviation divided by [the preset's].
    pub std: Option<Vec<f64>>,
    /// Interpolation for images of another size ["bilinear"].
    pub resize: Option<Resize>,
}

/// `[outputs]` as written; every key is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputsFile {
    /// The output names served [the embedding and the features].
    pub names: Option<Vec<String>>,
    /// The output holding the embedding [the only output, or the one named
    /// like an embedding].
    pub embedding: Option<String>,
    /// The output holding backbone features [the one named like features].
    pub features: Option<String>,
}

/// Named preprocessing constants: x = (pixel * scale - mean[c]) / std[c].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Pixels in [0, 1], ImageNet mean and std (torchvision's models).
    Imagenet,
    /// Pixels in [0, 1], CIFAR-10's training-set mean and std.
    Cifar10,
    /// Pixels in [0, 1], CIFAR-100's training-set mean and std.
    Cifar100,
    /// Pixels in [0, 1], nothing subtracted.
    None,
}

impl Preset {
    /// The preset's name in cards.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Imagenet => "imagenet",
            Preset::Cifar10 => "cifar10",
            Preset::Cifar100 => "cifar100",
            Preset::None => "none",
        }
    }

    /// (scale, mean, std) for `channels` channels; the RGB presets need 3.
    pub fn values(self, channels: usize) -> Result<(f64, Vec<f64>, Vec<f64>)> {
        let rgb = |mean: [f64; 3], std: [f64; 3]| {
            if channels == 3 {
                Ok((1.0 / 255.0, mean.to_vec(), std.to_vec()))
            } else {
                Err(Error::InvalidCard(format!(
                    "input.preset {:?} is for 3 channels but the input has {channels}",
                    self.as_str()
                )))
            }
        };
        match self {
            Preset::Imagenet => rgb([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            Preset::Cifar10 => rgb([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
            Preset::Cifar100 => rgb([0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762]),
            Preset::None => Ok((1.0 / 255.0, vec![0.0; channels], vec![1.0; channels])),
        }
    }
}

/// A resolved model card: every field known.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// sha256 of model.onnx; checked at load when present.
    #[serde(default)]
    pub onnx_sha256: Option<String>,
    /// How the checkpoint was trained.
    pub training: TrainingCard,
    /// The image input and its preprocessing.
    pub input: InputCard,
    /// The outputs.
    pub outputs: OutputsCard,
    /// Reference outputs of the training framework, for checking the runtime.
    #[serde(default)]
    pub golden: Option<GoldenCard>,
    /// The card's keys that were read off the graph or filled by defaults.
    #[serde(default)]
    pub inferred: Vec<String>,
    /// What was assumed that the user should check (each naming the key or
    /// flag that changes it).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The model's tags ([`card_tags`]): the `[training]` keys the card
    /// gives (but [`MEASURED_KEYS`]) and its `[tags]`, values as text.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A card's tags: the `[training]` keys it gives (loss, temperature,
/// dataset, epochs, seed, run, step and the trainer's own, but
/// [`MEASURED_KEYS`]) and its `[tags]`; a `[tags]` key may not repeat a
/// `[training]` one.
pub fn card_tags(
    training: &TrainingFile,
    extra: &BTreeMap<String, toml::Value>,
) -> Result<BTreeMap<String, String>> {
    let t = training;
    let mut tags = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            tags.insert(k.to_string(), v);
        }
    };
    put("loss", Some(t.loss.clone()));
    put("loss_name", t.loss_name.clone());
    put("temperature", t.temperature.map(|v| format!("{v}")));
    put("dataset", t.dataset.clone());
    put("epochs", t.epochs.map(|v| v.to_string()));
    put("seed", t.seed.map(|v| v.to_string()));
    put("run", t.run.clone());
    put("step", t.step.map(|v| v.to_string()));
    for (k, v) in t
        .extra
        .iter()
        .filter(|(k, _)| !MEASURED_KEYS.contains(&k.as_str()))
    {
        tags.insert(k.clone(), tag_text(v));
    }
    for (k, v) in extra {
        if tags.contains_key(k) {
            return Err(Error::InvalidCard(format!(
                "[tags] {k} repeats a [training] key (the [training] keys are tags already)"
            )));
        }
        tags.insert(k.clone(), tag_text(v));
    }
    check_tags(&tags).map_err(|e| Error::InvalidCard(e.to_string()))?;
    Ok(tags)
}

/// The warning of a float model whose card gives neither a preset nor its
/// own scale, mean and std.
pub const ASSUMED_NORMALISATION: &str = "input normalisation not given: assumed pixels / 255 \
     with nothing subtracted (preset \"none\"); if the model was trained on normalised images, \
     give `input.preset=imagenet|cifar10|cifar100` (or scale, mean and std in the card's \
     [input]), or `input.preset=none` to say that this is right";

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Training facts. Keys beyond the known ones are kept as they are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingCard {
    /// One of [`KNOWN_LOSSES`].
    pub loss: String,
    /// The name of a loss of the user's own (loss "other"; "" otherwise).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub loss_name: String,
    /// The contrastive temperature tau (0 for losses without one).
    pub temperature: f64,
    /// Dataset trained on ("" when not said).
    pub dataset: String,
    /// Epochs trained (0 when not said).
    pub epochs: u32,
    /// Random seed (0 when not said).
    pub seed: u64,
    /// The training run it is a checkpoint of ("" when none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run: String,
    /// Its step in the run (0 when not said).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub step: u64,
    /// Everything else the trainer recorded.
    #[serde(flatten)]
    pub extra: BTreeMap<String, toml::Value>,
}

/// The input: x = (pixel * scale - mean[c]) / std[c].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputCard {
    /// Graph input name.
    pub name: String,
    /// Element type the graph takes.
    pub dtype: InputDType,
    /// Shape, -1 for the batch axis.
    pub shape: Vec<i64>,
    /// Axis order.
    pub layout: Layout,
    /// The preset scale, mean and std came from, if any.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Multiplier applied to raw pixels.
    pub scale: f64,
    /// Per-channel mean subtracted after scaling.
    pub mean: Vec<f64>,
    /// Per-channel standard deviation divided by.
    pub std: Vec<f64>,
    /// Interpolation for images of another size.
    #[serde(default)]
    pub resize: Resize,
}

impl InputCard {
    /// (channels, height, width) of one image.
    pub fn chw(&self) -> (i64, i64, i64) {
        self.preprocessing().chw()
    }

    /// The preprocessing this input section asks the encoder for.
    pub fn preprocessing(&self) -> Preprocessing {
        Preprocessing {
            input: self.name.clone(),
            dtype: self.dtype,
            layout: self.layout,
            shape: self.shape.clone(),
            scale: self.scale,
            mean: self.mean.clone(),
            std: self.std.clone(),
            resize: self.resize,
            version: crate::encoder::PREPROCESS_VERSION,
        }
    }
}

/// Which outputs exist and what they hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputsCard {
    /// Every output name served.
    pub names: Vec<String>,
    /// The output holding the embedding.
    pub embedding: String,
    /// The output holding backbone features, if any.
    #[serde(default)]
    pub features: Option<String>,
}

/// Golden outputs next to the model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GoldenCard {
    /// Rows: the first `rows` images of `split`.
    pub rows: usize,
    /// Dataset split they come from.
    pub split: String,
    /// `.npy` file with the embedding output.
    pub embedding: String,
    /// `.npy` file with the features output.
    #[serde(default)]
    pub features: Option<String>,
}

mod check;
mod diff;
mod resolve;
#[cfg(test)]
mod tests;

pub use diff::{differences, differing, NOT_GIVEN};
pub use resolve::{METADATA_MEAN, METADATA_PRESET, METADATA_SCALE, METADATA_STD};
