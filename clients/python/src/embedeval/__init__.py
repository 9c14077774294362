"""Python client of embedeval, the gRPC service that evaluates contrastive
image encoders exported to ONNX (uniformity, tolerance, the nearest-negative
and penalty profiles, weighted kNN and a linear probe).

    import embedeval

    with embedeval.Client("127.0.0.1:50051") as client:
        report = client.evaluate("infonce-t0.5", "digits")
        print(report.uniformity, report.tolerance, report.knn.top1)

See :class:`Client` for every call, :mod:`embedeval.types` for the typed
results, :mod:`embedeval.errors` for the exceptions,
:mod:`embedeval.torch` for evaluating a PyTorch module from a training loop
and :mod:`embedeval.trackers` for logging reports to Weights & Biases,
TensorBoard and MLflow.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:  # written once, in pyproject.toml: the installed distribution's version
    __version__ = _version("embedeval-client")
except PackageNotFoundError:  # pragma: no cover - imported from a source tree, not installed
    __version__ = "0+unknown"

from .client import Client, ComparisonHandle, EvaluationHandle
from .errors import (
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    EmbedevalError,
    EvaluationFailed,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    MalformedReply,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from .types import (
    Accepted,
    AccuracyInterval,
    Augmentation,
    Checkpoint,
    ClassTolerance,
    ClusteringResult,
    Comparison,
    ComparisonSummary,
    DatasetInfo,
    DataType,
    EvaluationReport,
    EvaluationStatus,
    ExcludedModel,
    Figure,
    Histogram,
    InputInfo,
    KnnResult,
    LinearResult,
    MetricSpec,
    MetricSummary,
    ModelInfo,
    ModelList,
    ModelNeighbours,
    NearestImages,
    Neighbour,
    OutputInfo,
    PerClass,
    Progress,
    Projection,
    Projections,
    RecallAtK,
    Recommendation,
    RetrievalResult,
    Run,
    RunSummary,
    RunWarning,
    SkippedModel,
    SplitInfo,
    TagGroup,
    TrainingInfo,
)

__all__ = [
    "__version__",
    "Client",
    "EvaluationHandle",
    "ComparisonHandle",
    "EmbedevalError",
    "NotFound",
    "InvalidArgument",
    "AlreadyExists",
    "ResourceExhausted",
    "FailedPrecondition",
    "Unavailable",
    "Cancelled",
    "DeadlineExceeded",
    "Unauthenticated",
    "PermissionDenied",
    "Internal",
    "MalformedReply",
    "EvaluationFailed",
    "Accepted",
    "AccuracyInterval",
    "ClassTolerance",
    "Augmentation",
    "Checkpoint",
    "Comparison",
    "ComparisonSummary",
    "DatasetInfo",
    "DataType",
    "EvaluationReport",
    "EvaluationStatus",
    "ExcludedModel",
    "Figure",
    "Projection",
    "Projections",
    "NearestImages",
    "ModelNeighbours",
    "Neighbour",
    "Histogram",
    "InputInfo",
    "KnnResult",
    "RecallAtK",
    "RetrievalResult",
    "ClusteringResult",
    "LinearResult",
    "MetricSpec",
    "MetricSummary",
    "ModelInfo",
    "ModelList",
    "OutputInfo",
    "PerClass",
    "Progress",
    "Recommendation",
    "Run",
    "RunSummary",
    "RunWarning",
    "SkippedModel",
    "SplitInfo",
    "TagGroup",
    "TrainingInfo",
]
