import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import model_pb2 as _model_pb2
from . import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FigureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIGURE_KIND_UNSPECIFIED: _ClassVar[FigureKind]
    UNIFORMITY_TOLERANCE: _ClassVar[FigureKind]
    ACCURACY: _ClassVar[FigureKind]
    NEGATIVES: _ClassVar[FigureKind]
    PENALTY: _ClassVar[FigureKind]
    CLASSES: _ClassVar[FigureKind]
    CONFUSION: _ClassVar[FigureKind]
    PARETO: _ClassVar[FigureKind]

class FigureFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIGURE_FORMAT_UNSPECIFIED: _ClassVar[FigureFormat]
    SVG: _ClassVar[FigureFormat]
    PNG: _ClassVar[FigureFormat]

class FigureSize(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIGURE_SIZE_UNSPECIFIED: _ClassVar[FigureSize]
    SCREEN: _ClassVar[FigureSize]
    COLUMN: _ClassVar[FigureSize]

class ProjectionMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROJECTION_METHOD_UNSPECIFIED: _ClassVar[ProjectionMethod]
    PCA: _ClassVar[ProjectionMethod]
    TSNE: _ClassVar[ProjectionMethod]

class EvaluationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVALUATION_STATUS_UNSPECIFIED: _ClassVar[EvaluationStatus]
    QUEUED: _ClassVar[EvaluationStatus]
    RUNNING: _ClassVar[EvaluationStatus]
    COMPLETED: _ClassVar[EvaluationStatus]
    FAILED: _ClassVar[EvaluationStatus]
    CANCELLED: _ClassVar[EvaluationStatus]
    SKIPPED: _ClassVar[EvaluationStatus]
FIGURE_KIND_UNSPECIFIED: FigureKind
UNIFORMITY_TOLERANCE: FigureKind
ACCURACY: FigureKind
NEGATIVES: FigureKind
PENALTY: FigureKind
CLASSES: FigureKind
CONFUSION: FigureKind
PARETO: FigureKind
FIGURE_FORMAT_UNSPECIFIED: FigureFormat
SVG: FigureFormat
PNG: FigureFormat
FIGURE_SIZE_UNSPECIFIED: FigureSize
SCREEN: FigureSize
COLUMN: FigureSize
PROJECTION_METHOD_UNSPECIFIED: ProjectionMethod
PCA: ProjectionMethod
TSNE: ProjectionMethod
EVALUATION_STATUS_UNSPECIFIED: EvaluationStatus
QUEUED: EvaluationStatus
RUNNING: EvaluationStatus
COMPLETED: EvaluationStatus
FAILED: EvaluationStatus
CANCELLED: EvaluationStatus
SKIPPED: EvaluationStatus

class MetricSpec(_message.Message):
    __slots__ = ("uniformity_t", "neighbors_k", "augmentation_seed", "penalty_temperature", "knn_k", "knn_temperature", "linear_c", "linear_max_iter", "linear_tol", "alignment_alpha", "uniformity_exact_max_rows", "uniformity_samples", "augmentation", "positives_split", "linear_train_fraction", "linear_train_seed", "recall_ks", "retrieval_gallery", "kmeans_iterations", "kmeans_restarts", "kmeans_seed", "skip_uniformity", "skip_alignment", "skip_tolerance", "skip_nearest_negatives", "skip_penalty", "skip_effective_rank", "skip_knn", "skip_linear", "skip_per_class", "skip_retrieval", "skip_clustering")
    UNIFORMITY_T_FIELD_NUMBER: _ClassVar[int]
    NEIGHBORS_K_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_SEED_FIELD_NUMBER: _ClassVar[int]
    PENALTY_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    KNN_K_FIELD_NUMBER: _ClassVar[int]
    KNN_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    LINEAR_C_FIELD_NUMBER: _ClassVar[int]
    LINEAR_MAX_ITER_FIELD_NUMBER: _ClassVar[int]
    LINEAR_TOL_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_ALPHA_FIELD_NUMBER: _ClassVar[int]
    UNIFORMITY_EXACT_MAX_ROWS_FIELD_NUMBER: _ClassVar[int]
    UNIFORMITY_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    AUGMENTATION_FIELD_NUMBER: _ClassVar[int]
    POSITIVES_SPLIT_FIELD_NUMBER: _ClassVar[int]
    LINEAR_TRAIN_FRACTION_FIELD_NUMBER: _ClassVar[int]
    LINEAR_TRAIN_SEED_FIELD_NUMBER: _ClassVar[int]
    RECALL_KS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_GALLERY_FIELD_NUMBER: _ClassVar[int]
    KMEANS_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    KMEANS_RESTARTS_FIELD_NUMBER: _ClassVar[int]
    KMEANS_SEED_FIELD_NUMBER: _ClassVar[int]
    SKIP_UNIFORMITY_FIELD_NUMBER: _ClassVar[int]
    SKIP_ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    SKIP_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    SKIP_NEAREST_NEGATIVES_FIELD_NUMBER: _ClassVar[int]
    SKIP_PENALTY_FIELD_NUMBER: _ClassVar[int]
    SKIP_EFFECTIVE_RANK_FIELD_NUMBER: _ClassVar[int]
    SKIP_KNN_FIELD_NUMBER: _ClassVar[int]
    SKIP_LINEAR_FIELD_NUMBER: _ClassVar[int]
    SKIP_PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    SKIP_RETRIEVAL_FIELD_NUMBER: _ClassVar[int]
    SKIP_CLUSTERING_FIELD_NUMBER: _ClassVar[int]
    uniformity_t: float
    neighbors_k: int
    augmentation_seed: int
    penalty_temperature: float
    knn_k: int
    knn_temperature: float
    linear_c: float
    linear_max_iter: int
    linear_tol: float
    alignment_alpha: float
    uniformity_exact_max_rows: int
    uniformity_samples: int
    augmentation: Augmentation
    positives_split: str
    linear_train_fraction: float
    linear_train_seed: int
    recall_ks: _containers.RepeatedScalarFieldContainer[int]
    retrieval_gallery: str
    kmeans_iterations: int
    kmeans_restarts: int
    kmeans_seed: int
    skip_uniformity: bool
    skip_alignment: bool
    skip_tolerance: bool
    skip_nearest_negatives: bool
    skip_penalty: bool
    skip_effective_rank: bool
    skip_knn: bool
    skip_linear: bool
    skip_per_class: bool
    skip_retrieval: bool
    skip_clustering: bool
    def __init__(self, uniformity_t: _Optional[float] = ..., neighbors_k: _Optional[int] = ..., augmentation_seed: _Optional[int] = ..., penalty_temperature: _Optional[float] = ..., knn_k: _Optional[int] = ..., knn_temperature: _Optional[float] = ..., linear_c: _Optional[float] = ..., linear_max_iter: _Optional[int] = ..., linear_tol: _Optional[float] = ..., alignment_alpha: _Optional[float] = ..., uniformity_exact_max_rows: _Optional[int] = ..., uniformity_samples: _Optional[int] = ..., augmentation: _Optional[_Union[Augmentation, _Mapping]] = ..., positives_split: _Optional[str] = ..., linear_train_fraction: _Optional[float] = ..., linear_train_seed: _Optional[int] = ..., recall_ks: _Optional[_Iterable[int]] = ..., retrieval_gallery: _Optional[str] = ..., kmeans_iterations: _Optional[int] = ..., kmeans_restarts: _Optional[int] = ..., kmeans_seed: _Optional[int] = ..., skip_uniformity: bool = ..., skip_alignment: bool = ..., skip_tolerance: bool = ..., skip_nearest_negatives: bool = ..., skip_penalty: bool = ..., skip_effective_rank: bool = ..., skip_knn: bool = ..., skip_linear: bool = ..., skip_per_class: bool = ..., skip_retrieval: bool = ..., skip_clustering: bool = ...) -> None: ...

class Augmentation(_message.Message):
    __slots__ = ("recipe", "crop_scale_min", "crop_scale_max", "jitter", "grayscale", "flip", "blur")
    RECIPE_FIELD_NUMBER: _ClassVar[int]
    CROP_SCALE_MIN_FIELD_NUMBER: _ClassVar[int]
    CROP_SCALE_MAX_FIELD_NUMBER: _ClassVar[int]
    JITTER_FIELD_NUMBER: _ClassVar[int]
    GRAYSCALE_FIELD_NUMBER: _ClassVar[int]
    FLIP_FIELD_NUMBER: _ClassVar[int]
    BLUR_FIELD_NUMBER: _ClassVar[int]
    recipe: str
    crop_scale_min: float
    crop_scale_max: float
    jitter: float
    grayscale: float
    flip: float
    blur: float
    def __init__(self, recipe: _Optional[str] = ..., crop_scale_min: _Optional[float] = ..., crop_scale_max: _Optional[float] = ..., jitter: _Optional[float] = ..., grayscale: _Optional[float] = ..., flip: _Optional[float] = ..., blur: _Optional[float] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("model", "dataset", "spec", "detach", "test_split", "train_split", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DETACH_FIELD_NUMBER: _ClassVar[int]
    TEST_SPLIT_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SPLIT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    model: str
    dataset: str
    spec: MetricSpec
    detach: bool
    test_split: str
    train_split: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, model: _Optional[str] = ..., dataset: _Optional[str] = ..., spec: _Optional[_Union[MetricSpec, _Mapping]] = ..., detach: bool = ..., test_split: _Optional[str] = ..., train_split: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class EvaluateEvent(_message.Message):
    __slots__ = ("progress", "report", "accepted")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    progress: _tensor_pb2.Progress
    report: EvaluationReport
    accepted: Accepted
    def __init__(self, progress: _Optional[_Union[_tensor_pb2.Progress, _Mapping]] = ..., report: _Optional[_Union[EvaluationReport, _Mapping]] = ..., accepted: _Optional[_Union[Accepted, _Mapping]] = ...) -> None: ...

class Accepted(_message.Message):
    __slots__ = ("evaluation_ids", "status", "comparison_id", "excluded")
    EVALUATION_IDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_ID_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    evaluation_ids: _containers.RepeatedScalarFieldContainer[str]
    status: EvaluationStatus
    comparison_id: str
    excluded: _containers.RepeatedCompositeFieldContainer[ExcludedModel]
    def __init__(self, evaluation_ids: _Optional[_Iterable[str]] = ..., status: _Optional[_Union[EvaluationStatus, str]] = ..., comparison_id: _Optional[str] = ..., excluded: _Optional[_Iterable[_Union[ExcludedModel, _Mapping]]] = ...) -> None: ...

class WatchEvaluationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class EmbeddingsHeader(_message.Message):
    __slots__ = ("name", "spec", "temperature", "loss", "dataset", "detach", "loss_name")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DETACH_FIELD_NUMBER: _ClassVar[int]
    LOSS_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: MetricSpec
    temperature: float
    loss: str
    dataset: str
    detach: bool
    loss_name: str
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[MetricSpec, _Mapping]] = ..., temperature: _Optional[float] = ..., loss: _Optional[str] = ..., dataset: _Optional[str] = ..., detach: bool = ..., loss_name: _Optional[str] = ...) -> None: ...

class EmbeddingsChunk(_message.Message):
    __slots__ = ("split", "embeddings", "labels")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    split: str
    embeddings: _tensor_pb2.Tensor
    labels: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, split: _Optional[str] = ..., embeddings: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., labels: _Optional[_Iterable[int]] = ...) -> None: ...

class EvaluateEmbeddingsRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: EmbeddingsHeader
    chunk: EmbeddingsChunk
    def __init__(self, header: _Optional[_Union[EmbeddingsHeader, _Mapping]] = ..., chunk: _Optional[_Union[EmbeddingsChunk, _Mapping]] = ...) -> None: ...

class CompareRequest(_message.Message):
    __slots__ = ("models", "dataset", "spec", "detach", "test_split", "train_split", "tags", "by")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DETACH_FIELD_NUMBER: _ClassVar[int]
    TEST_SPLIT_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SPLIT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedScalarFieldContainer[str]
    dataset: str
    spec: MetricSpec
    detach: bool
    test_split: str
    train_split: str
    tags: _containers.ScalarMap[str, str]
    by: str
    def __init__(self, models: _Optional[_Iterable[str]] = ..., dataset: _Optional[str] = ..., spec: _Optional[_Union[MetricSpec, _Mapping]] = ..., detach: bool = ..., test_split: _Optional[str] = ..., train_split: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., by: _Optional[str] = ...) -> None: ...

class CompareEvent(_message.Message):
    __slots__ = ("progress", "comparison", "accepted")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    progress: _tensor_pb2.Progress
    comparison: Comparison
    accepted: Accepted
    def __init__(self, progress: _Optional[_Union[_tensor_pb2.Progress, _Mapping]] = ..., comparison: _Optional[_Union[Comparison, _Mapping]] = ..., accepted: _Optional[_Union[Accepted, _Mapping]] = ...) -> None: ...

class ExcludedModel(_message.Message):
    __slots__ = ("model", "kind", "reason", "same_as")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SAME_AS_FIELD_NUMBER: _ClassVar[int]
    model: str
    kind: str
    reason: str
    same_as: str
    def __init__(self, model: _Optional[str] = ..., kind: _Optional[str] = ..., reason: _Optional[str] = ..., same_as: _Optional[str] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("rows", "plot_svg", "accuracy_plot_svg", "id", "excluded", "recommendations", "by", "groups")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    PLOT_SVG_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_PLOT_SVG_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[EvaluationReport]
    plot_svg: str
    accuracy_plot_svg: str
    id: str
    excluded: _containers.RepeatedCompositeFieldContainer[ExcludedModel]
    recommendations: _containers.RepeatedCompositeFieldContainer[Recommendation]
    by: str
    groups: _containers.RepeatedCompositeFieldContainer[TagGroup]
    def __init__(self, rows: _Optional[_Iterable[_Union[EvaluationReport, _Mapping]]] = ..., plot_svg: _Optional[str] = ..., accuracy_plot_svg: _Optional[str] = ..., id: _Optional[str] = ..., excluded: _Optional[_Iterable[_Union[ExcludedModel, _Mapping]]] = ..., recommendations: _Optional[_Iterable[_Union[Recommendation, _Mapping]]] = ..., by: _Optional[str] = ..., groups: _Optional[_Iterable[_Union[TagGroup, _Mapping]]] = ...) -> None: ...

class TagGroup(_message.Message):
    __slots__ = ("tags", "models", "values", "metrics")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.ScalarMap[str, str]
    models: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedScalarFieldContainer[str]
    metrics: _containers.RepeatedCompositeFieldContainer[MetricSummary]
    def __init__(self, tags: _Optional[_Mapping[str, str]] = ..., models: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Iterable[_Union[MetricSummary, _Mapping]]] = ...) -> None: ...

class MetricSummary(_message.Message):
    __slots__ = ("metric", "n", "mean", "std", "interval")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    metric: str
    n: int
    mean: float
    std: float
    interval: float
    def __init__(self, metric: _Optional[str] = ..., n: _Optional[int] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ..., interval: _Optional[float] = ...) -> None: ...

class Recommendation(_message.Message):
    __slots__ = ("loss", "front", "knee", "best_knn", "best_linear", "tied", "recommended", "recommended_temperature", "reason", "tolerance_falls")
    LOSS_FIELD_NUMBER: _ClassVar[int]
    FRONT_FIELD_NUMBER: _ClassVar[int]
    KNEE_FIELD_NUMBER: _ClassVar[int]
    BEST_KNN_FIELD_NUMBER: _ClassVar[int]
    BEST_LINEAR_FIELD_NUMBER: _ClassVar[int]
    TIED_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FALLS_FIELD_NUMBER: _ClassVar[int]
    loss: str
    front: _containers.RepeatedScalarFieldContainer[str]
    knee: str
    best_knn: AccuracyInterval
    best_linear: AccuracyInterval
    tied: _containers.RepeatedScalarFieldContainer[str]
    recommended: str
    recommended_temperature: float
    reason: str
    tolerance_falls: _containers.RepeatedCompositeFieldContainer[ClassTolerance]
    def __init__(self, loss: _Optional[str] = ..., front: _Optional[_Iterable[str]] = ..., knee: _Optional[str] = ..., best_knn: _Optional[_Union[AccuracyInterval, _Mapping]] = ..., best_linear: _Optional[_Union[AccuracyInterval, _Mapping]] = ..., tied: _Optional[_Iterable[str]] = ..., recommended: _Optional[str] = ..., recommended_temperature: _Optional[float] = ..., reason: _Optional[str] = ..., tolerance_falls: _Optional[_Iterable[_Union[ClassTolerance, _Mapping]]] = ...) -> None: ...

class ClassTolerance(_message.Message):
    __slots__ = ("label", "at_largest_tau", "at_smallest_tau", "fall", "name")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    AT_LARGEST_TAU_FIELD_NUMBER: _ClassVar[int]
    AT_SMALLEST_TAU_FIELD_NUMBER: _ClassVar[int]
    FALL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    label: int
    at_largest_tau: float
    at_smallest_tau: float
    fall: float
    name: str
    def __init__(self, label: _Optional[int] = ..., at_largest_tau: _Optional[float] = ..., at_smallest_tau: _Optional[float] = ..., fall: _Optional[float] = ..., name: _Optional[str] = ...) -> None: ...

class AccuracyInterval(_message.Message):
    __slots__ = ("model", "temperature", "top1", "lo", "hi")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP1_FIELD_NUMBER: _ClassVar[int]
    LO_FIELD_NUMBER: _ClassVar[int]
    HI_FIELD_NUMBER: _ClassVar[int]
    model: str
    temperature: float
    top1: float
    lo: float
    hi: float
    def __init__(self, model: _Optional[str] = ..., temperature: _Optional[float] = ..., top1: _Optional[float] = ..., lo: _Optional[float] = ..., hi: _Optional[float] = ...) -> None: ...

class ListComparisonsRequest(_message.Message):
    __slots__ = ("dataset", "page_size", "page_token")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    page_size: int
    page_token: str
    def __init__(self, dataset: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ComparisonSummary(_message.Message):
    __slots__ = ("id", "dataset", "created_at", "models", "num_evaluations", "num_excluded", "dataset_ids")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NUM_EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    NUM_EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    DATASET_IDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    dataset: str
    created_at: _timestamp_pb2.Timestamp
    models: _containers.RepeatedScalarFieldContainer[str]
    num_evaluations: int
    num_excluded: int
    dataset_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., dataset: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., models: _Optional[_Iterable[str]] = ..., num_evaluations: _Optional[int] = ..., num_excluded: _Optional[int] = ..., dataset_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListComparisonsResponse(_message.Message):
    __slots__ = ("comparisons", "next_page_token")
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    comparisons: _containers.RepeatedCompositeFieldContainer[ComparisonSummary]
    next_page_token: str
    def __init__(self, comparisons: _Optional[_Iterable[_Union[ComparisonSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteComparisonRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteComparisonResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetComparisonRequest(_message.Message):
    __slots__ = ("id", "by")
    ID_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    by: str
    def __init__(self, id: _Optional[str] = ..., by: _Optional[str] = ...) -> None: ...

class RenderFigureRequest(_message.Message):
    __slots__ = ("id", "kind", "format", "size", "x", "group_by", "label", "metric")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: FigureKind
    format: FigureFormat
    size: FigureSize
    x: str
    group_by: str
    label: str
    metric: str
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[FigureKind, str]] = ..., format: _Optional[_Union[FigureFormat, str]] = ..., size: _Optional[_Union[FigureSize, str]] = ..., x: _Optional[str] = ..., group_by: _Optional[str] = ..., label: _Optional[str] = ..., metric: _Optional[str] = ...) -> None: ...

class ProjectEmbeddingsRequest(_message.Message):
    __slots__ = ("models", "comparison_id", "dataset", "split", "max_rows", "method", "seed", "perplexity")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    MAX_ROWS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedScalarFieldContainer[str]
    comparison_id: str
    dataset: str
    split: str
    max_rows: int
    method: ProjectionMethod
    seed: int
    perplexity: float
    def __init__(self, models: _Optional[_Iterable[str]] = ..., comparison_id: _Optional[str] = ..., dataset: _Optional[str] = ..., split: _Optional[str] = ..., max_rows: _Optional[int] = ..., method: _Optional[_Union[ProjectionMethod, str]] = ..., seed: _Optional[int] = ..., perplexity: _Optional[float] = ...) -> None: ...

class Projection(_message.Message):
    __slots__ = ("model", "temperature", "coordinates", "explained_variance", "kl_divergence")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    COORDINATES_FIELD_NUMBER: _ClassVar[int]
    EXPLAINED_VARIANCE_FIELD_NUMBER: _ClassVar[int]
    KL_DIVERGENCE_FIELD_NUMBER: _ClassVar[int]
    model: str
    temperature: float
    coordinates: _containers.RepeatedScalarFieldContainer[float]
    explained_variance: _containers.RepeatedScalarFieldContainer[float]
    kl_divergence: float
    def __init__(self, model: _Optional[str] = ..., temperature: _Optional[float] = ..., coordinates: _Optional[_Iterable[float]] = ..., explained_variance: _Optional[_Iterable[float]] = ..., kl_divergence: _Optional[float] = ...) -> None: ...

class Projections(_message.Message):
    __slots__ = ("dataset", "dataset_id", "split", "rows", "labels", "class_names", "method", "seed", "perplexity", "max_rows", "projections", "svg")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_FIELD_NUMBER: _ClassVar[int]
    MAX_ROWS_FIELD_NUMBER: _ClassVar[int]
    PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    SVG_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    dataset_id: str
    split: str
    rows: _containers.RepeatedScalarFieldContainer[int]
    labels: _containers.RepeatedScalarFieldContainer[int]
    class_names: _containers.RepeatedScalarFieldContainer[str]
    method: ProjectionMethod
    seed: int
    perplexity: float
    max_rows: int
    projections: _containers.RepeatedCompositeFieldContainer[Projection]
    svg: str
    def __init__(self, dataset: _Optional[str] = ..., dataset_id: _Optional[str] = ..., split: _Optional[str] = ..., rows: _Optional[_Iterable[int]] = ..., labels: _Optional[_Iterable[int]] = ..., class_names: _Optional[_Iterable[str]] = ..., method: _Optional[_Union[ProjectionMethod, str]] = ..., seed: _Optional[int] = ..., perplexity: _Optional[float] = ..., max_rows: _Optional[int] = ..., projections: _Optional[_Iterable[_Union[Projection, _Mapping]]] = ..., svg: _Optional[str] = ...) -> None: ...

class NearestImagesRequest(_message.Message):
    __slots__ = ("models", "comparison_id", "dataset", "test_split", "train_split", "row", "k", "pairs")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    TEST_SPLIT_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SPLIT_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedScalarFieldContainer[str]
    comparison_id: str
    dataset: str
    test_split: str
    train_split: str
    row: int
    k: int
    pairs: int
    def __init__(self, models: _Optional[_Iterable[str]] = ..., comparison_id: _Optional[str] = ..., dataset: _Optional[str] = ..., test_split: _Optional[str] = ..., train_split: _Optional[str] = ..., row: _Optional[int] = ..., k: _Optional[int] = ..., pairs: _Optional[int] = ...) -> None: ...

class Neighbour(_message.Message):
    __slots__ = ("row", "label", "similarity")
    ROW_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    row: int
    label: int
    similarity: float
    def __init__(self, row: _Optional[int] = ..., label: _Optional[int] = ..., similarity: _Optional[float] = ...) -> None: ...

class ConfusedPair(_message.Message):
    __slots__ = ("test_row", "train_row", "similarity")
    TEST_ROW_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ROW_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    test_row: int
    train_row: int
    similarity: float
    def __init__(self, test_row: _Optional[int] = ..., train_row: _Optional[int] = ..., similarity: _Optional[float] = ...) -> None: ...

class ClassConfusion(_message.Message):
    __slots__ = ("label", "rows", "confused_with", "share", "pairs")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    CONFUSED_WITH_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    label: int
    rows: int
    confused_with: int
    share: float
    pairs: _containers.RepeatedCompositeFieldContainer[ConfusedPair]
    def __init__(self, label: _Optional[int] = ..., rows: _Optional[int] = ..., confused_with: _Optional[int] = ..., share: _Optional[float] = ..., pairs: _Optional[_Iterable[_Union[ConfusedPair, _Mapping]]] = ...) -> None: ...

class ModelNeighbours(_message.Message):
    __slots__ = ("model", "temperature", "neighbours", "confusions")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    CONFUSIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    temperature: float
    neighbours: _containers.RepeatedCompositeFieldContainer[Neighbour]
    confusions: _containers.RepeatedCompositeFieldContainer[ClassConfusion]
    def __init__(self, model: _Optional[str] = ..., temperature: _Optional[float] = ..., neighbours: _Optional[_Iterable[_Union[Neighbour, _Mapping]]] = ..., confusions: _Optional[_Iterable[_Union[ClassConfusion, _Mapping]]] = ...) -> None: ...

class NearestImagesResponse(_message.Message):
    __slots__ = ("dataset", "dataset_id", "test_split", "train_split", "row", "label", "class_names", "models")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_SPLIT_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SPLIT_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    dataset_id: str
    test_split: str
    train_split: str
    row: int
    label: int
    class_names: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedCompositeFieldContainer[ModelNeighbours]
    def __init__(self, dataset: _Optional[str] = ..., dataset_id: _Optional[str] = ..., test_split: _Optional[str] = ..., train_split: _Optional[str] = ..., row: _Optional[int] = ..., label: _Optional[int] = ..., class_names: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[_Union[ModelNeighbours, _Mapping]]] = ...) -> None: ...

class Figure(_message.Message):
    __slots__ = ("data", "media_type", "width", "height", "evaluation_ids", "marks")
    DATA_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_IDS_FIELD_NUMBER: _ClassVar[int]
    MARKS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    media_type: str
    width: int
    height: int
    evaluation_ids: _containers.RepeatedScalarFieldContainer[str]
    marks: int
    def __init__(self, data: _Optional[bytes] = ..., media_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., evaluation_ids: _Optional[_Iterable[str]] = ..., marks: _Optional[int] = ...) -> None: ...

class KnnResult(_message.Message):
    __slots__ = ("top1", "top5", "k", "temperature", "metric")
    TOP1_FIELD_NUMBER: _ClassVar[int]
    TOP5_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    top1: float
    top5: float
    k: int
    temperature: float
    metric: str
    def __init__(self, top1: _Optional[float] = ..., top5: _Optional[float] = ..., k: _Optional[int] = ..., temperature: _Optional[float] = ..., metric: _Optional[str] = ...) -> None: ...

class LinearResult(_message.Message):
    __slots__ = ("top1", "top5", "train_top1", "c", "iterations", "feature_output", "converged", "train_rows", "seconds_per_iteration")
    TOP1_FIELD_NUMBER: _ClassVar[int]
    TOP5_FIELD_NUMBER: _ClassVar[int]
    TRAIN_TOP1_FIELD_NUMBER: _ClassVar[int]
    C_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CONVERGED_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_PER_ITERATION_FIELD_NUMBER: _ClassVar[int]
    top1: float
    top5: float
    train_top1: float
    c: float
    iterations: int
    feature_output: str
    converged: bool
    train_rows: int
    seconds_per_iteration: float
    def __init__(self, top1: _Optional[float] = ..., top5: _Optional[float] = ..., train_top1: _Optional[float] = ..., c: _Optional[float] = ..., iterations: _Optional[int] = ..., feature_output: _Optional[str] = ..., converged: bool = ..., train_rows: _Optional[int] = ..., seconds_per_iteration: _Optional[float] = ...) -> None: ...

class Histogram(_message.Message):
    __slots__ = ("name", "lo", "hi", "counts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LO_FIELD_NUMBER: _ClassVar[int]
    HI_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    lo: float
    hi: float
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., lo: _Optional[float] = ..., hi: _Optional[float] = ..., counts: _Optional[_Iterable[int]] = ...) -> None: ...

class EvaluationReport(_message.Message):
    __slots__ = ("id", "model", "model_sha256", "dataset", "dataset_id", "temperature", "loss", "num_test", "num_train", "embedding_dim", "uniformity", "uniformity_loss", "alignment", "tolerance", "positive_similarity", "nearest_negative_similarity", "relative_penalty", "penalty_entropy", "effective_rank", "knn", "linear", "spec", "timings", "created_at", "status", "error", "uniformity_estimator", "uniformity_stderr", "effective_negatives", "histograms", "preprocessing", "execution_provider", "test_split", "train_split", "warnings", "loss_name", "per_class", "tags", "retrieval", "clustering")
    class TimingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    NUM_TEST_FIELD_NUMBER: _ClassVar[int]
    NUM_TRAIN_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DIM_FIELD_NUMBER: _ClassVar[int]
    UNIFORMITY_FIELD_NUMBER: _ClassVar[int]
    UNIFORMITY_LOSS_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    NEAREST_NEGATIVE_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_PENALTY_FIELD_NUMBER: _ClassVar[int]
    PENALTY_ENTROPY_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_RANK_FIELD_NUMBER: _ClassVar[int]
    KNN_FIELD_NUMBER: _ClassVar[int]
    LINEAR_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    UNIFORMITY_ESTIMATOR_FIELD_NUMBER: _ClassVar[int]
    UNIFORMITY_STDERR_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_NEGATIVES_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAMS_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TEST_SPLIT_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SPLIT_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    LOSS_NAME_FIELD_NUMBER: _ClassVar[int]
    PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_FIELD_NUMBER: _ClassVar[int]
    CLUSTERING_FIELD_NUMBER: _ClassVar[int]
    id: str
    model: str
    model_sha256: str
    dataset: str
    dataset_id: str
    temperature: float
    loss: str
    num_test: int
    num_train: int
    embedding_dim: int
    uniformity: float
    uniformity_loss: float
    alignment: float
    tolerance: float
    positive_similarity: float
    nearest_negative_similarity: _containers.RepeatedScalarFieldContainer[float]
    relative_penalty: _containers.RepeatedScalarFieldContainer[float]
    penalty_entropy: float
    effective_rank: float
    knn: KnnResult
    linear: LinearResult
    spec: MetricSpec
    timings: _containers.ScalarMap[str, float]
    created_at: _timestamp_pb2.Timestamp
    status: EvaluationStatus
    error: str
    uniformity_estimator: str
    uniformity_stderr: float
    effective_negatives: float
    histograms: _containers.RepeatedCompositeFieldContainer[Histogram]
    preprocessing: _model_pb2.InputInfo
    execution_provider: str
    test_split: str
    train_split: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    loss_name: str
    per_class: PerClass
    tags: _containers.ScalarMap[str, str]
    retrieval: RetrievalResult
    clustering: ClusteringResult
    def __init__(self, id: _Optional[str] = ..., model: _Optional[str] = ..., model_sha256: _Optional[str] = ..., dataset: _Optional[str] = ..., dataset_id: _Optional[str] = ..., temperature: _Optional[float] = ..., loss: _Optional[str] = ..., num_test: _Optional[int] = ..., num_train: _Optional[int] = ..., embedding_dim: _Optional[int] = ..., uniformity: _Optional[float] = ..., uniformity_loss: _Optional[float] = ..., alignment: _Optional[float] = ..., tolerance: _Optional[float] = ..., positive_similarity: _Optional[float] = ..., nearest_negative_similarity: _Optional[_Iterable[float]] = ..., relative_penalty: _Optional[_Iterable[float]] = ..., penalty_entropy: _Optional[float] = ..., effective_rank: _Optional[float] = ..., knn: _Optional[_Union[KnnResult, _Mapping]] = ..., linear: _Optional[_Union[LinearResult, _Mapping]] = ..., spec: _Optional[_Union[MetricSpec, _Mapping]] = ..., timings: _Optional[_Mapping[str, float]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[EvaluationStatus, str]] = ..., error: _Optional[str] = ..., uniformity_estimator: _Optional[str] = ..., uniformity_stderr: _Optional[float] = ..., effective_negatives: _Optional[float] = ..., histograms: _Optional[_Iterable[_Union[Histogram, _Mapping]]] = ..., preprocessing: _Optional[_Union[_model_pb2.InputInfo, _Mapping]] = ..., execution_provider: _Optional[str] = ..., test_split: _Optional[str] = ..., train_split: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., loss_name: _Optional[str] = ..., per_class: _Optional[_Union[PerClass, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ..., retrieval: _Optional[_Union[RetrievalResult, _Mapping]] = ..., clustering: _Optional[_Union[ClusteringResult, _Mapping]] = ...) -> None: ...

class RetrievalResult(_message.Message):
    __slots__ = ("precision_at_1", "r_precision", "map_at_r", "recall_at_k", "gallery", "queries", "lone_queries")
    PRECISION_AT_1_FIELD_NUMBER: _ClassVar[int]
    R_PRECISION_FIELD_NUMBER: _ClassVar[int]
    MAP_AT_R_FIELD_NUMBER: _ClassVar[int]
    RECALL_AT_K_FIELD_NUMBER: _ClassVar[int]
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    LONE_QUERIES_FIELD_NUMBER: _ClassVar[int]
    precision_at_1: float
    r_precision: float
    map_at_r: float
    recall_at_k: _containers.RepeatedCompositeFieldContainer[RecallAtK]
    gallery: str
    queries: int
    lone_queries: int
    def __init__(self, precision_at_1: _Optional[float] = ..., r_precision: _Optional[float] = ..., map_at_r: _Optional[float] = ..., recall_at_k: _Optional[_Iterable[_Union[RecallAtK, _Mapping]]] = ..., gallery: _Optional[str] = ..., queries: _Optional[int] = ..., lone_queries: _Optional[int] = ...) -> None: ...

class RecallAtK(_message.Message):
    __slots__ = ("k", "recall")
    K_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    k: int
    recall: float
    def __init__(self, k: _Optional[int] = ..., recall: _Optional[float] = ...) -> None: ...

class ClusteringResult(_message.Message):
    __slots__ = ("nmi", "ami", "clusters", "iterations", "restarts", "seed", "objective")
    NMI_FIELD_NUMBER: _ClassVar[int]
    AMI_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    nmi: float
    ami: float
    clusters: int
    iterations: int
    restarts: int
    seed: int
    objective: float
    def __init__(self, nmi: _Optional[float] = ..., ami: _Optional[float] = ..., clusters: _Optional[int] = ..., iterations: _Optional[int] = ..., restarts: _Optional[int] = ..., seed: _Optional[int] = ..., objective: _Optional[float] = ...) -> None: ...

class PerClass(_message.Message):
    __slots__ = ("labels", "counts", "tolerance", "knn_top1", "linear_top1", "similarity", "nearest_negative_classes", "nearest_negative_k", "names", "map_at_r", "r_precision")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    KNN_TOP1_FIELD_NUMBER: _ClassVar[int]
    LINEAR_TOP1_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    NEAREST_NEGATIVE_CLASSES_FIELD_NUMBER: _ClassVar[int]
    NEAREST_NEGATIVE_K_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    MAP_AT_R_FIELD_NUMBER: _ClassVar[int]
    R_PRECISION_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedScalarFieldContainer[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    tolerance: _containers.RepeatedScalarFieldContainer[float]
    knn_top1: _containers.RepeatedScalarFieldContainer[float]
    linear_top1: _containers.RepeatedScalarFieldContainer[float]
    similarity: _containers.RepeatedScalarFieldContainer[float]
    nearest_negative_classes: _containers.RepeatedScalarFieldContainer[int]
    nearest_negative_k: int
    names: _containers.RepeatedScalarFieldContainer[str]
    map_at_r: _containers.RepeatedScalarFieldContainer[float]
    r_precision: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, labels: _Optional[_Iterable[int]] = ..., counts: _Optional[_Iterable[int]] = ..., tolerance: _Optional[_Iterable[float]] = ..., knn_top1: _Optional[_Iterable[float]] = ..., linear_top1: _Optional[_Iterable[float]] = ..., similarity: _Optional[_Iterable[float]] = ..., nearest_negative_classes: _Optional[_Iterable[int]] = ..., nearest_negative_k: _Optional[int] = ..., names: _Optional[_Iterable[str]] = ..., map_at_r: _Optional[_Iterable[float]] = ..., r_precision: _Optional[_Iterable[float]] = ...) -> None: ...

class DeleteEvaluationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteEvaluationResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetEvaluationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("model", "dataset", "page_size", "page_token")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    model: str
    dataset: str
    page_size: int
    page_token: str
    def __init__(self, model: _Optional[str] = ..., dataset: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations", "next_page_token")
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[EvaluationReport]
    next_page_token: str
    def __init__(self, evaluations: _Optional[_Iterable[_Union[EvaluationReport, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelEvaluationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelEvaluationResponse(_message.Message):
    __slots__ = ("id", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: EvaluationStatus
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[EvaluationStatus, str]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[RunSummary]
    def __init__(self, runs: _Optional[_Iterable[_Union[RunSummary, _Mapping]]] = ...) -> None: ...

class RunSummary(_message.Message):
    __slots__ = ("name", "checkpoints", "first_step", "last_step", "loss", "temperature")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_STEP_FIELD_NUMBER: _ClassVar[int]
    LAST_STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    name: str
    checkpoints: int
    first_step: int
    last_step: int
    loss: str
    temperature: float
    def __init__(self, name: _Optional[str] = ..., checkpoints: _Optional[int] = ..., first_step: _Optional[int] = ..., last_step: _Optional[int] = ..., loss: _Optional[str] = ..., temperature: _Optional[float] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("name", "dataset")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    name: str
    dataset: str
    def __init__(self, name: _Optional[str] = ..., dataset: _Optional[str] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("step", "model", "model_sha256", "report")
    STEP_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    step: int
    model: str
    model_sha256: str
    report: EvaluationReport
    def __init__(self, step: _Optional[int] = ..., model: _Optional[str] = ..., model_sha256: _Optional[str] = ..., report: _Optional[_Union[EvaluationReport, _Mapping]] = ...) -> None: ...

class RunWarning(_message.Message):
    __slots__ = ("kind", "step", "message")
    KIND_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    step: int
    message: str
    def __init__(self, kind: _Optional[str] = ..., step: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("name", "dataset", "checkpoints", "warnings", "checkpoint_to_keep")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_TO_KEEP_FIELD_NUMBER: _ClassVar[int]
    name: str
    dataset: str
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    warnings: _containers.RepeatedCompositeFieldContainer[RunWarning]
    checkpoint_to_keep: Recommendation
    def __init__(self, name: _Optional[str] = ..., dataset: _Optional[str] = ..., checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[RunWarning, _Mapping]]] = ..., checkpoint_to_keep: _Optional[_Union[Recommendation, _Mapping]] = ...) -> None: ...
