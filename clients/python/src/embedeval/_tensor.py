"""Arrays to and from the contract's Tensor messages: the checks of the
rows and labels the client sends, the chunks they are sent in, and the
embedding rows of the replies put back together."""
from __future__ import annotations

import os
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from ._proto import evaluation_pb2, tensor_pb2
from .errors import MalformedReply

#: What :meth:`Client.embed` returns: float32 rows [n, d] and int64 labels [n].
Embeddings = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]

#: Inline images per Embed request are cut to at most this many bytes.
EMBED_REQUEST_BYTES = 32 << 20
#: Embedding rows per EvaluateEmbeddings message, at most this many bytes.
EMBEDDINGS_CHUNK_BYTES = 8 << 20


def _tensor(array: npt.NDArray[Any]) -> tensor_pb2.Tensor:
    """A Tensor message of a uint8 or float32 array (row-major, little-endian)."""
    if array.dtype == np.uint8:
        dtype, data = tensor_pb2.UINT8, np.ascontiguousarray(array)
    elif array.dtype == np.float32:
        dtype, data = tensor_pb2.FLOAT32, np.ascontiguousarray(array, dtype="<f4")
    else:  # pragma: no cover - callers convert first
        raise TypeError(f"cannot send a {array.dtype} tensor")
    return tensor_pb2.Tensor(dtype=dtype, shape=list(array.shape), data=data.tobytes())


def _from_tensor(t: tensor_pb2.Tensor) -> Embeddings:
    """A float32 [n, d] array of a FLOAT32 Tensor message."""
    if t.dtype != tensor_pb2.FLOAT32 or len(t.shape) != 2:
        raise MalformedReply(f"expected FLOAT32 [n, d] embeddings, received dtype {t.dtype} shape {list(t.shape)}")
    n, d = int(t.shape[0]), int(t.shape[1])
    if len(t.data) != n * d * 4:
        raise MalformedReply(f"embeddings of shape [{n}, {d}] with {len(t.data)} bytes")
    rows: Embeddings = np.frombuffer(t.data, dtype="<f4").reshape(n, d)
    return rows


def _array(x: Any) -> npt.NDArray[Any]:
    """`x` as an array; a path names a ``.npy`` file, memory-mapped rather
    than read (its rows are read as they are sent)."""
    if isinstance(x, (str, os.PathLike)):
        mapped: npt.NDArray[Any] = np.load(x, mmap_mode="r")
        return mapped
    return x if isinstance(x, np.ndarray) else np.asarray(x)


def _float_rows(x: Any, what: str) -> npt.NDArray[Any]:
    """The checked rows, not copied: a memory-mapped file stays on disk and
    each chunk becomes float32 as it is sent (:func:`_chunk`)."""
    a = _array(x)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what} must be a non-empty 2-D array [n, d], got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{what} must hold numbers, got {a.dtype}")
    return a


def _chunk(x: npt.NDArray[Any], start: int, rows: int) -> tensor_pb2.Tensor:
    """Rows ``start:start + rows`` of `x` as a FLOAT32 Tensor message (only
    these rows are converted and copied)."""
    return _tensor(np.ascontiguousarray(x[start : start + rows], dtype=np.float32))


def _labels(y: Any, n: int, what: str) -> Labels:
    a = _array(y)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{what} must be a 1-D array of {n} labels, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise TypeError(f"{what} must be integers, got {a.dtype}")
    return a.astype(np.int64)


def image_batches(images: Any) -> List[npt.NDArray[Any]]:
    """Inline `images` (uint8 pixels or float model inputs, made float32) as
    the batches of one Embed request each, at most
    :data:`EMBED_REQUEST_BYTES` (views, not copies)."""
    x = np.asarray(images)
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"images must be uint8 pixels or float32 model inputs, got {x.dtype}")
        x = x.astype(np.float32, copy=False)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"images must be a batch [n, ...] of at least one image, got shape {x.shape}")
    per_row = max(1, x[0].nbytes)
    rows = max(1, EMBED_REQUEST_BYTES // per_row)
    return [x[start : start + rows] for start in range(0, x.shape[0], rows)]


def tile_embeddings(
    chunks: List[Tuple[int, Embeddings, Sequence[int]]], expected: Optional[int]
) -> Tuple[Embeddings, Labels]:
    """The rows and labels of one Embed call's responses, each ``(offset,
    rows, labels)``: checked to tile the rows (``expected`` of them, when
    known) with one dimension (:class:`~embedeval.errors.MalformedReply`
    otherwise)."""
    chunks.sort(key=lambda c: c[0])
    rows = 0
    dim = chunks[0][1].shape[1] if chunks else 0
    for offset, values, _ in chunks:
        if offset != rows:
            raise MalformedReply(f"Embed responses do not tile the rows: offset {offset} after {rows} rows")
        if values.shape[1] != dim:
            raise MalformedReply(f"Embed responses of dimension {values.shape[1]} after {dim}")
        rows += values.shape[0]
    if expected is not None and rows != expected:
        raise MalformedReply(f"Embed returned {rows} rows for {expected} images")
    out = np.empty((rows, dim), dtype=np.float32)
    labels: Labels = np.empty(rows if any(len(c[2]) for c in chunks) else 0, dtype=np.int64)
    for offset, values, lab in chunks:
        out[offset : offset + values.shape[0]] = values
        if labels.size and len(lab):
            labels[offset : offset + len(lab)] = lab
    return out, labels


def embeddings_requests(
    header: evaluation_pb2.EmbeddingsHeader, parts: List[Tuple[str, npt.NDArray[Any], Optional[Labels]]]
) -> Iterator[evaluation_pb2.EvaluateEmbeddingsRequest]:
    """The EvaluateEmbeddings stream: `header`, then each ``(split, rows,
    labels)`` of `parts` in chunks of at most :data:`EMBEDDINGS_CHUNK_BYTES`,
    each converted to float32 as it is sent."""
    yield evaluation_pb2.EvaluateEmbeddingsRequest(header=header)
    for split, x, y in parts:
        rows = max(1, EMBEDDINGS_CHUNK_BYTES // (x.shape[1] * 4))
        for start in range(0, x.shape[0], rows):
            chunk = evaluation_pb2.EmbeddingsChunk(split=split, embeddings=_chunk(x, start, rows))
            if y is not None:
                chunk.labels.extend(y[start : start + rows].tolist())
            yield evaluation_pb2.EvaluateEmbeddingsRequest(chunk=chunk)
