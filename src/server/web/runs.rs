//! The training runs pages: the list, and one run on a dataset with its
//! checkpoint table (growing as checkpoints are evaluated: the script
//! fetches it again every few seconds; a running evaluation's progress
//! live), its path in the
//! uniformity–tolerance plane and its metrics against step, its warnings,
//! and the checkpoint to keep.

use axum::extract::{Path, Query, State};
use maud::html;
use serde::Deserialize;

use super::comparisons::with_tooltips;
use super::layout::{self, page, Nav};
use super::{Page, Web};
use crate::data::LoadedDataset;
use crate::error::Error;
use crate::report::figures::{self, Format, Size};

/// GET /runs.
pub(super) async fn list(State(web): State<Web>) -> Page {
    web.state.ensure_ready()?;
    let runs = crate::views::runs(&web.state.registries).await?;
    Ok(page(
        "Training runs",
        Nav::Runs,
        html! {
            table.sortable {
                thead { tr {
                    th { "Run" } th.n { "Checkpoints" } th.n { "First step" } th.n { "Last step" }
                    th { "Loss" } th.n { "τ" }
                } }
                tbody { @for r in &runs {
                    tr {
                        td { a href={ "/runs/" (r.name) } { (r.name) } }
                        td.n { (r.checkpoints) } td.n { (r.first_step) } td.n { (r.last_step) }
                        td { (r.loss) } td.n { (layout::tau(r.temperature)) }
                    }
                } }
            }
            @if runs.is_empty() {
                p.muted { "No run yet: models whose cards name a run (" code { "[training] run, step" } "), or " code { "embedeval watch" } " of a trainer's checkpoints, make one." }
            }
        },
    ))
}

/// The dataset a run is shown on.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RunQuery {
    #[serde(default)]
    dataset: String,
}

/// GET /runs/{name}?dataset=…; without a dataset, the datasets to choose.
pub(super) async fn show(
    State(web): State<Web>,
    Path(name): Path<String>,
    Query(q): Query<RunQuery>,
) -> Page {
    web.state.ensure_ready()?;
    if q.dataset.is_empty() {
        let datasets = web.state.registries.listing::<LoadedDataset>().await?;
        return Ok(page(
            &format!("Run {name}"),
            Nav::Runs,
            html! {
                p { "On which dataset?" }
                ul { @for d in &datasets {
                    li { a href={ "/runs/" (name) "?dataset=" (d.name) } { (d.name) } }
                } }
            },
        ));
    }
    let run = crate::views::run(
        &web.state.registries,
        &web.state.engine.reports(),
        &name,
        &q.dataset,
    )
    .await?;
    let drawn = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || {
            let rows: Vec<_> = run
                .checkpoints
                .iter()
                .filter_map(|c| c.report.clone())
                .collect();
            [
                (
                    "Path in the uniformity–tolerance plane",
                    figures::render_run(&run, Format::Svg, Size::Screen),
                ),
                (
                    "Metrics against step",
                    figures::render_run_metrics(&run, Format::Svg, Size::Screen),
                ),
            ]
            .map(|(title, figure)| (title, figure.map(|f| with_tooltips(f, &rows))))
        })
        .await
        .map_err(|e| Error::join("a run's figures", e))?
    };
    Ok(page(
        &format!("Run {name} on {}", q.dataset),
        Nav::Runs,
        html! {
            @if let Some(keep) = &run.checkpoint_to_keep {
                p { "Keep " strong { (keep.recommended) } ": " (keep.reason) }
            }
            @if !run.warnings.is_empty() {
                ul { @for w in &run.warnings { li.warning { "step " (w.step) ": " (w.message) } } }
            }
            div #checkpoints data-refresh={ "/runs/" (name) "/table?dataset=" (q.dataset) } data-every="5" {
                (checkpoints(&run, &q.dataset))
            }
            @for (title, figure) in &drawn {
                h2 { (title) }
                @match figure {
                    Ok(svg) => div.figure { (layout::trusted(svg.clone())) },
                    Err(err) => p.muted { "Not drawn: " (err.to_string()) },
                }
            }
        },
    ))
}

/// A run's checkpoint table: each step's model, status (a running
/// evaluation's progress live) and metrics.
fn checkpoints(run: &crate::domain::Run, dataset: &str) -> maud::Markup {
    html! {
        table.sortable {
            thead { tr {
                th.n { "Step" } th { "Model" } th { "Status" } th.n { "−L_uniform" } th.n { "Tolerance" }
                th.n { "kNN top-1" } th.n { "Linear top-1" } th.n { "Effective rank" }
            } }
            tbody { @for c in &run.checkpoints {
                tr {
                    td.n { (c.step) }
                    td { a href={ "/models/" (c.model) } { (c.model) } }
                    @match &c.report {
                        Some(r) => {
                            td {
                                @if r.status.has_ended() { a href={ "/evaluations/" (r.id) } { (layout::status(r.status)) } }
                                @else { (layout::live_progress(r)) }
                            }
                            td.n { (layout::num(r.uniformity, 4)) }
                            td.n { (layout::num(r.tolerance, 4)) }
                            td.n { (layout::pct(r.knn.as_ref().map(|k| k.top1))) }
                            td.n { (layout::pct(r.linear.as_ref().map(|l| l.top1))) }
                            td.n { (layout::num(r.effective_rank, 2)) }
                        },
                        None => { td.muted colspan="6" { "not evaluated on " (dataset) } },
                    }
                }
            } }
        }
    }
}

/// GET /runs/{name}/table?dataset=…: the checkpoint table alone, which the
/// page's script fetches again every few seconds, so that the table grows
/// as `embedeval watch` evaluates new checkpoints.
pub(super) async fn table(
    State(web): State<Web>,
    Path(name): Path<String>,
    Query(q): Query<RunQuery>,
) -> Page {
    web.state.ensure_ready()?;
    let run = crate::views::run(
        &web.state.registries,
        &web.state.engine.reports(),
        &name,
        &q.dataset,
    )
    .await?;
    Ok(checkpoints(&run, &q.dataset))
}
