//! embedeval.v1.EmbeddingService: Embed streams a dataset split or inline
//! images through a model's worker thread, in chunks, in order. Two chunks
//! are in flight at once so that encoding overlaps sending; when the client
//! goes, the remaining work is dropped.

use std::pin::Pin;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::convert::{decode_tensor, Inline};
use super::AppState;
use crate::data::Split;
use crate::encoder::{EncoderInput, InputData};
use crate::error::{Error, Result};
use crate::proto;
use crate::proto::embedding_service_server::EmbeddingService;
use crate::registry::LoadedModel;

type EmbedStream = Pin<Box<dyn Stream<Item = Result<proto::EmbedResponse, Status>> + Send>>;

/// The EmbeddingService implementation.
#[derive(Debug)]
pub struct EmbeddingApi {
    state: Arc<AppState>,
    default_chunk_rows: usize,
    response_bytes: usize,
}

impl EmbeddingApi {
    /// Serves the state's models; responses hold `default_chunk_rows` rows
    /// unless a request asks for fewer, and at most `response_bytes` of
    /// values whatever the dimension.
    pub fn new(state: Arc<AppState>, default_chunk_rows: usize, response_bytes: usize) -> Self {
        Self {
            state,
            default_chunk_rows: default_chunk_rows.max(1),
            response_bytes: response_bytes.max(1),
        }
    }
}

/// Rows per response: as asked (or the default, at most a batch), and no
/// more than fit `budget` bytes at `dim` float32 values and a label a row.
pub fn rows_per_response(
    asked: usize,
    default: usize,
    max_batch: usize,
    dim: usize,
    budget: usize,
) -> usize {
    let rows = match asked {
        0 => default,
        asked => asked.min(default.max(max_batch)),
    };
    rows.min(budget / (dim.max(1) * 4 + 8)).max(1)
}

/// Where the rows come from.
enum Source {
    Dataset(Arc<Split>),
    Inline(Inline),
}

impl Source {
    fn rows(&self) -> usize {
        match self {
            Source::Dataset(split) => split.n,
            Source::Inline(Inline::Images { n, .. } | Inline::Floats { n, .. }) => *n,
        }
    }

    fn chunk(&self, range: std::ops::Range<usize>) -> (EncoderInput, Vec<i64>) {
        match self {
            Source::Dataset(split) => {
                let [h, w, c] = split.image_shape;
                let per = h * w * c;
                (
                    EncoderInput::Images {
                        pixels: split.pixels.slice(range.start * per..range.end * per),
                        n: range.len(),
                        hwc: (h, w, c),
                    },
                    split.labels[range].to_vec(),
                )
            }
            Source::Inline(Inline::Images { pixels, hwc, .. }) => {
                let per = hwc.0 * hwc.1 * hwc.2;
                (
                    EncoderInput::Images {
                        pixels: pixels.slice(range.start * per..range.end * per),
                        n: range.len(),
                        hwc: *hwc,
                    },
                    Vec::new(),
                )
            }
            Source::Inline(Inline::Floats { values, row, .. }) => (
                EncoderInput::Tensor {
                    n: range.len(),
                    data: InputData::F32(values[range.start * row..range.end * row].to_vec()),
                },
                Vec::new(),
            ),
        }
    }
}

/// Row-major float32 [n, d] as a little-endian Tensor, L2-normalised if asked.
fn to_tensor(mut values: Vec<f32>, n: usize, d: usize, normalize: bool) -> proto::Tensor {
    if normalize {
        for row in values.chunks_exact_mut(d.max(1)) {
            let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v = (*v as f64 / norm) as f32);
            }
        }
    }
    proto::Tensor {
        dtype: proto::DataType::Float32 as i32,
        shape: vec![n as i64, d as i64],
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

impl EmbeddingApi {
    async fn source(&self, req: &mut proto::EmbedRequest, model: &LoadedModel) -> Result<Source> {
        match (req.inputs.take(), req.dataset.is_empty()) {
            (Some(_), false) => Err(Error::InvalidArgument(
                "give either a dataset and split or inputs, not both".into(),
            )),
            (None, true) => Err(Error::InvalidArgument(
                "nothing to embed: give a dataset and split, or inputs".into(),
            )),
            (Some(tensor), true) => Ok(Source::Inline(decode_tensor(
                tensor,
                &model.preprocessing(),
                &model.name,
            )?)),
            (None, false) => {
                let dataset = self.state.dataset(&req.dataset).await?;
                let split_name = if req.split.is_empty() {
                    // The dataset's test split: its default, else test, else val.
                    crate::jobs::settings::Splits::for_dataset(&dataset, "", "")?.test
                } else {
                    req.split.clone()
                };
                let split = tokio::task::spawn_blocking(move || dataset.split(&split_name))
                    .await
                    .map_err(|e| Error::join("split loading", e))??;
                let [h, w, c] = split.image_shape;
                model
                    .preprocessing()
                    .check_image(h, w, c)
                    .map_err(|e| crate::jobs::encode::fit_error(&model.name, &req.dataset, e))?;
                Ok(Source::Dataset(split))
            }
        }
    }
}

#[tonic::async_trait]
impl EmbeddingService for EmbeddingApi {
    type EmbedStream = EmbedStream;

    async fn embed(
        &self,
        request: Request<proto::EmbedRequest>,
    ) -> Result<Response<Self::EmbedStream>, Status> {
        self.state.ensure_ready()?;
        let mut req = request.into_inner();
        let model = self.state.model(&req.model).await?;
        let output = if req.output.is_empty() {
            model.card.outputs.embedding.clone()
        } else if model.card.outputs.names.contains(&req.output) {
            req.output.clone()
        } else {
            return Err(Error::InvalidArgument(format!(
                "model {} has no output {:?} (it has {:?})",
                model.name, req.output, model.card.outputs.names
            ))
            .into());
        };
        let source = self.source(&mut req, &model).await?;
        let dim = model.output_dims.get(&output).copied().unwrap_or(1).max(1) as usize;
        let chunk = rows_per_response(
            req.chunk_rows as usize,
            self.default_chunk_rows,
            model.encoder.max_batch(),
            dim,
            self.response_bytes,
        );
        let normalize = req.normalize;
        let total = source.rows();
        tracing::debug!(model = %model.name, rows = total, chunk, %output, "embed");
        let (tx, rx) = mpsc::channel(2);
        let on_panic = tx.clone();
        let work = async move {
            let source = Arc::new(source);
            let encoder = model.encoder.clone();
            let ranges = (0..total)
                .step_by(chunk)
                .map(move |start| start..(start + chunk).min(total));
            let mut results = futures::stream::iter(ranges)
                .map(|range| {
                    let (input, labels) = source.chunk(range.clone());
                    let encoder = encoder.clone();
                    let output = output.clone();
                    async move {
                        let out = encoder.encode(input, &output).await?;
                        Ok::<_, Error>((range, labels, out))
                    }
                })
                .buffered(2);
            loop {
                let next = tokio::select! {
                    next = results.next() => next,
                    _ = tx.closed() => {
                        tracing::debug!("embed: client went away; stopping");
                        return;
                    }
                };
                let Some(result) = next else { return };
                let message = result.map(|(range, labels, out)| {
                    let d = out.shape.get(1).copied().unwrap_or(0) as usize;
                    proto::EmbedResponse {
                        offset: range.start as u64,
                        embeddings: Some(to_tensor(out.data, range.len(), d, normalize)),
                        labels,
                    }
                });
                let failed = message.is_err();
                if tx.send(message.map_err(Status::from)).await.is_err() || failed {
                    return;
                }
            }
        };
        // A fault in the task ends this request with INTERNAL, not a short OK.
        tokio::spawn(async move {
            if let Err(payload) = std::panic::AssertUnwindSafe(work).catch_unwind().await {
                let err = Error::panicked("Embed", payload.as_ref());
                tracing::error!(%err, "embed task panicked");
                let _ = on_panic.send(Err(Status::from(err))).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_cut_by_bytes_whatever_the_dimension() {
        let budget = 2 << 20;
        assert_eq!(rows_per_response(0, 1024, 1024, 128, budget), 1024);
        // 2048-d: 1024 rows would be 8 MiB; 255 rows fit 2 MiB.
        let rows = rows_per_response(0, 1024, 1024, 2048, budget);
        assert_eq!(rows, 255);
        assert!(rows * (2048 * 4 + 8) <= budget);
        assert_eq!(rows_per_response(10, 1024, 1024, 2048, budget), 10);
        assert_eq!(
            rows_per_response(0, 1024, 1024, 1 << 30, budget),
            1,
            "at least a row"
        );
    }
}
