//! What the database keeps of a job so that another replica can run it:
//! the [`JobRequest`] (names, content hashes, splits and resolved settings,
//! never the models or images themselves), the latest [`StoredProgress`]
//! for watchers on other replicas, and how a request becomes a [`JobSpec`]
//! again through the replica's own registries ([`Resolve`]). A job rebuilt
//! elsewhere must evaluate the same bytes: a model or dataset whose content
//! changed since the submission fails the job rather than evaluating
//! something else under the same name.

use std::sync::Arc;

use futures::future::BoxFuture;
use prost::Message;

use super::job::{CompareJob, JobSpec, Progress};
use super::settings::{Settings, Splits};
use crate::data::LoadedDataset;
use crate::domain::MetricSpec;
use crate::error::{Error, Result};
use crate::registry::{Entry, LoadedModel};

/// Finds models and datasets by name on the replica that runs a job.
pub trait Resolve: Send + Sync + std::fmt::Debug {
    /// The model registered as `name` (fetched and loaded if this replica
    /// does not hold it yet).
    fn model<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<LoadedModel>>>;
    /// The dataset registered as `name`.
    fn dataset<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<LoadedDataset>>>;
}

/// One model of a stored job.
#[derive(Clone, PartialEq, Message)]
pub struct StoredModel {
    /// Registry name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// sha256 of its ONNX file at submission.
    #[prost(string, tag = "2")]
    pub sha256: String,
    /// Its ONNX file and card at submission ([`Entry::share_id`]).
    #[prost(string, tag = "4")]
    pub share_id: String,
    /// Its resolved settings as releases before the domain records stored
    /// them (an encoded protobuf `MetricSpec`, read as bytes: the same
    /// wire type); read only where `settings` is empty (a job stored by
    /// such a release and taken over by this one).
    #[prost(bytes = "vec", tag = "3")]
    pub legacy_spec: Vec<u8>,
    /// Its resolved settings (every field set): the CBOR of the domain's
    /// [`MetricSpec`].
    #[prost(bytes = "vec", tag = "5")]
    pub settings: Vec<u8>,
}

impl StoredModel {
    /// The settings stored (None: the defaults).
    pub fn spec(&self) -> Result<Option<MetricSpec>> {
        if self.settings.is_empty() {
            if self.legacy_spec.is_empty() {
                return Ok(None);
            }
            return crate::database::legacy_spec(&self.legacy_spec).map(Some);
        }
        ciborium::from_reader(self.settings.as_slice())
            .map(Some)
            .map_err(|e| Error::store(format!("a stored job's settings do not decode: {e}")))
    }
}

/// The stored form of resolved settings.
fn settings_bytes(settings: &Settings) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing plain fields to a Vec cannot fail.
    let _ = ciborium::into_writer(&settings.to_spec(), &mut out);
    out
}

/// A one-model job or a comparison, as stored with the job.
#[derive(Clone, PartialEq, Message)]
pub struct JobRequest {
    /// Dataset name.
    #[prost(string, tag = "1")]
    pub dataset: String,
    /// Its content id at submission.
    #[prost(string, tag = "2")]
    pub dataset_id: String,
    /// The test split.
    #[prost(string, tag = "3")]
    pub test_split: String,
    /// The train split ("" when none).
    #[prost(string, tag = "4")]
    pub train_split: String,
    /// The models evaluated, in order.
    #[prost(message, repeated, tag = "5")]
    pub models: Vec<StoredModel>,
    /// The comparison's id ("" for a one-model job).
    #[prost(string, tag = "6")]
    pub comparison_id: String,
    /// A one-model job's request tags.
    #[prost(btree_map = "string, string", tag = "7")]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// The latest progress of a job, as stored for other replicas.
#[derive(Clone, PartialEq, Message)]
pub struct StoredProgress {
    /// The evaluation it belongs to.
    #[prost(string, tag = "1")]
    pub evaluation_id: String,
    /// The model evaluated.
    #[prost(string, tag = "2")]
    pub model: String,
    /// Its place among the job's models, from 1.
    #[prost(uint32, tag = "3")]
    pub model_index: u32,
    /// The job's models.
    #[prost(uint32, tag = "4")]
    pub models: u32,
    /// The stage.
    #[prost(string, tag = "5")]
    pub stage: String,
    /// Units done.
    #[prost(uint64, tag = "6")]
    pub done: u64,
    /// Units in all.
    #[prost(uint64, tag = "7")]
    pub total: u64,
}

impl From<&Progress> for StoredProgress {
    fn from(p: &Progress) -> Self {
        Self {
            evaluation_id: p.evaluation_id.clone(),
            model: p.model.clone(),
            model_index: p.model_index,
            models: p.models,
            stage: p.stage.clone(),
            done: p.done,
            total: p.total,
        }
    }
}

impl From<StoredProgress> for Progress {
    fn from(p: StoredProgress) -> Self {
        Self {
            evaluation_id: p.evaluation_id,
            model: p.model,
            model_index: p.model_index,
            models: p.models,
            stage: p.stage,
            done: p.done,
            total: p.total,
        }
    }
}

/// The kind of a job as stored: "model", "embeddings" or "compare".
pub fn kind(spec: &JobSpec) -> &'static str {
    match spec {
        JobSpec::Model(_) => "model",
        JobSpec::Embeddings(_) => "embeddings",
        JobSpec::Compare(_) => "compare",
    }
}

fn stored_model(model: &LoadedModel, settings: &Settings) -> StoredModel {
    StoredModel {
        name: model.name.clone(),
        sha256: model.sha256.clone(),
        share_id: model.share_id(),
        legacy_spec: Vec::new(),
        settings: settings_bytes(settings),
    }
}

/// The request that rebuilds `spec` on another replica, encoded; None for
/// uploaded embeddings (they live in this replica's memory only).
pub fn encode(spec: &JobSpec) -> Option<Vec<u8>> {
    let request = match spec {
        JobSpec::Model(job) => JobRequest {
            dataset: job.dataset.name.clone(),
            dataset_id: job.dataset.id.clone(),
            test_split: job.splits.test.clone(),
            train_split: job.splits.train.clone().unwrap_or_default(),
            models: vec![stored_model(&job.model, &job.settings)],
            comparison_id: String::new(),
            tags: job.tags.clone(),
        },
        JobSpec::Compare(job) => JobRequest {
            dataset: job.dataset.name.clone(),
            dataset_id: job.dataset.id.clone(),
            test_split: job.splits.test.clone(),
            train_split: job.splits.train.clone().unwrap_or_default(),
            models: job.models.iter().map(|(m, s)| stored_model(m, s)).collect(),
            comparison_id: job.id.clone(),
            tags: Default::default(),
        },
        JobSpec::Embeddings(_) => return None,
    };
    Some(request.encode_to_vec())
}

/// Rebuilds a stored job of `kind` from its `request` through `resolve`:
/// the same models (by content), dataset, splits and settings, planned by
/// the same checks as at admission ([`super::plan::model_job`],
/// [`super::plan::choose`]).
pub async fn decode(kind: &str, request: &[u8], resolve: &dyn Resolve) -> Result<JobSpec> {
    let request = JobRequest::decode(request)
        .map_err(|e| Error::store(format!("a stored job does not decode: {e}")))?;
    let dataset = resolve.dataset(&request.dataset).await?;
    if dataset.id != request.dataset_id {
        return Err(Error::FailedPrecondition(format!(
            "dataset {} changed since the job was submitted",
            request.dataset
        )));
    }
    let splits = Splits {
        test: request.test_split.clone(),
        train: (!request.train_split.is_empty()).then(|| request.train_split.clone()),
    };
    let mut models = Vec::with_capacity(request.models.len());
    for m in &request.models {
        models.push({
            let model = resolve.model(&m.name).await?;
            if model.sha256 != m.sha256 {
                return Err(Error::FailedPrecondition(format!(
                    "model {} changed since the job was submitted (sha256 {} then, {} now)",
                    m.name,
                    &m.sha256[..m.sha256.len().min(12)],
                    &model.sha256[..model.sha256.len().min(12)]
                )));
            }
            if model.share_id() != m.share_id {
                return Err(Error::FailedPrecondition(format!(
                    "model {} changed since the job was submitted (its card was replaced)",
                    m.name
                )));
            }
            let settings = Settings::resolve(m.spec()?.as_ref(), model.card.training.temperature)?;
            (model, settings)
        });
    }
    match kind {
        "model" => {
            let (model, settings) = models
                .into_iter()
                .next()
                .ok_or_else(|| Error::store("a stored one-model job names no model"))?;
            Ok(JobSpec::Model(Box::new(super::plan::model_job(
                model,
                dataset,
                splits,
                settings,
                request.tags,
            )?)))
        }
        "compare" => {
            // The models chosen at admission, each as it was chosen.
            let job = super::plan::choose(dataset, splits, models, false)?;
            Ok(JobSpec::Compare(CompareJob {
                id: request.comparison_id,
                ..job
            }))
        }
        other => Err(Error::store(format!(
            "a stored job of unknown kind {other:?}"
        ))),
    }
}

/// The registries resolve the names of a stored request on this replica.
impl Resolve for crate::registry::Registries {
    fn model<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<LoadedModel>>> {
        Box::pin(crate::registry::Registries::model(self, name))
    }

    fn dataset<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<LoadedDataset>>> {
        Box::pin(crate::registry::Registries::dataset(self, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_and_requests_survive_their_encoding() {
        let p = Progress {
            evaluation_id: "e".into(),
            model: "m".into(),
            model_index: 2,
            models: 3,
            stage: "embed_test".into(),
            done: 512,
            total: 1797,
        };
        let stored = StoredProgress::from(&p);
        let back = StoredProgress::decode(stored.encode_to_vec().as_slice()).unwrap();
        assert_eq!(Progress::from(back), p);

        let settings = Settings::resolve(None, 0.2).unwrap();
        let request = JobRequest {
            dataset: "digits".into(),
            dataset_id: "abc".into(),
            test_split: "test".into(),
            tags: Default::default(),
            train_split: String::new(),
            models: vec![StoredModel {
                name: "infonce-t0.2".into(),
                sha256: "00ff".into(),
                share_id: "00ff-11ee".into(),
                legacy_spec: Vec::new(),
                settings: settings_bytes(&settings),
            }],
            comparison_id: String::new(),
        };
        let back = JobRequest::decode(request.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, request);
        let resolved = Settings::resolve(back.models[0].spec().unwrap().as_ref(), 0.9).unwrap();
        assert_eq!(resolved, settings, "the stored settings are the ones used");

        // A job an earlier release stored: its settings as protobuf (tag 3).
        let earlier = StoredModel {
            name: "infonce-t0.2".into(),
            sha256: "00ff".into(),
            share_id: "00ff-11ee".into(),
            legacy_spec: crate::proto::MetricSpec {
                knn_k: Some(7),
                skip_linear: true,
                ..Default::default()
            }
            .encode_to_vec(),
            settings: Vec::new(),
        };
        let back = StoredModel::decode(earlier.encode_to_vec().as_slice()).unwrap();
        let spec = back.spec().unwrap().unwrap();
        assert_eq!((spec.knn_k, spec.skip_linear), (Some(7), true));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_taken_over_after_its_models_card_was_replaced_fails() {
        use crate::registry::tests::{install_digits, install_model, two_replicas, zoo_card};
        use crate::registry::Entry;
        use prost::Message;
        let (_tmp, a, b) = two_replicas().await;
        let card = zoo_card();
        let first = install_model(&a, "m", &card, false).await;
        a.publish(&a.models, first.as_ref(), false).await.unwrap();
        let digits = install_digits(&b, "digits").await;
        let settings = Settings::resolve(None, 0.5).unwrap();
        let request = JobRequest {
            dataset: "digits".into(),
            dataset_id: digits.id.clone(),
            test_split: "test".into(),
            tags: Default::default(),
            train_split: String::new(),
            models: vec![StoredModel {
                name: "m".into(),
                sha256: first.sha256.clone(),
                share_id: first.share_id(),
                legacy_spec: Vec::new(),
                settings: settings_bytes(&settings),
            }],
            comparison_id: String::new(),
        }
        .encode_to_vec();
        assert!(decode("model", &request, &b).await.is_ok());
        // Replaced with tau 0.2 over the same ONNX file before the job moved.
        let fixed = card.replace("temperature = 0.5", "temperature = 0.2");
        let second = install_model(&a, "m", &fixed, true).await;
        a.publish(&a.models, second.as_ref(), true).await.unwrap();
        let err = decode("model", &request, &b).await.err().unwrap();
        assert!(
            matches!(&err, Error::FailedPrecondition(m) if m.contains("card was replaced")),
            "{err}"
        );
    }
}
