//! The client subcommands' calls to a running server: `models`, `datasets`
//! and `embed`, `eval`, `compare` and `evaluations`, each a function that
//! talks to the server and hands what comes back to [`super::render`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::json;

use crate::data::npy::NpyArray;
use crate::proto;

use super::args::{
    CompareArgs, ComparisonsCommand, Connection, DatasetsCommand, EmbedArgs, EvalArgs,
    EvaluationsCommand, FigureArgs, FigureKind, ModelsCommand, PlotArgs,
};
use super::output::{print_json, print_message, Format, Listing};
use super::register;
use super::render::{bar, print_accepted, StageBar, Unit};

const CHUNK: usize = 1 << 20;

/// Runs `embedeval models …`.
pub async fn models(conn: &Connection, cmd: ModelsCommand) -> anyhow::Result<()> {
    let mut client = conn.models().await?;
    match cmd {
        ModelsCommand::Ls { tags } => {
            let list = client
                .list_models(proto::ListModelsRequest {
                    tags: super::args::tag_map(&tags)?,
                })
                .await?
                .into_inner();
            if conn.output() == Format::Json {
                return print_message("ListModelsResponse", &list);
            }
            let rows: Vec<Vec<String>> = list
                .models
                .iter()
                .map(|m| {
                    let t = m.training.clone().unwrap_or_default();
                    let i = m.input.clone().unwrap_or_default();
                    let dim = m
                        .outputs
                        .iter()
                        .find(|o| o.name == m.embedding_output)
                        .map_or(0, |o| o.dim);
                    vec![
                        m.name.clone(),
                        if t.loss_name.is_empty() {
                            t.loss
                        } else {
                            format!("{} ({})", t.loss, t.loss_name)
                        },
                        format!("{}", t.temperature),
                        t.dataset,
                        format!("{:?}", i.shape),
                        dim.to_string(),
                        m.execution_provider.clone(),
                        m.sha256[..12.min(m.sha256.len())].to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                Listing::new(
                    &[
                        "name",
                        "loss",
                        "temperature",
                        "dataset",
                        "input",
                        "embedding_dim",
                        "execution_provider",
                        "sha256",
                    ],
                    rows,
                )
                .render(conn.output())
            );
            for s in &list.skipped {
                eprintln!("skipped {}: {}", s.name, s.reason);
            }
        }
        ModelsCommand::Show { name } => {
            let m = client
                .get_model(proto::GetModelRequest { name })
                .await?
                .into_inner();
            print_message("ModelInfo", &m)?;
        }
        ModelsCommand::Add {
            name,
            onnx,
            card,
            replace,
        } => {
            let info =
                register::upload(conn, &name, &onnx, register::card_toml(&card)?, replace).await?;
            print_message("ModelInfo", &info)?;
            for warning in &info.warnings {
                eprintln!("warning: {warning}");
            }
        }
        ModelsCommand::Rm { name } => {
            client
                .delete_model(proto::DeleteModelRequest { name: name.clone() })
                .await?;
            println!("removed model {name}");
        }
        ModelsCommand::Rename { name, new_name } => {
            let info = client
                .rename_model(proto::RenameModelRequest {
                    name: name.clone(),
                    new_name,
                })
                .await?
                .into_inner();
            println!("renamed model {name} to {}", info.name);
        }
    }
    Ok(())
}

/// Every file under `dir`, relative paths with '/'.
fn files_under(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
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
fn one_image_size(files: &[(String, PathBuf)]) -> anyhow::Result<()> {
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
fn dataset_summary(what: &str, d: &proto::DatasetInfo) -> String {
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

/// Runs `embedeval eval …`.
pub async fn eval(conn: &Connection, args: EvalArgs) -> anyhow::Result<()> {
    let mut stream = conn
        .evaluation()
        .await?
        .evaluate(proto::EvaluateRequest {
            model: register::model_name(conn, &args.model, &args.card, args.name.as_deref())
                .await?,
            dataset: args.dataset,
            detach: args.detach,
            test_split: args.splits.test_split,
            train_split: args.splits.train_split,
            spec: Some(args.spec.spec()),
            tags: super::args::tag_map(&args.card.tags)?,
        })
        .await?
        .into_inner();
    follow_evaluation(conn, &mut stream, args.per_class).await
}

/// Shows an Evaluate or WatchEvaluation stream: progress, then the report
/// (and its per-class table when `per_class`).
async fn follow_evaluation(
    conn: &Connection,
    stream: &mut tonic::Streaming<proto::EvaluateEvent>,
    per_class: bool,
) -> anyhow::Result<()> {
    let mut bar = StageBar::new();
    while let Some(event) = next_event(conn, stream, &bar).await? {
        match event.event {
            Some(proto::evaluate_event::Event::Progress(p)) => bar.update(&p),
            Some(proto::evaluate_event::Event::Accepted(a)) => {
                bar.bar.finish_and_clear();
                return print_accepted(conn, &a);
            }
            Some(proto::evaluate_event::Event::Report(r)) => {
                bar.bar.finish_and_clear();
                if conn.output() == Format::Json {
                    print_message("EvaluationReport", &r)?;
                } else {
                    print!(
                        "{}",
                        crate::report::listing(std::slice::from_ref(&r)).render(conn.output())
                    );
                    if per_class {
                        match &r.per_class {
                            Some(p) => {
                                if conn.output() == Format::Table {
                                    println!();
                                }
                                print!(
                                    "{}",
                                    crate::report::per_class_listing(p).render(conn.output())
                                );
                            }
                            None => eprintln!(
                                "no per-class diagnostics in evaluation {} (skipped, or stored before they existed)",
                                r.id
                            ),
                        }
                    }
                }
                for warning in &r.warnings {
                    eprintln!("warning: {warning}");
                }
                let status = proto::EvaluationStatus::try_from(r.status)
                    .unwrap_or(proto::EvaluationStatus::Unspecified);
                if status != proto::EvaluationStatus::Completed {
                    bail!("evaluation {} {}: {}", r.id, status.as_str_name(), r.error);
                }
                if conn.output() != Format::Table {
                    return Ok(());
                }
                println!(
                    "evaluation {} ({:.2} s)",
                    r.id,
                    r.timings.get("total").copied().unwrap_or(0.0)
                );
                return Ok(());
            }
            None => {}
        }
    }
    bail!("the server ended the stream without a report")
}

/// The next message of an attached job's stream (None at its end); at
/// Ctrl-C the job is cancelled and the error names it ([`interrupted`]).
async fn next_event<T>(
    conn: &Connection,
    stream: &mut tonic::Streaming<T>,
    bar: &StageBar,
) -> anyhow::Result<Option<T>> {
    tokio::select! {
        event = stream.message() => Ok(event?),
        _ = tokio::signal::ctrl_c() => {
            bar.bar.finish_and_clear();
            interrupted(conn, &bar.evaluation_id).await.map(|()| None)
        }
    }
}

/// Ctrl-C on an attached evaluation: cancels it (the server would on the
/// stream's end too, but this waits until it is recorded) and says which.
async fn interrupted(conn: &Connection, id: &str) -> anyhow::Result<()> {
    if id.is_empty() {
        bail!("interrupted before the server named the evaluation: nothing was evaluated");
    }
    let status = match conn.evaluation().await {
        Ok(mut client) => client
            .cancel_evaluation(proto::CancelEvaluationRequest { id: id.to_string() })
            .await
            .ok()
            .and_then(|r| proto::EvaluationStatus::try_from(r.into_inner().status).ok()),
        Err(_) => None,
    };
    match status {
        Some(proto::EvaluationStatus::Cancelled) | None => {
            bail!("interrupted: evaluation {id} cancelled, with the rest of its job (Ctrl-C)")
        }
        Some(other) => bail!(
            "interrupted: evaluation {id} had already ended ({})",
            other.as_str_name()
        ),
    }
}

/// Prints the models a comparison left out, each with why.
fn print_excluded(excluded: &[proto::ExcludedModel]) {
    if excluded.is_empty() {
        return;
    }
    let (dups, unfit): (Vec<_>, Vec<_>) = excluded.iter().partition(|e| e.kind == "duplicate");
    if !unfit.is_empty() {
        eprintln!("left out, they do not take the dataset's images:");
        for e in unfit {
            eprintln!("  {}: {}", e.model, e.reason);
        }
    }
    for e in dups {
        eprintln!("left out {}: {}", e.model, e.reason);
    }
}

/// Runs `embedeval compare …`.
pub async fn compare(conn: &Connection, args: CompareArgs) -> anyhow::Result<()> {
    if args.all != args.models.is_empty() {
        bail!("name the models to compare, or pass --all (not both)");
    }
    let mut models = Vec::with_capacity(args.models.len());
    for model in &args.models {
        models.push(register::model_name(conn, model, &args.card, None).await?);
    }
    let mut stream = conn
        .evaluation()
        .await?
        .compare(proto::CompareRequest {
            models,
            dataset: args.dataset,
            detach: args.detach,
            test_split: args.splits.test_split,
            train_split: args.splits.train_split,
            spec: Some(args.spec.spec()),
            tags: super::args::tag_map(&args.where_tags)?,
            by: args.by.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    let mut bar = StageBar::new();
    while let Some(event) = next_event(conn, &mut stream, &bar).await? {
        match event.event {
            Some(proto::compare_event::Event::Progress(p)) => bar.update(&p),
            Some(proto::compare_event::Event::Accepted(a)) => {
                bar.bar.finish_and_clear();
                eprintln!("comparison {}", a.comparison_id);
                print_excluded(&a.excluded);
                return print_accepted(conn, &a);
            }
            Some(proto::compare_event::Event::Comparison(c)) => {
                bar.bar.finish_and_clear();
                if conn.output() == Format::Json {
                    print_message("Comparison", &c)?;
                } else {
                    print_rows(conn, &c);
                    if args.recommend {
                        print_recommendations(conn, &c);
                    }
                }
                print_excluded(&c.excluded);
                let mut warned = std::collections::BTreeSet::new();
                for r in &c.rows {
                    for warning in &r.warnings {
                        if warned.insert((r.model.clone(), warning.clone())) {
                            eprintln!("warning: {}: {warning}", r.model);
                        }
                    }
                }
                // A figure that cannot be drawn (nothing completed, a
                // metric skipped) does not hide the table.
                for (kind, path) in [
                    (FigureKind::Ut, &args.plot),
                    (FigureKind::Accuracy, &args.accuracy_plot),
                    (FigureKind::Negatives, &args.negatives_plot),
                    (FigureKind::Penalty, &args.penalty_plot),
                    (FigureKind::Classes, &args.classes_plot),
                    (FigureKind::Confusion, &args.confusion_plot),
                    (FigureKind::Pareto, &args.pareto_plot),
                ] {
                    if let Some(path) = path {
                        if let Err(err) = write_figure(conn, &c.id, kind, path, &args.figure).await
                        {
                            eprintln!("{}: not drawn: {err:#}", path.display());
                        }
                    }
                }
                eprintln!(
                    "comparison {0} (draw it again: embedeval plot {0} --kind ut -o ut.png)",
                    c.id
                );
                return Ok(());
            }
            None => {}
        }
    }
    bail!("the server ended the stream without a comparison")
}

/// Asks the server to draw figure `kind` of the stored comparison or
/// evaluation `id` and writes it to `path`.
async fn write_figure(
    conn: &Connection,
    id: &str,
    kind: FigureKind,
    path: &Path,
    how: &FigureArgs,
) -> anyhow::Result<()> {
    let for_kind = |takes: proto::FigureKind, value: &str| {
        if kind.proto() == takes {
            value.to_string()
        } else {
            String::new()
        }
    };
    let figure = conn
        .evaluation()
        .await?
        .render_figure(proto::RenderFigureRequest {
            id: id.to_string(),
            kind: kind.proto() as i32,
            format: how.format_for(path) as i32,
            size: how.size() as i32,
            // Each option goes to the figure that takes it; the others keep
            // their defaults.
            x: for_kind(proto::FigureKind::Accuracy, &how.x),
            group_by: for_kind(proto::FigureKind::Accuracy, &how.group_by),
            label: for_kind(proto::FigureKind::UniformityTolerance, &how.label),
        })
        .await?
        .into_inner();
    std::fs::write(path, &figure.data).with_context(|| format!("write {}", path.display()))?;
    eprintln!(
        "{}: {} × {} px, {} models, {} marks",
        path.display(),
        figure.width,
        figure.height,
        figure.evaluation_ids.len(),
        figure.marks
    );
    Ok(())
}

/// Runs `embedeval plot …`.
pub async fn plot(conn: &Connection, args: PlotArgs) -> anyhow::Result<()> {
    write_figure(conn, &args.id, args.kind, &args.output, &args.figure).await
}

/// A comparison's rows in the connection's format: one per model, or one
/// per group when it is aggregated along a tag (`--by`).
fn print_rows(conn: &Connection, c: &proto::Comparison) {
    let listing = if c.by.is_empty() {
        crate::report::listing(&c.rows)
    } else {
        let csv = conn.output() == Format::Csv;
        crate::report::groups::group_listing(&c.groups, &c.by, csv)
    };
    print!("{}", listing.render(conn.output()));
}

/// Runs `embedeval comparisons …`.
pub async fn comparisons(conn: &Connection, cmd: ComparisonsCommand) -> anyhow::Result<()> {
    let mut client = conn.evaluation().await?;
    match cmd {
        ComparisonsCommand::Ls { dataset, limit } => {
            let list = client
                .list_comparisons(proto::ListComparisonsRequest {
                    dataset,
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            if conn.output() == Format::Json {
                return print_message("ListComparisonsResponse", &list);
            }
            let rows: Vec<Vec<String>> = list
                .comparisons
                .iter()
                .map(|c| {
                    let models = match c.models.as_slice() {
                        m if m.len() <= 4 => m.join(" "),
                        m => format!("{} … ({} models)", m[..3].join(" "), m.len()),
                    };
                    vec![
                        c.id.clone(),
                        c.dataset.clone(),
                        c.dataset_ids.join(" "),
                        super::render::timestamp(c.created_at.as_ref()),
                        c.num_evaluations.to_string(),
                        c.num_excluded.to_string(),
                        models,
                    ]
                })
                .collect();
            print!(
                "{}",
                Listing::new(
                    &[
                        "id",
                        "dataset",
                        "dataset_id",
                        "created",
                        "evaluations",
                        "excluded",
                        "models"
                    ],
                    rows
                )
                .render(conn.output())
            );
            if !list.next_page_token.is_empty() {
                eprintln!(
                    "more comparisons than --limit {limit}: raise it to see them",
                    limit = list.comparisons.len()
                );
            }
            Ok(())
        }
        ComparisonsCommand::Show { id, by, recommend } => {
            let c = client
                .get_comparison(proto::GetComparisonRequest {
                    id,
                    by: by.unwrap_or_default(),
                })
                .await?
                .into_inner();
            if conn.output() == Format::Json {
                return print_message("Comparison", &c);
            }
            print_rows(conn, &c);
            if recommend {
                print_recommendations(conn, &c);
            }
            print_excluded(&c.excluded);
            Ok(())
        }
        ComparisonsCommand::Rm { ids } => {
            for id in ids {
                client
                    .delete_comparison(proto::DeleteComparisonRequest { id: id.clone() })
                    .await?;
                println!("removed comparison {id} (its evaluations stay)");
            }
            Ok(())
        }
    }
}

/// Prints a comparison's recommendations: per loss its table, the reason
/// (and the tie-break when one decided), and the classes whose tolerance
/// falls most.
fn print_recommendations(conn: &Connection, c: &proto::Comparison) {
    for r in &c.recommendations {
        match conn.output() {
            Format::Table => println!("\nloss {}:", r.loss),
            Format::Markdown => println!("\n**loss {}**\n", r.loss),
            _ => {}
        }
        let listing = crate::report::recommendation_listing(r, &c.rows);
        print!("{}", listing.render(conn.output()));
        let falls: Vec<String> = r
            .tolerance_falls
            .iter()
            .take(5)
            .map(|c| {
                format!(
                    "{} ({:.3} → {:.3})",
                    crate::report::classes::name_or_label(&c.name, c.label),
                    c.at_largest_tau,
                    c.at_smallest_tau
                )
            })
            .collect();
        let falls = (!falls.is_empty()).then(|| {
            format!(
                "tolerance falls most, largest τ → smallest, for classes {}",
                falls.join(", ")
            )
        });
        // Text for people in a table or Markdown; stdout
        // stays the data in CSV and JSON.
        if conn.output() == Format::Table {
            println!("recommended: {}", r.reason);
            if let Some(f) = &falls {
                println!("{f}");
            }
        } else if conn.output() == Format::Markdown {
            println!("\nRecommended: {}.", r.reason);
            if let Some(f) = &falls {
                println!("\nThe {f}.");
            }
        } else {
            eprintln!("recommended ({}): {}", r.loss, r.reason);
            if let Some(f) = &falls {
                eprintln!("{f}");
            }
        }
    }
    if c.recommendations.is_empty() {
        eprintln!("no recommendation: no completed model has both uniformity and tolerance");
    }
}

/// Runs `embedeval evaluations …`.
pub async fn evaluations(conn: &Connection, cmd: EvaluationsCommand) -> anyhow::Result<()> {
    let mut client = conn.evaluation().await?;
    match cmd {
        EvaluationsCommand::Ls {
            model,
            dataset,
            limit,
        } => {
            let list = client
                .list_evaluations(proto::ListEvaluationsRequest {
                    model,
                    dataset,
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            if conn.output() == Format::Json {
                return print_message("ListEvaluationsResponse", &list);
            }
            let rows: Vec<Vec<String>> = list
                .evaluations
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.model.clone(),
                        r.dataset.clone(),
                        crate::report::short_dataset_id(&r.dataset_id),
                        proto::EvaluationStatus::try_from(r.status)
                            .map(|s| s.as_str_name().to_string())
                            .unwrap_or_default(),
                        r.uniformity.map_or("-".into(), |u| format!("{u:.4}")),
                        r.tolerance.map_or("-".into(), |u| format!("{u:.4}")),
                    ]
                })
                .collect();
            print!(
                "{}",
                Listing::new(
                    &[
                        "id",
                        "model",
                        "dataset",
                        "dataset_id",
                        "status",
                        "uniformity",
                        "tolerance"
                    ],
                    rows,
                )
                .render(conn.output())
            );
        }
        EvaluationsCommand::Show { id } => {
            let r = client
                .get_evaluation(proto::GetEvaluationRequest { id })
                .await?
                .into_inner();
            print_message("EvaluationReport", &r)?;
        }
        EvaluationsCommand::Watch { id } => {
            let mut stream = client
                .watch_evaluation(proto::WatchEvaluationRequest { id })
                .await?
                .into_inner();
            follow_evaluation(conn, &mut stream, false).await?;
        }
        EvaluationsCommand::Rm { ids } => {
            for id in ids {
                client
                    .delete_evaluation(proto::DeleteEvaluationRequest { id: id.clone() })
                    .await?;
                println!("removed evaluation {id}");
            }
        }
        EvaluationsCommand::Cancel { id } => {
            let r = client
                .cancel_evaluation(proto::CancelEvaluationRequest { id: id.clone() })
                .await?
                .into_inner();
            println!(
                "{id}: {}",
                proto::EvaluationStatus::try_from(r.status)
                    .map(|s| s.as_str_name())
                    .unwrap_or("?")
            );
        }
    }
    Ok(())
}
