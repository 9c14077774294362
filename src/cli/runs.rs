//! Training runs on the command line: `runs ls`, `runs show` (the path of a
//! run, its warnings, its figure) and `watch`, which follows a folder the
//! trainer exports checkpoints to, registering and evaluating each one once
//! (by content), in step order, one table row each.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use super::args::{Connection, RunsCommand, WatchArgs};
use super::output::{print_message, Format, Listing};
use super::register;
use crate::proto;
use crate::report::{figures, opt};

/// The columns of a run's path.
const HEADER: [&str; 12] = [
    "step",
    "model",
    "uniformity",
    "tolerance",
    "alignment",
    "pos_sim",
    "nn1_sim",
    "entropy",
    "erank",
    "knn_top1",
    "linear_top1",
    "status",
];

/// One row of a run's path.
fn row(c: &proto::Checkpoint) -> Vec<String> {
    let Some(r) = &c.report else {
        let mut cells = vec![c.step.to_string(), c.model.clone()];
        cells.extend(std::iter::repeat_n("-".to_string(), 9));
        cells.push("not evaluated".into());
        return cells;
    };
    vec![
        c.step.to_string(),
        c.model.clone(),
        opt(r.uniformity),
        opt(r.tolerance),
        opt(r.alignment),
        opt(r.positive_similarity),
        opt(r.nearest_negative_similarity.first().copied()),
        opt(r.penalty_entropy),
        opt(r.effective_rank),
        opt(r.knn.as_ref().map(|k| k.top1)),
        opt(r.linear.as_ref().map(|l| l.top1)),
        "COMPLETED".into(),
    ]
}

async fn get_run(conn: &Connection, name: &str, dataset: &str) -> anyhow::Result<proto::Run> {
    Ok(conn
        .evaluation()
        .await?
        .get_run(proto::GetRunRequest {
            name: name.to_string(),
            dataset: dataset.to_string(),
        })
        .await?
        .into_inner())
}

/// Runs `embedeval runs …`.
pub async fn runs(conn: &Connection, cmd: RunsCommand) -> anyhow::Result<()> {
    match cmd {
        RunsCommand::Ls => {
            let list = conn
                .evaluation()
                .await?
                .list_runs(proto::ListRunsRequest {})
                .await?
                .into_inner();
            if conn.output() == Format::Json {
                return print_message("ListRunsResponse", &list);
            }
            let rows = list
                .runs
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.checkpoints.to_string(),
                        r.first_step.to_string(),
                        r.last_step.to_string(),
                        r.loss.clone(),
                        format!("{}", r.temperature),
                    ]
                })
                .collect();
            let header = [
                "run",
                "checkpoints",
                "first_step",
                "last_step",
                "loss",
                "tau",
            ];
            print!("{}", Listing::new(&header, rows).render(conn.output()));
            Ok(())
        }
        RunsCommand::Show {
            name,
            dataset,
            plot,
            metrics_plot,
            figure,
        } => {
            let run = get_run(conn, &name, &dataset).await?;
            for (path, metrics) in [(&plot, false), (&metrics_plot, true)] {
                let Some(path) = path else { continue };
                let format = match figure.format_for(path) {
                    proto::FigureFormat::Png => figures::Format::Png,
                    _ => figures::Format::Svg,
                };
                let size = match figure.size() {
                    proto::FigureSize::Column => figures::Size::Column,
                    _ => figures::Size::Screen,
                };
                let drawn = if metrics {
                    figures::render_run_metrics(&run, format, size)?
                } else {
                    figures::render_run(&run, format, size)?
                };
                std::fs::write(path, &drawn.bytes)
                    .with_context(|| format!("write {}", path.display()))?;
                eprintln!("{}: {} marks drawn", path.display(), drawn.marks.len());
            }
            if conn.output() == Format::Json {
                return print_message("Run", &run);
            }
            let rows = run.checkpoints.iter().map(row).collect();
            print!("{}", Listing::new(&HEADER, rows).render(conn.output()));
            for w in &run.warnings {
                eprintln!("warning: {}", w.message);
            }
            Ok(())
        }
    }
}

/// The step a checkpoint file stands for: its side-car card's
/// `[training] step`, else the last number in its file name
/// (`epoch_012.onnx` → 12).
fn step_of(path: &Path, sidecar: Option<&toml::Table>) -> Option<u64> {
    if let Some(step) = sidecar
        .and_then(|t| t.get("training"))
        .and_then(|t| t.get("step"))
        .and_then(toml::Value::as_integer)
    {
        return u64::try_from(step).ok();
    }
    let stem = path.file_stem()?.to_str()?;
    let digits: String = stem
        .chars()
        .rev()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

/// The ONNX files of `dir` (not hidden: a file being written under a dot
/// name and renamed when done is seen only once renamed), with their size
/// and modification time.
fn scan(dir: &Path) -> anyhow::Result<HashMap<PathBuf, (u64, SystemTime)>> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".onnx") {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_file() {
            out.insert(entry.path(), (meta.len(), meta.modified()?));
        }
    }
    Ok(out)
}

/// Evaluates `model` on the dataset; the report.
async fn evaluate(
    conn: &Connection,
    model: &str,
    args: &WatchArgs,
) -> anyhow::Result<proto::EvaluationReport> {
    let mut stream = conn
        .evaluation()
        .await?
        .evaluate(proto::EvaluateRequest {
            model: model.to_string(),
            dataset: args.dataset.clone(),
            spec: Some(args.spec.spec()),
            detach: false,
            test_split: args.splits.test_split.clone(),
            train_split: args.splits.train_split.clone(),
        })
        .await?
        .into_inner();
    while let Some(event) = stream.message().await? {
        if let Some(proto::evaluate_event::Event::Report(r)) = event.event {
            return Ok(r);
        }
    }
    bail!("the server ended the evaluation of {model} without a report")
}

/// Runs `embedeval watch …`.
pub async fn watch(conn: &Connection, args: WatchArgs) -> anyhow::Result<()> {
    let Some(run) = args.card.run.clone() else {
        bail!("watch needs the run the checkpoints belong to: --run NAME");
    };
    if args.card.step.is_some() {
        bail!("watch reads each checkpoint's step from its file name or side-car card, not --step");
    }
    let poll = Duration::from_secs_f64(args.poll.max(0.05));
    // What is already done: checkpoints of the run evaluated on the dataset
    // (by content), and the warnings already shown.
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut warned: BTreeSet<String> = BTreeSet::new();
    match get_run(conn, &run, &args.dataset).await {
        Ok(r) => {
            for c in &r.checkpoints {
                if c.report.is_some() {
                    done.insert(c.model_sha256.clone());
                }
            }
            warned.extend(r.warnings.iter().map(|w| w.kind.clone()));
            eprintln!(
                "run {run}: {} checkpoints already evaluated on {}",
                done.len(),
                args.dataset
            );
        }
        Err(err)
            if err.downcast_ref::<tonic::Status>().map(|s| s.code())
                == Some(tonic::Code::NotFound) => {}
        Err(err) => return Err(err),
    }
    let widths = [6, 24, 10, 9, 9, 7, 7, 7, 7, 8, 11];
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!(
        "{}",
        line(
            &HEADER[..11]
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
        )
    );
    let mut seen: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
    let mut rejected: BTreeSet<PathBuf> = BTreeSet::new();
    loop {
        let now = scan(&args.dir)?;
        // Complete: the same size and time as at the previous look.
        let mut ready: Vec<(u64, PathBuf)> = Vec::new();
        for (path, stat) in &now {
            if seen.get(path) != Some(stat) || rejected.contains(path) {
                continue;
            }
            let sidecar_path = path.with_extension("toml");
            let sidecar: Option<toml::Table> = if sidecar_path.is_file() {
                Some(
                    std::fs::read_to_string(&sidecar_path)?
                        .parse()
                        .with_context(|| format!("parse {}", sidecar_path.display()))?,
                )
            } else {
                None
            };
            match step_of(path, sidecar.as_ref()) {
                Some(step) => ready.push((step, path.clone())),
                None => {
                    eprintln!(
                        "{}: no step in its name or side-car card; left out",
                        path.display()
                    );
                    rejected.insert(path.clone());
                }
            }
        }
        ready.sort();
        for (step, path) in ready {
            let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
            let sha256 = crate::registry::sha256_hex(&bytes);
            drop(bytes);
            if done.contains(&sha256) {
                continue;
            }
            let name = checkpoint_model(conn, &args, &run, step, &path, &sha256).await?;
            let report = evaluate(conn, &name, &args).await?;
            done.insert(sha256);
            let checkpoint = proto::Checkpoint {
                step,
                model: name.clone(),
                model_sha256: report.model_sha256.clone(),
                report: (report.status == proto::EvaluationStatus::Completed as i32)
                    .then_some(report.clone()),
            };
            if checkpoint.report.is_none() {
                eprintln!(
                    "{name}: {} ({})",
                    report.status().as_str_name(),
                    report.error
                );
            }
            println!("{}", line(&row(&checkpoint)[..11]));
            let r = get_run(conn, &run, &args.dataset).await?;
            for w in r.warnings {
                if warned.insert(w.kind.clone()) {
                    println!("warning: {}", w.message);
                }
            }
        }
        if args.once && !seen.is_empty() {
            return Ok(());
        }
        seen = now;
        if args.once && seen.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(poll).await;
    }
}

/// The registry name of checkpoint `path` of `run` at `step`: the model
/// registered with its content as that checkpoint, else the file
/// registered now as `<run>-step<step>` with the card flags (over its
/// side-car card).
async fn checkpoint_model(
    conn: &Connection,
    args: &WatchArgs,
    run: &str,
    step: u64,
    path: &Path,
    sha256: &str,
) -> anyhow::Result<String> {
    let models = register::registered(conn).await?;
    let same_checkpoint = |m: &proto::ModelInfo| {
        m.sha256 == sha256
            && m.training
                .as_ref()
                .is_some_and(|t| t.run == run && t.step == step)
    };
    if let Some(m) = models.iter().find(|m| same_checkpoint(m)) {
        return Ok(m.name.clone());
    }
    let mut card = args.card.clone();
    let sidecar = path.with_extension("toml");
    if sidecar.is_file() {
        card.card = Some(sidecar);
    }
    card.step = Some(step);
    card.run = Some(run.to_string());
    let name = format!("{run}-step{step}");
    let info = register::upload(conn, &name, path, register::card_toml(&card)?, false).await?;
    Ok(info.name)
}
