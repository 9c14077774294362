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
  ``linear/seconds_per_iteration``, ``retrieval/precision_at_1``,
  ``retrieval/r_precision``, ``retrieval/map_at_r``,
  ``retrieval/recall_at_<K>``, ``clustering/nmi``, ``clustering/ami``,
  ``clustering/objective``,
  ``timings/<stage>`` (seconds) and, class by class,
  ``per_class/tolerance/<class>``, ``per_class/knn_top1/<class>``,
  ``per_class/linear_top1/<class>``, ``per_class/map_at_r/<class>`` and
  ``per_class/r_precision/<class>``.
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

The package's modules: ``_flatten`` (a report as flat names), ``_entry``
(:class:`LogEntry`, :class:`Tracker`, the steps), one per tracker
(``wandb``, ``tensorboard``, ``mlflow``) and ``_targets`` (:func:`tracker`,
:func:`log_report`); every name is imported from here.
"""
from __future__ import annotations

from ._entry import _PNG_SIGNATURE as _PNG_SIGNATURE
from ._entry import LogEntry, Tracker, report_entry
from ._entry import _check_step as _check_step
from ._entry import _edges as _edges
from ._entry import _figure_bytes as _figure_bytes
from ._entry import _png_size as _png_size
from ._entry import _Steps as _Steps
from ._flatten import (
    PER_EVALUATION_KEYS,
    ConfigValue,
    comparison_config,
    comparison_scalars,
    report_config,
    report_histograms,
    report_scalars,
)
from ._flatten import _class_keys as _class_keys
from ._flatten import _config_value as _config_value
from ._flatten import _message_config as _message_config
from ._flatten import _number as _number
from ._flatten import _prefix as _prefix
from ._flatten import _put_config as _put_config
from ._flatten import _segment as _segment
from ._flatten import _shared_tags as _shared_tags
from ._targets import LogTarget, log_report, tracker
from ._targets import _by_mlflow_run as _by_mlflow_run
from ._targets import _by_name as _by_name
from ._targets import _by_object as _by_object
from ._targets import _close_all as _close_all
from ._targets import _for_object as _for_object
from ._targets import _lock as _lock
from ._targets import _module_root as _module_root
from ._targets import _targets_help as _targets_help
from .mlflow import _MLFLOW_METRICS_PER_BATCH as _MLFLOW_METRICS_PER_BATCH
from .mlflow import _MLFLOW_PARAMS_PER_BATCH as _MLFLOW_PARAMS_PER_BATCH
from .mlflow import MLFLOW_MAX_PARAM_LENGTH as MLFLOW_MAX_PARAM_LENGTH
from .mlflow import MLFLOW_MAX_TAG_LENGTH as MLFLOW_MAX_TAG_LENGTH
from .mlflow import MlflowTracker
from .mlflow import _import_mlflow as _import_mlflow
from .mlflow import _mlflow_key as _mlflow_key
from .mlflow import _tracking_uri as _tracking_uri
from .mlflow import _truncate as _truncate
from .tensorboard import _COLORSPACES as _COLORSPACES
from .tensorboard import TensorBoardTracker
from .tensorboard import _import_tensorboard as _import_tensorboard
from .wandb import WANDB_MAX_TAG_LENGTH as WANDB_MAX_TAG_LENGTH
from .wandb import WANDB_STEP_METRIC as WANDB_STEP_METRIC
from .wandb import WandbTracker
from .wandb import _import_wandb as _import_wandb

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

