//! Accuracy against τ: weighted-kNN (solid, ●) and linear-probe (dashed, ■)
//! top-1 on a log τ axis, one colour per loss, with 95% Wilson intervals
//! over the test images as error bars. Losses without a τ (the simple
//! losses, the limit τ → ∞ of Wang & Liu Eq. 4) stand apart at the right as
//! "∞ (simple)". The accuracy axis zooms on the bulk of the values; a far
//! outlier sits on the bottom edge with its value.
//!
//! [`Axes`] puts any numeric tag on x (a linear axis: seed, epochs, step…)
//! and colours by any tag. Several models of one colour at one x (seeds of
//! one setting) are one mean mark with the 95% Student-t interval across
//! them as its bar, each model a faint dot behind it; lines join the means,
//! never the models of one x.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::frame::{self, Axis};
use super::style::{self, Losses, Shape, Zoom};
use super::{caption, Axes, Layout, Mark};
use crate::domain::Report;
use crate::error::{Error, Result};

/// The two probes.
const METHODS: [(&str, Shape, Option<f64>); 2] = [
    ("kNN", Shape::Circle, None),
    ("linear", Shape::Square, Some(1.0)),
];

/// The series the figure draws for `metric`: the two probes' top-1, or the
/// one retrieval metric.
fn methods(metric: &str) -> Vec<(&'static str, Shape, Option<f64>)> {
    match metric {
        "map_at_r" => vec![("MAP@R", Shape::Circle, None)],
        "r_precision" => vec![("R-Precision", Shape::Circle, None)],
        "precision_at_1" => vec![("Precision@1", Shape::Circle, None)],
        _ => METHODS.to_vec(),
    }
}

/// What the y axis reads for `metric`.
fn metric_name(metric: &str) -> &'static str {
    match metric {
        "map_at_r" => "MAP@R",
        "r_precision" => "R-Precision",
        "precision_at_1" => "Precision@1",
        _ => "top-1 accuracy",
    }
}

/// A report's value of series `method` of `metric`.
fn accuracy(r: &Report, method: usize, metric: &str) -> Option<f64> {
    let retrieval = r.retrieval.as_ref();
    match (metric, method) {
        ("map_at_r", _) => retrieval.map(|x| x.map_at_r),
        ("r_precision", _) => retrieval.map(|x| x.r_precision),
        ("precision_at_1", _) => retrieval.map(|x| x.precision_at_1),
        (_, 0) => r.knn.as_ref().map(|k| k.top1),
        _ => r.linear.as_ref().map(|l| l.top1),
    }
}

/// The 95% interval of one model's `value` of `metric`: Wilson's over the
/// test rows (or the scored queries) for a proportion; none for MAP@R and
/// R-Precision, which are means of per-query fractions.
fn interval(r: &Report, value: f64, metric: &str) -> (f64, f64) {
    match metric {
        "map_at_r" | "r_precision" => (value, value),
        "precision_at_1" => style::wilson95(
            value,
            r.retrieval.as_ref().map_or(r.num_test, |x| x.queries),
        ),
        _ => style::wilson95(value, r.num_test),
    }
}

/// One mark: a model's accuracy, or the mean of several models' at one x
/// with the half-width of their 95% t-interval.
struct Point<'a> {
    /// The reports it stands for (the first names the mark).
    reports: Vec<&'a Report>,
    /// The accuracy (the mean over `reports`).
    value: f64,
    /// Each report's accuracy (more than one: an aggregate).
    each: Vec<f64>,
}

impl Point<'_> {
    /// The bar's ends: the Wilson interval of one model over the test
    /// images ([`interval`]), the t-interval of the mean across several
    /// models.
    fn bar(&self, metric: &str) -> (f64, f64) {
        if self.each.len() == 1 {
            interval(self.reports[0], self.value, metric)
        } else {
            let s = crate::report::groups::summary("", &self.each);
            (s.mean - s.interval, s.mean + s.interval)
        }
    }
}

/// Draws the figure; returns one mark per model and probe.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[Report],
    layout: Layout,
    axes: &Axes,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let on_tau = axes.x == "temperature";
    let metric = axes.metric.as_str();
    let methods = methods(metric);
    let value_of_method = |r: &Report, m: usize| accuracy(r, m, metric);
    // On a tag's axis: the reports with a numeric value of it.
    let x_tag = |r: &Report| -> Option<f64> {
        r.tags
            .get(&axes.x)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let with_accuracy: Vec<&Report> = rows
        .iter()
        .filter(|r| (0..methods.len()).any(|m| value_of_method(r, m).is_some()))
        .collect();
    let reports: Vec<Report> = with_accuracy
        .iter()
        .filter(|r| on_tau || x_tag(r).is_some())
        .map(|r| (*r).clone())
        .collect();
    let left_out = with_accuracy.len() - reports.len();
    if reports.is_empty() {
        return Err(Error::FailedPrecondition(if with_accuracy.is_empty() {
            if metric == "top1" {
                "no completed evaluation here has a kNN or linear accuracy".to_string()
            } else {
                format!(
                    "no completed evaluation here has the retrieval metrics ({} was asked for; they were skipped, or the reports predate them)",
                    metric
                )
            }
        } else {
            let mut numeric: Vec<&str> = with_accuracy
                .iter()
                .flat_map(|r| r.tags.iter())
                .filter(|(k, v)| {
                    k.as_str() != "temperature" && v.parse::<f64>().is_ok_and(f64::is_finite)
                })
                .map(|(k, _)| k.as_str())
                .collect();
            numeric.sort_unstable();
            numeric.dedup();
            let mut known = numeric.clone();
            known.push("temperature");
            format!(
                "no evaluation here has a numeric tag {:?} for the x axis (numeric tags here: {}; \
                 or temperature, the default){}",
                axes.x,
                if numeric.is_empty() {
                    "none".to_string()
                } else {
                    numeric.join(", ")
                },
                crate::suggest::did_you_mean(&axes.x, &known)
            )
        }));
    }
    let group_of = |r: &Report| axes.group(r);
    // x: log10 τ, the τ-free losses at a slot to the right; or a tag's
    // value on a linear axis.
    let value_of = |r: &Report| -> Option<f64> {
        if on_tau {
            (r.temperature > 0.0).then_some(r.temperature)
        } else {
            x_tag(r)
        }
    };
    let scale = |v: f64| if on_tau { v.log10() } else { v };
    let mut taus: Vec<f64> = reports.iter().filter_map(value_of).collect();
    taus.sort_by(f64::total_cmp);
    taus.dedup();
    let has_free = reports.iter().any(|r| value_of(r).is_none());
    let (u_lo, u_hi) = match (taus.first(), taus.last()) {
        (Some(a), Some(b)) => (scale(*a), scale(*b)),
        _ => (0.0, 0.0),
    };
    let span = if on_tau {
        (u_hi - u_lo).max(0.5)
    } else {
        (u_hi - u_lo).max(1.0)
    };
    let u_inf = if taus.is_empty() {
        0.0
    } else {
        u_hi + span * 0.22
    };
    let u_of = |r: &Report| value_of(r).map_or(u_inf, scale);
    let x_zoom = Zoom {
        lo: if taus.is_empty() {
            -0.5
        } else {
            u_lo - span * 0.08
        },
        hi: if has_free {
            u_inf + span * 0.1
        } else {
            u_hi + span * 0.08
        },
    };
    let mut ticks: Vec<f64> = taus.iter().map(|t| scale(*t)).collect();
    let mut labels: Vec<String> = taus.iter().map(|t| style::short(*t)).collect();
    // Tick labels that would collide are thinned (every τ keeps its tick).
    let px_per_u = f64::from(layout.width) * 0.62 / (x_zoom.hi - x_zoom.lo);
    let mut last = f64::NEG_INFINITY;
    for (t, l) in ticks.iter().zip(labels.iter_mut()) {
        if (t - last) * px_per_u < style::text_width(l, layout.font * 0.9) + layout.font * 0.3 {
            l.clear();
        } else {
            last = *t;
        }
    }
    if has_free {
        ticks.push(u_inf);
        labels.push("∞ (simple)".into());
    }
    let x = Axis {
        zoom: x_zoom,
        ticks,
        labels,
        desc: if on_tau {
            "training temperature τ (log scale)".into()
        } else {
            axes.x.clone()
        },
    };

    // y: the bulk of the accuracies and their intervals; far outliers at the edge.
    let values: Vec<f64> = reports
        .iter()
        .flat_map(|r| (0..methods.len()).map(|m| value_of_method(r, m)))
        .flatten()
        .collect();
    let kept = style::inliers(&values);
    let mut ends = Vec::new();
    for r in &reports {
        for m in 0..methods.len() {
            if let Some(a) = value_of_method(r, m).filter(|a| kept.contains(a)) {
                let (lo, hi) = interval(r, a, metric);
                ends.extend([lo, hi]);
            }
        }
    }
    let mut y_zoom = Zoom::over(ends.iter().copied().chain(kept.iter().copied()));
    y_zoom.hi = y_zoom.hi.min(1.0 + (y_zoom.hi - y_zoom.lo) * 0.02);
    let y = Axis::numeric(y_zoom, metric_name(metric), 6);

    let side = (f64::from(layout.width) * 0.22) as u32;
    let what = if metric == "top1" {
        "Accuracy"
    } else {
        metric_name(metric)
    };
    let title = if on_tau {
        format!("{what} against τ")
    } else {
        format!("{what} against {}", axes.x)
    };
    let frame = frame::draw(root, &layout, &title, &x, &y, &caption(&reports), side)?;
    let groups = Losses::of_names(reports.iter().map(&group_of).collect());
    // Side by side at each x: the groups that have a model there, kNN then
    // linear for each, a marker radius apart.
    let spacing = f64::from(layout.marker) * 1.15;
    let offset = |r: &Report, m: usize| -> i32 {
        let here: Vec<&String> = groups
            .names()
            .iter()
            .filter(|g| {
                reports
                    .iter()
                    .any(|o| group_of(o) == **g && (u_of(o) - u_of(r)).abs() < 1e-12)
            })
            .collect();
        let i = here.iter().position(|g| **g == group_of(r)).unwrap_or(0);
        let n = here.len() * methods.len();
        ((((i * methods.len() + m) as f64) - (n as f64 - 1.0) / 2.0) * spacing).round() as i32
    };
    let at = |r: &Report, m: usize, a: f64| {
        let (x, y) = frame.px(u_of(r), y_zoom.clamp(a));
        (x + offset(r, m), y)
    };
    // The τ-free slot apart from the sweep.
    if has_free && !taus.is_empty() {
        let sep = (u_hi + u_inf) / 2.0;
        let (top, bottom) = (frame.px(sep, y_zoom.hi), frame.px(sep, y_zoom.lo));
        frame::line(
            root,
            top,
            bottom,
            frame::MUTED.stroke_width(1),
            Some(layout.font * 0.3),
        )?;
    }

    let mut marks = Vec::new();
    let mut outliers = Vec::new();
    let mut aggregated = false;
    let mut single = false;
    for group in groups.names() {
        let colour = groups.colour(group);
        let faint = style::blend(colour, WHITE, 0.6);
        let mut these: Vec<&Report> = reports.iter().filter(|r| group_of(r) == *group).collect();
        these.sort_by(|a, b| u_of(a).total_cmp(&u_of(b)));
        for (m, (_, shape, dash)) in methods.iter().enumerate() {
            // The models of one x are one point.
            let mut points: Vec<Point> = Vec::new();
            for r in &these {
                let Some(a) = value_of_method(r, m) else {
                    continue;
                };
                match points
                    .last_mut()
                    .filter(|p| (u_of(p.reports[0]) - u_of(r)).abs() < 1e-12)
                {
                    Some(p) => {
                        p.reports.push(r);
                        p.each.push(a);
                        p.value = p.each.iter().sum::<f64>() / p.each.len() as f64;
                    }
                    None => points.push(Point {
                        reports: vec![r],
                        value: a,
                        each: vec![a],
                    }),
                }
            }
            // Lines join the sweep's points, not the ∞ slot.
            let swept: Vec<(i32, i32)> = points
                .iter()
                .filter(|p| value_of(p.reports[0]).is_some())
                .map(|p| at(p.reports[0], m, p.value))
                .collect();
            for pair in swept.windows(2) {
                frame::line(
                    root,
                    pair[0],
                    pair[1],
                    colour.stroke_width(layout.stroke),
                    dash.map(|d| d * layout.font * 0.5),
                )?;
            }
            for p in &points {
                let r = p.reports[0];
                let at = at(r, m, p.value);
                if p.each.len() > 1 {
                    aggregated = true;
                    // Each model faint behind the mean, inside the axes.
                    for (o, a) in p.reports.iter().zip(&p.each) {
                        let (_, y) = frame.px(0.0, y_zoom.clamp(*a));
                        style::marker(
                            root,
                            *shape,
                            (at.0, y),
                            (layout.marker / 2).max(2),
                            faint,
                            faint,
                            1,
                        )?;
                        marks.push(Mark {
                            x: at.0,
                            y,
                            fill: (faint.0, faint.1, faint.2),
                            stroke: (faint.0, faint.1, faint.2),
                            model: o.model.clone(),
                        });
                    }
                }
                if y_zoom.contains(p.value) {
                    let (lo, hi) = p.bar(metric);
                    frame::error_bar(
                        root,
                        at.0,
                        frame.px(0.0, y_zoom.clamp(hi)).1,
                        frame.px(0.0, y_zoom.clamp(lo)).1,
                        layout.marker / 2 + 1,
                        colour.stroke_width(layout.stroke.max(2) - 1),
                    )?;
                } else {
                    outliers.push((at, p.value));
                }
                let fill = if m == 0 { colour } else { WHITE };
                style::marker(
                    root,
                    *shape,
                    at,
                    layout.marker * 4 / 5,
                    fill,
                    colour,
                    layout.stroke,
                )?;
                if p.each.len() == 1 {
                    single = true;
                    marks.push(Mark {
                        x: at.0,
                        y: at.1,
                        fill: (fill.0, fill.1, fill.2),
                        stroke: (colour.0, colour.1, colour.2),
                        model: r.model.clone(),
                    });
                }
            }
        }
    }
    // Labels of outliers at one place on an edge are stacked, not
    // overprinted.
    let mut stacked: std::collections::HashMap<(i32, bool), i32> = Default::default();
    for ((x, y), value) in &outliers {
        let up = *y < frame.plot.1 + 4;
        let slot = stacked.entry((*x / layout.marker.max(1), up)).or_insert(0);
        let step = *slot * (layout.font * 0.9) as i32 + layout.marker;
        *slot += 1;
        let (text_y, anchor) = if up {
            (y + step, VPos::Top)
        } else {
            (y - step, VPos::Bottom)
        };
        frame::text_at(
            root,
            &format!("{} {}", if up { "▲" } else { "▼" }, style::short(*value)),
            (x + layout.marker, text_y),
            &layout,
            0.75,
            (HPos::Left, anchor),
        )?;
    }

    // Side panel: losses by colour, probes by line and marker, the interval.
    let (l, t, r_edge, _) = frame.side;
    let f = layout.font;
    let mut yy = t;
    frame::text(root, &axes.group_by, (l, yy), &layout, 0.9, BLACK)?;
    yy += (f * 1.4) as i32;
    for loss in groups.names() {
        let c = groups.colour(loss);
        root.draw(&Rectangle::new(
            [
                (l, yy + (f * 0.2) as i32),
                (l + (f * 1.4) as i32, yy + (f * 0.7) as i32),
            ],
            c.filled(),
        ))
        .map_err(super::draw_error)?;
        frame::text(root, loss, (l + (f * 1.9) as i32, yy), &layout, 0.8, BLACK)?;
        yy += (f * 1.3) as i32;
    }
    yy += (f * 0.6) as i32;
    for &(name, shape, dash) in &methods {
        let mid = yy + (f * 0.45) as i32;
        frame::line(
            root,
            (l, mid),
            (l + (f * 2.2) as i32, mid),
            BLACK.stroke_width(layout.stroke),
            dash.map(|d| d * f * 0.5),
        )?;
        frame::sample(
            root,
            shape,
            (l + (f * 1.1) as i32, mid),
            &layout,
            if dash.is_none() { BLACK } else { WHITE },
            BLACK,
        )?;
        frame::text(root, name, (l + (f * 2.6) as i32, yy), &layout, 0.8, BLACK)?;
        yy += (f * 1.3) as i32;
    }
    yy += (f * 0.6) as i32;
    let n = reports.iter().map(|r| r.num_test).max().unwrap_or(0);
    let mut notes = Vec::new();
    if single {
        notes.push(format!(
            "Bars: 95% Wilson intervals over the {n} test images."
        ));
    }
    if aggregated {
        notes.push(
            "Several models at one x: their mean, the bar its 95% t-interval across them; \
             faint: each model."
                .into(),
        );
    }
    if has_free {
        notes.push("∞ (simple): losses without a temperature, the limit τ → ∞.".into());
    }
    if left_out > 0 {
        notes.push(format!(
            "{left_out} model(s) without a numeric {} left out.",
            axes.x
        ));
    }
    let above = outliers.iter().any(|((_, y), _)| *y < frame.plot.1 + 4);
    let below = outliers.iter().any(|((_, y), _)| *y >= frame.plot.1 + 4);
    if above || below {
        let arrows = match (above, below) {
            (true, true) => "▲/▼",
            (true, false) => "▲",
            _ => "▼",
        };
        notes.push(format!("{arrows} value: off the zoomed axis."));
    }
    for note in notes {
        for line in style::wrap(&note, f64::from(r_edge - l), f * 0.75) {
            frame::text(root, &line, (l, yy), &layout, 0.75, frame::MUTED)?;
            yy += (f * 0.75 * 1.3) as i32;
        }
    }
    Ok(marks)
}
