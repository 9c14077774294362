//! The parts around the data every figure shares: the axes (plotters' chart
//! and mesh with our round ticks), the title, the caption of settings, the
//! side panel with the τ colour bar and the legend of losses, text, dashed
//! lines and error bars.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{self, Losses, Shape, TauScale, Zoom};
use super::{draw_error, Layout};
use crate::domain::Report;
use crate::error::Result;

/// Grid and axis grey.
pub const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
/// The fill of a legend marker whose plot markers are filled by τ.
pub const LEGEND_FILL: RGBColor = RGBColor(0xBB, 0xBB, 0xBB);
/// Secondary text.
pub const MUTED: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// One axis: its range, where its ticks are and what they read.
#[derive(Debug, Clone)]
pub struct Axis {
    /// The range drawn.
    pub zoom: Zoom,
    /// Tick positions, in data units.
    pub ticks: Vec<f64>,
    /// One label per tick.
    pub labels: Vec<String>,
    /// What the axis measures.
    pub desc: String,
}

impl Axis {
    /// A numeric axis over `zoom` with round ticks, labelled with as many
    /// decimals as the ticks need.
    pub fn numeric(zoom: Zoom, desc: &str, target: usize) -> Self {
        let ticks = style::nice_ticks(zoom.lo, zoom.hi, target);
        let d = style::decimals(&ticks);
        let labels = ticks.iter().map(|t| format!("{t:.d$}")).collect();
        Self {
            zoom,
            ticks,
            labels,
            desc: desc.into(),
        }
    }
}

impl Axis {
    /// The label of tick `v` ("" for a value that is not a tick).
    pub fn label_of(&self, v: f64) -> String {
        self.ticks
            .iter()
            .position(|t| (t - v).abs() <= 1e-9 * (1.0 + v.abs()))
            .map(|i| self.labels[i].clone())
            .unwrap_or_default()
    }

    /// An axis of whole numbers (steps, epochs) over `zoom`: round ticks,
    /// integers only, at least one unit wide.
    pub fn integers(zoom: Zoom, desc: &str, target: usize) -> Self {
        let zoom = if zoom.hi - zoom.lo < 2.0 {
            let mid = (zoom.lo + zoom.hi) / 2.0;
            Zoom {
                lo: mid - 1.0,
                hi: mid + 1.0,
            }
        } else {
            zoom
        };
        let mut ticks: Vec<f64> = style::nice_ticks(zoom.lo, zoom.hi, target)
            .into_iter()
            .map(f64::round)
            .collect();
        ticks.dedup();
        let labels = ticks.iter().map(|t| format!("{t:.0}")).collect();
        Self {
            zoom,
            ticks,
            labels,
            desc: desc.into(),
        }
    }
}

/// A linear coordinate whose grid lines and labels sit at given ticks.
pub(crate) struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticked {
    /// The coordinate of `axis`: its range and its ticks.
    pub(crate) fn of(axis: &Axis) -> Self {
        Self {
            inner: (axis.zoom.lo..axis.zoom.hi).into(),
            ticks: axis.ticks.clone(),
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// The plotting area of a drawn frame, and the side panel beside it.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Plot area in pixels: left, top, right, bottom.
    pub plot: (i32, i32, i32, i32),
    x: Zoom,
    y: Zoom,
    /// Side panel in pixels: left, top, right, bottom.
    pub side: (i32, i32, i32, i32),
}

impl Frame {
    /// Pixel of data point `(x, y)` (not clamped).
    pub fn px(&self, x: f64, y: f64) -> (i32, i32) {
        let (l, t, r, b) = self.plot;
        let fx = (x - self.x.lo) / (self.x.hi - self.x.lo);
        let fy = (y - self.y.lo) / (self.y.hi - self.y.lo);
        (
            (f64::from(l) + fx * f64::from(r - l)).round() as i32,
            (f64::from(b) - fy * f64::from(b - t)).round() as i32,
        )
    }

    /// The plot area as a [`style::Rect`].
    pub fn bounds(&self) -> style::Rect {
        let (l, t, r, b) = self.plot;
        style::Rect {
            x0: f64::from(l),
            y0: f64::from(t),
            x1: f64::from(r),
            y1: f64::from(b),
        }
    }
}

fn font(layout: &Layout, scale: f64) -> TextStyle<'static> {
    ("sans-serif", layout.font * scale)
        .into_font()
        .color(&BLACK)
}

/// Draws `text` with its top-left corner at `at`.
pub fn text<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &str,
    at: (i32, i32),
    layout: &Layout,
    scale: f64,
    colour: RGBColor,
) -> Result<()> {
    let style = font(layout, scale).color(&colour);
    root.draw(&Text::new(s.to_string(), at, style))
        .map_err(draw_error)
}

/// Draws `text` anchored at `at` by `h` and `v`.
pub fn text_at<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &str,
    at: (i32, i32),
    layout: &Layout,
    scale: f64,
    anchor: (HPos, VPos),
) -> Result<()> {
    let style = font(layout, scale).pos(Pos::new(anchor.0, anchor.1));
    root.draw(&Text::new(s.to_string(), at, style))
        .map_err(draw_error)
}

thread_local! {
    /// The plot areas [`draw`] made on this thread since [`take_plots`]:
    /// how a drawn figure tells where its data may go.
    static PLOTS: std::cell::RefCell<Vec<(i32, i32, i32, i32)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The plot areas (left, top, right, bottom) drawn on this thread since
/// the last call, emptying the list.
pub fn take_plots() -> Vec<(i32, i32, i32, i32)> {
    PLOTS.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

/// The title's size, as a multiple of the body text: 1.1, or less so that
/// it fits the chart's width (the figure less the side panel and margins).
pub fn title_scale(title: &str, layout: &Layout, side: u32) -> f64 {
    let room = f64::from(layout.width.saturating_sub(side)) - layout.font * 2.0;
    let wide = style::text_width(title, layout.font * 1.1);
    if wide <= room {
        1.1
    } else {
        1.1 * room / wide
    }
}

/// Draws the axes, ticks, grid, title and caption; returns where the data
/// goes. The side panel takes `side` pixels at the right.
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    layout: &Layout,
    title: &str,
    x: &Axis,
    y: &Axis,
    caption: &str,
    side: u32,
) -> Result<Frame> {
    let (w, h) = (layout.width, layout.height);
    let lines = style::wrap(caption, f64::from(w) - layout.font * 2.0, layout.font * 0.8);
    let caption_h = (lines.len() as f64 * layout.font * 0.8 * 1.3 + layout.font) as u32;
    let (upper, lower) = root.split_vertically(h.saturating_sub(caption_h));
    let (chart_area, _) = upper.split_horizontally(w.saturating_sub(side));
    let x_spec = Ticked::of(x);
    let y_spec = Ticked::of(y);
    let fx = |v: &f64| x.label_of(*v);
    let fy = |v: &f64| y.label_of(*v);
    let y_label_w = y
        .labels
        .iter()
        .map(|l| style::text_width(l, layout.font))
        .fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(title, font(layout, title_scale(title, layout, side)))
        .margin(layout.font * 0.6)
        .x_label_area_size(layout.font * 2.8)
        .y_label_area_size(y_label_w + layout.font * 2.4)
        .build_cartesian_2d(x_spec, y_spec)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .x_desc(x.desc.as_str())
        .y_desc(y.desc.as_str())
        .label_style(font(layout, 0.9))
        .axis_desc_style(font(layout, 1.0))
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(BLACK.stroke_width(layout.stroke))
        .set_all_tick_mark_size(layout.font * 0.35)
        .draw()
        .map_err(draw_error)?;
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let plot = (xr.start, yr.start, xr.end - 1, yr.end - 1);
    PLOTS.with(|p| p.borrow_mut().push(plot));
    let frame = Frame {
        plot,
        x: x.zoom,
        y: y.zoom,
        side: (
            (w - side) as i32,
            yr.start,
            w as i32 - (layout.font * 0.5) as i32,
            yr.end,
        ),
    };
    // The caption: dataset, splits and settings.
    let (_, top) = lower.get_base_pixel();
    for (i, line) in lines.iter().enumerate() {
        text(
            root,
            line,
            (
                layout.font as i32,
                top + (layout.font * 0.3 + i as f64 * layout.font * 0.8 * 1.3) as i32,
            ),
            layout,
            0.8,
            MUTED,
        )?;
    }
    Ok(frame)
}

/// What the tolerance axis of the uniformity–tolerance plane measures.
pub const TOLERANCE_AXIS: &str = "tolerance (mean similarity of same-class pairs)";
/// What its uniformity axis measures.
pub const UNIFORMITY_AXIS: &str = "uniformity  −L_uniformity";

/// Draws `label` where [`style::place_labels`] put it (`at`), at `scale`
/// of the body text; a label placed away from its point `centre` is joined
/// to it by a thin leader line.
pub fn placed_label<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    label: &str,
    at: style::Placed,
    centre: (f64, f64),
    layout: &Layout,
    scale: f64,
) -> Result<()> {
    if at.leader {
        let w = style::text_width(label, layout.font * scale);
        let anchor = (
            (at.x + w / 2.0) as i32,
            if at.y > centre.1 {
                at.y as i32
            } else {
                (at.y + layout.font * scale * 1.1) as i32
            },
        );
        root.draw(&PathElement::new(
            vec![(centre.0 as i32, centre.1 as i32), anchor],
            MUTED.stroke_width(1),
        ))
        .map_err(draw_error)?;
    }
    text(
        root,
        label,
        (at.x as i32, at.y as i32),
        layout,
        scale,
        BLACK,
    )
}

/// A straight line from `a` to `b` in `dash`-pixel dashes (solid when None).
pub fn line<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    a: (i32, i32),
    b: (i32, i32),
    style: ShapeStyle,
    dash: Option<f64>,
) -> Result<()> {
    let Some(dash) = dash else {
        return root
            .draw(&PathElement::new(vec![a, b], style))
            .map_err(draw_error);
    };
    let (dx, dy) = (f64::from(b.0 - a.0), f64::from(b.1 - a.1));
    let len = (dx * dx + dy * dy).sqrt();
    let mut s = 0.0;
    while s < len {
        let e = (s + dash).min(len);
        let at = |t: f64| {
            (
                a.0 + (dx * t / len).round() as i32,
                a.1 + (dy * t / len).round() as i32,
            )
        };
        root.draw(&PathElement::new(vec![at(s), at(e)], style))
            .map_err(draw_error)?;
        s += dash * 1.8;
    }
    Ok(())
}

/// A vertical error bar from `top` to `bottom` at `x`, with caps.
pub fn error_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    x: i32,
    top: i32,
    bottom: i32,
    cap: i32,
    style: ShapeStyle,
) -> Result<()> {
    for path in [
        vec![(x, top), (x, bottom)],
        vec![(x - cap, top), (x + cap, top)],
        vec![(x - cap, bottom), (x + cap, bottom)],
    ] {
        root.draw(&PathElement::new(path, style))
            .map_err(draw_error)?;
    }
    Ok(())
}

/// The side panel's τ colour bar (log scale, ticks at the figure's τs) and
/// its legend of losses (shape, colour; τ-free losses hollow), then `notes`.
pub fn legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    frame: &Frame,
    layout: &Layout,
    reports: &[Report],
    notes: &[String],
) -> Result<()> {
    let taus = TauScale::of(reports);
    let losses = Losses::of(reports);
    let tau_values: Vec<f64> = reports
        .iter()
        .filter(|r| r.temperature > 0.0)
        .map(|r| r.temperature)
        .collect();
    let free: Vec<&String> = reports
        .iter()
        .filter(|r| r.temperature <= 0.0)
        .map(|r| &r.loss)
        .collect();
    let (l, t, _, b) = frame.side;
    let f = layout.font;
    let mut y = t;
    if let Some(scale) = taus {
        text(root, "τ (log scale)", (l, y), layout, 0.9, BLACK)?;
        y += (f * 1.4) as i32;
        let bar_h = ((f64::from(b - t)) * 0.42).max(f * 4.0) as i32;
        let bar_w = (f * 0.9) as i32;
        // Drawn from the top (largest τ) down, one row of pixels at a time.
        for i in 0..bar_h {
            let pos = 1.0 - f64::from(i) / f64::from((bar_h - 1).max(1));
            root.draw(&Rectangle::new(
                [(l, y + i), (l + bar_w, y + i + 1)],
                style::viridis(pos).filled(),
            ))
            .map_err(draw_error)?;
        }
        root.draw(&Rectangle::new(
            [(l, y), (l + bar_w, y + bar_h)],
            BLACK.stroke_width(1),
        ))
        .map_err(draw_error)?;
        let mut last: Option<i32> = None;
        let mut sorted: Vec<f64> = tau_values.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        sorted.dedup();
        for tau in sorted {
            let ty = y + ((1.0 - scale.position(tau)) * f64::from(bar_h - 1)).round() as i32;
            root.draw(&PathElement::new(
                vec![(l + bar_w, ty), (l + bar_w + (f * 0.3) as i32, ty)],
                BLACK.stroke_width(1),
            ))
            .map_err(draw_error)?;
            // Tick labels that would touch the previous one are left out.
            if last.is_none_or(|p| ty - p >= (f * 0.85) as i32) {
                text_at(
                    root,
                    &style::short(tau),
                    (l + bar_w + (f * 0.45) as i32, ty),
                    layout,
                    0.8,
                    (HPos::Left, VPos::Center),
                )?;
                last = Some(ty);
            }
        }
        y += bar_h + (f * 1.2) as i32;
    }
    text(root, "loss", (l, y), layout, 0.9, BLACK)?;
    y += (f * 1.4) as i32;
    for loss in losses.names() {
        let hollow = free.contains(&loss);
        // Filled by τ in the plot: grey here.
        let fill = if hollow { WHITE } else { LEGEND_FILL };
        style::marker(
            root,
            losses.shape(loss),
            (l + layout.marker + 2, y + (f * 0.45) as i32),
            layout.marker,
            fill,
            losses.colour(loss),
            layout.stroke,
        )?;
        text_at(
            root,
            &if hollow {
                format!("{loss} (no τ)")
            } else {
                loss.clone()
            },
            (
                l + layout.marker * 2 + (f * 0.5) as i32,
                y + (f * 0.45) as i32,
            ),
            layout,
            0.8,
            (HPos::Left, VPos::Center),
        )?;
        y += (f * 1.3) as i32;
    }
    y += (f * 0.4) as i32;
    for note in notes {
        for line in style::wrap(note, f64::from(frame.side.2 - l), f * 0.75) {
            text(root, &line, (l, y), layout, 0.75, MUTED)?;
            y += (f * 0.75 * 1.3) as i32;
        }
    }
    Ok(())
}

/// A legend marker sample for `shape` (used by the accuracy figure).
pub fn sample<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    shape: Shape,
    at: (i32, i32),
    layout: &Layout,
    fill: RGBColor,
    stroke: RGBColor,
) -> Result<()> {
    style::marker(root, shape, at, layout.marker, fill, stroke, layout.stroke)
}
