//! A training run's path in the uniformity–tolerance plane: one marker per
//! evaluated checkpoint, filled by step (viridis, early dark to late
//! yellow), joined in step order and labelled with the step; the run's
//! warnings beside it. Wang & Liu (2021) read a model's place in this plane;
//! a run's path shows how it got there (uniformity rises early, tolerance
//! settles later).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{self, Axis};
use super::style::{self, Shape, Zoom};
use super::{caption, draw_error, Layout, Mark};
use crate::error::{Error, Result};
use crate::proto::{EvaluationReport, Run};

/// Draws the path; one mark per evaluated checkpoint.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &Run,
    layout: Layout,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let pts: Vec<(u64, &EvaluationReport, f64, f64)> = run
        .checkpoints
        .iter()
        .filter_map(|c| {
            let r = c.report.as_ref()?;
            Some((c.step, r, r.tolerance?, r.uniformity?))
        })
        .collect();
    if pts.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "run {} has no checkpoint evaluated on {} with uniformity and tolerance",
            run.name, run.dataset
        )));
    }
    let xz = Zoom::over(pts.iter().map(|p| p.2));
    let yz = Zoom::over(pts.iter().map(|p| p.3));
    let x = Axis::numeric(xz, "tolerance (mean similarity of same-class pairs)", 6);
    let y = Axis::numeric(yz, "uniformity  −L_uniformity", 6);
    let reports: Vec<EvaluationReport> = pts.iter().map(|p| p.1.clone()).collect();
    let frame = frame::draw(
        root,
        &layout,
        &format!(
            "Run {}: its path in the uniformity–tolerance plane",
            run.name
        ),
        &x,
        &y,
        &caption(&reports),
        (f64::from(layout.width) * 0.22) as u32,
    )?;
    let (first, last) = (pts[0].0 as f64, pts[pts.len() - 1].0 as f64);
    let colour = |step: u64| {
        if last > first {
            style::viridis((step as f64 - first) / (last - first))
        } else {
            style::viridis(1.0)
        }
    };
    let centres: Vec<(i32, i32)> = pts.iter().map(|p| frame.px(p.2, p.3)).collect();
    root.draw(&PathElement::new(
        centres.clone(),
        frame::MUTED.stroke_width(layout.stroke),
    ))
    .map_err(draw_error)?;
    let mut marks = Vec::new();
    for ((step, r, _, _), at) in pts.iter().zip(&centres) {
        let fill = colour(*step);
        style::marker(
            root,
            Shape::Circle,
            *at,
            layout.marker,
            fill,
            BLACK,
            layout.stroke,
        )?;
        marks.push(Mark {
            x: at.0,
            y: at.1,
            fill: (fill.0, fill.1, fill.2),
            stroke: (0, 0, 0),
            model: r.model.clone(),
        });
    }
    let labels: Vec<String> = pts.iter().map(|p| format!("step {}", p.0)).collect();
    let placed = style::place_labels(
        &centres
            .iter()
            .map(|(x, y)| (f64::from(*x), f64::from(*y)))
            .collect::<Vec<_>>(),
        &labels,
        f64::from(layout.marker),
        layout.font * 0.8,
        frame.bounds(),
    );
    for (p, label) in placed.iter().zip(&labels) {
        if let Some(p) = p {
            frame::text(root, label, (p.x as i32, p.y as i32), &layout, 0.8, BLACK)?;
        }
    }
    // Side panel: the run's warnings.
    let (l, t, r_edge, _) = frame.side;
    let mut yy = t;
    let f = layout.font;
    frame::text(root, "warnings", (l, yy), &layout, 0.9, BLACK)?;
    yy += (f * 1.4) as i32;
    let notes: Vec<String> = if run.warnings.is_empty() {
        vec!["none".into()]
    } else {
        run.warnings.iter().map(|w| w.message.clone()).collect()
    };
    for note in notes {
        for line in style::wrap(&note, f64::from(r_edge - l), f * 0.75) {
            frame::text(root, &line, (l, yy), &layout, 0.75, frame::MUTED)?;
            yy += (f * 0.75 * 1.3) as i32;
        }
        yy += (f * 0.4) as i32;
    }
    Ok(marks)
}
