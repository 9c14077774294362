//! NearestImages and the dashboard's neighbours page: a test image's k
//! nearest training images under each model, and each class's most
//! confused class with example pairs, from the embeddings the models'
//! evaluations cached. The confusions (a search of every test row) are
//! kept per model, dataset and splits; the query's neighbours are one row
//! against the bank, made each time.

use sha2::{Digest, Sha256};

use crate::domain::{ClassConfusion, ModelNeighbours, NearestImages, Report};
use crate::error::{Error, Result};
use crate::jobs::settings::Splits;
use crate::jobs::Engine;
use crate::registry::Registries;
use crate::report::neighbours::{confusions, nearest, unit_rows};

/// Neighbours per model unless asked otherwise.
pub const DEFAULT_K: usize = 8;
/// The most neighbours per model.
pub const MAX_K: usize = 50;
/// Example pairs per class unless asked otherwise.
pub const DEFAULT_PAIRS: usize = 3;

/// What to show.
#[derive(Debug, Clone, PartialEq)]
pub struct NearestRequest {
    /// The models ("": every model of the comparison, up to 8).
    pub models: Vec<String>,
    /// A stored comparison: its dataset and, without models, its models.
    pub comparison_id: String,
    /// The dataset, without a comparison.
    pub dataset: String,
    /// The test split ("": the dataset's).
    pub test_split: String,
    /// The training split ("": the dataset's).
    pub train_split: String,
    /// The query's row of the test split.
    pub row: u64,
    /// Neighbours per model (0: the default).
    pub k: usize,
    /// Example pairs per class (0: the default).
    pub pairs: usize,
}

/// Every model of a comparison, in its order, up to the most drawn.
fn every_model(rows: &[Report]) -> Vec<String> {
    rows.iter()
        .take(super::subjects::MAX_MODELS)
        .map(|r| r.model.clone())
        .collect()
}

/// The nearest images `req` asks for.
pub async fn nearest_images(
    engine: &Engine,
    registries: &Registries,
    req: NearestRequest,
) -> Result<NearestImages> {
    let k = match req.k {
        0 => DEFAULT_K,
        k if k > MAX_K => {
            return Err(Error::InvalidArgument(format!(
                "k is at most {MAX_K}, got {k}"
            )))
        }
        k => k,
    };
    let pairs = if req.pairs == 0 {
        DEFAULT_PAIRS
    } else {
        req.pairs.min(MAX_K)
    };
    let s = super::subjects::subjects(
        engine,
        registries,
        &req.comparison_id,
        &req.models,
        &req.dataset,
        every_model,
    )
    .await?;
    let dataset = s.dataset;
    let splits = Splits::for_dataset(&dataset, &req.test_split, &req.train_split)?;
    let (test_split, train_split) = (
        splits.test.clone(),
        splits.train.clone().ok_or_else(|| {
            Error::FailedPrecondition(format!(
                "dataset {} has no training split to find neighbours in",
                dataset.name
            ))
        })?,
    );
    let (d, t, b) = (dataset.clone(), test_split.clone(), train_split.clone());
    let (test_labels, train_labels) = tokio::task::spawn_blocking(move || -> Result<_> {
        Ok((d.split(&t)?.labels.clone(), d.split(&b)?.labels.clone()))
    })
    .await
    .map_err(|e| Error::join("a dataset's labels", e))??;
    let row = usize::try_from(req.row).unwrap_or(usize::MAX);
    if row >= test_labels.len() {
        return Err(Error::InvalidArgument(format!(
            "row {} is not in split {test_split} of {} ({} rows)",
            req.row,
            dataset.name,
            test_labels.len()
        )));
    }
    let (test_labels, train_labels) = (
        std::sync::Arc::new(test_labels),
        std::sync::Arc::new(train_labels),
    );
    let mut models = Vec::with_capacity(s.models.len());
    for m in &s.models {
        let test = super::subjects::cached(engine, m, &dataset, &test_split, "test").await?;
        let bank = super::subjects::cached(engine, m, &dataset, &train_split, "train").await?;
        let mut key = Sha256::new();
        key.update(
            format!(
                "{}\n{}\n{test_split}\n{train_split}\n{pairs}",
                m.sha256, dataset.id
            )
            .as_bytes(),
        );
        let path = super::kept::path(engine, "confusions", &hex::encode(key.finalize()));
        let kept: Option<Vec<ClassConfusion>> = super::kept::read(&path).await;
        let fresh = kept.is_none();
        let (tl, bl) = (test_labels.clone(), train_labels.clone());
        let (neighbours, confused) = tokio::task::spawn_blocking(move || -> Result<_> {
            let d = test.dim();
            let bank = unit_rows(bank.as_slice(), d);
            let query = unit_rows(test.row(row), d);
            let neighbours = nearest(&bank, &bl, &query, d, k)?;
            let confused = match kept {
                Some(c) => c,
                None => confusions(&unit_rows(test.as_slice(), d), &tl, &bank, &bl, d, pairs)?,
            };
            Ok((neighbours, confused))
        })
        .await
        .map_err(|e| Error::join("nearest images", e))??;
        if fresh {
            super::kept::write(&path, &confused).await;
        }
        models.push(ModelNeighbours {
            model: m.name.clone(),
            temperature: super::subjects::temperature(m),
            neighbours,
            confusions: confused,
        });
    }
    Ok(NearestImages {
        dataset: dataset.name.clone(),
        dataset_id: dataset.id.clone(),
        test_split,
        train_split,
        row: req.row,
        label: test_labels[row],
        class_names: dataset.dataset.summary.class_names.clone(),
        models,
    })
}
