"""EmbeddingService calls of the client: a model's embeddings of inline
images or of a dataset split (the mixin :class:`_Embedding` of
:class:`~embedeval.client.Client`)."""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple, Union, overload

import numpy as np

from .._proto import embedding_pb2
from .._tensor import Embeddings, Labels, _from_tensor, _tensor, image_batches, tile_embeddings
from ..errors import MalformedReply
from ._connection import _Connection


class _Embedding(_Connection):
    """The EmbeddingService calls of :class:`~embedeval.client.Client`."""

    @overload
    def embed(
        self, model: str, images: Optional[Any] = None, dataset: Optional[str] = None, split: str = "test",
        output: str = "", normalize: bool = False, *, return_labels: Literal[False] = False, chunk_rows: int = 0,
    ) -> Embeddings: ...

    @overload
    def embed(
        self, model: str, images: Optional[Any] = None, dataset: Optional[str] = None, split: str = "test",
        output: str = "", normalize: bool = False, *, return_labels: Literal[True], chunk_rows: int = 0,
    ) -> Tuple[Embeddings, Labels]: ...

    @overload
    def embed(
        self, model: str, images: Optional[Any] = None, dataset: Optional[str] = None, split: str = "test",
        output: str = "", normalize: bool = False, *, return_labels: bool, chunk_rows: int = 0,
    ) -> Union[Embeddings, Tuple[Embeddings, Labels]]: ...

    def embed(
        self,
        model: str,
        images: Optional[Any] = None,
        dataset: Optional[str] = None,
        split: str = "test",
        output: str = "",
        normalize: bool = False,
        *,
        return_labels: bool = False,
        chunk_rows: int = 0,
    ) -> Union[Embeddings, Tuple[Embeddings, Labels]]:
        """Runs `model` over inline `images` or a `dataset` split.

        Args:
            images: uint8 ``[n, H, W, C]`` pixels (they get the model card's
                preprocessing and resize), or float32 rows in the model's own
                input shape (fed as they are). Large arrays are sent in
                several requests.
            dataset, split: a registered dataset's split instead.
            output: the model output to return (default its embedding;
                e.g. ``"features"``).
            normalize: L2-normalise each row.
            return_labels: also return the rows' labels (dataset splits).
            chunk_rows: most rows per streamed response (0: the server's).

        Returns:
            float32 ``[n, d]`` (and int64 labels ``[n]`` with `return_labels`).
        """
        if (images is None) == (dataset is None):
            raise ValueError("give either images or a dataset (and split)")
        base: Dict[str, Any] = dict(model=model, output=output, normalize=normalize, chunk_rows=chunk_rows)
        if dataset is not None:
            emb, labels = self._embed_one(embedding_pb2.EmbedRequest(dataset=dataset, split=split, **base), None)
        else:
            parts, label_parts = [], []
            for batch in image_batches(images):
                e, lab = self._embed_one(embedding_pb2.EmbedRequest(inputs=_tensor(batch), **base), batch.shape[0])
                parts.append(e)
                label_parts.append(lab)
            emb = parts[0] if len(parts) == 1 else np.concatenate(parts)
            labels = label_parts[0] if len(label_parts) == 1 else np.concatenate(label_parts)
        return (emb, labels) if return_labels else emb

    def _embed_one(self, request: embedding_pb2.EmbedRequest, expected: Optional[int]) -> Tuple[Embeddings, Labels]:
        chunks: List[Tuple[int, Embeddings, Sequence[int]]] = []
        for msg in self._stream(self._embedding.Embed, request):
            if not msg.HasField("embeddings"):
                raise MalformedReply("an Embed response without embeddings")
            chunks.append((int(msg.offset), _from_tensor(msg.embeddings), msg.labels))
        return tile_embeddings(chunks, expected)
