//! `embedeval plot …`: a figure of a stored comparison or evaluation.

use std::path::Path;

use anyhow::Context;

use crate::proto;

use super::super::args::{Connection, FigureArgs, FigureKind, PlotArgs};

/// Asks the server to draw figure `kind` of the stored comparison or
/// evaluation `id` and writes it to `path`.
pub(super) async fn write_figure(
    conn: &Connection,
    id: &str,
    kind: FigureKind,
    path: &Path,
    how: &FigureArgs,
) -> anyhow::Result<()> {
    let for_kind = |takes: FigureKind, value: &str| {
        if kind == takes {
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
            kind: kind.code(),
            format: how.format_for(path) as i32,
            size: how.size() as i32,
            // Each option goes to the figure that takes it; the others keep
            // their defaults.
            x: for_kind(FigureKind::Accuracy, &how.x),
            group_by: for_kind(FigureKind::Accuracy, &how.group_by),
            metric: for_kind(FigureKind::Accuracy, &how.metric),
            label: for_kind(FigureKind::UniformityTolerance, &how.label),
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
