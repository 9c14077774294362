"""EvaluationService calls of the client about single evaluations: evaluate a
model on a dataset, evaluate the client's own embeddings, and get, list,
watch, wait for, cancel and delete evaluations (the mixin
:class:`_Evaluation` of :class:`~embedeval.client.Client`). Comparisons,
figures and runs are in ``_comparisons``."""
from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Iterable,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Tuple,
    Union,
    cast,
    overload,
)

import numpy.typing as npt
from google.protobuf.message import Message

from .. import _toml
from .._progress import ProgressCallback, ProgressDisplay
from .._proto import evaluation_pb2
from .._tensor import Labels, _float_rows, _labels, embeddings_requests
from ..errors import Internal
from ..types import (
    Accepted,
    AugmentationLike,
    EvaluationReport,
    EvaluationStatus,
    MetricSpec,
    Progress,
    augmentation_to_proto,
    spec_to_proto,
)
from ._connection import _Connection
from ._handles import EvaluationHandle

if TYPE_CHECKING:  # pragma: no cover
    from . import Client

SpecLike = Union[None, MetricSpec, Mapping[str, Any], Message]
#: Embeddings and their labels: (float array [n, d], int array [n]).
Labelled = Tuple[Any, Any]


def _spec_with(
    spec: SpecLike, augmentation: Optional[AugmentationLike] = None, positives_split: Optional[str] = None
) -> Optional[evaluation_pb2.MetricSpec]:
    """The MetricSpec message of `spec` with `augmentation` and
    `positives_split` set in it (a copy: a message passed in is not changed).
    Each may be given as an argument or in the spec, not both."""
    msg = spec_to_proto(spec)
    if augmentation is None and positives_split is None:
        return msg
    out = evaluation_pb2.MetricSpec()
    if msg is not None:
        out.CopyFrom(msg)
    if augmentation is not None:
        if out.HasField("augmentation"):
            raise ValueError("augmentation is given both in spec and as augmentation=: give it once")
        out.augmentation.CopyFrom(augmentation_to_proto(augmentation))
        out.augmentation.SetInParent()
    if positives_split is not None:
        if not isinstance(positives_split, str):
            raise TypeError(f"positives_split must be a split name, got {type(positives_split).__name__}")
        if out.positives_split and out.positives_split != positives_split:
            raise ValueError("positives_split is given both in spec and as positives_split=: give it once")
        out.positives_split = positives_split
    return out


class _Evaluation(_Connection):
    """The EvaluationService calls of :class:`~embedeval.client.Client` about
    single evaluations."""

    # detach=False (the default) gives the report, detach=True the handle:
    # given by keyword or in its place, or a bool only known when it runs.
    @overload
    def evaluate(
        self, model: str, dataset: str, spec: SpecLike = None, test_split: str = "", train_split: str = "",
        progress: bool = True, detach: Literal[False] = False, *, on_progress: Optional[ProgressCallback] = None,
        augmentation: Optional[AugmentationLike] = None, positives_split: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> EvaluationReport: ...

    @overload
    def evaluate(
        self, model: str, dataset: str, spec: SpecLike = None, test_split: str = "", train_split: str = "",
        progress: bool = True, *, detach: Literal[True], on_progress: Optional[ProgressCallback] = None,
        augmentation: Optional[AugmentationLike] = None, positives_split: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> EvaluationHandle: ...

    @overload
    def evaluate(
        self, model: str, dataset: str, spec: SpecLike, test_split: str, train_split: str,
        progress: bool, detach: Literal[True], *, on_progress: Optional[ProgressCallback] = None,
        augmentation: Optional[AugmentationLike] = None, positives_split: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> EvaluationHandle: ...

    @overload
    def evaluate(
        self, model: str, dataset: str, spec: SpecLike = None, test_split: str = "", train_split: str = "",
        progress: bool = True, detach: bool = False, *, on_progress: Optional[ProgressCallback] = None,
        augmentation: Optional[AugmentationLike] = None, positives_split: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> Union[EvaluationReport, EvaluationHandle]: ...

    def evaluate(
        self,
        model: str,
        dataset: str,
        spec: SpecLike = None,
        test_split: str = "",
        train_split: str = "",
        progress: bool = True,
        detach: bool = False,
        *,
        on_progress: Optional[ProgressCallback] = None,
        augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> Union[EvaluationReport, EvaluationHandle]:
        """Evaluates `model` on `dataset`.

        Args:
            spec: a :class:`~embedeval.types.MetricSpec`, or a dict of its
                fields (e.g. ``{"knn_k": 20, "skip_linear": True}``); absent
                fields take the server's defaults.
            test_split, train_split: the splits to evaluate and to fit the
                kNN bank and the probe on (default: the dataset's).
            progress: show tqdm bars (when tqdm is installed).
            detach: return at once with an :class:`EvaluationHandle` (the job
                runs on without this client); else the call follows the job,
                and interrupting it stops the evaluation.
            on_progress: called with each :class:`~embedeval.types.Progress`.
            augmentation: how the positive views of the alignment and the
                positive similarity are made (``spec.augmentation``): a
                recipe name (``"simclr"``, the default; ``"instdisc"``;
                ``"none"``: the view is the image itself, so alignment 0 and
                positive similarity 1), an
                :class:`~embedeval.types.Augmentation` or a dict of its
                fields (``{"recipe": "simclr", "crop_scale_min": 0.5}``).
                The report echoes it filled in (``report.spec.augmentation``).
            positives_split: a split of the dataset holding a positive view
                of each test image, row for row (same length, same labels),
                used instead of the augmentation (``spec.positives_split``).
                Each of the two may be given here or in `spec`, not both
                (ValueError).
            tags: tags of this evaluation (``{"sweep": "lr-0.1"}``; keys
                1-64 of ``A-Z a-z 0-9 _ . -``, values text, a number turned
                into the text the server writes), set over the model's own
                in ``report.tags`` (a key the model has too takes this
                value). The model's card is not changed.

        Returns:
            the :class:`~embedeval.types.EvaluationReport` (in whatever
            status it ended: see ``report.raise_for_status()``), or an
            :class:`EvaluationHandle` with `detach`.
        """
        request = evaluation_pb2.EvaluateRequest(
            model=model,
            dataset=dataset,
            spec=_spec_with(spec, augmentation, positives_split),
            detach=detach,
            test_split=test_split,
            train_split=train_split,
            tags=_toml.check_tags(tags),
        )
        events = self._stream(self._evaluation.Evaluate, request)
        try:
            if detach:
                for event in events:
                    if event.HasField("accepted"):
                        return EvaluationHandle(cast("Client", self), Accepted.from_proto(event.accepted))
                raise Internal("the server ended a detached Evaluate without accepting it")
            return self._follow(events, progress, on_progress)
        finally:
            events.close()

    def _follow(
        self, events: Iterable[Any], progress: bool, on_progress: Optional[ProgressCallback]
    ) -> EvaluationReport:
        with ProgressDisplay(progress, on_progress) as display:
            for event in events:
                kind = event.WhichOneof("event")
                if kind == "progress":
                    display.update(Progress.from_proto(event.progress))
                elif kind == "report":
                    return EvaluationReport.from_proto(event.report)
        raise Internal("the server ended the stream without a report")

    @overload
    def evaluate_embeddings(
        self, train: Optional[Labelled] = None, test: Optional[Labelled] = None, test_positive: Optional[Any] = None,
        spec: SpecLike = None, name: str = "embeddings", loss: str = "", temperature: Optional[float] = None, *,
        dataset: str = "", detach: Literal[False] = False, loss_name: str = "",
    ) -> EvaluationReport: ...

    @overload
    def evaluate_embeddings(
        self, train: Optional[Labelled] = None, test: Optional[Labelled] = None, test_positive: Optional[Any] = None,
        spec: SpecLike = None, name: str = "embeddings", loss: str = "", temperature: Optional[float] = None, *,
        dataset: str = "", detach: Literal[True], loss_name: str = "",
    ) -> EvaluationHandle: ...

    @overload
    def evaluate_embeddings(
        self, train: Optional[Labelled] = None, test: Optional[Labelled] = None, test_positive: Optional[Any] = None,
        spec: SpecLike = None, name: str = "embeddings", loss: str = "", temperature: Optional[float] = None, *,
        dataset: str = "", detach: bool, loss_name: str = "",
    ) -> Union[EvaluationReport, EvaluationHandle]: ...

    def evaluate_embeddings(
        self,
        train: Optional[Labelled] = None,
        test: Optional[Labelled] = None,
        test_positive: Optional[Any] = None,
        spec: SpecLike = None,
        name: str = "embeddings",
        loss: str = "",
        temperature: Optional[float] = None,
        *,
        dataset: str = "",
        detach: bool = False,
        loss_name: str = "",
    ) -> Union[EvaluationReport, EvaluationHandle]:
        """Evaluates embeddings computed by the client.

        Args:
            train: ``(embeddings [n, d], labels [n])``: the kNN bank and the
                probe's training set (without it, no kNN or probe).
            test: ``(embeddings [m, d], labels [m])``: the rows measured.
            test_positive: ``[m, d]``: a positive view of each test row, in
                order (for alignment and the positive similarity).
            spec: as in :meth:`evaluate`.
            name, loss, dataset: recorded in the report. A `loss` given is
                one of the names :meth:`register_model` takes (others are
                :class:`~embedeval.errors.InvalidArgument`).
            loss_name: the name of a loss of your own, with ``loss="other"``.
            temperature: the training tau, used by the penalty profile when
                the spec has no ``penalty_temperature``.
            detach: answer at once with an :class:`EvaluationHandle`.

        The rows are L2-normalised by the server; they are sent in chunks,
        each converted to float32 as it goes. Any array, embeddings or
        labels, may be given as the path of a ``.npy`` file: it is
        memory-mapped (``numpy.load(path, mmap_mode="r")``), not read, so
        features larger than the client's memory stream from disk
        (``np.load(..., mmap_mode="r")`` arrays are used in place too).
        """
        if test is None:
            raise ValueError("test=(embeddings, labels) is required")
        parts: List[Tuple[str, npt.NDArray[Any], Optional[Labels]]] = []
        test_x = _float_rows(test[0], "test embeddings")
        parts.append(("test", test_x, _labels(test[1], test_x.shape[0], "test labels")))
        if test_positive is not None:
            pos = _float_rows(test_positive, "test_positive")
            if pos.shape != test_x.shape:
                raise ValueError(f"test_positive is {list(pos.shape)} but test is {list(test_x.shape)}")
            parts.append(("test_positive", pos, None))
        if train is not None:
            train_x = _float_rows(train[0], "train embeddings")
            if train_x.shape[1] != test_x.shape[1]:
                raise ValueError(f"train rows have dimension {train_x.shape[1]}, test rows {test_x.shape[1]}")
            parts.append(("train", train_x, _labels(train[1], train_x.shape[0], "train labels")))
        header = evaluation_pb2.EmbeddingsHeader(
            name=name, spec=spec_to_proto(spec), loss=loss, loss_name=loss_name, dataset=dataset, detach=detach
        )
        if temperature is not None:
            header.temperature = float(temperature)

        requests = embeddings_requests(header, parts)
        report = EvaluationReport.from_proto(self._call(self._evaluation.EvaluateEmbeddings, requests))
        if detach:
            return EvaluationHandle(cast("Client", self), Accepted(evaluation_ids=[report.id], status=report.status))
        return report

    def get_evaluation(self, id: str) -> EvaluationReport:
        """An evaluation's report as it is now (also while QUEUED or RUNNING)."""
        return EvaluationReport.from_proto(
            self._call(self._evaluation.GetEvaluation, evaluation_pb2.GetEvaluationRequest(id=id), idempotent=True)
        )

    def list_evaluations(
        self, model: str = "", dataset: str = "", limit: Optional[int] = None, *, page_size: int = 0
    ) -> List[EvaluationReport]:
        """Stored evaluations, newest first, of `model` and/or on `dataset`
        (empty: any); at most `limit` (``None``: all, page by page)."""
        out: List[EvaluationReport] = []
        token = ""
        while True:
            size = page_size or (min(limit - len(out), 1000) if limit is not None else 0)
            r = self._call(
                self._evaluation.ListEvaluations,
                evaluation_pb2.ListEvaluationsRequest(model=model, dataset=dataset, page_size=size, page_token=token),
                idempotent=True,
            )
            out.extend(EvaluationReport.from_proto(e) for e in r.evaluations)
            token = r.next_page_token
            if not token or (limit is not None and len(out) >= limit):
                return out[:limit] if limit is not None else out

    def watch_evaluation(self, id: str) -> Iterator[Union[Progress, EvaluationReport]]:
        """Follows an evaluation: its :class:`~embedeval.types.Progress`
        events, then its report (in whatever status it ended) as the last
        item; for an evaluation that has ended, the report alone."""
        events = self._stream(self._evaluation.WatchEvaluation, evaluation_pb2.WatchEvaluationRequest(id=id))
        try:
            for event in events:
                kind = event.WhichOneof("event")
                if kind == "progress":
                    yield Progress.from_proto(event.progress)
                elif kind == "report":
                    yield EvaluationReport.from_proto(event.report)
                    return
        finally:
            events.close()

    def wait_evaluation(
        self, id: str, progress: bool = False, *, on_progress: Optional[ProgressCallback] = None
    ) -> EvaluationReport:
        """Waits for an evaluation to end (WatchEvaluation); returns its report."""
        with ProgressDisplay(progress, on_progress) as display:
            for item in self.watch_evaluation(id):
                if isinstance(item, Progress):
                    display.update(item)
                else:
                    return item
        raise Internal(f"WatchEvaluation({id}) ended without a report")

    def cancel_evaluation(self, id: str) -> EvaluationStatus:
        """Stops a queued or running evaluation (with the rest of its job);
        returns the status it ended in."""
        r = self._call(self._evaluation.CancelEvaluation, evaluation_pb2.CancelEvaluationRequest(id=id))
        known = r.status in evaluation_pb2.EvaluationStatus.values()
        value = evaluation_pb2.EvaluationStatus.Name(r.status) if known else None
        return EvaluationStatus(value) if value else EvaluationStatus.EVALUATION_STATUS_UNSPECIFIED

    def delete_evaluation(self, id: str) -> None:
        """Removes a stored evaluation that has ended (COMPLETED, FAILED,
        CANCELLED or SKIPPED); comparisons that held it leave it out from
        then on. Raises :class:`~embedeval.errors.FailedPrecondition` for one
        still queued or running (cancel it first) and
        :class:`~embedeval.errors.NotFound` for an unknown id."""
        if not isinstance(id, str) or not id:
            raise ValueError("the evaluation id must be a non-empty string")
        self._call(self._evaluation.DeleteEvaluation, evaluation_pb2.DeleteEvaluationRequest(id=id))
