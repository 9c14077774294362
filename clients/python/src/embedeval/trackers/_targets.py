"""Where to log: the tracker for a target (:func:`tracker`), kept per
target so that the calls of a training loop share it, and :func:`log_report`."""
from __future__ import annotations

import atexit
import threading
import weakref
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Mapping,
    MutableMapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ..types import Comparison, EvaluationReport, Figure
from ._entry import LogEntry, Tracker, report_entry
from .mlflow import MlflowTracker, _import_mlflow, _tracking_uri
from .tensorboard import TensorBoardTracker
from .wandb import WandbTracker, _import_wandb

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
