//! embedeval.v1.EvaluationService: Evaluate runs a model over a dataset's
//! test and train splits and the seeded positive views of the test images,
//! then the metrics and protocols, streaming progress and the report last;
//! EvaluateEmbeddings does the same on uploaded embeddings; Compare
//! evaluates several models and plots the uniformity–tolerance dilemma.
//! A client that goes away, or CancelEvaluation, stops the work; the report
//! is kept with its status.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use tokio_util::sync::CancellationToken;

use super::AppState;
use crate::cancel::Stop;
use crate::data::augment::Augmenter;
use crate::data::{LoadedDataset, Split};
use crate::encoder::EncoderInput;
use crate::error::{Error, Result};
use crate::jobs::cache::{CacheKey, Lookup, View};
use crate::jobs::{compute, EvalData, ProbeData, Settings};
use crate::metrics::Matrix;
use crate::proto;
use crate::proto::evaluation_service_server::EvaluationService;
use crate::proto::{EvaluationReport, EvaluationStatus};
use crate::registry::{input_info, LoadedModel};
use crate::store::new_id;

type EventStream<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send>>;

/// The EvaluationService implementation.
#[derive(Debug)]
pub struct EvaluationApi {
    state: Arc<AppState>,
}

impl EvaluationApi {
    /// Serves evaluations over the state's models, datasets and reports.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

/// Sends progress events; a closed channel raises the cancel flag.
#[derive(Clone)]
struct Progress {
    tx: mpsc::Sender<proto::Progress>,
    id: String,
    model: String,
    cancel: CancellationToken,
}

impl Progress {
    fn send(&self, stage: &str, done: u64, total: u64) {
        let event = proto::Progress {
            stage: stage.to_string(),
            done,
            total,
            evaluation_id: self.id.clone(),
            model: self.model.clone(),
        };
        if let Err(mpsc::error::TrySendError::Closed(_)) = self.tx.try_send(event) {
            self.cancel.cancel();
        }
    }

    fn check(&self) -> Result<()> {
        if self.cancel.is_cancelled() || self.tx.is_closed() {
            self.cancel.cancel();
            return Err(Error::Cancelled(
                "the client went away or the evaluation was cancelled".into(),
            ));
        }
        Ok(())
    }
}

/// Runs the model over images once, in order, two batches in flight, and
/// returns each of `outputs` as a matrix.
async fn encode_images(
    model: &LoadedModel,
    pixels: Arc<Vec<u8>>,
    n: usize,
    hwc: (usize, usize, usize),
    outputs: &[String],
    stage: &str,
    progress: &Progress,
) -> Result<Vec<Matrix>> {
    let chunk = model.encoder.max_batch();
    let per = hwc.0 * hwc.1 * hwc.2;
    let mut results = futures::stream::iter((0..n).step_by(chunk).map(|start| {
        let end = (start + chunk).min(n);
        let input = EncoderInput::Images {
            pixels: pixels[start * per..end * per].to_vec(),
            n: end - start,
            hwc,
        };
        let encoder = model.encoder.clone();
        async move { encoder.encode_outputs(input, outputs).await }
    }))
    .buffered(2);
    let mut values: Vec<Vec<f32>> = vec![Vec::new(); outputs.len()];
    let mut dims = vec![0usize; outputs.len()];
    let mut done = 0;
    progress.send(stage, 0, n as u64);
    while let Some(outs) = results.next().await {
        progress.check()?;
        for (i, out) in outs?.into_iter().enumerate() {
            dims[i] = out.shape.get(1).copied().unwrap_or(0) as usize;
            if i == 0 {
                done += out.shape.first().copied().unwrap_or(0) as u64;
            }
            values[i].extend(out.data);
        }
        progress.send(stage, done, n as u64);
    }
    values
        .into_iter()
        .zip(dims)
        .map(|(v, d)| Matrix::new(v, d))
        .collect()
}

/// The cached matrix for `key`, if any (counted as a hit, a miss or a
/// mismatch, which is a miss whose file was not the key's matrix).
async fn cache_get(state: &AppState, key: &CacheKey) -> Option<Matrix> {
    let cache = state.cache.clone();
    let k = key.clone();
    let found = tokio::task::spawn_blocking(move || cache.get(&k))
        .await
        .unwrap_or(Lookup::Miss);
    metrics::counter!("embedeval_embedding_cache_total", "result" => found.label()).increment(1);
    tracing::debug!(split = %key.split, output = %key.output, result = found.label(), "embedding cache");
    found.into_matrix()
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

/// Stores a matrix in the cache in the background.
fn cache_put(state: &AppState, key: CacheKey, m: &Matrix) {
    let cache = state.cache.clone();
    let stored = m.clone();
    tokio::spawn(async move {
        let put = tokio::task::spawn_blocking(move || cache.put(&key, &stored)).await;
        if let Ok(Err(err)) = put {
            tracing::warn!(%err, "cannot store embeddings in the cache");
        }
    });
}

/// Embedding (and probe features, when they differ) of a split: what the
/// cache holds comes from it, the rest from one run of the model.
async fn encode_split(
    state: &AppState,
    model: &LoadedModel,
    dataset: &LoadedDataset,
    split: &Split,
    name: &str,
    probe_output: &str,
    progress: &Progress,
) -> Result<(Matrix, Option<Matrix>)> {
    let [h, w, c] = split.image_shape;
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
        found.push(cache_get(state, key).await);
    }
    let missing: Vec<usize> = (0..wanted.len()).filter(|&i| found[i].is_none()).collect();
    if !missing.is_empty() {
        let outputs: Vec<String> = missing.iter().map(|&i| wanted[i].clone()).collect();
        let pixels = Arc::new(split.pixels.clone());
        let stage = format!("embed_{name}");
        let encoded = encode_images(
            model,
            pixels,
            split.n,
            (h, w, c),
            &outputs,
            &stage,
            progress,
        )
        .await?;
        for (&i, m) in missing.iter().zip(encoded) {
            cache_put(state, keys[i].clone(), &m);
            found[i] = Some(m);
        }
    }
    let mut found = found.into_iter().map(|m| m.expect("filled above"));
    let emb = found.next().expect("the embedding");
    Ok((emb, found.next()))
}

/// A fresh report for a model on a dataset.
fn new_report(model: &LoadedModel, dataset: &LoadedDataset) -> EvaluationReport {
    EvaluationReport {
        id: new_id(),
        model: model.name.clone(),
        model_sha256: model.sha256.clone(),
        dataset: dataset.name.clone(),
        dataset_id: dataset.id.clone(),
        temperature: model.card.training.temperature,
        loss: model.card.training.loss.clone(),
        status: EvaluationStatus::Running as i32,
        created_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        preprocessing: Some(input_info(&model.preprocessing())),
        execution_provider: model.provider.to_string(),
        ..Default::default()
    }
}

/// The whole evaluation of one model on one dataset.
async fn evaluate_model(
    state: &AppState,
    model: Arc<LoadedModel>,
    dataset: Arc<LoadedDataset>,
    settings: &Settings,
    mut report: EvaluationReport,
    progress: &Progress,
) -> Result<EvaluationReport> {
    let started = Instant::now();
    let (ec, eh, ew) = model.card.input.chw();
    let [h, w, c] = dataset.dataset.summary.image_shape;
    if (ec, eh, ew) != (c as i64, h as i64, w as i64) {
        return Err(Error::InvalidArgument(format!(
            "dataset {} has images of [{h}, {w}, {c}] but model {} expects [{eh}, {ew}, {ec}] (height, width, channels)",
            dataset.name, model.name
        )));
    }
    let d = dataset.clone();
    let (test, train) = tokio::task::spawn_blocking(move || -> Result<_> {
        let train = if d.dataset.summary.splits.contains_key("train") {
            Some(d.split("train")?)
        } else {
            None
        };
        Ok((d.split("test")?, train))
    })
    .await
    .map_err(|e| Error::Runtime(format!("split loading panicked: {e}")))??;
    let probe_output = model.card.probe_output().to_string();

    let t = Instant::now();
    let (test_emb, test_feat) = encode_split(
        state,
        &model,
        &dataset,
        &test,
        "test",
        &probe_output,
        progress,
    )
    .await?;
    report
        .timings
        .insert("embed_test".into(), t.elapsed().as_secs_f64());

    let mut train_data = None;
    let mut train_feat = None;
    if let (Some(train), false) = (&train, settings.skip.knn && settings.skip.linear) {
        let t = Instant::now();
        let (emb, feat) = encode_split(
            state,
            &model,
            &dataset,
            train,
            "train",
            &probe_output,
            progress,
        )
        .await?;
        report
            .timings
            .insert("embed_train".into(), t.elapsed().as_secs_f64());
        train_data = Some((emb, train.labels.clone()));
        train_feat = feat;
    }

    let mut positive = None;
    if !settings.skip.alignment {
        let t = Instant::now();
        let pixel_max = dataset.dataset.manifest.pixel_max.unwrap_or(255) as f32;
        let aug = Augmenter::new(h, w, c, pixel_max, settings.augmentation_seed);
        let source = test.clone();
        let key = cache_key(
            &model,
            &dataset,
            "test",
            &model.card.outputs.embedding,
            View::positive(aug),
        );
        positive = Some(match cache_get(state, &key).await {
            Some(hit) => hit,
            None => {
                let views = tokio::task::spawn_blocking(move || {
                    let per = h * w * c;
                    (0..source.n)
                        .flat_map(|i| aug.view(&source.pixels[i * per..(i + 1) * per], i as u64))
                        .collect::<Vec<u8>>()
                })
                .await
                .map_err(|e| Error::Runtime(format!("augmentation panicked: {e}")))?;
                let outputs = [model.card.outputs.embedding.clone()];
                let m = encode_images(
                    &model,
                    Arc::new(views),
                    test.n,
                    (h, w, c),
                    &outputs,
                    "embed_positive",
                    progress,
                )
                .await?
                .remove(0);
                cache_put(state, key, &m);
                m
            }
        });
        report
            .timings
            .insert("embed_positive".into(), t.elapsed().as_secs_f64());
    }

    let probe = match (test_feat, train_feat) {
        (Some(test), Some(train)) => Some(ProbeData {
            train,
            test,
            output: probe_output,
        }),
        _ => None,
    };
    let data = EvalData {
        test: test_emb,
        test_labels: test.labels.clone(),
        test_positive: positive,
        train: train_data,
        probe,
    };
    let settings = settings.clone();
    let p = progress.clone();
    let cancel = Stop::new(progress.cancel.clone());
    let report = tokio::task::spawn_blocking(move || -> Result<EvaluationReport> {
        let mut stage_progress = |stage: &str| p.send(stage, 0, 1);
        compute(&data, &settings, &mut report, &cancel, &mut stage_progress)?;
        Ok(report)
    })
    .await
    .map_err(|e| Error::Runtime(format!("metrics panicked: {e}")))??;
    let mut report = report;
    report
        .timings
        .insert("total".into(), started.elapsed().as_secs_f64());
    report.status = EvaluationStatus::Completed as i32;
    Ok(report)
}

/// Publishes the evaluations running and queued as gauges.
fn publish_load(state: &AppState) {
    let running = state.max_evaluations - state.evaluation_slots.available_permits();
    metrics::gauge!("embedeval_evaluations_running").set(running as f64);
    metrics::gauge!("embedeval_evaluations_queued")
        .set(state.evaluations_waiting.load(Ordering::SeqCst) as f64);
}

/// A place among the running evaluations, or in the queue for one.
enum Admission {
    Running(tokio::sync::OwnedSemaphorePermit),
    Queued,
}

/// Takes a free slot now, or a place in the bounded queue;
/// RESOURCE_EXHAUSTED when both are full.
fn admit(state: &AppState) -> Result<Admission> {
    if let Ok(permit) = state.evaluation_slots.clone().try_acquire_owned() {
        publish_load(state);
        return Ok(Admission::Running(permit));
    }
    let waiting = state.evaluations_waiting.fetch_add(1, Ordering::SeqCst);
    if waiting >= state.evaluation_queue {
        state.evaluations_waiting.fetch_sub(1, Ordering::SeqCst);
        return Err(Error::ResourceExhausted(format!(
            "every evaluation slot is busy and {waiting} evaluations are waiting (the queue holds {}); retry later",
            state.evaluation_queue
        )));
    }
    publish_load(state);
    Ok(Admission::Queued)
}

/// Waits for a slot when queued, reporting it as a progress stage.
async fn slot(
    state: &AppState,
    admission: Admission,
    progress: &Progress,
) -> Result<tokio::sync::OwnedSemaphorePermit> {
    match admission {
        Admission::Running(permit) => Ok(permit),
        Admission::Queued => {
            progress.send("queued", 0, 1);
            let permit = state.evaluation_slots.clone().acquire_owned().await;
            state.evaluations_waiting.fetch_sub(1, Ordering::SeqCst);
            let permit =
                permit.map_err(|_| Error::Unavailable("the server is shutting down".into()))?;
            progress.check()?;
            Ok(permit)
        }
    }
}

/// Records how an evaluation ended.
async fn conclude(
    state: &AppState,
    mut report: EvaluationReport,
    outcome: Result<EvaluationReport>,
) -> std::result::Result<EvaluationReport, Error> {
    match outcome {
        Ok(done) => {
            for (stage, seconds) in &done.timings {
                metrics::histogram!("embedeval_stage_seconds", "stage" => stage.clone())
                    .record(*seconds);
            }
            publish_load(state);
            state.reports.finish(&done).await?;
            Ok(done)
        }
        Err(err) => {
            report.status = if matches!(err, Error::Cancelled(_)) {
                EvaluationStatus::Cancelled
            } else {
                EvaluationStatus::Failed
            } as i32;
            report.error = err.to_string();
            publish_load(state);
            if let Err(store_err) = state.reports.finish(&report).await {
                tracing::error!(%store_err, id = %report.id, "cannot record how the evaluation ended");
            }
            Err(err)
        }
    }
}

/// Records a running evaluation and wires its progress into an event
/// stream: returns the progress handle and the task that forwards events
/// until the handle is dropped (or the client goes, which raises the
/// evaluation's cancel flag).
async fn track<T: Send + 'static>(
    state: &AppState,
    report: &EvaluationReport,
    out: mpsc::Sender<std::result::Result<T, Status>>,
    wrap: impl Fn(proto::Progress) -> T + Send + 'static,
) -> Result<(Progress, tokio::task::JoinHandle<()>)> {
    let cancel = state.reports.start(report).await?;
    let (tx, mut events) = mpsc::channel(64);
    let progress = Progress {
        tx,
        id: report.id.clone(),
        model: report.model.clone(),
        cancel,
    };
    let forwarder = tokio::spawn(async move {
        while let Some(p) = events.recv().await {
            if out.send(Ok(wrap(p))).await.is_err() {
                return;
            }
        }
    });
    Ok((progress, forwarder))
}

fn resolve(
    state: &AppState,
    model: &str,
    dataset: &str,
) -> Result<(Arc<LoadedModel>, Arc<LoadedDataset>)> {
    Ok((state.models.get(model)?, state.datasets.get(dataset)?))
}

#[tonic::async_trait]
impl EvaluationService for EvaluationApi {
    type EvaluateStream = EventStream<proto::EvaluateEvent>;
    type CompareStream = EventStream<proto::CompareEvent>;

    async fn evaluate(
        &self,
        request: Request<proto::EvaluateRequest>,
    ) -> std::result::Result<Response<Self::EvaluateStream>, Status> {
        self.state.ensure_ready()?;
        let req = request.into_inner();
        let (model, dataset) = resolve(&self.state, &req.model, &req.dataset)?;
        let settings = Settings::resolve(req.spec.as_ref(), model.card.training.temperature)?;
        let admission = admit(&self.state)?;
        let report = new_report(&model, &dataset);
        let (out_tx, out_rx) = mpsc::channel(16);
        let (progress, forwarder) = track(&self.state, &report, out_tx.clone(), |p| {
            proto::EvaluateEvent {
                event: Some(proto::evaluate_event::Event::Progress(p)),
            }
        })
        .await?;
        let state = self.state.clone();
        tokio::spawn(async move {
            tracing::info!(id = %report.id, model = %model.name, dataset = %dataset.name, "evaluation started");
            let outcome = match slot(&state, admission, &progress).await {
                Ok(_permit) => {
                    evaluate_model(&state, model, dataset, &settings, report.clone(), &progress)
                        .await
                }
                Err(err) => Err(err),
            };
            drop(progress);
            let _ = forwarder.await;
            let event = match conclude(&state, report, outcome).await {
                Ok(done) => {
                    tracing::info!(id = %done.id, seconds = done.timings.get("total").copied().unwrap_or(0.0), "evaluation completed");
                    Ok(proto::EvaluateEvent {
                        event: Some(proto::evaluate_event::Event::Report(done)),
                    })
                }
                Err(err) => {
                    tracing::warn!(%err, "evaluation ended without a report");
                    Err(Status::from(err))
                }
            };
            let _ = out_tx.send(event).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn evaluate_embeddings(
        &self,
        request: Request<Streaming<proto::EvaluateEmbeddingsRequest>>,
    ) -> std::result::Result<Response<EvaluationReport>, Status> {
        self.state.ensure_ready()?;
        let mut stream = request.into_inner();
        let interrupted =
            |s: Status| Error::InvalidArgument(format!("upload interrupted: {}", s.message()));
        let Some(proto::EvaluateEmbeddingsRequest {
            payload: Some(proto::evaluate_embeddings_request::Payload::Header(header)),
        }) = stream.message().await.map_err(interrupted)?
        else {
            return Err(Error::InvalidArgument(
                "the first EvaluateEmbeddings message must carry the header".into(),
            )
            .into());
        };
        let settings = Settings::resolve(header.spec.as_ref(), header.temperature.unwrap_or(0.0))?;
        // split name -> (values, dim, labels)
        let mut parts: std::collections::BTreeMap<String, (Vec<f32>, usize, Vec<i64>)> =
            Default::default();
        let mut bytes = 0u64;
        while let Some(msg) = stream.message().await.map_err(interrupted)? {
            let Some(proto::evaluate_embeddings_request::Payload::Chunk(chunk)) = msg.payload
            else {
                return Err(Error::InvalidArgument(
                    "after the header, messages must carry chunks".into(),
                )
                .into());
            };
            if !["train", "test", "test_positive"].contains(&chunk.split.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "chunk split {:?} must be train, test or test_positive",
                    chunk.split
                ))
                .into());
            }
            let t = chunk
                .embeddings
                .ok_or_else(|| Error::InvalidArgument("a chunk without embeddings".into()))?;
            if t.dtype != proto::DataType::Float32 as i32
                || t.shape.len() != 2
                || t.shape.iter().any(|&d| d <= 0)
            {
                return Err(Error::InvalidArgument(format!(
                    "embeddings must be FLOAT32 [n, d], received dtype {} shape {:?}",
                    t.dtype, t.shape
                ))
                .into());
            }
            let (n, d) = (t.shape[0] as usize, t.shape[1] as usize);
            if t.data.len() != n * d * 4 {
                return Err(Error::InvalidArgument(format!(
                    "shape {:?} needs {} bytes, received {}",
                    t.shape,
                    n * d * 4,
                    t.data.len()
                ))
                .into());
            }
            bytes += t.data.len() as u64;
            if bytes > self.state.max_dataset_bytes {
                return Err(Error::ResourceExhausted(format!(
                    "embeddings exceed the limit of {} bytes",
                    self.state.max_dataset_bytes
                ))
                .into());
            }
            let with_labels = chunk.split != "test_positive";
            if with_labels && chunk.labels.len() != n {
                return Err(Error::InvalidArgument(format!(
                    "{} rows of {} but {} labels",
                    n,
                    chunk.split,
                    chunk.labels.len()
                ))
                .into());
            }
            let entry = parts
                .entry(chunk.split.clone())
                .or_insert_with(|| (Vec::new(), d, Vec::new()));
            if entry.1 != d {
                return Err(Error::InvalidArgument(format!(
                    "{} rows of dimension {d} after rows of {}",
                    chunk.split, entry.1
                ))
                .into());
            }
            entry.0.extend(
                t.data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            entry.2.extend(chunk.labels);
        }
        let Some((test, d, test_labels)) = parts.remove("test") else {
            return Err(Error::InvalidArgument("no test embeddings were sent".into()).into());
        };
        let test = Matrix::new(test, d)?;
        let test_positive = match parts.remove("test_positive") {
            Some((v, pd, _)) => {
                let m = Matrix::new(v, pd)?;
                if m.rows() != test.rows() || pd != d {
                    return Err(Error::InvalidArgument(format!(
                        "test_positive is [{}, {pd}] but test is [{}, {d}]",
                        m.rows(),
                        test.rows()
                    ))
                    .into());
                }
                Some(m)
            }
            None => None,
        };
        let train = match parts.remove("train") {
            Some((v, td, labels)) => Some((Matrix::new(v, td)?, labels)),
            None => None,
        };
        let data = EvalData {
            test,
            test_labels,
            test_positive,
            train,
            probe: None,
        };
        let mut report = EvaluationReport {
            id: new_id(),
            model: header.name.clone(),
            dataset: header.dataset.clone(),
            temperature: header.temperature.unwrap_or(0.0),
            loss: header.loss.clone(),
            status: EvaluationStatus::Running as i32,
            created_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
            ..Default::default()
        };
        let _permit = match admit(&self.state)? {
            Admission::Running(permit) => permit,
            Admission::Queued => {
                let permit = self.state.evaluation_slots.clone().acquire_owned().await;
                self.state
                    .evaluations_waiting
                    .fetch_sub(1, Ordering::SeqCst);
                permit.map_err(|_| Error::Unavailable("the server is shutting down".into()))?
            }
        };
        let cancel = Stop::new(self.state.reports.start(&report).await?);
        let pending = report.clone();
        let started = Instant::now();
        let outcome = tokio::task::spawn_blocking(move || -> Result<EvaluationReport> {
            compute(&data, &settings, &mut report, &cancel, &mut |_| {})?;
            report
                .timings
                .insert("total".into(), started.elapsed().as_secs_f64());
            report.status = EvaluationStatus::Completed as i32;
            Ok(report)
        })
        .await
        .map_err(|e| Error::Runtime(format!("metrics panicked: {e}")))?;
        Ok(Response::new(
            conclude(&self.state, pending, outcome).await?,
        ))
    }

    async fn compare(
        &self,
        request: Request<proto::CompareRequest>,
    ) -> std::result::Result<Response<Self::CompareStream>, Status> {
        self.state.ensure_ready()?;
        let req = request.into_inner();
        let dataset = self.state.datasets.get(&req.dataset)?;
        let models: Vec<Arc<LoadedModel>> = if req.models.is_empty() {
            self.state.models.list()
        } else {
            req.models
                .iter()
                .map(|m| self.state.models.get(m))
                .collect::<Result<_>>()?
        };
        if models.is_empty() {
            return Err(Error::InvalidArgument("no models to compare".into()).into());
        }
        let plans = models
            .into_iter()
            .map(|m| {
                Ok((
                    Settings::resolve(req.spec.as_ref(), m.card.training.temperature)?,
                    m,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let admission = admit(&self.state)?;
        let (out_tx, out_rx) = mpsc::channel(16);
        let state = self.state.clone();
        tokio::spawn(async move {
            let mut rows = Vec::new();
            let mut admission = Some(admission);
            for (settings, model) in plans {
                let report = new_report(&model, &dataset);
                let tracked = track(&state, &report, out_tx.clone(), |p| proto::CompareEvent {
                    event: Some(proto::compare_event::Event::Progress(p)),
                })
                .await;
                let (progress, forwarder) = match tracked {
                    Ok(t) => t,
                    Err(err) => {
                        let _ = out_tx.send(Err(Status::from(err))).await;
                        return;
                    }
                };
                // One slot for the whole comparison, held model after model.
                let outcome = match admission.take() {
                    Some(a) => match slot(&state, a, &progress).await {
                        Ok(permit) => {
                            let out = evaluate_model(
                                &state,
                                model,
                                dataset.clone(),
                                &settings,
                                report.clone(),
                                &progress,
                            )
                            .await;
                            admission = Some(Admission::Running(permit));
                            out
                        }
                        Err(err) => Err(err),
                    },
                    None => Err(Error::Runtime("lost the evaluation slot".into())),
                };
                drop(progress);
                let _ = forwarder.await;
                match conclude(&state, report, outcome).await {
                    Ok(done) => rows.push(done),
                    Err(err) => {
                        let _ = out_tx.send(Err(Status::from(err))).await;
                        return;
                    }
                }
            }
            rows.sort_by(|a, b| {
                a.loss
                    .cmp(&b.loss)
                    .then(a.temperature.total_cmp(&b.temperature))
            });
            let comparison = proto::Comparison {
                plot_svg: crate::report::uniformity_tolerance_svg(&rows),
                accuracy_plot_svg: crate::report::accuracy_svg(&rows),
                rows,
            };
            let _ = out_tx
                .send(Ok(proto::CompareEvent {
                    event: Some(proto::compare_event::Event::Comparison(comparison)),
                }))
                .await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn get_evaluation(
        &self,
        request: Request<proto::GetEvaluationRequest>,
    ) -> std::result::Result<Response<EvaluationReport>, Status> {
        Ok(Response::new(
            self.state.reports.get(&request.get_ref().id).await?,
        ))
    }

    async fn list_evaluations(
        &self,
        request: Request<proto::ListEvaluationsRequest>,
    ) -> std::result::Result<Response<proto::ListEvaluationsResponse>, Status> {
        let r = request.into_inner();
        let (evaluations, next_page_token) = self
            .state
            .reports
            .list(&r.model, &r.dataset, r.page_size as usize, &r.page_token)
            .await?;
        Ok(Response::new(proto::ListEvaluationsResponse {
            evaluations,
            next_page_token,
        }))
    }

    async fn cancel_evaluation(
        &self,
        request: Request<proto::CancelEvaluationRequest>,
    ) -> std::result::Result<Response<proto::CancelEvaluationResponse>, Status> {
        let id = request.into_inner().id;
        let status = self.state.reports.cancel(&id).await?;
        Ok(Response::new(proto::CancelEvaluationResponse {
            id,
            status: status as i32,
        }))
    }
}
