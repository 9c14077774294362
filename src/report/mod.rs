//! Reports for people: SVG plots of a comparison (the uniformity–tolerance
//! dilemma of Wang & Liu, Fig. 5, and accuracy against τ) and text tables.

pub mod listing;

use std::fmt::Write;

pub use listing::Listing;

use crate::proto::{EvaluationReport, EvaluationStatus};

const W: f64 = 640.0;
const H: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Range with a margin, never empty.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3);
    (lo - pad, hi + pad)
}

struct Plot {
    svg: String,
    x: (f64, f64),
    y: (f64, f64),
}

impl Plot {
    fn new(title: &str, xlabel: &str, ylabel: &str, x: (f64, f64), y: (f64, f64)) -> Self {
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">"#
        );
        let _ = write!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = write!(
            svg,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
            W / 2.0,
            escape(title)
        );
        let (x0, y0, x1, y1) = (LEFT, H - BOTTOM, W - RIGHT, TOP);
        let _ = write!(
            svg,
            r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
            x1 - x0,
            y0 - y1
        );
        for i in 0..=4 {
            let f = i as f64 / 4.0;
            let (vx, vy) = (x.0 + f * (x.1 - x.0), y.0 + f * (y.1 - y.0));
            let (px, py) = (x0 + f * (x1 - x0), y0 - f * (y0 - y1));
            let _ = write!(
                svg,
                r#"<text x="{px:.1}" y="{}" text-anchor="middle">{vx:.3}</text>"#,
                y0 + 16.0
            );
            let _ = write!(
                svg,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{vy:.3}</text>"#,
                x0 - 6.0,
                py + 4.0
            );
            let _ = write!(
                svg,
                r##"<line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="#eee"/>"##
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            (x0 + x1) / 2.0,
            H - 12.0,
            escape(xlabel)
        );
        let _ = write!(
            svg,
            r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
            (y0 + y1) / 2.0,
            (y0 + y1) / 2.0,
            escape(ylabel)
        );
        Self { svg, x, y }
    }

    fn px(&self, vx: f64, vy: f64) -> (f64, f64) {
        let fx = (vx - self.x.0) / (self.x.1 - self.x.0);
        let fy = (vy - self.y.0) / (self.y.1 - self.y.0);
        (
            LEFT + fx * (W - RIGHT - LEFT),
            H - BOTTOM - fy * (H - BOTTOM - TOP),
        )
    }

    fn point(&mut self, vx: f64, vy: f64, colour: &str, label: &str) {
        let (px, py) = self.px(vx, vy);
        let _ = write!(
            self.svg,
            r#"<circle cx="{px:.1}" cy="{py:.1}" r="4" fill="{colour}"/>"#
        );
        let _ = write!(
            self.svg,
            r#"<text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"#,
            px + 6.0,
            py - 5.0,
            escape(label)
        );
    }

    fn line(&mut self, points: &[(f64, f64)], colour: &str, dashed: bool) {
        if points.len() < 2 {
            return;
        }
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| {
                let (px, py) = self.px(x, y);
                format!("{px:.1},{py:.1}")
            })
            .collect();
        let dash = if dashed {
            r#" stroke-dasharray="5,4""#
        } else {
            ""
        };
        let _ = write!(
            self.svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}"{dash}/>"#,
            path.join(" ")
        );
    }

    fn legend(&mut self, entries: &[(String, &str)]) {
        for (i, (name, colour)) in entries.iter().enumerate() {
            let y = TOP + 14.0 + 15.0 * i as f64;
            let x = W - RIGHT - 150.0;
            let _ = write!(
                self.svg,
                r#"<rect x="{x}" y="{}" width="10" height="10" fill="{colour}"/>"#,
                y - 9.0
            );
            let _ = write!(
                self.svg,
                r#"<text x="{}" y="{y}">{}</text>"#,
                x + 14.0,
                escape(name)
            );
        }
    }

    fn finish(mut self) -> String {
        self.svg.push_str("</svg>");
        self.svg
    }
}

fn losses(rows: &[EvaluationReport]) -> Vec<String> {
    let mut out: Vec<String> = rows.iter().map(|r| r.loss.clone()).collect();
    out.dedup();
    out.sort();
    out.dedup();
    out
}

fn colour_of(losses: &[String], loss: &str) -> &'static str {
    COLOURS[losses.iter().position(|l| l == loss).unwrap_or(0) % COLOURS.len()]
}

fn tau_label(r: &EvaluationReport) -> String {
    if r.temperature > 0.0 {
        format!("τ={}", r.temperature)
    } else {
        r.loss.clone()
    }
}

/// Uniformity (y) against tolerance (x), one point per model labelled by τ,
/// coloured by loss, models of one loss joined in τ order.
pub fn uniformity_tolerance_svg(rows: &[EvaluationReport]) -> String {
    let pts: Vec<&EvaluationReport> = rows
        .iter()
        .filter(|r| r.uniformity.is_some() && r.tolerance.is_some())
        .collect();
    let x = range(pts.iter().map(|r| r.tolerance.unwrap_or(0.0)));
    let y = range(pts.iter().map(|r| r.uniformity.unwrap_or(0.0)));
    let mut plot = Plot::new(
        "Uniformity–tolerance (Wang & Liu 2021)",
        "tolerance",
        "uniformity (−L_uniformity)",
        x,
        y,
    );
    let losses = losses(rows);
    for loss in &losses {
        let mut line: Vec<(f64, f64, f64)> = pts
            .iter()
            .filter(|r| &r.loss == loss && r.temperature > 0.0)
            .map(|r| {
                (
                    r.temperature,
                    r.tolerance.unwrap_or(0.0),
                    r.uniformity.unwrap_or(0.0),
                )
            })
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        plot.line(
            &line.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>(),
            colour_of(&losses, loss),
            false,
        );
    }
    for r in &pts {
        plot.point(
            r.tolerance.unwrap_or(0.0),
            r.uniformity.unwrap_or(0.0),
            colour_of(&losses, &r.loss),
            &tau_label(r),
        );
    }
    plot.legend(
        &losses
            .iter()
            .map(|l| (l.clone(), colour_of(&losses, l)))
            .collect::<Vec<_>>(),
    );
    plot.finish()
}

/// kNN (solid) and linear (dashed) top-1 against τ, per loss.
pub fn accuracy_svg(rows: &[EvaluationReport]) -> String {
    let acc = |r: &EvaluationReport| {
        [
            r.knn.as_ref().map(|k| k.top1),
            r.linear.as_ref().map(|l| l.top1),
        ]
    };
    let x = range(rows.iter().map(|r| r.temperature));
    let y = range(rows.iter().flat_map(|r| acc(r).into_iter().flatten()));
    let mut plot = Plot::new(
        "Accuracy against τ",
        "training temperature τ (0: no temperature)",
        "top-1 accuracy",
        x,
        y,
    );
    let losses = losses(rows);
    for loss in &losses {
        let colour = colour_of(&losses, loss);
        let mut these: Vec<&EvaluationReport> = rows.iter().filter(|r| &r.loss == loss).collect();
        these.sort_by(|a, b| a.temperature.total_cmp(&b.temperature));
        for (i, dashed) in [(0, false), (1, true)] {
            let pts: Vec<(f64, f64)> = these
                .iter()
                .filter_map(|r| acc(r)[i].map(|a| (r.temperature, a)))
                .collect();
            plot.line(&pts, colour, dashed);
            for (x, y) in &pts {
                let (px, py) = plot.px(*x, *y);
                let _ = write!(
                    plot.svg,
                    r#"<circle cx="{px:.1}" cy="{py:.1}" r="3" fill="{colour}"/>"#
                );
            }
        }
    }
    let mut legend: Vec<(String, &str)> = losses
        .iter()
        .map(|l| (l.clone(), colour_of(&losses, l)))
        .collect();
    legend.push(("solid kNN, dashed linear".into(), "#444"));
    plot.legend(&legend);
    plot.finish()
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// A text table of a comparison: one row per report.
pub fn table(rows: &[EvaluationReport]) -> String {
    let listing = listing(rows);
    let header: Vec<&str> = listing.header.iter().map(String::as_str).collect();
    format_table(&header, &listing.rows)
}

/// The comparison's columns and one row per report (a model that was not
/// evaluated shows its status and reason in place of numbers).
pub fn listing(rows: &[EvaluationReport]) -> Listing {
    let header = [
        "model",
        "loss",
        "tau",
        "uniformity",
        "tolerance",
        "alignment",
        "pos_sim",
        "nn1_sim",
        "entropy",
        "erank",
        "knn_top1",
        "linear_top1",
        "status",
        "note",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.model.clone(),
                r.loss.clone(),
                format!("{}", r.temperature),
                opt(r.uniformity),
                opt(r.tolerance),
                opt(r.alignment),
                opt(r.positive_similarity),
                opt(r.nearest_negative_similarity.first().copied()),
                opt(r.penalty_entropy),
                opt(r.effective_rank),
                opt(r.knn.as_ref().map(|k| k.top1)),
                opt(r.linear.as_ref().map(|l| l.top1)),
                EvaluationStatus::try_from(r.status)
                    .map_or("?", |s| s.as_str_name())
                    .to_string(),
                r.error.clone(),
            ]
        })
        .collect();
    Listing::new(&header, cells)
}

/// Left-aligned columns under a header, two spaces apart, one line per row.
pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string();
        out.push('\n');
        out
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{KnnResult, LinearResult};

    fn row(loss: &str, tau: f64, u: f64, t: f64) -> EvaluationReport {
        EvaluationReport {
            model: format!("{loss}-{tau}"),
            loss: loss.into(),
            temperature: tau,
            uniformity: Some(u),
            tolerance: Some(t),
            knn: Some(KnnResult {
                top1: 0.9,
                ..Default::default()
            }),
            linear: Some(LinearResult {
                top1: 0.95,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn plots_are_svg_with_a_labelled_point_per_model() {
        let rows = vec![
            row("infonce", 0.1, 3.7, 0.1),
            row("infonce", 1.0, 3.0, 0.5),
            row("simple", 0.0, 1.2, 0.9),
        ];
        let svg = uniformity_tolerance_svg(&rows);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("τ=0.1") && svg.contains("τ=1") && svg.contains(">simple<"));
        let acc = accuracy_svg(&rows);
        assert_eq!(
            acc.matches("<circle").count(),
            6,
            "kNN and linear per model"
        );
        let text = table(&rows);
        assert_eq!(text.lines().count(), 4);
        assert!(text.contains("3.7000"));
    }
}
