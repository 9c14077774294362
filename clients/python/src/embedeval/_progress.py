"""Progress of evaluations: tqdm bars (when tqdm is installed) and a callback."""
from __future__ import annotations

import sys
from typing import Any, Callable, Optional, Tuple

from .types import Progress

ProgressCallback = Callable[[Progress], None]


def _tqdm() -> Optional[Any]:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class ProgressDisplay:
    """Shows progress events: one tqdm bar per stage (and model of a
    comparison) when `bars` is true and tqdm is installed, and each event
    handed to `callback` when there is one."""

    def __init__(self, bars: bool, callback: Optional[ProgressCallback] = None) -> None:
        self._tqdm = _tqdm() if bars else None
        self._callback = callback
        self._bar: Any = None
        self._key: Optional[Tuple[Any, ...]] = None

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, p: Progress) -> None:
        if self._callback is not None:
            self._callback(p)
        if self._tqdm is None:
            return
        key = (p.model_index, p.model, p.stage)
        if key != self._key:
            self.close()
            self._key = key
            desc = p.stage
            if p.models > 1:
                desc = f"[{p.model_index}/{p.models}] {p.model} {p.stage}"
            self._bar = self._tqdm(total=p.total or None, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)
        bar = self._bar
        if p.total and bar.total != p.total:
            bar.total = p.total
        if p.done >= bar.n:
            bar.update(p.done - bar.n)
        else:
            bar.n = p.done
            bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._key = None
