//! Per-rank profiles of each model, side by side within each rank:
//!
//! - negatives: the mean positive similarity z(x)ᵀz(x⁺) against the mean
//!   similarity of the 1st…k-th nearest negative, with the interquartile
//!   range from the report's histograms (Wang & Liu 2021, Fig. 8);
//! - penalty: the mean relative penalty r_i = exp(s_i/τ) / Σ_k exp(s_k/τ)
//!   (Wang & Liu 2021, Eq. 5) on the 1st…k-th nearest negative, on a log
//!   axis: measured, where their Fig. 3 is analytic.
//!
//! Markers are shaped and outlined by loss and filled by τ, as in the
//! uniformity–tolerance figure; each model's points are joined. With many
//! models a figure keeps its markers apart: past [`MARK_BUDGET`] markers it
//! shows a ladder of ranks (1, 2, 3, 5, 10, … and the last), says so, and
//! sizes the markers to the room each model has in a rank.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{self, Axis};
use super::style::{self, Losses, TauScale, Zoom};
use super::{caption, draw_error, Layout, Mark};
use crate::domain::{Histogram, Report};
use crate::error::{Error, Result};

/// The `p`-quantile of a histogram, interpolated within its bin.
pub fn quantile(h: &Histogram, p: f64) -> Option<f64> {
    let total: u64 = h.counts.iter().sum();
    if total == 0 || h.counts.is_empty() {
        return None;
    }
    let width = (h.hi - h.lo) / h.counts.len() as f64;
    let target = p * total as f64;
    let mut seen = 0.0;
    for (i, c) in h.counts.iter().enumerate() {
        let c = *c as f64;
        if c > 0.0 && seen + c >= target {
            return Some(h.lo + width * (i as f64 + (target - seen) / c));
        }
        seen += c;
    }
    Some(h.hi)
}

/// One model's profile: (rank, mean, optional interquartile range); rank
/// 0 is the positive pair.
type Profile = Vec<(f64, f64, Option<(f64, f64)>)>;

/// Most markers a profile figure draws before it thins its ranks.
pub const MARK_BUDGET: usize = 66;
/// The ranks a thinned figure keeps (with the positive and the last).
const LADDER: [usize; 10] = [1, 2, 3, 5, 10, 20, 50, 100, 200, 500];

/// The ranks shown of `ranks` (sorted, distinct) for `models` models: all
/// of them within [`MARK_BUDGET`] markers, else the positive, the
/// [`LADDER`] and the last.
fn shown_ranks(ranks: &[usize], models: usize) -> Vec<usize> {
    if ranks.len() * models <= MARK_BUDGET {
        return ranks.to_vec();
    }
    let last = ranks.last().copied().unwrap_or(0);
    ranks
        .iter()
        .copied()
        .filter(|r| *r == 0 || LADDER.contains(r) || *r == last)
        .collect()
}

/// Draws the profiles of `series` (one per report) on shared axes, one
/// slot per rank shown ([`shown_ranks`]), x described by `x_desc`.
#[allow(clippy::too_many_arguments)]
fn draw_profiles<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    layout: Layout,
    title: &str,
    reports: &[Report],
    series: &[Profile],
    x_desc: &str,
    y: Axis,
    extra_caption: Option<String>,
    mut notes: Vec<String>,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let mut ranks: Vec<usize> = series.iter().flatten().map(|p| p.0 as usize).collect();
    ranks.sort_unstable();
    ranks.dedup();
    let shown = shown_ranks(&ranks, reports.len());
    if shown.len() < ranks.len() {
        let listed: Vec<String> = shown
            .iter()
            .filter(|r| **r > 0)
            .map(|r| r.to_string())
            .collect();
        notes.push(format!(
            "{} models: ranks {} of the {} shown.",
            reports.len(),
            listed.join(", "),
            ranks.iter().filter(|r| **r > 0).count()
        ));
    }
    let slot = |rank: f64| shown.iter().position(|r| *r == rank as usize);
    let series: Vec<Profile> = series
        .iter()
        .map(|p| {
            p.iter()
                .filter_map(|(r, m, q)| slot(*r).map(|s| (s as f64, *m, *q)))
                .collect()
        })
        .collect();
    let x = Axis {
        zoom: Zoom {
            lo: -0.6,
            hi: shown.len() as f64 - 0.4,
        },
        ticks: (0..shown.len()).map(|i| i as f64).collect(),
        labels: shown
            .iter()
            .map(|r| {
                if *r == 0 {
                    "positive".into()
                } else {
                    r.to_string()
                }
            })
            .collect(),
        desc: x_desc.into(),
    };
    let side = (f64::from(layout.width) * 0.2) as u32;
    let text = match extra_caption {
        Some(extra) => format!("{} · {extra}", caption(reports)),
        None => caption(reports),
    };
    let frame = frame::draw(root, &layout, title, &x, &y, &text, side)?;
    let losses = Losses::of(reports);
    let taus = TauScale::of(reports);
    let n = reports.len();
    let width = 0.72;
    // Each model's room in a slot; markers no wider than it.
    let per_model =
        f64::from(frame.px(1.0, 0.0).0 - frame.px(0.0, 0.0).0) * width / (n.max(2) - 1) as f64;
    let marker = (layout.marker * 2 / 3).min((per_model / 2.2) as i32).max(2);
    let mut marks = Vec::new();
    for (i, (r, profile)) in reports.iter().zip(series).enumerate() {
        let off = if n > 1 {
            (i as f64 / (n - 1) as f64 - 0.5) * width
        } else {
            0.0
        };
        let fill = style::fill_of(r, taus);
        let outline = losses.colour(&r.loss);
        let line_colour = if r.temperature > 0.0 { fill } else { outline };
        let pts: Vec<(i32, i32)> = profile
            .iter()
            .map(|(s, m, _)| frame.px(s + off, y.zoom.clamp(*m)))
            .collect();
        root.draw(&PathElement::new(
            pts.clone(),
            line_colour.mix(0.55).stroke_width(1),
        ))
        .map_err(draw_error)?;
        for ((s, _, iqr), at) in profile.iter().zip(&pts) {
            if let Some((lo, hi)) = iqr {
                root.draw(&PathElement::new(
                    vec![
                        frame.px(s + off, y.zoom.clamp(*lo)),
                        frame.px(s + off, y.zoom.clamp(*hi)),
                    ],
                    outline.mix(0.7).stroke_width(1),
                ))
                .map_err(draw_error)?;
            }
            style::marker(root, losses.shape(&r.loss), *at, marker, fill, outline, 2)?;
            marks.push(Mark {
                x: at.0,
                y: at.1,
                fill: (fill.0, fill.1, fill.2),
                stroke: (outline.0, outline.1, outline.2),
                model: r.model.clone(),
            });
        }
    }
    frame::legend(root, &frame, &layout, reports, &notes)?;
    Ok(marks)
}

/// The penalty temperatures of `reports`, smallest first, each once.
fn penalty_taus(reports: &[Report]) -> Option<String> {
    let mut taus: Vec<f64> = reports
        .iter()
        .filter_map(|r| r.spec.as_ref().and_then(|s| s.penalty_temperature))
        .collect();
    taus.sort_by(f64::total_cmp);
    taus.dedup();
    (!taus.is_empty()).then(|| {
        let list: Vec<String> = taus.into_iter().map(style::short).collect();
        format!("r_i at τ = {}", list.join(", "))
    })
}

/// The positive against the nearest negatives (Wang & Liu, Fig. 8).
pub(crate) fn draw_negatives<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[Report],
    layout: Layout,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let reports: Vec<Report> = rows
        .iter()
        .filter(|r| r.positive_similarity.is_some() && !r.nearest_negative_similarity.is_empty())
        .cloned()
        .collect();
    if reports.is_empty() {
        return Err(Error::FailedPrecondition(
            "no completed evaluation here has the positive and nearest-negative similarities"
                .into(),
        ));
    }
    let iqr = |r: &Report, name: &str| {
        let h = r.histograms.iter().find(|h| h.name == name)?;
        Some((quantile(h, 0.25)?, quantile(h, 0.75)?))
    };
    let series: Vec<Profile> = reports
        .iter()
        .map(|r| {
            std::iter::once((
                0.0,
                r.positive_similarity.unwrap_or_default(),
                iqr(r, "positive"),
            ))
            .chain(
                r.nearest_negative_similarity
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        (
                            (i + 1) as f64,
                            *s,
                            iqr(r, &format!("negative_rank_{}", i + 1)),
                        )
                    }),
            )
            .collect()
        })
        .collect();
    let values = series
        .iter()
        .flatten()
        .flat_map(|(_, m, q)| std::iter::once(*m).chain(q.iter().flat_map(|(a, b)| [*a, *b])));
    let mut y_zoom = Zoom::over(values);
    y_zoom.hi = y_zoom.hi.min(1.0 + (y_zoom.hi - y_zoom.lo) * 0.02);
    let y = Axis::numeric(y_zoom, "cosine similarity", 6);
    draw_profiles(
        root,
        layout,
        "Positive and nearest negatives (Wang & Liu 2021, Fig. 8)",
        &reports,
        &series,
        "positive pair, then the 1st … k-th nearest negative",
        y,
        None,
        vec!["Markers: means; bars: interquartile ranges from the histograms.".into()],
    )
}

/// The relative penalty over the nearest negatives (Wang & Liu, Fig. 3).
pub(crate) fn draw_penalty<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[Report],
    layout: Layout,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    let reports: Vec<Report> = rows
        .iter()
        .filter(|r| r.relative_penalty.iter().any(|p| p.is_finite() && *p > 0.0))
        .cloned()
        .collect();
    if reports.is_empty() {
        return Err(Error::FailedPrecondition(
            "no completed evaluation here has a relative-penalty profile".into(),
        ));
    }
    // Penalties span decades: drawn as log10 r on a linear axis. A value
    // that is not a positive number has no place on it and is left out.
    let series: Vec<Profile> = reports
        .iter()
        .map(|r| {
            r.relative_penalty
                .iter()
                .enumerate()
                .filter(|(_, p)| p.is_finite() && **p > 0.0)
                .map(|(i, p)| ((i + 1) as f64, p.log10(), None))
                .collect()
        })
        .collect();
    let logs: Vec<f64> = series.iter().flatten().map(|(_, m, _)| *m).collect();
    let lo = logs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.06).max(0.05);
    let y_zoom = Zoom {
        lo: lo - pad,
        // r ≤ 1: the axis ends just above 1 (log10 1 = 0).
        hi: (hi + pad).min(0.02f64.max(hi + pad / 2.0)),
    };
    // Ticks at 1, 2 and 5 per decade when few decades show, else decades.
    let decades = (y_zoom.lo.floor() as i32)..=(y_zoom.hi.ceil() as i32);
    let per = if y_zoom.hi - y_zoom.lo < 3.5 {
        vec![1.0, 2.0, 5.0]
    } else {
        vec![1.0]
    };
    let mut ticks = Vec::new();
    for d in decades {
        for m in &per {
            let v = (m * 10f64.powi(d)).log10();
            if y_zoom.contains(v) {
                ticks.push(v);
            }
        }
    }
    let labels = ticks
        .iter()
        .map(|t| {
            let v = 10f64.powf(*t);
            if v >= 0.01 {
                style::short(v)
            } else {
                format!("{v:.0e}")
            }
        })
        .collect();
    let y = Axis {
        zoom: y_zoom,
        ticks,
        labels,
        desc: "relative penalty r_i (log scale)".into(),
    };
    let uniform = reports
        .iter()
        .map(|r| r.num_test.saturating_sub(1))
        .max()
        .unwrap_or(0);
    draw_profiles(
        root,
        layout,
        "Relative penalty on the nearest negatives (Wang & Liu 2021, Eq. 5, Fig. 3)",
        &reports,
        &series,
        "rank of the negative by similarity to the anchor",
        y,
        penalty_taus(&reports),
        vec![format!(
            "An even spread over the {uniform} negatives would give r_i = {} each.",
            if uniform > 0 {
                format!("{:.0e}", 1.0 / uniform as f64)
            } else {
                "-".into()
            }
        )],
    )
}
