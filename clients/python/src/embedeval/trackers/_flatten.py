"""A report or a comparison as flat slash-separated names: its scalars,
its settings (the config) and its histograms."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import math
import numbers
import re
from typing import (
    Any,
    Dict,
    FrozenSet,
    List,
    Optional,
    Sequence,
    Union,
)

from ..types import Comparison, EvaluationReport, Histogram, InputInfo, MetricSpec

#: A config value: what every tracker takes as a setting.
ConfigValue = Union[str, int, float, bool]

#: The config keys that change with every evaluation of a model (so not
#: settings of the training run): MLflow gets them as tags (params cannot
#: change), TensorBoard leaves them out of its hparams, W&B out of the run's
#: tags. ``step`` is a checkpoint's tag (``tags/step``: ``[training] step``,
#: e.g. ``evaluate_module(..., step=epoch)``).
PER_EVALUATION_KEYS: FrozenSet[str] = frozenset(
    {"evaluation_id", "model_sha256", "created_at", "status", "warnings", "error", "step"}
)

#: W&B's longest run tag: a longer ``key=value`` is left out of the run's


def _segment(name: Any) -> str:
    """`name` as one segment of a metric name: letters, digits, ``_``,
    ``-`` and ``.`` (every tracker takes them), the rest as ``_``."""
    text = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(name)).strip()
    return text or "_"


def _prefix(prefix: str) -> str:
    """`prefix` as a name prefix: each segment cleaned, ending in ``/``
    (``"val"`` and ``"val/"`` both give ``"val/"``)."""
    parts = [p for p in str(prefix).split("/") if p]
    return "".join(_segment(p) + "/" for p in parts)


def _number(value: Any) -> Optional[float]:
    """`value` as a finite float, or None (absent, NaN or infinite)."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _class_keys(labels: Sequence[int], names: Sequence[str]) -> List[str]:
    """One name segment per class: its name where the dataset names its
    classes (and the names stay distinct once cleaned), else its label."""
    if len(names) == len(labels) and len(names) > 0:
        cleaned = [_segment(n) for n in names]
        if len(set(cleaned)) == len(cleaned):
            return cleaned
    return [str(int(label)) for label in labels]


def report_scalars(report: EvaluationReport, *, per_class: bool = True) -> Dict[str, float]:
    """Every measurement `report` holds, as ``{name: float}`` under the
    names listed in the module's documentation (``knn/top1``,
    ``nearest_negative_similarity/rank_1``, ``timings/knn``, ...). What the
    report does not hold (``None``, a skipped probe, NaN) is left out.
    ``per_class=False`` leaves out the per-class names."""
    out: Dict[str, float] = {}

    def put(name: str, value: Any) -> None:
        number = _number(value)
        if number is not None:
            out[name] = number

    for name in (
        "uniformity",
        "uniformity_loss",
        "alignment",
        "tolerance",
        "positive_similarity",
        "penalty_entropy",
        "effective_negatives",
        "effective_rank",
    ):
        put(name, getattr(report, name))
    if report.uniformity_loss is not None:  # 0 for the exact estimator; meaningless without a loss
        put("uniformity_stderr", report.uniformity_stderr)
    for i, value in enumerate(report.nearest_negative_similarity):
        put(f"nearest_negative_similarity/rank_{i + 1}", value)
    for i, value in enumerate(report.relative_penalty):
        put(f"relative_penalty/rank_{i + 1}", value)
    if report.knn is not None:
        put("knn/top1", report.knn.top1)
        put("knn/top5", report.knn.top5)
    if report.linear is not None:
        put("linear/top1", report.linear.top1)
        put("linear/top5", report.linear.top5)
        put("linear/train_top1", report.linear.train_top1)
        put("linear/iterations", report.linear.iterations)
        put("linear/converged", 1.0 if report.linear.converged else 0.0)
        seconds = getattr(report.linear, "seconds_per_iteration", 0.0)  # 0: a server that does not say
        if seconds:
            put("linear/seconds_per_iteration", seconds)
    retrieval = getattr(report, "retrieval", None)  # None: skipped, or a server without it
    if retrieval is not None:
        put("retrieval/precision_at_1", retrieval.precision_at_1)
        put("retrieval/r_precision", retrieval.r_precision)
        put("retrieval/map_at_r", retrieval.map_at_r)
        for r in retrieval.recall_at_k:
            put(f"retrieval/recall_at_{r.k}", r.recall)
    clustering = getattr(report, "clustering", None)
    if clustering is not None:
        put("clustering/nmi", clustering.nmi)
        put("clustering/ami", clustering.ami)
        put("clustering/objective", clustering.objective)
    for stage, seconds in sorted(report.timings.items()):
        put(f"timings/{_segment(stage)}", seconds)
    pc = report.per_class
    if per_class and pc is not None and pc.classes:
        keys = _class_keys([int(x) for x in pc.labels], pc.names)
        for field in ("tolerance", "knn_top1", "linear_top1", "map_at_r", "r_precision"):
            values = getattr(pc, field)
            if len(values) != len(keys):  # empty: skipped
                continue
            for key, value in zip(keys, values):
                put(f"per_class/{field}/{key}", value)
    return out


def _config_value(value: Any) -> Optional[ConfigValue]:
    """`value` as a config value; None for an absent value or an empty string."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, _dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value if value else None
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


def _put_config(out: Dict[str, ConfigValue], name: str, value: Any) -> None:
    """Sets `name` to `value`; a list becomes ``name/0``, ``name/1``, ..."""
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _put_config(out, f"{name}/{i}", item)
        return
    plain = _config_value(value)
    if plain is not None:
        out[name] = plain


def _message_config(out: Dict[str, ConfigValue], prefix: str, message: Any) -> None:
    """Every field of a dataclass message under `prefix`, nested messages
    under their field's name."""
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if dataclasses.is_dataclass(value):
            _message_config(out, f"{prefix}{f.name}/", value)
        else:
            _put_config(out, f"{prefix}{f.name}", value)


def report_config(report: EvaluationReport) -> Dict[str, ConfigValue]:
    """`report`'s settings and identity as ``{name: str | int | float |
    bool}``: ``evaluation_id``, ``model``, ``model_sha256``, ``dataset``,
    ``dataset_id``, ``loss`` (and ``loss_name``), ``temperature`` (the
    training tau), ``num_test``, ``num_train``, ``embedding_dim``,
    ``status``, ``created_at``, ``test_split``, ``train_split``,
    ``execution_provider``, ``uniformity_estimator``, ``warnings`` (joined
    by "; "), ``error``, ``knn/k``, ``knn/temperature``, ``knn/metric``,
    ``linear/c``, ``linear/feature_output``, ``linear/train_rows``,
    ``retrieval/gallery``, ``retrieval/queries``, ``retrieval/lone_queries``,
    ``clustering/clusters``, ``clustering/iterations``,
    ``clustering/restarts``, ``clustering/seed``,
    ``preprocessing/<field>``,
    ``spec/<field>`` (``spec/augmentation/<field>``) and ``tags/<key>``
    (the report's tags, values as the text they are). Lists become indexed
    names (``preprocessing/mean/0``); empty strings and absent values are
    left out. The keys of :data:`PER_EVALUATION_KEYS` change with every
    evaluation; the rest are the settings."""
    out: Dict[str, ConfigValue] = {}
    for name, value in (
        ("evaluation_id", report.id),
        ("model", report.model),
        ("model_sha256", report.model_sha256),
        ("dataset", report.dataset),
        ("dataset_id", report.dataset_id),
        ("loss", report.loss),
        ("loss_name", report.loss_name),
        ("temperature", report.temperature),
        ("num_test", report.num_test),
        ("num_train", report.num_train),
        ("embedding_dim", report.embedding_dim),
        ("status", report.status),
        ("created_at", report.created_at),
        ("test_split", report.test_split),
        ("train_split", report.train_split),
        ("execution_provider", report.execution_provider),
        ("uniformity_estimator", report.uniformity_estimator),
        ("warnings", "; ".join(report.warnings)),
        ("error", report.error),
    ):
        _put_config(out, name, value)
    if report.knn is not None:
        _put_config(out, "knn/k", report.knn.k)
        _put_config(out, "knn/temperature", report.knn.temperature)
        _put_config(out, "knn/metric", report.knn.metric)
    if report.linear is not None:
        _put_config(out, "linear/c", report.linear.c)
        _put_config(out, "linear/feature_output", report.linear.feature_output)
        train_rows = getattr(report.linear, "train_rows", 0)  # 0: a server that does not say
        if train_rows:
            _put_config(out, "linear/train_rows", train_rows)
    retrieval = getattr(report, "retrieval", None)
    if retrieval is not None:
        _put_config(out, "retrieval/gallery", retrieval.gallery)
        _put_config(out, "retrieval/queries", retrieval.queries)
        _put_config(out, "retrieval/lone_queries", retrieval.lone_queries)
    clustering = getattr(report, "clustering", None)
    if clustering is not None:
        for name in ("clusters", "iterations", "restarts", "seed"):
            _put_config(out, f"clustering/{name}", getattr(clustering, name))
    if isinstance(report.preprocessing, InputInfo):
        _message_config(out, "preprocessing/", report.preprocessing)
    if isinstance(report.spec, MetricSpec):
        _message_config(out, "spec/", report.spec)
    for key, value in sorted(report.tags.items()):
        _put_config(out, f"tags/{_segment(key)}", value)
    return out


def _shared_tags(reports: Sequence[EvaluationReport]) -> Dict[str, str]:
    """The tags every one of `reports` has with one value (none for no reports)."""
    if not reports:
        return {}
    first = reports[0].tags
    return {k: v for k, v in sorted(first.items()) if all(r.tags.get(k) == v for r in reports[1:])}


def report_histograms(report: EvaluationReport) -> Dict[str, Histogram]:
    """`report`'s histograms by name: ``histograms/positive``,
    ``histograms/negative_rank_1``, ... (bins of equal width over
    ``[lo, hi]``)."""
    return {f"histograms/{_segment(h.name)}": h for h in report.histograms if h.counts}


def comparison_scalars(comparison: Comparison, *, per_class: bool = True) -> Dict[str, float]:
    """Each row's :func:`report_scalars` under its model
    (``<model>/knn/top1``), and ``recommended_temperature/<loss>``: the tau
    recommended for each loss."""
    out: Dict[str, float] = {}
    for row in comparison.rows:
        model = _segment(row.model)
        out.update({f"{model}/{k}": v for k, v in report_scalars(row, per_class=per_class).items()})
    for rec in comparison.recommendations:
        if rec.recommended:
            out[f"recommended_temperature/{_segment(rec.loss)}"] = float(rec.recommended_temperature)
    return out


def comparison_config(comparison: Comparison) -> Dict[str, ConfigValue]:
    """``comparison_id``, each row's :func:`report_config` under its model
    (``<model>/temperature``), ``recommended/<loss>`` (the model to keep)
    and ``excluded/<model>`` (why the comparison left it out)."""
    out: Dict[str, ConfigValue] = {}
    _put_config(out, "comparison_id", comparison.id)
    for row in comparison.rows:
        model = _segment(row.model)
        out.update({f"{model}/{k}": v for k, v in report_config(row).items()})
    for rec in comparison.recommendations:
        _put_config(out, f"recommended/{_segment(rec.loss)}", rec.recommended)
    for ex in comparison.excluded:
        _put_config(out, f"excluded/{_segment(ex.model)}", ex.reason or ex.kind)
    return out
