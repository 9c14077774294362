//! What every figure shares: the colours and marker shapes of the losses, the
//! τ colour scale, round ticks, the zoom that keeps outliers from flattening
//! a plot, label placement without overlap, and the Wilson interval.

use plotters::prelude::*;

use crate::domain::Report;

/// Okabe & Ito's colour-blind-safe palette, the losses' colours.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x44, 0x44, 0x44), // dark grey
];

/// Twelve colours told apart at a glance (Tableau 10, then two more), for
/// categories such as classes.
const CATEGORICAL: [RGBColor; 12] = [
    RGBColor(0x1F, 0x77, 0xB4),
    RGBColor(0xFF, 0x7F, 0x0E),
    RGBColor(0x2C, 0xA0, 0x2C),
    RGBColor(0xD6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xBD),
    RGBColor(0x8C, 0x56, 0x4B),
    RGBColor(0xE3, 0x77, 0xC2),
    RGBColor(0x7F, 0x7F, 0x7F),
    RGBColor(0xBC, 0xBD, 0x22),
    RGBColor(0x17, 0xBE, 0xCF),
    RGBColor(0x00, 0x00, 0x80),
    RGBColor(0x80, 0x00, 0x00),
];

/// The `i`-th categorical colour (repeating after twelve).
pub fn categorical(i: usize) -> RGBColor {
    CATEGORICAL[i % CATEGORICAL.len()]
}

/// The losses of the zoo keep one colour and shape wherever they appear.
const KNOWN: [&str; 4] = ["infonce", "hard_infonce", "simple", "hard_simple"];

/// A marker's outline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// ●
    Circle,
    /// ■
    Square,
    /// ▲
    TriangleUp,
    /// ◆
    Diamond,
    /// ▼
    TriangleDown,
    /// ⬟
    Pentagon,
}

const SHAPES: [Shape; 6] = [
    Shape::Circle,
    Shape::Square,
    Shape::TriangleUp,
    Shape::Diamond,
    Shape::TriangleDown,
    Shape::Pentagon,
];

/// The losses of a set of reports, the zoo's first in their fixed order,
/// then the others by name; each with its colour and shape.
#[derive(Debug, Clone)]
pub struct Losses {
    names: Vec<String>,
}

impl Losses {
    /// The distinct losses of `reports`.
    pub fn of(reports: &[Report]) -> Self {
        Self::of_names(reports.iter().map(|r| r.loss.clone()).collect())
    }

    /// The distinct names among `names` (a loss or any tag's values), the
    /// zoo's losses first.
    pub fn of_names(mut names: Vec<String>) -> Self {
        names.sort_by_key(|n| {
            (
                KNOWN.iter().position(|k| k == n).unwrap_or(KNOWN.len()),
                n.clone(),
            )
        });
        names.dedup();
        Self { names }
    }

    /// The losses in legend order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn index(&self, loss: &str) -> usize {
        self.names.iter().position(|n| n == loss).unwrap_or(0)
    }

    /// The loss's colour.
    pub fn colour(&self, loss: &str) -> RGBColor {
        PALETTE[self.index(loss) % PALETTE.len()]
    }

    /// The loss's marker shape.
    pub fn shape(&self, loss: &str) -> Shape {
        SHAPES[self.index(loss) % SHAPES.len()]
    }
}

/// `a` moved towards `b` by `t` (0: `a`, 1: `b`), per channel.
pub fn blend(a: RGBColor, b: RGBColor, t: f64) -> RGBColor {
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Viridis (van der Walt & Smith, matplotlib), sampled at nine points.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// Viridis at `t` in [0, 1].
pub fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (VIRIDIS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f64;
    let lerp = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

/// The τ colour scale: viridis over log τ between the smallest and the
/// largest τ of the figure.
#[derive(Debug, Clone, Copy)]
pub struct TauScale {
    /// log10 of the smallest τ.
    pub lo: f64,
    /// log10 of the largest τ.
    pub hi: f64,
}

impl TauScale {
    /// The scale of the reports' positive τs (None when there are none).
    pub fn of(reports: &[Report]) -> Option<Self> {
        let logs: Vec<f64> = reports
            .iter()
            .filter(|r| r.temperature > 0.0)
            .map(|r| r.temperature.log10())
            .collect();
        let lo = logs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        lo.is_finite().then_some(Self { lo, hi })
    }

    /// Where τ falls on the scale, in [0, 1].
    pub fn position(&self, tau: f64) -> f64 {
        if self.hi - self.lo < 1e-12 {
            0.5
        } else {
            (tau.log10() - self.lo) / (self.hi - self.lo)
        }
    }

    /// τ's colour.
    pub fn colour(&self, tau: f64) -> RGBColor {
        viridis(self.position(tau))
    }
}

/// A model's fill: its τ's colour, or white for the τ-free losses (drawn
/// hollow, in their loss colour).
pub fn fill_of(report: &Report, taus: Option<TauScale>) -> RGBColor {
    match taus {
        Some(scale) if report.temperature > 0.0 => scale.colour(report.temperature),
        _ => WHITE,
    }
}

/// Draws a marker of `shape` centred on `at` (pixels), filled with `fill`
/// and outlined in `stroke`.
pub fn marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    shape: Shape,
    at: (i32, i32),
    radius: i32,
    fill: RGBColor,
    stroke: RGBColor,
    stroke_width: u32,
) -> super::Result<()> {
    let (x, y) = at;
    let r = radius;
    let polygon = |points: Vec<(i32, i32)>| -> super::Result<()> {
        area.draw(&Polygon::new(points.clone(), fill.filled()))
            .map_err(super::draw_error)?;
        let mut closed = points;
        closed.push(closed[0]);
        area.draw(&PathElement::new(closed, stroke.stroke_width(stroke_width)))
            .map_err(super::draw_error)
    };
    match shape {
        Shape::Circle => {
            area.draw(&Circle::new(at, r, fill.filled()))
                .map_err(super::draw_error)?;
            area.draw(&Circle::new(at, r, stroke.stroke_width(stroke_width)))
                .map_err(super::draw_error)
        }
        Shape::Square => {
            let s = (f64::from(r) * 0.85).round() as i32;
            polygon(vec![
                (x - s, y - s),
                (x + s, y - s),
                (x + s, y + s),
                (x - s, y + s),
            ])
        }
        Shape::TriangleUp => polygon(vec![
            (x, y - r - r / 5),
            (x + r, y + r * 3 / 4),
            (x - r, y + r * 3 / 4),
        ]),
        Shape::TriangleDown => polygon(vec![
            (x, y + r + r / 5),
            (x + r, y - r * 3 / 4),
            (x - r, y - r * 3 / 4),
        ]),
        Shape::Diamond => {
            let d = r + r / 4;
            polygon(vec![(x, y - d), (x + d, y), (x, y + d), (x - d, y)])
        }
        Shape::Pentagon => polygon(
            (0..5)
                .map(|k| {
                    let a = -std::f64::consts::FRAC_PI_2
                        + f64::from(k) * 2.0 * std::f64::consts::PI / 5.0;
                    (
                        x + (f64::from(r) * 1.1 * a.cos()).round() as i32,
                        y + (f64::from(r) * 1.1 * a.sin()).round() as i32,
                    )
                })
                .collect(),
        ),
    }
}

/// Round tick positions covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about
/// `target` of them.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // Rounded to 12 decimals: 3 × 0.2 reads 0.6, not 0.6000000000000001.
    (first..=last)
        .map(|i| (i as f64 * step * 1e12).round() / 1e12)
        .collect()
}

/// Decimals that tell ticks `step` apart (and no more).
pub fn decimals(ticks: &[f64]) -> usize {
    let step = ticks
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(f64::INFINITY, f64::min);
    if !step.is_finite() || step <= 0.0 {
        return 2;
    }
    (0..=6)
        .find(|d| {
            let scale = 10f64.powi(*d);
            ticks
                .iter()
                .all(|t| ((t * scale).round() - t * scale).abs() < 1e-6)
        })
        .unwrap_or(6) as usize
}

/// A compact number: "0.05", "1", "0.3".
pub fn short(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// An axis range that zooms on the bulk of `values`: Tukey's far-out fences
/// (3 interquartile ranges beyond the quartiles) decide which values are
/// outliers; the range covers the others (and `keep`, values that must be
/// visible such as interval ends of kept points) with a margin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zoom {
    /// Lower end of the axis.
    pub lo: f64,
    /// Upper end of the axis.
    pub hi: f64,
}

impl Zoom {
    /// The range over `core` values, with 8% margins, never empty.
    pub fn over(core: impl IntoIterator<Item = f64>) -> Self {
        let (lo, hi) = core
            .into_iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if !lo.is_finite() {
            return Self { lo: 0.0, hi: 1.0 };
        }
        let pad = ((hi - lo) * 0.08).max(hi.abs().max(1e-3) * 0.01);
        Self {
            lo: lo - pad,
            hi: hi + pad,
        }
    }

    /// Whether `v` is drawn where it is (not clamped to an edge).
    pub fn contains(&self, v: f64) -> bool {
        v >= self.lo && v <= self.hi
    }

    /// `v`, clamped into the range.
    pub fn clamp(&self, v: f64) -> f64 {
        v.clamp(self.lo, self.hi)
    }
}

/// The values of `values` that are not far out: beyond Tukey's fences at 3
/// IQR *and* farther from the others than twice their own spread (a value
/// that would no more than triple the axis stays on it).
pub fn inliers(values: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.len() < 4 {
        return sorted;
    }
    let q = |p: f64| {
        let pos = p * (sorted.len() - 1) as f64;
        let i = pos.floor() as usize;
        let f = pos - i as f64;
        sorted[i] + (sorted[(i + 1).min(sorted.len() - 1)] - sorted[i]) * f
    };
    let (q1, q3) = (q(0.25), q(0.75));
    let iqr = (q3 - q1).max(1e-9);
    let fenced: Vec<f64> = sorted
        .iter()
        .copied()
        .filter(|v| *v >= q1 - 3.0 * iqr && *v <= q3 + 3.0 * iqr)
        .collect();
    let (Some(lo), Some(hi)) = (fenced.first().copied(), fenced.last().copied()) else {
        return sorted;
    };
    // A spread of (nearly) nothing keeps values within 1% of the bulk.
    let span = (hi - lo).max(iqr).max(0.01 * lo.abs().max(hi.abs()));
    sorted
        .into_iter()
        .filter(|v| *v >= lo - 2.0 * span && *v <= hi + 2.0 * span)
        .collect()
}

/// The 95% Wilson score interval of `successes` out of `n` (Wilson 1927;
/// Brown, Cai & DasGupta 2001, Eq. 4): centre (p̂ + z²/2n)/(1 + z²/n),
/// half-width z/(1 + z²/n)·√(p̂(1−p̂)/n + z²/4n²), z = 1.959964.
pub fn wilson95(p_hat: f64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let n = n as f64;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p_hat + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p_hat * (1.0 - p_hat) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// An axis-aligned box in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left.
    pub x0: f64,
    /// Top.
    pub y0: f64,
    /// Right.
    pub x1: f64,
    /// Bottom.
    pub y1: f64,
}

impl Rect {
    /// The box of half-size `r` around `(x, y)`.
    pub fn around(x: f64, y: f64, r: f64) -> Self {
        Self {
            x0: x - r,
            y0: y - r,
            x1: x + r,
            y1: y + r,
        }
    }

    fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    fn inside(&self, o: &Rect) -> bool {
        self.x0 >= o.x0 && self.x1 <= o.x1 && self.y0 >= o.y0 && self.y1 <= o.y1
    }
}

/// Width in pixels of `text` at `font` pixels (DejaVu Sans averages a
/// little over half an em per character).
pub fn text_width(text: &str, font: f64) -> f64 {
    text.chars().count() as f64 * font * 0.58
}

/// Where a label goes: its top-left corner, and whether it needs a leader
/// line back to its point (placed away from it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    /// Left edge of the text.
    pub x: f64,
    /// Top edge of the text.
    pub y: f64,
    /// Drawn at a distance: joined to its point by a thin line.
    pub leader: bool,
}

/// Places labels one by one (in the order given) beside their points,
/// trying eight directions at growing distances, so that no label covers a
/// marker or another label and all stay inside `bounds`. A label with no
/// free place is left out (None); the caller says so in the legend.
pub fn place_labels(
    points: &[(f64, f64)],
    labels: &[String],
    marker: f64,
    font: f64,
    bounds: Rect,
) -> Vec<Option<Placed>> {
    let mut taken: Vec<Rect> = points
        .iter()
        .map(|(x, y)| Rect::around(*x, *y, marker + 1.0))
        .collect();
    let mut out = Vec::with_capacity(points.len());
    for ((x, y), label) in points.iter().zip(labels) {
        let w = text_width(label, font);
        let h = font * 1.1;
        let mut chosen = None;
        'search: for ring in 0..6 {
            let d = marker + 2.0 + f64::from(ring) * font * 1.2;
            // Right, left, above, below, then the corners.
            let spots = [
                (x + d, y - h / 2.0),
                (x - d - w, y - h / 2.0),
                (x - w / 2.0, y - d - h),
                (x - w / 2.0, y + d),
                (x + d * 0.8, y - d * 0.8 - h),
                (x - d * 0.8 - w, y - d * 0.8 - h),
                (x + d * 0.8, y + d * 0.8),
                (x - d * 0.8 - w, y + d * 0.8),
            ];
            for (lx, ly) in spots {
                let rect = Rect {
                    x0: lx - 1.0,
                    y0: ly - 1.0,
                    x1: lx + w + 1.0,
                    y1: ly + h + 1.0,
                };
                if rect.inside(&bounds) && !taken.iter().any(|t| t.overlaps(&rect)) {
                    taken.push(rect);
                    chosen = Some(Placed {
                        x: lx,
                        y: ly,
                        leader: ring > 0,
                    });
                    break 'search;
                }
            }
        }
        out.push(chosen);
    }
    out
}

/// Splits `text` into lines of at most `width` pixels at `font` pixels,
/// between its " · "-separated parts where it can, else between words.
pub fn wrap(text: &str, width: f64, font: f64) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for part in text.split(" · ") {
        let candidate = if line.is_empty() {
            part.to_string()
        } else {
            format!("{line} · {part}")
        };
        if text_width(&candidate, font) <= width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // A part too long for a line of its own is split between words.
        for word in part.split(' ') {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if text_width(&candidate, font) > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line = word.to_string();
            } else {
                line = candidate;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_statsmodels() {
        // statsmodels 0.15 proportion_confint(count, nobs, method="wilson").
        let cases = [
            (529, 540, 0.963_895_310_6, 0.988_588_159_7),
            (378, 540, 0.660_047_124_5, 0.737_127_450_0),
            (540, 540, 0.992_936_436_2, 1.0),
            (0, 10, 0.0, 0.277_532_799_9),
        ];
        for (k, n, lo, hi) in cases {
            let (l, h) = wilson95(k as f64 / n as f64, n);
            assert!(
                (l - lo).abs() < 1e-9 && (h - hi).abs() < 1e-9,
                "{k}/{n}: {l} {h}"
            );
        }
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_ticks(-0.01, 0.93, 5), vec![0.0, 0.2, 0.4, 0.6, 0.8]);
        let t = nice_ticks(2.95, 3.83, 5);
        assert_eq!(decimals(&t), 1);
        assert!(t
            .iter()
            .all(|v| (v * 10.0 - (v * 10.0).round()).abs() < 1e-9));
        assert_eq!(short(0.05), "0.05");
        assert_eq!(short(1.0), "1");
    }

    #[test]
    fn far_outliers_leave_the_zoom() {
        // The zoo's kNN and linear accuracies (README): 0.70 leaves, 0.9444 stays.
        let acc = [
            0.9870, 0.9889, 0.9907, 0.9889, 0.9833, 0.9833, 0.9889, 0.9889, 0.9444, 0.9907, 0.9796,
            0.9926, 0.9870, 0.9870, 0.9833, 0.9870, 0.9796, 0.9870, 0.9759, 0.9963, 0.9778, 0.9907,
            0.9907, 0.9926, 0.9852, 0.9889, 0.70, 0.9852,
        ];
        let kept = inliers(&acc);
        assert_eq!(kept.len(), 27);
        assert!(!kept.contains(&0.70) && kept.contains(&0.9444));
        // Nearly equal values: the one a little apart stays.
        assert_eq!(inliers(&[1.0, 1.0, 1.0, 1.0, 0.99]).len(), 5);
    }

    #[test]
    fn labels_never_overlap_markers_or_each_other() {
        let pts: Vec<(f64, f64)> = (0..12)
            .map(|i| (100.0 + f64::from(i) * 4.0, 100.0))
            .collect();
        let labels: Vec<String> = (0..12).map(|i| format!("τ={i}")).collect();
        let bounds = Rect {
            x0: 0.0,
            y0: 0.0,
            x1: 400.0,
            y1: 300.0,
        };
        let placed = place_labels(&pts, &labels, 6.0, 14.0, bounds);
        let boxes: Vec<Rect> = placed
            .iter()
            .zip(&labels)
            .filter_map(|(p, l)| {
                p.map(|p| Rect {
                    x0: p.x,
                    y0: p.y,
                    x1: p.x + text_width(l, 14.0),
                    y1: p.y + 14.0 * 1.1,
                })
            })
            .collect();
        assert!(boxes.len() >= 8, "most labels find a place");
        for (i, a) in boxes.iter().enumerate() {
            assert!(a.inside(&bounds));
            for b in &boxes[i + 1..] {
                assert!(!a.overlaps(b));
            }
            for (x, y) in &pts {
                assert!(!a.overlaps(&Rect::around(*x, *y, 6.0)));
            }
        }
    }

    #[test]
    fn captions_wrap_between_parts() {
        let lines = wrap(
            "digits · t = 2, α = 2 · kNN k = 200",
            text_width("digits · t = 2, α = 2", 10.0),
            10.0,
        );
        assert_eq!(lines, ["digits · t = 2, α = 2", "kNN k = 200"]);
    }

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
    }
}
