"""Typed results: one dataclass per message of the contract the client returns,
with every field of the message (``tests/test_generated.py`` checks them
against the descriptors), nested messages as dataclasses (``None`` when the
server left them unset), proto3 ``optional`` fields as ``None`` when absent,
timestamps as timezone-aware ``datetime`` and enums as :class:`enum.Enum`
members whose value is the proto name (so ``report.status == "COMPLETED"``
holds). ``to_dict()`` gives plain JSON-ready values."""
from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import enum
import numbers
import os
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
)

import numpy as np
import numpy.typing as npt
from google.protobuf import descriptor as _descriptor
from google.protobuf.message import Message

from .errors import EvaluationFailed, MalformedReply

if TYPE_CHECKING:  # the generated messages, named in annotations and casts only
    from google.protobuf import timestamp_pb2

    from ._proto import evaluation_pb2

__all__ = [
    "DataType",
    "EvaluationStatus",
    "TrainingInfo",
    "InputInfo",
    "OutputInfo",
    "ModelInfo",
    "SkippedModel",
    "ModelList",
    "SplitInfo",
    "DatasetInfo",
    "Augmentation",
    "AugmentationLike",
    "MetricSpec",
    "KnnResult",
    "LinearResult",
    "Histogram",
    "PerClass",
    "EvaluationReport",
    "Progress",
    "Accepted",
    "ExcludedModel",
    "AccuracyInterval",
    "Recommendation",
    "MetricSummary",
    "TagGroup",
    "GROUP_METRICS",
    "Comparison",
    "Figure",
    "RunSummary",
    "Checkpoint",
    "RunWarning",
    "Run",
]


class DataType(str, enum.Enum):
    """Element type of a tensor (``embedeval.v1.DataType``)."""

    DATA_TYPE_UNSPECIFIED = "DATA_TYPE_UNSPECIFIED"
    FLOAT32 = "FLOAT32"
    UINT8 = "UINT8"
    INT64 = "INT64"

    def __str__(self) -> str:
        return self.value


class EvaluationStatus(str, enum.Enum):
    """Where an evaluation is (``embedeval.v1.EvaluationStatus``)."""

    EVALUATION_STATUS_UNSPECIFIED = "EVALUATION_STATUS_UNSPECIFIED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    #: Made by earlier servers for a model of a comparison that did not take
    #: the dataset's images (the report's ``error`` says why); comparisons now
    #: list such models in :attr:`Comparison.excluded` and store no report.
    SKIPPED = "SKIPPED"

    def __str__(self) -> str:
        return self.value

    @property
    def ended(self) -> bool:
        """Whether the evaluation has ended (it will not change any more)."""
        return self in (
            EvaluationStatus.COMPLETED,
            EvaluationStatus.FAILED,
            EvaluationStatus.CANCELLED,
            EvaluationStatus.SKIPPED,
        )


_ENUMS: Dict[str, Type[enum.Enum]] = {
    "embedeval.v1.DataType": DataType,
    "embedeval.v1.EvaluationStatus": EvaluationStatus,
}

T = TypeVar("T", bound="_Message")


def _plain(value: Any) -> Any:
    """`value` as JSON-ready Python: dicts, lists, str, numbers, bools, None."""
    if isinstance(value, _Message):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):  # NaN (undefined) as None, so that the dict is strict JSON
        if value.dtype.kind == "f":
            cells = value.astype(object)
            cells[np.isnan(value)] = None
            return cells.tolist()
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _is_repeated(fd: _descriptor.FieldDescriptor) -> bool:
    flag = getattr(fd, "is_repeated", None)
    if isinstance(flag, bool):
        return flag
    return bool(fd.label == _descriptor.FieldDescriptor.LABEL_REPEATED)


def _enum_value(fd: _descriptor.FieldDescriptor, number: int) -> Any:
    cls = _ENUMS.get(fd.enum_type.full_name)
    value = fd.enum_type.values_by_number.get(number)
    if cls is None or value is None:  # an enum or value newer than this client
        return number
    return cls(value.name)


class _Message:
    """Conversion from a protobuf message and to a plain dict."""

    #: Full name of the message the dataclass mirrors.
    _proto_name: str = ""
    #: Set by ``@dataclasses.dataclass`` on every subclass; declared so that
    #: the type checker takes the subclasses for dataclasses.
    __dataclass_fields__: ClassVar[Dict[str, dataclasses.Field[Any]]]

    @classmethod
    def from_proto(cls: Type[T], msg: Message) -> T:
        """The dataclass holding every field of `msg`."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: Dict[str, Any] = {}
        for fd in msg.DESCRIPTOR.fields:
            if fd.name in names:
                kwargs[fd.name] = _field_value(msg, fd)
        return cls(**kwargs)

    def to_dict(self) -> Dict[str, Any]:
        """Every field as plain JSON-ready values (enums as their names,
        timestamps as RFC 3339 strings, absent values as ``None``)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _convert_message(value: Message) -> Any:
    name = value.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        return cast("timestamp_pb2.Timestamp", value).ToDatetime(tzinfo=_dt.timezone.utc)
    cls = _CLASSES.get(name)
    if cls is None:  # a message this client does not know: a dict of it
        return {fd.name: _field_value(value, fd) for fd in value.DESCRIPTOR.fields}
    return cls.from_proto(value)


def _field_value(msg: Message, fd: _descriptor.FieldDescriptor) -> Any:
    value = getattr(msg, fd.name)
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        value_fd = fd.message_type.fields_by_name["value"]
        if value_fd.message_type is not None:
            return {k: _convert_message(v) for k, v in value.items()}
        return dict(value)
    if _is_repeated(fd):
        if fd.message_type is not None:
            return [_convert_message(v) for v in value]
        if fd.enum_type is not None:
            return [_enum_value(fd, v) for v in value]
        return list(value)
    if fd.message_type is not None:
        return _convert_message(value) if msg.HasField(fd.name) else None
    if fd.has_presence and not msg.HasField(fd.name):
        return None
    if fd.enum_type is not None:
        return _enum_value(fd, value)
    return value


@dataclasses.dataclass
class TrainingInfo(_Message):
    """How the checkpoint was trained (from its model card)."""

    _proto_name = "embedeval.v1.TrainingInfo"

    #: "infonce", "hard_infonce", "nt_xent", "simple", "hard_simple", or
    #: "other" (a loss of the user's own, named by ``loss_name``).
    loss: str = ""
    #: The contrastive temperature tau (0 when the loss has none).
    temperature: float = 0.0
    dataset: str = ""
    epochs: int = 0
    seed: int = 0
    #: The training run the model is a checkpoint of ("" when none).
    run: str = ""
    #: Its step in the run (an epoch or an iteration count, as the trainer counts).
    step: int = 0
    #: The name of a loss of the user's own (loss "other"; "" otherwise).
    loss_name: str = ""


@dataclasses.dataclass
class InputInfo(_Message):
    """The model's image input and the preprocessing of UINT8 images:
    ``x = (pixel * scale - mean[c]) / std[c]``, laid out as ``layout``."""

    _proto_name = "embedeval.v1.InputInfo"

    name: str = ""
    #: Element type the model takes.
    dtype: DataType = DataType.DATA_TYPE_UNSPECIFIED
    #: Shape with -1 for the batch (and any other dynamic axis).
    shape: List[int] = dataclasses.field(default_factory=list)
    #: "NCHW" or "NHWC".
    layout: str = ""
    scale: float = 0.0
    mean: List[float] = dataclasses.field(default_factory=list)
    std: List[float] = dataclasses.field(default_factory=list)
    #: "bilinear" (a reduced side antialiased) or "none" (images of another
    #: size are refused).
    resize: str = ""
    #: "imagenet", "cifar10", "cifar100", "none", or "" when the card gives the values.
    preset: str = ""
    #: In a report whose dataset's images are not the model's size: their
    #: height and width, and the factor each side was resized by (model side
    #: / image side); 0 where the images were fed at their size.
    image_height: int = 0
    image_width: int = 0
    resize_factor_height: float = 0.0
    resize_factor_width: float = 0.0


@dataclasses.dataclass
class OutputInfo(_Message):
    """One named output of a model and its vector dimension."""

    _proto_name = "embedeval.v1.OutputInfo"

    name: str = ""
    dim: int = 0


@dataclasses.dataclass
class ModelInfo(_Message):
    """A registered model: its card, input, outputs and where it runs."""

    _proto_name = "embedeval.v1.ModelInfo"

    name: str = ""
    #: sha256 of model.onnx, lowercase hex.
    sha256: str = ""
    training: Optional[TrainingInfo] = None
    input: Optional[InputInfo] = None
    outputs: List[OutputInfo] = dataclasses.field(default_factory=list)
    #: The output that holds the embedding.
    embedding_output: str = ""
    #: The output that holds backbone features, when the model has one.
    feature_output: Optional[str] = None
    #: "cpu" or "cuda:N".
    execution_provider: str = ""
    description: str = ""
    size_bytes: int = 0
    #: The card's keys read off the ONNX graph or filled by defaults.
    inferred: List[str] = dataclasses.field(default_factory=list)
    #: What the server had to assume about the model and the user should
    #: check (e.g. no normalisation given: pixels / 255 with nothing
    #: subtracted), each naming the card key or flag that changes it. Every
    #: report of the model carries them too.
    warnings: List[str] = dataclasses.field(default_factory=list)
    #: The model's tags: its card's ``[training]`` keys (but the measured
    #: ``final_loss`` and ``train_seconds``) and its ``[tags]`` table, values
    #: as text (numbers as written: ``"0.2"``, ``"300"``). Sweeps are read
    #: along them (``list_models(tags=...)``, ``compare(tags=..., by=...)``).
    tags: Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def embedding_dim(self) -> int:
        """Dimension of the embedding output (0 when unknown)."""
        return next((o.dim for o in self.outputs if o.name == self.embedding_output), 0)


@dataclasses.dataclass
class SkippedModel(_Message):
    """A model folder that did not load, and why."""

    _proto_name = "embedeval.v1.SkippedModel"

    name: str = ""
    reason: str = ""


class ModelList(List[ModelInfo]):
    """The models that loaded (a list, sorted by name); ``skipped`` holds the
    folders that did not load, with their reason."""

    skipped: List[SkippedModel]

    def __init__(self, models: Iterable[ModelInfo] = (), skipped: Optional[Iterable[SkippedModel]] = None) -> None:
        super().__init__(models)
        self.skipped = list(skipped or [])

    def names(self) -> List[str]:
        """The models' names."""
        return [m.name for m in self]


@dataclasses.dataclass
class SplitInfo(_Message):
    """A named split and its number of images."""

    _proto_name = "embedeval.v1.SplitInfo"

    name: str = ""
    size: int = 0


@dataclasses.dataclass
class DatasetInfo(_Message):
    """A registered dataset."""

    _proto_name = "embedeval.v1.DatasetInfo"

    name: str = ""
    #: Content hash (sha256 over the dataset's files), lowercase hex.
    id: str = ""
    #: "embedeval-npy" | "cifar10" | "cifar100" | "image-folder".
    format: str = ""
    splits: List[SplitInfo] = dataclasses.field(default_factory=list)
    num_classes: int = 0
    #: Shape of one image: [height, width, channels].
    image_shape: List[int] = dataclasses.field(default_factory=list)
    source: str = ""
    license: str = ""
    #: Side every image of a mixed-size image folder is brought to (0: none).
    image_size: int = 0
    #: Fraction of the resized shorter side the centre crop keeps.
    crop_fraction: float = 0.0
    #: The dataset's default evaluated split and kNN/probe split.
    test_split: str = ""
    train_split: str = ""
    #: The class names by label (label ``i`` is ``class_names[i]``): an
    #: image folder's class folders (sorted), CIFAR-10's label names, the
    #: ``class_names`` of an embedeval-npy manifest; empty where the dataset
    #: names none.
    class_names: List[str] = dataclasses.field(default_factory=list)

    @property
    def split_sizes(self) -> Dict[str, int]:
        """Split name to number of images."""
        return {s.name: s.size for s in self.splits}


#: The augmentation recipes the server knows (``Augmentation.recipe``).
AUGMENTATION_RECIPES = ("simclr", "instdisc", "none")


@dataclasses.dataclass
class Augmentation(_Message):
    """How the positive view of each test image is made (for the alignment
    and the positive similarity), seeded by ``MetricSpec.augmentation_seed``.
    ``None`` takes the recipe's value (in brackets); reports echo it filled in.

    ``recipe`` is "simclr" (Chen et al. 2020: random resized crop, flip,
    colour jitter with p 0.8, grayscale) [the default], "instdisc" (Wu et al.
    2018: the same with jitter always applied) or "none" (the view is the
    image itself: alignment 0, positive similarity 1). For one-channel
    images of at most 32 x 32 (digits), "simclr" and "instdisc" are the
    zoo's training augmentation: a random affine warp and Gaussian noise.
    """

    _proto_name = "embedeval.v1.Augmentation"

    #: "simclr", "instdisc" or "none" ("": the server's default, "simclr").
    recipe: str = ""
    #: Smallest area of the random resized crop, a fraction of the image [0.2].
    crop_scale_min: Optional[float] = None
    #: Largest area of the random resized crop [1.0].
    crop_scale_max: Optional[float] = None
    #: Strength of the brightness, contrast and saturation jitter [0.4].
    jitter: Optional[float] = None
    #: Probability of turning the view grey [0.2].
    grayscale: Optional[float] = None
    #: Probability of a horizontal flip [0.5].
    flip: Optional[float] = None
    #: Probability of a Gaussian blur (sigma 0.1-2.0) [0].
    blur: Optional[float] = None

    def to_proto(self) -> evaluation_pb2.Augmentation:
        """The ``embedeval.v1.Augmentation`` message (unset fields left unset)."""
        from ._proto import evaluation_pb2

        if not isinstance(self.recipe, str):
            raise TypeError(f"Augmentation.recipe must be a string, got {type(self.recipe).__name__}")
        msg = evaluation_pb2.Augmentation(recipe=self.recipe)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "recipe" or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"Augmentation.{f.name} must be a number or None, got {value!r}")
            setattr(msg, f.name, float(value))
        return msg


#: What ``augmentation=`` takes: an :class:`Augmentation`, a dict of its
#: fields, a recipe name ("simclr", "instdisc", "none") or the message.
AugmentationLike = Union[Augmentation, Mapping[str, Any], str, Message]


def _augmentation(value: AugmentationLike) -> Augmentation:
    """`value` as an :class:`Augmentation` (see :data:`AugmentationLike`)."""
    if isinstance(value, Augmentation):
        return value
    if isinstance(value, str):
        return Augmentation(recipe=value)
    if isinstance(value, Message):
        if value.DESCRIPTOR.full_name != Augmentation._proto_name:
            raise TypeError(f"augmentation must be an Augmentation, got a {value.DESCRIPTOR.full_name}")
        return Augmentation.from_proto(value)
    if isinstance(value, Mapping):
        known = {f.name for f in dataclasses.fields(Augmentation)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise TypeError(f"unknown Augmentation fields {unknown}; the fields are {sorted(known)}")
        return Augmentation(**value)
    raise TypeError(
        "augmentation must be an Augmentation, a dict of its fields or a recipe name "
        f"({', '.join(map(repr, AUGMENTATION_RECIPES))}), got {type(value).__name__}"
    )


def augmentation_to_proto(value: AugmentationLike) -> evaluation_pb2.Augmentation:
    """An Augmentation message from an :class:`Augmentation`, a dict of its
    fields (``{"recipe": "simclr", "blur": 0.5}``), a recipe name
    (``"none"``) or a message."""
    if isinstance(value, Message) and value.DESCRIPTOR.full_name == Augmentation._proto_name:
        return cast("evaluation_pb2.Augmentation", value)
    return _augmentation(value).to_proto()


@dataclasses.dataclass
class MetricSpec(_Message):
    """What to measure and with which settings; ``None`` takes the server's
    default (in brackets). Reports echo the settings they used, filled in."""

    _proto_name = "embedeval.v1.MetricSpec"

    #: t of the uniformity loss [2.0].
    uniformity_t: Optional[float] = None
    #: k of the nearest-negative and penalty profiles [10].
    neighbors_k: Optional[int] = None
    #: Seed of the positive views [0].
    augmentation_seed: Optional[int] = None
    #: tau of the relative-penalty profile [the model's training tau].
    penalty_temperature: Optional[float] = None
    #: k of the weighted kNN [200].
    knn_k: Optional[int] = None
    #: T of the weighted kNN vote [0.1].
    knn_temperature: Optional[float] = None
    #: Inverse L2 penalty of the linear probe [1.0].
    linear_c: Optional[float] = None
    #: Most L-BFGS iterations of the linear probe [1000].
    linear_max_iter: Optional[int] = None
    #: Gradient tolerance of the linear probe [1e-4].
    linear_tol: Optional[float] = None
    #: Exponent alpha of the alignment [2.0].
    alignment_alpha: Optional[float] = None
    #: Above this many test rows uniformity is estimated from sampled pairs [50000].
    uniformity_exact_max_rows: Optional[int] = None
    #: Pairs drawn by the sampled uniformity estimator [1000000].
    uniformity_samples: Optional[int] = None
    #: How the positive views of the alignment and the positive similarity
    #: are made [recipe "simclr" with its defaults]. An :class:`Augmentation`;
    #: a recipe name ("simclr", "instdisc", "none") or a dict of its fields
    #: is turned into one.
    augmentation: Optional[Augmentation] = None
    #: A split of the dataset whose images are positive views of the test
    #: split's images, row for row (same length, same labels): the user's own
    #: positives, used instead of ``augmentation`` ("": augment).
    positives_split: str = ""
    #: Fraction of the train rows the linear probe is fitted on, in (0, 1]
    #: [1.0]: a stratified subset (the 1% and 10% protocols of SimCLR and
    #: BYOL). Each class keeps max(1, floor(fraction x its rows + 0.5)) rows,
    #: those with the smallest keys splitmix64(splitmix64(seed) ^ row)
    #: (ties: the smaller row).
    linear_train_fraction: Optional[float] = None
    #: Seed of the probe's train subset [0].
    linear_train_seed: Optional[int] = None
    skip_uniformity: bool = False
    skip_alignment: bool = False
    skip_tolerance: bool = False
    skip_nearest_negatives: bool = False
    skip_penalty: bool = False
    skip_effective_rank: bool = False
    skip_knn: bool = False
    skip_linear: bool = False
    #: Leave out the per-class diagnostics (``report.per_class`` is then ``None``).
    skip_per_class: bool = False

    def __post_init__(self) -> None:
        if self.augmentation is not None:
            self.augmentation = _augmentation(self.augmentation)

    def to_proto(self) -> evaluation_pb2.MetricSpec:
        """The ``embedeval.v1.MetricSpec`` message (unset fields left unset)."""
        from ._proto import evaluation_pb2

        msg = evaluation_pb2.MetricSpec()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "augmentation":
                msg.augmentation.CopyFrom(augmentation_to_proto(value))
                msg.augmentation.SetInParent()
            else:
                setattr(msg, f.name, value)
        return msg


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
        ``knn_top1`` and ``linear_top1`` (missing where the kNN or the probe
        was skipped), as a ``pandas.DataFrame`` (needs pandas:
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


@dataclasses.dataclass
class ExcludedModel(_Message):
    """A model a comparison left out, and why: ``kind`` is "does not fit"
    (its input does not take the dataset's images) or "duplicate" (the same
    ONNX file and preprocessing as ``same_as``, evaluated in its place)."""

    _proto_name = "embedeval.v1.ExcludedModel"

    model: str = ""
    #: "does not fit" or "duplicate".
    kind: str = ""
    #: Said for people.
    reason: str = ""
    #: For a duplicate: the model evaluated in its place.
    same_as: str = ""


#: z of a two-sided 95% interval (the server's ``wilson95``).
_Z95 = 1.959963984540054


def _wilson95(p_hat: float, n: int) -> Tuple[float, float]:
    """The 95% Wilson score interval (Wilson 1927) of a proportion `p_hat`
    over `n` trials, clamped to [0, 1], as the server computes it; (0, 1)
    when `n` is 0."""
    if n == 0:
        return 0.0, 1.0
    z2 = _Z95 * _Z95
    denom = 1.0 + z2 / n
    centre = (p_hat + z2 / (2.0 * n)) / denom
    half = _Z95 / denom * float(np.sqrt(p_hat * (1.0 - p_hat) / n + z2 / (4.0 * n * n)))
    return max(centre - half, 0.0), min(centre + half, 1.0)


@dataclasses.dataclass
class AccuracyInterval(_Message):
    """A top-1 accuracy of one model with its 95% Wilson interval over the
    test rows (``Recommendation.best_knn`` and ``best_linear``)."""

    _proto_name = "embedeval.v1.AccuracyInterval"

    model: str = ""
    #: The model's training tau.
    temperature: float = 0.0
    top1: float = 0.0
    #: Lower and upper bound of the 95% Wilson interval.
    lo: float = 0.0
    hi: float = 0.0


@dataclasses.dataclass
class ClassTolerance(_Message):
    """One class's tolerance at the largest and the smallest tau of a
    sweep (``Recommendation.tolerance_falls``)."""

    _proto_name = "embedeval.v1.ClassTolerance"

    label: int = 0
    at_largest_tau: float = 0.0
    at_smallest_tau: float = 0.0
    #: ``at_largest_tau - at_smallest_tau``.
    fall: float = 0.0
    #: The class's name (``PerClass.names``); empty where the dataset names none.
    name: str = ""


#: The columns of :meth:`Recommendation.frame`, in order.
RECOMMENDATION_COLUMNS = (
    "model", "temperature", "uniformity", "tolerance",
    "knn_top1", "knn_lo", "knn_hi", "linear_top1", "linear_lo", "linear_hi",
    "on_front", "knee", "tied", "recommended",
)


@dataclasses.dataclass
class Recommendation(_Message):
    """Which tau to keep among the models of one loss (Wang & Liu's
    uniformity-tolerance dilemma), as the server works it out over the
    comparison's COMPLETED rows of the loss that have both uniformity and
    tolerance.

    ``front`` is the Pareto front of (uniformity, tolerance), both
    higher-is-better, by increasing uniformity; ``knee`` its point farthest
    beyond the chord between its two ends towards the ideal corner (both
    axes scaled to [0, 1] over the front: the largest sum of scaled
    coordinates, the smaller tau on a tie); ``best_knn`` and ``best_linear`` the most accurate models with
    their 95% Wilson intervals over the test rows (``None`` where no row has
    that probe). ``recommended`` is the most accurate model by the linear
    probe (the kNN where the probe was skipped) when no other model's
    interval reaches its; otherwise accuracy cannot tell the models in
    ``tied`` apart and the one of them nearest the knee is recommended.
    ``reason`` says which, in one sentence. A recommendation from
    ``comparison.recommendations`` knows the comparison's rows:
    :meth:`frame` tabulates them.
    """

    _proto_name = "embedeval.v1.Recommendation"

    loss: str = ""
    #: Models on the front, by increasing uniformity.
    front: List[str] = dataclasses.field(default_factory=list)
    #: The model at the front's knee ("" when the front is empty).
    knee: str = ""
    #: The best kNN top-1 with its interval (``None`` without the kNN).
    best_knn: Optional[AccuracyInterval] = None
    #: The best linear-probe top-1 with its interval (``None`` without the probe).
    best_linear: Optional[AccuracyInterval] = None
    #: Models whose 95% interval reaches the best one's (the best included;
    #: by the linear probe, or the kNN where the probe was skipped).
    tied: List[str] = dataclasses.field(default_factory=list)
    #: The model to keep, and its training tau.
    recommended: str = ""
    recommended_temperature: float = 0.0
    #: Why, in one sentence (it starts with "τ = " and the recommended tau).
    reason: str = ""
    #: The classes whose tolerance falls most from the largest tau to the
    #: smallest (where both rows have per-class diagnostics), largest fall
    #: first, at most 10.
    tolerance_falls: List[ClassTolerance] = dataclasses.field(default_factory=list)

    #: The comparison's rows, set by :class:`Comparison` (not a field).
    _rows = None  # type: Optional[List[EvaluationReport]]

    def frame(self, rows: Optional[List[EvaluationReport]] = None) -> Any:
        """One row per COMPLETED model of the loss, by increasing tau (of
        the comparison it came from, or of `rows`): ``model``,
        ``temperature``, ``uniformity``, ``tolerance``, ``knn_top1`` and
        ``linear_top1`` each with its 95% Wilson interval (``knn_lo``,
        ``knn_hi``, ``linear_lo``, ``linear_hi``; missing where the probe was
        skipped), and whether the model is ``on_front``, the ``knee``,
        ``tied`` with the best (the best included), the ``recommended`` one,
        as a ``pandas.DataFrame`` (needs pandas: ``pip install
        embedeval-client[pandas]``). ValueError for a recommendation that
        did not come from a comparison when `rows` is not given."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError(
                "Recommendation.frame needs pandas: pip install pandas (or embedeval-client[pandas])"
            ) from e
        if rows is None:
            rows = self._rows
        if rows is None:
            raise ValueError(
                "this Recommendation does not know the comparison's rows (take it from "
                "comparison.recommendations or comparison.recommend()), or pass them: frame(rows=comparison.rows)"
            )
        mine = sorted(
            (r for r in rows if r.loss == self.loss and r.status == EvaluationStatus.COMPLETED),
            key=lambda r: r.temperature,
        )
        nan = float("nan")

        def measured(value: Optional[float]) -> float:
            return nan if value is None else float(value)

        def interval(result: Any, n: int) -> Tuple[float, float, float]:
            if result is None:
                return nan, nan, nan
            return (float(result.top1), *_wilson95(float(result.top1), n))

        table: Dict[str, List[Any]] = {c: [] for c in RECOMMENDATION_COLUMNS}
        for r in mine:
            knn = interval(r.knn, r.num_test)
            linear = interval(r.linear, r.num_test)
            values = (
                r.model, float(r.temperature), measured(r.uniformity), measured(r.tolerance),
                *knn, *linear,
                r.model in self.front, r.model == self.knee, r.model in self.tied, r.model == self.recommended,
            )
            for column, value in zip(RECOMMENDATION_COLUMNS, values):
                table[column].append(value)
        frame = pd.DataFrame(table, columns=list(RECOMMENDATION_COLUMNS))
        for column in ("on_front", "knee", "tied", "recommended"):
            frame[column] = frame[column].astype(bool)
        return frame


#: The headline metrics a :class:`TagGroup` summarises, in the server's
#: order (the column names of :meth:`EvaluationReport.to_row`;
#: ``nn1_similarity`` is ``nearest_negative_similarity[0]``).
GROUP_METRICS = (
    "uniformity", "tolerance", "alignment", "positive_similarity", "nn1_similarity",
    "penalty_entropy", "effective_rank", "knn_top1", "linear_top1",
)


@dataclasses.dataclass
class MetricSummary(_Message):
    """One metric over the models of a :class:`TagGroup`: how many had it,
    its mean, sample standard deviation and the half-width of the 95%
    interval of the mean (Student's t)."""

    _proto_name = "embedeval.v1.MetricSummary"

    #: One of :data:`GROUP_METRICS`.
    metric: str = ""
    #: Models with a value of it (COMPLETED, the metric computed).
    n: int = 0
    mean: float = 0.0
    #: Sample standard deviation (divisor n - 1); 0 when n = 1.
    std: float = 0.0
    #: Half-width of the 95% interval of the mean:
    #: ``t(0.975, n - 1) * std / sqrt(n)``; 0 when n = 1.
    interval: float = 0.0

    @property
    def lo(self) -> float:
        """Lower end of the 95% interval of the mean (``mean - interval``)."""
        return self.mean - self.interval

    @property
    def hi(self) -> float:
        """Upper end of the 95% interval of the mean (``mean + interval``)."""
        return self.mean + self.interval


@dataclasses.dataclass
class TagGroup(_Message):
    """The models of a comparison that share every tag but the one it
    aggregates over (``compare(..., by="seed")``: the seeds of one setting),
    summarised per metric: the seed-averaged rows papers print.

    ``metrics`` holds one :class:`MetricSummary` per metric of
    :data:`GROUP_METRICS` that at least one COMPLETED model of the group
    has, in that order; :meth:`metric` finds one by name and :meth:`to_row`
    flattens the group for a table (``Comparison.groups_to_pandas()``)."""

    _proto_name = "embedeval.v1.TagGroup"

    #: The tags the group's models share (all but the aggregated one), with
    #: their loss and tau where their tags do not say them.
    tags: Dict[str, str] = dataclasses.field(default_factory=dict)
    #: The group's models, in the order of the comparison's rows.
    models: List[str] = dataclasses.field(default_factory=list)
    #: Each model's value of the aggregated tag ("" for a model without it).
    values: List[str] = dataclasses.field(default_factory=list)
    #: One summary per metric the models have, in :data:`GROUP_METRICS` order.
    metrics: List[MetricSummary] = dataclasses.field(default_factory=list)

    def metric(self, name: str) -> Optional[MetricSummary]:
        """The summary of metric `name` (one of :data:`GROUP_METRICS`);
        ``None`` when no completed model of the group has it. ValueError
        for a name that is not a group metric."""
        if name not in GROUP_METRICS:
            raise ValueError(f"unknown metric {name!r}: one of {', '.join(GROUP_METRICS)}")
        return next((m for m in self.metrics if m.metric == name), None)

    def to_row(self, by: str = "values") -> Dict[str, Any]:
        """The group as one flat row: its tags, ``models`` (how many),
        `by` (the aggregated tag's values joined by ","), then for each
        metric of :data:`GROUP_METRICS` ``<metric>_mean``, ``_std``,
        ``_interval`` (NaN where no model had it) and ``_n``."""
        nan = float("nan")
        row: Dict[str, Any] = dict(self.tags)
        row["models"] = len(self.models)
        row[by or "values"] = ",".join(self.values)
        for name in GROUP_METRICS:
            m = self.metric(name)
            row[f"{name}_mean"] = m.mean if m is not None else nan
            row[f"{name}_std"] = m.std if m is not None else nan
            row[f"{name}_interval"] = m.interval if m is not None else nan
            row[f"{name}_n"] = m.n if m is not None else 0
        return row


@dataclasses.dataclass
class Comparison(_Message):
    """Several models on one dataset: one report per model evaluated
    (sorted by loss then temperature), the models left out in ``excluded``
    (each once, with why: its input does not take the dataset's images, or
    it duplicates another model), two SVG plots, and which tau to keep per
    loss in ``recommendations`` (:meth:`recommend` gives one). It is stored
    under ``id``: ``client.get_comparison(id)`` gives it back and
    ``client.render_figure(id, ...)`` draws its figures. Asked for ``by`` a
    tag (``compare(..., by="seed")``), its ``groups`` summarise the models
    that share every other tag (:class:`TagGroup`;
    :meth:`groups_to_pandas` tabulates them)."""

    _proto_name = "embedeval.v1.Comparison"

    rows: List[EvaluationReport] = dataclasses.field(default_factory=list)
    #: Uniformity against tolerance, tau on a colour scale (SVG, screen size).
    plot_svg: bytes = b""
    #: kNN and linear accuracy against tau (SVG, screen size).
    accuracy_plot_svg: bytes = b""
    #: The comparison's id (for ``get_comparison`` and ``render_figure``).
    id: str = ""
    #: The models left out, each once with its reason (not stored as reports).
    excluded: List[ExcludedModel] = dataclasses.field(default_factory=list)
    #: Which tau to keep, one per loss with completed rows (empty from a
    #: server older than them).
    recommendations: List[Recommendation] = dataclasses.field(default_factory=list)
    #: The tag the groups aggregate over ("" when none was asked for).
    by: str = ""
    #: With ``by``: one group per set of models sharing every tag but
    #: ``by`` (and their loss and tau), in the order of their first row.
    groups: List[TagGroup] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        # Each recommendation tabulates the comparison's rows (Recommendation.frame).
        for rec in self.recommendations:
            rec._rows = self.rows

    @classmethod
    def from_proto(cls, msg: Message) -> Comparison:
        m = cast("evaluation_pb2.Comparison", msg)
        return cls(
            rows=[EvaluationReport.from_proto(r) for r in m.rows],
            plot_svg=m.plot_svg.encode("utf-8"),
            accuracy_plot_svg=m.accuracy_plot_svg.encode("utf-8"),
            id=m.id,
            excluded=[ExcludedModel.from_proto(e) for e in m.excluded],
            recommendations=[Recommendation.from_proto(r) for r in m.recommendations],
            by=m.by,
            groups=[TagGroup.from_proto(g) for g in m.groups],
        )

    def recommend(self, loss: Optional[str] = None) -> Recommendation:
        """The :class:`Recommendation` for `loss`; without one, the only
        recommendation of the comparison. ValueError, naming the losses that
        have one, for a loss without a recommendation or, without `loss`,
        when there is not exactly one."""
        losses = [r.loss for r in self.recommendations]
        if loss is None:
            if len(self.recommendations) == 1:
                return self.recommendations[0]
            if not self.recommendations:
                raise ValueError(
                    "the comparison has no recommendation (no completed model has both uniformity and tolerance)"
                )
            raise ValueError(
                f"the comparison has a recommendation for each of {len(losses)} losses: "
                f"{', '.join(losses)}; choose one with recommend(loss=...)"
            )
        for rec in self.recommendations:
            if rec.loss == loss:
                return rec
        have = f"the losses with one are {', '.join(losses)}" if losses else "it has none"
        raise ValueError(f"the comparison has no recommendation for loss {loss!r}: {have}")

    def __getitem__(self, model: Union[int, str]) -> EvaluationReport:
        """A row by position or by model name."""
        if isinstance(model, int):
            return self.rows[model]
        for row in self.rows:
            if row.model == model:
                return row
        raise KeyError(model)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[EvaluationReport]:
        return iter(self.rows)

    def to_pandas(self) -> Any:
        """The rows' headline numbers (:meth:`EvaluationReport.to_row`) as a
        ``pandas.DataFrame``, the ``tag.<key>`` columns of all rows after
        them, sorted (missing where a row has no such tag; needs pandas:
        ``pip install embedeval-client[pandas]``)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("Comparison.to_pandas needs pandas: pip install pandas") from e
        rows = [row.to_row() for row in self.rows]
        return pd.DataFrame(rows, columns=_row_columns(list(EvaluationReport().to_row()), rows) if rows else None)

    def groups_to_pandas(self, all_tags: bool = False) -> Any:
        """The groups (one row each, in order, :meth:`TagGroup.to_row`) as a
        ``pandas.DataFrame``: the tags that tell the groups apart (``loss``
        and ``temperature`` always, the latter unless it is ``by``; with
        `all_tags`, every tag), ``models`` (how many), the ``by`` column (the
        aggregated tag's values joined by ","), then ``<metric>_mean``,
        ``_std``, ``_interval`` and ``_n`` for each metric of
        :data:`GROUP_METRICS`. Tag values are text, as the server keeps
        them. Empty (those columns, no rows) without ``by`` (needs pandas:
        ``pip install embedeval-client[pandas]``)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Comparison.groups_to_pandas needs pandas: pip install pandas (or embedeval-client[pandas])"
            ) from e
        by = self.by or "values"
        keys = [k for k in ("loss", "temperature") if k != by]
        for key in sorted({k for g in self.groups for k in g.tags}):
            if key in keys or key == by:
                continue
            first = self.groups[0].tags.get(key)
            if all_tags or any(g.tags.get(key) != first for g in self.groups):
                keys.append(key)
        metrics = [f"{m}_{part}" for m in GROUP_METRICS for part in ("mean", "std", "interval", "n")]
        columns = [*keys, "models", by, *metrics]
        rows = []
        for group in self.groups:
            row = group.to_row(by)
            rows.append({c: row.get(c, "") if c in keys else row[c] for c in columns})
        frame = pd.DataFrame(rows, columns=columns)
        for m in GROUP_METRICS:
            frame[f"{m}_n"] = frame[f"{m}_n"].astype("int64")
        return frame


#: File extension to media type, for :meth:`Figure.save`.
_MEDIA_TYPES = {".svg": "image/svg+xml", ".png": "image/png"}


@dataclasses.dataclass
class Figure(_Message):
    """A figure of a stored comparison or evaluation, drawn by the server
    (``client.render_figure``): an SVG or PNG file. :meth:`save` writes it;
    in Jupyter it shows itself."""

    _proto_name = "embedeval.v1.Figure"

    #: The file: SVG text (UTF-8) or PNG.
    data: bytes = dataclasses.field(default=b"", repr=False)
    #: "image/svg+xml" or "image/png".
    media_type: str = ""
    #: Size in pixels.
    width: int = 0
    height: int = 0
    #: The evaluations drawn (the COMPLETED ones of the id).
    evaluation_ids: List[str] = dataclasses.field(default_factory=list)
    #: The data marks drawn (models, or models x probes, or models x ranks).
    marks: int = 0

    @property
    def format(self) -> str:
        """The file's format by the name ``render_figure`` takes: "svg" or "png"."""
        return "png" if self.media_type == "image/png" else "svg"

    def save(self, path: Union[str, os.PathLike[str]]) -> Path:
        """Writes the file to `path`; returns it. A path ending in .svg or
        .png must match the figure's format (ValueError otherwise)."""
        out = Path(path)
        expected = _MEDIA_TYPES.get(out.suffix.lower())
        if expected is not None and self.media_type and expected != self.media_type:
            raise ValueError(
                f"{out.name} names a {out.suffix.lower()[1:]} file but the figure is {self.media_type}: "
                f"render it with format={out.suffix.lower()[1:]!r}"
            )
        out.write_bytes(self.data)
        return out

    def _repr_svg_(self) -> Optional[str]:
        return self.data.decode("utf-8") if self.media_type == "image/svg+xml" else None

    def _repr_png_(self) -> Optional[bytes]:
        return self.data if self.media_type == "image/png" else None

    def to_dict(self) -> Dict[str, Any]:
        """As :meth:`_Message.to_dict`, with ``data`` as base64 (the JSON
        mapping of protobuf bytes)."""
        d = super().to_dict()
        d["data"] = base64.b64encode(self.data).decode("ascii")
        return d


@dataclasses.dataclass
class ComparisonSummary(_Message):
    """A stored comparison without its rows (:meth:`Client.get_comparison`
    gives them)."""

    _proto_name = "embedeval.v1.ComparisonSummary"

    id: str = ""
    dataset: str = ""
    created_at: Optional[_dt.datetime] = None
    #: The models of its rows still stored, in the order of its request.
    models: List[str] = dataclasses.field(default_factory=list)
    num_evaluations: int = 0
    num_excluded: int = 0
    #: The short content ids of the dataset versions its rows were made on.
    dataset_ids: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class RunSummary(_Message):
    """A training run: the models whose cards name it (``[training] run``)."""

    _proto_name = "embedeval.v1.RunSummary"

    name: str = ""
    #: Registered checkpoints.
    checkpoints: int = 0
    first_step: int = 0
    last_step: int = 0
    #: Training loss and tau of its latest checkpoint.
    loss: str = ""
    temperature: float = 0.0


@dataclasses.dataclass
class Checkpoint(_Message):
    """One checkpoint of a run: a registered model and its step."""

    _proto_name = "embedeval.v1.Checkpoint"

    step: int = 0
    #: Its registry name.
    model: str = ""
    model_sha256: str = ""
    #: The latest COMPLETED evaluation of exactly this checkpoint (same
    #: sha256) on the run's dataset; ``None`` when there is none yet.
    report: Optional[EvaluationReport] = None


@dataclasses.dataclass
class RunWarning(_Message):
    """Something about a run's path: ``kind`` is "dimensional_collapse" (the
    effective rank fell below half its peak), "complete_collapse" (every
    image at nearly the same embedding) or "small_tau" (uniformity stopped
    rising while the penalty entropy is near zero, Wang & Liu 2021, Eq. 6)."""

    _proto_name = "embedeval.v1.RunWarning"

    kind: str = ""
    #: The step where it began.
    step: int = 0
    message: str = ""


@dataclasses.dataclass
class Run(_Message):
    """A training run on one dataset (``client.get_run(name, dataset)``): its
    checkpoints in step order, each with its latest COMPLETED report on the
    dataset (``None`` before it is evaluated), and the warnings its path
    raises. Iterating it gives the checkpoints."""

    _proto_name = "embedeval.v1.Run"

    name: str = ""
    dataset: str = ""
    #: In step order.
    checkpoints: List[Checkpoint] = dataclasses.field(default_factory=list)
    warnings: List[RunWarning] = dataclasses.field(default_factory=list)
    #: The checkpoint to keep: the :class:`Recommendation` over the evaluated
    #: checkpoints (named by model; the reason names steps; no
    #: ``tolerance_falls``). ``None`` before a checkpoint with uniformity and
    #: tolerance is evaluated.
    checkpoint_to_keep: Optional[Recommendation] = None

    def __len__(self) -> int:
        return len(self.checkpoints)

    def __iter__(self) -> Iterator[Checkpoint]:
        return iter(self.checkpoints)

    def to_pandas(self) -> Any:
        """One row per checkpoint, in step order: its ``step``, then its
        report's headline numbers (:meth:`EvaluationReport.to_row`; only the
        ``model`` for a checkpoint not evaluated yet, the rest missing), then
        the ``tag.<key>`` columns of all the reports, sorted, as a
        ``pandas.DataFrame`` (needs pandas: ``pip install embedeval-client[pandas]``)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("Run.to_pandas needs pandas: pip install pandas") from e
        rows = [
            {"step": c.step, **(c.report.to_row() if c.report is not None else {"model": c.model})}
            for c in self.checkpoints
        ]
        return pd.DataFrame(rows, columns=_row_columns(["step", *EvaluationReport().to_row()], rows))


_CLASSES: Dict[str, Type[_Message]] = {
    cls._proto_name: cls
    for cls in (
        TrainingInfo,
        InputInfo,
        OutputInfo,
        ModelInfo,
        SkippedModel,
        SplitInfo,
        DatasetInfo,
        Augmentation,
        MetricSpec,
        KnnResult,
        LinearResult,
        Histogram,
        PerClass,
        EvaluationReport,
        Progress,
        Accepted,
        ExcludedModel,
        AccuracyInterval,
        ClassTolerance,
        Recommendation,
        MetricSummary,
        TagGroup,
        Comparison,
        ComparisonSummary,
        Figure,
        RunSummary,
        Checkpoint,
        RunWarning,
        Run,
    )
}

#: The dataclass mirroring each message (full name to class).
MESSAGE_CLASSES: Mapping[str, Type[Any]] = _CLASSES


def spec_to_proto(spec: Union[None, MetricSpec, Mapping[str, Any], Message]) -> Optional[evaluation_pb2.MetricSpec]:
    """A MetricSpec message from a :class:`MetricSpec`, a dict of its fields
    or a message; ``None`` stays ``None`` (the server's defaults). The
    ``augmentation`` of a dataclass or dict may be an :class:`Augmentation`,
    a dict of its fields or a recipe name (``{"augmentation": "none"}``)."""
    if spec is None:
        return None
    if isinstance(spec, MetricSpec):
        return spec.to_proto()
    if isinstance(spec, Message):
        if spec.DESCRIPTOR.full_name != MetricSpec._proto_name:
            raise TypeError(f"spec must be a MetricSpec, got a {spec.DESCRIPTOR.full_name}")
        return cast("evaluation_pb2.MetricSpec", spec)
    if isinstance(spec, Mapping):
        known = {f.name for f in dataclasses.fields(MetricSpec)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise TypeError(f"unknown MetricSpec fields {unknown}; the fields are {sorted(known)}")
        return MetricSpec(**spec).to_proto()
    raise TypeError(f"spec must be a MetricSpec, a dict of its fields or None, got {type(spec).__name__}")
