"""One evaluation's results: the report and its parts (kNN, probe,
histograms, per-class diagnostics), and the events of a job (its
progress, its acceptance)."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    cast,
)

import numpy as np
import numpy.typing as npt
from google.protobuf.message import Message

from ..errors import EvaluationFailed, MalformedReply
from ._base import _Message
from .enums import EvaluationStatus
from .models import InputInfo
from .spec import MetricSpec

if TYPE_CHECKING:  # named in annotations and casts only
    from .._proto import evaluation_pb2
    from .comparisons import ExcludedModel


@dataclasses.dataclass
class KnnResult(_Message):
    """Weighted kNN (Wu et al. 2018): votes exp(s/T) over the top-k of the train bank."""

    _proto_name = "embedeval.v1.KnnResult"

    top1: float = 0.0
    top5: float = 0.0
    #: k used (after clamping to the bank size).
    k: int = 0
    temperature: float = 0.0
    #: "cosine".
    metric: str = ""


@dataclasses.dataclass
class RecallAtK(_Message):
    """The fraction of queries with a row of their class among their K nearest gallery rows."""

    _proto_name = "embedeval.v1.RecallAtK"

    k: int = 0
    recall: float = 0.0


@dataclasses.dataclass
class RetrievalResult(_Message):
    """Retrieval metrics of the test rows as queries (Musgrave, Belongie and
    Lim 2020; pytorch-metric-learning's AccuracyCalculator): the means over
    the queries whose class has gallery rows."""

    _proto_name = "embedeval.v1.RetrievalResult"

    precision_at_1: float = 0.0
    r_precision: float = 0.0
    map_at_r: float = 0.0
    #: Recall@K for each K of ``MetricSpec.recall_ks``, in that order.
    recall_at_k: List[RecallAtK] = dataclasses.field(default_factory=list)
    #: "train" or "test" (each query left out of its own ranking).
    gallery: str = ""
    #: Queries scored, and those left out for an empty class (R = 0).
    queries: int = 0
    lone_queries: int = 0

    def recall(self, k: int) -> Optional[float]:
        """Recall@``k``, or None where it was not asked for."""
        return next((r.recall for r in self.recall_at_k if r.k == k), None)


@dataclasses.dataclass
class ClusteringResult(_Message):
    """NMI and AMI of a k-means clustering of the test rows (faiss, seeded),
    as many clusters as classes."""

    _proto_name = "embedeval.v1.ClusteringResult"

    nmi: float = 0.0
    ami: float = 0.0
    clusters: int = 0
    iterations: int = 0
    restarts: int = 0
    seed: int = 0
    #: Sum of the rows' squared distances to their centroids.
    objective: float = 0.0


@dataclasses.dataclass
class LinearResult(_Message):
    """Multinomial logistic regression on frozen features."""

    _proto_name = "embedeval.v1.LinearResult"

    top1: float = 0.0
    top5: float = 0.0
    train_top1: float = 0.0
    c: float = 0.0
    iterations: int = 0
    #: The model output the probe was trained on.
    feature_output: str = ""
    converged: bool = False
    #: Train rows the probe was fitted on (all, or the
    #: ``MetricSpec.linear_train_fraction`` subset).
    train_rows: int = 0
    #: Wall-clock seconds per L-BFGS iteration.
    seconds_per_iteration: float = 0.0


@dataclasses.dataclass
class Histogram(_Message):
    """Histogram with fixed bins over [lo, hi]."""

    _proto_name = "embedeval.v1.Histogram"

    #: What is counted, e.g. "positive" or "negative_rank_1".
    name: str = ""
    lo: float = 0.0
    hi: float = 0.0
    counts: List[int] = dataclasses.field(default_factory=list)


def _empty(dtype: Any, ndim: int = 1) -> Any:
    """A default factory: an empty array of `dtype` with `ndim` axes."""
    return lambda: np.zeros((0,) * ndim, dtype=dtype)


@dataclasses.dataclass(eq=False)
class PerClass(_Message):
    """Per-class diagnostics (Wang & Liu 2021, Sec. 4, class by class): where
    the embedding keeps its semantic structure and where it breaks it.

    One entry per class of the test split, in increasing label order, as
    numpy arrays: ``labels[i]`` is the label of entry ``i`` of every other
    array and of row and column ``i`` of the C x C matrices (row: the
    anchor's class). Arrays the server left empty (``knn_top1`` without the
    kNN, ``linear_top1`` without the probe, ``nearest_negative_classes``
    without the nearest negatives) have no elements. ``names[i]`` is the
    class name of entry ``i`` where the dataset names its classes
    (``DatasetInfo.class_names``); ``names`` is empty where it does not.
    :meth:`frame` gives the per-class table as a ``pandas.DataFrame``.
    """

    _proto_name = "embedeval.v1.PerClass"

    #: int64 ``[C]``: the test split's labels, increasing.
    labels: npt.NDArray[np.int64] = dataclasses.field(default_factory=_empty(np.int64))
    #: int64 ``[C]``: test rows per class.
    counts: npt.NDArray[np.int64] = dataclasses.field(default_factory=_empty(np.int64))
    #: float64 ``[C]``: mean cosine similarity of the distinct same-class
    #: pairs (Eq. 11 within the class); NaN for a class of one row.
    tolerance: npt.NDArray[np.float64] = dataclasses.field(default_factory=_empty(np.float64))
    #: float64 ``[C]``: fraction of each class's test rows the weighted kNN
    #: gets right (top-1); empty when the kNN was skipped.
    knn_top1: npt.NDArray[np.float64] = dataclasses.field(default_factory=_empty(np.float64))
    #: float64 ``[C]``: the same for the linear probe; empty when it was skipped.
    linear_top1: npt.NDArray[np.float64] = dataclasses.field(default_factory=_empty(np.float64))
    #: float32 ``[C, C]``: mean cosine similarity between the rows of class
    #: a (row) and those of class b (column); the diagonal is ``tolerance``.
    similarity: npt.NDArray[np.float32] = dataclasses.field(default_factory=_empty(np.float32, 2))
    #: int64 ``[C, C]``: how many of the 1st ... k-th nearest other test rows
    #: of class a's rows (row) are of class b (column), k being
    #: ``nearest_negative_k``; each row sums to ``counts[a] * k``. Shape
    #: ``(0, 0)`` when the nearest negatives were skipped.
    nearest_negative_classes: npt.NDArray[np.int64] = dataclasses.field(default_factory=_empty(np.int64, 2))
    #: The k of ``nearest_negative_classes`` (0 when they were skipped).
    nearest_negative_k: int = 0
    #: ``[C]`` strings: each entry's class name, ``names[i]`` that of
    #: ``labels[i]``, from the dataset; empty where the dataset names none
    #: (the labels are the names then).
    names: List[str] = dataclasses.field(default_factory=list)
    #: float64 ``[C]``: each class's MAP@R over its test rows as queries
    #: (NaN for a class with no gallery rows); empty when skipped.
    map_at_r: npt.NDArray[np.float64] = dataclasses.field(default_factory=_empty(np.float64))
    #: float64 ``[C]``: each class's R-Precision; empty when skipped.
    r_precision: npt.NDArray[np.float64] = dataclasses.field(default_factory=_empty(np.float64))

    @classmethod
    def from_proto(cls, msg: Message) -> PerClass:
        """The arrays of a ``embedeval.v1.PerClass`` message, the C x C
        matrices reshaped (:class:`~embedeval.errors.MalformedReply`, an
        ``Internal`` and a ``ValueError``, when a field does not have the
        length the number of classes gives it)."""
        m = cast("evaluation_pb2.PerClass", msg)
        c = len(m.labels)

        def vector(name: str, dtype: Any, optional: bool = False) -> npt.NDArray[Any]:
            values: npt.NDArray[Any] = np.asarray(getattr(m, name), dtype=dtype)
            if values.shape != (c,) and not (optional and values.size == 0):
                raise MalformedReply(f"PerClass.{name} holds {values.size} values for {c} classes")
            return values

        def matrix(name: str, dtype: Any, optional: bool = False) -> npt.NDArray[Any]:
            values: npt.NDArray[Any] = np.asarray(getattr(m, name), dtype=dtype)
            if optional and values.size == 0:
                return values.reshape(0, 0)
            if values.size != c * c:
                raise MalformedReply(f"PerClass.{name} holds {values.size} values for {c} x {c} classes")
            return values.reshape(c, c)

        names = [str(n) for n in m.names]
        if names and len(names) != c:
            raise MalformedReply(f"PerClass.names holds {len(names)} values for {c} classes")
        return cls(
            labels=vector("labels", np.int64),
            counts=vector("counts", np.int64),
            tolerance=vector("tolerance", np.float64),
            knn_top1=vector("knn_top1", np.float64, optional=True),
            linear_top1=vector("linear_top1", np.float64, optional=True),
            map_at_r=vector("map_at_r", np.float64, optional=True),
            r_precision=vector("r_precision", np.float64, optional=True),
            similarity=matrix("similarity", np.float32),
            nearest_negative_classes=matrix("nearest_negative_classes", np.int64, optional=True),
            nearest_negative_k=int(m.nearest_negative_k),
            names=names,
        )

    def __eq__(self, other: object) -> bool:
        """Field by field; arrays equal in shape and values (NaN equal to NaN)."""
        if not isinstance(other, PerClass):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                a, b = np.asarray(a), np.asarray(b)
                nan = a.dtype.kind == "f" and b.dtype.kind == "f"
                if not np.array_equal(a, b, equal_nan=nan):
                    return False
            elif a != b:
                return False
        return True

    # Unhashable, as __eq__ compares arrays. The ignore: to the checker,
    # object.__hash__ is a method that None may not replace, though Python
    # documents this assignment as the way to say so.
    __hash__ = None  # type: ignore[assignment]

    @property
    def classes(self) -> int:
        """The number of classes, C."""
        return len(self.labels)

    def frame(self) -> Any:
        """One row per class, in label order: ``label``, ``name`` (only where
        the dataset names its classes), ``count``, ``tolerance``,
        ``knn_top1``, ``linear_top1``, ``map_at_r`` and ``r_precision``
        (missing where the kNN, the probe or the retrieval metrics were
        skipped), as a ``pandas.DataFrame`` (needs pandas:
        ``pip install embedeval-client[pandas]``)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError(
                "PerClass.frame needs pandas: pip install pandas (or embedeval-client[pandas])"
            ) from e
        c = self.classes

        def column(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return values if len(values) == c else np.full(c, np.nan)

        columns: Dict[str, Any] = {"label": self.labels}
        if len(self.names) == c and c:
            columns["name"] = list(self.names)
        columns.update(
            {
                "count": self.counts,
                "tolerance": self.tolerance,
                "knn_top1": column(self.knn_top1),
                "linear_top1": column(self.linear_top1),
                "map_at_r": column(self.map_at_r),
                "r_precision": column(self.r_precision),
            }
        )
        return pd.DataFrame(columns)


#: The prefix of the tag columns of :meth:`EvaluationReport.to_row`.
TAG_COLUMN_PREFIX = "tag."


@dataclasses.dataclass
class EvaluationReport(_Message):
    """One evaluation: the Wang & Liu analysis, kNN and the linear probe.

    Metrics the evaluation skipped (or could not compute, e.g. alignment
    without positive views) are ``None``; so are ``knn`` and ``linear``
    without a train split. A report whose ``status`` is not COMPLETED says
    why in ``error``: see :meth:`raise_for_status`.
    """

    _proto_name = "embedeval.v1.EvaluationReport"

    id: str = ""
    model: str = ""
    model_sha256: str = ""
    dataset: str = ""
    dataset_id: str = ""
    #: Training tau of the model.
    temperature: float = 0.0
    #: Training loss of the model.
    loss: str = ""
    num_test: int = 0
    num_train: int = 0
    embedding_dim: int = 0
    #: -uniformity_loss; higher is more uniform.
    uniformity: Optional[float] = None
    #: log mean over distinct pairs of exp(-t ||z_i - z_j||^2), at most 0.
    uniformity_loss: Optional[float] = None
    #: Mean ||z(x) - z(x+)||^alpha over positive pairs.
    alignment: Optional[float] = None
    #: Mean similarity of distinct same-label pairs (Wang & Liu Eq. 11).
    tolerance: Optional[float] = None
    #: Mean z(x)^T z(x+).
    positive_similarity: Optional[float] = None
    #: Mean similarity of the 1st ... k-th nearest other sample.
    nearest_negative_similarity: List[float] = dataclasses.field(default_factory=list)
    #: Mean relative penalty r_i on the 1st ... k-th nearest negative.
    relative_penalty: List[float] = dataclasses.field(default_factory=list)
    #: Mean entropy of r_i, in nats.
    penalty_entropy: Optional[float] = None
    #: RankMe: exp of the entropy of the normalised singular values.
    effective_rank: Optional[float] = None
    knn: Optional[KnnResult] = None
    linear: Optional[LinearResult] = None
    #: The settings used, every field filled in.
    spec: Optional[MetricSpec] = None
    #: Seconds per stage.
    timings: Dict[str, float] = dataclasses.field(default_factory=dict)
    created_at: Optional[_dt.datetime] = None
    status: EvaluationStatus = EvaluationStatus.EVALUATION_STATUS_UNSPECIFIED
    #: Why the evaluation failed or was skipped, when it was.
    error: str = ""
    #: "exact" or "sampled".
    uniformity_estimator: str = ""
    #: Standard error of a sampled uniformity loss (0 when exact).
    uniformity_stderr: float = 0.0
    #: exp(penalty_entropy): the effective number of negatives.
    effective_negatives: Optional[float] = None
    #: Histograms of the positive similarity and of each nearest-negative rank.
    histograms: List[Histogram] = dataclasses.field(default_factory=list)
    #: The effective preprocessing the images went through (None for
    #: EvaluateEmbeddings).
    preprocessing: Optional[InputInfo] = None
    #: Where the model ran: "cpu" or "cuda:N" (empty for EvaluateEmbeddings).
    execution_provider: str = ""
    #: The split evaluated, and the one the kNN bank and the probe were fitted on.
    test_split: str = ""
    train_split: str = ""
    #: What the server assumed and the user should check (the model's
    #: warnings, e.g. normalisation not given), each naming the key or flag
    #: that changes it.
    warnings: List[str] = dataclasses.field(default_factory=list)
    #: The name of a loss of the user's own (loss "other").
    loss_name: str = ""
    #: Per-class tolerance, class-to-class similarity, nearest-negative
    #: classes and per-class kNN and probe accuracy (``None`` when skipped:
    #: ``skip_per_class``, or a server that does not compute them).
    per_class: Optional[PerClass] = None
    #: The model's tags (``ModelInfo.tags``) with the evaluation's own
    #: (``evaluate(..., tags=...)``) set over them.
    tags: Dict[str, str] = dataclasses.field(default_factory=dict)
    #: Precision@1, R-Precision, MAP@R and Recall@K (``None`` when skipped).
    retrieval: Optional[RetrievalResult] = None
    #: NMI and AMI of a k-means clustering (``None`` when skipped).
    clustering: Optional[ClusteringResult] = None

    @property
    def ok(self) -> bool:
        """Whether the evaluation completed."""
        return self.status == EvaluationStatus.COMPLETED

    def raise_for_status(self) -> EvaluationReport:
        """Raises :class:`~embedeval.errors.EvaluationFailed` unless the
        evaluation completed (or is still queued or running); returns the
        report, so that ``client.evaluate(...).raise_for_status()`` chains."""
        if self.status in (EvaluationStatus.FAILED, EvaluationStatus.CANCELLED, EvaluationStatus.SKIPPED):
            raise EvaluationFailed(self)
        return self

    def to_row(self) -> Dict[str, Any]:
        """The report's headline numbers as one flat row (for tables), then
        its tags as ``tag.<key>`` columns (``tag.seed``), sorted by key."""
        nn = self.nearest_negative_similarity
        row: Dict[str, Any] = {
            "model": self.model,
            "status": self.status.value if isinstance(self.status, enum.Enum) else self.status,
            "loss": self.loss,
            "temperature": self.temperature,
            "dataset": self.dataset,
            "num_test": self.num_test,
            "num_train": self.num_train,
            "embedding_dim": self.embedding_dim,
            "uniformity": self.uniformity,
            "uniformity_loss": self.uniformity_loss,
            "tolerance": self.tolerance,
            "alignment": self.alignment,
            "positive_similarity": self.positive_similarity,
            "nn1_similarity": nn[0] if nn else None,
            "penalty_entropy": self.penalty_entropy,
            "effective_negatives": self.effective_negatives,
            "effective_rank": self.effective_rank,
            "knn_top1": self.knn.top1 if self.knn else None,
            "knn_top5": self.knn.top5 if self.knn else None,
            "linear_top1": self.linear.top1 if self.linear else None,
            "linear_top5": self.linear.top5 if self.linear else None,
            "precision_at_1": self.retrieval.precision_at_1 if self.retrieval else None,
            "r_precision": self.retrieval.r_precision if self.retrieval else None,
            "map_at_r": self.retrieval.map_at_r if self.retrieval else None,
            "nmi": self.clustering.nmi if self.clustering else None,
            "ami": self.clustering.ami if self.clustering else None,
            "error": self.error,
            "warnings": "; ".join(self.warnings),
            "id": self.id,
        }
        row.update({f"{TAG_COLUMN_PREFIX}{key}": value for key, value in sorted(self.tags.items())})
        return row


def _row_columns(first: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> List[str]:
    """The columns of a table of `rows` (:meth:`EvaluationReport.to_row`s):
    `first`, then every tag column of any row, sorted by key."""
    tags = sorted({c for row in rows for c in row if c.startswith(TAG_COLUMN_PREFIX)} - set(first))
    return [*first, *tags]


@dataclasses.dataclass
class Progress(_Message):
    """Progress of a long-running stage of an evaluation."""

    _proto_name = "embedeval.v1.Progress"

    #: Stage name, e.g. "embed_test", "uniformity", "knn".
    stage: str = ""
    #: Units of work done so far in this stage.
    done: int = 0
    #: Units of work in the stage (0 when not known).
    total: int = 0
    evaluation_id: str = ""
    #: The model being worked on (Compare runs several).
    model: str = ""
    #: Its place among the job's models, from 1, and how many there are.
    model_index: int = 0
    models: int = 0


@dataclasses.dataclass
class Accepted(_Message):
    """A detached job, admitted: the ids to follow."""

    _proto_name = "embedeval.v1.Accepted"

    #: One id, or one per compared model in the order of the request.
    evaluation_ids: List[str] = dataclasses.field(default_factory=list)
    #: QUEUED or RUNNING.
    status: EvaluationStatus = EvaluationStatus.EVALUATION_STATUS_UNSPECIFIED
    #: The comparison's id, for a Compare request (``get_comparison``,
    #: ``render_figure``); empty for an evaluation.
    comparison_id: str = ""
    #: For a Compare request: the models it left out, with why.
    excluded: List[ExcludedModel] = dataclasses.field(default_factory=list)
