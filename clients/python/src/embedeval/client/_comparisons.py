"""EvaluationService calls of the client across models: compare models on a
dataset, list, get and delete stored comparisons, draw figures of stored
reports, and follow training runs (the mixin :class:`_Comparisons` of
:class:`~embedeval.client.Client`), with the figure options by the CLI's
names."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Literal, Mapping, Optional, Sequence, TypeVar, Union, cast, overload

from google.protobuf.message import Message

from .. import _toml
from .._progress import ProgressCallback, ProgressDisplay
from .._proto import evaluation_pb2
from ..errors import Internal
from ..types import (
    Accepted,
    AugmentationLike,
    Comparison,
    ComparisonSummary,
    Figure,
    NearestImages,
    Progress,
    Projections,
    Run,
    RunSummary,
)
from ._connection import _Connection
from ._evaluation import SpecLike, _spec_with
from ._handles import ComparisonHandle

if TYPE_CHECKING:  # pragma: no cover
    from . import Client

E = TypeVar("E", bound=int)



def _figure_kinds() -> Mapping[str, evaluation_pb2.FigureKind]:
    """Each value of the proto's ``FigureKind`` (but UNSPECIFIED) by the
    names the CLI takes: its name in lower case (``uniformity_tolerance``)
    and, for a name of several words, its initials (``ut``)."""
    kinds: dict[str, evaluation_pb2.FigureKind] = {}
    for name, number in evaluation_pb2.FigureKind.items():
        if number == 0:
            continue
        words = name.lower().split("_")
        kind = cast(evaluation_pb2.FigureKind, number)
        kinds["_".join(words)] = kind
        if len(words) > 1:
            kinds["".join(w[0] for w in words)] = kind
    return kinds


#: The figure options by the names the CLI takes (``embedeval plot --kind
#: uniformity_tolerance|ut|accuracy|negatives|... --plot-format svg|png
#: --plot-size screen|column``); the kinds are the proto's.
FIGURE_KINDS: Mapping[str, evaluation_pb2.FigureKind] = _figure_kinds()
FIGURE_FORMATS: Mapping[str, evaluation_pb2.FigureFormat] = {"svg": evaluation_pb2.SVG, "png": evaluation_pb2.PNG}
FIGURE_SIZES: Mapping[str, evaluation_pb2.FigureSize] = {
    "screen": evaluation_pb2.SCREEN,
    "column": evaluation_pb2.COLUMN,
}


def _figure_option(value: str, options: Mapping[str, E], what: str) -> E:
    """The enum number of a figure option named as on the command line."""
    number = options.get(value.lower()) if isinstance(value, str) else None
    if number is None:
        raise ValueError(f"unknown figure {what} {value!r}: one of {', '.join(options)}")
    return number


def figure_request(
    id: str,
    kind: str = "ut",
    format: str = "svg",
    size: str = "screen",
    x: str = "",
    group_by: str = "",
    label: str = "",
    metric: str = "",
) -> Message:
    """The RenderFigure request for the CLI's names of kind, format and size
    (ValueError for any other name), with the accuracy figure's `x`,
    `group_by` and `metric` and the uniformity-tolerance figure's `label` as
    given ("" for the server's defaults; TypeError for anything but a
    string: the server checks the names)."""
    for name, value in (("x", x), ("group_by", group_by), ("label", label), ("metric", metric)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a tag name, got {type(value).__name__}")
    return evaluation_pb2.RenderFigureRequest(
        id=id,
        kind=_figure_option(kind, FIGURE_KINDS, "kind"),
        format=_figure_option(format, FIGURE_FORMATS, "format"),
        size=_figure_option(size, FIGURE_SIZES, "size"),
        x=x,
        group_by=group_by,
        label=label,
        metric=metric,
    )


class _Comparisons(_Connection):
    """The EvaluationService calls of :class:`~embedeval.client.Client`
    across models: comparisons, figures and runs."""

    # As evaluate's: the comparison, or with detach=True its handle.
    @overload
    def compare(
        self, models: Optional[Sequence[str]] = None, dataset: str = "", spec: SpecLike = None, test_split: str = "",
        train_split: str = "", progress: bool = True, detach: Literal[False] = False, *,
        on_progress: Optional[ProgressCallback] = None, augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None, tags: Optional[Mapping[str, Any]] = None, by: str = "",
    ) -> Comparison: ...

    @overload
    def compare(
        self, models: Optional[Sequence[str]] = None, dataset: str = "", spec: SpecLike = None, test_split: str = "",
        train_split: str = "", progress: bool = True, *, detach: Literal[True],
        on_progress: Optional[ProgressCallback] = None, augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None, tags: Optional[Mapping[str, Any]] = None, by: str = "",
    ) -> ComparisonHandle: ...

    @overload
    def compare(
        self, models: Optional[Sequence[str]], dataset: str, spec: SpecLike, test_split: str,
        train_split: str, progress: bool, detach: Literal[True], *,
        on_progress: Optional[ProgressCallback] = None, augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None, tags: Optional[Mapping[str, Any]] = None, by: str = "",
    ) -> ComparisonHandle: ...

    @overload
    def compare(
        self, models: Optional[Sequence[str]] = None, dataset: str = "", spec: SpecLike = None, test_split: str = "",
        train_split: str = "", progress: bool = True, detach: bool = False, *,
        on_progress: Optional[ProgressCallback] = None, augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None, tags: Optional[Mapping[str, Any]] = None, by: str = "",
    ) -> Union[Comparison, ComparisonHandle]: ...

    def compare(
        self,
        models: Optional[Sequence[str]] = None,
        dataset: str = "",
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
        by: str = "",
    ) -> Union[Comparison, ComparisonHandle]:
        """Evaluates several models (``None``: every model) on `dataset`.

        Returns a :class:`~embedeval.types.Comparison` (``.rows``, one report
        per model evaluated; ``.excluded``, the models left out, each an
        :class:`~embedeval.types.ExcludedModel` with its ``kind``: "does not
        fit" for a model whose input does not take the dataset's images,
        "duplicate" for one with the same ONNX file and preprocessing as
        its ``same_as``; ``.plot_svg`` and ``.accuracy_plot_svg``;
        ``.to_pandas()``; ``.recommendations``, which tau to keep per loss,
        each a :class:`~embedeval.types.Recommendation`, and
        ``.recommend(loss)``; ``.id``, under which it is stored: see
        :meth:`get_comparison` and :meth:`render_figure`), or a
        :class:`ComparisonHandle` (``.comparison_id``, ``.excluded``) with
        `detach`. Other arguments, `augmentation` and `positives_split`
        among them, as in :meth:`evaluate`. Sweeps are read along the
        models' tags (``ModelInfo.tags``):

        Args:
            tags: only the models that have every one of these tags with
                these values (as :meth:`list_models` filters): among every
                model when `models` is ``None``, else among those named.
                :class:`~embedeval.errors.InvalidArgument` when none has them.
            by: aggregate over this tag (e.g. ``"seed"``): the models that
                share every other tag (and their loss and tau) form a group,
                and ``Comparison.groups`` holds one
                :class:`~embedeval.types.TagGroup` per group, in the order of
                its first row, with the mean, sample standard deviation and
                95% Student-t interval of the mean of each metric over its
                COMPLETED models (``Comparison.groups_to_pandas()``). A
                detached comparison's handle asks for the same groups when
                it waits.
        """
        if not dataset:
            raise ValueError("compare needs a dataset")
        if isinstance(models, str):
            models = [models]
        if not isinstance(by, str):
            raise TypeError(f"by must be a tag name, got {type(by).__name__}")
        request = evaluation_pb2.CompareRequest(
            models=list(models or []),
            dataset=dataset,
            spec=_spec_with(spec, augmentation, positives_split),
            detach=detach,
            test_split=test_split,
            train_split=train_split,
            tags=_toml.check_tags(tags),
            by=by,
        )
        events = self._stream(self._evaluation.Compare, request)
        try:
            if detach:
                for event in events:
                    if event.HasField("accepted"):
                        return ComparisonHandle(cast("Client", self), Accepted.from_proto(event.accepted), by=by)
                raise Internal("the server ended a detached Compare without accepting it")
            with ProgressDisplay(progress, on_progress) as display:
                for event in events:
                    kind = event.WhichOneof("event")
                    if kind == "progress":
                        display.update(Progress.from_proto(event.progress))
                    elif kind == "comparison":
                        return Comparison.from_proto(event.comparison)
            raise Internal("the server ended the stream without a comparison")
        finally:
            events.close()

    def list_comparisons(self, dataset: str = "", limit: int = 0) -> List[ComparisonSummary]:
        """The stored comparisons, newest first (on `dataset` only, when
        given): id, dataset, when, the models of each and the short content
        ids of the dataset versions its rows were made on. All of them,
        page by page, or at most `limit`."""
        out: List[ComparisonSummary] = []
        token = ""
        while True:
            page = self._call(
                self._evaluation.ListComparisons,
                evaluation_pb2.ListComparisonsRequest(dataset=dataset, page_size=0, page_token=token),
                idempotent=True,
            )
            out.extend(ComparisonSummary.from_proto(c) for c in page.comparisons)
            token = page.next_page_token
            if not token or (limit and len(out) >= limit):
                return out[:limit] if limit else out

    def delete_comparison(self, id: str) -> None:
        """Removes a stored comparison (its evaluations stay: they are
        reports of their own). Raises :class:`~embedeval.errors.NotFound`
        for an unknown id."""
        if not isinstance(id, str) or not id:
            raise ValueError("the comparison id must be a non-empty string")
        self._call(self._evaluation.DeleteComparison, evaluation_pb2.DeleteComparisonRequest(id=id))

    def get_comparison(self, id: str, by: str = "") -> Comparison:
        """A stored comparison by id: its rows as they are now (a detached
        one may still be running), with its two plots drawn again and its
        recommendations worked out again from those rows; with `by` (a tag,
        e.g. ``"seed"``), its ``groups`` along that tag, as
        :meth:`compare` gives them (any tag, whatever the comparison was
        made with)."""
        if not isinstance(by, str):
            raise TypeError(f"by must be a tag name, got {type(by).__name__}")
        request = evaluation_pb2.GetComparisonRequest(id=id, by=by)
        return Comparison.from_proto(self._call(self._evaluation.GetComparison, request, idempotent=True))

    def render_figure(
        self,
        id: str,
        kind: str = "ut",
        format: str = "svg",
        size: str = "screen",
        x: str = "",
        group_by: str = "",
        label: str = "",
        metric: str = "",
    ) -> Figure:
        """Draws a figure of a stored comparison (`id`: a comparison id, its
        completed rows) or of one evaluation (an evaluation id) from the
        stored reports, without recomputing anything.

        Args:
            kind: ``"ut"`` (uniformity against tolerance, Wang & Liu Figs.
                4-7), ``"accuracy"`` (kNN and linear top-1 against tau),
                ``"negatives"`` (the positive against the nearest negatives,
                Fig. 8), ``"penalty"`` (the relative penalty over the
                nearest negatives, Fig. 3), ``"classes"`` (each class's
                tolerance against tau), ``"confusion"`` (which classes each
                class's k nearest other rows come from, at the smallest and
                largest tau) or ``"pareto"`` (the uniformity-tolerance Pareto
                front of each loss, its knee and the recommended model).
            format: ``"svg"`` or ``"png"``.
            size: ``"screen"`` (1280 x 860 px) or ``"column"`` (a paper
                column at 300 dpi, 1050 x 840 px).
            x: the accuracy figure's x axis: ``"temperature"`` (the default,
                ``""``: tau on a log axis, the tau-free losses at infinity)
                or a tag with numeric values on a linear axis, e.g.
                ``"seed"``, ``"epochs"``, ``"step"`` (the models without a
                numeric value of it are left out, and said so on the
                figure). Several models of one colour at one x are drawn as
                their mean with the 95% t-interval across them, each model
                faint behind it.
            group_by: the accuracy figure's colours: ``"loss"`` (the
                default, ``""``) or a tag, one colour per value (``"-"``
                for the models without it).
            label: what labels each point of the uniformity-tolerance
                figure: ``"temperature"`` (the default, ``""``), ``"name"``
                (the model) or a tag's value; the models of one tau are
                joined through their centroid.
            metric: the accuracy figure's metric: ``"top1"`` (the default,
                ``""``: the kNN's and the linear probe's top-1),
                ``"map_at_r"``, ``"r_precision"`` or ``"precision_at_1"``.

        Returns the :class:`~embedeval.types.Figure` (``.save(path)``).
        Other names of kind, format and size raise ValueError without a
        call; an unknown id raises :class:`~embedeval.errors.NotFound`, and
        ids with nothing the figure needs
        :class:`~embedeval.errors.FailedPrecondition` (so does an `x` tag
        that no model has a numeric value of). `x` or `group_by`
        other than their defaults on another kind than ``"accuracy"``,
        `label` other than its default on another kind than ``"ut"``, or
        a name that is no tag key, raise
        :class:`~embedeval.errors.InvalidArgument` from the server.
        """
        request = figure_request(id, kind, format, size, x, group_by, label, metric)
        return Figure.from_proto(self._call(self._evaluation.RenderFigure, request, idempotent=True))

    def project(
        self,
        comparison_id: str = "",
        models: Optional[Sequence[str]] = None,
        dataset: str = "",
        split: str = "",
        method: str = "pca",
        max_rows: int = 0,
        seed: int = 0,
        perplexity: float = 0.0,
    ) -> Projections:
        """The embedding space: each model's embeddings (scaled to unit
        length, as every metric sees them) of a stratified, seeded sample
        of a split (up to `max_rows`, 0: 2,000, at most 5,000), projected
        to two dimensions by `method` (``"pca"``, exact, or ``"tsne"``,
        Barnes-Hut t-SNE with `perplexity`, 0: 30), and the
        server's picture of them side by side, one colour per class.

        Name a stored comparison (its dataset, and by default its models of
        smallest and largest tau), or `models` and `dataset`. Made from the
        embeddings an evaluation cached: a model not yet evaluated on the
        split raises :class:`~embedeval.errors.FailedPrecondition` naming
        the evaluation to run. The same request gives the same picture.

        Returns :class:`~embedeval.types.Projections`: ``.projections[i]
        .coordinates`` (numpy, rows x 2), ``.rows``, ``.labels``,
        ``.class_names``, ``.svg`` (``.save(path)``; Jupyter shows it).
        """
        methods = {"pca": evaluation_pb2.PCA, "tsne": evaluation_pb2.TSNE}
        if method not in methods:
            raise ValueError(f"unknown method {method!r}: one of pca, tsne")
        request = evaluation_pb2.ProjectEmbeddingsRequest(
            comparison_id=comparison_id,
            models=list(models or []),
            dataset=dataset,
            split=split,
            method=methods[method],
            max_rows=max_rows,
            seed=seed,
            perplexity=perplexity,
        )
        return Projections.from_proto(self._call(self._evaluation.ProjectEmbeddings, request, idempotent=True))

    def nearest_images(
        self,
        comparison_id: str = "",
        row: int = 0,
        k: int = 0,
        models: Optional[Sequence[str]] = None,
        dataset: str = "",
        test_split: str = "",
        train_split: str = "",
        pairs: int = 0,
    ) -> NearestImages:
        """Test image `row`'s `k` (0: 8, at most 50) nearest training images
        under each model (cosine similarity, exact), and for each class the
        class its rows' nearest training images most often come from
        instead, with its `pairs` (0: 3) most similar pairs.

        Name a stored comparison (its dataset and, by default, its models)
        or `models` and `dataset`. Made from the embeddings the models'
        evaluations cached (:class:`~embedeval.errors.FailedPrecondition`
        names the evaluation to run when they are not).

        Returns :class:`~embedeval.types.NearestImages` (``[model]`` gives a
        model's ``.neighbours`` and ``.confusions``).
        """
        request = evaluation_pb2.NearestImagesRequest(
            comparison_id=comparison_id,
            models=list(models or []),
            dataset=dataset,
            test_split=test_split,
            train_split=train_split,
            row=row,
            k=k,
            pairs=pairs,
        )
        return NearestImages.from_proto(self._call(self._evaluation.NearestImages, request, idempotent=True))

    def list_runs(self) -> List[RunSummary]:
        """Every training run (the models whose cards name a run), sorted by
        name: its number of checkpoints, first and last step, and the loss
        and tau of its latest checkpoint."""
        r = self._call(self._evaluation.ListRuns, evaluation_pb2.ListRunsRequest(), idempotent=True)
        return [RunSummary.from_proto(s) for s in r.runs]

    def get_run(self, name: str, dataset: str) -> Run:
        """Run `name` on `dataset`: its checkpoints in step order, each with
        its latest COMPLETED report on the dataset (of exactly that
        checkpoint: same sha256; ``None`` before it is evaluated), and the
        warnings its path raises (``"dimensional_collapse"``,
        ``"complete_collapse"``, ``"small_tau"``, each with the step where it
        began). ``.to_pandas()`` gives one row per checkpoint. An unknown
        run raises :class:`~embedeval.errors.NotFound`."""
        if not dataset:
            raise ValueError("get_run needs the dataset whose reports to show")
        return Run.from_proto(
            self._call(
                self._evaluation.GetRun, evaluation_pb2.GetRunRequest(name=name, dataset=dataset), idempotent=True
            )
        )
