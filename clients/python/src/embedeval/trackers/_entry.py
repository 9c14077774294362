"""What a tracker is given (:class:`LogEntry`, made by :func:`report_entry`),
what a tracker is (:class:`Tracker`) and the steps each one counts."""
from __future__ import annotations

import dataclasses
import numbers
import struct
from typing import (
    Any,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Tuple,
    Union,
    runtime_checkable,
)

from ..types import Comparison, EvaluationReport, Figure, Histogram
from ._flatten import (
    PER_EVALUATION_KEYS,
    ConfigValue,
    _prefix,
    _segment,
    _shared_tags,
    comparison_config,
    comparison_scalars,
    report_config,
    report_histograms,
    report_scalars,
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
