//! The results store as everything but the recorder sees it: reads only.
//! The edge, runs and figures get a [`Reports`]; only the engine holds the
//! [`ReportStore`] itself, so "only the recorder writes reports" is kept by
//! the types, not by a convention.

use std::sync::Arc;

use super::{ReportStore, StoredComparison};
use crate::domain::{ExcludedModel, Report};
use crate::error::Result;

/// A read-only view of the results store.
#[derive(Debug, Clone)]
pub struct Reports(Arc<ReportStore>);

impl Reports {
    /// The view of `store`.
    pub fn of(store: Arc<ReportStore>) -> Self {
        Self(store)
    }

    /// Evaluation `id` (NOT_FOUND when there is none).
    pub async fn get(&self, id: &str) -> Result<Report> {
        self.0.get(id).await
    }

    /// Reports newest first, filtered by model and dataset (empty: any), a
    /// page at a time; see [`ReportStore::list`].
    pub async fn list(
        &self,
        model: &str,
        dataset: &str,
        page_size: usize,
        page_token: &str,
    ) -> Result<(Vec<Report>, String)> {
        self.0.list(model, dataset, page_size, page_token).await
    }

    /// The evaluation ids of comparison `id` (None when there is none).
    pub async fn comparison(&self, id: &str) -> Result<Option<Vec<String>>> {
        self.0.comparison(id).await
    }

    /// The stored comparisons, newest first; see [`ReportStore::comparisons`].
    pub async fn comparisons(
        &self,
        dataset: &str,
        page_size: usize,
        page_token: &str,
    ) -> Result<(Vec<StoredComparison>, String)> {
        self.0.comparisons(dataset, page_size, page_token).await
    }

    /// The models comparison `id` left out, with why.
    pub async fn comparison_excluded(&self, id: &str) -> Result<Vec<ExcludedModel>> {
        self.0.comparison_excluded(id).await
    }

    /// The reports of evaluations `ids`, in that order (one deleted since
    /// left out), in one query.
    pub async fn reports(&self, ids: &[String]) -> Result<Vec<Report>> {
        self.0.reports(ids).await
    }

    /// The reports of comparison `id` (or evaluation `id` alone).
    pub async fn reports_of(&self, id: &str) -> Result<Vec<Report>> {
        self.0.reports_of(id).await
    }
}
