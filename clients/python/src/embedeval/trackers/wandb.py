"""Logging to Weights & Biases (``pip install 'embedeval-client[wandb]'``)."""
from __future__ import annotations

import io
from typing import (
    Any,
    Dict,
    Iterable,
    Mapping,
    Optional,
    Set,
)

from ._entry import LogEntry, _edges, _Steps
from ._flatten import PER_EVALUATION_KEYS

#: W&B's longest run tag: a longer ``key=value`` is left out of the run's
#: tags (it is in the config all the same).
WANDB_MAX_TAG_LENGTH = 64

#: The step metric W&B plots embedeval's names against (see :class:`WandbTracker`).
WANDB_STEP_METRIC = "embedeval/step"


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
