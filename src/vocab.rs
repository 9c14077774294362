//! The service's vocabulary, below every other part: the training losses
//! it knows (and their other names), the preprocessing presets and resize
//! modes, and what a tag is. Cards, requests, figures and the command line
//! all check names here, so one word means one thing everywhere.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Losses with a temperature: their cards must give `training.temperature`.
pub const TEMPERATURE_LOSSES: [&str; 3] = ["infonce", "hard_infonce", "nt_xent"];

/// What a card without its training loss is told.
pub const MISSING_LOSS: &str = "the model needs its training loss: give `training.loss` (infonce, \
     hard_infonce, nt_xent, simple, hard_simple or other with `training.loss_name`) and \
     `training.temperature` for the losses with a temperature, or a card (model.toml)";

/// Every loss a card may name: Wang & Liu's ordinary (`infonce`, Eq. 1),
/// hardness-aware (`hard_infonce`, Eq. 9), `simple` and `hard_simple` (Eq. 7,
/// 10) losses, SimCLR's `nt_xent`, and `other` for a loss of the user's own,
/// named by `training.loss_name`.
pub const KNOWN_LOSSES: [&str; 6] = [
    "infonce",
    "hard_infonce",
    "nt_xent",
    "simple",
    "hard_simple",
    "other",
];

/// Names people give losses that the known set calls otherwise.
const LOSS_ALIASES: [(&str, &str); 6] = [
    ("simclr", "nt_xent"),
    ("ntxent", "nt_xent"),
    ("moco", "infonce"),
    ("nce", "infonce"),
    ("contrastive", "infonce"),
    ("hardnegative", "hard_infonce"),
];

/// Checks a loss name (and, for `other`, its free-text name) against
/// [`KNOWN_LOSSES`]; the message of an unknown one names the nearest known
/// losses and how to name a loss of one's own.
pub fn check_loss(loss: &str, loss_name: Option<&str>) -> Result<()> {
    if KNOWN_LOSSES.contains(&loss) {
        if loss == "other" && loss_name.is_none_or(|n| n.trim().is_empty()) {
            return Err(Error::InvalidCard(
                "training.loss \"other\" needs training.loss_name, the loss's own name \
                 (`training.loss=other` `training.loss_name=NAME`)"
                    .into(),
            ));
        }
        return Ok(());
    }
    let folded: String = loss
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let alias = LOSS_ALIASES
        .iter()
        .find(|(a, _)| *a == folded)
        .map(|(_, known)| format!("; {loss:?} is called {known}"))
        .unwrap_or_default();
    let hint = if alias.is_empty() {
        crate::suggest::did_you_mean(loss, &KNOWN_LOSSES)
    } else {
        alias
    };
    Err(Error::InvalidCard(format!(
        "training.loss {loss:?} is not a known loss (one of {}){hint}; a loss of your own is \
         loss = \"other\" with loss_name = {loss:?} (`training.loss=other` `training.loss_name={loss}`)",
        KNOWN_LOSSES.join(", ")
    )))
}

/// The preprocessing presets' names, as cards and `--preset` give them.
pub const PRESETS: [&str; 4] = ["imagenet", "cifar10", "cifar100", "none"];

/// The resize modes' names, as cards and `--resize` give them.
pub const RESIZES: [&str; 2] = ["bilinear", "none"];

/// Checks a preset name against [`PRESETS`]; the message of an unknown one
/// names them all and the nearest.
pub fn check_preset(preset: &str) -> Result<()> {
    named("input.preset", preset, &PRESETS)
}

/// Checks a resize mode against [`RESIZES`].
pub fn check_resize(resize: &str) -> Result<()> {
    named("input.resize", resize, &RESIZES)
}

/// `value` of card key `key` is one of `known`, or an error naming them and
/// the nearest.
fn named(key: &str, value: &str, known: &[&str]) -> Result<()> {
    if known.contains(&value) {
        return Ok(());
    }
    Err(Error::InvalidCard(format!(
        "{key} {value:?} is not one of {}{}",
        known.join(", "),
        crate::suggest::did_you_mean(value, known)
    )))
}

/// `[training]` keys that record what training measured, not how it was
/// set up: they are not tags (two seeds of one setting differ in them).
pub const MEASURED_KEYS: [&str; 2] = ["final_loss", "train_seconds"];

/// Longest tag key, in characters.
pub const MAX_TAG_KEY: usize = 64;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE: usize = 1024;
/// Most tags on one model or request.
pub const MAX_TAGS: usize = 64;

/// A TOML value as tag text: strings as they are, numbers as Rust prints
/// them (0.2, 1, 300), booleans as true/false, arrays and tables inline.
pub fn tag_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => format!("{f}"),
        other => other.to_string(),
    }
}

/// Checks one tag: a key of 1 to [`MAX_TAG_KEY`] characters from
/// `A-Z a-z 0-9 _ . -`, a value of at most [`MAX_TAG_VALUE`] characters
/// without control characters.
pub fn check_tag(key: &str, value: &str) -> Result<()> {
    let key_ok = !key.is_empty()
        && key.chars().count() <= MAX_TAG_KEY
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !key_ok {
        return Err(Error::InvalidArgument(format!(
            "tag key {key:?}: 1 to {MAX_TAG_KEY} characters of A-Z a-z 0-9 _ . -"
        )));
    }
    if value.chars().count() > MAX_TAG_VALUE || value.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "tag {key}: the value must be at most {MAX_TAG_VALUE} characters, none a control character"
        )));
    }
    Ok(())
}

/// Parses `key=value` (the CLI's `--tag`, `--where`), checked by
/// [`check_tag`].
pub fn parse_tag(text: &str) -> Result<(String, String)> {
    let (key, value) = text.split_once('=').ok_or_else(|| {
        Error::InvalidArgument(format!("tag {text:?} is not key=value (e.g. seed=1)"))
    })?;
    let (key, value) = (key.trim(), value.trim());
    check_tag(key, value)?;
    Ok((key.to_string(), value.to_string()))
}

/// Checks a set of tags (each by [`check_tag`], at most [`MAX_TAGS`]).
pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::InvalidArgument(format!(
            "{} tags: at most {MAX_TAGS}",
            tags.len()
        )));
    }
    tags.iter().try_for_each(|(k, v)| check_tag(k, v))
}
