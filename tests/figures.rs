//! Figures from stored reports: a comparison of four zoo models is stored
//! under its id, GetComparison gives its rows back, and RenderFigure draws
//! every kind in both formats and sizes from the stored reports (the SVG
//! parses, the PNG decodes, the marks are counted); an evaluation id draws
//! that one model.

mod common;

use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::{self, FigureFormat, FigureKind, FigureSize};
use tonic::Code;

fn parse_svg(data: &[u8]) -> (u32, u32, Vec<String>) {
    let text = std::str::from_utf8(data).expect("SVG is UTF-8");
    let doc = roxmltree::Document::parse(text).expect("the SVG parses");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let dim = |a: &str| root.attribute(a).unwrap().parse::<u32>().unwrap();
    let texts = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "text")
        .map(|n| n.text().unwrap_or_default().trim().to_string())
        .collect();
    (dim("width"), dim("height"), texts)
}

#[tokio::test]
async fn stored_comparisons_are_drawn_again_in_every_kind_and_format() {
    let server = common::zoo_server().await;
    let mut client = EvaluationServiceClient::new(server.channel.clone());
    let models = ["infonce-t0.1", "infonce-t1", "hard-infonce-t0.2", "simple"];
    let spec = proto::MetricSpec {
        neighbors_k: Some(5),
        ..Default::default()
    };
    let mut stream = client
        .compare(proto::CompareRequest {
            models: models.iter().map(|m| m.to_string()).collect(),
            dataset: "digits".into(),
            spec: Some(spec),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut comparison = None;
    while let Some(e) = stream.message().await.unwrap() {
        if let Some(proto::compare_event::Event::Comparison(c)) = e.event {
            comparison = Some(c);
        }
    }
    let c = comparison.expect("a comparison");
    assert_eq!(c.id.len(), 32, "the comparison has an id");
    assert_eq!(c.rows.len(), 4);
    let (w, h, texts) = parse_svg(c.plot_svg.as_bytes());
    assert_eq!((w, h), (1280, 860));
    assert!(texts.iter().any(|t| t.starts_with("simple (")), "{texts:?}");
    parse_svg(c.accuracy_plot_svg.as_bytes());

    // Stored: the same rows, in the same order, from the database.
    let again = client
        .get_comparison(proto::GetComparisonRequest {
            id: c.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, c.id);
    assert_eq!(again.rows, c.rows);

    // Every kind, both formats, both sizes, from the stored reports.
    let expected_marks = |kind| match kind {
        FigureKind::UniformityTolerance => 4,
        FigureKind::Accuracy => 4 * 2,
        FigureKind::Negatives => 4 * 6,
        FigureKind::Penalty => 4 * 5,
        // infonce is the largest sweep (τ = 0.1 and 1): 10 classes, 2 models.
        FigureKind::Classes => 10 * 2,
        // Its smallest and largest τ, 10 × 10 cells each.
        FigureKind::Confusion => 2 * 100,
        FigureKind::Pareto => 4,
        FigureKind::Unspecified => unreachable!(),
    };
    for kind in [
        FigureKind::UniformityTolerance,
        FigureKind::Accuracy,
        FigureKind::Negatives,
        FigureKind::Penalty,
        FigureKind::Classes,
        FigureKind::Confusion,
        FigureKind::Pareto,
    ] {
        for format in [FigureFormat::Svg, FigureFormat::Png] {
            for (size, dims) in [
                (FigureSize::Screen, (1280, 860)),
                (FigureSize::Column, (1050, 840)),
            ] {
                let f = client
                    .render_figure(proto::RenderFigureRequest {
                        id: c.id.clone(),
                        kind: kind as i32,
                        format: format as i32,
                        size: size as i32,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!((f.width, f.height), dims);
                assert_eq!(f.marks, expected_marks(kind), "{kind:?} {format:?}");
                // The class figures draw the largest sweep (infonce) only.
                let drawn = match kind {
                    FigureKind::Classes | FigureKind::Confusion => 2,
                    _ => 4,
                };
                assert_eq!(f.evaluation_ids.len(), drawn, "{kind:?}");
                match format {
                    FigureFormat::Png => {
                        assert_eq!(f.media_type, "image/png");
                        let img =
                            image::load_from_memory_with_format(&f.data, image::ImageFormat::Png)
                                .expect("the PNG decodes");
                        assert_eq!((img.width(), img.height()), dims);
                    }
                    _ => {
                        assert_eq!(f.media_type, "image/svg+xml");
                        let (w, h, texts) = parse_svg(&f.data);
                        assert_eq!((w, h), dims);
                        match kind {
                            FigureKind::Accuracy => {
                                assert!(texts.iter().any(|t| t == "∞ (simple)"))
                            }
                            FigureKind::Confusion => {
                                for panel in ["τ = 0.1 (infonce-t0.1)", "τ = 1 (infonce-t1)"] {
                                    assert!(texts.iter().any(|t| t == panel), "{texts:?}");
                                }
                                // The digits' class names on the axes.
                                assert!(texts.iter().any(|t| t == "7"), "{texts:?}");
                            }
                            FigureKind::Pareto => {
                                // Each loss's recommendation, with its reason.
                                assert!(texts.iter().any(|t| t == "infonce"), "{texts:?}");
                                assert!(texts.iter().any(|t| t.starts_with("τ = ")), "{texts:?}");
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    // An evaluation id draws its one model.
    // The accuracy figure along a tag, coloured by another; other kinds
    // take only τ and the loss.
    let along = |kind: FigureKind, x: &str, group_by: &str| proto::RenderFigureRequest {
        id: c.id.clone(),
        kind: kind as i32,
        format: FigureFormat::Svg as i32,
        x: x.into(),
        group_by: group_by.into(),
        ..Default::default()
    };
    let f = client
        .render_figure(along(FigureKind::Accuracy, "epochs", "temperature"))
        .await
        .unwrap()
        .into_inner();
    let (_, _, texts) = parse_svg(&f.data);
    assert!(
        texts.iter().any(|t| t == "Accuracy against epochs"),
        "{texts:?}"
    );
    assert!(f.marks > 0);
    for (req, code) in [
        (
            along(FigureKind::Negatives, "seed", ""),
            Code::InvalidArgument,
        ),
        (
            along(FigureKind::Accuracy, "no-such-tag", ""),
            Code::FailedPrecondition,
        ),
        (
            along(FigureKind::Accuracy, "a b", ""),
            Code::InvalidArgument,
        ),
    ] {
        let err = client.render_figure(req).await.unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
    }
    let one = c.rows.iter().find(|r| r.model == "infonce-t1").unwrap();
    let f = client
        .render_figure(proto::RenderFigureRequest {
            id: one.id.clone(),
            kind: FigureKind::Penalty as i32,
            format: FigureFormat::Png as i32,
            size: FigureSize::Column as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (f.marks, f.evaluation_ids.clone()),
        (5, vec![one.id.clone()])
    );
    // One model's classes: a one-column heat map, and one confusion panel.
    for (kind, marks) in [(FigureKind::Classes, 10), (FigureKind::Confusion, 100)] {
        let f = client
            .render_figure(proto::RenderFigureRequest {
                id: one.id.clone(),
                kind: kind as i32,
                format: FigureFormat::Svg as i32,
                size: FigureSize::Screen as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(f.marks, marks, "{kind:?}");
        // A figure of one model names it.
        let (_, _, texts) = parse_svg(&f.data);
        assert!(
            texts.iter().any(|t| t.contains("model infonce-t1")),
            "{kind:?}: {texts:?}"
        );
    }

    // Errors have their codes.
    let err = client
        .render_figure(proto::RenderFigureRequest {
            id: "nope".into(),
            kind: FigureKind::Accuracy as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = client
        .render_figure(proto::RenderFigureRequest {
            id: c.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = client
        .get_comparison(proto::GetComparisonRequest {
            id: one.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::NotFound,
        "an evaluation id is not a comparison"
    );
    server.stop().await;
}
