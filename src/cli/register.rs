//! Models from files: the card built from `--card` and flags, the upload,
//! and the lookup that lets `eval ./model.onnx` register a file once (by
//! its content's sha256) and reuse it afterwards.

use std::path::Path;

use anyhow::{bail, Context};

use super::args::{CardArgs, Connection};
use super::render::bar;
use crate::proto;

/// Bytes of ONNX per upload message.
const CHUNK: usize = 1 << 20;

/// The card's TOML: the `--card` file (if any) with the flags' keys set over it.
pub fn card_toml(args: &CardArgs) -> anyhow::Result<String> {
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
    let has_loss = card.get("training").and_then(|t| t.get("loss")).is_some();
    if !has_loss {
        bail!("the model needs its training loss: give --loss (and --tau), or --card model.toml");
    }
    Ok(toml::to_string(&card)?)
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
    let progress = bar(bytes.len() as u64, "upload");
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
        .list_models(proto::ListModelsRequest {})
        .await?
        .into_inner()
        .models)
}

/// Whether a model argument names a file rather than a registered model.
fn is_file_argument(model: &str) -> bool {
    (model.contains('/') || model.ends_with(".onnx")) && Path::new(model).is_file()
}

/// The registry name for a model argument: a name as it is; an ONNX file
/// by its content: the model already registered with the same sha256, or
/// the file registered now as `onnx-<first 12 hex of its sha256>`.
pub async fn model_name(conn: &Connection, model: &str, card: &CardArgs) -> anyhow::Result<String> {
    if !is_file_argument(model) {
        return Ok(model.to_string());
    }
    let path = Path::new(model);
    let bytes = std::fs::read(path).with_context(|| format!("read {model}"))?;
    let sha256 = crate::registry::sha256_hex(&bytes);
    drop(bytes);
    let models = registered(conn).await?;
    if let Some(seen) = models.iter().find(|m| m.sha256 == sha256) {
        eprintln!(
            "{model} is model {} (same sha256 {}); its card is the one registered",
            seen.name,
            &sha256[..12]
        );
        return Ok(seen.name.clone());
    }
    let name = format!("onnx-{}", &sha256[..12]);
    let info = upload(conn, &name, path, card_toml(card)?, false).await?;
    eprintln!(
        "registered {model} as model {} ({} inferred from the graph)",
        info.name,
        if info.inferred.is_empty() {
            "nothing".to_string()
        } else {
            info.inferred.join(", ")
        }
    );
    Ok(info.name)
}
