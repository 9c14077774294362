//! The comparisons pages: the list, and one comparison with its sortable
//! table, every figure as inline SVG with a tooltip naming the model and
//! its values over each mark, the x / group-by / label choices of `plot`,
//! the recommendation per loss with its reasons, and `--by` groups.

use axum::extract::{Path, Query, State};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, page, Nav};
use super::models::loss_label;
use super::{Page, Web};
use crate::domain::{Comparison, Report};
use crate::error::Error;
use crate::report::figures::{self, Axes, Format, Kind, Size};

/// Comparisons per page of the list.
const PAGE: usize = 50;

/// The list's filter and page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    dataset: String,
    #[serde(default)]
    page: String,
}

/// GET /comparisons.
pub(super) async fn list(State(web): State<Web>, Query(q): Query<ListQuery>) -> Page {
    let (comparisons, next) =
        crate::views::comparisons(&web.state.engine.reports(), &q.dataset, PAGE, &q.page).await?;
    Ok(page(
        "Comparisons",
        Nav::Comparisons,
        html! {
            form.filters method="get" action="/comparisons" {
                label { "Dataset" input name="dataset" value=(q.dataset); }
                button type="submit" { "Filter" }
            }
            table.sortable {
                thead { tr {
                    th { "Comparison" } th { "Dataset" } th.n { "Models" } th.n { "Left out" }
                    th { "Created" } th { "Models" }
                } }
                tbody {
                    @for c in &comparisons {
                        tr {
                            td { a href={ "/comparisons/" (c.id) } { code { (c.id) } } }
                            td { a href={ "/datasets/" (c.dataset) } { (c.dataset) } }
                            td.n { (c.num_evaluations) }
                            td.n { (c.num_excluded) }
                            td data-sort=(c.created.micros()) { (layout::time(Some(c.created))) }
                            td { (c.models.join(", ")) }
                        }
                    }
                }
            }
            @if comparisons.is_empty() { p.muted { "No comparison yet: " code { "embedeval compare --all --dataset NAME" } " makes one." } }
            @if !next.is_empty() {
                p.pager { a href={ "/comparisons?" (layout::query_pair("dataset", &q.dataset)) "&" (layout::query_pair("page", &next)) } { "Older →" } }
            }
        },
    ))
}

/// The figure choices of `plot` and the groups of `--by`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ShowQuery {
    #[serde(default)]
    x: String,
    #[serde(default)]
    group_by: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    metric: String,
    #[serde(default)]
    by: String,
}

/// GET /comparisons/{id}.
pub(super) async fn show(
    State(web): State<Web>,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Page {
    // Each choice goes to the figure that takes it, as `plot` sends them.
    let along = [
        (
            Kind::Accuracy,
            Axes::new(&q.x, &q.group_by, "")?.with_metric(&q.metric)?,
        ),
        (Kind::UniformityTolerance, Axes::new("", "", &q.label)?),
    ];
    let comparison = crate::views::comparison(&web.state.engine.reports(), &id, &q.by).await?;
    let rows = comparison.rows.clone();
    // Drawing is CPU work: off the async threads.
    let drawn = tokio::task::spawn_blocking(move || {
        Kind::ALL
            .into_iter()
            .map(|kind| {
                let axes = along
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .map_or_else(Axes::default, |(_, a)| a.clone());
                let figure = figures::render_along(kind, &rows, Format::Svg, Size::Screen, &axes);
                (kind, figure.map(|f| with_tooltips(f, &rows)))
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| Error::join("a comparison's figures", e))?;
    Ok(page(
        &format!("Comparison {id}"),
        Nav::Comparisons,
        html! {
            p {
                "The embedding space of its smallest and largest τ: "
                a href={ "/comparisons/" (id) "/space" } { "PCA" } " · "
                a href={ "/comparisons/" (id) "/space?method=tsne" } { "t-SNE" }
                " · the nearest images of a test image under each model: "
                a href={ "/comparisons/" (id) "/neighbours" } { "neighbours" }
            }
            (table(&comparison))
            @if !comparison.excluded.is_empty() {
                h2 { "Left out" }
                ul { @for e in &comparison.excluded {
                    li { (e.model) ": " (e.reason) @if !e.same_as.is_empty() { " (same as " (e.same_as) ")" } }
                } }
            }
            (recommendations(&comparison))
            (groups(&comparison))
            h2 { "Figures" }
            form.filters method="get" {
                label { "Accuracy x axis" input name="x" value=(q.x) placeholder="temperature"; }
                label { "Accuracy colours" input name="group_by" value=(q.group_by) placeholder="loss"; }
                label { "Accuracy metric" select name="metric" {
                    @for m in crate::report::figures::ACCURACY_METRICS {
                        option value=(m) selected[q.metric == m || (q.metric.is_empty() && m == "top1")] { (m) }
                    }
                } }
                label { "Point labels" input name="label" value=(q.label) placeholder="temperature"; }
                label { "Groups by tag" input name="by" value=(q.by) placeholder="seed"; }
                button type="submit" { "Draw" }
            }
            @for (kind, figure) in &drawn {
                h3 { (kind.name().replace('_', " ")) }
                @match figure {
                    Ok(svg) => div.figure { (layout::trusted(svg.clone())) },
                    Err(err) => p.muted { "Not drawn: " (err.to_string()) },
                }
            }
        },
    ))
}

/// The comparison's table, one row per model, every column sortable; the
/// tags every model shares are said once above it, the others per row.
fn table(c: &Comparison) -> Markup {
    let shared: std::collections::BTreeMap<&String, &String> = match c.rows.first() {
        Some(first) => first
            .tags
            .iter()
            .filter(|(k, v)| c.rows.iter().all(|r| r.tags.get(*k) == Some(*v)))
            .collect(),
        None => Default::default(),
    };
    html! {
        @if !shared.is_empty() && c.rows.len() > 1 {
            p.muted { "Every model: " (layout::tags(shared.iter().map(|(k, v)| (*k, *v)))) }
        }
        table.sortable #models {
            thead { tr {
                th { "Model" } th { "Loss" } th.n { "τ" } th { "Tags" } th { "Status" }
                th.n { "−L_uniform" } th.n { "Alignment" } th.n { "Tolerance" }
                th.n { "kNN top-1" } th.n { "Linear top-1" } th.n { "MAP@R" } th { "Evaluation" }
            } }
            tbody {
                @for r in &c.rows {
                    tr {
                        td { a href={ "/models/" (r.model) } { (r.model) } }
                        td { (loss_label(&r.loss, &r.loss_name)) }
                        td.n data-sort=(layout::sort_key(Some(r.temperature))) { (layout::tau(r.temperature)) }
                        td { (layout::tags(r.tags.iter().filter(|(k, _)| c.rows.len() < 2 || !shared.contains_key(k)))) }
                        td { (layout::status(r.status)) }
                        td.n data-sort=(layout::sort_key(r.uniformity)) { (layout::num(r.uniformity, 4)) }
                        td.n data-sort=(layout::sort_key(r.alignment)) { (layout::num(r.alignment, 4)) }
                        td.n data-sort=(layout::sort_key(r.tolerance)) { (layout::num(r.tolerance, 4)) }
                        td.n data-sort=(layout::sort_key(r.knn.as_ref().map(|k| k.top1))) { (layout::pct(r.knn.as_ref().map(|k| k.top1))) }
                        td.n data-sort=(layout::sort_key(r.linear.as_ref().map(|l| l.top1))) { (layout::pct(r.linear.as_ref().map(|l| l.top1))) }
                        td.n data-sort=(layout::sort_key(r.retrieval.as_ref().map(|x| x.map_at_r))) { (layout::num(r.retrieval.as_ref().map(|x| x.map_at_r), 4)) }
                        td { a href={ "/evaluations/" (r.id) } { code { (r.id) } } }
                    }
                }
            }
        }
    }
}

/// The τ to train with per loss, and why.
fn recommendations(c: &Comparison) -> Markup {
    html! {
        @if !c.recommendations.is_empty() {
            h2 { "Which τ, and why" }
            @for r in &c.recommendations {
                h3 { (r.loss) }
                dl.facts {
                    dt { "Keep" } dd { strong { (r.recommended) } " (τ = " (layout::tau(r.recommended_temperature)) ")" }
                    dt { "Why" } dd { (r.reason) }
                    dt { "Pareto front" } dd { (r.front.join(", ")) }
                    dt { "Knee" } dd { (r.knee) }
                    @if let Some(b) = &r.best_knn {
                        dt { "Best kNN" } dd { (b.model) " " (layout::pct(Some(b.top1))) " [" (layout::pct(Some(b.lo))) ", " (layout::pct(Some(b.hi))) "]" }
                    }
                    @if let Some(b) = &r.best_linear {
                        dt { "Best linear" } dd { (b.model) " " (layout::pct(Some(b.top1))) " [" (layout::pct(Some(b.lo))) ", " (layout::pct(Some(b.hi))) "]" }
                    }
                    @if !r.tied.is_empty() { dt { "Tied" } dd { (r.tied.join(", ")) } }
                }
                @if !r.tolerance_falls.is_empty() {
                    table.sortable {
                        thead { tr { th { "Class" } th.n { "Tolerance at the largest τ" } th.n { "At the smallest τ" } th.n { "Fall" } } }
                        tbody { @for f in &r.tolerance_falls {
                            tr {
                                td { @if f.name.is_empty() { (f.label) } @else { (f.name) } }
                                td.n { (layout::num(Some(f.at_largest_tau), 4)) }
                                td.n { (layout::num(Some(f.at_smallest_tau), 4)) }
                                td.n { (layout::num(Some(f.fall), 4)) }
                            }
                        } }
                    }
                }
            }
        }
    }
}

/// The groups along `by`: each metric's mean ± its 95% interval.
fn groups(c: &Comparison) -> Markup {
    let metrics: Vec<String> = c
        .groups
        .first()
        .map(|g| g.metrics.iter().map(|m| m.metric.clone()).collect())
        .unwrap_or_default();
    html! {
        @if !c.groups.is_empty() {
            h2 { "Groups by " (c.by) }
            table.sortable {
                thead { tr { th { "Tags" } th { "Models" } @for m in &metrics { th.n { (m) } } } }
                tbody { @for g in &c.groups {
                    tr {
                        td { (layout::tags(&g.tags)) }
                        td { (g.models.join(", ")) }
                        @for m in &g.metrics {
                            td.n data-sort=(layout::sort_key(Some(m.mean))) { (format!("{:.4} ± {:.4}", m.mean, m.interval)) " " span.muted { "n=" (m.n) } }
                        }
                    }
                } }
            }
        }
    }
}

/// The SVG of `figure` with a transparent target over each mark, carrying
/// its model and values as a tooltip (`data-tip` for the script, `<title>`
/// for the browser's own).
pub(super) fn with_tooltips(figure: figures::Figure, rows: &[Report]) -> String {
    let svg = String::from_utf8_lossy(&figure.bytes).into_owned();
    let marks = html! {
        g.marks {
            @for m in &figure.marks {
                @let tip = tip(&m.model, rows);
                circle.hit cx=(m.x) cy=(m.y) r="9" data-tip=(tip) { title { (tip) } }
            }
        }
    };
    match svg.rfind("</svg>") {
        Some(end) => format!("{}{}{}", &svg[..end], marks.into_string(), &svg[end..]),
        None => svg,
    }
}

/// A mark's tooltip: the model and its values.
fn tip(model: &str, rows: &[Report]) -> String {
    let Some(r) = rows.iter().find(|r| r.model == model) else {
        return model.to_string();
    };
    format!(
        "{model}\n{} τ {}\n−L_uniform {}\ntolerance {}\nkNN top-1 {}\nlinear top-1 {}",
        loss_label(&r.loss, &r.loss_name),
        layout::tau(r.temperature),
        layout::num(r.uniformity, 4),
        layout::num(r.tolerance, 4),
        layout::pct(r.knn.as_ref().map(|k| k.top1)),
        layout::pct(r.linear.as_ref().map(|l| l.top1)),
    )
}
