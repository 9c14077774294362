"""Logging to MLflow (``pip install 'embedeval-client[mlflow]'``)."""
from __future__ import annotations

import re
import tempfile
import time
import warnings
from pathlib import Path
from typing import (
    Any,
    Dict,
    List,
    Optional,
    Set,
)

from ._entry import LogEntry, _Steps

#: MLflow's limits: param values (500 characters on older servers; newer
#: ones take more), tag values, and entities per ``log_batch`` call.
MLFLOW_MAX_PARAM_LENGTH = 500
MLFLOW_MAX_TAG_LENGTH = 5000
_MLFLOW_METRICS_PER_BATCH = 1000
_MLFLOW_PARAMS_PER_BATCH = 100


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
