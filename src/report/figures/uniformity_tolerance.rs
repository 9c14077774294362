//! Uniformity (−L_uniformity, Wang & Isola 2020 Eq. 1) against tolerance
//! (Wang & Liu 2021 Eq. 11): the uniformity–tolerance dilemma of Wang & Liu,
//! Figs. 4–7. One marker shape and outline colour per loss, the fill by τ on
//! a log colour scale, models of one loss joined in τ order. The axes zoom
//! on the models with a τ; a model outside (the simple loss, far tolerant
//! and far from uniform) sits at the edge, hollow-headed, with its values.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{self, Axis};
use super::style::{self, Losses, TauScale, Zoom};
use super::{caption, draw_error, Axes, Layout, Mark};
use crate::domain::Report;
use crate::error::{Error, Result};

/// Draws the figure; returns one mark per model.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[Report],
    layout: Layout,
    axes: &Axes,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let pts: Vec<(&Report, f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((r, r.tolerance?, r.uniformity?)))
        .collect();
    if pts.is_empty() {
        return Err(Error::FailedPrecondition(
            "no completed evaluation here has uniformity and tolerance".into(),
        ));
    }
    let with_tau: Vec<&(&Report, f64, f64)> =
        pts.iter().filter(|p| p.0.temperature > 0.0).collect();
    let core: Vec<&(&Report, f64, f64)> = if with_tau.len() >= 2 {
        with_tau
    } else {
        pts.iter().collect()
    };
    let xz = Zoom::over(core.iter().map(|p| p.1));
    let yz = Zoom::over(core.iter().map(|p| p.2));
    let x = Axis::numeric(xz, frame::TOLERANCE_AXIS, 6);
    let y = Axis::numeric(yz, frame::UNIFORMITY_AXIS, 6);
    let reports: Vec<Report> = pts.iter().map(|p| p.0.clone()).collect();
    let side = (f64::from(layout.width) * 0.2) as u32;
    let frame = frame::draw(
        root,
        &layout,
        "Uniformity–tolerance (Wang & Liu 2021, Figs. 4–7)",
        &x,
        &y,
        &caption(&reports),
        side,
    )?;
    let losses = Losses::of(&reports);
    let taus = TauScale::of(&reports);

    // Each loss's models with a τ, joined in τ order; several models at
    // one τ (seeds) are joined through their centroid, never to each other.
    for loss in losses.names() {
        let mut line: Vec<&(&Report, f64, f64)> = pts
            .iter()
            .filter(|p| &p.0.loss == loss && p.0.temperature > 0.0)
            .collect();
        line.sort_by(|a, b| a.0.temperature.total_cmp(&b.0.temperature));
        let mut path: Vec<(i32, i32)> = Vec::new();
        for same in line.chunk_by(|a, b| a.0.temperature == b.0.temperature) {
            let n = same.len() as f64;
            let tol = same.iter().map(|p| p.1).sum::<f64>() / n;
            let unif = same.iter().map(|p| p.2).sum::<f64>() / n;
            path.push(frame.px(xz.clamp(tol), yz.clamp(unif)));
        }
        root.draw(&PathElement::new(
            path,
            losses.colour(loss).mix(0.6).stroke_width(layout.stroke),
        ))
        .map_err(draw_error)?;
    }

    let mut marks = Vec::new();
    let mut centres = Vec::new();
    let mut labels = Vec::new();
    let mut off_axes = Vec::new();
    for (r, tol, unif) in &pts {
        let inside = xz.contains(*tol) && yz.contains(*unif);
        off_axes.push(!inside);
        let at = frame.px(xz.clamp(*tol), yz.clamp(*unif));
        let fill = style::fill_of(r, taus);
        style::marker(
            root,
            losses.shape(&r.loss),
            at,
            layout.marker,
            fill,
            losses.colour(&r.loss),
            layout.stroke,
        )?;
        marks.push(Mark {
            x: at.0,
            y: at.1,
            fill: (fill.0, fill.1, fill.2),
            stroke: {
                let c = losses.colour(&r.loss);
                (c.0, c.1, c.2)
            },
            model: r.model.clone(),
        });
        centres.push((f64::from(at.0), f64::from(at.1)));
        let name = match axes.label.as_str() {
            "temperature" if r.temperature > 0.0 => style::short(r.temperature),
            "temperature" => r.loss.clone(),
            "name" => r.model.clone(),
            tag => r.tags.get(tag).cloned().unwrap_or_else(|| "-".into()),
        };
        labels.push(if inside {
            name
        } else {
            format!(
                "{name} ({}, {}) off axes",
                style::short(*tol),
                style::short(*unif)
            )
        });
    }
    // The models off the axes are labelled first: their label carries their values.
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|i| !off_axes[*i]);
    let by_order = style::place_labels(
        &order.iter().map(|i| centres[*i]).collect::<Vec<_>>(),
        &order.iter().map(|i| labels[*i].clone()).collect::<Vec<_>>(),
        f64::from(layout.marker),
        layout.font * 0.8,
        frame.bounds(),
    );
    let mut placed = vec![None; labels.len()];
    for (i, p) in order.into_iter().zip(by_order) {
        placed[i] = p;
    }
    let mut unlabelled = 0;
    let mut unplaced_off_axes = Vec::new();
    for (i, ((place, label), (cx, cy))) in placed.iter().zip(&labels).zip(&centres).enumerate() {
        let Some(p) = place else {
            if off_axes[i] {
                unplaced_off_axes.push(label.clone());
            } else {
                unlabelled += 1;
            }
            continue;
        };
        frame::placed_label(root, label, *p, (*cx, *cy), &layout, 0.8)?;
    }

    let mut notes = vec!["Labels: training τ.".to_string()];
    if off_axes.iter().any(|o| *o) {
        notes.push("Axes zoom on the models with a τ; a model outside is drawn at the edge with its (tolerance, uniformity).".into());
    }
    // An off-axes model whose label found no room still says where it is.
    notes.extend(unplaced_off_axes);
    if unlabelled > 0 {
        notes.push(format!(
            "{unlabelled} label(s) left out for want of room: read τ from the colour bar."
        ));
    }
    frame::legend(root, &frame, &layout, &reports, &notes)?;
    Ok(marks)
}
