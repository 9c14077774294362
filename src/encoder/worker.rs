//! The encoder worker: one dedicated OS thread per model owns its ONNX
//! Runtime session (never a tokio worker), fed by a bounded channel.
//! Concurrent requests are batched dynamically: the worker takes a job, then
//! every job already waiting while the batch stays within `max_batch` rows,
//! runs them as one batch and hands each caller its rows. Jobs whose caller
//! has gone are dropped before they run. A second thread per model gathers
//! and preprocesses the next batch while the session runs the current one,
//! so that with two batches in flight (as the evaluation sends them) the
//! model never waits for preprocessing.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{preprocess, EncoderSession, ImageBatch, InputData, OutputTensor, Preprocessing};
use crate::error::{Error, Result};

/// Images to encode: raw uint8 [n, H, W, C] (preprocessed on the worker
/// thread from the card) or a tensor ready for the model.
#[derive(Debug)]
pub enum EncoderInput {
    /// Raw pixels with (height, width, channels).
    Images {
        /// [n, h, w, c] row-major (a shared view: no copy of the source).
        pixels: bytes::Bytes,
        /// Number of images.
        n: usize,
        /// (height, width, channels).
        hwc: (usize, usize, usize),
    },
    /// Values in the model's own input layout, [n, ...].
    Tensor {
        /// Number of rows.
        n: usize,
        /// Values.
        data: InputData,
    },
}

impl EncoderInput {
    fn rows(&self) -> usize {
        match self {
            EncoderInput::Images { n, .. } | EncoderInput::Tensor { n, .. } => *n,
        }
    }
}

struct Job {
    input: EncoderInput,
    outputs: Vec<String>,
    reply: oneshot::Sender<Result<Vec<OutputTensor>>>,
}

/// Settings of a worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Most rows per ONNX Runtime run.
    pub max_batch: usize,
    /// Jobs that may wait in the channel.
    pub queue: usize,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            queue: 64,
        }
    }
}

/// A handle to a model's worker thread; cheap to clone. The thread ends when
/// the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Encoder {
    jobs: mpsc::Sender<Job>,
    max_batch: usize,
}

impl Encoder {
    /// Starts the worker thread for `session`.
    pub fn spawn(
        name: &str,
        session: Arc<EncoderSession>,
        card: Preprocessing,
        opts: WorkerOptions,
    ) -> Result<Self> {
        let (jobs, rx) = mpsc::channel(opts.queue.max(1));
        let max_batch = opts.max_batch.max(1);
        // At most one prepared batch waits for the model (a rendezvous:
        // the preparing thread hands it over when the model is free).
        let (ready, prepared) = std::sync::mpsc::sync_channel(0);
        let input = card.input.clone();
        std::thread::Builder::new()
            .name(format!("encoder-{name}"))
            .spawn(move || run(prepared, &session, &input))
            .map_err(|e| Error::runtime(format!("cannot start the encoder thread: {e}")))?;
        std::thread::Builder::new()
            .name(format!("prepare-{name}"))
            .spawn(move || prepare_batches(rx, &card, max_batch, ready))
            .map_err(|e| Error::runtime(format!("cannot start the preprocessing thread: {e}")))?;
        Ok(Self { jobs, max_batch })
    }

    /// Most rows the worker runs at once.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Encodes `input` and returns the named output. Waits for room in the
    /// queue (backpressure); returns when the worker has run the batch.
    pub async fn encode(&self, input: EncoderInput, output: &str) -> Result<OutputTensor> {
        let mut outs = self.encode_outputs(input, &[output.to_string()]).await?;
        Ok(outs.remove(0))
    }

    /// Encodes `input` once and returns each of the named outputs, in order.
    pub async fn encode_outputs(
        &self,
        input: EncoderInput,
        outputs: &[String],
    ) -> Result<Vec<OutputTensor>> {
        if input.rows() == 0 {
            return Err(Error::InvalidArgument("no images to encode".into()));
        }
        if outputs.is_empty() {
            return Err(Error::InvalidArgument("no outputs asked for".into()));
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                input,
                outputs: outputs.to_vec(),
                reply,
            })
            .await
            .map_err(|_| {
                Error::unavailable(
                    crate::error::Unavailable::ShuttingDown,
                    "the encoder has stopped",
                )
            })?;
        answer
            .await
            .map_err(|_| Error::runtime("the encoder dropped the request"))?
    }
}

/// Model input (shape, data) for a group of jobs, concatenated in order.
fn prepare(jobs: &[Job], card: &Preprocessing) -> Result<(Vec<i64>, InputData)> {
    let mut shape: Option<Vec<i64>> = None;
    let mut data: Option<InputData> = None;
    let mut rows = 0i64;
    for job in jobs {
        let (s, d) = match &job.input {
            EncoderInput::Images { pixels, n, hwc } => preprocess(
                ImageBatch {
                    pixels,
                    n: *n,
                    h: hwc.0,
                    w: hwc.1,
                    c: hwc.2,
                },
                card,
            )?,
            EncoderInput::Tensor { n, data } => {
                let mut s = card.shape.clone();
                s[0] = *n as i64;
                (s, data.clone())
            }
        };
        rows += s[0];
        shape.get_or_insert(s);
        data = Some(match (data, d) {
            (None, d) => d,
            (Some(InputData::F32(mut a)), InputData::F32(b)) => {
                a.extend(b);
                InputData::F32(a)
            }
            (Some(InputData::U8(mut a)), InputData::U8(b)) => {
                a.extend(b);
                InputData::U8(a)
            }
            _ => {
                return Err(Error::InvalidArgument(
                    "inputs of different types in one batch".into(),
                ))
            }
        });
    }
    let mut shape = shape.ok_or_else(|| Error::InvalidArgument("empty batch".into()))?;
    shape[0] = rows;
    Ok((shape, data.expect("at least one job")))
}

/// The next batch: a job and the jobs already waiting that ask for the
/// same outputs and the same kind of input, up to `max_batch` rows (jobs
/// whose caller has gone are dropped). `None` once every handle is dropped
/// and the queue is empty.
fn gather(
    rx: &mut mpsc::Receiver<Job>,
    pending: &mut Option<Job>,
    max_batch: usize,
) -> Option<Vec<Job>> {
    let first = loop {
        let job = match pending.take() {
            Some(job) => job,
            None => rx.blocking_recv()?,
        };
        if !job.reply.is_closed() {
            break job;
        }
    };
    let mut rows = first.input.rows();
    let mut batch = vec![first];
    while rows < max_batch {
        match rx.try_recv() {
            Ok(job) if job.reply.is_closed() => continue,
            Ok(job) => {
                let same = job.outputs == batch[0].outputs
                    && std::mem::discriminant(&job.input)
                        == std::mem::discriminant(&batch[0].input);
                if same && rows + job.input.rows() <= max_batch {
                    rows += job.input.rows();
                    batch.push(job);
                } else {
                    *pending = Some(job);
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

/// A batch of jobs with its model input, preprocessed.
struct Prepared {
    batch: Vec<Job>,
    input: Result<(Vec<i64>, InputData)>,
}

/// The preparing thread: gathers each batch and preprocesses it (resizing,
/// normalising, the card's layout) while the encoder thread runs the model
/// on the one before, so that the model does not wait for preprocessing
/// while work is queued. It ends when the queue closes or the encoder
/// thread has gone.
fn prepare_batches(
    mut rx: mpsc::Receiver<Job>,
    card: &Preprocessing,
    max_batch: usize,
    ready: std::sync::mpsc::SyncSender<Prepared>,
) {
    let mut pending = None;
    while let Some(batch) = gather(&mut rx, &mut pending, max_batch) {
        let input = prepare(&batch, card);
        if ready.send(Prepared { batch, input }).is_err() {
            return;
        }
    }
}

/// The encoder thread: runs the model on each prepared batch (input
/// `input`) and hands each caller its rows.
fn run(prepared: std::sync::mpsc::Receiver<Prepared>, session: &EncoderSession, input: &str) {
    for Prepared { batch, input: data } in prepared {
        // Callers that left while their batch was prepared are not run for.
        if batch.iter().all(|job| job.reply.is_closed()) {
            continue;
        }
        execute(session, input, batch, data);
    }
}

/// Runs one batch and answers its jobs.
fn execute(
    session: &EncoderSession,
    input: &str,
    batch: Vec<Job>,
    data: Result<(Vec<i64>, InputData)>,
) {
    let names: Vec<&str> = batch[0].outputs.iter().map(String::as_str).collect();
    let result = data.and_then(|(shape, data)| session.run(input, &shape, data, &names));
    match result {
        Ok(outs) => {
            // A model must answer one row per input row, in every output.
            let total: usize = batch.iter().map(|j| j.input.rows()).sum();
            let short = outs.iter().find(|out| {
                let dim = out.shape.get(1).copied().unwrap_or(0).max(0) as usize;
                out.shape.first().copied() != Some(total as i64) || out.data.len() != total * dim
            });
            if let Some(out) = short {
                let msg = format!(
                    "the model answered shape {:?} for a batch of {total} rows",
                    out.shape
                );
                for job in batch {
                    let _ = job.reply.send(Err(Error::runtime(msg.clone())));
                }
                return;
            }
            let mut offset = 0;
            for job in batch {
                let n = job.input.rows();
                let rows = outs
                    .iter()
                    .map(|out| {
                        let dim = out.shape.get(1).copied().unwrap_or(0) as usize;
                        OutputTensor {
                            shape: vec![n as i64, dim as i64],
                            data: out.data[offset * dim..(offset + n) * dim].to_vec(),
                        }
                    })
                    .collect();
                offset += n;
                let _ = job.reply.send(Ok(rows));
            }
        }
        Err(err) => {
            let msg = err.to_string();
            let invalid = matches!(err, Error::InvalidArgument(_));
            for job in batch {
                let e = if invalid {
                    Error::InvalidArgument(msg.clone())
                } else {
                    Error::runtime(msg.clone())
                };
                let _ = job.reply.send(Err(e));
            }
        }
    }
}
