//! The datasets pages: the list, and one dataset's splits, row counts,
//! class names and a grid of sample images per class, each image served
//! as a PNG from the dataset's own pixels.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{page, Nav};
use super::{Page, PageError, Web};
use crate::data::LoadedDataset;
use crate::error::Error;

/// Sample images shown per class.
const SAMPLES: usize = 8;

/// GET /datasets.
pub(super) async fn list(State(web): State<Web>) -> Page {
    web.state.ensure_ready()?;
    let mut datasets = web.state.registries.listing::<LoadedDataset>().await?;
    datasets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(page(
        "Datasets",
        Nav::Datasets,
        html! {
            table.sortable {
                thead { tr {
                    th { "Dataset" } th { "Format" } th { "Splits" } th.n { "Classes" }
                    th { "Image" } th { "Content id" }
                } }
                tbody {
                    @for d in &datasets {
                        tr {
                            td { a href={ "/datasets/" (d.name) } { (d.name) } }
                            td { (d.format) }
                            td { @for s in &d.splits { (s.name) " " span.muted { (s.size) } " " } }
                            td.n { (d.num_classes) }
                            td { (format!("{:?}", d.image_shape)) }
                            td { code { (crate::views::short_id(&d.id)) } }
                        }
                    }
                }
            }
        },
    ))
}

/// GET /datasets/{name}.
pub(super) async fn show(State(web): State<Web>, Path(name): Path<String>) -> Page {
    web.state.ensure_ready()?;
    let dataset = web.state.dataset(&name).await?;
    let d = dataset.info();
    let split = shown_split(&d);
    // Reading a split can decode every image: off the async threads.
    let samples = {
        let (dataset, split) = (dataset.clone(), split.clone());
        tokio::task::spawn_blocking(move || -> crate::error::Result<Vec<(i64, Vec<usize>)>> {
            let s = dataset.split(&split)?;
            let mut by_class: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
            for (row, &label) in s.labels.iter().enumerate() {
                let rows = by_class.entry(label).or_default();
                if rows.len() < SAMPLES {
                    rows.push(row);
                }
            }
            Ok(by_class.into_iter().collect())
        })
        .await
        .map_err(|e| Error::join("a dataset's samples", e))??
    };
    let class_name = |label: i64| crate::domain::class_name(&d.class_names, label);
    Ok(page(
        &d.name,
        Nav::Datasets,
        html! {
            p { a href={ "/evaluations?dataset=" (d.name) } { "Its evaluations" } }
            dl.facts {
                dt { "Format" } dd { (d.format) }
                dt { "Content id" } dd { code { (d.id) } }
                dt { "Image" } dd { (format!("{:?}", d.image_shape)) }
                @if d.image_size > 0 {
                    dt { "Resized to" } dd { (d.image_size) " px, crop fraction " (d.crop_fraction) }
                }
                dt { "Classes" } dd { (d.num_classes) }
                dt { "Default splits" } dd { "test " (or_auto(&d.test_split)) ", train " (or_auto(&d.train_split)) }
                dt { "Source" } dd { (d.source) }
                dt { "License" } dd { (d.license) }
            }
            h2 { "Splits" }
            table {
                thead { tr { th { "Split" } th.n { "Rows" } } }
                tbody { @for s in &d.splits { tr { td { (s.name) } td.n { (s.size) } } } }
            }
            h2 { "Samples of the " (split) " split" }
            table.classes {
                thead { tr { th { "Class" } th { "Images" } } }
                tbody {
                    @for (label, rows) in &samples {
                        tr {
                            td { (class_name(*label)) }
                            td.gallery {
                                @for row in rows {
                                    img src={ "/datasets/" (d.name) "/images/" (split) "/" (row) }
                                        alt={ (class_name(*label)) ", row " (row) };
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// A default split as the page names it.
fn or_auto(split: &str) -> &str {
    if split.is_empty() {
        "(test, else val; train)"
    } else {
        split
    }
}

/// The split whose samples the page shows: the default test split, else
/// "test", "val" or the first.
fn shown_split(d: &crate::domain::DatasetInfo) -> String {
    let has = |n: &str| d.splits.iter().any(|s| s.name == n);
    [d.test_split.as_str(), "test", "val"]
        .into_iter()
        .find(|n| !n.is_empty() && has(n))
        .map(str::to_string)
        .or_else(|| d.splits.first().map(|s| s.name.clone()))
        .unwrap_or_default()
}

/// GET /datasets/{name}/images/{split}/{row}: one image as a PNG.
pub(super) async fn image(
    State(web): State<Web>,
    Path((name, split, row)): Path<(String, String, usize)>,
) -> Result<Response, PageError> {
    web.state.ensure_ready()?;
    let dataset = web.state.dataset(&name).await?;
    let png = tokio::task::spawn_blocking(move || -> crate::error::Result<Vec<u8>> {
        let pixel_max = dataset
            .dataset
            .manifest
            .pixel_max
            .unwrap_or(255)
            .clamp(1, 255);
        let s = dataset.split(&split)?;
        if row >= s.n {
            return Err(Error::NotFound {
                kind: "image",
                name: format!("{split}/{row}"),
                hint: format!(" (the split has {} rows)", s.n),
            });
        }
        let [h, w, c] = s.image_shape;
        let per = h * w * c;
        let pixels = &s.pixels[row * per..(row + 1) * per];
        // Pixels of a smaller range (digits: 0..16) stretched to 0..255.
        let stretched: Vec<u8> = pixels
            .iter()
            .map(|&v| (u32::from(v).min(pixel_max) * 255 / pixel_max) as u8)
            .collect();
        png(&stretched, w as u32, h as u32, c)
    })
    .await
    .map_err(|e| Error::join("a dataset image", e))??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        png,
    )
        .into_response())
}

/// `pixels` (height × width × channels, 1 or 3) as PNG bytes.
fn png(pixels: &[u8], width: u32, height: u32, channels: usize) -> crate::error::Result<Vec<u8>> {
    use image::ImageEncoder;
    let color = match channels {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        other => {
            return Err(Error::InvalidArgument(format!(
                "an image of {other} channels cannot be shown"
            )))
        }
    };
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(pixels, width, height, color)
        .map_err(|e| Error::InvalidArgument(format!("encode a PNG: {e}")))?;
    Ok(out)
}
