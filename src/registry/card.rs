//! Model cards (`model.toml`): the training facts, the input and its
//! preprocessing, the outputs. A card is checked on its own
//! ([`ModelCard::check`]) and against the ONNX session's real inputs and
//! outputs ([`ModelCard::check_against`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::encoder::{ElementType, Preprocessing, TensorSpec};
pub use crate::encoder::{InputDType, Layout};
use crate::error::{Error, Result};

/// Most values in one image of a model's input (64 MiB of float32).
pub const MAX_INPUT_VALUES: i64 = 1 << 24;

/// A parsed `model.toml`.
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
}

/// Training facts. Keys beyond the five required ones are kept as they are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingCard {
    /// "infonce" | "hard_infonce" | "simple" | "hard_simple" | other.
    pub loss: String,
    /// The contrastive temperature tau (0 for losses without one).
    pub temperature: f64,
    /// Dataset trained on.
    pub dataset: String,
    /// Epochs trained.
    pub epochs: u32,
    /// Random seed.
    pub seed: u64,
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
    /// Multiplier applied to raw pixels.
    pub scale: f64,
    /// Per-channel mean subtracted after scaling.
    pub mean: Vec<f64>,
    /// Per-channel standard deviation divided by.
    pub std: Vec<f64>,
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
            version: crate::encoder::PREPROCESS_VERSION,
        }
    }
}

/// Which outputs exist and what they hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputsCard {
    /// Every output name the graph has.
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

impl ModelCard {
    /// The output a linear probe trains on: the backbone features when the
    /// card names them, else the embedding.
    pub fn probe_output(&self) -> &str {
        self.outputs
            .features
            .as_deref()
            .unwrap_or(&self.outputs.embedding)
    }

    /// Parses and checks card text.
    pub fn parse(text: &str) -> Result<Self> {
        let card: ModelCard =
            toml::from_str(text).map_err(|e| Error::InvalidCard(e.message().to_string()))?;
        card.check()?;
        Ok(card)
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

    #[test]
    fn parses_a_card_and_keeps_extra_training_keys() {
        let card = ModelCard::parse(CARD).unwrap();
        assert_eq!(card.training.temperature, 0.2);
        assert_eq!(card.input.chw(), (1, 8, 8));
        assert_eq!(
            card.training.extra.get("batch_size"),
            Some(&toml::Value::Integer(256))
        );
    }

    #[test]
    fn the_probe_prefers_backbone_features() {
        let card = ModelCard::parse(CARD).unwrap();
        assert_eq!(card.probe_output(), "features");
        let without = CARD.replace("features = \"features\"\n", "").replace(
            "names = [\"embedding\", \"features\"]",
            "names = [\"embedding\"]",
        );
        assert_eq!(
            ModelCard::parse(&without).unwrap().probe_output(),
            "embedding"
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        let text = CARD.replace("temperature = 0.2\n", "");
        let err = ModelCard::parse(&text).unwrap_err().to_string();
        assert!(err.contains("missing field `temperature`"), "{err}");
    }

    #[test]
    fn an_unknown_field_is_named() {
        let text = CARD.replace("layout = \"NCHW\"", "layout = \"NCHW\"\nlayuot = 1");
        let err = ModelCard::parse(&text).unwrap_err().to_string();
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
            let err = ModelCard::parse(&CARD.replace(from, to))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{to}: {err}");
        }
    }

    #[test]
    fn checks_against_the_graph() {
        let card = ModelCard::parse(CARD).unwrap();
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
