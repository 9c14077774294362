//! `confusion`: for the smallest and the largest τ, which classes each
//! class's nearest other rows come from (rows: the anchor's class; the
//! share of its k nearest rows in each class), class names on both axes.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::classes::{fit, model_label, sweep};
use super::frame::{self};
use super::heat_map::{canvas, colour_bar, named, scaled};
use super::style::{self};
use super::{caption, draw_error, Layout, Mark};
use crate::domain::Report;
use crate::error::{Error, Result};
use crate::report::classes::{class_name, neighbour_shares as shares};

/// Draws the nearest-neighbour class matrices of the sweep's smallest and
/// largest τ (one panel when there is one model); one mark per cell.
pub(crate) fn draw_confusion<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[Report],
    layout: Layout,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let sweep: Vec<&Report> = sweep(rows)?
        .into_iter()
        .filter(|r| r.per_class.as_ref().and_then(shares).is_some())
        .collect();
    let (Some(small), Some(large)) = (sweep.first(), sweep.last()) else {
        return Err(Error::FailedPrecondition(
            "no completed evaluation here has the nearest-negative classes (were the nearest negatives skipped?)"
                .into(),
        ));
    };
    let panels: Vec<&Report> = if sweep.len() > 1 {
        vec![small, large]
    } else {
        vec![small]
    };
    let reports: Vec<Report> = panels.iter().map(|r| (**r).clone()).collect();
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
