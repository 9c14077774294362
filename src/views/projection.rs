//! ProjectEmbeddings and the dashboard's embedding space: which models and
//! rows to draw, their embeddings from the cache an evaluation filled, the
//! projection ([`crate::report::projection`]) computed off the async
//! threads, and the result kept under the cache folder so that the same
//! request gives the same picture at once.

use sha2::{Digest, Sha256};

use crate::domain::{Projections, Report};
use crate::error::{Error, Result};
use crate::jobs::settings::Splits;
use crate::jobs::Engine;
use crate::registry::Registries;
use crate::report::projection::{self, Method, DEFAULT_PERPLEXITY, DEFAULT_ROWS, MAX_ROWS};

/// What to project.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionRequest {
    /// The models ("": a comparison's smallest and largest τ).
    pub models: Vec<String>,
    /// A stored comparison: its dataset and, without models, its models.
    pub comparison_id: String,
    /// The dataset, without a comparison.
    pub dataset: String,
    /// The split ("": the dataset's test split).
    pub split: String,
    /// Most rows (0: the default).
    pub max_rows: usize,
    /// How.
    pub method: Method,
    /// The sample's seed.
    pub seed: u64,
    /// t-SNE's perplexity (0: the default).
    pub perplexity: f64,
}

/// A comparison's default models to draw: of the loss with the most rows
/// that have a τ, the smallest and the largest τ (the only model when one).
pub fn smallest_and_largest_tau(rows: &[Report]) -> Vec<String> {
    let mut by_loss: std::collections::BTreeMap<&str, Vec<&Report>> = Default::default();
    for r in rows.iter().filter(|r| r.temperature > 0.0) {
        by_loss.entry(r.loss.as_str()).or_default().push(r);
    }
    let Some(mut most) = by_loss.into_values().max_by_key(|v| v.len()) else {
        return rows.iter().take(2).map(|r| r.model.clone()).collect();
    };
    most.sort_by(|a, b| a.temperature.total_cmp(&b.temperature));
    let mut models = vec![most[0].model.clone()];
    if let Some(last) = most.last().filter(|l| l.model != models[0]) {
        models.push(last.model.clone());
    }
    models
}

/// The projections `req` asks for.
pub async fn project(
    engine: &Engine,
    registries: &Registries,
    req: ProjectionRequest,
) -> Result<Projections> {
    let subjects = super::subjects::subjects(
        engine,
        registries,
        &req.comparison_id,
        &req.models,
        &req.dataset,
        smallest_and_largest_tau,
    )
    .await?;
    let (loaded, dataset) = (subjects.models, subjects.dataset);
    let max_rows = match req.max_rows {
        0 => DEFAULT_ROWS,
        n if n > MAX_ROWS => {
            return Err(Error::InvalidArgument(format!(
                "max_rows is at most {MAX_ROWS}, got {n}"
            )))
        }
        n => n,
    };
    let perplexity = if req.perplexity > 0.0 {
        req.perplexity
    } else {
        DEFAULT_PERPLEXITY
    };
    let split = Splits::for_dataset(&dataset, &req.split, "")?.test;
    // The key of the stored picture: the models' files, the dataset's
    // content and every setting.
    let mut key = Sha256::new();
    for m in &loaded {
        key.update(m.sha256.as_bytes());
        key.update(m.name.as_bytes());
    }
    let (method_name, perplexity) = match req.method {
        Method::Pca => ("pca", 0.0),
        Method::Tsne => ("tsne", perplexity),
    };
    key.update(
        format!(
            "{}\n{split}\n{max_rows}\n{}\n{method_name}\n{perplexity}",
            dataset.id, req.seed
        )
        .as_bytes(),
    );
    let path = super::kept::path(engine, "projections", &hex::encode(key.finalize()));
    if let Some(found) = super::kept::read(&path).await {
        return Ok(found);
    }

    let mut embeddings = Vec::with_capacity(loaded.len());
    for m in &loaded {
        let e = super::subjects::cached(engine, m, &dataset, &split, "test").await?;
        embeddings.push((m.name.clone(), super::subjects::temperature(m), e));
    }
    let d = dataset.clone();
    let split_name = split.clone();
    let method = req.method;
    let seed = req.seed;
    let mut out = tokio::task::spawn_blocking(move || -> Result<Projections> {
        let s = d.split(&split_name)?;
        let rows = projection::sample(&s.labels, max_rows, seed);
        let mut projections = Vec::with_capacity(embeddings.len());
        for (model, tau, e) in &embeddings {
            let dim = e.dim();
            let x: Vec<f32> = rows
                .iter()
                .flat_map(|&r| e.row(r).iter().copied())
                .collect();
            projections.push(projection::project(
                model, *tau, &x, dim, method, perplexity,
            )?);
        }
        Ok(Projections {
            dataset: d.name.clone(),
            dataset_id: d.id.clone(),
            split: split_name,
            labels: rows.iter().map(|&r| s.labels[r]).collect(),
            rows: rows.iter().map(|&r| r as u64).collect(),
            class_names: d.dataset.summary.class_names.clone(),
            method: method.name().to_string(),
            seed,
            perplexity,
            max_rows: max_rows as u32,
            projections,
            svg: String::new(),
        })
    })
    .await
    .map_err(|e| Error::join("a projection", e))??;
    out.svg = projection::draw(&out);
    super::kept::write(&path, &out).await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comparison_draws_its_smallest_and_largest_tau_of_its_largest_loss() {
        let row = |model: &str, loss: &str, t: f64| Report {
            model: model.into(),
            loss: loss.into(),
            temperature: t,
            ..Default::default()
        };
        let rows = [
            row("a", "infonce", 0.5),
            row("b", "infonce", 0.1),
            row("c", "infonce", 1.0),
            row("d", "hard_infonce", 0.2),
            row("e", "simple", 0.0),
        ];
        assert_eq!(smallest_and_largest_tau(&rows), ["b", "c"]);
        assert_eq!(smallest_and_largest_tau(&rows[3..]), ["d"]);
        assert_eq!(smallest_and_largest_tau(&rows[4..]), ["e"]);
    }
}
