"""Several models on one dataset: the comparison, the models it left out,
which tau to keep per loss, and the groups along a tag."""
from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterator,
    List,
    Optional,
    Tuple,
    Union,
    cast,
)

import numpy as np
from google.protobuf.message import Message

from ._base import _Message
from .enums import EvaluationStatus
from .reports import EvaluationReport, _row_columns

if TYPE_CHECKING:  # the generated messages, named in annotations and casts only
    from .._proto import evaluation_pb2


@dataclasses.dataclass
class ExcludedModel(_Message):
    """A model a comparison left out, and why: ``kind`` is "does not fit"
    (its input does not take the dataset's images) or "duplicate" (the same
    ONNX file and preprocessing as ``same_as``, evaluated in its place)."""

    _proto_name = "embedeval.v1.ExcludedModel"

    model: str = ""
    #: "does not fit" or "duplicate".
    kind: str = ""
    #: Said for people.
    reason: str = ""
    #: For a duplicate: the model evaluated in its place.
    same_as: str = ""


#: z of a two-sided 95% interval (the server's ``wilson95``).
_Z95 = 1.959963984540054


def _wilson95(p_hat: float, n: int) -> Tuple[float, float]:
    """The 95% Wilson score interval (Wilson 1927) of a proportion `p_hat`
    over `n` trials, clamped to [0, 1], as the server computes it; (0, 1)
    when `n` is 0."""
    if n == 0:
        return 0.0, 1.0
    z2 = _Z95 * _Z95
    denom = 1.0 + z2 / n
    centre = (p_hat + z2 / (2.0 * n)) / denom
    half = _Z95 / denom * float(np.sqrt(p_hat * (1.0 - p_hat) / n + z2 / (4.0 * n * n)))
    return max(centre - half, 0.0), min(centre + half, 1.0)


@dataclasses.dataclass
class AccuracyInterval(_Message):
    """A top-1 accuracy of one model with its 95% Wilson interval over the
    test rows (``Recommendation.best_knn`` and ``best_linear``)."""

    _proto_name = "embedeval.v1.AccuracyInterval"

    model: str = ""
    #: The model's training tau.
    temperature: float = 0.0
    top1: float = 0.0
    #: Lower and upper bound of the 95% Wilson interval.
    lo: float = 0.0
    hi: float = 0.0


@dataclasses.dataclass
class ClassTolerance(_Message):
    """One class's tolerance at the largest and the smallest tau of a
    sweep (``Recommendation.tolerance_falls``)."""

    _proto_name = "embedeval.v1.ClassTolerance"

    label: int = 0
    at_largest_tau: float = 0.0
    at_smallest_tau: float = 0.0
    #: ``at_largest_tau - at_smallest_tau``.
    fall: float = 0.0
    #: The class's name (``PerClass.names``); empty where the dataset names none.
    name: str = ""


#: The columns of :meth:`Recommendation.frame`, in order.
RECOMMENDATION_COLUMNS = (
    "model", "temperature", "uniformity", "tolerance",
    "knn_top1", "knn_lo", "knn_hi", "linear_top1", "linear_lo", "linear_hi",
    "on_front", "knee", "tied", "recommended",
)


@dataclasses.dataclass
class Recommendation(_Message):
    """Which tau to keep among the models of one loss (Wang & Liu's
    uniformity-tolerance dilemma), as the server works it out over the
    comparison's COMPLETED rows of the loss that have both uniformity and
    tolerance.

    ``front`` is the Pareto front of (uniformity, tolerance), both
    higher-is-better, by increasing uniformity; ``knee`` its point farthest
    beyond the chord between its two ends towards the ideal corner (both
    axes scaled to [0, 1] over the front: the largest sum of scaled
    coordinates, the smaller tau on a tie); ``best_knn`` and ``best_linear`` the most accurate models with
    their 95% Wilson intervals over the test rows (``None`` where no row has
    that probe). ``recommended`` is the most accurate model by the linear
    probe (the kNN where the probe was skipped, the retrieval metrics'
    Precision@1 where both were) when no other model's
    interval reaches its; otherwise accuracy cannot tell the models in
    ``tied`` apart and the one of them nearest the knee is recommended.
    ``reason`` says which, in one sentence. A recommendation from
    ``comparison.recommendations`` knows the comparison's rows:
    :meth:`frame` tabulates them.
    """

    _proto_name = "embedeval.v1.Recommendation"

    loss: str = ""
    #: Models on the front, by increasing uniformity.
    front: List[str] = dataclasses.field(default_factory=list)
    #: The model at the front's knee ("" when the front is empty).
    knee: str = ""
    #: The best kNN top-1 with its interval (``None`` without the kNN).
    best_knn: Optional[AccuracyInterval] = None
    #: The best linear-probe top-1 with its interval (``None`` without the probe).
    best_linear: Optional[AccuracyInterval] = None
    #: Models whose 95% interval reaches the best one's (the best included;
    #: by the linear probe, or the kNN where the probe was skipped).
    tied: List[str] = dataclasses.field(default_factory=list)
    #: The model to keep, and its training tau.
    recommended: str = ""
    recommended_temperature: float = 0.0
    #: Why, in one sentence (it starts with "τ = " and the recommended tau).
    reason: str = ""
    #: The classes whose tolerance falls most from the largest tau to the
    #: smallest (where both rows have per-class diagnostics), largest fall
    #: first, at most 10.
    tolerance_falls: List[ClassTolerance] = dataclasses.field(default_factory=list)

    #: The comparison's rows, set by :class:`Comparison` (not a field).
    _rows = None  # type: Optional[List[EvaluationReport]]

    def frame(self, rows: Optional[List[EvaluationReport]] = None) -> Any:
        """One row per COMPLETED model of the loss, by increasing tau (of
        the comparison it came from, or of `rows`): ``model``,
        ``temperature``, ``uniformity``, ``tolerance``, ``knn_top1`` and
        ``linear_top1`` each with its 95% Wilson interval (``knn_lo``,
        ``knn_hi``, ``linear_lo``, ``linear_hi``; missing where the probe was
        skipped), and whether the model is ``on_front``, the ``knee``,
        ``tied`` with the best (the best included), the ``recommended`` one,
        as a ``pandas.DataFrame`` (needs pandas: ``pip install
        embedeval-client[pandas]``). ValueError for a recommendation that
        did not come from a comparison when `rows` is not given."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError(
                "Recommendation.frame needs pandas: pip install pandas (or embedeval-client[pandas])"
            ) from e
        if rows is None:
            rows = self._rows
        if rows is None:
            raise ValueError(
                "this Recommendation does not know the comparison's rows (take it from "
                "comparison.recommendations or comparison.recommend()), or pass them: frame(rows=comparison.rows)"
            )
        mine = sorted(
            (r for r in rows if r.loss == self.loss and r.status == EvaluationStatus.COMPLETED),
            key=lambda r: r.temperature,
        )
        nan = float("nan")

        def measured(value: Optional[float]) -> float:
            return nan if value is None else float(value)

        def interval(result: Any, n: int) -> Tuple[float, float, float]:
            if result is None:
                return nan, nan, nan
            return (float(result.top1), *_wilson95(float(result.top1), n))

        table: Dict[str, List[Any]] = {c: [] for c in RECOMMENDATION_COLUMNS}
        for r in mine:
            knn = interval(r.knn, r.num_test)
            linear = interval(r.linear, r.num_test)
            values = (
                r.model, float(r.temperature), measured(r.uniformity), measured(r.tolerance),
                *knn, *linear,
                r.model in self.front, r.model == self.knee, r.model in self.tied, r.model == self.recommended,
            )
            for column, value in zip(RECOMMENDATION_COLUMNS, values):
                table[column].append(value)
        frame = pd.DataFrame(table, columns=list(RECOMMENDATION_COLUMNS))
        for column in ("on_front", "knee", "tied", "recommended"):
            frame[column] = frame[column].astype(bool)
        return frame


#: The headline metrics a :class:`TagGroup` summarises, in the server's
#: order (the column names of :meth:`EvaluationReport.to_row`;
#: ``nn1_similarity`` is ``nearest_negative_similarity[0]``).
GROUP_METRICS = (
    "uniformity", "tolerance", "alignment", "positive_similarity", "nn1_similarity",
    "penalty_entropy", "effective_rank", "knn_top1", "linear_top1", "map_at_r", "r_precision",
)


@dataclasses.dataclass
class MetricSummary(_Message):
    """One metric over the models of a :class:`TagGroup`: how many had it,
    its mean, sample standard deviation and the half-width of the 95%
    interval of the mean (Student's t)."""

    _proto_name = "embedeval.v1.MetricSummary"

    #: One of :data:`GROUP_METRICS`.
    metric: str = ""
    #: Models with a value of it (COMPLETED, the metric computed).
    n: int = 0
    mean: float = 0.0
    #: Sample standard deviation (divisor n - 1); 0 when n = 1.
    std: float = 0.0
    #: Half-width of the 95% interval of the mean:
    #: ``t(0.975, n - 1) * std / sqrt(n)``; 0 when n = 1.
    interval: float = 0.0

    @property
    def lo(self) -> float:
        """Lower end of the 95% interval of the mean (``mean - interval``)."""
        return self.mean - self.interval

    @property
    def hi(self) -> float:
        """Upper end of the 95% interval of the mean (``mean + interval``)."""
        return self.mean + self.interval


@dataclasses.dataclass
class TagGroup(_Message):
    """The models of a comparison that share every tag but the one it
    aggregates over (``compare(..., by="seed")``: the seeds of one setting),
    summarised per metric: the seed-averaged rows papers print.

    ``metrics`` holds one :class:`MetricSummary` per metric of
    :data:`GROUP_METRICS` that at least one COMPLETED model of the group
    has, in that order; :meth:`metric` finds one by name and :meth:`to_row`
    flattens the group for a table (``Comparison.groups_to_pandas()``)."""

    _proto_name = "embedeval.v1.TagGroup"

    #: The tags the group's models share (all but the aggregated one), with
    #: their loss and tau where their tags do not say them.
    tags: Dict[str, str] = dataclasses.field(default_factory=dict)
    #: The group's models, in the order of the comparison's rows.
    models: List[str] = dataclasses.field(default_factory=list)
    #: Each model's value of the aggregated tag ("" for a model without it).
    values: List[str] = dataclasses.field(default_factory=list)
    #: One summary per metric the models have, in :data:`GROUP_METRICS` order.
    metrics: List[MetricSummary] = dataclasses.field(default_factory=list)

    def metric(self, name: str) -> Optional[MetricSummary]:
        """The summary of metric `name` (one of :data:`GROUP_METRICS`);
        ``None`` when no completed model of the group has it. ValueError
        for a name that is not a group metric."""
        if name not in GROUP_METRICS:
            raise ValueError(f"unknown metric {name!r}: one of {', '.join(GROUP_METRICS)}")
        return next((m for m in self.metrics if m.metric == name), None)

    def to_row(self, by: str = "values") -> Dict[str, Any]:
        """The group as one flat row: its tags, ``models`` (how many),
        `by` (the aggregated tag's values joined by ","), then for each
        metric of :data:`GROUP_METRICS` ``<metric>_mean``, ``_std``,
        ``_interval`` (NaN where no model had it) and ``_n``."""
        nan = float("nan")
        row: Dict[str, Any] = dict(self.tags)
        row["models"] = len(self.models)
        row[by or "values"] = ",".join(self.values)
        for name in GROUP_METRICS:
            m = self.metric(name)
            row[f"{name}_mean"] = m.mean if m is not None else nan
            row[f"{name}_std"] = m.std if m is not None else nan
            row[f"{name}_interval"] = m.interval if m is not None else nan
            row[f"{name}_n"] = m.n if m is not None else 0
        return row


@dataclasses.dataclass
class Comparison(_Message):
    """Several models on one dataset: one report per model evaluated
    (sorted by loss then temperature), the models left out in ``excluded``
    (each once, with why: its input does not take the dataset's images, or
    it duplicates another model), two SVG plots, and which tau to keep per
    loss in ``recommendations`` (:meth:`recommend` gives one). It is stored
    under ``id``: ``client.get_comparison(id)`` gives it back and
    ``client.render_figure(id, ...)`` draws its figures. Asked for ``by`` a
    tag (``compare(..., by="seed")``), its ``groups`` summarise the models
    that share every other tag (:class:`TagGroup`;
    :meth:`groups_to_pandas` tabulates them)."""

    _proto_name = "embedeval.v1.Comparison"

    rows: List[EvaluationReport] = dataclasses.field(default_factory=list)
    #: Uniformity against tolerance, tau on a colour scale (SVG, screen size).
    plot_svg: bytes = b""
    #: kNN and linear accuracy against tau (SVG, screen size).
    accuracy_plot_svg: bytes = b""
    #: The comparison's id (for ``get_comparison`` and ``render_figure``).
    id: str = ""
    #: The models left out, each once with its reason (not stored as reports).
    excluded: List[ExcludedModel] = dataclasses.field(default_factory=list)
    #: Which tau to keep, one per loss with completed rows (empty from a
    #: server older than them).
    recommendations: List[Recommendation] = dataclasses.field(default_factory=list)
    #: The tag the groups aggregate over ("" when none was asked for).
    by: str = ""
    #: With ``by``: one group per set of models sharing every tag but
    #: ``by`` (and their loss and tau), in the order of their first row.
    groups: List[TagGroup] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        # Each recommendation tabulates the comparison's rows (Recommendation.frame).
        for rec in self.recommendations:
            rec._rows = self.rows

    @classmethod
    def from_proto(cls, msg: Message) -> Comparison:
        m = cast("evaluation_pb2.Comparison", msg)
        return cls(
            rows=[EvaluationReport.from_proto(r) for r in m.rows],
            plot_svg=m.plot_svg.encode("utf-8"),
            accuracy_plot_svg=m.accuracy_plot_svg.encode("utf-8"),
            id=m.id,
            excluded=[ExcludedModel.from_proto(e) for e in m.excluded],
            recommendations=[Recommendation.from_proto(r) for r in m.recommendations],
            by=m.by,
            groups=[TagGroup.from_proto(g) for g in m.groups],
        )

    def recommend(self, loss: Optional[str] = None) -> Recommendation:
        """The :class:`Recommendation` for `loss`; without one, the only
        recommendation of the comparison. ValueError, naming the losses that
        have one, for a loss without a recommendation or, without `loss`,
        when there is not exactly one."""
        losses = [r.loss for r in self.recommendations]
        if loss is None:
            if len(self.recommendations) == 1:
                return self.recommendations[0]
            if not self.recommendations:
                raise ValueError(
                    "the comparison has no recommendation (no completed model has both uniformity and tolerance)"
                )
            raise ValueError(
                f"the comparison has a recommendation for each of {len(losses)} losses: "
                f"{', '.join(losses)}; choose one with recommend(loss=...)"
            )
        for rec in self.recommendations:
            if rec.loss == loss:
                return rec
        have = f"the losses with one are {', '.join(losses)}" if losses else "it has none"
        raise ValueError(f"the comparison has no recommendation for loss {loss!r}: {have}")

    def __getitem__(self, model: Union[int, str]) -> EvaluationReport:
        """A row by position or by model name."""
        if isinstance(model, int):
            return self.rows[model]
        for row in self.rows:
            if row.model == model:
                return row
        raise KeyError(model)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[EvaluationReport]:
        return iter(self.rows)

    def to_pandas(self) -> Any:
        """The rows' headline numbers (:meth:`EvaluationReport.to_row`) as a
        ``pandas.DataFrame``, the ``tag.<key>`` columns of all rows after
        them, sorted (missing where a row has no such tag; needs pandas:
        ``pip install embedeval-client[pandas]``)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("Comparison.to_pandas needs pandas: pip install pandas") from e
        rows = [row.to_row() for row in self.rows]
        return pd.DataFrame(rows, columns=_row_columns(list(EvaluationReport().to_row()), rows) if rows else None)

    def groups_to_pandas(self, all_tags: bool = False) -> Any:
        """The groups (one row each, in order, :meth:`TagGroup.to_row`) as a
        ``pandas.DataFrame``: the tags that tell the groups apart (``loss``
        and ``temperature`` always, the latter unless it is ``by``; with
        `all_tags`, every tag), ``models`` (how many), the ``by`` column (the
        aggregated tag's values joined by ","), then ``<metric>_mean``,
        ``_std``, ``_interval`` and ``_n`` for each metric of
        :data:`GROUP_METRICS`. Tag values are text, as the server keeps
        them. Empty (those columns, no rows) without ``by`` (needs pandas:
        ``pip install embedeval-client[pandas]``)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Comparison.groups_to_pandas needs pandas: pip install pandas (or embedeval-client[pandas])"
            ) from e
        by = self.by or "values"
        keys = [k for k in ("loss", "temperature") if k != by]
        for key in sorted({k for g in self.groups for k in g.tags}):
            if key in keys or key == by:
                continue
            first = self.groups[0].tags.get(key)
            if all_tags or any(g.tags.get(key) != first for g in self.groups):
                keys.append(key)
        metrics = [f"{m}_{part}" for m in GROUP_METRICS for part in ("mean", "std", "interval", "n")]
        columns = [*keys, "models", by, *metrics]
        rows = []
        for group in self.groups:
            row = group.to_row(by)
            rows.append({c: row.get(c, "") if c in keys else row[c] for c in columns})
        frame = pd.DataFrame(rows, columns=columns)
        for m in GROUP_METRICS:
            frame[f"{m}_n"] = frame[f"{m}_n"].astype("int64")
        return frame


@dataclasses.dataclass
class ComparisonSummary(_Message):
    """A stored comparison without its rows (:meth:`Client.get_comparison`
    gives them)."""

    _proto_name = "embedeval.v1.ComparisonSummary"

    id: str = ""
    dataset: str = ""
    created_at: Optional[_dt.datetime] = None
    #: The models of its rows still stored, in the order of its request.
    models: List[str] = dataclasses.field(default_factory=list)
    num_evaluations: int = 0
    num_excluded: int = 0
    #: The short content ids of the dataset versions its rows were made on.
    dataset_ids: List[str] = dataclasses.field(default_factory=list)
