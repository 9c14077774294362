//! Models from files: the card built from `--card` and flags, the upload,
//! and the lookup that lets `eval ./model.onnx` register a file once (by
//! its content's sha256) and reuse it afterwards.

use std::path::Path;

use anyhow::{bail, Context};

use super::args::{CardArgs, Connection};
use super::render::{bar, Unit};
use crate::proto;

/// Bytes of ONNX per upload message.
const CHUNK: usize = 1 << 20;

/// The card's TOML: the `--card` file (if any) with the flags' keys set over
/// it, checked for a loss and for known names.
pub fn card_toml(args: &CardArgs) -> anyhow::Result<String> {
    let card = card_table(args)?;
    let training = card.get("training");
    let Some(loss) = training.and_then(|t| t.get("loss")) else {
        bail!("{}", crate::registry::card::MISSING_LOSS);
    };
    if let Some(loss) = loss.as_str() {
        let name = training
            .and_then(|t| t.get("loss_name"))
            .and_then(|v| v.as_str());
        crate::registry::card::check_loss(loss, name).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(toml::to_string(&card)?)
}

/// The names a card gives (loss, preset, resize) checked before anything is
/// uploaded, each unknown one refused with the nearest known names.
fn check_names(card: &toml::Table) -> anyhow::Result<()> {
    use crate::registry::card;
    let get = |section: &str, key: &str| {
        card.get(section)
            .and_then(|t| t.get(key))
            .and_then(|v| v.as_str())
    };
    if let Some(loss) = get("training", "loss") {
        card::check_loss(loss, get("training", "loss_name")).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(preset) = get("input", "preset") {
        card::check_preset(preset).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(resize) = get("input", "resize") {
        card::check_resize(resize).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// The `--card` file (if any) with the flags' keys set over it, its names
/// checked; no key is required.
fn card_table(args: &CardArgs) -> anyhow::Result<toml::Table> {
    let mut card: toml::Table = match &args.card {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("read {}", path.display()))?
            .parse()
            .with_context(|| format!("parse {}", path.display()))?,
        None => toml::Table::new(),
    };
    let mut set = |section: &str, key: &str, value: toml::Value| {
        let table = card
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = table {
            t.insert(key.to_string(), value);
        }
    };
    let text = |v: &Option<String>| v.clone().map(toml::Value::String);
    let flags = [
        ("training", "loss", text(&args.loss)),
        ("training", "loss_name", text(&args.loss_name)),
        ("training", "temperature", args.tau.map(toml::Value::Float)),
        ("input", "preset", text(&args.preset)),
        ("input", "resize", text(&args.resize)),
        ("outputs", "embedding", text(&args.embedding_output)),
        ("outputs", "features", text(&args.features_output)),
        ("training", "run", text(&args.run)),
        (
            "training",
            "step",
            args.step
                .and_then(|s| i64::try_from(s).ok())
                .map(toml::Value::Integer),
        ),
    ];
    for (section, key, value) in flags {
        if let Some(value) = value {
            set(section, key, value);
        }
    }
    for tag in &args.tags {
        let (key, value) = crate::registry::card::parse_tag(tag)?;
        let old = card.get("training").and_then(|t| t.get(&key)).cloned();
        let (section, value) = match old {
            Some(old) => (
                "training",
                same_type(&old, &value)
                    .with_context(|| format!("--tag {key}={value}: [training] {key} is {old}"))?,
            ),
            None => ("tags", toml::Value::String(value)),
        };
        if let toml::Value::Table(t) = card
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            t.insert(key, value);
        }
    }
    check_names(&card)?;
    Ok(card)
}

/// `text` as a TOML value of the type of `like` (integer, float, boolean
/// or string).
fn same_type(like: &toml::Value, text: &str) -> anyhow::Result<toml::Value> {
    Ok(match like {
        toml::Value::Integer(_) => toml::Value::Integer(text.parse()?),
        toml::Value::Float(_) => toml::Value::Float(text.parse()?),
        toml::Value::Boolean(_) => toml::Value::Boolean(text.parse()?),
        _ => toml::Value::String(text.to_string()),
    })
}

/// Uploads `onnx` as `name` with the card `card_toml`.
pub async fn upload(
    conn: &Connection,
    name: &str,
    onnx: &Path,
    card_toml: String,
    replace: bool,
) -> anyhow::Result<proto::ModelInfo> {
    let bytes = std::fs::read(onnx).with_context(|| format!("read {}", onnx.display()))?;
    let progress = bar(bytes.len() as u64, "upload", Unit::Bytes);
    let mut messages = vec![proto::RegisterModelRequest {
        payload: Some(proto::register_model_request::Payload::Card(
            proto::ModelUpload {
                name: name.to_string(),
                card_toml,
                size_bytes: bytes.len() as u64,
                sha256: crate::registry::sha256_hex(&bytes),
                replace,
            },
        )),
    }];
    messages.extend(bytes.chunks(CHUNK).map(|c| proto::RegisterModelRequest {
        payload: Some(proto::register_model_request::Payload::Chunk(c.to_vec())),
    }));
    let p = progress.clone();
    let stream = tokio_stream::StreamExt::map(tokio_stream::iter(messages), move |m| {
        if let Some(proto::register_model_request::Payload::Chunk(c)) = &m.payload {
            p.inc(c.len() as u64);
        }
        m
    });
    let info = conn
        .models()
        .await?
        .register_model(stream)
        .await?
        .into_inner();
    progress.finish_and_clear();
    Ok(info)
}

/// The models the server has.
pub async fn registered(conn: &Connection) -> anyhow::Result<Vec<proto::ModelInfo>> {
    Ok(conn
        .models()
        .await?
        .list_models(proto::ListModelsRequest::default())
        .await?
        .into_inner()
        .models)
}

/// Extensions of files a model argument may name.
const MODEL_FILE_EXTENSIONS: [&str; 7] = ["onnx", "pt", "pth", "ckpt", "bin", "safetensors", "pb"];

/// Whether a model argument names a file rather than a registered model:
/// it contains a path separator or ends like a model file.
fn is_path_argument(model: &str) -> bool {
    let ext = Path::new(model)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    model.contains('/')
        || model.contains(std::path::MAIN_SEPARATOR)
        || ext.is_some_and(|e| MODEL_FILE_EXTENSIONS.contains(&e.as_str()))
}

/// Why a path argument cannot be read as an ONNX file, said for people.
fn check_model_file(model: &str) -> anyhow::Result<Vec<u8>> {
    let path = Path::new(model);
    if !path.exists() {
        bail!("{model}: no such file (a model is a registered name or the path of an ONNX file)");
    }
    if path.is_dir() {
        let onnx: Vec<String> = std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
                    .map(|p| p.display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        match onnx.as_slice() {
            [] => {
                bail!("{model} is a folder with no ONNX file in it: give the path of an ONNX file")
            }
            _ => bail!(
                "{model} is a folder: give the ONNX file itself ({})",
                onnx.join(", ")
            ),
        }
    }
    let bytes = std::fs::read(path).with_context(|| format!("read {model}"))?;
    if bytes.starts_with(b"PK\x03\x04") || bytes.first() == Some(&0x80) {
        bail!(
            "{model} is not an ONNX file{}",
            crate::encoder::not_onnx_hint(&bytes)
        );
    }
    Ok(bytes)
}

/// The card keys the flags (or `--card`) set otherwise than model `info`'s
/// card, each as `key: <registered> registered, <given> given`. A card for
/// a file is whole (a preset left out is "none", a temperature left out
/// beside a loss is "not given"); with `only_given`, as for a registered
/// name, the keys left out are not compared.
fn card_differences(card: &toml::Table, info: &proto::ModelInfo, only_given: bool) -> Vec<String> {
    let get = |section: &str, key: &str| card.get(section).and_then(|t| t.get(key));
    let text = |v: Option<&toml::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let training = info.training.clone().unwrap_or_default();
    let input = info.input.clone().unwrap_or_default();
    let tau = get("training", "temperature")
        .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)));
    let given_tau = match tau {
        Some(t) => Some(format!("{t}")),
        None if !only_given && get("training", "loss").is_some() => {
            Some(crate::registry::card::NOT_GIVEN.into())
        }
        None => None,
    };
    let explicit = ["scale", "mean", "std"]
        .iter()
        .all(|k| get("input", k).is_some());
    let compare_preset = !explicit && (!only_given || get("input", "preset").is_some());
    let preset = compare_preset.then(|| {
        let had = if input.preset.is_empty() {
            "scale, mean and std".to_string()
        } else {
            input.preset.clone()
        };
        let given = text(get("input", "preset")).unwrap_or_else(|| "none".into());
        (had, given)
    });
    let mut keys = vec![
        (
            "training.loss",
            training.loss,
            text(get("training", "loss")),
        ),
        (
            "training.loss_name",
            training.loss_name,
            text(get("training", "loss_name")),
        ),
        (
            "training.temperature",
            format!("{}", training.temperature),
            given_tau,
        ),
        ("training.run", training.run, text(get("training", "run"))),
        (
            "training.step",
            training.step.to_string(),
            get("training", "step")
                .and_then(|v| v.as_integer())
                .map(|v| v.to_string()),
        ),
        ("input.resize", input.resize, text(get("input", "resize"))),
        (
            "outputs.embedding",
            info.embedding_output.clone(),
            text(get("outputs", "embedding")),
        ),
        (
            "outputs.features",
            info.feature_output.clone().unwrap_or_default(),
            text(get("outputs", "features")),
        ),
    ];
    if let Some((had, given)) = preset {
        keys.push(("input.preset", had, Some(given)));
    }
    let mut differ = crate::registry::card::differing(keys);
    let sections = ["training", "tags"];
    for (key, value) in sections
        .iter()
        .filter_map(|s| card.get(*s).and_then(|t| t.as_table()))
        .flatten()
        .filter(|(k, _)| !crate::registry::card::MEASURED_KEYS.contains(&k.as_str()))
    {
        let given = crate::registry::card::tag_text(value);
        let had = info.tags.get(key).cloned().unwrap_or_default();
        if had != given
            && !differ
                .iter()
                .any(|d| d.starts_with(&format!("training.{key}:")))
        {
            differ.push(format!("tag {key}: {had:?} registered, {given:?} given"));
        }
    }
    differ
}

/// Whether the flags say anything about the card.
fn card_given(card: &CardArgs) -> bool {
    card.card.is_some()
        || card.loss.is_some()
        || card.tau.is_some()
        || card.preset.is_some()
        || card.resize.is_some()
        || card.embedding_output.is_some()
        || card.features_output.is_some()
        || card.run.is_some()
        || card.step.is_some()
        || card.loss_name.is_some()
        || !card.tags.is_empty()
}

/// Whether flags that would set the card (all but `--tag`, which tags the
/// evaluation) were given.
fn card_flags_given(card: &CardArgs) -> bool {
    card_given(&CardArgs {
        tags: Vec::new(),
        ..card.clone()
    })
}

/// A registered model named with card flags: the flags must agree with its
/// card, for a model is evaluated with the card it was registered with.
/// Each differing key is named, with the two ways forward.
async fn check_card_of_name(
    conn: &Connection,
    model: &str,
    card: &CardArgs,
    name: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(n) = name.filter(|n| *n != model) {
        bail!(
            "--name {n} names the model a file is registered as, but {model} is already a \
             registered model: leave --name out, or give the ONNX file's path"
        );
    }
    if !card_flags_given(card) {
        return Ok(());
    }
    let given = card_table(&CardArgs {
        tags: Vec::new(),
        ..card.clone()
    })?;
    let info = conn
        .models()
        .await?
        .get_model(proto::GetModelRequest {
            name: model.to_string(),
        })
        .await?
        .into_inner();
    let differ = card_differences(&given, &info, true);
    if differ.is_empty() {
        return Ok(());
    }
    bail!(
        "model {model} is registered with another card ({}): a registered model is evaluated \
         with its own card. To change its card: `embedeval models add {model} --onnx \
         <its ONNX file> --replace` with the new flags; to evaluate a variant, give the ONNX \
         file's path instead of the name (it is registered as a model of its own)",
        differ.join("; ")
    )
}

/// The registry name for a model argument. A name is used as it is. An
/// ONNX file is a model by its content *and* its card: the registered model
/// with the same sha256 and a card that agrees with the flags (or, with no
/// card flags, the only one with that sha256); otherwise the file is
/// registered now, as `name` or `onnx-<first 12 hex of its sha256>` (with
/// the card's own hash after it when that is taken by another card).
pub async fn model_name(
    conn: &Connection,
    model: &str,
    card: &CardArgs,
    name: Option<&str>,
) -> anyhow::Result<String> {
    if !is_path_argument(model) {
        let path = Path::new(model);
        if path.exists() && !registered(conn).await?.iter().any(|m| m.name == model) {
            // `eval j6` where j6 is a folder or a file here, not a model.
            check_model_file(model)?;
        } else {
            check_card_of_name(conn, model, card, name).await?;
            return Ok(model.to_string());
        }
    }
    let bytes = check_model_file(model)?;
    let sha256 = crate::registry::sha256_hex(&bytes);
    drop(bytes);
    let path = Path::new(model);
    let models = registered(conn).await?;
    let same_file: Vec<&proto::ModelInfo> = models.iter().filter(|m| m.sha256 == sha256).collect();
    let given = card_given(card);
    let wanted: Option<toml::Table> = if given {
        Some(card_toml(card)?.parse()?)
    } else {
        None
    };
    let agrees = |m: &proto::ModelInfo| {
        wanted
            .as_ref()
            .is_none_or(|w| card_differences(w, m, false).is_empty())
    };
    let named = |m: &proto::ModelInfo| name.is_none_or(|n| m.name == n);
    if let Some(seen) = same_file.iter().find(|m| named(m) && agrees(m)) {
        eprintln!(
            "{model} is model {} (same sha256 {} and {})",
            seen.name,
            &sha256[..12],
            if given {
                "the same card"
            } else {
                "no card flags given: its registered card"
            }
        );
        return Ok(seen.name.clone());
    }
    let Some(wanted) = wanted else {
        bail!("{}", crate::registry::card::MISSING_LOSS);
    };
    if let Some(n) = name {
        if let Some(other) = models.iter().find(|m| m.name == n) {
            let why = if other.sha256 == sha256 {
                format!(
                    "another card ({})",
                    card_differences(&wanted, other, false).join("; ")
                )
            } else {
                format!("another ONNX file (sha256 {}…)", &other.sha256[..12])
            };
            bail!(
                "model {n} exists with {why}: give another --name, or replace it with \
                 `embedeval models add {n} --onnx {model} --replace …`"
            );
        }
    }
    let text = toml::to_string(&wanted)?;
    let new_name = match name {
        Some(n) => n.to_string(),
        None => {
            let plain = format!("onnx-{}", &sha256[..12]);
            if models.iter().any(|m| m.name == plain) {
                let card_hash = crate::registry::sha256_hex(text.as_bytes());
                format!("{plain}-{}", &card_hash[..8])
            } else {
                plain
            }
        }
    };
    // Told against the registered card nearest to the one given.
    let nearest = same_file
        .iter()
        .map(|m| (card_differences(&wanted, m, false), m))
        .min_by_key(|(diff, _)| diff.len());
    if let Some((diff, nearest)) = nearest {
        eprintln!(
            "{model} has the ONNX file of model {} but another card ({}): registering it as \
             model {new_name}",
            nearest.name,
            diff.join("; ")
        );
    }
    let info = upload(conn, &new_name, path, text, false).await?;
    let (from_graph, defaulted): (Vec<&String>, Vec<&String>) = info
        .inferred
        .iter()
        .partition(|k| !matches!(k.as_str(), "input.preset" | "input.resize"));
    let list = |keys: &[&String]| {
        if keys.is_empty() {
            "nothing".to_string()
        } else {
            keys.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    eprintln!(
        "registered {model} as model {} ({} read off the graph; {} filled by defaults)",
        info.name,
        list(&from_graph),
        list(&defaulted)
    );
    for warning in &info.warnings {
        eprintln!("warning: {}", super::flags::as_flags(warning));
    }
    Ok(info.name)
}
