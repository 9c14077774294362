//! The embedding space of a comparison's models: a stratified sample of the
//! test split projected to two dimensions (PCA or t-SNE) per model, side by
//! side, one colour per class (the picture of uniformity against
//! tolerance); by default the comparison's smallest and largest τ.

use axum::extract::{Path, Query, State};
use maud::html;
use serde::Deserialize;

use super::layout::{self, page, Nav};
use super::{Page, Web};
use crate::error::Error;
use crate::report::projection::{Method, DEFAULT_ROWS};
use crate::views::ProjectionRequest;

/// The page's choices.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SpaceQuery {
    /// "pca" (default) or "tsne".
    #[serde(default)]
    method: String,
    /// Comma-separated models ("": the default two).
    #[serde(default)]
    models: String,
    #[serde(default)]
    max_rows: Option<usize>,
    #[serde(default)]
    seed: u64,
}

/// GET /comparisons/{id}/space.
pub(super) async fn show(
    State(web): State<Web>,
    Path(id): Path<String>,
    Query(q): Query<SpaceQuery>,
) -> Page {
    web.state.ensure_ready()?;
    let method = match q.method.as_str() {
        "" | "pca" => Method::Pca,
        "tsne" => Method::Tsne,
        other => {
            return Err(
                Error::InvalidArgument(format!("method is pca or tsne, got {other:?}")).into(),
            )
        }
    };
    let models: Vec<String> = q
        .models
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    let max_rows = q.max_rows.unwrap_or(DEFAULT_ROWS);
    let p = crate::views::project(
        &web.state.engine,
        &web.state.registries,
        ProjectionRequest {
            models,
            comparison_id: id.clone(),
            dataset: String::new(),
            split: String::new(),
            max_rows,
            method,
            seed: q.seed,
            perplexity: 0.0,
        },
    )
    .await?;
    let names: Vec<&str> = p.projections.iter().map(|m| m.model.as_str()).collect();
    Ok(page(
        &format!("The embedding space of comparison {id}"),
        Nav::Comparisons,
        html! {
            p {
                a href={ "/comparisons/" (id) } { "← the comparison" }
                " · " (p.rows.len()) " rows of split " (p.split) " of " (p.dataset)
                " (a stratified sample, seed " (p.seed) "), " (p.method.to_uppercase())
                @if p.method == "tsne" { " with perplexity " (p.perplexity) }
            }
            form.filters method="get" {
                label { "Method"
                    select name="method" {
                        option value="pca" selected[p.method == "pca"] { "PCA" }
                        option value="tsne" selected[p.method == "tsne"] { "t-SNE" }
                    }
                }
                label { "Models (comma-separated)" input name="models" value=(names.join(",")); }
                label { "Rows" input name="max_rows" type="number" min="2" max="5000" value=(p.max_rows); }
                label { "Seed" input name="seed" type="number" min="0" value=(p.seed); }
                button type="submit" { "Draw" }
            }
            div.figure.space { (layout::trusted(p.svg.clone())) }
            table {
                thead { tr { th { "Model" } th.n { "τ" } th { "Fit" } } }
                tbody { @for m in &p.projections {
                    tr {
                        td { a href={ "/models/" (m.model) } { (m.model) } }
                        td.n { (layout::tau(m.temperature)) }
                        td {
                            @if let Some(kl) = m.kl_divergence { "KL divergence " (format!("{kl:.3}")) }
                            @if m.explained_variance.len() == 2 {
                                "variance along the axes " (layout::pct(Some(m.explained_variance[0]))) ", " (layout::pct(Some(m.explained_variance[1])))
                            }
                        }
                    }
                } }
            }
        },
    ))
}
