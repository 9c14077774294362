"""The handles of detached jobs that :meth:`Client.evaluate`,
:meth:`Client.evaluate_embeddings` and :meth:`Client.compare` return with
``detach=True``: follow, wait for or cancel the job through the client."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, List, Optional, Union

from .._progress import ProgressCallback
from ..errors import EmbedevalError
from ..types import Accepted, Comparison, EvaluationReport, EvaluationStatus, ExcludedModel, Progress

if TYPE_CHECKING:  # pragma: no cover
    from . import Client


class EvaluationHandle:
    """A detached evaluation: follow it, wait for it, or cancel it.

    Attributes:
        ids: the evaluation ids (one).
        status: its status when it was admitted (QUEUED or RUNNING).
    """

    def __init__(self, client: Client, accepted: Accepted) -> None:
        self._client = client
        self.ids: List[str] = list(accepted.evaluation_ids)
        self.status = accepted.status

    def __repr__(self) -> str:
        status = self.status.value if hasattr(self.status, "value") else self.status
        return f"{type(self).__name__}(ids={self.ids!r}, status={status})"

    @property
    def id(self) -> str:
        """The (first) evaluation id."""
        return self.ids[0]

    def get(self) -> EvaluationReport:
        """The report as it is now."""
        return self._client.get_evaluation(self.id)

    def watch(self) -> Iterator[Union[Progress, EvaluationReport]]:
        """Progress events, then the report as the last item."""
        return self._client.watch_evaluation(self.id)

    def wait(self, progress: bool = False, *, on_progress: Optional[ProgressCallback] = None) -> EvaluationReport:
        """Waits until the evaluation ends; returns its report."""
        return self._client.wait_evaluation(self.id, progress, on_progress=on_progress)

    def cancel(self) -> EvaluationStatus:
        """Cancels the evaluation; returns the status it ended in."""
        return self._client.cancel_evaluation(self.id)


class ComparisonHandle:
    """A detached comparison: one evaluation id per model, in the order of
    the request.

    Attributes:
        ids: the evaluation ids.
        status: the job's status when it was admitted (QUEUED or RUNNING).
        comparison_id: the comparison's id (:meth:`Client.get_comparison`,
            :meth:`Client.render_figure`); empty from a server older than it.
        excluded: the models the comparison left out, with why
            (:class:`~embedeval.types.ExcludedModel`; no ids for them).
        by: the tag :meth:`wait` asks the stored comparison's groups along
            (``compare(..., by=...)``; "" for none).
    """

    def __init__(self, client: Client, accepted: Accepted, by: str = "") -> None:
        self._client = client
        self.ids: List[str] = list(accepted.evaluation_ids)
        self.status = accepted.status
        self.comparison_id: str = accepted.comparison_id
        self.excluded: List[ExcludedModel] = list(accepted.excluded)
        self.by = by

    def __repr__(self) -> str:
        return f"{type(self).__name__}(comparison_id={self.comparison_id!r}, ids={self.ids!r})"

    def get(self) -> List[EvaluationReport]:
        """The reports as they are now."""
        return [self._client.get_evaluation(i) for i in self.ids]

    def watch(self) -> Iterator[Union[Progress, EvaluationReport]]:
        """Each evaluation's progress and report in turn."""
        for i in self.ids:
            yield from self._client.watch_evaluation(i)

    def wait(self, progress: bool = False, *, on_progress: Optional[ProgressCallback] = None) -> Comparison:
        """Waits until every evaluation ends; returns the stored
        :class:`~embedeval.types.Comparison` (:meth:`Client.get_comparison`:
        its ``id``, the rows sorted as by :meth:`Client.compare`, the plots,
        the groups along :attr:`by`). From a server without comparison ids:
        the reports in the order of the request, without plots."""
        rows = [self._client.wait_evaluation(i, progress, on_progress=on_progress) for i in self.ids]
        if self.comparison_id:
            return self._client.get_comparison(self.comparison_id, by=self.by)
        return Comparison(rows=rows, excluded=list(self.excluded))

    def cancel(self) -> List[EvaluationStatus]:
        """Cancels the comparison; returns each evaluation's final status."""
        out = []
        for i in self.ids:
            try:
                out.append(self._client.cancel_evaluation(i))
            except EmbedevalError:
                out.append(self._client.get_evaluation(i).status)
        return out
