//! The embeddings one model makes of one dataset: the test and train splits
//! (the embedding output, and the backbone features for the probe when the
//! card names them) and the seeded positive views of the test images. What
//! the cache holds comes from it; the rest from the model's encoder, batch by
//! batch, two batches in flight, the job's token checked between batches.
//! Pixels travel as shared views of the split (no copies), matrices as
//! `Arc`s shared with the cache writer.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;

use super::cache::{CacheKey, EmbeddingCache, Lookup, View};
use super::compute::{EvalData, ProbeData};
use super::job::Reporter;
use super::pool::ComputePool;
use super::settings::{Settings, Splits};
use crate::data::augment::Augmenter;
use crate::data::{LoadedDataset, Split};
use crate::domain::Report;
use crate::encoder::EncoderInput;
use crate::error::{Error, Result};
use crate::metrics::Matrix;
use crate::registry::LoadedModel;

/// Images between two checks of the stop signal while making positive views.
const VIEW_CHUNK: usize = 1024;

/// What gathering embeddings needs from the engine.
#[derive(Debug, Clone, Copy)]
pub struct Gather<'a> {
    /// The embedding cache.
    pub cache: &'a Arc<EmbeddingCache>,
    /// Threads for the augmentation.
    pub pool: &'a ComputePool,
    /// Progress and cancellation of the evaluation.
    pub reporter: &'a Reporter,
}

/// INVALID_ARGUMENT naming the model and the dataset when the model does
/// not take the dataset's images ([`fit`] says why).
pub fn check_fit(model: &LoadedModel, dataset: &LoadedDataset) -> Result<()> {
    fit(model, dataset).map_err(|why| {
        Error::InvalidArgument(format!(
            "model {} on dataset {}: {why}",
            model.name, dataset.name
        ))
    })
}

/// Whether `model` takes the images of `dataset`: the channels must match,
/// and the height and width too unless the card resizes. The reason says
/// what each side has (and what the model was trained on), and suggests
/// decoding an image folder to other channels only where that would fit.
pub fn fit(model: &LoadedModel, dataset: &LoadedDataset) -> std::result::Result<(), String> {
    let [h, w, c] = dataset.dataset.summary.image_shape;
    let p = model.preprocessing();
    if p.check_image(h, w, c).is_ok() {
        return Ok(());
    }
    let (ec, eh, ew) = p.chw();
    let images = |h: i64, w: i64, c: i64| {
        format!(
            "{h}×{w} images with {c} channel{}",
            if c == 1 { "" } else { "s" }
        )
    };
    let trained = &model.card.training.dataset;
    let on = if trained.is_empty() {
        String::new()
    } else {
        format!(" (trained on {trained})")
    };
    let mut why = format!(
        "the model takes {}{on}, dataset {} has {}",
        images(eh, ew, ec),
        dataset.name,
        images(h as i64, w as i64, c as i64)
    );
    let same_size = (eh, ew) == (h as i64, w as i64);
    if ec != c as i64 && same_size {
        why.push_str(&format!(
            "; an image folder added with `channels={ec}` would give the model its channels"
        ));
    } else if ec == c as i64 && !same_size {
        why.push_str("; its card has input.resize = \"none\"");
    }
    Err(why)
}

/// Names the model and the dataset in a shape mismatch.
pub fn fit_error(model: &str, dataset: &str, err: Error) -> Error {
    match err {
        Error::InvalidArgument(msg) => {
            Error::InvalidArgument(format!("model {model} on dataset {dataset}: {msg}"))
        }
        other => other,
    }
}

impl Gather<'_> {
    /// Everything the evaluation of `model` on `dataset` works on; the
    /// seconds of each embedding stage go into `report.timings`.
    pub async fn eval_data(
        &self,
        model: &Arc<LoadedModel>,
        dataset: &Arc<LoadedDataset>,
        splits: &Splits,
        settings: &Settings,
        report: &mut Report,
    ) -> Result<EvalData> {
        check_fit(model, dataset)?;
        let d = dataset.clone();
        let names = splits.clone();
        let load = tokio::task::spawn_blocking(move || -> Result<_> {
            let train = names.train.as_deref().map(|s| d.split(s)).transpose()?;
            Ok((d.split(&names.test)?, train))
        });
        // A stopped job does not wait for a long load (it goes on in the
        // background and fills the dataset's split cache).
        let (test, train) = tokio::select! {
            biased;
            _ = self.reporter.token().cancelled() => return Err(self.reporter.stopped_error()),
            loaded = load => loaded
                .map_err(|e| Error::join(format!("loading the splits of {}", dataset.name), e))??,
        };
        let probe_output = model.card.probe_output().to_string();

        let t = Instant::now();
        let (test_emb, test_feat) = self
            .split(model, dataset, &test, (&splits.test, "test"), &probe_output)
            .await?;
        timing(report, "embed_test", t);

        let mut train_data = None;
        let mut train_feat = None;
        if let (Some(train), true) = (&train, settings.uses_train()) {
            let t = Instant::now();
            let name = splits.train.as_deref().unwrap_or("train");
            let (emb, feat) = self
                .split(model, dataset, train, (name, "train"), &probe_output)
                .await?;
            timing(report, "embed_train", t);
            train_data = Some((emb, train.labels.clone()));
            train_feat = feat;
        }

        let mut positive = None;
        if !settings.skip.alignment {
            let t = Instant::now();
            positive = Some(match &settings.positives_split {
                Some(name) => self.own_positives(model, dataset, &test, name).await?,
                None => {
                    self.positive(model, dataset, &test, &splits.test, settings)
                        .await?
                }
            });
            timing(report, "embed_positive", t);
        }

        let probe = match (test_feat, train_feat) {
            (Some(test), Some(train)) => Some(ProbeData {
                train,
                test,
                output: probe_output,
            }),
            _ => None,
        };
        Ok(EvalData {
            test: test_emb,
            test_labels: test.labels.clone(),
            test_positive: positive,
            train: train_data,
            probe,
            class_names: dataset.dataset.summary.class_names.clone(),
        })
    }

    /// The embedding (and the probe features, when they differ) of split
    /// `name`, which plays `role` ("test" or "train", naming the stage).
    async fn split(
        &self,
        model: &LoadedModel,
        dataset: &LoadedDataset,
        split: &Split,
        (name, role): (&str, &str),
        probe_output: &str,
    ) -> Result<(Arc<Matrix>, Option<Arc<Matrix>>)> {
        let embedding = model.card.outputs.embedding.clone();
        let mut wanted = vec![embedding.clone()];
        if probe_output != embedding {
            wanted.push(probe_output.to_string());
        }
        let keys: Vec<CacheKey> = wanted
            .iter()
            .map(|output| cache_key(model, dataset, name, output, View::Original))
            .collect();
        let mut found = Vec::with_capacity(keys.len());
        for key in &keys {
            found.push(self.cached(key).await);
        }
        let missing: Vec<usize> = (0..wanted.len()).filter(|&i| found[i].is_none()).collect();
        if !missing.is_empty() {
            let outputs: Vec<String> = missing.iter().map(|&i| wanted[i].clone()).collect();
            let encoded = self
                .encode(
                    model,
                    split.pixels.clone(),
                    split.n,
                    split.image_shape,
                    &outputs,
                    &format!("embed_{role}"),
                )
                .await?;
            for (&i, m) in missing.iter().zip(encoded) {
                self.store(keys[i].clone(), m.clone());
                found[i] = Some(m);
            }
        }
        let mut found = found.into_iter().flatten();
        let emb = found.next().expect("the embedding was found or encoded");
        Ok((emb, found.next()))
    }

    /// The embedding of the user's own positive views: split `name`, whose
    /// rows pair with the test split's (same length, same labels).
    async fn own_positives(
        &self,
        model: &LoadedModel,
        dataset: &Arc<LoadedDataset>,
        test: &Split,
        name: &str,
    ) -> Result<Arc<Matrix>> {
        let d = dataset.clone();
        let split_name = name.to_string();
        let views = tokio::task::spawn_blocking(move || d.split(&split_name))
            .await
            .map_err(|e| Error::join(format!("loading split {name} of {}", dataset.name), e))??;
        if views.n != test.n || views.labels != test.labels {
            return Err(Error::InvalidArgument(format!(
                "spec.positives_split: split {name:?} must hold one positive view per test image, \
                 in the same order with the same labels ({} images against {})",
                views.n, test.n
            )));
        }
        let embedding = model.card.outputs.embedding.clone();
        let (emb, _) = self
            .split(model, dataset, &views, (name, "positive"), &embedding)
            .await?;
        Ok(emb)
    }

    /// The embedding of the seeded positive views of the test images.
    async fn positive(
        &self,
        model: &LoadedModel,
        dataset: &LoadedDataset,
        test: &Arc<Split>,
        test_name: &str,
        settings: &Settings,
    ) -> Result<Arc<Matrix>> {
        let [h, w, c] = test.image_shape;
        let pixel_max = dataset.dataset.manifest.pixel_max.unwrap_or(255) as f32;
        let aug = Augmenter::new(h, w, c, pixel_max, settings.augmentation_seed)
            .with(settings.augmentation);
        let embedding = &model.card.outputs.embedding;
        let key = cache_key(model, dataset, test_name, embedding, View::positive(aug));
        if let Some(hit) = self.cached(&key).await {
            return Ok(hit);
        }
        let source = test.clone();
        let stop = self.reporter.stop();
        let views = self
            .pool
            .run("augmentation", move || {
                let per = h * w * c;
                let mut out = Vec::with_capacity(source.pixels.len());
                for start in (0..source.n).step_by(VIEW_CHUNK) {
                    stop.check()?;
                    for i in start..(start + VIEW_CHUNK).min(source.n) {
                        out.extend(aug.view(&source.pixels[i * per..(i + 1) * per], i as u64));
                    }
                }
                Ok(out)
            })
            .await?;
        let m = self
            .encode(
                model,
                views.into(),
                test.n,
                test.image_shape,
                std::slice::from_ref(embedding),
                "embed_positive",
            )
            .await?
            .remove(0);
        self.store(key, m.clone());
        Ok(m)
    }

    /// Runs the model over `n` images once, in order, two batches in
    /// flight, and returns each of `outputs` as a matrix.
    async fn encode(
        &self,
        model: &LoadedModel,
        pixels: Bytes,
        n: usize,
        [h, w, c]: [usize; 3],
        outputs: &[String],
        stage: &str,
    ) -> Result<Vec<Arc<Matrix>>> {
        let chunk = model.encoder.max_batch();
        let per = h * w * c;
        let mut results = futures::stream::iter((0..n).step_by(chunk).map(|start| {
            let end = (start + chunk).min(n);
            let input = EncoderInput::Images {
                pixels: pixels.slice(start * per..end * per),
                n: end - start,
                hwc: (h, w, c),
            };
            let encoder = model.encoder.clone();
            async move { encoder.encode_outputs(input, outputs).await }
        }))
        .buffered(2);
        let mut values: Vec<Vec<f32>> = vec![Vec::new(); outputs.len()];
        let mut dims = vec![0usize; outputs.len()];
        let mut done = 0;
        self.reporter.send(stage, 0, n as u64);
        let token = self.reporter.token().clone();
        loop {
            let next = tokio::select! {
                biased;
                _ = token.cancelled() => return Err(self.reporter.stopped_error()),
                next = results.next() => next,
            };
            let Some(outs) = next else { break };
            for (i, out) in outs?.into_iter().enumerate() {
                dims[i] = out.shape.get(1).copied().unwrap_or(0) as usize;
                if i == 0 {
                    done += out.shape.first().copied().unwrap_or(0) as u64;
                }
                values[i].extend(out.data);
            }
            self.reporter.send(stage, done, n as u64);
        }
        values
            .into_iter()
            .zip(dims)
            .map(|(v, d)| Matrix::new(v, d).map(Arc::new))
            .collect()
    }

    async fn cached(&self, key: &CacheKey) -> Option<Arc<Matrix>> {
        cached(self.cache, key).await
    }

    /// Stores a matrix in the cache in the background.
    fn store(&self, key: CacheKey, m: Arc<Matrix>) {
        let cache = self.cache.clone();
        tokio::spawn(async move {
            let k = key.clone();
            let c = cache.clone();
            let stored = tokio::task::spawn_blocking(move || c.put(&k, &m)).await;
            match stored {
                Ok(Ok(())) => {
                    if let Err(err) = cache.share(&key).await {
                        tracing::warn!(%err, "cannot share embeddings with the other replicas");
                    }
                }
                Ok(Err(err)) => tracing::warn!(%err, "cannot store embeddings in the cache"),
                Err(err) => tracing::warn!(%err, "cache store did not run"),
            }
        });
    }
}

fn timing(report: &mut Report, stage: &str, since: Instant) {
    report
        .timings
        .insert(stage.into(), since.elapsed().as_secs_f64());
}

/// The cache key of `output` of `model` on a split of `dataset`.
fn cache_key(
    model: &LoadedModel,
    dataset: &LoadedDataset,
    split: &str,
    output: &str,
    view: View,
) -> CacheKey {
    CacheKey {
        model_sha256: model.sha256.clone(),
        execution_provider: model.provider.to_string(),
        preprocessing: model.preprocessing(),
        dataset_id: dataset.id.clone(),
        split: split.to_string(),
        output: output.to_string(),
        view,
    }
}

/// The cached matrix for `key`, if any (counted as a hit, a miss or a
/// mismatch, which is a miss whose file was not the key's matrix).
pub async fn cached(cache: &Arc<EmbeddingCache>, key: &CacheKey) -> Option<Arc<Matrix>> {
    let (c, k) = (cache.clone(), key.clone());
    let mut found = tokio::task::spawn_blocking(move || c.get(&k))
        .await
        .unwrap_or(Lookup::Miss);
    if !matches!(found, Lookup::Hit(_)) {
        // Another replica may have computed it.
        if let Some(m) = cache.fetch_shared(key).await {
            metrics::counter!("embedeval_embedding_cache_shared_hits_total").increment(1);
            found = Lookup::Hit(m);
        }
    }
    metrics::counter!("embedeval_embedding_cache_total", "result" => found.label()).increment(1);
    tracing::debug!(split = %key.split, output = %key.output, result = found.label(), "embedding cache");
    found.into_matrix().map(Arc::new)
}

/// The cached embedding of split `split` of `dataset` under `model` (of the
/// original images), if an evaluation made it and it is still kept.
pub async fn cached_embedding(
    cache: &Arc<EmbeddingCache>,
    model: &LoadedModel,
    dataset: &LoadedDataset,
    split: &str,
) -> Option<Arc<Matrix>> {
    let key = cache_key(
        model,
        dataset,
        split,
        &model.card.outputs.embedding,
        View::Original,
    );
    cached(cache, &key).await
}
