"""Pictures of the embedding space (``client.project``): each model's
embeddings of a stratified sample of a split, projected to two dimensions
(PCA or t-SNE), with the server's picture of them side by side; and the
nearest training images of a test image under each model
(``client.nearest_images``)."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union, cast

import numpy as np
from google.protobuf.message import Message

from .._proto import evaluation_pb2
from ._base import _Message


@dataclasses.dataclass
class Projection(_Message):
    """One model's projection: ``coordinates`` is a float32 array of shape
    ``(rows, 2)``, row i the i-th of :attr:`Projections.rows`."""

    _proto_name = "embedeval.v1.Projection"

    model: str = ""
    #: Its tau (0 for the tau-free losses).
    temperature: float = 0.0
    coordinates: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2), np.float32), repr=False)
    #: PCA: the share of the variance along each axis.
    explained_variance: List[float] = dataclasses.field(default_factory=list)
    #: t-SNE: the Kullback-Leibler divergence of the fit.
    kl_divergence: Optional[float] = None

    @classmethod
    def from_proto(cls, message: Message) -> Projection:
        msg = cast(evaluation_pb2.Projection, message)
        coords = np.asarray(list(msg.coordinates), dtype=np.float32).reshape(-1, 2)
        kl = msg.kl_divergence if msg.HasField("kl_divergence") else None
        return cls(model=msg.model, temperature=msg.temperature, coordinates=coords,
                   explained_variance=list(msg.explained_variance), kl_divergence=kl)

    def to_dict(self) -> Dict[str, Any]:
        d = super().to_dict()
        d["coordinates"] = self.coordinates.ravel().tolist()
        return d


@dataclasses.dataclass
class Projections(_Message):
    """Projections of several models' embeddings of the same rows
    (``rows`` of ``split``, with their ``labels``), and ``svg``, the
    server's picture of them side by side, one colour per class (shown by
    Jupyter; :meth:`save` writes it)."""

    _proto_name = "embedeval.v1.Projections"

    dataset: str = ""
    dataset_id: str = ""
    split: str = ""
    rows: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    labels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    class_names: List[str] = dataclasses.field(default_factory=list)
    #: "pca" or "tsne".
    method: str = "pca"
    seed: int = 0
    perplexity: float = 0.0
    max_rows: int = 0
    projections: List[Projection] = dataclasses.field(default_factory=list)
    svg: str = dataclasses.field(default="", repr=False)

    @classmethod
    def from_proto(cls, message: Message) -> Projections:
        msg = cast(evaluation_pb2.Projections, message)
        method = "tsne" if msg.method == 2 else "pca"
        return cls(
            dataset=msg.dataset,
            dataset_id=msg.dataset_id,
            split=msg.split,
            rows=np.asarray(list(msg.rows), dtype=np.int64),
            labels=np.asarray(list(msg.labels), dtype=np.int64),
            class_names=list(msg.class_names),
            method=method,
            seed=msg.seed,
            perplexity=msg.perplexity,
            max_rows=msg.max_rows,
            projections=[Projection.from_proto(p) for p in msg.projections],
            svg=msg.svg,
        )

    def __getitem__(self, model: str) -> Projection:
        """The projection of `model` (KeyError naming the models drawn)."""
        for p in self.projections:
            if p.model == model:
                return p
        raise KeyError(f"{model!r} is not drawn; drawn: {', '.join(p.model for p in self.projections)}")

    def save(self, path: Union[str, os.PathLike[str]]) -> Path:
        """Writes the picture (SVG) to `path`; returns it."""
        out = Path(path)
        out.write_text(self.svg, encoding="utf-8")
        return out

    def _repr_svg_(self) -> Optional[str]:
        return self.svg or None

    def to_dict(self) -> Dict[str, Any]:
        d = super().to_dict()
        d["rows"] = self.rows.tolist()
        d["labels"] = self.labels.tolist()
        d["projections"] = [p.to_dict() for p in self.projections]
        return d


@dataclasses.dataclass
class Neighbour(_Message):
    """A training image near the query: its ``row`` of the training split,
    its ``label`` and its cosine ``similarity`` to the query."""

    _proto_name = "embedeval.v1.Neighbour"

    row: int = 0
    label: int = 0
    similarity: float = 0.0


@dataclasses.dataclass
class ConfusedPair(_Message):
    """A test row whose nearest training image is of another class."""

    _proto_name = "embedeval.v1.ConfusedPair"

    test_row: int = 0
    train_row: int = 0
    similarity: float = 0.0


@dataclasses.dataclass
class ClassConfusion(_Message):
    """A class (``label``, its test ``rows``), the other class its rows'
    nearest training images come from most often (``confused_with``, on
    ``share`` of its rows) and the most similar such ``pairs``."""

    _proto_name = "embedeval.v1.ClassConfusion"

    label: int = 0
    rows: int = 0
    confused_with: int = 0
    share: float = 0.0
    pairs: List[ConfusedPair] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ModelNeighbours(_Message):
    """One model's nearest training images of the query, nearest first,
    and its classes' confusions."""

    _proto_name = "embedeval.v1.ModelNeighbours"

    model: str = ""
    temperature: float = 0.0
    neighbours: List[Neighbour] = dataclasses.field(default_factory=list)
    confusions: List[ClassConfusion] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class NearestImages(_Message):
    """A test image (``row`` of ``test_split``, its ``label``) and its
    nearest images of ``train_split`` under each model (``models``)."""

    _proto_name = "embedeval.v1.NearestImagesResponse"

    dataset: str = ""
    dataset_id: str = ""
    test_split: str = ""
    train_split: str = ""
    row: int = 0
    label: int = 0
    class_names: List[str] = dataclasses.field(default_factory=list)
    models: List[ModelNeighbours] = dataclasses.field(default_factory=list)

    def __getitem__(self, model: str) -> ModelNeighbours:
        """The neighbours under `model` (KeyError naming the models shown)."""
        for m in self.models:
            if m.model == model:
                return m
        raise KeyError(f"{model!r} is not shown; shown: {', '.join(m.model for m in self.models)}")
