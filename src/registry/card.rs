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
     give --preset imagenet|cifar10|cifar100 (or [input] preset, or scale, mean and std in the \
     card), or --preset none to say that this is right";

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

impl CardFile {
    /// Parses card text; checks what can be checked without the graph.
    pub fn parse(text: &str) -> Result<Self> {
        let card: CardFile =
            toml::from_str(text).map_err(|e| Error::InvalidCard(e.message().to_string()))?;
        let t = &card.training;
        if t.loss.trim().is_empty() {
            return Err(Error::InvalidCard("training.loss is empty".into()));
        }
        check_loss(&t.loss, t.loss_name.as_deref())?;
        if t.temperature.is_none() && TEMPERATURE_LOSSES.contains(&t.loss.as_str()) {
            return Err(Error::InvalidCard(format!(
                "training.temperature is required for loss {:?} (give --tau)",
                t.loss
            )));
        }
        Ok(card)
    }

    /// The complete card for a model whose session has `inputs` and
    /// `outputs`: what the card leaves out is read off the graph, and each
    /// such key is listed in [`ModelCard::inferred`]. The result is checked
    /// on its own and against the graph.
    pub fn resolve(&self, inputs: &[TensorSpec], outputs: &[TensorSpec]) -> Result<ModelCard> {
        self.resolve_with(inputs, outputs, &BTreeMap::new())
    }

    /// As [`CardFile::resolve`], with the graph's custom metadata
    /// (`metadata_props`): where the card gives neither a preset nor its own
    /// scale, mean and std, [`METADATA_PRESET`] or [`METADATA_MEAN`] and
    /// [`METADATA_STD`] (with [`METADATA_SCALE`]) give the normalisation.
    pub fn resolve_with(
        &self,
        inputs: &[TensorSpec],
        outputs: &[TensorSpec],
        metadata: &BTreeMap<String, String>,
    ) -> Result<ModelCard> {
        let mut inferred = Vec::new();
        let mut note = |key: &str| inferred.push(key.to_string());
        let t = &self.training;
        let training = TrainingCard {
            loss: t.loss.clone(),
            loss_name: t.loss_name.clone().unwrap_or_default(),
            temperature: t.temperature.unwrap_or(0.0),
            dataset: t.dataset.clone().unwrap_or_default(),
            epochs: t.epochs.unwrap_or(0),
            seed: t.seed.unwrap_or(0),
            run: t.run.clone().unwrap_or_default(),
            step: t.step.unwrap_or(0),
            extra: t.extra.clone(),
        };
        let given = normalisation_from(metadata)?;
        let input = resolve_input(&self.input, inputs, given.as_ref(), &mut note)?;
        let outputs = resolve_outputs(&self.outputs, outputs, &mut note)?;
        let mut warnings = Vec::new();
        let f = &self.input;
        let assumed = f.preset.is_none()
            && (f.scale.is_none() || f.mean.is_none() || f.std.is_none())
            && given.is_none();
        if assumed && input.dtype == InputDType::Float32 {
            warnings.push(ASSUMED_NORMALISATION.to_string());
        }
        let card = ModelCard {
            description: self.description.clone(),
            onnx_sha256: self.onnx_sha256.clone(),
            training,
            input,
            outputs,
            golden: self.golden.clone(),
            inferred,
            warnings,
            tags: card_tags(&self.training, &self.tags)?,
        };
        card.check()?;
        Ok(card)
    }
}

/// The input section, from the card where it speaks and the graph elsewhere.
/// The graph metadata key naming a preset ("imagenet", "cifar10", …).
pub const METADATA_PRESET: &str = "embedeval.preset";
/// The graph metadata key of the per-channel mean ("0.485,0.456,0.406").
pub const METADATA_MEAN: &str = "embedeval.mean";
/// The graph metadata key of the per-channel std.
pub const METADATA_STD: &str = "embedeval.std";
/// The graph metadata key of the pixel scale [1/255].
pub const METADATA_SCALE: &str = "embedeval.scale";

/// The normalisation a graph's metadata gives, if any.
#[derive(Debug, Clone, PartialEq)]
enum FromGraph {
    /// A preset by name.
    Preset(Preset),
    /// Scale, mean and std.
    Values(f64, Vec<f64>, Vec<f64>),
}

/// Reads [`METADATA_PRESET`], or [`METADATA_MEAN`] and [`METADATA_STD`]
/// (and [`METADATA_SCALE`]), from a graph's metadata.
fn normalisation_from(metadata: &BTreeMap<String, String>) -> Result<Option<FromGraph>> {
    let bad = |key: &str, value: &str| {
        Error::InvalidCard(format!(
            "the graph's metadata {key} = {value:?} is not understood"
        ))
    };
    if let Some(v) = metadata.get(METADATA_PRESET) {
        let preset: Preset = toml::Value::String(v.trim().to_ascii_lowercase())
            .try_into()
            .map_err(|_| bad(METADATA_PRESET, v))?;
        return Ok(Some(FromGraph::Preset(preset)));
    }
    let floats = |key: &str| -> Result<Option<Vec<f64>>> {
        metadata
            .get(key)
            .map(|v| {
                v.trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .map(|x| x.trim().parse::<f64>().map_err(|_| bad(key, v)))
                    .collect()
            })
            .transpose()
    };
    match (floats(METADATA_MEAN)?, floats(METADATA_STD)?) {
        (Some(mean), Some(std)) => {
            let scale = match floats(METADATA_SCALE)?.as_deref() {
                None => 1.0 / 255.0,
                Some([one]) => *one,
                Some(_) => return Err(bad(METADATA_SCALE, &metadata[METADATA_SCALE])),
            };
            Ok(Some(FromGraph::Values(scale, mean, std)))
        }
        _ => Ok(None),
    }
}

fn resolve_input(
    file: &InputFile,
    inputs: &[TensorSpec],
    from_graph: Option<&FromGraph>,
    note: &mut impl FnMut(&str),
) -> Result<InputCard> {
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let graph = match &file.name {
        Some(name) => inputs.iter().find(|i| &i.name == name).ok_or_else(|| {
            Error::InvalidCard(format!(
                "input.name {name:?} is not an input of the model (it has {names:?})"
            ))
        })?,
        None => {
            note("input.name");
            match inputs {
                [only] => only,
                _ => {
                    return Err(Error::InvalidCard(format!(
                        "the model must take exactly one input, it takes {names:?}"
                    )))
                }
            }
        }
    };
    let dtype = match file.dtype {
        Some(d) => d,
        None => {
            note("input.dtype");
            match graph.dtype {
                Some(ElementType::Float32) => InputDType::Float32,
                Some(ElementType::Uint8) => InputDType::Uint8,
                other => {
                    return Err(Error::InvalidCard(format!(
                        "the model's input {:?} is {}: embedeval feeds float32 or uint8 images",
                        graph.name,
                        other.map_or("not a tensor", |d| d.as_str())
                    )))
                }
            }
        }
    };
    if graph.shape.first().is_some_and(|&b| b > 0) {
        return Err(Error::InvalidCard(format!(
            "the model's input {:?} has a fixed batch axis ({:?}): embedeval runs batches of many \
             images; export it with a dynamic batch axis (torch.onnx.export(…, \
             dynamic_axes={{{:?}: {{0: \"batch\"}}}}))",
            graph.name, graph.shape, graph.name
        )));
    }
    let shape = match &file.shape {
        Some(s) => s.clone(),
        None => {
            note("input.shape");
            let mut shape = graph.shape.clone();
            if shape.len() != 4 || shape[1..].iter().any(|&d| d <= 0) {
                return Err(Error::InvalidCard(format!(
                    "the model's input {:?} has shape {:?}: give input.shape (4 axes, -1 for the batch, the image axes fixed)",
                    graph.name, graph.shape
                )));
            }
            shape[0] = -1;
            shape
        }
    };
    let layout = match file.layout {
        Some(l) => l,
        None => {
            note("input.layout");
            let channel_like = |d: i64| matches!(d, 1 | 3 | 4);
            match shape.as_slice() {
                [_, a, _, c] if !channel_like(*a) && channel_like(*c) => Layout::NHWC,
                _ => Layout::NCHW,
            }
        }
    };
    let channels = match (layout, shape.as_slice()) {
        (Layout::NCHW, [_, c, _, _]) | (Layout::NHWC, [_, _, _, c]) => (*c).max(1) as usize,
        _ => 1,
    };
    let explicit = file.scale.is_some() && file.mean.is_some() && file.std.is_some();
    // A preset is echoed only where it gave at least one of the values (the
    // default "none" included). The graph's metadata speaks where the card
    // does not.
    let (preset, (scale, mean, std)) = match (explicit, file.preset, from_graph) {
        (true, _, _) => (None, (1.0, Vec::new(), Vec::new())),
        (false, Some(p), _) => (Some(p), p.values(channels)?),
        (false, None, Some(FromGraph::Preset(p))) => {
            note("input.normalisation");
            (Some(*p), p.values(channels)?)
        }
        (false, None, Some(FromGraph::Values(scale, mean, std))) => {
            note("input.normalisation");
            (None, (*scale, mean.clone(), std.clone()))
        }
        (false, None, None) => {
            note("input.preset");
            (Some(Preset::None), Preset::None.values(channels)?)
        }
    };
    let resize = file.resize.unwrap_or_else(|| {
        note("input.resize");
        Resize::default()
    });
    Ok(InputCard {
        name: graph.name.clone(),
        dtype,
        shape,
        layout,
        preset,
        scale: file.scale.unwrap_or(scale),
        mean: file.mean.clone().unwrap_or(mean),
        std: file.std.clone().unwrap_or(std),
        resize,
    })
}

/// The outputs section, from the card where it speaks and the output names
/// elsewhere.
fn resolve_outputs(
    file: &OutputsFile,
    outputs: &[TensorSpec],
    note: &mut impl FnMut(&str),
) -> Result<OutputsCard> {
    let have: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
    let named_like = |names: &[&str], except: Option<&str>| -> Option<String> {
        let found: Vec<&str> = have
            .iter()
            .copied()
            .filter(|h| Some(*h) != except && names.contains(&h.to_ascii_lowercase().as_str()))
            .collect();
        match found.as_slice() {
            [one] => Some(one.to_string()),
            _ => None,
        }
    };
    let embedding = match &file.embedding {
        Some(e) => e.clone(),
        None => {
            note("outputs.embedding");
            match have.as_slice() {
                [only] => only.to_string(),
                _ => named_like(&EMBEDDING_NAMES, file.features.as_deref()).ok_or_else(|| {
                    Error::InvalidCard(format!(
                        "the model has outputs {have:?} and none is named like an embedding ({}): \
                         name it in the card ([outputs] embedding = \"…\") or with --embedding-output",
                        EMBEDDING_NAMES.join(", ")
                    ))
                })?,
            }
        }
    };
    let features = match &file.features {
        Some(f) => Some(f.clone()),
        None if file.names.is_some() => None,
        None => {
            let found = named_like(&FEATURE_NAMES, Some(&embedding));
            if found.is_some() {
                note("outputs.features");
            }
            found
        }
    };
    let names = match &file.names {
        Some(n) => n.clone(),
        None => {
            note("outputs.names");
            std::iter::once(embedding.clone())
                .chain(features.clone())
                .collect()
        }
    };
    Ok(OutputsCard {
        names,
        embedding,
        features,
    })
}

/// The keys a card as written (`given`) sets otherwise than the resolved
/// card `registered`, each as `key: <registered> registered, <given> given`
/// (a preset left out counts as "none" when the card gives no scale, mean
/// and std either). Empty when `given` describes the same model.
pub fn differences(registered: &ModelCard, given: &CardFile) -> Vec<String> {
    fn show<T: std::fmt::Debug>(v: &T) -> String {
        let text = format!("{v:?}");
        text.trim_matches('"').to_string()
    }
    let (t, g) = (&registered.training, &given.training);
    let mut keys = vec![
        (
            "training.loss".to_string(),
            t.loss.clone(),
            Some(g.loss.clone()),
        ),
        (
            "training.loss_name".into(),
            t.loss_name.clone(),
            Some(g.loss_name.clone().unwrap_or_default()),
        ),
        (
            "training.temperature".into(),
            show(&t.temperature),
            Some(show(&g.temperature.unwrap_or(0.0))),
        ),
        (
            "training.dataset".into(),
            t.dataset.clone(),
            g.dataset.clone(),
        ),
        (
            "training.epochs".into(),
            show(&t.epochs),
            g.epochs.map(|v| show(&v)),
        ),
        (
            "training.seed".into(),
            show(&t.seed),
            g.seed.map(|v| show(&v)),
        ),
        ("training.run".into(), t.run.clone(), g.run.clone()),
        (
            "training.step".into(),
            show(&t.step),
            g.step.map(|v| show(&v)),
        ),
    ];
    for (key, value) in &g.extra {
        let had = t
            .extra
            .get(key)
            .map_or("nothing".to_string(), |v| v.to_string());
        keys.push((format!("training.{key}"), had, Some(value.to_string())));
    }
    let (r, g) = (&registered.input, &given.input);
    if !(g.scale.is_some() && g.mean.is_some() && g.std.is_some()) {
        let preset = |p: Option<Preset>| p.unwrap_or(Preset::None).as_str().to_string();
        let had = match r.preset {
            None => "scale, mean and std".to_string(),
            some => preset(some),
        };
        keys.push(("input.preset".into(), had, Some(preset(g.preset))));
    }
    keys.extend([
        ("input.name".to_string(), r.name.clone(), g.name.clone()),
        (
            "input.dtype".into(),
            show(&r.dtype),
            g.dtype.map(|v| show(&v)),
        ),
        (
            "input.shape".into(),
            show(&r.shape),
            g.shape.as_ref().map(show),
        ),
        (
            "input.layout".into(),
            show(&r.layout),
            g.layout.map(|v| show(&v)),
        ),
        (
            "input.scale".into(),
            show(&r.scale),
            g.scale.map(|v| show(&v)),
        ),
        (
            "input.mean".into(),
            show(&r.mean),
            g.mean.as_ref().map(show),
        ),
        ("input.std".into(), show(&r.std), g.std.as_ref().map(show)),
        (
            "input.resize".into(),
            r.resize.as_str().to_string(),
            g.resize.map(|v| v.as_str().to_string()),
        ),
    ]);
    let (r, g) = (&registered.outputs, &given.outputs);
    keys.push((
        "outputs.embedding".into(),
        r.embedding.clone(),
        g.embedding.clone(),
    ));
    keys.push((
        "outputs.features".into(),
        r.features.clone().unwrap_or_default(),
        g.features.clone(),
    ));
    differing(keys)
}

/// What [`differing`] says of a key a whole card leaves out.
pub const NOT_GIVEN: &str = "not given";

/// The keys whose given value (when one is given) is not the registered one,
/// each as `key: <registered> registered, <given> given`.
pub fn differing<K: AsRef<str>>(
    keys: impl IntoIterator<Item = (K, String, Option<String>)>,
) -> Vec<String> {
    keys.into_iter()
        .filter_map(|(key, had, now)| {
            let now = now.filter(|now| *now != had)?;
            let given = if now == NOT_GIVEN {
                NOT_GIVEN.to_string()
            } else {
                format!("{now} given")
            };
            Some(format!("{}: {had} registered, {given}", key.as_ref()))
        })
        .collect()
}

impl ModelCard {
    /// The output a linear probe trains on: the backbone features when the
    /// card names them, else the embedding.
    pub fn probe_output(&self) -> &str {
        self.outputs
            .features
            .as_deref()
            .unwrap_or(&self.outputs.embedding)
    }

    /// Checks the card on its own: values in range, outputs consistent.
    pub fn check(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidCard(msg));
        let t = self.training.temperature;
        if !t.is_finite() || t < 0.0 {
            return bad(format!(
                "training.temperature must be finite and >= 0, got {t}"
            ));
        }
        let input = &self.input;
        if input.shape.len() != 4 {
            return bad(format!(
                "input.shape must have 4 axes ({}), got {:?}",
                input.layout.as_str(),
                input.shape
            ));
        }
        if input.shape[0] != -1 {
            return bad(format!(
                "input.shape[0] is the batch axis and must be -1, got {}",
                input.shape[0]
            ));
        }
        if let Some(d) = input.shape[1..].iter().find(|&&d| d <= 0) {
            return bad(format!(
                "input.shape {:?}: image axes must be positive, got {d}",
                input.shape
            ));
        }
        let (c, h, w) = input.chw();
        let side = crate::data::dataset::MAX_IMAGE_SIDE as i64;
        let channels = crate::data::dataset::MAX_CHANNELS as i64;
        if h > side || w > side || c > channels || c * h * w > MAX_INPUT_VALUES {
            return bad(format!(
                "input.shape {:?} is too large: height and width at most {side}, channels at most {channels}, at most {MAX_INPUT_VALUES} values per image",
                input.shape
            ));
        }
        if input.mean.len() != c as usize || input.std.len() != c as usize {
            return bad(format!(
                "input.mean and input.std need one value per channel ({c}), got {} and {}",
                input.mean.len(),
                input.std.len()
            ));
        }
        if !(input.scale.is_finite() && input.scale > 0.0) {
            return bad(format!("input.scale must be > 0, got {}", input.scale));
        }
        if let Some(s) = input.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return bad(format!("input.std values must be > 0, got {s}"));
        }
        let outs = &self.outputs;
        if !outs.names.contains(&outs.embedding) {
            return bad(format!(
                "outputs.embedding {:?} is not in outputs.names {:?}",
                outs.embedding, outs.names
            ));
        }
        if let Some(f) = &outs.features {
            if !outs.names.contains(f) {
                return bad(format!(
                    "outputs.features {f:?} is not in outputs.names {:?}",
                    outs.names
                ));
            }
        }
        if let Some(golden) = &self.golden {
            let files = [Some(&golden.embedding), golden.features.as_ref()];
            for (field, file) in ["golden.embedding", "golden.features"].iter().zip(files) {
                if let Some(file) = file {
                    crate::data::paths::check_relative(file, field)
                        .map_err(|e| Error::InvalidCard(e.to_string()))?;
                }
            }
        }
        Ok(())
    }

    /// Checks the card against the session's real inputs and outputs.
    pub fn check_against(&self, inputs: &[TensorSpec], outputs: &[TensorSpec]) -> Result<()> {
        let card = &self.input;
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        let input = inputs.iter().find(|i| i.name == card.name).ok_or_else(|| {
            Error::InvalidCard(format!(
                "input.name {:?} is not an input of the model (it has {names:?})",
                card.name
            ))
        })?;
        if inputs.len() != 1 {
            return Err(Error::InvalidCard(format!(
                "the model must take exactly one input, it takes {names:?}"
            )));
        }
        if input.dtype != Some(card.dtype.element_type()) {
            return Err(Error::InvalidCard(format!(
                "input.dtype is {} but the model's input {:?} is {}",
                card.dtype.element_type().as_str(),
                card.name,
                input.dtype.map_or("not a tensor", |d| d.as_str())
            )));
        }
        let fits = input.shape.len() == card.shape.len()
            && input
                .shape
                .iter()
                .zip(&card.shape)
                .all(|(&model, &card)| model == card || model < 0 && card > 0);
        if !fits {
            return Err(Error::InvalidCard(format!(
                "input.shape is {:?} but the model's input {:?} has shape {:?}",
                card.shape, card.name, input.shape
            )));
        }
        let have: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
        for name in &self.outputs.names {
            let out = outputs.iter().find(|o| &o.name == name).ok_or_else(|| {
                Error::InvalidCard(format!(
                    "output {name:?} is not an output of the model (it has {have:?})"
                ))
            })?;
            if out.dtype != Some(ElementType::Float32) {
                return Err(Error::InvalidCard(format!(
                    "output {name:?} must be float32, the model gives {}",
                    out.dtype.map_or("not a tensor", |d| d.as_str())
                )));
            }
            if out.shape.len() != 2 {
                return Err(Error::InvalidCard(format!(
                    "output {name:?} must be [batch, dim], the model gives shape {:?}",
                    out.shape
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const CARD: &str = r#"
description = "test"
[training]
loss = "infonce"
temperature = 0.2
dataset = "digits"
epochs = 3
seed = 0
batch_size = 256
[input]
name = "images"
dtype = "float32"
shape = [-1, 1, 8, 8]
layout = "NCHW"
scale = 0.0625
mean = [0.0]
std = [1.0]
[outputs]
names = ["embedding", "features"]
embedding = "embedding"
features = "features"
"#;

    fn spec(name: &str, dtype: ElementType, shape: &[i64]) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dtype: Some(dtype),
            shape: shape.to_vec(),
        }
    }

    /// The digits zoo's graph: one 1×8×8 float input, two outputs.
    fn digits_graph() -> (Vec<TensorSpec>, Vec<TensorSpec>) {
        (
            vec![spec("images", ElementType::Float32, &[-1, 1, 8, 8])],
            vec![
                spec("embedding", ElementType::Float32, &[-1, 128]),
                spec("features", ElementType::Float32, &[-1, 64]),
            ],
        )
    }

    fn parse(text: &str) -> Result<ModelCard> {
        let (inputs, outputs) = digits_graph();
        CardFile::parse(text)?.resolve(&inputs, &outputs)
    }

    #[test]
    fn training_keys_and_the_tags_table_are_the_tags() {
        let text = "[training]\nloss = \"infonce\"\ntemperature = 0.2\nseed = 3\n\
                    epochs = 300\narchitecture = \"cnn\"\nfinal_loss = 2.1\ntrain_seconds = 9.5\n\
                    [tags]\naugmentation = \"crop+flip\"\nbatch = 512\n";
        let card = parse(text).unwrap();
        let want: BTreeMap<String, String> = [
            ("loss", "infonce"),
            ("temperature", "0.2"),
            ("seed", "3"),
            ("epochs", "300"),
            ("architecture", "cnn"),
            ("augmentation", "crop+flip"),
            ("batch", "512"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            card.tags, want,
            "measured keys are not tags; unset keys are absent"
        );
        let again = "[training]\nloss = \"simple\"\n[tags]\nloss = \"x\"\n";
        assert!(parse(again)
            .unwrap_err()
            .to_string()
            .contains("repeats a [training] key"));
        let bad = "[training]\nloss = \"simple\"\n[tags]\n\"a b\" = \"x\"\n";
        assert!(parse(bad).unwrap_err().to_string().contains("tag key"));
        assert_eq!(parse_tag("seed=1").unwrap(), ("seed".into(), "1".into()));
        assert_eq!(parse_tag(" arch = resnet18 ").unwrap().1, "resnet18");
        assert!(parse_tag("seed").is_err());
        assert!(parse_tag("=1").is_err());
        assert!(parse_tag("k=a\nb").is_err());
    }

    #[test]
    fn a_card_of_only_the_loss_is_completed_from_the_graph() {
        let (_, outputs) = digits_graph();
        let inputs = [spec("x", ElementType::Float32, &[-1, 3, 224, 224])];
        let text = "[training]\nloss = \"infonce\"\ntemperature = 0.2\n";
        let card = CardFile::parse(text)
            .unwrap()
            .resolve(&inputs, &outputs)
            .unwrap();
        assert_eq!(card.input.name, "x");
        assert_eq!(card.input.shape, vec![-1, 3, 224, 224]);
        assert_eq!(card.input.layout, Layout::NCHW);
        assert_eq!(card.input.dtype, InputDType::Float32);
        assert_eq!(card.input.scale, 1.0 / 255.0);
        assert_eq!(card.input.mean, vec![0.0; 3]);
        assert_eq!(card.input.resize, Resize::Bilinear);
        assert_eq!(card.outputs.embedding, "embedding");
        assert_eq!(card.outputs.features.as_deref(), Some("features"));
        assert_eq!(card.training.temperature, 0.2);
        assert_eq!(card.training.epochs, 0);
        for key in [
            "input.name",
            "input.shape",
            "outputs.embedding",
            "input.preset",
        ] {
            assert!(card.inferred.contains(&key.to_string()), "{key}");
        }
        card.check_against(&inputs, &outputs).unwrap();

        // Channels last, and a lone output of any name.
        let nhwc = [spec("pixels", ElementType::Uint8, &[-1, 32, 32, 3])];
        let lone = [spec("out", ElementType::Float32, &[-1, 2048])];
        let card = CardFile::parse("[training]\nloss = \"simple\"\n")
            .unwrap()
            .resolve(&nhwc, &lone)
            .unwrap();
        assert_eq!(card.input.layout, Layout::NHWC);
        assert_eq!(card.input.dtype, InputDType::Uint8);
        assert_eq!(card.outputs.embedding, "out");
        assert_eq!(card.outputs.features, None);
        assert_eq!(card.training.temperature, 0.0);
    }

    #[test]
    fn presets_give_scale_mean_and_std_and_explicit_values_win() {
        let (_, outputs) = digits_graph();
        let rgb = [spec("x", ElementType::Float32, &[-1, 3, 32, 32])];
        let resolve = |input: &str| {
            let text = format!("[training]\nloss = \"simple\"\n[input]\n{input}");
            CardFile::parse(&text).and_then(|f| f.resolve(&rgb, &outputs))
        };
        let card = resolve("preset = \"imagenet\"").unwrap();
        assert_eq!(card.input.mean, vec![0.485, 0.456, 0.406]);
        assert_eq!(card.input.std, vec![0.229, 0.224, 0.225]);
        assert_eq!(card.input.scale, 1.0 / 255.0);
        assert_eq!(card.input.preset, Some(Preset::Imagenet));
        let card = resolve("preset = \"cifar10\"\nstd = [1.0, 1.0, 1.0]").unwrap();
        assert_eq!(card.input.mean, vec![0.4914, 0.4822, 0.4465]);
        assert_eq!(card.input.std, vec![1.0; 3]);
        let err = resolve("preset = \"imagenet\"")
            .and_then(|_| {
                CardFile::parse("[training]\nloss = \"simple\"\n[input]\npreset = \"imagenet\"")?
                    .resolve(&digits_graph().0, &outputs)
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 channels but the input has 1"), "{err}");
        assert!(resolve("preset = \"vgg\"").is_err());
    }

    #[test]
    fn outputs_that_cannot_be_told_apart_need_the_card() {
        let (inputs, _) = digits_graph();
        let two = [
            spec("a", ElementType::Float32, &[-1, 128]),
            spec("b", ElementType::Float32, &[-1, 64]),
        ];
        let file = CardFile::parse("[training]\nloss = \"simple\"\n").unwrap();
        let err = file.resolve(&inputs, &two).unwrap_err().to_string();
        assert!(
            err.contains("[\"a\", \"b\"]") && err.contains("--embedding-output"),
            "{err}"
        );
        let named =
            CardFile::parse("[training]\nloss = \"simple\"\n[outputs]\nembedding = \"b\"\n")
                .unwrap()
                .resolve(&inputs, &two)
                .unwrap();
        assert_eq!(named.outputs.names, vec!["b".to_string()]);
        let two_inputs = [
            inputs[0].clone(),
            spec("mask", ElementType::Float32, &[-1, 8]),
        ];
        let err = file
            .resolve(&two_inputs, &digits_graph().1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly one input"), "{err}");
        let fixed = [spec("x", ElementType::Float32, &[1, 3, 32, 32])];
        let err = file
            .resolve(&fixed, &digits_graph().1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fixed batch axis") && err.contains("dynamic_axes"),
            "{err}"
        );
        let free = [spec("x", ElementType::Float32, &[-1, 3, -1, -1])];
        let err = file
            .resolve(&free, &digits_graph().1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("give input.shape"), "{err}");
    }

    #[test]
    fn the_graphs_metadata_gives_the_normalisation_the_card_does_not() {
        let (inputs, outputs) = digits_graph();
        let card = CardFile::parse("[training]\nloss = \"simple\"\n").unwrap();
        let meta = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let none = card.resolve_with(&inputs, &outputs, &meta(&[])).unwrap();
        assert_eq!(none.warnings, [ASSUMED_NORMALISATION]);
        let given = card
            .resolve_with(
                &inputs,
                &outputs,
                &meta(&[
                    (METADATA_MEAN, "0.5"),
                    (METADATA_STD, "[0.25]"),
                    (METADATA_SCALE, "0.0625"),
                ]),
            )
            .unwrap();
        assert!(given.warnings.is_empty());
        assert_eq!(
            (
                given.input.scale,
                given.input.mean.clone(),
                given.input.std.clone()
            ),
            (0.0625, vec![0.5], vec![0.25])
        );
        assert!(given.inferred.contains(&"input.normalisation".to_string()));
        let preset = card
            .resolve_with(&inputs, &outputs, &meta(&[(METADATA_PRESET, "none")]))
            .unwrap();
        assert!(preset.warnings.is_empty());
        assert_eq!(preset.input.preset, Some(Preset::None));
        // The card wins over the graph.
        let own = CardFile::parse("[training]\nloss = \"simple\"\n[input]\npreset = \"none\"\n")
            .unwrap()
            .resolve_with(
                &inputs,
                &outputs,
                &meta(&[(METADATA_MEAN, "0.5"), (METADATA_STD, "0.25")]),
            )
            .unwrap();
        assert_eq!(own.input.mean, vec![0.0]);
        assert!(card
            .resolve_with(&inputs, &outputs, &meta(&[(METADATA_PRESET, "vgg")]))
            .is_err());
    }

    #[test]
    fn a_loss_with_a_temperature_needs_one() {
        let err = CardFile::parse("[training]\nloss = \"infonce\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("temperature is required") && err.contains("--tau"),
            "{err}"
        );
        let err = CardFile::parse("[input]\nname = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `training`"), "{err}");
    }

    #[test]
    fn parses_a_card_and_keeps_extra_training_keys() {
        let card = parse(CARD).unwrap();
        assert_eq!(card.training.temperature, 0.2);
        assert_eq!(card.input.chw(), (1, 8, 8));
        assert_eq!(
            card.training.extra.get("batch_size"),
            Some(&toml::Value::Integer(256))
        );
    }

    #[test]
    fn the_probe_prefers_backbone_features() {
        let card = parse(CARD).unwrap();
        assert_eq!(card.probe_output(), "features");
        let without = CARD.replace("features = \"features\"\n", "").replace(
            "names = [\"embedding\", \"features\"]",
            "names = [\"embedding\"]",
        );
        assert_eq!(parse(&without).unwrap().probe_output(), "embedding");
    }

    #[test]
    fn a_missing_field_is_named() {
        let text = CARD.replace("loss = \"infonce\"\n", "");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("missing field `loss`"), "{err}");
    }

    #[test]
    fn an_unknown_field_is_named() {
        let text = CARD.replace("layout = \"NCHW\"", "layout = \"NCHW\"\nlayuot = 1");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("layuot"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected() {
        for (from, to, needle) in [
            (
                "shape = [-1, 1, 8, 8]",
                "shape = [8, 1, 8, 8]",
                "batch axis",
            ),
            ("mean = [0.0]", "mean = [0.0, 0.0]", "one value per channel"),
            ("std = [1.0]", "std = [0.0]", "std values must be > 0"),
            (
                "embedding = \"embedding\"",
                "embedding = \"emb\"",
                "not in outputs.names",
            ),
            ("temperature = 0.2", "temperature = -1.0", "temperature"),
        ] {
            let err = parse(&CARD.replace(from, to)).unwrap_err().to_string();
            assert!(err.contains(needle), "{to}: {err}");
        }
    }

    #[test]
    fn checks_against_the_graph() {
        let card = parse(CARD).unwrap();
        let inputs = [spec("images", ElementType::Float32, &[-1, 1, 8, 8])];
        let outputs = [
            spec("embedding", ElementType::Float32, &[-1, 128]),
            spec("features", ElementType::Float32, &[-1, 64]),
        ];
        card.check_against(&inputs, &outputs).unwrap();

        let wrong_shape = [spec("images", ElementType::Float32, &[-1, 3, 32, 32])];
        let err = card
            .check_against(&wrong_shape, &outputs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[-1, 3, 32, 32]"), "{err}");

        let wrong_type = [spec("images", ElementType::Uint8, &[-1, 1, 8, 8])];
        let err = card
            .check_against(&wrong_type, &outputs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("uint8"), "{err}");

        let err = card
            .check_against(&inputs, &outputs[..1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"features\" is not an output"), "{err}");
    }
}
