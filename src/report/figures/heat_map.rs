//! The heat map the per-class figures share: a canvas of cells with class
//! names along its axes (every n-th past [`super::classes::MAX_NAMES`]) and a
//! colour bar.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::classes::{fit, model_label, MAX_NAMES};
use super::frame::{self};
use super::style::{self};
use super::{caption, draw_error, Layout, Mark};
use crate::domain::Report;
use crate::error::{Error, Result};
use crate::report::classes::class_name;

/// Pixel geometry of a heat-map figure without numeric axes: title at the
/// top, caption at the bottom, colour bar at the right.
pub(super) struct Canvas {
    /// Where the matrices go: left, top, right, bottom.
    pub(super) area: (i32, i32, i32, i32),
    /// The colour bar's box.
    pub(super) bar: (i32, i32, i32, i32),
}

/// Draws a heat-map figure's title and caption; where its matrices and its
/// colour bar go.
pub(super) fn canvas<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    layout: &Layout,
    title: &str,
    caption_text: &str,
) -> Result<Canvas>
where
    DB::ErrorType: 'static,
{
    let (w, h) = (f64::from(layout.width), f64::from(layout.height));
    let f = layout.font;
    let title_lines = style::wrap(title, w - f * 2.0, f * 1.1);
    let mut y = f * 0.5;
    for line in &title_lines {
        frame::text_at(
            root,
            line,
            ((w / 2.0) as i32, y as i32),
            layout,
            1.1,
            (HPos::Center, VPos::Top),
        )?;
        y += f * 1.1 * 1.3;
    }
    let lines = style::wrap(caption_text, w - f * 2.0, f * 0.8);
    let caption_h = lines.len() as f64 * f * 0.8 * 1.3 + f;
    let top = h - caption_h;
    for (i, line) in lines.iter().enumerate() {
        frame::text(
            root,
            line,
            (f as i32, (top + f * 0.3 + i as f64 * f * 0.8 * 1.3) as i32),
            layout,
            0.8,
            frame::MUTED,
        )?;
    }
    let bar_w = f * 1.0;
    let bar_left = w - f * 5.5;
    Ok(Canvas {
        area: (
            (f * 0.8) as i32,
            (y + f * 0.6) as i32,
            (bar_left - f * 1.5) as i32,
            (top - f * 0.5) as i32,
        ),
        bar: (
            bar_left as i32,
            (y + f * 2.5) as i32,
            (bar_left + bar_w) as i32,
            (top - f * 3.0) as i32,
        ),
    })
}

/// A vertical viridis colour bar from `lo` (bottom) to `hi` (top).
pub(super) fn colour_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    layout: &Layout,
    bar: (i32, i32, i32, i32),
    (lo, hi): (f64, f64),
    title: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (l, t, r, b) = bar;
    frame::text_at(
        root,
        title,
        ((l + r) / 2, t - (layout.font * 0.6) as i32),
        layout,
        0.8,
        (HPos::Center, VPos::Bottom),
    )?;
    let n = (b - t).max(2);
    for i in 0..n {
        let pos = 1.0 - f64::from(i) / f64::from(n - 1);
        root.draw(&Rectangle::new(
            [(l, t + i), (r, t + i + 1)],
            style::viridis(pos).filled(),
        ))
        .map_err(draw_error)?;
    }
    root.draw(&Rectangle::new([(l, t), (r, b)], BLACK.stroke_width(1)))
        .map_err(draw_error)?;
    let ticks = style::nice_ticks(lo, hi, 5);
    let d = style::decimals(&ticks);
    for tick in ticks
        .into_iter()
        .filter(|v| *v >= lo - 1e-12 && *v <= hi + 1e-12)
    {
        let frac = if hi > lo {
            (tick - lo) / (hi - lo)
        } else {
            0.0
        };
        let y = b - (frac * f64::from(b - t)).round() as i32;
        root.draw(&PathElement::new(
            vec![(r, y), (r + (layout.font * 0.3) as i32, y)],
            BLACK.stroke_width(1),
        ))
        .map_err(draw_error)?;
        frame::text_at(
            root,
            &format!("{tick:.d$}"),
            (r + (layout.font * 0.45) as i32, y),
            layout,
            0.75,
            (HPos::Left, VPos::Center),
        )?;
    }
    Ok(())
}

/// The colour of `v` on a bar over `(lo, hi)`.
pub(super) fn scaled(v: f64, (lo, hi): (f64, f64)) -> RGBColor {
    style::viridis(if hi > lo { (v - lo) / (hi - lo) } else { 0.5 })
}

/// Which class names a heat-map axis of `n` classes writes: all up to
/// [`MAX_NAMES`], else every n-th.
pub(super) fn named(n: usize, i: usize) -> bool {
    n <= MAX_NAMES || i.is_multiple_of(n.div_ceil(MAX_NAMES))
}

/// The per-class tolerance as a heat map: classes down, models across.
pub(super) fn heat_map<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    sweep: &[&Report],
    reports: &[Report],
    first: &crate::domain::PerClass,
    value: &dyn Fn(&Report, usize) -> Option<f64>,
    layout: Layout,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let f = layout.font;
    let classes = first.labels.len();
    let values: Vec<f64> = sweep
        .iter()
        .flat_map(|m| (0..classes).filter_map(|i| value(m, i)))
        .collect();
    if values.is_empty() {
        return Err(Error::FailedPrecondition(
            "no class here has two or more rows: per-class tolerance is undefined".into(),
        ));
    }
    let range = (
        values.iter().copied().fold(f64::INFINITY, f64::min),
        values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let c = canvas(
        root,
        &layout,
        &format!("Tolerance per class across τ ({})", sweep[0].loss),
        &caption(reports),
    )?;
    colour_bar(root, &layout, c.bar, range, "tolerance")?;
    let name_w = (0..classes)
        .filter(|&i| named(classes, i))
        .map(|i| style::text_width(&class_name(first, i), f * 0.75))
        .fold(0.0, f64::max)
        .min(f64::from(c.area.2 - c.area.0) * 0.3);
    let (l, t, r, b) = c.area;
    let left = l + (name_w + f * 0.5) as i32;
    let bottom = b - (f * 1.6) as i32;
    let cw = f64::from(r - left) / sweep.len() as f64;
    let ch = f64::from(bottom - t) / classes as f64;
    let mut marks = Vec::new();
    for (j, m) in sweep.iter().enumerate() {
        let x0 = left + (j as f64 * cw) as i32;
        let x1 = left + ((j + 1) as f64 * cw) as i32;
        for i in 0..classes {
            let y0 = t + (i as f64 * ch) as i32;
            let y1 = t + ((i + 1) as f64 * ch) as i32;
            let colour = value(m, i).map_or(frame::GRID, |v| scaled(v, range));
            root.draw(&Rectangle::new(
                [(x0, y0), (x1.max(x0 + 1), y1.max(y0 + 1))],
                colour.filled(),
            ))
            .map_err(draw_error)?;
            marks.push(Mark {
                x: (x0 + x1) / 2,
                y: (y0 + y1) / 2,
                fill: (colour.0, colour.1, colour.2),
                stroke: (colour.0, colour.1, colour.2),
                model: m.model.clone(),
            });
        }
        frame::text_at(
            root,
            &fit(&model_label(m), cw - f * 0.2, f * 0.75),
            ((x0 + x1) / 2, bottom + (f * 0.3) as i32),
            &layout,
            0.75,
            (HPos::Center, VPos::Top),
        )?;
    }
    for i in (0..classes).filter(|&i| named(classes, i)) {
        let yc = t + ((i as f64 + 0.5) * ch) as i32;
        frame::text_at(
            root,
            &fit(&class_name(first, i), name_w, f * 0.75),
            (left - (f * 0.3) as i32, yc),
            &layout,
            0.75,
            (HPos::Right, VPos::Center),
        )?;
    }
    Ok(marks)
}
