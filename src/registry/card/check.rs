//! A resolved card checked on its own (values in range, outputs
//! consistent) and against the session's real inputs and outputs.

use super::*;

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
