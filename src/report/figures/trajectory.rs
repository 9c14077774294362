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
use crate::domain::{Report, Run};
use crate::error::{Error, Result};

/// Draws the path; one mark per evaluated checkpoint.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &Run,
    layout: Layout,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let pts: Vec<(u64, &Report, f64, f64)> = run
        .checkpoints
        .iter()
        .filter_map(|c| {
            let r = c.report.as_ref()?;
            Some((c.step, r, r.tolerance?, r.uniformity?))
        })
        .collect();
    if pts.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "run {} has no checkpoint evaluated on {} with uniformity and tolerance",
            run.name, run.dataset
        )));
    }
    let xz = Zoom::over(pts.iter().map(|p| p.2));
    let yz = Zoom::over(pts.iter().map(|p| p.3));
    let x = Axis::numeric(xz, frame::TOLERANCE_AXIS, 6);
    let y = Axis::numeric(yz, frame::UNIFORMITY_AXIS, 6);
    let reports: Vec<Report> = pts.iter().map(|p| p.1.clone()).collect();
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

/// The panels of the metrics-against-step figure: title and value.
type Panel = (&'static str, fn(&Report) -> Option<f64>);

const PANELS: [Panel; 4] = [
    ("uniformity −L_uniformity", |r| r.uniformity),
    ("tolerance", |r| r.tolerance),
    ("effective rank", |r| r.effective_rank),
    ("kNN top-1", |r| r.knn.as_ref().map(|k| k.top1)),
];

/// Draws a run's metrics against step, one panel each (uniformity,
/// tolerance, effective rank, kNN accuracy); one mark per value drawn.
pub(crate) fn draw_metrics<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    run: &Run,
    layout: Layout,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let pts: Vec<(u64, &Report)> = run
        .checkpoints
        .iter()
        .filter_map(|c| Some((c.step, c.report.as_ref()?)))
        .collect();
    if pts.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "run {} has no checkpoint evaluated on {}",
            run.name, run.dataset
        )));
    }
    let f = layout.font;
    let (title, body) = root.split_vertically((f * 2.0) as u32);
    frame::text_at(
        &title,
        &format!("Run {} on {}: metrics against step", run.name, run.dataset),
        ((layout.width / 2) as i32, (f * 0.4) as i32),
        &layout,
        1.1,
        (
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ),
    )?;
    let steps = Zoom::over(pts.iter().map(|p| p.0 as f64));
    let x = Axis::integers(steps, "step", 5);
    let mut marks = Vec::new();
    for (area, (name, value)) in body.split_evenly((2, 2)).iter().zip(PANELS) {
        let values: Vec<(u64, f64)> = pts
            .iter()
            .filter_map(|(s, r)| Some((*s, value(r)?)))
            .collect();
        let y = Axis::numeric(Zoom::over(values.iter().map(|v| v.1)), name, 4);
        let fx = |v: &f64| x.label_of(*v);
        let fy = |v: &f64| y.label_of(*v);
        let mut chart = plotters::chart::ChartBuilder::on(area)
            .margin(f * 0.6)
            .x_label_area_size(f * 2.2)
            .y_label_area_size(f * 3.6)
            .caption(name, ("sans-serif", f * 0.9))
            .build_cartesian_2d(frame::Ticked::of(&x), frame::Ticked::of(&y))
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .x_desc("step")
            .label_style(("sans-serif", f * 0.75))
            .axis_desc_style(("sans-serif", f * 0.8))
            .light_line_style(TRANSPARENT)
            .bold_line_style(frame::GRID.stroke_width(1))
            .draw()
            .map_err(draw_error)?;
        let at: Vec<(i32, i32)> = values
            .iter()
            .map(|(s, v)| chart.backend_coord(&(*s as f64, *v)))
            .collect();
        root.draw(&PathElement::new(
            at.clone(),
            frame::MUTED.stroke_width(layout.stroke),
        ))
        .map_err(draw_error)?;
        let (first, last) = (pts[0].0 as f64, pts[pts.len() - 1].0 as f64);
        for ((step, _), p) in values.iter().zip(&at) {
            let fill = if last > first {
                style::viridis((*step as f64 - first) / (last - first))
            } else {
                style::viridis(1.0)
            };
            style::marker(
                root,
                Shape::Circle,
                *p,
                layout.marker * 2 / 3,
                fill,
                BLACK,
                1,
            )?;
            marks.push(Mark {
                x: p.0,
                y: p.1,
                fill: (fill.0, fill.1, fill.2),
                stroke: (0, 0, 0),
                model: format!("step {step}"),
            });
        }
    }
    Ok(marks)
}
