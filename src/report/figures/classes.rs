//! Where the semantic structure breaks, class by class (Wang & Liu 2021,
//! §4: a small τ makes the space uniform by pushing semantically similar
//! samples apart). Three figures of the per-class diagnostics
//! ([`crate::metrics::per_class`]) and the recommendation
//! ([`crate::report::recommend`]):
//!
//! - `classes`: each class's tolerance (mean similarity of its distinct
//!   same-class pairs, Eq. 11 within the class) against τ, one line per class
//!   for up to [`MAX_LINES`] classes, a heat map (classes × τ) beyond;
//! - `confusion`: for the smallest and the largest τ, which classes each
//!   class's nearest other rows come from (rows: the anchor's class; the
//!   share of its k nearest rows in each class), class names on both axes;
//! - `pareto`: the uniformity–tolerance plane with each loss's Pareto front,
//!   its knee and the recommended model marked, the reason beside it.
//!
//! The sweep drawn by `classes` and `confusion` is the loss with the most
//! models that carry per-class diagnostics (the first by name on a tie): a
//! class's line only means something within one loss.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::frame::{self, Axis};
use super::style::{self, Losses, Zoom};
use super::{caption, draw_error, Layout, Mark};
use crate::error::{Error, Result};
use crate::proto::EvaluationReport;
use crate::report::classes::{class_name, neighbour_shares as shares};
use crate::report::recommend;

/// The most classes drawn as lines; more are a heat map.
pub const MAX_LINES: usize = 12;

/// The most class names written along a heat map's axis; beyond, every
/// n-th.
const MAX_NAMES: usize = 40;

/// The sweep the per-class figures draw: the completed reports of the loss
/// with the most models carrying per-class diagnostics, by increasing τ.
fn sweep(rows: &[EvaluationReport]) -> Result<Vec<&EvaluationReport>> {
    let with: Vec<&EvaluationReport> = rows
        .iter()
        .filter(|r| r.per_class.as_ref().is_some_and(|p| !p.labels.is_empty()))
        .collect();
    let losses = Losses::of(rows);
    let loss = losses
        .names()
        .iter()
        .max_by_key(|l| {
            (
                with.iter().filter(|r| &&r.loss == l).count(),
                // The first in legend order on a tie.
                std::cmp::Reverse(losses.names().iter().position(|n| n == *l)),
            )
        })
        .filter(|l| with.iter().any(|r| &&r.loss == l))
        .ok_or_else(|| {
            Error::FailedPrecondition(
                "no completed evaluation here has per-class diagnostics (were they skipped?)"
                    .into(),
            )
        })?;
    let mut out: Vec<&EvaluationReport> = with.into_iter().filter(|r| &r.loss == loss).collect();
    out.sort_by(|a, b| a.temperature.total_cmp(&b.temperature));
    Ok(out)
}

/// The label of a model in a sweep: its τ, or its name without one.
fn model_label(r: &EvaluationReport) -> String {
    if r.temperature > 0.0 {
        format!("τ = {}", style::short(r.temperature))
    } else {
        r.model.clone()
    }
}

/// `text` cut to `width` pixels at `font`, with "…" where cut.
fn fit(text: &str, width: f64, font: f64) -> String {
    if style::text_width(text, font) <= width {
        return text.to_string();
    }
    let keep = ((width / (font * 0.58)).floor() as usize).saturating_sub(1);
    if keep == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(keep).collect();
    out.push('…');
    out
}

/// Draws the per-class tolerance figure; one mark per (class, model) for
/// lines, one per cell for a heat map.
pub(crate) fn draw_classes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[EvaluationReport],
    layout: Layout,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let sweep = sweep(rows)?;
    let first = sweep[0]
        .per_class
        .as_ref()
        .expect("the sweep has per_class");
    let classes = first.labels.len();
    // The tolerance of class i (by the first model's labels) in model m.
    let value = |m: &EvaluationReport, i: usize| -> Option<f64> {
        let p = m.per_class.as_ref()?;
        let at = p.labels.binary_search(&first.labels[i]).ok()?;
        p.tolerance.get(at).copied().filter(|v| v.is_finite())
    };
    let reports: Vec<EvaluationReport> = sweep.iter().map(|r| (*r).clone()).collect();
    if classes > MAX_LINES || sweep.len() < 2 {
        return heat_map(root, &sweep, &reports, first, &value, layout);
    }
    // x: log10 τ at the sweep's τs (models without a τ have no place here).
    let on_axis: Vec<&EvaluationReport> = sweep
        .iter()
        .copied()
        .filter(|r| r.temperature > 0.0)
        .collect();
    if on_axis.len() < 2 {
        return heat_map(root, &sweep, &reports, first, &value, layout);
    }
    let us: Vec<f64> = on_axis.iter().map(|r| r.temperature.log10()).collect();
    let (lo, hi) = (us[0], us[us.len() - 1]);
    let span = (hi - lo).max(0.3);
    let x_zoom = Zoom {
        lo: lo - span * 0.06,
        hi: hi + span * 0.06,
    };
    let mut ticks: Vec<f64> = us.clone();
    ticks.dedup();
    let px_per_u = f64::from(layout.width) * 0.6 / (x_zoom.hi - x_zoom.lo);
    let mut labels = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for t in &ticks {
        let l = style::short(10f64.powf(*t));
        if (t - last) * px_per_u < style::text_width(&l, layout.font * 0.9) + layout.font * 0.3 {
            labels.push(String::new());
        } else {
            last = *t;
            labels.push(l);
        }
    }
    let x = Axis {
        zoom: x_zoom,
        ticks,
        labels,
        desc: "training temperature τ (log scale)".into(),
    };
    let values: Vec<f64> = on_axis
        .iter()
        .flat_map(|m| (0..classes).filter_map(|i| value(m, i)))
        .collect();
    if values.is_empty() {
        return Err(Error::FailedPrecondition(
            "no class here has two or more rows: per-class tolerance is undefined".into(),
        ));
    }
    let y = Axis::numeric(
        Zoom::over(values.iter().copied()),
        "class tolerance (mean similarity of same-class pairs)",
        6,
    );
    let side = (f64::from(layout.width) * 0.2) as u32;
    let frame = frame::draw(
        root,
        &layout,
        &format!("Tolerance per class against τ ({})", sweep[0].loss),
        &x,
        &y,
        &caption(&reports),
        side,
    )?;
    let mut marks = Vec::new();
    let mut ends = Vec::new();
    let mut end_labels = Vec::new();
    for i in 0..classes {
        let colour = style::categorical(i);
        let pts: Vec<(i32, i32, &EvaluationReport)> = on_axis
            .iter()
            .filter_map(|m| {
                let v = value(m, i)?;
                let (px, py) = frame.px(m.temperature.log10(), v);
                Some((px, py, *m))
            })
            .collect();
        root.draw(&PathElement::new(
            pts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
            colour.stroke_width(layout.stroke),
        ))
        .map_err(draw_error)?;
        for (px, py, m) in &pts {
            style::marker(
                root,
                style::Shape::Circle,
                (*px, *py),
                layout.marker * 2 / 3,
                colour,
                colour,
                1,
            )?;
            marks.push(Mark {
                x: *px,
                y: *py,
                fill: (colour.0, colour.1, colour.2),
                stroke: (colour.0, colour.1, colour.2),
                model: m.model.clone(),
            });
        }
        if let Some(p) = pts.first() {
            ends.push((f64::from(p.0), f64::from(p.1)));
            end_labels.push(class_name(first, i));
        }
    }
    // Class names beside the smallest τ, where the structure breaks.
    let placed = style::place_labels(
        &ends,
        &end_labels,
        f64::from(layout.marker),
        layout.font * 0.75,
        frame.bounds(),
    );
    let mut unplaced = 0;
    for (place, label) in placed.iter().zip(&end_labels) {
        match place {
            Some(p) => frame::text(root, label, (p.x as i32, p.y as i32), &layout, 0.75, BLACK)?,
            None => unplaced += 1,
        }
    }
    // The side panel: one colour per class.
    let (l, t, r, _) = frame.side;
    let f = layout.font;
    let mut yy = t;
    frame::text(root, "class", (l, yy), &layout, 0.9, BLACK)?;
    yy += (f * 1.4) as i32;
    for i in 0..classes {
        let colour = style::categorical(i);
        root.draw(&PathElement::new(
            vec![
                (l, yy + (f * 0.4) as i32),
                (l + (f * 1.4) as i32, yy + (f * 0.4) as i32),
            ],
            colour.stroke_width(layout.stroke + 1),
        ))
        .map_err(draw_error)?;
        let name = fit(&class_name(first, i), f64::from(r - l) - f * 2.0, f * 0.8);
        frame::text_at(
            root,
            &name,
            (l + (f * 1.8) as i32, yy + (f * 0.4) as i32),
            &layout,
            0.8,
            (HPos::Left, VPos::Center),
        )?;
        yy += (f * 1.2) as i32;
    }
    yy += (f * 0.5) as i32;
    let mut notes = vec![format!(
        "Tolerance of each class's distinct same-class pairs; loss {} (the largest sweep here).",
        sweep[0].loss
    )];
    if unplaced > 0 {
        notes.push(format!(
            "{unplaced} class name(s) left out for want of room."
        ));
    }
    for note in notes {
        for line in style::wrap(&note, f64::from(r - l), f * 0.75) {
            frame::text(root, &line, (l, yy), &layout, 0.75, frame::MUTED)?;
            yy += (f * 0.75 * 1.3) as i32;
        }
    }
    Ok(marks)
}

/// Pixel geometry of a heat-map figure without numeric axes: title at the
/// top, caption at the bottom, colour bar at the right.
struct Canvas {
    /// Where the matrices go: left, top, right, bottom.
    area: (i32, i32, i32, i32),
    /// The colour bar's box.
    bar: (i32, i32, i32, i32),
}

fn canvas<DB: DrawingBackend>(
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
fn colour_bar<DB: DrawingBackend>(
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
fn scaled(v: f64, (lo, hi): (f64, f64)) -> RGBColor {
    style::viridis(if hi > lo { (v - lo) / (hi - lo) } else { 0.5 })
}

/// Which class names a heat-map axis of `n` classes writes: all up to
/// [`MAX_NAMES`], else every n-th.
fn named(n: usize, i: usize) -> bool {
    n <= MAX_NAMES || i.is_multiple_of(n.div_ceil(MAX_NAMES))
}

/// The per-class tolerance as a heat map: classes down, models across.
fn heat_map<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    sweep: &[&EvaluationReport],
    reports: &[EvaluationReport],
    first: &crate::proto::PerClass,
    value: &dyn Fn(&EvaluationReport, usize) -> Option<f64>,
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

/// Draws the nearest-neighbour class matrices of the sweep's smallest and
/// largest τ (one panel when there is one model); one mark per cell.
pub(crate) fn draw_confusion<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[EvaluationReport],
    layout: Layout,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let sweep: Vec<&EvaluationReport> = sweep(rows)?
        .into_iter()
        .filter(|r| r.per_class.as_ref().and_then(shares).is_some())
        .collect();
    let (Some(small), Some(large)) = (sweep.first(), sweep.last()) else {
        return Err(Error::FailedPrecondition(
            "no completed evaluation here has the nearest-negative classes (were the nearest negatives skipped?)"
                .into(),
        ));
    };
    let panels: Vec<&EvaluationReport> = if sweep.len() > 1 {
        vec![small, large]
    } else {
        vec![small]
    };
    let reports: Vec<EvaluationReport> = panels.iter().map(|r| (**r).clone()).collect();
    let first = panels[0].per_class.as_ref().expect("checked");
    let c = first.labels.len();
    let k = first.nearest_negative_k;
    let matrices: Vec<Vec<f64>> = panels
        .iter()
        .map(|r| shares(r.per_class.as_ref().expect("checked")).expect("checked"))
        .collect();
    // Off the diagonal only: the same-class share would flatten the scale.
    let hi = matrices
        .iter()
        .flat_map(|m| (0..c * c).filter(|i| i / c != i % c).map(move |i| m[i]))
        .fold(0.0, f64::max)
        .max(1e-9);
    let canvas = canvas(
        root,
        &layout,
        &format!(
            "Which classes the {k} nearest other rows come from ({})",
            panels[0].loss
        ),
        &caption(&reports),
    )?;
    colour_bar(root, &layout, canvas.bar, (0.0, hi), "share")?;
    let f = layout.font;
    let (l, t, r, b) = canvas.area;
    let name_w = (0..c)
        .filter(|&i| named(c, i))
        .map(|i| style::text_width(&class_name(first, i), f * 0.7))
        .fold(0.0, f64::max)
        .min(f64::from(r - l) * 0.18);
    let gap = (f * 1.5) as i32;
    let n = panels.len() as i32;
    let panel_title_h = (f * 1.5) as i32;
    let x_names_h = (f * 1.5) as i32;
    let left = l + (name_w + f * 0.5) as i32;
    let avail_w = (r - left - gap * (n - 1)) / n;
    let avail_h = b - t - panel_title_h - x_names_h - (f * 1.3) as i32;
    let side = avail_w.min(avail_h).max(c as i32);
    let cell = f64::from(side) / c as f64;
    let annotate = c <= 12 && cell >= f * 2.0;
    let mut marks = Vec::new();
    for (p, (model, m)) in panels.iter().zip(&matrices).enumerate() {
        let x0 = left + p as i32 * (side + gap);
        let y0 = t + panel_title_h;
        frame::text_at(
            root,
            &fit(
                &format!("{} ({})", model_label(model), model.model),
                f64::from(side),
                f * 0.85,
            ),
            (x0 + side / 2, t),
            &layout,
            0.85,
            (HPos::Center, VPos::Top),
        )?;
        for a in 0..c {
            for bcls in 0..c {
                let cx0 = x0 + (bcls as f64 * cell) as i32;
                let cx1 = x0 + ((bcls + 1) as f64 * cell) as i32;
                let cy0 = y0 + (a as f64 * cell) as i32;
                let cy1 = y0 + ((a + 1) as f64 * cell) as i32;
                let v = m[a * c + bcls];
                let colour = if a == bcls {
                    frame::LEGEND_FILL
                } else {
                    scaled(v.min(hi), (0.0, hi))
                };
                root.draw(&Rectangle::new(
                    [(cx0, cy0), (cx1.max(cx0 + 1), cy1.max(cy0 + 1))],
                    colour.filled(),
                ))
                .map_err(draw_error)?;
                // The mark sits in the cell's upper-left quarter, clear of
                // its annotation.
                marks.push(Mark {
                    x: cx0 + (cx1 - cx0) / 4,
                    y: cy0 + (cy1 - cy0) / 4,
                    fill: (colour.0, colour.1, colour.2),
                    stroke: (colour.0, colour.1, colour.2),
                    model: model.model.clone(),
                });
                if annotate {
                    let pct = format!("{:.0}", v * 100.0);
                    let dark = a != bcls && v / hi < 0.55;
                    let style = ("sans-serif", f * 0.62)
                        .into_font()
                        .color(if dark { &WHITE } else { &BLACK })
                        .pos(plotters::style::text_anchor::Pos::new(
                            HPos::Center,
                            VPos::Center,
                        ));
                    root.draw(&Text::new(
                        pct,
                        ((cx0 + cx1) / 2, cy0 + ((cy1 - cy0) as f64 * 0.62) as i32),
                        style,
                    ))
                    .map_err(draw_error)?;
                }
            }
        }
        root.draw(&Rectangle::new(
            [(x0, y0), (x0 + side, y0 + side)],
            BLACK.stroke_width(1),
        ))
        .map_err(draw_error)?;
        for i in (0..c).filter(|&i| named(c, i)) {
            let centre = (i as f64 + 0.5) * cell;
            frame::text_at(
                root,
                &fit(&class_name(first, i), cell * 0.95, f * 0.65),
                (x0 + centre as i32, y0 + side + (f * 0.25) as i32),
                &layout,
                0.65,
                (HPos::Center, VPos::Top),
            )?;
            if p == 0 {
                frame::text_at(
                    root,
                    &fit(&class_name(first, i), name_w, f * 0.7),
                    (x0 - (f * 0.3) as i32, y0 + centre as i32),
                    &layout,
                    0.7,
                    (HPos::Right, VPos::Center),
                )?;
            }
        }
    }
    let note = format!(
        "Row: the anchor's class; column: the class of its {k} nearest other rows (share of the row{}). The diagonal (grey) is the same-class share.",
        if annotate { ", in %" } else { "" }
    );
    let mut y = t + panel_title_h + side + x_names_h;
    for line in style::wrap(&note, f64::from(r - l), f * 0.75) {
        frame::text(root, &line, (l, y), &layout, 0.75, frame::MUTED)?;
        y += (f * 0.75 * 1.3) as i32;
    }
    Ok(marks)
}

/// Draws the uniformity–tolerance plane with each loss's Pareto front (a
/// line), its knee (a ring) and its recommended model (a star of text and a
/// thick ring), the reasons in the side panel; one mark per model.
pub(crate) fn draw_pareto<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[EvaluationReport],
    layout: Layout,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let recs = recommend::recommend(rows);
    if recs.is_empty() {
        return Err(Error::FailedPrecondition(
            "no completed evaluation here has uniformity and tolerance".into(),
        ));
    }
    let reports: Vec<EvaluationReport> = recs.iter().flat_map(|r| r.rows.clone()).collect();
    let pts: Vec<(f64, f64)> = reports
        .iter()
        .map(|r| (r.tolerance.unwrap_or(0.0), r.uniformity.unwrap_or(0.0)))
        .collect();
    let xz = Zoom::over(pts.iter().map(|p| p.0));
    let yz = Zoom::over(pts.iter().map(|p| p.1));
    let x = Axis::numeric(xz, frame::TOLERANCE_AXIS, 6);
    let y = Axis::numeric(yz, frame::UNIFORMITY_AXIS, 6);
    let side = (f64::from(layout.width) * 0.26) as u32;
    let frame = frame::draw(
        root,
        &layout,
        "Pareto front of uniformity and tolerance, and the τ to keep",
        &x,
        &y,
        &caption(&reports),
        side,
    )?;
    let losses = Losses::of(&reports);
    let mut marks = Vec::new();
    let mut notes = Vec::new();
    let at = |rec: &recommend::Recommendation, i: usize| {
        let r = &rec.rows[i];
        frame.px(
            xz.clamp(r.tolerance.unwrap_or(0.0)),
            yz.clamp(r.uniformity.unwrap_or(0.0)),
        )
    };
    // Every front first, joined by increasing uniformity, so that no line
    // crosses a marker.
    for rec in &recs {
        root.draw(&PathElement::new(
            rec.front.iter().map(|&i| at(rec, i)).collect::<Vec<_>>(),
            losses.colour(&rec.loss).stroke_width(layout.stroke + 1),
        ))
        .map_err(draw_error)?;
    }
    // The rings next, under every marker.
    for rec in &recs {
        if let Some(k) = rec.knee {
            root.draw(&Circle::new(
                at(rec, k),
                layout.marker * 2,
                losses.colour(&rec.loss).stroke_width(layout.stroke),
            ))
            .map_err(draw_error)?;
        }
        if let Some(best) = rec.recommended {
            root.draw(&Circle::new(
                at(rec, best),
                layout.marker * 3,
                BLACK.stroke_width(layout.stroke + 1),
            ))
            .map_err(draw_error)?;
        }
    }
    // τ labels beside every point, under the markers (a leader line may
    // pass another marker).
    let centres: Vec<(f64, f64)> = recs
        .iter()
        .flat_map(|rec| (0..rec.rows.len()).map(move |i| (rec, i)))
        .map(|(rec, i)| {
            let (x, y) = at(rec, i);
            (f64::from(x), f64::from(y))
        })
        .collect();
    let labels: Vec<String> = reports
        .iter()
        .map(|r| {
            if r.temperature > 0.0 {
                style::short(r.temperature)
            } else {
                r.loss.clone()
            }
        })
        .collect();
    let placed = style::place_labels(
        &centres,
        &labels,
        f64::from(layout.marker) * 1.5,
        layout.font * 0.75,
        frame.bounds(),
    );
    for ((p, label), centre) in placed.iter().zip(&labels).zip(&centres) {
        if let Some(p) = p {
            frame::placed_label(root, label, *p, *centre, &layout, 0.75)?;
        }
    }
    for rec in &recs {
        let colour = losses.colour(&rec.loss);
        let at = |i: usize| at(rec, i);
        for (i, r) in rec.rows.iter().enumerate() {
            let on_front = rec.front.contains(&i);
            let fill = if on_front { colour } else { WHITE };
            let p = at(i);
            style::marker(
                root,
                losses.shape(&rec.loss),
                p,
                layout.marker,
                fill,
                colour,
                layout.stroke,
            )?;
            marks.push(Mark {
                x: p.0,
                y: p.1,
                fill: (fill.0, fill.1, fill.2),
                stroke: (colour.0, colour.1, colour.2),
                model: r.model.clone(),
            });
        }
        notes.push((colour, rec.loss.clone(), rec.reason.clone()));
    }
    // The side panel: the key, then each loss's recommendation.
    let (l, t, r, _) = frame.side;
    let f = layout.font;
    let mut yy = t;
    let key = [
        "filled: on the Pareto front",
        "hollow: dominated",
        "thin ring: the knee",
        "thick black ring: recommended",
        "labels: training τ",
    ];
    for line in key {
        frame::text(root, line, (l, yy), &layout, 0.75, BLACK)?;
        yy += (f * 0.75 * 1.35) as i32;
    }
    yy += (f * 0.6) as i32;
    let bottom = frame.side.3;
    let line_h = (f * 0.7 * 1.3) as i32;
    for (colour, loss, reason) in notes {
        if yy + (f * 1.3) as i32 + line_h > bottom {
            frame::text(
                root,
                "… (compare --recommend)",
                (l, yy),
                &layout,
                0.7,
                frame::MUTED,
            )?;
            break;
        }
        style::marker(
            root,
            losses.shape(&loss),
            (l + layout.marker + 2, yy + (f * 0.45) as i32),
            layout.marker,
            colour,
            colour,
            layout.stroke,
        )?;
        frame::text_at(
            root,
            &loss,
            (
                l + layout.marker * 2 + (f * 0.5) as i32,
                yy + (f * 0.45) as i32,
            ),
            &layout,
            0.8,
            (HPos::Left, VPos::Center),
        )?;
        yy += (f * 1.3) as i32;
        let lines = style::wrap(&reason, f64::from(r - l), f * 0.7);
        for (i, line) in lines.iter().enumerate() {
            // A reason that does not fit ends in "…" rather than past the panel.
            let last_room = yy + 2 * line_h > bottom;
            let text = if last_room && i + 1 < lines.len() {
                format!("{}…", fit(line, f64::from(r - l) - f, f * 0.7))
            } else {
                line.clone()
            };
            frame::text(root, &text, (l, yy), &layout, 0.7, frame::MUTED)?;
            yy += line_h;
            if last_room {
                break;
            }
        }
        yy += (f * 0.5) as i32;
    }
    Ok(marks)
}
