//! The models pages: the list, and one model's card (training, input and
//! preprocessing, outputs, tags, warnings) with where it came from.

use axum::extract::{Path, State};
use maud::html;

use super::layout::{self, page, Nav};
use super::{Page, Web};
use crate::domain::ModelInfo;
use crate::registry::LoadedModel;

/// GET /models.
pub(super) async fn list(State(web): State<Web>) -> Page {
    web.state.ensure_ready()?;
    let mut models = web.state.registries.listing::<LoadedModel>().await?;
    models.sort_by(|a, b| a.name.cmp(&b.name));
    let skipped = web.state.models.skipped();
    Ok(page(
        "Models",
        Nav::Models,
        html! {
            p.muted { (models.len()) " models." }
            table.sortable {
                thead { tr {
                    th { "Model" } th { "Loss" } th.n { "τ" } th { "Run" } th.n { "Step" }
                    th.n { "Dim" } th { "Tags" } th.n { "Warnings" }
                } }
                tbody {
                    @for m in &models {
                        @let t = m.training.clone().unwrap_or_default();
                        tr {
                            td { a href={ "/models/" (m.name) } { (m.name) } }
                            td { (loss_label(&t.loss, &t.loss_name)) }
                            td.n data-sort=(layout::sort_key(Some(t.temperature))) { (layout::tau(t.temperature)) }
                            td { @if !t.run.is_empty() { a href={ "/runs/" (t.run) } { (t.run) } } }
                            td.n { @if !t.run.is_empty() { (t.step) } }
                            td.n { (embedding_dim(m)) }
                            td { (layout::tags(&m.tags)) }
                            td.n { (m.warnings.len()) }
                        }
                    }
                }
            }
            @if !skipped.is_empty() {
                h2 { "Not loaded" }
                table {
                    thead { tr { th { "Folder" } th { "Why" } } }
                    tbody { @for s in &skipped { tr { td { (s.name) } td.error { (s.reason) } } } }
                }
            }
        },
    ))
}

/// A loss as tables name it (a loss of one's own by its name).
pub(super) fn loss_label(loss: &str, loss_name: &str) -> String {
    if loss == "other" && !loss_name.is_empty() {
        format!("other ({loss_name})")
    } else {
        loss.to_string()
    }
}

/// The width of the model's embedding output.
fn embedding_dim(m: &ModelInfo) -> String {
    m.outputs
        .iter()
        .find(|o| o.name == m.embedding_output)
        .map(|o| o.dim.to_string())
        .unwrap_or_default()
}

/// GET /models/{name}.
pub(super) async fn show(State(web): State<Web>, Path(name): Path<String>) -> Page {
    web.state.ensure_ready()?;
    let model = web.state.model(&name).await?;
    let origin = if web.state.models.is_bundled(&model) {
        "bundled with the server"
    } else {
        "uploaded"
    };
    let m = model.info();
    let t = m.training.clone().unwrap_or_default();
    let input = m.input.clone().unwrap_or_default();
    Ok(page(
        &m.name,
        Nav::Models,
        html! {
            p {
                a href={ "/evaluations?model=" (m.name) } { "Its evaluations" }
                @if !t.run.is_empty() { " · " a href={ "/runs/" (t.run) } { "its run" } }
            }
            @if !m.warnings.is_empty() {
                ul.warnings { @for w in &m.warnings { li.warning { (w) } } }
            }
            h2 { "Card" }
            dl.facts {
                dt { "Came from" } dd { (origin) @if !t.run.is_empty() { ", a checkpoint of run " (t.run) " at step " (t.step) } }
                dt { "Loss" } dd { (loss_label(&t.loss, &t.loss_name)) }
                dt { "τ" } dd { (layout::tau(t.temperature)) }
                dt { "Trained on" } dd { (t.dataset) }
                dt { "Epochs" } dd { (t.epochs) }
                dt { "Seed" } dd { (t.seed) }
                dt { "Tags" } dd { (layout::tags(&m.tags)) }
                dt { "Description" } dd { (m.description) }
                dt { "ONNX size" } dd { (m.size_bytes) " bytes" }
                dt { "Execution provider" } dd { (m.execution_provider) }
                dt { "Filled by defaults" } dd { (m.inferred.join(", ")) }
            }
            h2 { "Input and preprocessing" }
            dl.facts {
                dt { "Input" } dd { (input.name) " " (input.dtype) " " (format!("{:?}", input.shape)) " (" (input.layout) ")" }
                dt { "Preset" } dd { (input.preset) }
                dt { "Scale" } dd { (input.scale) }
                dt { "Mean" } dd { (format!("{:?}", input.mean)) }
                dt { "Std" } dd { (format!("{:?}", input.std)) }
                dt { "Resize" } dd { (input.resize) }
            }
            h2 { "Outputs" }
            table {
                thead { tr { th { "Output" } th.n { "Dim" } th { "Use" } } }
                tbody {
                    @for o in &m.outputs {
                        tr {
                            td { (o.name) } td.n { (o.dim) }
                            td {
                                @if o.name == m.embedding_output { "embedding" }
                                @if m.feature_output.as_deref() == Some(o.name.as_str()) { "linear-probe features" }
                            }
                        }
                    }
                }
            }
        },
    ))
}
