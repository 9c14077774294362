"""Logging embedeval results to the experiment trackers a team already
watches: Weights & Biases, TensorBoard and MLflow.

    from embedeval.trackers import log_report

    report = client.evaluate("my-encoder", "digits")
    log_report(report, wandb.run, step=epoch)                  # a wandb Run, or "wandb"
    log_report(report, "tensorboard:runs/my-encoder", step=epoch)
    log_report(report, "mlflow:http://127.0.0.1:5000", step=epoch)

Each tracker is an optional extra, imported only when it is used:
``pip install 'embedeval-client[wandb]'`` (``[tensorboard]``, ``[mlflow]``,
or all three: ``[trackers]``). TensorBoard event files are written with the
``tensorboard`` package alone (no TensorFlow, no PyTorch).

What one report gives (:func:`report_entry`):

* scalars (:func:`report_scalars`), one point per call at its step, under
  stable slash-separated names: ``uniformity``, ``uniformity_loss``,
  ``uniformity_stderr``, ``alignment``, ``tolerance``,
  ``positive_similarity``, ``penalty_entropy``, ``effective_negatives``,
  ``effective_rank``, ``nearest_negative_similarity/rank_1`` ... ``rank_k``,
  ``relative_penalty/rank_1`` ... ``rank_k``, ``knn/top1``, ``knn/top5``,
  ``linear/top1``, ``linear/top5``, ``linear/train_top1``,
  ``linear/iterations``, ``linear/converged`` (1 or 0),
  ``linear/seconds_per_iteration``, ``timings/<stage>``
  (seconds) and, class by class, ``per_class/tolerance/<class>``,
  ``per_class/knn_top1/<class>`` and ``per_class/linear_top1/<class>``.
  What the report does not hold (a skipped metric) is left out, and so is a
  class's NaN tolerance (a class of one row);
* the settings (:func:`report_config`): the evaluation's id, the model, its
  loss and tau, the dataset and splits, the sizes, ``knn/k``, ``linear/c``,
  the preprocessing, every field of the spec (``spec/knn_k``,
  ``spec/augmentation/recipe``, ...) and the report's tags
  (``tags/seed``, ``tags/epochs``, ...), as a W&B config, TensorBoard text
  and hparams, MLflow params; in W&B the tags are also the run's tags
  (``seed=1``);
* the histograms of the positive similarity and of each nearest-negative
  rank (``histograms/positive``, ``histograms/negative_rank_1``, ...): W&B
  and TensorBoard histograms, an MLflow JSON artifact per step;
* figures you pass as PNG (``client.render_figure(report.id, "negatives",
  format="png")``), under ``figures/<name>``: W&B images, TensorBoard
  images, MLflow artifacts ``figures/<name>/step_000003.png``.

A :class:`~embedeval.types.Comparison` is logged row by row, each row's
names under its model (``<model>/knn/top1``), with the recommended model
and tau of each loss.

A tracker of your own is any object with ``log(entry)`` and ``close()``
(:class:`Tracker`); :class:`LogEntry` holds what to log.
"""
from __future__ import annotations

import atexit
import dataclasses
import datetime as _dt
import enum
import io
import math
import numbers
import os
import re
import struct
import tempfile
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    MutableMapping,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
    Union,
    runtime_checkable,
)

from .types import Comparison, EvaluationReport, Figure, Histogram, InputInfo, MetricSpec

__all__ = [
    "ConfigValue",
    "LogEntry",
    "LogTarget",
    "Tracker",
    "WandbTracker",
    "TensorBoardTracker",
    "MlflowTracker",
    "PER_EVALUATION_KEYS",
    "report_scalars",
    "report_config",
    "report_histograms",
    "comparison_scalars",
    "comparison_config",
    "report_entry",
    "log_report",
    "tracker",
]

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
#: tags (it is in the config all the same).
WANDB_MAX_TAG_LENGTH = 64

#: The step metric W&B plots embedeval's names against (see :class:`WandbTracker`).
WANDB_STEP_METRIC = "embedeval/step"

#: MLflow's limits: param values (500 characters on older servers; newer
#: ones take more), tag values, and entities per ``log_batch`` call.
MLFLOW_MAX_PARAM_LENGTH = 500
MLFLOW_MAX_TAG_LENGTH = 5000
_MLFLOW_METRICS_PER_BATCH = 1000
_MLFLOW_PARAMS_PER_BATCH = 100

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------
# Flattening
# --------------------------------------------------------------------------


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
    for stage, seconds in sorted(report.timings.items()):
        put(f"timings/{_segment(stage)}", seconds)
    pc = report.per_class
    if per_class and pc is not None and pc.classes:
        keys = _class_keys([int(x) for x in pc.labels], pc.names)
        for field in ("tolerance", "knn_top1", "linear_top1"):
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


# --------------------------------------------------------------------------
# What a tracker is given
# --------------------------------------------------------------------------


@dataclasses.dataclass
class LogEntry:
    """What one :func:`log_report` call logs, names already prefixed."""

    #: The x of every point (the epoch, say); None: the tracker's last step + 1.
    step: Optional[int] = None
    #: ``{name: value}``: one point each (see :func:`report_scalars`).
    scalars: Dict[str, float] = dataclasses.field(default_factory=dict)
    #: The settings (see :func:`report_config`).
    config: Dict[str, ConfigValue] = dataclasses.field(default_factory=dict)
    #: ``{name: Histogram}`` (see :func:`report_histograms`).
    histograms: Dict[str, Histogram] = dataclasses.field(default_factory=dict)
    #: ``{name: PNG bytes}``, names under ``figures/``.
    figures: Dict[str, bytes] = dataclasses.field(default_factory=dict)
    #: The prefix the names carry ("" or ending in "/").
    prefix: str = ""
    #: The report's tags, ``{key: value}`` without a prefix (a comparison:
    #: those every row has with one value), for trackers that tag a run
    #: (W&B); the config has them too, as ``tags/<key>``.
    tags: Dict[str, str] = dataclasses.field(default_factory=dict)

    def is_per_evaluation(self, key: str) -> bool:
        """Whether config `key` is one of :data:`PER_EVALUATION_KEYS`
        (under the entry's prefix, and a comparison's model)."""
        name = key[len(self.prefix):] if key.startswith(self.prefix) else key
        return name.rsplit("/", 1)[-1] in PER_EVALUATION_KEYS


@runtime_checkable
class Tracker(Protocol):
    """Where entries go: :class:`WandbTracker`, :class:`TensorBoardTracker`,
    :class:`MlflowTracker`, or an object of your own with these methods."""

    def log(self, entry: LogEntry) -> None:
        """Logs `entry` (its scalars at its step)."""

    def close(self) -> None:
        """Flushes and releases what the tracker opened."""


def _check_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step must be an integer >= 0 (or None), got {step!r}")
    return int(step)


class _Steps:
    """The step of an entry: its own, or the last one logged + 1 (0 first)."""

    def __init__(self) -> None:
        self._next = 0

    def _step(self, step: Optional[int]) -> int:
        value = self._next if step is None else _check_step(step)
        self._next = value + 1
        return value

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:  # each tracker closes what it opened
        raise NotImplementedError


def _png_size(data: bytes) -> Tuple[int, int, int]:
    """Width, height and PNG colour type of a PNG file (ValueError otherwise)."""
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height, data[25]


def _figure_bytes(name: str, value: Any) -> bytes:
    """A figure as PNG bytes: bytes, or a :class:`~embedeval.types.Figure`
    rendered as PNG."""
    if isinstance(value, Figure):
        if value.media_type != "image/png":
            raise ValueError(
                f"figure {name!r} is {value.media_type or 'not an image'}: render it with format='png'"
            )
        value = value.data
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise TypeError(f"figure {name!r} must be PNG bytes or an embedeval Figure, got {type(value).__name__}")
    try:
        _png_size(value)
    except ValueError:
        raise ValueError(f"figure {name!r} is not a PNG file (render it with format='png')") from None
    return value


def report_entry(
    result: Union[EvaluationReport, Comparison],
    *,
    step: Optional[int] = None,
    figures: Optional[Mapping[str, Union[bytes, Figure]]] = None,
    prefix: str = "",
    per_class: bool = True,
    histograms: bool = True,
) -> LogEntry:
    """The :class:`LogEntry` of a report or comparison: its scalars, config
    and histograms, and `figures` (``{name: PNG bytes or Figure}``) under
    ``figures/<name>``, every name after `prefix` (``"val"`` gives
    ``val/knn/top1``)."""
    if step is not None:
        step = _check_step(step)
    if isinstance(result, EvaluationReport):
        scalars = report_scalars(result, per_class=per_class)
        config = report_config(result)
        hists = report_histograms(result) if histograms else {}
        tags = _shared_tags([result])
    elif isinstance(result, Comparison):
        scalars = comparison_scalars(result, per_class=per_class)
        config = comparison_config(result)
        tags = _shared_tags(result.rows)
        hists = {}
        if histograms:
            for row in result.rows:
                model = _segment(row.model)
                hists.update({f"{model}/{k}": h for k, h in report_histograms(row).items()})
    else:
        raise TypeError(f"log an EvaluationReport or a Comparison, got {type(result).__name__}")
    p = _prefix(prefix)
    pngs = {f"{p}figures/{_segment(n)}": _figure_bytes(n, v) for n, v in (figures or {}).items()}
    return LogEntry(
        step=step,
        scalars={p + k: v for k, v in scalars.items()},
        config={p + k: v for k, v in config.items()},
        histograms={p + k: h for k, h in hists.items()},
        figures=pngs,
        prefix=p,
        tags=tags,
    )


def _edges(h: Histogram) -> List[float]:
    n = len(h.counts)
    return [h.lo + (h.hi - h.lo) * i / n for i in range(n + 1)]


# --------------------------------------------------------------------------
# Weights & Biases
# --------------------------------------------------------------------------


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError as e:
        raise ImportError("logging to W&B needs wandb: pip install 'embedeval-client[wandb]'") from e
    return wandb


class WandbTracker(_Steps):
    """Logs to a W&B run (``wandb.init()``'s; default: ``wandb.run``).

    Each entry is one ``run.log`` call: the scalars, the histograms
    (``wandb.Histogram``) and the figures (``wandb.Image``), with the step
    as `step_metric` (``embedeval/step``), the x-axis W&B plots these names
    against (``run.define_metric``). So the points land at their step
    whatever else the run logs and at which ``_step`` (per batch, say).
    ``step_metric=None`` passes the step as ``run.log(..., step=)`` instead
    (W&B then drops steps below the run's current one). The config goes to
    ``run.config`` (``allow_val_change``: the last evaluation's values).
    The report's tags are added to the run's tags as ``key=value``
    (``seed=1``), but for :data:`PER_EVALUATION_KEYS` (``step``) and those
    longer than :data:`WANDB_MAX_TAG_LENGTH` characters; a tag whose value
    changes replaces the one this tracker added before, and the run's other
    tags are kept."""

    def __init__(self, run: Any = None, *, step_metric: Optional[str] = WANDB_STEP_METRIC) -> None:
        super().__init__()
        self._wandb = _import_wandb()
        if run is None:
            run = self._wandb.run
            if run is None:
                raise ValueError("no active W&B run: call wandb.init() first, or pass the run")
        self.run = run
        self.step_metric = step_metric
        self._defined: Set[str] = set()
        #: The run tags this tracker added, by the report tag's key.
        self._tagged: Dict[str, str] = {}

    def _define(self, names: Iterable[str]) -> None:
        if self.step_metric is None:
            return
        if not self._defined:
            self.run.define_metric(self.step_metric)
            self._defined.add(self.step_metric)
        for name in names:
            if name not in self._defined:
                self.run.define_metric(name, step_metric=self.step_metric)
                self._defined.add(name)

    def _tag(self, tags: Mapping[str, str]) -> None:
        """Adds ``key=value`` run tags for `tags` (see the class)."""
        wanted = {
            key: f"{key}={value}"
            for key, value in tags.items()
            if key not in PER_EVALUATION_KEYS and 0 < len(f"{key}={value}") <= WANDB_MAX_TAG_LENGTH
        }
        if all(self._tagged.get(k) == t for k, t in wanted.items()):
            return
        stale = {self._tagged[k] for k, t in wanted.items() if k in self._tagged and self._tagged[k] != t}
        current = [t for t in (self.run.tags or ()) if t not in stale]
        current += [t for t in wanted.values() if t not in current]
        self.run.tags = tuple(current)
        self._tagged.update(wanted)

    def log(self, entry: LogEntry) -> None:
        step = self._step(entry.step)
        wandb = self._wandb
        if entry.config:
            self.run.config.update(dict(entry.config), allow_val_change=True)
        if entry.tags:
            self._tag(entry.tags)
        data: Dict[str, Any] = dict(entry.scalars)
        for name, h in entry.histograms.items():
            data[name] = wandb.Histogram(np_histogram=(list(h.counts), _edges(h)))
        if entry.figures:
            from PIL import Image  # a dependency of wandb

            for name, png in entry.figures.items():
                image = Image.open(io.BytesIO(png))
                image.load()
                data[name] = wandb.Image(image)
        self._define(data)
        if self.step_metric is None:
            self.run.log(data, step=step)
        else:
            data[self.step_metric] = step
            self.run.log(data)

    def close(self) -> None:
        """Nothing to release: the run stays yours (``run.finish()``)."""


# --------------------------------------------------------------------------
# TensorBoard
# --------------------------------------------------------------------------


def _import_tensorboard() -> Any:
    try:
        from tensorboard.compat.proto import summary_pb2
    except ImportError as e:
        raise ImportError(
            "logging to TensorBoard needs tensorboard: pip install 'embedeval-client[tensorboard]'"
        ) from e
    return summary_pb2


#: PNG colour type to TensorBoard's colorspace (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA).
_COLORSPACES = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


class TensorBoardTracker(_Steps):
    """Writes TensorBoard event files into `logdir` with the ``tensorboard``
    package alone, or through a ``torch.utils.tensorboard.SummaryWriter``
    (or tensorboardX's) given instead of a directory.

    Scalars are ``simple_value`` summaries (float32) at the step, histograms
    histogram summaries, figures image summaries (the PNG as it is), the
    config a markdown table (text tag ``<prefix>config``) at each step, and
    the first entry's settings the run's hparams (the HParams dashboard;
    :data:`PER_EVALUATION_KEYS` left out). Each entry is flushed to disk."""

    def __init__(self, logdir: Union[str, os.PathLike[str], Any]) -> None:
        super().__init__()
        self._pb = _import_tensorboard()
        self._own: Any = None
        self._writer: Any = None
        self._convert: Any = None
        if isinstance(logdir, (str, os.PathLike)):
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            self.logdir: Optional[Path] = Path(logdir)
            self._own = EventFileWriter(str(self.logdir), flush_secs=5)
        elif hasattr(logdir, "_get_file_writer"):  # torch's or tensorboardX's SummaryWriter
            self.logdir = Path(logdir.log_dir) if hasattr(logdir, "log_dir") else None
            self._writer = logdir
            if type(logdir).__module__.split(".")[0] == "tensorboardX":
                from tensorboardX.proto import summary_pb2 as tbx_summary

                self._convert = lambda s: tbx_summary.Summary.FromString(s.SerializeToString())
        else:
            raise TypeError(
                f"TensorBoardTracker takes a log directory or a SummaryWriter, got {type(logdir).__name__}"
            )
        self._hparams_written = False
        self._closed = False

    def _emit(self, summary: Any, step: int, wall_time: float) -> None:
        if self._own is not None:
            from tensorboard.compat.proto import event_pb2

            self._own.add_event(event_pb2.Event(wall_time=wall_time, step=step, summary=summary))
        else:
            file_writer = self._writer._get_file_writer()
            if self._convert is not None:
                summary = self._convert(summary)
            file_writer.add_summary(summary, step, wall_time)

    def _text(self, tag: str, text: str) -> Any:
        from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.plugins.text import metadata as text_metadata

        pb = self._pb
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            string_val=[text.encode("utf-8")],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
        )
        meta = text_metadata.create_summary_metadata(display_name=tag, description="")
        return pb.Summary.Value(tag=tag, metadata=meta, tensor=tensor)

    def _hparams(self, entry: LogEntry) -> Optional[Any]:
        from tensorboard.plugins.hparams import metadata as hp_metadata
        from tensorboard.plugins.hparams import plugin_data_pb2

        info = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
        for key, value in entry.config.items():
            if entry.is_per_evaluation(key):
                continue
            if isinstance(value, bool):
                info.hparams[key].bool_value = value
            elif isinstance(value, (int, float)):
                info.hparams[key].number_value = float(value)
            else:
                info.hparams[key].string_value = str(value)
        if not info.hparams:
            return None
        meta = hp_metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_start_info=info))
        return self._pb.Summary.Value(
            tag=hp_metadata.SESSION_START_INFO_TAG, metadata=meta, tensor=hp_metadata.NULL_TENSOR
        )

    def log(self, entry: LogEntry) -> None:
        if self._closed:
            raise RuntimeError("the TensorBoardTracker is closed")
        step = self._step(entry.step)
        pb = self._pb
        wall_time = time.time()
        values = [pb.Summary.Value(tag=name, simple_value=value) for name, value in entry.scalars.items()]
        for name, h in entry.histograms.items():
            edges = _edges(h)
            centres = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
            counts = [float(c) for c in h.counts]
            histo = pb.HistogramProto(
                min=float(h.lo),
                max=float(h.hi),
                num=float(sum(counts)),
                sum=float(sum(c * x for c, x in zip(counts, centres))),
                sum_squares=float(sum(c * x * x for c, x in zip(counts, centres))),
                bucket_limit=edges[1:],
                bucket=counts,
            )
            values.append(pb.Summary.Value(tag=name, histo=histo))
        for name, png in entry.figures.items():
            width, height, colour = _png_size(png)
            image = pb.Summary.Image(
                height=height, width=width, colorspace=_COLORSPACES.get(colour, 3), encoded_image_string=png
            )
            values.append(pb.Summary.Value(tag=name, image=image))
        if entry.config:
            rows = "\n".join(
                f"| {key} | {str(value).replace('|', '&#124;')} |" for key, value in sorted(entry.config.items())
            )
            values.append(self._text(f"{entry.prefix}config", f"| setting | value |\n|---|---|\n{rows}"))
            if not self._hparams_written:
                hparams = self._hparams(entry)
                if hparams is not None:
                    values.append(hparams)
                self._hparams_written = True
        if values:
            self._emit(pb.Summary(value=values), step, wall_time)
        self.flush()

    def flush(self) -> None:
        """Writes what is buffered to disk."""
        if self._own is not None:
            self._own.flush()
        elif self._writer is not None and hasattr(self._writer, "flush"):
            self._writer.flush()

    def close(self) -> None:
        """Flushes; closes the event file this tracker opened (a
        SummaryWriter you passed stays open)."""
        if self._closed:
            return
        self.flush()
        if self._own is not None:
            self._own.close()
        self._closed = True


# --------------------------------------------------------------------------
# MLflow
# --------------------------------------------------------------------------


def _import_mlflow() -> Any:
    try:
        import mlflow
        import mlflow.tracking
    except ImportError as e:
        raise ImportError("logging to MLflow needs mlflow: pip install 'embedeval-client[mlflow]'") from e
    return mlflow


def _tracking_uri(uri_or_path: str) -> str:
    """A tracking URI as it is (``http://...``, ``file:...``,
    ``sqlite:///...``, ``databricks``); a local directory as a ``file:`` URI."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]+:", uri_or_path) or uri_or_path == "databricks":
        return uri_or_path
    return Path(uri_or_path).expanduser().resolve().as_uri()


def _truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _mlflow_key(key: str) -> str:
    """`key` with the characters MLflow refuses in names as ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", key)[:250]


class MlflowTracker(_Steps):
    """Logs to an MLflow run: `run_id` on `client` (an ``MlflowClient``;
    default: one for `tracking_uri`, or MLflow's current tracking URI).
    Without a `run_id` the first entry starts a run in `experiment` (named
    `run_name`, or the report's model), which :meth:`close` ends.

    Scalars are metrics at the step; the settings are params (values cut to
    :data:`MLFLOW_MAX_PARAM_LENGTH` characters), except
    :data:`PER_EVALUATION_KEYS` which are tags (params cannot change; a
    setting that changes within a run is warned about and set as a tag of
    the same name). Figures are artifacts ``<name>/step_000003.png``
    (``figures/ut/...``), histograms one JSON artifact per step
    (``histograms/step_000003.json``: ``{name: {lo, hi, counts}}``)."""

    def __init__(
        self,
        client: Any = None,
        run_id: Optional[str] = None,
        *,
        tracking_uri: Optional[str] = None,
        experiment: str = "embedeval",
        run_name: Optional[str] = None,
    ) -> None:
        super().__init__()
        _import_mlflow()
        from mlflow.tracking import MlflowClient

        if client is None:
            client = MlflowClient(tracking_uri=_tracking_uri(tracking_uri) if tracking_uri else None)
        self.client = client
        self.run_id = run_id
        self.experiment = experiment
        self.run_name = run_name
        self._started_here = False
        self._params: Optional[Dict[str, str]] = None
        self._warned: Set[str] = set()

    def _run(self, entry: LogEntry) -> str:
        if self.run_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            experiment_id = found.experiment_id if found is not None else self.client.create_experiment(self.experiment)
            name = self.run_name or entry.config.get(f"{entry.prefix}model")
            run = self.client.create_run(experiment_id, run_name=str(name) if name else None)
            self.run_id = run.info.run_id
            self._started_here = True
        if self._params is None:
            self._params = dict(self.client.get_run(self.run_id).data.params)
        return self.run_id

    def log(self, entry: LogEntry) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run_id = self._run(entry)
        assert self._params is not None
        step = self._step(entry.step)
        now = int(time.time() * 1000)
        metrics = [Metric(_mlflow_key(k), float(v), now, step) for k, v in entry.scalars.items()]
        params: List[Any] = []
        tags: List[Any] = []
        for key, value in entry.config.items():
            name = _mlflow_key(key)
            text = str(value)
            if entry.is_per_evaluation(key):
                tags.append(RunTag(name, _truncate(text, MLFLOW_MAX_TAG_LENGTH)))
                continue
            text = _truncate(text, MLFLOW_MAX_PARAM_LENGTH)
            logged = self._params.get(name)
            if logged is None:
                params.append(Param(name, text))
                self._params[name] = text
            elif logged != text:
                if name not in self._warned:
                    warnings.warn(
                        f"MLflow param {name!r} of run {run_id} is {logged!r}; the new value {text!r} "
                        "is set as a tag of that name (params cannot change)",
                        stacklevel=3,
                    )
                    self._warned.add(name)
                tags.append(RunTag(name, _truncate(text, MLFLOW_MAX_TAG_LENGTH)))
        for i in range(0, len(metrics), _MLFLOW_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=metrics[i : i + _MLFLOW_METRICS_PER_BATCH])
        for i in range(0, len(params), _MLFLOW_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=params[i : i + _MLFLOW_PARAMS_PER_BATCH])
        for i in range(0, len(tags), _MLFLOW_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, tags=tags[i : i + _MLFLOW_PARAMS_PER_BATCH])
        if entry.histograms:
            table = {
                name[len(entry.prefix):]: {"lo": h.lo, "hi": h.hi, "counts": [int(c) for c in h.counts]}
                for name, h in entry.histograms.items()
            }
            self.client.log_dict(run_id, table, f"{entry.prefix}histograms/step_{step:06d}.json")
        if entry.figures:
            with tempfile.TemporaryDirectory(prefix="embedeval-mlflow-") as tmp:
                for name, png in entry.figures.items():
                    path = Path(tmp) / f"step_{step:06d}.png"
                    path.write_bytes(png)
                    self.client.log_artifact(run_id, str(path), artifact_path=name)

    def close(self) -> None:
        """Ends the run if this tracker started it."""
        if self._started_here and self.run_id is not None:
            self.client.set_terminated(self.run_id)
            self._started_here = False


# --------------------------------------------------------------------------
# Where to log
# --------------------------------------------------------------------------

#: What ``to=`` takes: a :class:`Tracker`; a W&B run or ``"wandb"``
#: (``wandb.run``); ``"tensorboard:<dir>"`` or a SummaryWriter; an MLflow
#: run (``mlflow.start_run()``'s), ``"mlflow"`` (the active run) or
#: ``"mlflow:<tracking URI or directory>"`` (a run of its own).
LogTarget = Any

_lock = threading.Lock()
#: Trackers made from strings, kept so that the calls of a training loop
#: share one event file, one MLflow run and their steps; closed at exit.
_by_name: Dict[str, Tracker] = {}
#: Trackers made for objects (W&B runs, SummaryWriters, MLflow runs).
_by_object: MutableMapping[Any, Tracker] = weakref.WeakKeyDictionary()
_by_mlflow_run: Dict[Tuple[str, str], Tracker] = {}


def _close_all() -> None:
    with _lock:
        trackers = list(_by_name.values())
        _by_name.clear()
    for t in trackers:
        try:
            t.close()
        except Exception:  # pragma: no cover - at exit, best effort
            pass


atexit.register(_close_all)


def _module_root(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


def _for_object(obj: Any, make: Callable[[], Tracker]) -> Tracker:
    try:
        found = _by_object.get(obj)
    except TypeError:  # not hashable or not weakly referenceable
        return make()
    if found is None:
        found = make()
        try:
            _by_object[obj] = found
        except TypeError:  # pragma: no cover
            pass
    return found


def _targets_help() -> str:
    return (
        "a Tracker, a wandb Run or 'wandb', 'tensorboard:<dir>' or a SummaryWriter, "
        "an MLflow run, 'mlflow' or 'mlflow:<tracking URI or directory>'"
    )


def tracker(to: LogTarget) -> Tracker:
    """The :class:`Tracker` for `to` (see :data:`LogTarget`). Calls with the
    same string, run or writer get the same tracker, so that they share its
    steps, event file and MLflow run."""
    if isinstance(to, (WandbTracker, TensorBoardTracker, MlflowTracker)):
        return to
    if isinstance(to, str):
        kind, sep, where = to.partition(":")
        kind = kind.strip().lower()
        if kind == "wandb" and not sep:
            run = _import_wandb().run
            if run is None:
                raise ValueError("no active W&B run: call wandb.init() first, or pass the run")
            return tracker(run)
        if kind == "mlflow" and not sep:
            mlflow = _import_mlflow()
            active = mlflow.active_run()
            if active is None:
                raise ValueError(
                    "no active MLflow run: call mlflow.start_run() first, or log to 'mlflow:<tracking URI>'"
                )
            return tracker(active)
        if kind == "tensorboard" and sep and where:
            key = "tensorboard:" + str(Path(where).expanduser().resolve())
            with _lock:
                if key not in _by_name:
                    _by_name[key] = TensorBoardTracker(Path(where).expanduser())
                return _by_name[key]
        if kind == "mlflow" and sep and where:
            uri = _tracking_uri(where)
            key = "mlflow:" + uri
            with _lock:
                if key not in _by_name:
                    _by_name[key] = MlflowTracker(tracking_uri=uri)
                return _by_name[key]
        raise ValueError(f"cannot log to {to!r}: log to {_targets_help()}")
    root = _module_root(to)
    if root == "wandb":
        return _for_object(to, lambda: WandbTracker(to))
    if root == "mlflow" and hasattr(getattr(to, "info", None), "run_id"):
        mlflow = _import_mlflow()
        run_key = (str(mlflow.get_tracking_uri()), str(to.info.run_id))
        with _lock:
            if run_key not in _by_mlflow_run:
                _by_mlflow_run[run_key] = MlflowTracker(run_id=to.info.run_id)
            return _by_mlflow_run[run_key]
    if hasattr(to, "_get_file_writer"):
        return _for_object(to, lambda: TensorBoardTracker(to))
    if isinstance(to, Tracker):
        return to
    raise TypeError(f"cannot log to a {type(to).__name__}: log to {_targets_help()}")


def log_report(
    result: Union[EvaluationReport, Comparison],
    to: Union[LogTarget, Sequence[LogTarget]],
    *,
    step: Optional[int] = None,
    figures: Optional[Mapping[str, Union[bytes, Figure]]] = None,
    prefix: str = "",
    per_class: bool = True,
    histograms: bool = True,
) -> LogEntry:
    """Logs a report (or a comparison) to `to`: one tracker target (see
    :data:`LogTarget`) or a list of them.

    Args:
        step: the x of the points (the epoch, say); None: the tracker's last
            step + 1 (0 first).
        figures: ``{name: PNG}`` (bytes, or a :class:`~embedeval.types.Figure`
            rendered with ``format="png"``), logged as images under
            ``figures/<name>``.
        prefix: put before every name (``"val"`` gives ``val/knn/top1``).
        per_class: log the per-class scalars (``per_class/...``).
        histograms: log the histograms.

    Returns:
        the :class:`LogEntry` logged.
    """
    entry = report_entry(
        result, step=step, figures=figures, prefix=prefix, per_class=per_class, histograms=histograms
    )
    targets = list(to) if isinstance(to, (list, tuple)) else [to]
    for target in [tracker(t) for t in targets]:
        target.log(entry)
    return entry
