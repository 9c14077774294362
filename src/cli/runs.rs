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
use crate::report::{figures, metric_cells, METRIC_COLUMNS};

/// The columns of a run's path (the last, the status, is left out of
/// `watch`'s lines).
fn header() -> Vec<&'static str> {
    ["step", "model"]
        .into_iter()
        .chain(METRIC_COLUMNS)
        .chain(["status"])
        .collect()
}

/// One row of a run's path.
fn row(c: &proto::Checkpoint) -> Vec<String> {
    let mut cells = vec![c.step.to_string(), c.model.clone()];
    match &c.report {
        Some(r) => {
            cells.extend(metric_cells(r));
            cells.push("COMPLETED".into());
        }
        None => {
            cells.extend(METRIC_COLUMNS.map(|_| "-".to_string()));
            cells.push("not evaluated".into());
        }
    }
    cells
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
                "temperature",
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
            print!("{}", Listing::new(&header(), rows).render(conn.output()));
            for w in &run.warnings {
                eprintln!("warning: {}", w.message);
            }
            // The table's last line; other formats keep stdout to the data.
            if let Some(keep) = &run.checkpoint_to_keep {
                let line = format!("checkpoint to keep: {} ({})", keep.recommended, keep.reason);
                if conn.output() == Format::Table {
                    println!("{line}");
                } else {
                    eprintln!("{line}");
                }
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
        .and_then(|s| u64::try_from(s).ok())
    {
        return Some(step);
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
            tags: super::args::tag_map(&args.card.tags)?,
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

/// One row of `watch`'s table: fixed widths, printed as each checkpoint lands.
fn watch_line(cells: &[String]) -> String {
    const WIDTHS: [usize; 11] = [6, 24, 10, 9, 9, 7, 7, 7, 7, 8, 11];
    cells
        .iter()
        .zip(WIDTHS)
        .map(|(c, w)| format!("{c:<w$}"))
        .collect::<Vec<_>>()
        .join("  ")
        .trim_end()
        .to_string()
}

/// What became of one checkpoint file.
enum Handled {
    /// Evaluated now, or found already evaluated (by content).
    Done,
    /// Not taken: why (said once; the file is left out until it changes).
    Rejected(String),
}

/// Whether some `*.toml` side-car card sits in `dir`.
fn has_sidecars(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().extension().is_some_and(|x| x == "toml"))
    })
}

/// Runs `embedeval watch …`. What is wrong with the watch itself (no run,
/// no loss and no side-car cards, an unknown loss, a dataset the server
/// does not have, a folder that is not there) stops it at once with the
/// message. One checkpoint's trouble (a file gone, a side-car that does not
/// parse or lacks the loss, a card or graph refused) leaves that file out
/// until it changes; only what may pass (the server unreachable, an
/// evaluation interrupted) is tried again at the next look. `--once` exits
/// non-zero when a checkpoint was left out or failed.
pub async fn watch(conn: &Connection, args: WatchArgs) -> anyhow::Result<()> {
    let Some(run) = args.card.run.clone() else {
        bail!("watch needs the run the checkpoints belong to: --run NAME");
    };
    if args.card.step.is_some() {
        bail!("watch reads each checkpoint's step from its file name or side-car card, not --step");
    }
    if !args.dir.is_dir() {
        bail!("{}: no such folder to watch", args.dir.display());
    }
    // The card the flags give must hold: checked now, not once per file.
    let mut flags_card = args.card.clone();
    flags_card.run = Some(run.clone());
    if let Err(err) = register::card_toml(&flags_card) {
        let no_loss = args.card.loss.is_none() && args.card.card.is_none();
        if !(no_loss && has_sidecars(&args.dir)) {
            bail!("{err:#}");
        }
    }
    // The dataset must be there.
    conn.datasets()
        .await?
        .get_dataset(proto::GetDatasetRequest {
            name: args.dataset.clone(),
        })
        .await?;
    // The checkpoints are registered as <run>-step<N>: the run must make a
    // valid model name.
    crate::registry::validate_name("run", &format!("{run}-step0"))?;
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
    let header = header();
    let header: Vec<String> = header[..header.len() - 1]
        .iter()
        .map(|h| h.to_string())
        .collect();
    println!("{}", watch_line(&header));
    let mut seen: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
    // Files handled (or left out) as they were then: not read again until
    // they change.
    let mut handled: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
    let mut left_out = 0usize;
    loop {
        let now = scan(&args.dir)?;
        // Complete: the same size and time as at the previous look.
        let mut ready: Vec<(u64, PathBuf)> = Vec::new();
        for (path, stat) in &now {
            if seen.get(path) != Some(stat) || handled.get(path) == Some(stat) {
                continue;
            }
            match step_for(path) {
                Ok(step) => ready.push((step, path.clone())),
                Err(why) => {
                    eprintln!("{}: {why}; left out", path.display());
                    handled.insert(path.clone(), *stat);
                    left_out += 1;
                }
            }
        }
        ready.sort();
        for (step, path) in ready {
            let stat = now[&path];
            match checkpoint(conn, &args, &run, step, &path, &mut done).await {
                Ok(Handled::Done) => {}
                Ok(Handled::Rejected(why)) => {
                    eprintln!("{}: {why}; left out until it changes", path.display());
                    left_out += 1;
                }
                Err(err) if args.once => {
                    eprintln!("{}: {err:#}", path.display());
                    left_out += 1;
                }
                Err(err) => {
                    // Tried again at the next look.
                    eprintln!("{}: {err:#}; trying again", path.display());
                    continue;
                }
            }
            handled.insert(path, stat);
            match get_run(conn, &run, &args.dataset).await {
                Ok(r) => {
                    for w in r.warnings {
                        if warned.insert(w.kind.clone()) {
                            println!("warning: {}", w.message);
                        }
                    }
                }
                Err(err) => eprintln!("run {run}: {err:#}"),
            }
        }
        if args.once && !seen.is_empty() {
            if left_out > 0 {
                bail!("{left_out} checkpoint file(s) not evaluated (see above)");
            }
            return Ok(());
        }
        seen = now;
        if args.once && seen.is_empty() {
            eprintln!("{}: no ONNX checkpoint to evaluate", args.dir.display());
            return Ok(());
        }
        tokio::time::sleep(poll).await;
    }
}

/// The step of checkpoint `path`: from its side-car card, else its name.
fn step_for(path: &Path) -> Result<u64, String> {
    let sidecar_path = path.with_extension("toml");
    let sidecar: Option<toml::Table> = if sidecar_path.is_file() {
        let text = std::fs::read_to_string(&sidecar_path)
            .map_err(|e| format!("read {}: {e}", sidecar_path.display()))?;
        Some(
            text.parse()
                .map_err(|e| format!("parse {}: {e}", sidecar_path.display()))?,
        )
    } else {
        None
    };
    step_of(path, sidecar.as_ref())
        .ok_or_else(|| "no step in its name or side-car card".to_string())
}

/// Registers (if needed) and evaluates one complete checkpoint file, and
/// prints its row. A file whose content is already evaluated is done.
async fn checkpoint(
    conn: &Connection,
    args: &WatchArgs,
    run: &str,
    step: u64,
    path: &Path,
    done: &mut BTreeSet<String>,
) -> anyhow::Result<Handled> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Handled::Rejected("gone".into()))
        }
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let sha256 = crate::registry::sha256_hex(&bytes);
    drop(bytes);
    if done.contains(&sha256) {
        return Ok(Handled::Done);
    }
    let name = match checkpoint_model(conn, args, run, step, path, &sha256).await {
        Ok(name) => name,
        Err(err) => match err.downcast_ref::<tonic::Status>().map(|s| s.code()) {
            // The card or the graph is refused: not worth retrying as is.
            Some(tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition) => {
                return Ok(Handled::Rejected(format!("{err:#}")))
            }
            _ => return Err(err),
        },
    };
    let report = evaluate(conn, &name, args).await?;
    done.insert(sha256);
    let completed = report.status == proto::EvaluationStatus::Completed as i32;
    if !completed {
        eprintln!(
            "{name}: {} ({})",
            report.status().as_str_name(),
            report.error
        );
    }
    let c = proto::Checkpoint {
        step,
        model: name,
        model_sha256: report.model_sha256.clone(),
        report: completed.then_some(report),
    };
    let cells = row(&c);
    println!("{}", watch_line(&cells[..cells.len() - 1]));
    Ok(Handled::Done)
}

/// The registry name of checkpoint `path` of `run` at `step`: the model
/// registered with its content as that checkpoint, else the file
/// registered now as `<run>-step<step>` with the card flags (over its
/// side-car card), or `<run>-step<step>-<sha256 prefix>` when that name is
/// taken by other bytes (a step exported again).
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
    let mut name = format!("{run}-step{step}");
    if models.iter().any(|m| m.name == name) {
        name = format!("{name}-{}", &sha256[..8]);
    }
    let card = register::card_toml(&card)
        .map_err(|e| anyhow::Error::new(tonic::Status::invalid_argument(format!("{e:#}"))))?;
    let info = register::upload(conn, &name, path, card, false).await?;
    Ok(info.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_step_comes_from_its_side_car_else_its_name() {
        let p = Path::new("/x/epoch_012.onnx");
        assert_eq!(step_of(p, None), Some(12));
        assert_eq!(
            step_of(Path::new("/x/run3-ckpt-0450.onnx"), None),
            Some(450)
        );
        assert_eq!(step_of(Path::new("/x/final.onnx"), None), None);
        let card: toml::Table = "[training]\nstep = 7\n".parse().unwrap();
        assert_eq!(step_of(p, Some(&card)), Some(7));
        // A side-car without a step (or a negative one) leaves the name's.
        let card: toml::Table = "[training]\nstep = -1\n".parse().unwrap();
        assert_eq!(step_of(p, Some(&card)), Some(12));
    }
}
