"""What an evaluation measures: the metric settings, the augmentation of the
positive views, and the messages made of them."""
from __future__ import annotations

import dataclasses
import numbers
from typing import (
    TYPE_CHECKING,
    Any,
    List,
    Mapping,
    Optional,
    Union,
    cast,
)

from google.protobuf.message import Message

from ._base import _Message

if TYPE_CHECKING:  # the generated messages, named in annotations and casts only
    from .._proto import evaluation_pb2


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
        from .._proto import evaluation_pb2

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
    #: The K of Recall@K [1, 2, 4, 8] (``None`` or empty: the default).
    recall_ks: Optional[List[int]] = None
    #: The gallery the retrieval metrics rank: "train" (the test split
    #: queries the train split) or "test" (the test split against itself,
    #: each query left out) ["train"; "test" without a train split].
    retrieval_gallery: str = ""
    #: Lloyd iterations of the k-means behind NMI and AMI [20].
    kmeans_iterations: Optional[int] = None
    #: Runs of that k-means, the lowest objective kept [1].
    kmeans_restarts: Optional[int] = None
    #: Seed of the k-means [1234].
    kmeans_seed: Optional[int] = None
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
    #: Leave out Precision@1, R-Precision, MAP@R and Recall@K.
    skip_retrieval: bool = False
    #: Leave out NMI and AMI.
    skip_clustering: bool = False

    def __post_init__(self) -> None:
        if self.augmentation is not None:
            self.augmentation = _augmentation(self.augmentation)

    def to_proto(self) -> evaluation_pb2.MetricSpec:
        """The ``embedeval.v1.MetricSpec`` message (unset fields left unset)."""
        from .._proto import evaluation_pb2

        msg = evaluation_pb2.MetricSpec()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "augmentation":
                msg.augmentation.CopyFrom(augmentation_to_proto(value))
                msg.augmentation.SetInParent()
            elif f.name == "recall_ks":
                msg.recall_ks.extend(value)
            else:
                setattr(msg, f.name, value)
        return msg


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
