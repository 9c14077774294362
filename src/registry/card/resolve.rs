//! A card as written resolved against its ONNX graph: the input's name,
//! type, shape and layout, the normalisation from the graph's metadata, and
//! which outputs hold the embedding and the features.

use super::*;

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
                "training.temperature is required for loss {:?} (give `training.temperature`)",
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
                         name it with `outputs.embedding`",
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
