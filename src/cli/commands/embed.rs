//! `embedeval embed …`: a dataset split's embeddings streamed into a .npy file.

use anyhow::bail;
use serde_json::json;

use crate::data::npy::NpyArray;
use crate::proto;

use super::super::args::{Connection, EmbedArgs};
use super::super::output::{print_json, Format};
use super::super::register;
use super::super::render::{bar, Unit};

/// Runs `embedeval embed …`: streams the rows into a .npy file.
pub async fn embed(conn: &Connection, args: EmbedArgs) -> anyhow::Result<()> {
    let model = register::model_name(conn, &args.model, &args.card, args.name.as_deref()).await?;
    let info = conn
        .datasets()
        .await?
        .get_dataset(proto::GetDatasetRequest {
            name: args.dataset.clone(),
        })
        .await?
        .into_inner();
    let has = |name: &str| info.splits.iter().any(|s| s.name == name);
    let shown_split = [args.split.as_str(), info.test_split.as_str(), "test", "val"]
        .into_iter()
        .find(|s| !s.is_empty() && has(s))
        .unwrap_or(args.split.as_str())
        .to_string();
    let total = info
        .splits
        .iter()
        .find(|s| s.name == shown_split)
        .map_or(0, |s| s.size);
    let progress = bar(total, &format!("embed {model} {shown_split}"), Unit::Rows);
    let mut stream = conn
        .embedding()
        .await?
        .embed(proto::EmbedRequest {
            model: model.clone(),
            dataset: args.dataset.clone(),
            split: args.split.clone(),
            output: args.output.clone(),
            normalize: args.normalize,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut values: Vec<u8> = Vec::new();
    let mut labels: Vec<i64> = Vec::new();
    let mut dim = 0usize;
    let mut rows = 0usize;
    while let Some(msg) = stream.message().await? {
        let Some(t) = msg.embeddings else {
            bail!("a response without embeddings")
        };
        if msg.offset as usize != rows {
            bail!(
                "rows arrived out of order: offset {} after {rows} rows",
                msg.offset
            );
        }
        dim = t.shape.get(1).copied().unwrap_or(0) as usize;
        rows += t.shape.first().copied().unwrap_or(0) as usize;
        values.extend_from_slice(&t.data);
        labels.extend(msg.labels);
        progress.set_position(rows as u64);
    }
    progress.finish_and_clear();
    let array = NpyArray {
        dtype: crate::data::npy::NpyType::F32,
        shape: vec![rows, dim],
        data: values,
    };
    array.write(&args.out)?;
    let labels_path = args.out.with_extension("labels.npy");
    NpyArray {
        dtype: crate::data::npy::NpyType::I64,
        shape: vec![labels.len()],
        data: labels.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
    .write(&labels_path)?;
    if conn.output() == Format::Json {
        print_json(
            &json!({"rows": rows, "dim": dim, "embeddings": args.out, "labels": labels_path}),
        )?;
    } else {
        println!(
            "wrote {rows} x {dim} float32 to {} and the labels to {}",
            args.out.display(),
            labels_path.display()
        );
    }
    Ok(())
}
