//! `embedeval runs ls` and `runs show`: the training runs, a run's path
//! (its checkpoints in step order with their reports), its warnings, the
//! checkpoint to keep and its figures.

use super::super::flags::as_flags;
use anyhow::Context;

use super::super::args::{Connection, RunsCommand};
use super::super::output::{print_message, Format, Listing};
use crate::proto;
use crate::report::{figures, metric_cells, METRIC_COLUMNS};

/// The columns of a run's path (the last, the status, is left out of
/// `watch`'s lines).
pub(super) fn header() -> Vec<&'static str> {
    ["step", "model"]
        .into_iter()
        .chain(METRIC_COLUMNS)
        .chain(["status"])
        .collect()
}

/// One row of a run's path.
pub(super) fn row(c: &crate::domain::Checkpoint) -> Vec<String> {
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

pub(super) async fn get_run(
    conn: &Connection,
    name: &str,
    dataset: &str,
) -> anyhow::Result<proto::Run> {
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
            let wire = get_run(conn, &name, &dataset).await?;
            if conn.output() == Format::Json && plot.is_none() && metrics_plot.is_none() {
                return print_message("Run", &wire);
            }
            let run = super::super::records::run(wire.clone());
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
                return print_message("Run", &wire);
            }
            let rows = run.checkpoints.iter().map(row).collect();
            print!("{}", Listing::new(&header(), rows).render(conn.output()));
            for w in &run.warnings {
                eprintln!("warning: {}", as_flags(&w.message));
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
