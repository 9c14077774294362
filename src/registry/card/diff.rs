//! How a card given differs from a registered one, key by key, as the
//! messages of a name taken and of card flags on a registered model say.

use super::*;

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
