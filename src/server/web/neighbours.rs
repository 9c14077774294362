//! The neighbours of a test image: its k nearest training images under
//! each model of a comparison (thumbnails, class names, similarities, the
//! images of another class marked), and for each class the class its rows'
//! nearest images most often come from instead, with example pairs.

use axum::extract::{Path, Query, State};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, page, Nav};
use super::{Page, Web};
use crate::domain::NearestImages;
use crate::views::NearestRequest;

/// The page's choices.
#[derive(Debug, Default, Deserialize)]
pub(super) struct NeighboursQuery {
    #[serde(default)]
    row: u64,
    #[serde(default)]
    k: usize,
}

/// GET /comparisons/{id}/neighbours.
pub(super) async fn show(
    State(web): State<Web>,
    Path(id): Path<String>,
    Query(q): Query<NeighboursQuery>,
) -> Page {
    web.state.ensure_ready()?;
    let n = crate::views::nearest_images(
        &web.state.engine,
        &web.state.registries,
        NearestRequest {
            models: Vec::new(),
            comparison_id: id.clone(),
            dataset: String::new(),
            test_split: String::new(),
            train_split: String::new(),
            row: q.row,
            k: q.k,
            pairs: 0,
        },
    )
    .await?;
    let k = n.models.first().map_or(0, |m| m.neighbours.len());
    let here = |row: u64| format!("/comparisons/{id}/neighbours?row={row}&k={k}");
    Ok(page(
        &format!("The neighbours of test image {} of {}", n.row, n.dataset),
        Nav::Comparisons,
        html! {
            p {
                a href={ "/comparisons/" (id) } { "← the comparison" }
                " · "
                @if n.row > 0 { a href=(here(n.row - 1)) { "previous image" } " · " }
                a href=(here(n.row + 1)) { "next image" }
            }
            form.filters method="get" {
                label { "Test row" input name="row" type="number" min="0" value=(n.row); }
                label { "Neighbours" input name="k" type="number" min="1" max="50" value=(k); }
                button type="submit" { "Show" }
            }
            div.query {
                (thumb(&n, &n.test_split, n.row, n.label, None, false))
                p { "Its " (k) " nearest images of split " (n.train_split) " under each model; "
                    span.other-mark { "outlined" } ": of another class." }
            }
            @for m in &n.models {
                h2 { a href={ "/models/" (m.model) } { (m.model) } " " span.muted { "τ " (layout::tau(m.temperature)) } }
                div.gallery.neighbours {
                    @for x in &m.neighbours {
                        (thumb(&n, &n.train_split, x.row, x.label, Some(x.similarity), x.label != n.label))
                    }
                }
            }
            h2 { "Where each class's nearest images come from instead" }
            @for m in &n.models {
                h3 { (m.model) }
                (confusions(&n, m, &id))
            }
        },
    ))
}

/// A class's name.
fn class(n: &NearestImages, label: i64) -> String {
    crate::domain::class_name(&n.class_names, label)
}

/// One image with its class (and similarity), outlined when `other`.
fn thumb(
    n: &NearestImages,
    split: &str,
    row: u64,
    label: i64,
    similarity: Option<f32>,
    other: bool,
) -> Markup {
    html! {
        figure class=(if other { "thumb other" } else { "thumb" }) {
            img src={ "/datasets/" (n.dataset) "/images/" (split) "/" (row) } alt={ (class(n, label)) ", row " (row) };
            figcaption {
                (class(n, label))
                @if let Some(s) = similarity { br; span.muted { (format!("{s:.3}")) } }
            }
        }
    }
}

/// A model's table of confusions, each with its example pairs.
fn confusions(n: &NearestImages, m: &crate::domain::ModelNeighbours, id: &str) -> Markup {
    html! {
        @if m.confusions.is_empty() {
            p.muted { "Every test image's nearest training image is of its own class." }
        } @else {
            table.sortable.confusions {
                thead { tr { th { "Class" } th.n { "Rows" } th { "Most often near" } th.n { "Share" } th { "Pairs (test → training)" } } }
                tbody { @for c in &m.confusions {
                    tr {
                        td { (class(n, c.label)) }
                        td.n { (c.rows) }
                        td { (class(n, c.confused_with)) }
                        td.n data-sort=(c.share) { (layout::pct(Some(c.share))) }
                        td.gallery {
                            @for p in &c.pairs {
                                a href={ "/comparisons/" (id) "/neighbours?row=" (p.test_row) } {
                                    img src={ "/datasets/" (n.dataset) "/images/" (n.test_split) "/" (p.test_row) } alt={ (class(n, c.label)) ", row " (p.test_row) };
                                }
                                img.other src={ "/datasets/" (n.dataset) "/images/" (n.train_split) "/" (p.train_row) } alt={ (class(n, c.confused_with)) ", row " (p.train_row) };
                                span.muted { " " (format!("{:.3}", p.similarity)) " " }
                            }
                        }
                    }
                } }
            }
        }
    }
}
