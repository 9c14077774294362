//! `embedeval watch`: follows a folder a trainer exports checkpoints to,
//! registering and evaluating each one once (by content), in step order,
//! one table row each; a checkpoint's step comes from its side-car card, a
//! step word in its name, or `--step-pattern`.

use super::super::flags::as_flags;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use super::super::args::{Connection, WatchArgs};
use super::super::register;
use super::runs::{get_run, header, row};
use crate::proto;

/// The words that introduce a step in a checkpoint's file name, each
/// followed (after at most one `_`, `-`, `=` or `.`) by the number.
const STEP_WORDS: &str = "step, epoch, iter, ckpt or checkpoint";

/// How the step of a checkpoint is read off its file name: the built-in
/// pattern (a step word followed by a number; the last such in the name, so
/// Lightning's `epoch=3-step=1000` is step 1000) or the user's
/// `--step-pattern`, whose group `step` (else its first group) is the
/// number.
#[derive(Debug, Clone)]
pub struct StepPattern {
    regex: regex::Regex,
    /// The user's pattern, when one was given (said in messages).
    given: Option<String>,
}

impl StepPattern {
    /// The built-in pattern, or `--step-pattern`'s (refused when it does not
    /// compile or has no group to read the number from).
    pub fn new(given: Option<&str>) -> anyhow::Result<Self> {
        let Some(text) = given else {
            let regex = regex::Regex::new(
                r"(?i)(?:^|[^a-z])(?:step|epoch|iteration|iter|ckpt|checkpoint)[-_=.]?(\d+)",
            )
            .expect("the built-in step pattern compiles");
            return Ok(Self { regex, given: None });
        };
        let regex = regex::Regex::new(text).map_err(|e| {
            anyhow::anyhow!("--step-pattern {text:?} is not a regular expression: {e}")
        })?;
        if regex.captures_len() < 2 {
            bail!(
                "--step-pattern {text:?} has no group for the number: put it in parentheses, \
                 e.g. 'model-(\\d+)'"
            );
        }
        Ok(Self {
            regex,
            given: Some(text.to_string()),
        })
    }

    /// The step in file name `stem`, when the pattern finds one.
    fn step_in(&self, stem: &str) -> Option<u64> {
        let caps = self.regex.captures_iter(stem).last()?;
        let group = caps.name("step").or_else(|| caps.get(1))?;
        group.as_str().parse().ok()
    }

    /// Why a file has no step, for the line that leaves it out.
    fn why_none(&self, path: &Path) -> String {
        let sidecar = path.with_extension("toml");
        let sidecar = sidecar
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &self.given {
            Some(p) => format!(
                "no step: --step-pattern {p:?} does not match its name and no side-car \
                 card {sidecar} gives [training] step"
            ),
            None => format!(
                "no step: its name has none ({STEP_WORDS} followed by a number, as in \
                 epoch_12.onnx or ckpt-0500.onnx), no side-car card {sidecar} gives \
                 [training] step, and no --step-pattern was given"
            ),
        }
    }
}

/// The step a checkpoint file stands for: its side-car card's
/// `[training] step`, else the step `pattern` reads off its file name.
/// A number that no step word introduces (`resnet18_last.onnx`) is not a
/// step.
fn step_of(path: &Path, sidecar: Option<&toml::Table>, pattern: &StepPattern) -> Option<u64> {
    if let Some(step) = sidecar
        .and_then(|t| t.get("training"))
        .and_then(|t| t.get("step"))
        .and_then(toml::Value::as_integer)
        .and_then(|s| u64::try_from(s).ok())
    {
        return Some(step);
    }
    pattern.step_in(path.file_stem()?.to_str()?)
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
            tags: super::super::args::tag_map(&args.card.tags)?,
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

/// One row of `watch`'s table, printed as each checkpoint lands: each
/// column as wide as its header (the step at least 6, the model at least
/// 24), so rows line up under the header whatever their values.
fn watch_line(cells: &[String]) -> String {
    let header = header();
    cells
        .iter()
        .zip(&header)
        .enumerate()
        .map(|(i, (c, h))| {
            let least = match i {
                0 => 6,
                1 => 24,
                _ => 8,
            };
            let w = h.len().max(least);
            format!("{c:<w$}")
        })
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
/// non-zero when a checkpoint was left out or failed. Ctrl-C ends it with a
/// line saying what was done (exit code 130).
pub async fn watch(conn: &Connection, args: WatchArgs) -> anyhow::Result<i32> {
    // Ctrl-C is caught from the start (a signal before the first look would
    // otherwise end the process without its line).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("listen for Ctrl-C")?;
    let Some(run) = args.card.run.clone() else {
        bail!("watch needs the run the checkpoints belong to: --run NAME");
    };
    if args.card.step.is_some() {
        bail!("watch reads each checkpoint's step from its file name or side-car card, not --step");
    }
    if !args.dir.is_dir() {
        bail!("{}: no such folder to watch", args.dir.display());
    }
    let pattern = StepPattern::new(args.step_pattern.as_deref())?;
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
    let tally = Tally::default();
    let follow = async {
        let mut seen: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
        // Files handled (or left out) as they were then: not read again until
        // they change.
        let mut handled: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
        loop {
            let now = scan(&args.dir)?;
            // Complete: the same size and time as at the previous look.
            let mut ready: Vec<(u64, PathBuf)> = Vec::new();
            for (path, stat) in &now {
                if seen.get(path) != Some(stat) || handled.get(path) == Some(stat) {
                    continue;
                }
                match step_for(path, &pattern) {
                    Ok(step) => ready.push((step, path.clone())),
                    Err(why) => {
                        eprintln!("{}: {why}; left out", path.display());
                        handled.insert(path.clone(), *stat);
                        tally.left_out.set(tally.left_out.get() + 1);
                    }
                }
            }
            ready.sort();
            for (step, path) in ready {
                let stat = now[&path];
                match checkpoint(conn, &args, &run, step, &path, &mut done).await {
                    Ok(Handled::Done) => tally.evaluated.set(tally.evaluated.get() + 1),
                    Ok(Handled::Rejected(why)) => {
                        eprintln!("{}: {why}; left out until it changes", path.display());
                        tally.left_out.set(tally.left_out.get() + 1);
                    }
                    Err(err) if args.once => {
                        eprintln!("{}: {}", path.display(), super::super::describe(&err));
                        tally.left_out.set(tally.left_out.get() + 1);
                    }
                    Err(err) => {
                        // Tried again at the next look.
                        eprintln!(
                            "{}: {}; trying again",
                            path.display(),
                            super::super::describe(&err)
                        );
                        continue;
                    }
                }
                handled.insert(path, stat);
                match get_run(conn, &run, &args.dataset).await {
                    Ok(r) => {
                        for w in r.warnings {
                            if warned.insert(w.kind.clone()) {
                                println!("warning: {}", as_flags(&w.message));
                            }
                        }
                    }
                    Err(err) => eprintln!("run {run}: {}", super::super::describe(&err)),
                }
            }
            if args.once && !seen.is_empty() {
                let left_out = tally.left_out.get();
                if left_out > 0 {
                    bail!("{left_out} checkpoint file(s) not evaluated (see above)");
                }
                return Ok(0);
            }
            seen = now;
            if args.once && seen.is_empty() {
                eprintln!("{}: no ONNX checkpoint to evaluate", args.dir.display());
                return Ok(0);
            }
            tokio::time::sleep(poll).await;
        }
    };
    tokio::select! {
        result = follow => result,
        _ = interrupt.recv() => {
            eprintln!(
                "interrupted: {} checkpoint(s) of run {run} evaluated by this watch, {} left out; \
                 run the same command to go on (what is evaluated is not evaluated again)",
                tally.evaluated.get(),
                tally.left_out.get()
            );
            Ok(130)
        }
    }
}

/// What a watch has done so far, said when it is interrupted.
#[derive(Default)]
struct Tally {
    /// Checkpoint files evaluated (or found evaluated).
    evaluated: std::cell::Cell<usize>,
    /// Checkpoint files left out.
    left_out: std::cell::Cell<usize>,
}

/// The step of checkpoint `path`: from its side-car card, else its name.
fn step_for(path: &Path, pattern: &StepPattern) -> Result<u64, String> {
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
    step_of(path, sidecar.as_ref(), pattern).ok_or_else(|| pattern.why_none(path))
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
                return Ok(Handled::Rejected(super::super::describe(&err)))
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
    let c = crate::domain::Checkpoint {
        step,
        model: name,
        model_sha256: report.model_sha256.clone(),
        report: completed.then(|| report.into()),
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
    let card = match register::card_toml(&card) {
        Ok(card) => card,
        Err(e) => {
            return Err(anyhow::Error::new(tonic::Status::invalid_argument(
                format!("{e:#}"),
            )))
        }
    };
    let info = register::upload(conn, &name, path, card, false).await?;
    Ok(info.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_step_comes_from_its_side_car_else_a_step_word_in_its_name() {
        let words = StepPattern::new(None).unwrap();
        let step = |name: &str| step_of(Path::new(name), None, &words);
        assert_eq!(step("/x/epoch_012.onnx"), Some(12));
        assert_eq!(step("/x/run3-ckpt-0450.onnx"), Some(450));
        assert_eq!(step("/x/ckpt-0500.onnx"), Some(500));
        assert_eq!(step("/x/model_v2_epoch_10.onnx"), Some(10));
        assert_eq!(step("/x/epoch=3-step=1000.onnx"), Some(1000));
        assert_eq!(step("/x/checkpoint42.onnx"), Some(42));
        assert_eq!(step("/x/iter_7.onnx"), Some(7));
        // Numbers no step word introduces are not steps.
        assert_eq!(step("/x/resnet18_last.onnx"), None);
        assert_eq!(step("/x/model_v2.onnx"), None);
        assert_eq!(step("/x/final.onnx"), None);
        // A word that merely ends in a step word is not one.
        assert_eq!(step("/x/misstep3.onnx"), None);
        let p = Path::new("/x/epoch_012.onnx");
        let card: toml::Table = "[training]\nstep = 7\n".parse().unwrap();
        assert_eq!(step_of(p, Some(&card), &words), Some(7));
        // A side-car without a step (or a negative one) leaves the name's.
        let card: toml::Table = "[training]\nstep = -1\n".parse().unwrap();
        assert_eq!(step_of(p, Some(&card), &words), Some(12));
        let why = words.why_none(Path::new("/x/resnet18_last.onnx"));
        assert!(
            why.contains("resnet18_last.toml") && why.contains("epoch_12.onnx"),
            "{why}"
        );
    }

    #[test]
    fn a_step_pattern_of_ones_own_reads_its_group() {
        let own = StepPattern::new(Some(r"resnet18_(\d+)")).unwrap();
        assert_eq!(own.step_in("resnet18_300"), Some(300));
        assert_eq!(own.step_in("resnet18_last"), None);
        let named = StepPattern::new(Some(r"v(\d+)_(?P<step>\d+)")).unwrap();
        assert_eq!(named.step_in("v2_150"), Some(150));
        let err = StepPattern::new(Some(r"\d+")).unwrap_err().to_string();
        assert!(err.contains("no group"), "{err}");
        let err = StepPattern::new(Some(r"(\d+")).unwrap_err().to_string();
        assert!(err.contains("not a regular expression"), "{err}");
    }
}
