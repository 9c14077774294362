//! `embedeval datasets …`: list, show, upload (a folder, checked before it is sent) and remove datasets.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::proto;

use super::super::args::{Connection, DatasetsCommand};
use super::super::output::{print_message, Format, Listing};
use super::super::render::{bar, Unit};

pub(super) const CHUNK: usize = 1 << 20;

/// Every file under `dir`, relative paths with '/'.
pub(super) fn files_under(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&path).with_context(|| format!("read {}", path.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if entry.path().is_dir() {
                stack.push((entry.path(), rel));
            } else {
                out.push((rel, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The images of a folder uploaded without `--image-size` must share one
/// size: checked from their headers before anything is sent, the sizes
/// found named with a file of each.
pub(super) fn one_image_size(files: &[(String, PathBuf)]) -> anyhow::Result<()> {
    let mut sizes: std::collections::BTreeMap<(u32, u32), (usize, &str)> = Default::default();
    for (rel, path) in files {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg")) {
            continue;
        }
        let Ok(dims) = image::image_dimensions(path) else {
            continue;
        };
        sizes.entry(dims).or_insert((0, rel)).0 += 1;
    }
    if sizes.len() <= 1 {
        return Ok(());
    }
    // (count, (width, height), an example), most common first.
    let mut found: Vec<(usize, (u32, u32), &str)> = sizes
        .iter()
        .map(|(&dims, &(count, example))| (count, dims, example))
        .collect();
    found.sort_by_key(|&(count, _, _)| std::cmp::Reverse(count));
    let listed = found
        .iter()
        .take(4)
        .map(|(count, (w, h), example)| format!("{count} of {w}x{h} (e.g. {example})"))
        .collect::<Vec<_>>()
        .join(", ");
    let more = if found.len() > 4 {
        format!(" and {} more sizes", found.len() - 4)
    } else {
        String::new()
    };
    let side = found[0].1 .0.min(found[0].1 .1);
    bail!(
        "the images are of {} sizes: {listed}{more}; nothing was uploaded. Give --image-size N \
         to bring each to N x N (shorter side resized, centre cropped), e.g. --image-size {side} \
         or the size your model takes",
        found.len()
    )
}

/// Runs `embedeval datasets …`.
pub async fn datasets(conn: &Connection, cmd: DatasetsCommand) -> anyhow::Result<()> {
    let mut client = conn.datasets().await?;
    match cmd {
        DatasetsCommand::Ls => {
            let list = client
                .list_datasets(proto::ListDatasetsRequest {})
                .await?
                .into_inner();
            if conn.output() == Format::Json {
                return print_message("ListDatasetsResponse", &list);
            }
            let rows: Vec<Vec<String>> = list
                .datasets
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.format.clone(),
                        d.num_classes.to_string(),
                        format!("{:?}", d.image_shape),
                        d.splits
                            .iter()
                            .map(|s| format!("{}={}", s.name, s.size))
                            .collect::<Vec<_>>()
                            .join(" "),
                        d.id[..12.min(d.id.len())].to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                Listing::new(
                    &[
                        "name",
                        "format",
                        "num_classes",
                        "image_shape",
                        "splits",
                        "id"
                    ],
                    rows
                )
                .render(conn.output())
            );
        }
        DatasetsCommand::Show { name } => {
            let d = client
                .get_dataset(proto::GetDatasetRequest { name })
                .await?
                .into_inner();
            print_message("DatasetInfo", &d)?;
        }
        DatasetsCommand::Add {
            name,
            dir,
            replace,
            layout,
        } => {
            let files = files_under(&dir)?;
            if layout.image_size == 0 && !dir.join("dataset.toml").exists() {
                one_image_size(&files)?;
            }
            let (shown_name, shown_dir) = (name.clone(), dir.display().to_string());
            let total: u64 = files
                .iter()
                .map(|(_, p)| p.metadata().map_or(0, |m| m.len()))
                .sum();
            let progress = bar(total, "upload", Unit::Bytes);
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let p = progress.clone();
            let sender = tokio::spawn(async move {
                let header = proto::RegisterDatasetRequest {
                    payload: Some(proto::register_dataset_request::Payload::Header(
                        proto::DatasetUpload {
                            name,
                            format: layout.dataset_format,
                            channels: layout.channels,
                            image_size: layout.image_size,
                            crop_fraction: layout.crop_fraction,
                            test_split: layout.test_split,
                            train_split: layout.train_split,
                            replace,
                        },
                    )),
                };
                if tx.send(header).await.is_err() {
                    return Ok(());
                }
                let count = files.len();
                for (rel, path) in files {
                    let bytes = tokio::fs::read(&path).await?;
                    for chunk in bytes.chunks(CHUNK) {
                        let msg = proto::RegisterDatasetRequest {
                            payload: Some(proto::register_dataset_request::Payload::File(
                                proto::DatasetFileChunk {
                                    path: rel.clone(),
                                    data: chunk.to_vec(),
                                },
                            )),
                        };
                        if tx.send(msg).await.is_err() {
                            return Ok(());
                        }
                        p.inc(chunk.len() as u64);
                    }
                }
                p.finish_and_clear();
                eprintln!("sent {count} files; the server is reading and checking them");
                Ok::<_, std::io::Error>(())
            });
            let info = match client
                .register_dataset(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
            {
                Ok(info) => info.into_inner(),
                Err(status) if status.code() == tonic::Code::AlreadyExists => {
                    bail!(
                        "dataset {shown_name} exists: `embedeval datasets add {shown_name} \
                         {shown_dir} --replace` replaces it (reports made on the old version \
                         keep its content id), or give another name"
                    )
                }
                Err(status) => return Err(status.into()),
            };
            sender.await??;
            if conn.output() == Format::Json {
                print_message("DatasetInfo", &info)?;
            } else {
                print!("{}", dataset_summary("registered dataset", &info));
            }
        }
        DatasetsCommand::Rm { name } => {
            client
                .delete_dataset(proto::DeleteDatasetRequest { name: name.clone() })
                .await?;
            println!("removed dataset {name}");
        }
    }
    Ok(())
}

/// A dataset in a few lines: name, short content id, format, splits with
/// their rows, classes, the image shape (and the size images were brought
/// to).
pub(super) fn dataset_summary(what: &str, d: &proto::DatasetInfo) -> String {
    let splits = d
        .splits
        .iter()
        .map(|s| format!("{} {} rows", s.name, s.size))
        .collect::<Vec<_>>()
        .join(", ");
    let names = match d.class_names.as_slice() {
        [] => String::new(),
        names if names.len() <= 10 => format!(" ({})", names.join(", ")),
        names => format!(" ({}, … {})", names[..8].join(", "), names[names.len() - 1]),
    };
    let shape = d
        .image_shape
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" × ");
    let fitted = if d.image_size > 0 {
        format!(
            " (shorter side resized, centre {} × {} kept)",
            d.image_size, d.image_size
        )
    } else {
        String::new()
    };
    format!(
        "{what} {} (id {}, {})\n  splits: {splits}\n  classes: {}{names}\n  image shape: {shape} \
         (height × width × channels){fitted}\n",
        d.name,
        &d.id[..12.min(d.id.len())],
        d.format,
        d.num_classes,
    )
}
