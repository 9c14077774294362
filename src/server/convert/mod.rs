//! Between the wire and the engine, in one place: the client's deadline
//! from `grpc-timeout`, an EvaluateEmbeddings upload into [`EvalData`], and
//! the engine's events and errors into messages and statuses.

mod records;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tonic::metadata::MetadataMap;
use tonic::{Status, Streaming};

use crate::data::dataset::MAX_IMAGE_SIDE;
use crate::domain;
use crate::encoder::{InputDType, Preprocessing, Resize};
use crate::error::{Error, Result};
use crate::jobs::{EvalData, Event, Outcome, Progress};
use crate::memory::PayloadLimit;
use crate::metrics::Matrix;
use crate::proto::{self, evaluate_embeddings_request::Payload, EmbeddingsHeader};
use crate::report::figures;

/// The client's deadline, from the `grpc-timeout` header (gRPC over HTTP/2:
/// at most 8 digits and a unit of H, M, S, m, u or n).
pub fn deadline(metadata: &MetadataMap) -> Option<Duration> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The error of a client stream that broke off: a message over the size
/// limit is RESOURCE_EXHAUSTED naming the flag; anything else is the
/// client's INVALID_ARGUMENT.
pub fn interrupted(status: Status) -> Error {
    if status.code() == tonic::Code::OutOfRange {
        Error::ResourceExhausted(format!(
            "{} (the server's --max-message-bytes)",
            status.message()
        ))
    } else {
        Error::InvalidArgument(format!("upload interrupted: {}", status.message()))
    }
}

/// The status an engine error is answered with.
pub fn status(err: &Error) -> Status {
    Status::from(err)
}

/// A progress event as the API sends it.
pub fn progress(p: Progress) -> proto::Progress {
    proto::Progress {
        stage: p.stage,
        done: p.done,
        total: p.total,
        evaluation_id: p.evaluation_id,
        model: p.model,
        model_index: p.model_index,
        models: p.models,
    }
}

/// What the edge does with one engine event: a message to send (if any),
/// and whether the stream ends after it.
pub type Step<T> = (Option<std::result::Result<T, Status>>, bool);

/// An event of an Evaluate stream.
pub fn evaluate_event(event: Event) -> Step<proto::EvaluateEvent> {
    use proto::evaluate_event::Event as E;
    let wrap = |e| Some(Ok(proto::EvaluateEvent { event: Some(e) }));
    match event {
        Event::Progress(p) => (wrap(E::Progress(progress(p))), false),
        Event::Evaluated(_) => (None, false),
        Event::Done(Ok(Outcome::Report(r))) => (wrap(E::Report((*r).into())), true),
        Event::Done(Ok(Outcome::Comparison(_))) => (None, true),
        Event::Done(Err(err)) => (Some(Err(status(&err))), true),
    }
}

/// An event of a Compare stream, the comparison grouped along the tag `by`
/// (none when "").
pub fn compare_event(event: Event, by: &str) -> Step<proto::CompareEvent> {
    use proto::compare_event::Event as E;
    let wrap = |e| Some(Ok(proto::CompareEvent { event: Some(e) }));
    match event {
        Event::Progress(p) => (wrap(E::Progress(progress(p))), false),
        Event::Evaluated(_) => (None, false),
        Event::Done(Ok(Outcome::Comparison(c))) => (
            wrap(E::Comparison(crate::views::with_groups(c, by).into())),
            true,
        ),
        Event::Done(Ok(Outcome::Report(_))) => (None, true),
        Event::Done(Err(err)) => (Some(Err(status(&err))), true),
    }
}

/// An event of a WatchEvaluation stream of evaluation `id`: its progress,
/// then its report, whatever the rest of its job does.
pub fn watch_event(id: &str, event: Event) -> Step<proto::EvaluateEvent> {
    use proto::evaluate_event::Event as E;
    let wrap = |e| Some(Ok(proto::EvaluateEvent { event: Some(e) }));
    match event {
        Event::Progress(p) if p.evaluation_id == id => (wrap(E::Progress(progress(p))), false),
        Event::Progress(_) => (None, false),
        Event::Evaluated(r) if r.id == id => (wrap(E::Report((*r).into())), true),
        Event::Evaluated(_) => (None, false),
        Event::Done(Ok(Outcome::Report(r))) => (wrap(E::Report((*r).into())), true),
        Event::Done(Ok(Outcome::Comparison(c))) => {
            let row = c.rows.into_iter().find(|r| r.id == id);
            (
                row.map(|r| {
                    Ok(proto::EvaluateEvent {
                        event: Some(E::Report(r.into())),
                    })
                }),
                true,
            )
        }
        Event::Done(Err(err)) => (Some(Err(status(&err))), true),
    }
}

/// The only event of a detached request: the handle let go, its ids.
pub fn accepted(handle: crate::jobs::JobHandle) -> proto::Accepted {
    let queued = handle.queued;
    let ids = handle.detach();
    let status = if queued {
        proto::EvaluationStatus::Queued
    } else {
        proto::EvaluationStatus::Running
    };
    proto::Accepted {
        evaluation_ids: ids,
        status: status as i32,
        comparison_id: String::new(),
        excluded: Vec::new(),
    }
}

/// The kind, format and size a RenderFigure request asks for (format SVG
/// and size SCREEN when unset).
pub fn figure_request(
    req: &proto::RenderFigureRequest,
) -> Result<(figures::Kind, figures::Format, figures::Size, figures::Axes)> {
    use proto::{FigureFormat, FigureKind, FigureSize};
    let kind = figures::Kind::from_code(req.kind).ok_or_else(|| {
        let names: Vec<&str> = figures::Kind::ALL
            .iter()
            .filter_map(|k| FigureKind::try_from(k.code()).ok())
            .map(|k| k.as_str_name())
            .collect();
        Error::InvalidArgument(format!(
            "kind must be one of {}, got {}",
            names.join(", "),
            req.kind
        ))
    })?;
    let format = match FigureFormat::try_from(req.format) {
        Ok(FigureFormat::Unspecified | FigureFormat::Svg) => figures::Format::Svg,
        Ok(FigureFormat::Png) => figures::Format::Png,
        Err(_) => {
            return Err(Error::InvalidArgument(format!(
                "format must be SVG or PNG, got {}",
                req.format
            )))
        }
    };
    let size = match FigureSize::try_from(req.size) {
        Ok(FigureSize::Unspecified | FigureSize::Screen) => figures::Size::Screen,
        Ok(FigureSize::Column) => figures::Size::Column,
        Err(_) => {
            return Err(Error::InvalidArgument(format!(
                "size must be SCREEN or COLUMN, got {}",
                req.size
            )))
        }
    };
    Ok((
        kind,
        format,
        size,
        figures::Axes::new(&req.x, &req.group_by, &req.label)?.with_metric(&req.metric)?,
    ))
}

/// A drawn figure of `reports`, as the API answers it.
pub fn figure(figure: figures::Figure, reports: &[domain::Report]) -> proto::Figure {
    proto::Figure {
        media_type: figure.format.media_type().into(),
        width: figure.size.0,
        height: figure.size.1,
        // The reports the figure drew: those with a mark.
        evaluation_ids: reports
            .iter()
            .filter(|r| r.status == domain::Status::Completed)
            .filter(|r| figure.marks.iter().any(|m| m.model == r.model))
            .map(|r| r.id.clone())
            .collect(),
        marks: figure.marks.len() as u32,
        data: figure.bytes,
    }
}

fn shape_usize(shape: &[i64]) -> Result<Vec<usize>> {
    shape
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| {
                Error::InvalidArgument(format!("inputs.shape {shape:?} has a negative axis"))
            })
        })
        .collect()
}

/// Rows sent inline with a request, checked against the model's input.
#[derive(Debug, PartialEq)]
pub enum Inline {
    /// UINT8 images [n, h, w, c], to be preprocessed.
    Images {
        /// The pixels (a view of the request's bytes).
        pixels: bytes::Bytes,
        /// Images.
        n: usize,
        /// (height, width, channels).
        hwc: (usize, usize, usize),
    },
    /// FLOAT32 rows in the model's own input layout.
    Floats {
        /// The values.
        values: Vec<f32>,
        /// Rows.
        n: usize,
        /// Values per row.
        row: usize,
    },
}

/// Checks an inline tensor against the input `card` of model `model` (its
/// name, for messages): shape arithmetic checked, bytes matching the shape.
pub fn decode_tensor(tensor: proto::Tensor, card: &Preprocessing, model: &str) -> Result<Inline> {
    let (c, h, w) = card.chw();
    let shape = shape_usize(&tensor.shape)?;
    let n = shape.first().copied().unwrap_or(0);
    if n == 0 || tensor.data.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "empty input: inputs.shape is {:?} with {} bytes of data",
            tensor.shape,
            tensor.data.len()
        )));
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|c| c.checked_mul(4).is_some())
        .ok_or_else(|| {
            Error::InvalidArgument(format!("inputs.shape {:?} is too large", tensor.shape))
        })?;
    match proto::DataType::try_from(tensor.dtype) {
        Ok(proto::DataType::Uint8) => {
            // Another height and width is resized to the model's when its
            // card allows it; the channels must match.
            let fits = shape.len() == 4
                && (1..=MAX_IMAGE_SIDE).contains(&shape[1])
                && (1..=MAX_IMAGE_SIDE).contains(&shape[2])
                && card.check_image(shape[1], shape[2], shape[3]).is_ok();
            if !fits {
                let size = if card.resize == Resize::None {
                    format!("{h}, {w}")
                } else {
                    format!("height, width (resized to {h} x {w})")
                };
                return Err(Error::InvalidArgument(format!(
                    "UINT8 images must have shape [n, {size}, {c}] (n, height, width, channels) for model {}, received {:?}",
                    model, tensor.shape
                )));
            }
            let want = [shape[1], shape[2], shape[3]];
            if tensor.data.len() != count {
                return Err(Error::InvalidArgument(format!(
                    "inputs.shape {:?} needs {count} bytes, received {}",
                    tensor.shape,
                    tensor.data.len()
                )));
            }
            Ok(Inline::Images {
                pixels: tensor.data.into(),
                n,
                hwc: (want[0], want[1], want[2]),
            })
        }
        Ok(proto::DataType::Float32) => {
            if card.dtype != InputDType::Float32 {
                return Err(Error::InvalidArgument(format!(
                    "model {} takes uint8 input; send UINT8 images",
                    model
                )));
            }
            let mut expected = card.shape.clone();
            expected[0] = n as i64;
            if tensor.shape != expected {
                return Err(Error::InvalidArgument(format!(
                    "FLOAT32 inputs are fed to model {} as they are and must have shape {expected:?}, received {:?}",
                    model, tensor.shape
                )));
            }
            if tensor.data.len() != count * 4 {
                return Err(Error::InvalidArgument(format!(
                    "inputs.shape {:?} needs {} bytes of FLOAT32, received {}",
                    tensor.shape,
                    count * 4,
                    tensor.data.len()
                )));
            }
            let values: Vec<f32> = tensor
                .data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok(Inline::Floats {
                values,
                n,
                row: count / n,
            })
        }
        _ => Err(Error::InvalidArgument(format!(
            "inputs.dtype {} is not an image type: send UINT8 images or FLOAT32 model inputs",
            proto::DataType::try_from(tensor.dtype)
                .map(|d| d.as_str_name().to_string())
                .unwrap_or_else(|_| tensor.dtype.to_string())
        ))),
    }
}

/// Rows of one split of an upload: values, dimension, labels.
type Part = (Vec<f32>, usize, Vec<i64>);

/// Reads an EvaluateEmbeddings upload: the header first, then chunks of
/// "train", "test" and "test_positive" rows, at most `max_bytes` of values.
pub async fn embeddings_upload(
    stream: &mut Streaming<proto::EvaluateEmbeddingsRequest>,
    limit: &PayloadLimit,
) -> Result<(EmbeddingsHeader, EvalData)> {
    let Some(proto::EvaluateEmbeddingsRequest {
        payload: Some(Payload::Header(header)),
    }) = stream.message().await.map_err(interrupted)?
    else {
        return Err(Error::InvalidArgument(
            "the first EvaluateEmbeddings message must carry the header".into(),
        ));
    };
    if let Some(t) = header.temperature {
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "header.temperature must be finite and > 0 (or absent for a loss without one), got {t}"
            )));
        }
    }
    let mut parts: BTreeMap<String, Part> = BTreeMap::new();
    let mut bytes = 0u64;
    while let Some(msg) = stream.message().await.map_err(interrupted)? {
        let Some(Payload::Chunk(chunk)) = msg.payload else {
            return Err(Error::InvalidArgument(
                "after the header, messages must carry chunks".into(),
            ));
        };
        if !["train", "test", "test_positive"].contains(&chunk.split.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "chunk split {:?} must be train, test or test_positive",
                chunk.split
            )));
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
            )));
        }
        let (n, d) = (t.shape[0] as usize, t.shape[1] as usize);
        let need = n.checked_mul(d).and_then(|v| v.checked_mul(4));
        if need != Some(t.data.len()) {
            return Err(Error::InvalidArgument(format!(
                "shape {:?} does not match the {} bytes received",
                t.shape,
                t.data.len()
            )));
        }
        bytes += t.data.len() as u64;
        if bytes > limit.bytes {
            return Err(Error::ResourceExhausted(format!(
                "embeddings exceed the limit of {} bytes ({})",
                limit.bytes, limit.source
            )));
        }
        let with_labels = chunk.split != "test_positive";
        if with_labels && chunk.labels.len() != n {
            return Err(Error::InvalidArgument(format!(
                "{} rows of {} but {} labels",
                n,
                chunk.split,
                chunk.labels.len()
            )));
        }
        let entry = parts
            .entry(chunk.split.clone())
            .or_insert_with(|| (Vec::new(), d, Vec::new()));
        if entry.1 != d {
            return Err(Error::InvalidArgument(format!(
                "{} rows of dimension {d} after rows of {}",
                chunk.split, entry.1
            )));
        }
        entry.0.extend(
            t.data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        entry.2.extend(chunk.labels);
    }
    let Some((test, d, test_labels)) = parts.remove("test") else {
        return Err(Error::InvalidArgument(
            "no test embeddings were sent".into(),
        ));
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
                )));
            }
            Some(Arc::new(m))
        }
        None => None,
    };
    let train = match parts.remove("train") {
        Some((v, td, labels)) => Some((Arc::new(Matrix::new(v, td)?), labels)),
        None => None,
    };
    let data = EvalData {
        test: Arc::new(test),
        test_labels,
        test_positive,
        train,
        probe: None,
        class_names: Vec::new(),
    };
    Ok((header, data))
}

/// What a ProjectEmbeddings request asks for.
pub fn projection_request(
    r: proto::ProjectEmbeddingsRequest,
) -> Result<crate::views::ProjectionRequest> {
    use crate::report::projection::Method;
    let method = match proto::ProjectionMethod::try_from(r.method) {
        Ok(proto::ProjectionMethod::Unspecified | proto::ProjectionMethod::Pca) => Method::Pca,
        Ok(proto::ProjectionMethod::Tsne) => Method::Tsne,
        Err(_) => {
            return Err(Error::InvalidArgument(format!(
                "method must be PCA or TSNE, got {}",
                r.method
            )))
        }
    };
    if !(r.perplexity.is_finite() && r.perplexity >= 0.0) {
        return Err(Error::InvalidArgument(format!(
            "perplexity must be positive (0: the default), got {}",
            r.perplexity
        )));
    }
    Ok(crate::views::ProjectionRequest {
        models: r.models,
        comparison_id: r.comparison_id,
        dataset: r.dataset,
        split: r.split,
        max_rows: r.max_rows as usize,
        method,
        seed: r.seed,
        perplexity: r.perplexity,
    })
}

/// What a NearestImages request asks for.
pub fn nearest_request(r: proto::NearestImagesRequest) -> crate::views::NearestRequest {
    crate::views::NearestRequest {
        models: r.models,
        comparison_id: r.comparison_id,
        dataset: r.dataset,
        test_split: r.test_split,
        train_split: r.train_split,
        row: r.row,
        k: r.k as usize,
        pairs: r.pairs as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grpc_timeout_header_is_read_in_every_unit_and_junk_is_ignored() {
        let at = |v: &str| {
            let mut m = MetadataMap::new();
            m.insert("grpc-timeout", v.parse().unwrap());
            deadline(&m)
        };
        assert_eq!(at("50m"), Some(Duration::from_millis(50)));
        assert_eq!(at("2S"), Some(Duration::from_secs(2)));
        assert_eq!(at("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(at("3M"), Some(Duration::from_secs(180)));
        assert_eq!(at("7u"), Some(Duration::from_micros(7)));
        assert_eq!(at("9n"), Some(Duration::from_nanos(9)));
        for junk in ["", "m", "123456789S", "5x", "-5m", "5 m"] {
            assert_eq!(at(junk), None, "{junk:?}");
        }
        assert_eq!(deadline(&MetadataMap::new()), None);
    }
}
