"""Training runs: their checkpoints in step order, each with its report,
and the warnings their path raises."""
from __future__ import annotations

import dataclasses
from typing import (
    Any,
    Iterator,
    List,
    Optional,
)

from ._base import _Message
from .comparisons import Recommendation
from .reports import EvaluationReport, _row_columns


@dataclasses.dataclass
class RunSummary(_Message):
    """A training run: the models whose cards name it (``[training] run``)."""

    _proto_name = "embedeval.v1.RunSummary"

    name: str = ""
    #: Registered checkpoints.
    checkpoints: int = 0
    first_step: int = 0
    last_step: int = 0
    #: Training loss and tau of its latest checkpoint.
    loss: str = ""
    temperature: float = 0.0


@dataclasses.dataclass
class Checkpoint(_Message):
    """One checkpoint of a run: a registered model and its step."""

    _proto_name = "embedeval.v1.Checkpoint"

    step: int = 0
    #: Its registry name.
    model: str = ""
    model_sha256: str = ""
    #: The latest COMPLETED evaluation of exactly this checkpoint (same
    #: sha256) on the run's dataset; ``None`` when there is none yet.
    report: Optional[EvaluationReport] = None


@dataclasses.dataclass
class RunWarning(_Message):
    """Something about a run's path: ``kind`` is "dimensional_collapse" (the
    effective rank fell below half its peak), "complete_collapse" (every
    image at nearly the same embedding) or "small_tau" (uniformity stopped
    rising while the penalty entropy is near zero, Wang & Liu 2021, Eq. 6)."""

    _proto_name = "embedeval.v1.RunWarning"

    kind: str = ""
    #: The step where it began.
    step: int = 0
    message: str = ""


@dataclasses.dataclass
class Run(_Message):
    """A training run on one dataset (``client.get_run(name, dataset)``): its
    checkpoints in step order, each with its latest COMPLETED report on the
    dataset (``None`` before it is evaluated), and the warnings its path
    raises. Iterating it gives the checkpoints."""

    _proto_name = "embedeval.v1.Run"

    name: str = ""
    dataset: str = ""
    #: In step order.
    checkpoints: List[Checkpoint] = dataclasses.field(default_factory=list)
    warnings: List[RunWarning] = dataclasses.field(default_factory=list)
    #: The checkpoint to keep: the :class:`Recommendation` over the evaluated
    #: checkpoints (named by model; the reason names steps; no
    #: ``tolerance_falls``). ``None`` before a checkpoint with uniformity and
    #: tolerance is evaluated.
    checkpoint_to_keep: Optional[Recommendation] = None

    def __len__(self) -> int:
        return len(self.checkpoints)

    def __iter__(self) -> Iterator[Checkpoint]:
        return iter(self.checkpoints)

    def to_pandas(self) -> Any:
        """One row per checkpoint, in step order: its ``step``, then its
        report's headline numbers (:meth:`EvaluationReport.to_row`; only the
        ``model`` for a checkpoint not evaluated yet, the rest missing), then
        the ``tag.<key>`` columns of all the reports, sorted, as a
        ``pandas.DataFrame`` (needs pandas: ``pip install embedeval-client[pandas]``)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("Run.to_pandas needs pandas: pip install pandas") from e
        rows = [
            {"step": c.step, **(c.report.to_row() if c.report is not None else {"model": c.model})}
            for c in self.checkpoints
        ]
        return pd.DataFrame(rows, columns=_row_columns(["step", *EvaluationReport().to_row()], rows))
