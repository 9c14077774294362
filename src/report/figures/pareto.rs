//! `pareto`: the uniformity–tolerance plane with each loss's Pareto front,
//! its knee and the recommended model marked, the reason beside it.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::classes::fit;
use super::frame::{self, Axis};
use super::style::{self, Losses, Zoom};
use super::{caption, draw_error, Layout, Mark};
use crate::domain::Report;
use crate::error::{Error, Result};
use crate::report::recommend;

/// Draws the uniformity–tolerance plane with each loss's Pareto front (a
/// line), its knee (a ring) and its recommended model (a star of text and a
/// thick ring), the reasons in the side panel; one mark per model.
pub(crate) fn draw_pareto<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[Report],
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
    let reports: Vec<Report> = recs.iter().flat_map(|r| r.rows.clone()).collect();
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
