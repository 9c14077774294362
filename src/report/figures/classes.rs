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
use super::heat_map::heat_map;
use super::style::{self, Losses, Zoom};
use super::{caption, draw_error, Layout, Mark};
use crate::domain::Report;
use crate::error::{Error, Result};
use crate::report::classes::class_name;

/// The most classes drawn as lines; more are a heat map.
pub const MAX_LINES: usize = 12;

/// The most class names written along a heat map's axis; beyond, every
/// n-th.
pub(super) const MAX_NAMES: usize = 40;

/// The sweep the per-class figures draw: the completed reports of the loss
/// with the most models carrying per-class diagnostics, by increasing τ.
pub(super) fn sweep(rows: &[Report]) -> Result<Vec<&Report>> {
    let with: Vec<&Report> = rows
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
    let mut out: Vec<&Report> = with.into_iter().filter(|r| &r.loss == loss).collect();
    out.sort_by(|a, b| a.temperature.total_cmp(&b.temperature));
    Ok(out)
}

/// The label of a model in a sweep: its τ, or its name without one.
pub(super) fn model_label(r: &Report) -> String {
    if r.temperature > 0.0 {
        format!("τ = {}", style::short(r.temperature))
    } else {
        r.model.clone()
    }
}

/// `text` cut to `width` pixels at `font`, with "…" where cut.
pub(super) fn fit(text: &str, width: f64, font: f64) -> String {
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
    rows: &[Report],
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
    let value = |m: &Report, i: usize| -> Option<f64> {
        let p = m.per_class.as_ref()?;
        let at = p.labels.binary_search(&first.labels[i]).ok()?;
        p.tolerance.get(at).copied().filter(|v| v.is_finite())
    };
    let reports: Vec<Report> = sweep.iter().map(|r| (*r).clone()).collect();
    if classes > MAX_LINES || sweep.len() < 2 {
        return heat_map(root, &sweep, &reports, first, &value, layout);
    }
    // x: log10 τ at the sweep's τs (models without a τ have no place here).
    let on_axis: Vec<&Report> = sweep
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
        let pts: Vec<(i32, i32, &Report)> = on_axis
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
