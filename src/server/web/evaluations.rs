//! The evaluations pages: a paged list filtered by model, dataset, status
//! and tag; one report with every metric, the per-class table, warnings
//! and every setting echoed; and, while it runs, a progress bar fed by
//! Server-Sent Events from the engine's event stream that ends in the
//! report without a reload.

use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, page, Nav};
use super::models::loss_label;
use super::{Page, PageError, Web};
use crate::domain::{Report, Status};
use crate::jobs::{Event, Outcome};

/// Rows per page of the list.
const PAGE: usize = 50;

/// The list's filters and page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filters {
    #[serde(default)]
    model: String,
    #[serde(default)]
    dataset: String,
    /// A status name (COMPLETED, RUNNING, …); empty: any.
    #[serde(default)]
    status: String,
    /// key=value; empty: any.
    #[serde(default)]
    tag: String,
    /// The page token of the store's list.
    #[serde(default)]
    page: String,
}

impl Filters {
    /// Whether `r` passes the status and tag filters.
    fn keeps(&self, r: &Report) -> bool {
        let status = self.status.is_empty() || r.status.name().eq_ignore_ascii_case(&self.status);
        let tag = match self.tag.split_once('=') {
            Some((k, v)) => r.tags.get(k.trim()).is_some_and(|x| x == v.trim()),
            None => self.tag.is_empty(),
        };
        status && tag
    }
}

/// GET /evaluations.
pub(super) async fn list(State(web): State<Web>, Query(f): Query<Filters>) -> Page {
    let (reports, next) = web
        .state
        .engine
        .reports()
        .list(&f.model, &f.dataset, PAGE, &f.page)
        .await?;
    let shown: Vec<&Report> = reports.iter().filter(|r| f.keeps(r)).collect();
    let next_href = (!next.is_empty()).then(|| {
        let q = layout::query_pair;
        format!(
            "/evaluations?{}&{}&{}&{}&{}",
            q("model", &f.model),
            q("dataset", &f.dataset),
            q("status", &f.status),
            q("tag", &f.tag),
            q("page", &next)
        )
    });
    Ok(page(
        "Evaluations",
        Nav::Evaluations,
        html! {
            form.filters method="get" action="/evaluations" {
                label { "Model" input name="model" value=(f.model); }
                label { "Dataset" input name="dataset" value=(f.dataset); }
                label { "Status"
                    select name="status" {
                        option value="" selected[f.status.is_empty()] { "any" }
                        @for s in Status::ALL.iter().filter(|s| **s != Status::Unspecified) {
                            option value=(s.name()) selected[s.name().eq_ignore_ascii_case(&f.status)] { (s.name()) }
                        }
                    }
                }
                label { "Tag" input name="tag" value=(f.tag) placeholder="key=value"; }
                button type="submit" { "Filter" }
            }
            table.sortable {
                thead { tr {
                    th { "Evaluation" } th { "Model" } th { "Dataset" } th { "Status" }
                    th.n { "kNN top-1" } th.n { "Linear top-1" } th.n { "−L_uniform" } th.n { "Tolerance" }
                    th { "Created" }
                } }
                tbody {
                    @for r in &shown {
                        tr {
                            td { a href={ "/evaluations/" (r.id) } { code { (r.id) } } }
                            td { a href={ "/models/" (r.model) } { (r.model) } }
                            td { a href={ "/datasets/" (r.dataset) } { (r.dataset) } }
                            td {
                                @if r.status.has_ended() { (layout::status(r.status)) }
                                @else { (layout::live_progress(r)) }
                            }
                            td.n { (layout::pct(r.knn.as_ref().map(|k| k.top1))) }
                            td.n { (layout::pct(r.linear.as_ref().map(|l| l.top1))) }
                            td.n { (layout::num(r.uniformity, 3)) }
                            td.n { (layout::num(r.tolerance, 3)) }
                            td { (layout::time(r.created_at)) }
                        }
                    }
                }
            }
            @if shown.is_empty() { p.muted { "No evaluation on this page matches." } }
            @if let Some(href) = next_href { p.pager { a href=(href) { "Older →" } } }
        },
    ))
}

/// GET /evaluations/{id}.
pub(super) async fn show(State(web): State<Web>, Path(id): Path<String>) -> Page {
    let r = web.state.engine.reports().get(&id).await?;
    Ok(page(
        &format!("Evaluation {}", r.id),
        Nav::Evaluations,
        html! {
            div #report { (report(&r)) }
        },
    ))
}

/// GET /evaluations/{id}/report: the report's part of its page, which the
/// script puts in place when a running evaluation ends.
pub(super) async fn fragment(State(web): State<Web>, Path(id): Path<String>) -> Page {
    Ok(report(&web.state.engine.reports().get(&id).await?))
}

/// The body of a report's page.
fn report(r: &Report) -> Markup {
    let class_name = |i: usize, label: i64| {
        r.per_class
            .as_ref()
            .and_then(|p| p.names.get(i))
            .filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| label.to_string())
    };
    html! {
        dl.facts {
            dt { "Model" } dd { a href={ "/models/" (r.model) } { (r.model) } }
            dt { "Dataset" } dd { a href={ "/datasets/" (r.dataset) } { (r.dataset) } " " code.muted { (crate::views::short_id(&r.dataset_id)) } }
            dt { "Status" } dd {
                @if r.status.has_ended() { (layout::status(r.status)) } @else { (layout::live_progress(r)) }
            }
            @if !r.error.is_empty() { dt { "Error" } dd.error { (r.error) } }
            dt { "Loss" } dd { (loss_label(&r.loss, &r.loss_name)) }
            dt { "τ" } dd { (layout::tau(r.temperature)) }
            dt { "Splits" } dd { "test " (r.test_split) " (" (r.num_test) " rows), train " (r.train_split) " (" (r.num_train) " rows)" }
            dt { "Embedding" } dd { (r.embedding_dim) " dimensions" }
            dt { "Tags" } dd { (layout::tags(&r.tags)) }
            dt { "Created" } dd { (layout::time(r.created_at)) }
            dt { "Execution provider" } dd { (r.execution_provider) }
        }
        @if !r.warnings.is_empty() {
            h2 { "Warnings" }
            ul { @for w in &r.warnings { li.warning { (w) } } }
        }
        h2 { "Metrics" }
        table {
            tbody {
                tr { th { "Uniformity, −L_uniform (Wang & Isola, Eq. 4)" } td.n { (layout::num(r.uniformity, 4)) } td.muted { (r.uniformity_estimator) @if r.uniformity_stderr > 0.0 { " ± " (layout::num(Some(r.uniformity_stderr), 4)) } } }
                tr { th { "Alignment, L_align" } td.n { (layout::num(r.alignment, 4)) } td {} }
                tr { th { "Tolerance (Wang & Liu, Eq. 11)" } td.n { (layout::num(r.tolerance, 4)) } td {} }
                tr { th { "Positive similarity" } td.n { (layout::num(r.positive_similarity, 4)) } td {} }
                tr { th { "Nearest negatives, 1st…k-th" } td.n { (numbers(&r.nearest_negative_similarity)) } td {} }
                tr { th { "Relative penalty (Eq. 3)" } td.n { (numbers(&r.relative_penalty)) } td {} }
                tr { th { "Penalty entropy" } td.n { (layout::num(r.penalty_entropy, 4)) } td {} }
                tr { th { "Effective negatives" } td.n { (layout::num(r.effective_negatives, 2)) } td {} }
                tr { th { "Effective rank" } td.n { (layout::num(r.effective_rank, 2)) } td {} }
                @if let Some(k) = &r.knn {
                    tr { th { "kNN top-1 / top-5" } td.n { (layout::pct(Some(k.top1))) " / " (layout::pct(Some(k.top5))) } td.muted { "k = " (k.k) ", T = " (k.temperature) ", " (k.metric) } }
                }
                @if let Some(x) = &r.retrieval {
                    tr { th { "MAP@R / R-Precision / Precision@1" } td.n { (layout::num(Some(x.map_at_r), 4)) " / " (layout::num(Some(x.r_precision), 4)) " / " (layout::num(Some(x.precision_at_1), 4)) } td.muted { "gallery " (x.gallery) ", " (x.queries) " queries" @if x.lone_queries > 0 { ", " (x.lone_queries) " left out (no row of their class)" } } }
                    tr { th { "Recall@K" } td.n { @for (i, (k, v)) in x.recall_at_k.iter().enumerate() { @if i > 0 { ", " } "@" (k) " " (layout::pct(Some(*v))) } } td {} }
                }
                @if let Some(c) = &r.clustering {
                    tr { th { "k-means NMI / AMI" } td.n { (layout::num(Some(c.nmi), 4)) " / " (layout::num(Some(c.ami), 4)) } td.muted { (c.clusters) " clusters, " (c.iterations) " iterations, " (c.restarts) " runs, seed " (c.seed) } }
                }
                @if let Some(l) = &r.linear {
                    tr { th { "Linear top-1 / top-5" } td.n { (layout::pct(Some(l.top1))) " / " (layout::pct(Some(l.top5))) } td.muted { "train " (layout::pct(Some(l.train_top1))) ", C = " (l.c) ", " (l.iterations) " iterations" @if !l.converged { ", not converged" } ", on " (l.feature_output) } }
                }
            }
        }
        @if let Some(p) = &r.per_class {
            h2 { "Per class" }
            table.sortable {
                thead { tr { th { "Class" } th.n { "Rows" } th.n { "Tolerance" } th.n { "kNN top-1" } th.n { "Linear top-1" } th.n { "MAP@R" } th.n { "R-Precision" } } }
                tbody {
                    @for (i, label) in p.labels.iter().enumerate() {
                        tr {
                            td { (class_name(i, *label)) }
                            td.n { (p.counts.get(i).copied().unwrap_or(0)) }
                            td.n data-sort=(layout::sort_key(p.tolerance.get(i).copied())) { (layout::num(p.tolerance.get(i).copied(), 4)) }
                            td.n data-sort=(layout::sort_key(p.knn_top1.get(i).copied())) { (layout::pct(p.knn_top1.get(i).copied())) }
                            td.n data-sort=(layout::sort_key(p.linear_top1.get(i).copied())) { (layout::pct(p.linear_top1.get(i).copied())) }
                            td.n data-sort=(layout::sort_key(p.map_at_r.get(i).copied())) { (layout::num(p.map_at_r.get(i).copied(), 4)) }
                            td.n data-sort=(layout::sort_key(p.r_precision.get(i).copied())) { (layout::num(p.r_precision.get(i).copied(), 4)) }
                        }
                    }
                }
            }
        }
        h2 { "Settings" }
        (settings(r))
        @if !r.timings.is_empty() {
            h2 { "Time per stage" }
            table { tbody { @for (stage, s) in &r.timings { tr { th { (stage) } td.n { (format!("{s:.2} s")) } } } } }
        }
    }
}

/// A short list of numbers.
fn numbers(values: &[f64]) -> String {
    if values.is_empty() {
        return "–".into();
    }
    values
        .iter()
        .map(|v| format!("{v:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every setting the report was made with, as the spec and the
/// preprocessing record them.
fn settings(r: &Report) -> Markup {
    let fields = |value: serde_json::Value| -> Vec<(String, String)> {
        let mut out = Vec::new();
        flatten("", &value, &mut out);
        out
    };
    let spec = r
        .spec
        .as_ref()
        .map(|s| fields(serde_json::to_value(s).unwrap_or_default()))
        .unwrap_or_default();
    let input = r
        .preprocessing
        .as_ref()
        .map(|p| fields(serde_json::to_value(p).unwrap_or_default()))
        .unwrap_or_default();
    html! {
        table {
            tbody {
                @for (k, v) in &spec { tr { th { (k) } td { (v) } } }
                @for (k, v) in &input { tr { th { "input." (k) } td { (v) } } }
            }
        }
    }
}

/// `value`'s leaves as dotted keys and their text (nulls and empty strings
/// left out).
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&key(k), v, out);
            }
        }
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// GET /evaluations/{id}/events: the evaluation's progress as Server-Sent
/// Events (`progress`, JSON of stage, done and total), then `end` with its
/// status, whatever the rest of its job does.
pub(super) async fn events(
    State(web): State<Web>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, PageError> {
    let events = web.state.engine.watch(&id).await?;
    let stream = events
        .map(move |event| step(&id, event))
        .scan(false, |ended, (event, last)| {
            let out = if *ended { None } else { Some(event) };
            *ended |= last;
            futures::future::ready(out)
        })
        .filter_map(|event| futures::future::ready(event.map(Ok)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// What the page is sent of one engine event of evaluation `id` (if
/// anything), and whether the stream ends after it.
fn step(id: &str, event: Event) -> (Option<SseEvent>, bool) {
    let end = |status: Status| Some(SseEvent::default().event("end").data(status.name()));
    match event {
        Event::Progress(p) if p.evaluation_id == id => {
            let data = serde_json::json!({ "stage": p.stage, "done": p.done, "total": p.total });
            (
                Some(SseEvent::default().event("progress").data(data.to_string())),
                false,
            )
        }
        Event::Progress(_) => (None, false),
        Event::Evaluated(r) if r.id == id => (end(r.status), true),
        Event::Evaluated(_) => (None, false),
        Event::Done(Ok(Outcome::Report(r))) => (end(r.status), true),
        Event::Done(Ok(Outcome::Comparison(c))) => {
            let status = c.rows.iter().find(|r| r.id == id).map(|r| r.status);
            (end(status.unwrap_or(Status::Failed)), true)
        }
        Event::Done(Err(_)) => (end(Status::Failed), true),
    }
}
