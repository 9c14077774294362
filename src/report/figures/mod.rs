//! Figures of stored reports, drawn with plotters to SVG or PNG: the
//! uniformity–tolerance plane (Wang & Liu 2021, Figs. 4–7), accuracy against
//! τ with Wilson intervals, the positive against the nearest negatives
//! (Fig. 8), the relative penalty over the nearest negatives (Fig. 3,
//! measured), and where the structure breaks class by class (per-class
//! tolerance across τ, the nearest-neighbour class matrices, the Pareto
//! front with the τ to keep). Each kind lives in its own file; `style`
//! holds what they share.
//!
//! A figure is drawn from reports alone, so a stored comparison or
//! evaluation can be drawn again at any time without recomputing. Text in
//! PNG figures uses DejaVu Sans, embedded in the binary (`assets/fonts`).

mod accuracy;
pub mod classes;
mod confusion;
mod frame;
mod heat_map;
mod pareto;
mod profiles;
pub mod style;
mod trajectory;
mod uniformity_tolerance;

use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::domain::{Report, Status};
use crate::error::{Error, Result};

include!(concat!(env!("OUT_DIR"), "/figure_kinds.rs"));

impl FromStr for Kind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s || k.short_name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                Error::InvalidArgument(format!(
                    "unknown figure kind {s:?}: one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// The file format of a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Scalable vector graphics (text stays text).
    Svg,
    /// A bitmap.
    Png,
}

impl Format {
    /// The name used on the command line and in the API.
    pub fn name(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }

    /// The media type of the bytes.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Svg => "image/svg+xml",
            Format::Png => "image/png",
        }
    }

    /// The format a file name asks for by its extension, if any.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "svg" => Some(Format::Svg),
            "png" => Some(Format::Png),
            _ => None,
        }
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "svg" => Ok(Format::Svg),
            "png" => Ok(Format::Png),
            _ => Err(Error::InvalidArgument(format!(
                "unknown figure format {s:?}: svg or png"
            ))),
        }
    }
}

/// The size a figure is drawn for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// A paper column: 3.5 in wide at 300 dpi (1050 × 840 px), text about
    /// 6.5 pt when printed.
    Column,
    /// A screen or a README: 1280 × 860 px.
    Screen,
}

impl Size {
    /// The name used on the command line and in the API.
    pub fn name(self) -> &'static str {
        match self {
            Size::Column => "column",
            Size::Screen => "screen",
        }
    }

    fn layout(self) -> Layout {
        match self {
            Size::Column => Layout {
                width: 1050,
                height: 840,
                font: 26.0,
                marker: 11,
                stroke: 3,
            },
            Size::Screen => Layout {
                width: 1280,
                height: 860,
                font: 19.0,
                marker: 9,
                stroke: 2,
            },
        }
    }
}

impl FromStr for Size {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "column" => Ok(Size::Column),
            "screen" => Ok(Size::Screen),
            _ => Err(Error::InvalidArgument(format!(
                "unknown figure size {s:?}: column or screen"
            ))),
        }
    }
}

/// Pixel sizes of one figure size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub width: u32,
    pub height: u32,
    /// Body text, in pixels.
    pub font: f64,
    /// Marker radius, in pixels.
    pub marker: i32,
    /// Line width, in pixels.
    pub stroke: u32,
}

/// What a figure's x axis and colours follow (the accuracy figure; the
/// others draw τ and the loss).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axes {
    /// "temperature" (a log axis, the τ-free losses at ∞) or a tag with
    /// numeric values (a linear axis), e.g. "epochs", "step", "seed".
    pub x: String,
    /// "loss" or a tag: one colour per value.
    pub group_by: String,
    /// What labels each point of the uniformity–tolerance figure:
    /// "temperature" (τ, the loss for τ-free ones), "name" (the model) or a
    /// tag's value.
    pub label: String,
    /// The accuracy figure's metric: one of [`ACCURACY_METRICS`].
    pub metric: String,
}

/// The accuracy figure's metrics: the kNN's and the probe's top-1, or one
/// retrieval metric.
pub const ACCURACY_METRICS: [&str; 4] = ["top1", "map_at_r", "r_precision", "precision_at_1"];

impl Default for Axes {
    fn default() -> Self {
        Self {
            x: "temperature".into(),
            group_by: "loss".into(),
            label: "temperature".into(),
            metric: "top1".into(),
        }
    }
}

impl Axes {
    /// The axes asked for ("" takes the default of each; "tau" and "τ" are
    /// the temperature); the tag names are checked as tag keys.
    pub fn new(x: &str, group_by: &str, label: &str) -> Result<Self> {
        let d = Self::default();
        let pick = |v: &str, default: String| -> Result<String> {
            if v.is_empty() {
                return Ok(default);
            }
            // τ by any of its names is the temperature.
            if matches!(v, "tau" | "τ" | "Tau" | "TAU") {
                return Ok("temperature".into());
            }
            crate::vocab::check_tag(v, "")?;
            Ok(v.to_string())
        };
        Ok(Self {
            x: pick(x, d.x)?,
            group_by: pick(group_by, d.group_by)?,
            label: pick(label, d.label)?,
            metric: d.metric,
        })
    }

    /// These axes with the accuracy figure's `metric` ("": top-1), one of
    /// [`ACCURACY_METRICS`] (INVALID_ARGUMENT naming them otherwise).
    pub fn with_metric(self, metric: &str) -> Result<Self> {
        let metric = match metric {
            "" => "top1",
            m => m,
        };
        if !ACCURACY_METRICS.contains(&metric) {
            return Err(Error::InvalidArgument(format!(
                "the accuracy figure's metric {metric:?} is not one of {}{}",
                ACCURACY_METRICS.join(", "),
                crate::suggest::did_you_mean(metric, &ACCURACY_METRICS)
            )));
        }
        Ok(Self {
            metric: metric.to_string(),
            ..self
        })
    }

    /// INVALID_ARGUMENT when `kind` does not take these axes: x and
    /// group_by are the accuracy figure's, label the uniformity–tolerance
    /// figure's; the others draw τ and the loss.
    pub fn check(&self, kind: Kind) -> Result<()> {
        let d = Self::default();
        let bad = |what: &str, figure: &str| {
            Err(Error::InvalidArgument(format!(
                "{what} applies to the {figure} figure; the {} figure draws τ and the loss",
                kind.name()
            )))
        };
        if kind != Kind::Accuracy
            && (self.x != d.x || self.group_by != d.group_by || self.metric != d.metric)
        {
            return bad("x, group_by and metric", "accuracy");
        }
        if kind != Kind::UniformityTolerance && self.label != d.label {
            return bad("label", "uniformity–tolerance (ut)");
        }
        Ok(())
    }

    /// The colour group of a report: its loss, or its value of the tag
    /// ("-" without it).
    pub fn group(&self, r: &Report) -> String {
        if self.group_by == "loss" {
            r.loss.clone()
        } else {
            r.tags
                .get(&self.group_by)
                .cloned()
                .unwrap_or_else(|| "-".into())
        }
    }
}

/// One data mark of a figure (legend samples are not marks).
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Centre, in pixels from the top left.
    pub x: i32,
    /// Centre, in pixels from the top left.
    pub y: i32,
    /// Its fill colour, RGB (white: hollow).
    pub fill: (u8, u8, u8),
    /// Its outline colour, RGB.
    pub stroke: (u8, u8, u8),
    /// The model it stands for.
    pub model: String,
}

/// A drawn figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The file's bytes (SVG text or PNG).
    pub bytes: Vec<u8>,
    /// Its format.
    pub format: Format,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// Where each data mark was drawn.
    pub marks: Vec<Mark>,
    /// The plot areas of its panels (left, top, right, bottom), in pixels:
    /// every mark lies in one.
    pub plots: Vec<(i32, i32, i32, i32)>,
}

pub(crate) fn draw_error<E: std::error::Error + Send + Sync>(
    err: DrawingAreaErrorKind<E>,
) -> Error {
    Error::Internal {
        task: "drawing a figure".into(),
        message: err.to_string(),
    }
}

/// The embedded font, registered once: the bitmap backend draws with it,
/// and both backends measure text with it.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../../../assets/fonts/DejaVuSans.ttf"),
        )
        .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Internal {
            task: "drawing a figure".into(),
            message: "the embedded font does not load".into(),
        })
    }
}

/// The reports a figure draws: completed ones, in comparison order (loss,
/// then τ).
fn drawable(reports: &[Report]) -> Vec<Report> {
    let mut rows: Vec<Report> = reports
        .iter()
        .filter(|r| r.status == Status::Completed)
        .cloned()
        .collect();
    rows.sort_by(|a, b| {
        a.loss
            .cmp(&b.loss)
            .then(a.temperature.total_cmp(&b.temperature))
            .then(a.model.cmp(&b.model))
    });
    rows
}

/// The settings a figure was drawn from, for its caption: the dataset, the
/// splits and sizes, and the metric settings of the first report.
pub fn caption(reports: &[Report]) -> String {
    let Some(first) = reports.first() else {
        return String::new();
    };
    let mut parts = vec![format!(
        "{} · {} split, {} images",
        first.dataset,
        if first.test_split.is_empty() {
            "test"
        } else {
            &first.test_split
        },
        first.num_test
    )];
    if first.num_train > 0 {
        parts.push(format!(
            "kNN and probe fitted on {} ({} images)",
            if first.train_split.is_empty() {
                "train"
            } else {
                &first.train_split
            },
            first.num_train
        ));
    }
    if let Some(spec) = &first.spec {
        let v = |o: Option<f64>| o.map_or("-".into(), style::short);
        let n = |o: Option<u32>| o.map_or("-".into(), |k| k.to_string());
        parts.push(format!(
            "t = {}, α = {}, k = {}",
            v(spec.uniformity_t),
            v(spec.alignment_alpha),
            n(spec.neighbors_k)
        ));
        parts.push(format!(
            "kNN k = {}, T = {}; probe C = {}",
            n(spec.knn_k),
            v(spec.knn_temperature),
            v(spec.linear_c)
        ));
    }
    // A figure of one model names it.
    parts.push(match reports {
        [one] => format!("model {}", one.model),
        _ => format!("{} models", reports.len()),
    });
    parts.join(" · ")
}

/// What a figure shows.
enum Subject<'a> {
    /// A kind of figure of completed reports, along these axes.
    Reports(Kind, &'a [Report], &'a Axes),
    /// A training run's path.
    Run(&'a crate::domain::Run),
    /// A training run's metrics against step.
    RunMetrics(&'a crate::domain::Run),
}

/// Draws `kind` of `reports` (those not COMPLETED are left out) in `format`
/// at `size`. FAILED_PRECONDITION when no report has what the figure needs
/// (yet: a detached comparison may still be running).
pub fn render(kind: Kind, reports: &[Report], format: Format, size: Size) -> Result<Figure> {
    render_along(kind, reports, format, size, &Axes::default())
}

/// [`render`] with the x axis, colours and labels of `axes`
/// ([`Axes::check`]).
pub fn render_along(
    kind: Kind,
    reports: &[Report],
    format: Format,
    size: Size,
    axes: &Axes,
) -> Result<Figure> {
    axes.check(kind)?;
    let rows = drawable(reports);
    render_subject(Subject::Reports(kind, &rows, axes), format, size)
}

/// Draws a training run's path in the uniformity–tolerance plane, steps
/// annotated, its warnings beside it. FAILED_PRECONDITION when no
/// checkpoint has been evaluated.
pub fn render_run(run: &crate::domain::Run, format: Format, size: Size) -> Result<Figure> {
    render_subject(Subject::Run(run), format, size)
}

/// Draws a training run's metrics against step: uniformity, tolerance,
/// effective rank and kNN accuracy, one panel each.
pub fn render_run_metrics(run: &crate::domain::Run, format: Format, size: Size) -> Result<Figure> {
    render_subject(Subject::RunMetrics(run), format, size)
}

fn render_subject(subject: Subject<'_>, format: Format, size: Size) -> Result<Figure> {
    // Both backends measure text with the font.
    register_font()?;
    let layout = size.layout();
    let dims = (layout.width, layout.height);
    frame::take_plots();
    match format {
        Format::Svg => {
            let mut text = String::new();
            let marks = {
                let root = SVGBackend::with_string(&mut text, dims).into_drawing_area();
                let marks = draw(&subject, &root, layout)?;
                root.present().map_err(draw_error)?;
                marks
            };
            Ok(Figure {
                bytes: text.into_bytes(),
                format,
                size: dims,
                marks,
                plots: frame::take_plots(),
            })
        }
        Format::Png => {
            let mut pixels = vec![0u8; dims.0 as usize * dims.1 as usize * 3];
            let marks = {
                let root = BitMapBackend::with_buffer(&mut pixels, dims).into_drawing_area();
                let marks = draw(&subject, &root, layout)?;
                root.present().map_err(draw_error)?;
                marks
            };
            let mut bytes = Vec::new();
            image::ImageEncoder::write_image(
                image::codecs::png::PngEncoder::new(&mut bytes),
                &pixels,
                dims.0,
                dims.1,
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| Error::Internal {
                task: "encoding a PNG figure".into(),
                message: e.to_string(),
            })?;
            Ok(Figure {
                bytes,
                format,
                size: dims,
                marks,
                plots: frame::take_plots(),
            })
        }
    }
}

/// A comparison message: its id, its rows (as given), its two SVG plots at
/// screen size (empty when the rows have nothing to draw) and which τ to
/// keep per loss.
pub fn comparison(id: String, rows: Vec<Report>) -> crate::domain::Comparison {
    let svg = |kind| {
        render(kind, &rows, Format::Svg, Size::Screen)
            .ok()
            .and_then(|f| String::from_utf8(f.bytes).ok())
            .unwrap_or_default()
    };
    crate::domain::Comparison {
        plot_svg: svg(Kind::UniformityTolerance),
        accuracy_plot_svg: svg(Kind::Accuracy),
        id,
        recommendations: crate::report::recommend(&rows)
            .iter()
            .map(|r| r.to_recommendation())
            .collect(),
        rows,
        excluded: Vec::new(),
        by: String::new(),
        groups: Vec::new(),
    }
}

/// Orders a stored comparison's rows as Compare does: by loss, then τ.
pub fn sort_rows(rows: &mut [Report]) {
    rows.sort_by(|a, b| {
        a.loss
            .cmp(&b.loss)
            .then(a.temperature.total_cmp(&b.temperature))
    });
}

fn draw<DB: DrawingBackend>(
    subject: &Subject<'_>,
    root: &DrawingArea<DB, Shift>,
    layout: Layout,
) -> Result<Vec<Mark>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(draw_error)?;
    match subject {
        Subject::Reports(Kind::UniformityTolerance, rows, axes) => {
            uniformity_tolerance::draw(root, rows, layout, axes)
        }
        Subject::Reports(Kind::Accuracy, rows, axes) => accuracy::draw(root, rows, layout, axes),
        Subject::Reports(Kind::Negatives, rows, _) => profiles::draw_negatives(root, rows, layout),
        Subject::Reports(Kind::Penalty, rows, _) => profiles::draw_penalty(root, rows, layout),
        Subject::Reports(Kind::Classes, rows, _) => classes::draw_classes(root, rows, layout),
        Subject::Reports(Kind::Confusion, rows, _) => confusion::draw_confusion(root, rows, layout),
        Subject::Reports(Kind::Pareto, rows, _) => pareto::draw_pareto(root, rows, layout),
        Subject::Run(run) => trajectory::draw(root, run, layout),
        Subject::RunMetrics(run) => trajectory::draw_metrics(root, run, layout),
    }
}

#[cfg(test)]
mod tests;
