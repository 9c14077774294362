"""Typed results: one dataclass per message of the contract the client returns,
with every field of the message (``tests/test_generated.py`` checks them
against the descriptors), nested messages as dataclasses (``None`` when the
server left them unset), proto3 ``optional`` fields as ``None`` when absent,
timestamps as timezone-aware ``datetime`` and enums as :class:`enum.Enum`
members whose value is the proto name (so ``report.status == "COMPLETED"``
holds). ``to_dict()`` gives plain JSON-ready values.

The classes live in modules by what they describe (``models``, ``datasets``,
``spec``, ``reports``, ``comparisons``, ``figures``, ``runs``; the enums in
``enums``, the conversion in ``_base``); every name is imported from here.
"""
from __future__ import annotations

from typing import Any, Mapping, Type

from ._base import _CLASSES as _CLASSES
from ._base import _convert_message as _convert_message
from ._base import _enum_value as _enum_value
from ._base import _field_value as _field_value
from ._base import _is_repeated as _is_repeated
from ._base import _Message as _Message
from ._base import _plain as _plain
from .comparisons import _Z95 as _Z95
from .comparisons import (
    GROUP_METRICS,
    AccuracyInterval,
    Comparison,
    ExcludedModel,
    MetricSummary,
    Recommendation,
    TagGroup,
)
from .comparisons import RECOMMENDATION_COLUMNS as RECOMMENDATION_COLUMNS
from .comparisons import ClassTolerance as ClassTolerance
from .comparisons import ComparisonSummary as ComparisonSummary
from .comparisons import _wilson95 as _wilson95
from .datasets import DatasetInfo, SplitInfo
from .enums import _ENUMS as _ENUMS
from .enums import DataType, EvaluationStatus
from .figures import _MEDIA_TYPES as _MEDIA_TYPES
from .figures import Figure
from .models import InputInfo, ModelInfo, ModelList, OutputInfo, SkippedModel, TrainingInfo
from .projections import (
    ClassConfusion,
    ConfusedPair,
    ModelNeighbours,
    NearestImages,
    Neighbour,
    Projection,
    Projections,
)
from .reports import TAG_COLUMN_PREFIX as TAG_COLUMN_PREFIX
from .reports import (
    Accepted,
    ClusteringResult,
    EvaluationReport,
    Histogram,
    KnnResult,
    LinearResult,
    PerClass,
    Progress,
    RecallAtK,
    RetrievalResult,
)
from .reports import _empty as _empty
from .reports import _row_columns as _row_columns
from .runs import Checkpoint, Run, RunSummary, RunWarning
from .spec import AUGMENTATION_RECIPES as AUGMENTATION_RECIPES
from .spec import Augmentation, AugmentationLike, MetricSpec
from .spec import _augmentation as _augmentation
from .spec import augmentation_to_proto as augmentation_to_proto
from .spec import spec_to_proto as spec_to_proto

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
    "RecallAtK",
    "RetrievalResult",
    "ClusteringResult",
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
    "Projection",
    "Projections",
    "Neighbour",
    "ConfusedPair",
    "ClassConfusion",
    "ModelNeighbours",
    "NearestImages",
    "RunSummary",
    "Checkpoint",
    "RunWarning",
    "Run",
]


# Every message's dataclass, by its full name (read by _base's conversion).
_CLASSES.update(
    {
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
            RecallAtK,
            RetrievalResult,
            ClusteringResult,
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
            Projection,
            Projections,
            Neighbour,
            ConfusedPair,
            ClassConfusion,
            ModelNeighbours,
            NearestImages,
            RunSummary,
            Checkpoint,
            RunWarning,
            Run,
        )
    }
)

#: The dataclass mirroring each message (full name to class).
MESSAGE_CLASSES: Mapping[str, Type[Any]] = _CLASSES
