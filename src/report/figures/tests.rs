//! Every kind in both formats and sizes: the SVG parses and holds each mark
//! where the figure says it drew it; the PNG decodes and shows each mark's
//! colours at its place.

use super::*;
use crate::domain::{Histogram, KnnResult, LinearResult, MetricSpec};

/// A completed report with numbers spread as in the bundled zoo.
pub(crate) fn report(loss: &str, tau: f64, i: usize) -> Report {
    let f = i as f64;
    let k = 3;
    let hist = |name: String, centre: f64| Histogram {
        name,
        lo: -1.0,
        hi: 1.0,
        counts: (0..40)
            .map(|b| {
                let x = -1.0 + (f64::from(b) + 0.5) * 0.05;
                (100.0 * (-(x - centre).powi(2) / 0.01).exp()) as u64
            })
            .collect(),
    };
    Report {
        id: format!("id{i}"),
        model: format!("{loss}-t{tau}"),
        dataset: "digits".into(),
        loss: loss.into(),
        temperature: tau,
        status: Status::Completed,
        num_test: 540,
        num_train: 1257,
        test_split: "test".into(),
        train_split: "train".into(),
        uniformity: Some(if tau > 0.0 { 3.0 + 0.1 * f } else { 1.2 }),
        tolerance: Some(if tau > 0.0 { 0.05 + 0.05 * f } else { 0.9 }),
        positive_similarity: Some(0.85 + 0.01 * f),
        nearest_negative_similarity: (0..k).map(|r| 0.7 + 0.02 * f - 0.01 * r as f64).collect(),
        relative_penalty: (0..k).map(|r| 0.3 / (1.0 + f) / (1.0 + r as f64)).collect(),
        histograms: std::iter::once(hist("positive".into(), 0.85 + 0.01 * f))
            .chain((1..=k).map(|r| hist(format!("negative_rank_{r}"), 0.7 + 0.02 * f)))
            .collect(),
        knn: Some(KnnResult {
            top1: if tau > 0.0 { 0.97 + 0.003 * f } else { 0.70 },
            ..Default::default()
        }),
        linear: Some(LinearResult {
            top1: 0.96 + 0.004 * f,
            ..Default::default()
        }),
        per_class: Some(per_class(3, tau, f)),
        spec: Some(MetricSpec {
            uniformity_t: Some(2.0),
            alignment_alpha: Some(2.0),
            neighbors_k: Some(k as u32),
            knn_k: Some(200),
            knn_temperature: Some(0.1),
            linear_c: Some(1.0),
            penalty_temperature: Some(if tau > 0.0 { tau } else { 1.0 }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Per-class diagnostics of `c` named classes whose tolerance grows with τ
/// and whose nearest rows leave their class more at a small τ.
pub(crate) fn per_class(c: usize, tau: f64, f: f64) -> crate::domain::PerClass {
    let k = 3u64;
    let n = 10u64;
    crate::domain::PerClass {
        labels: (0..c as i64).collect(),
        counts: vec![n; c],
        tolerance: (0..c)
            .map(|i| 0.2 + 0.05 * i as f64 + 0.1 * tau.max(0.0) + 0.01 * f)
            .collect(),
        similarity: (0..c * c)
            .map(|i| if i / c == i % c { 0.5 } else { 0.1 } as f32)
            .collect(),
        nearest_negative_classes: (0..c * c)
            .map(|i| {
                let (a, b) = (i / c, i % c);
                let away = (i as u64 + 1) % (k * n / 2);
                if a == b {
                    k * n - away * (c as u64 - 1).min(1)
                } else if b == (a + 1) % c {
                    away
                } else {
                    0
                }
            })
            .collect(),
        nearest_negative_k: k as u32,
        knn_top1: vec![0.9; c],
        linear_top1: vec![0.9; c],
        names: (0..c).map(|i| format!("class-{i}")).collect(),
        map_at_r: vec![0.6; c],
        r_precision: vec![0.65; c],
    }
}

/// Five τs of one loss, two of another, one τ-free loss, one failed row.
pub(crate) fn zoo() -> Vec<Report> {
    let mut rows: Vec<Report> = [0.05, 0.1, 0.2, 0.5, 1.0]
        .iter()
        .enumerate()
        .map(|(i, t)| report("infonce", *t, i))
        .collect();
    rows.push(report("hard_infonce", 0.2, 5));
    rows.push(report("hard_infonce", 0.5, 6));
    rows.push(report("simple", 0.0, 7));
    let mut failed = report("infonce", 0.3, 8);
    failed.status = Status::Failed;
    rows.push(failed);
    rows
}

/// Marks each kind draws for [`zoo`]: 8 models (the failed one left out).
fn expected_marks(kind: Kind) -> usize {
    match kind {
        Kind::UniformityTolerance => 8,
        Kind::Accuracy => 16,
        Kind::Negatives => 8 * 4,
        Kind::Penalty => 8 * 3,
        // The largest sweep (infonce, five τs), three classes.
        Kind::Classes => 5 * 3,
        // Its smallest and largest τ, 3 × 3 cells each.
        Kind::Confusion => 2 * 9,
        Kind::Pareto => 8,
    }
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// The text of every text element of an SVG, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG parses");
    doc.descendants()
        .filter(|n| n.tag_name().name() == "text")
        .map(|n| n.text().unwrap_or_default().trim().to_string())
        .collect()
}

/// Centres of the filled circles and polygons of an SVG, with their fill.
fn svg_shapes(svg: &str) -> Vec<(f64, f64, String)> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG parses");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    doc.descendants()
        .filter_map(|n| {
            let fill = n.attribute("fill")?.to_string();
            match n.tag_name().name() {
                "circle" => Some((
                    n.attribute("cx")?.parse().ok()?,
                    n.attribute("cy")?.parse().ok()?,
                    fill,
                )),
                "polygon" => {
                    let pts: Vec<(f64, f64)> = n
                        .attribute("points")?
                        .split_whitespace()
                        .filter_map(|p| {
                            let (x, y) = p.split_once(',')?;
                            Some((x.parse().ok()?, y.parse().ok()?))
                        })
                        .collect();
                    let n = pts.len() as f64;
                    Some((
                        pts.iter().map(|p| p.0).sum::<f64>() / n,
                        pts.iter().map(|p| p.1).sum::<f64>() / n,
                        fill,
                    ))
                }
                _ => None,
            }
        })
        .collect()
}

/// The filled rectangles of an SVG (heat-map cells): corners and fill.
fn svg_rects(svg: &str) -> Vec<(f64, f64, f64, f64, String)> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG parses");
    doc.descendants()
        .filter(|n| n.tag_name().name() == "rect")
        .filter_map(|n| {
            let v = |a: &str| n.attribute(a)?.parse::<f64>().ok();
            let (x, y) = (v("x")?, v("y")?);
            Some((
                x,
                y,
                x + v("width")?,
                y + v("height")?,
                n.attribute("fill")?.to_string(),
            ))
        })
        .collect()
}

/// Every data mark of `fig` lies in one of its plot areas.
fn assert_marks_inside(fig: &Figure, what: &str) {
    for m in &fig.marks {
        assert!(
            fig.plots
                .iter()
                .any(|&(l, t, r, b)| (l - 1..=r + 1).contains(&m.x)
                    && (t - 1..=b + 1).contains(&m.y)),
            "{what}: {m:?} outside the plot areas {:?}",
            fig.plots
        );
    }
}

#[test]
fn every_kind_renders_to_svg_with_each_mark_where_it_says() {
    let rows = zoo();
    for size in [Size::Column, Size::Screen] {
        for kind in Kind::ALL {
            let fig = render(kind, &rows, Format::Svg, size).unwrap();
            keep(&fig, kind, size);
            assert_eq!(fig.marks.len(), expected_marks(kind), "{kind:?}");
            if !fig.plots.is_empty() {
                assert_marks_inside(&fig, &format!("{kind:?} at {size:?}"));
            }
            let svg = String::from_utf8(fig.bytes).unwrap();
            let shapes = svg_shapes(&svg);
            let rects = svg_rects(&svg);
            for m in &fig.marks {
                let (x, y) = (f64::from(m.x), f64::from(m.y));
                let found = shapes.iter().any(|(sx, sy, fill)| {
                    fill == &hex(m.fill) && (sx - x).abs() <= 3.0 && (sy - y).abs() <= 3.0
                }) || rects.iter().any(|(x0, y0, x1, y1, fill)| {
                    fill == &hex(m.fill) && (*x0..=*x1).contains(&x) && (*y0..=*y1).contains(&y)
                });
                assert!(found, "{kind:?}: no shape for {m:?}");
            }
            let texts = svg_texts(&svg);
            assert!(
                texts
                    .iter()
                    .any(|t| t.starts_with("digits · test split, 540 images")),
                "caption: {texts:?}"
            );
            let doc = roxmltree::Document::parse(&svg).unwrap();
            let w: f64 = doc
                .root_element()
                .attribute("width")
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(w as u32, fig.size.0);
        }
    }
}

/// With EMBEDEVAL_FIGURES_OUT set, the test figures are written there to
/// be looked at.
fn keep(fig: &Figure, kind: Kind, size: Size) {
    if let Some(dir) = std::env::var_os("EMBEDEVAL_FIGURES_OUT") {
        let name = format!("{}-{}.{}", kind.name(), size.name(), fig.format.name());
        std::fs::write(Path::new(&dir).join(name), &fig.bytes).unwrap();
    }
}

#[test]
fn every_kind_renders_to_png_with_each_mark_in_its_colours() {
    let rows = zoo();
    for size in [Size::Column, Size::Screen] {
        for kind in Kind::ALL {
            let fig = render(kind, &rows, Format::Png, size).unwrap();
            keep(&fig, kind, size);
            assert_eq!(fig.marks.len(), expected_marks(kind));
            let img = image::load_from_memory_with_format(&fig.bytes, image::ImageFormat::Png)
                .expect("the PNG decodes")
                .to_rgb8();
            assert_eq!(img.dimensions(), fig.size);
            let near = |p: &image::Rgb<u8>, c: (u8, u8, u8)| {
                p.0.iter()
                    .zip([c.0, c.1, c.2])
                    .all(|(a, b)| a.abs_diff(b) <= 24)
            };
            for m in &fig.marks {
                let centre = img.get_pixel(m.x as u32, m.y as u32);
                assert!(near(centre, m.fill), "{kind:?} {m:?}: centre {centre:?}");
                // The outline shows within a marker's radius on the row.
                let outlined = (-14..=14).any(|dx| {
                    let x = (m.x + dx).clamp(0, fig.size.0 as i32 - 1) as u32;
                    near(img.get_pixel(x, m.y as u32), m.stroke)
                });
                assert!(outlined, "{kind:?} {m:?}: no outline");
            }
            // Text was drawn: dark pixels outside the plot.
            let dark = img.pixels().filter(|p| p.0.iter().all(|c| *c < 60)).count();
            assert!(dark > 2000, "{kind:?}: {dark} dark pixels");
        }
    }
}

#[test]
fn the_uniformity_tolerance_figure_tells_every_model_apart() {
    let fig = render(Kind::UniformityTolerance, &zoo(), Format::Svg, Size::Column).unwrap();
    let svg = String::from_utf8(fig.bytes).unwrap();
    for (i, a) in fig.marks.iter().enumerate() {
        for b in &fig.marks[i + 1..] {
            let d = f64::from((a.x - b.x).pow(2) + (a.y - b.y).pow(2)).sqrt();
            assert!(d >= 11.0, "{} and {} are {d:.1} px apart", a.model, b.model);
        }
    }
    let texts = svg_texts(&svg);
    // The simple loss is off the zoomed axes: drawn at the edge, with its values.
    assert!(
        texts.iter().any(|t| t == "simple (0.9, 1.2) off axes"),
        "{texts:?}"
    );
    // Each τ labels its point and ticks the colour bar.
    for tau in ["0.05", "0.1", "0.2", "0.5", "1"] {
        let n = texts.iter().filter(|t| *t == tau).count();
        assert!(n >= 2, "τ {tau}: {n} texts");
    }
}

#[test]
fn the_accuracy_figure_puts_the_simple_losses_at_infinity_with_intervals() {
    let fig = render(Kind::Accuracy, &zoo(), Format::Svg, Size::Screen).unwrap();
    let svg = String::from_utf8(fig.bytes).unwrap();
    let texts = svg_texts(&svg);
    assert!(texts.iter().any(|t| t == "∞ (simple)"));
    assert!(
        texts.iter().any(|t| t == "▼ 0.7"),
        "the 0.70 outlier is marked at the edge"
    );
    let simple: Vec<&Mark> = fig
        .marks
        .iter()
        .filter(|m| m.model == "simple-t0")
        .collect();
    let rightmost = fig.marks.iter().map(|m| m.x).max().unwrap();
    assert!(
        simple.iter().all(|m| m.x >= rightmost - 30),
        "∞ slot on the right"
    );
    assert_ne!(simple[0].x, simple[1].x, "kNN and linear are side by side");
    // A log axis: equal ratios of τ are equal distances.
    let x_of = |model: &str| fig.marks.iter().find(|m| m.model == model).unwrap().x;
    // (These three have no other loss beside them at their τ.)
    let d1 = f64::from(x_of("infonce-t0.1") - x_of("infonce-t0.05"));
    let d10 = f64::from(x_of("infonce-t1") - x_of("infonce-t0.1"));
    assert!((d10 - d1 * 10f64.log2()).abs() <= 3.0, "{d1} vs {d10}");
}

#[test]
fn a_figure_with_nothing_to_draw_says_why() {
    let mut r = report("infonce", 0.1, 0);
    r.uniformity = None;
    let err = render(Kind::UniformityTolerance, &[r], Format::Svg, Size::Screen).unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)) && err.to_string().contains("uniformity"));
    assert!("ut".parse::<Kind>().is_ok() && "pie".parse::<Kind>().is_err());
    assert_eq!(Format::from_path(Path::new("a/b.PNG")), Some(Format::Png));
}

#[test]
fn histogram_quantiles_interpolate_within_bins() {
    let h = Histogram {
        name: "x".into(),
        lo: 0.0,
        hi: 1.0,
        counts: vec![0, 10, 10, 0],
    };
    assert!((profiles::quantile(&h, 0.5).unwrap() - 0.5).abs() < 1e-12);
    assert!((profiles::quantile(&h, 0.25).unwrap() - 0.375).abs() < 1e-12);
}

/// The zoo's measured numbers (training/measured.json), as reports.
fn measured_zoo() -> Vec<Report> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("training/measured.json");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let mut rep = report(r["loss"].as_str().unwrap(), r["tau"].as_f64().unwrap(), i);
            rep.model = r["name"].as_str().unwrap().into();
            rep.uniformity = r["uniformity"].as_f64();
            rep.tolerance = r["tolerance"].as_f64();
            rep.knn.as_mut().unwrap().top1 = r["knn"].as_f64().unwrap();
            rep.linear.as_mut().unwrap().top1 = r["linear"].as_f64().unwrap();
            rep
        })
        .collect()
}

fn closest(marks: &[Mark]) -> (f64, String, String) {
    let mut best = (f64::INFINITY, String::new(), String::new());
    for (i, a) in marks.iter().enumerate() {
        for b in &marks[i + 1..] {
            let d = f64::from((a.x - b.x).pow(2) + (a.y - b.y).pow(2)).sqrt();
            if d < best.0 {
                best = (d, a.model.clone(), b.model.clone());
            }
        }
    }
    best
}

#[test]
fn every_model_of_the_zoo_stands_apart_at_column_size() {
    let zoo = measured_zoo();
    assert_eq!(zoo.len(), 14);
    for (kind, min) in [(Kind::UniformityTolerance, 11.0), (Kind::Accuracy, 10.0)] {
        let fig = render(kind, &zoo, Format::Png, Size::Column).unwrap();
        let (d, a, b) = closest(&fig.marks);
        eprintln!("{kind:?}: closest {a} and {b}, {d:.1} px");
        assert!(d >= min, "{kind:?}: {a} and {b} are {d:.1} px apart");
    }
}

#[test]
fn a_run_is_drawn_as_its_path_with_steps_and_warnings() {
    let rows = zoo();
    let run = crate::domain::Run {
        name: "r".into(),
        dataset: "digits".into(),
        checkpoints: rows[..4]
            .iter()
            .enumerate()
            .map(|(i, r)| crate::domain::Checkpoint {
                step: 10 * (i as u64 + 1),
                model: r.model.clone(),
                model_sha256: String::new(),
                report: Some(r.clone()),
            })
            .chain(std::iter::once(crate::domain::Checkpoint {
                step: 50,
                model: "not-yet".into(),
                ..Default::default()
            }))
            .collect(),
        warnings: vec![crate::domain::RunWarning {
            kind: "small_tau".into(),
            step: 30,
            message: "small-τ regime at step 30".into(),
        }],
        checkpoint_to_keep: None,
    };
    for format in [Format::Svg, Format::Png] {
        let fig = render_run(&run, format, Size::Screen).unwrap();
        if let Some(dir) = std::env::var_os("EMBEDEVAL_FIGURES_OUT") {
            std::fs::write(
                Path::new(&dir).join(format!("run.{}", format.name())),
                &fig.bytes,
            )
            .unwrap();
        }
        assert_eq!(fig.marks.len(), 4, "one per evaluated checkpoint");
        if format == Format::Svg {
            let texts = svg_texts(&String::from_utf8(fig.bytes).unwrap());
            for step in ["step 10", "step 20", "step 30", "step 40"] {
                assert!(texts.iter().any(|t| t == step), "{step}: {texts:?}");
            }
            assert!(texts.iter().any(|t| t.contains("small-τ regime")));
        } else {
            image::load_from_memory_with_format(&fig.bytes, image::ImageFormat::Png).unwrap();
        }
    }
    let empty = crate::domain::Run {
        name: "e".into(),
        ..Default::default()
    };
    assert!(matches!(
        render_run(&empty, Format::Svg, Size::Screen),
        Err(Error::FailedPrecondition(_))
    ));
}

#[test]
fn the_pareto_figure_fills_the_front_and_rings_the_recommendation() {
    let rows = zoo();
    let fig = render(Kind::Pareto, &rows, Format::Svg, Size::Screen).unwrap();
    let recs = crate::report::recommend(&rows);
    let losses = style::Losses::of(&rows);
    for rec in &recs {
        let c = losses.colour(&rec.loss);
        for (i, r) in rec.rows.iter().enumerate() {
            let m = fig.marks.iter().find(|m| m.model == r.model).unwrap();
            let want = if rec.front.contains(&i) {
                (c.0, c.1, c.2)
            } else {
                (255, 255, 255)
            };
            assert_eq!(m.fill, want, "{}", r.model);
        }
    }
    let svg = String::from_utf8(fig.bytes).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    // The recommended model of each loss has a thick black ring around it.
    for rec in &recs {
        let best = &rec.rows[rec.recommended.unwrap()];
        let m = fig.marks.iter().find(|m| m.model == best.model).unwrap();
        let ringed = doc.descendants().any(|n| {
            n.tag_name().name() == "circle"
                && n.attribute("stroke") == Some("#000000")
                && n.attribute("cx").and_then(|v| v.parse::<f64>().ok()) == Some(f64::from(m.x))
                && n.attribute("cy").and_then(|v| v.parse::<f64>().ok()) == Some(f64::from(m.y))
        });
        assert!(ringed, "{} is not ringed", best.model);
    }
}

#[test]
fn the_class_figures_name_the_classes_and_grey_the_diagonal() {
    let rows = zoo();
    let fig = render(Kind::Confusion, &rows, Format::Svg, Size::Column).unwrap();
    let texts = svg_texts(&String::from_utf8(fig.bytes.clone()).unwrap());
    for name in [
        "class-0",
        "class-1",
        "class-2",
        "τ = 0.05 (infonce-t0.05)",
        "τ = 1 (infonce-t1)",
    ] {
        assert!(texts.iter().any(|t| t == name), "{name}: {texts:?}");
    }
    // Row-major cells per panel: the diagonal is grey, the rest on the scale.
    let grey = (
        frame::LEGEND_FILL.0,
        frame::LEGEND_FILL.1,
        frame::LEGEND_FILL.2,
    );
    for (i, m) in fig.marks.iter().enumerate() {
        let cell = i % 9;
        assert_eq!(m.fill == grey, cell / 3 == cell % 3, "cell {i}");
    }
    let fig = render(Kind::Classes, &rows, Format::Svg, Size::Screen).unwrap();
    let texts = svg_texts(&String::from_utf8(fig.bytes).unwrap());
    assert!(texts.iter().any(|t| t == "class-2"), "{texts:?}");
    // A class's tolerance rises with τ here: its line climbs to the right.
    let line: Vec<&Mark> = fig.marks.iter().take(5).collect();
    assert!(
        line.windows(2).all(|w| w[1].x > w[0].x && w[1].y < w[0].y),
        "{line:?}"
    );

    // Many classes: a heat map, one cell per class and model.
    let many: Vec<Report> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.per_class = Some(per_class(30, r.temperature, 0.0));
            r
        })
        .collect();
    for format in [Format::Svg, Format::Png] {
        let fig = render(Kind::Classes, &many, format, Size::Column).unwrap();
        assert_eq!(fig.marks.len(), 30 * 5);
        let fig = render(Kind::Confusion, &many, format, Size::Column).unwrap();
        assert_eq!(fig.marks.len(), 2 * 30 * 30);
    }
    // Without per-class diagnostics, the figure says why.
    let mut bare = rows.clone();
    for r in &mut bare {
        r.per_class = None;
    }
    let err = render(Kind::Classes, &bare, Format::Svg, Size::Screen).unwrap_err();
    assert!(err.to_string().contains("per-class"), "{err}");
}

/// Three seeds at each of three τ, one loss: the accuracy figure's sweep.
fn seeds() -> Vec<Report> {
    let mut rows = Vec::new();
    for (i, tau) in [0.1, 0.2, 0.5].into_iter().enumerate() {
        for seed in 0..3 {
            let mut r = report("infonce", tau, i);
            r.model = format!("infonce-t{tau}-s{seed}");
            r.id = format!("id{i}-{seed}");
            let knn = 0.95 + 0.01 * i as f64 + 0.005 * seed as f64;
            r.knn.as_mut().unwrap().top1 = knn;
            r.linear.as_mut().unwrap().top1 = knn - 0.01;
            r.tags = [("loss", "infonce".to_string()), ("seed", seed.to_string())]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .chain([("temperature".to_string(), format!("{tau}"))])
                .collect();
            rows.push(r);
        }
    }
    rows
}

#[test]
fn models_at_one_tau_are_their_mean_with_each_faint_never_a_zigzag() {
    let rows = seeds();
    for size in [Size::Column, Size::Screen] {
        let fig = render(Kind::Accuracy, &rows, Format::Svg, size).unwrap();
        keep(&fig, Kind::Accuracy, size);
        // Every model, both probes, as a faint mark.
        assert_eq!(fig.marks.len(), 18);
        assert_marks_inside(&fig, "seeds");
        let svg = String::from_utf8(fig.bytes).unwrap();
        let shapes = svg_shapes(&svg);
        let c = style::Losses::of(&rows).colour("infonce");
        let colour = hex((c.0, c.1, c.2));
        for tau in ["0.1", "0.2", "0.5"] {
            let knn: Vec<&Mark> = fig
                .marks
                .iter()
                .filter(|m| m.model.contains(&format!("t{tau}-")))
                .filter(|m| fig.marks.iter().filter(|o| o.x == m.x).count() == 3)
                .collect();
            assert_eq!(knn.len(), 6, "τ {tau}: three seeds at each probe's x");
            // The mean of the three, drawn in full colour at their x.
            for x in [knn[0].x, knn[3].x] {
                let ys: Vec<f64> = knn
                    .iter()
                    .filter(|m| m.x == x)
                    .map(|m| f64::from(m.y))
                    .collect();
                let mean = ys.iter().sum::<f64>() / 3.0;
                assert!(
                    shapes
                        .iter()
                        .any(|(sx, sy, fill)| (sx - f64::from(x)).abs() <= 3.0
                            && (sy - mean).abs() <= 3.0
                            && (fill == &colour || fill == "#FFFFFF")),
                    "τ {tau}: a mean mark at ({x}, {mean})"
                );
            }
        }
        let texts = svg_texts(&svg);
        assert!(
            texts.iter().any(|t| t.starts_with("Several models at")),
            "the note says what the bars are: {texts:?}"
        );
        for m in &fig.marks {
            assert!(m.x > 0 && m.y > 0 && (m.x as u32) < fig.size.0 && (m.y as u32) < fig.size.1);
        }
    }
}

#[test]
fn the_accuracy_figure_takes_any_numeric_tag_on_x_and_any_tag_as_colour() {
    let rows = seeds();
    let axes = Axes::new("seed", "temperature", "").unwrap();
    let fig = render_along(Kind::Accuracy, &rows, Format::Svg, Size::Screen, &axes).unwrap();
    let svg = String::from_utf8(fig.bytes).unwrap();
    let texts = svg_texts(&svg);
    assert!(
        texts.iter().any(|t| t == "Accuracy against seed"),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t == "temperature"), "legend title");
    // A linear axis: seeds 0, 1, 2 equally spaced (one colour per τ, so
    // one model per mark).
    assert_eq!(fig.marks.len(), 18);
    let x_of = |model: &str| {
        fig.marks
            .iter()
            .filter(|m| m.model == model)
            .map(|m| m.x)
            .min()
            .unwrap()
    };
    let (a, b, c) = (
        x_of("infonce-t0.1-s0"),
        x_of("infonce-t0.1-s1"),
        x_of("infonce-t0.1-s2"),
    );
    assert!(((b - a) - (c - b)).abs() <= 2, "{a} {b} {c}");
    // A tag no model has a number for is said, and other kinds refuse axes.
    let none = Axes::new("arch", "loss", "").unwrap();
    let err = render_along(Kind::Accuracy, &rows, Format::Svg, Size::Screen, &none).unwrap_err();
    assert!(err.to_string().contains("numeric tag \"arch\""), "{err}");
    assert!(
        err.to_string()
            .contains("numeric tags here: seed; or temperature, the default"),
        "{err}"
    );
    // τ by its other names is the temperature axis.
    for tau in ["tau", "τ"] {
        assert_eq!(Axes::new(tau, "", tau).unwrap(), Axes::default());
    }
    let typo = Axes::new("sed", "loss", "").unwrap();
    let err = render_along(Kind::Accuracy, &rows, Format::Svg, Size::Screen, &typo).unwrap_err();
    assert!(err.to_string().contains("did you mean seed"), "{err}");
    let err = render_along(Kind::Negatives, &rows, Format::Svg, Size::Screen, &axes).unwrap_err();
    assert!(err.to_string().contains("accuracy figure"), "{err}");
    let named = Axes::new("", "", "name").unwrap();
    let err = render_along(Kind::Accuracy, &rows, Format::Svg, Size::Screen, &named).unwrap_err();
    assert!(err.to_string().contains("uniformity–tolerance"), "{err}");
    assert!(Axes::new("a b", "", "").is_err());
}

#[test]
fn the_accuracy_figure_draws_a_retrieval_metric_when_asked() {
    let mut rows = zoo();
    for (i, r) in rows.iter_mut().enumerate() {
        if r.status == crate::domain::Status::Completed {
            r.retrieval = Some(crate::domain::RetrievalResult {
                precision_at_1: 0.8,
                r_precision: 0.5 + 0.01 * i as f64,
                map_at_r: 0.4 + 0.01 * i as f64,
                recall_at_k: vec![(1, 0.8)],
                gallery: "train".into(),
                queries: r.num_test,
                lone_queries: 0,
            });
        }
    }
    let completed = rows
        .iter()
        .filter(|r| r.status == crate::domain::Status::Completed)
        .count();
    let axes = Axes::default().with_metric("map_at_r").unwrap();
    let fig = render_along(Kind::Accuracy, &rows, Format::Svg, Size::Screen, &axes).unwrap();
    let texts = svg_texts(&String::from_utf8(fig.bytes).unwrap());
    assert!(texts.iter().any(|t| t == "MAP@R against τ"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t == "MAP@R"),
        "the axis and the legend"
    );
    // One series: one mark per completed model (the kNN and the probe
    // would be two).
    assert_eq!(fig.marks.len(), completed);
    let top1 = render_along(
        Kind::Accuracy,
        &rows,
        Format::Svg,
        Size::Screen,
        &Axes::default(),
    )
    .unwrap();
    assert_eq!(top1.marks.len(), 2 * completed);
    // Reports without the metrics say so; other kinds and other names are refused.
    let err = render_along(Kind::Accuracy, &zoo(), Format::Svg, Size::Screen, &axes).unwrap_err();
    assert!(err.to_string().contains("retrieval metrics"), "{err}");
    let err = render_along(Kind::Negatives, &rows, Format::Svg, Size::Screen, &axes).unwrap_err();
    assert!(err.to_string().contains("accuracy figure"), "{err}");
    let err = Axes::default().with_metric("map_at").unwrap_err();
    assert!(err.to_string().contains("did you mean map_at_r"), "{err}");
    assert_eq!(Axes::default().with_metric("").unwrap(), Axes::default());
}

/// Every text of an SVG with its left and right ends, estimated from its
/// size and anchor as the figures measure text ([`style::text_width`]).
fn svg_text_extents(svg: &str) -> Vec<(String, f64, f64)> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG parses");
    doc.descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| {
            let text = n.text().unwrap_or_default().trim().to_string();
            let x: f64 = n.attribute("x")?.parse().ok()?;
            let size: f64 = n.attribute("font-size")?.parse().ok()?;
            let w = style::text_width(&text, size);
            let (l, r) = match n.attribute("text-anchor") {
                Some("middle") => (x - w / 2.0, x + w / 2.0),
                Some("end") => (x - w, x),
                _ => (x, x + w),
            };
            // Rotated text (the y axis's name) runs vertically.
            n.attribute("transform").is_none().then_some((text, l, r))
        })
        .collect()
}

#[test]
fn titles_and_captions_fit_the_figure_at_both_sizes() {
    let rows = zoo();
    for size in [Size::Column, Size::Screen] {
        for kind in Kind::ALL {
            let fig = render(kind, &rows, Format::Svg, size).unwrap();
            let svg = String::from_utf8(fig.bytes).unwrap();
            let width = f64::from(fig.size.0);
            for (text, l, r) in svg_text_extents(&svg) {
                assert!(
                    l >= -1.0 && r <= width + 1.0,
                    "{kind:?} at {size:?}: {text:?} runs from {l:.0} to {r:.0} of {width}"
                );
            }
        }
    }
}

#[test]
fn many_models_thin_the_ranks_and_keep_their_markers_apart() {
    // Fourteen models with ten nearest negatives each (154 markers in full).
    let rows: Vec<Report> = (0..14)
        .map(|i| {
            let mut r = report("infonce", 0.05 * (i + 1) as f64, i % 8);
            r.model = format!("m{i}");
            r.id = format!("id{i}");
            r.nearest_negative_similarity = (0..10).map(|k| 0.8 - 0.01 * k as f64).collect();
            r.relative_penalty = (0..10).map(|k| 0.2 / (1.0 + k as f64)).collect();
            r
        })
        .collect();
    for kind in [Kind::Negatives, Kind::Penalty] {
        for size in [Size::Column, Size::Screen] {
            let fig = render(kind, &rows, Format::Svg, size).unwrap();
            keep(&fig, kind, size);
            // Negatives: the positive and ranks 1, 2, 3, 5, 10; penalty:
            // ranks 1, 2, 3, 5, 10.
            let slots = if kind == Kind::Negatives { 6 } else { 5 };
            assert_eq!(fig.marks.len(), 14 * slots, "{kind:?}");
            assert_marks_inside(&fig, "many models");
            let svg = String::from_utf8(fig.bytes).unwrap();
            let texts = svg_texts(&svg);
            assert!(
                texts.iter().any(|t| t.starts_with("14 models: ranks")),
                "{kind:?}: {texts:?}"
            );
            let mut xs: Vec<i32> = fig.marks.iter().map(|m| m.x).collect();
            xs.sort_unstable();
            xs.dedup();
            assert_eq!(xs.len(), 14 * slots, "every model its own x in every slot");
            let gap = xs.windows(2).map(|w| w[1] - w[0]).min().unwrap();
            assert!(gap >= 4, "{kind:?} at {size:?}: markers {gap} px apart");
        }
    }
}

#[test]
fn the_plane_labels_by_any_tag_and_joins_seeds_through_their_centroid() {
    let rows = seeds();
    let by_seed = Axes::new("", "", "seed").unwrap();
    let fig = render_along(
        Kind::UniformityTolerance,
        &rows,
        Format::Svg,
        Size::Screen,
        &by_seed,
    )
    .unwrap();
    assert_eq!(fig.marks.len(), 9);
    let svg = String::from_utf8(fig.bytes).unwrap();
    let texts = svg_texts(&svg);
    assert!(
        texts.iter().any(|t| t == "2"),
        "labels are seeds: {texts:?}"
    );
    // The loss's line has one vertex per τ (three), not one per model.
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let c = style::Losses::of(&rows).colour("infonce");
    let vertices: Vec<usize> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .filter(|n| n.attribute("stroke") == Some(hex((c.0, c.1, c.2)).as_str()))
        .map(|n| n.attribute("points").unwrap().split_whitespace().count())
        .collect();
    assert_eq!(vertices, vec![3], "{vertices:?}");
    let named = Axes::new("", "", "name").unwrap();
    let fig = render_along(
        Kind::UniformityTolerance,
        &rows,
        Format::Svg,
        Size::Screen,
        &named,
    );
    let svg = String::from_utf8(fig.unwrap().bytes).unwrap();
    assert!(svg_texts(&svg).iter().any(|t| t.starts_with("infonce-t0.")));
}
