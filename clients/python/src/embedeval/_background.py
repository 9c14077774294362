"""Evaluations that run beside a training loop.

A checkpoint exported to ONNX (a file and its card) is handed to a
:class:`BackgroundEvaluator`, which registers it, submits a detached
evaluation and follows it on a thread of its own: the loop waits only for
the export. The server being down or restarting does not lose a checkpoint:

- a call the server could not take (UNAVAILABLE, DEADLINE_EXCEEDED,
  RESOURCE_EXHAUSTED, an RPC cut short) is tried again with back-off
  (doubling up to a ceiling), with one warning per checkpoint once it has
  failed a few times, and goes on until the evaluator is closed;
- an evaluation the server ended by stopping (``CANCELLED`` "the server shut
  down ...", ``FAILED`` "interrupted: ...") is submitted again, and one the
  server no longer knows (NOT_FOUND after a restart on a new data folder) is
  registered and submitted again;
- anything else (a card or graph refused, an unknown dataset, a failed
  evaluation) ends the checkpoint with that error, warned about once.

Used by :func:`embedeval.torch.evaluate_module_async` and
:class:`embedeval.lightning.EmbedevalCallback`.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple

from .errors import (
    Cancelled,
    DeadlineExceeded,
    EmbedevalError,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from .types import EvaluationReport, EvaluationStatus

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client, SpecLike
    from .types import AugmentationLike

__all__ = ["Upload", "PendingEvaluation", "BackgroundEvaluator"]

log = logging.getLogger("embedeval")

#: Errors that may pass: the call is tried again after a pause.
TRANSIENT = (Unavailable, DeadlineExceeded, ResourceExhausted, Cancelled)


def interrupted(report: EvaluationReport) -> bool:
    """Whether `report` was ended by the server stopping rather than by the
    model: such an evaluation is submitted again. The server records a job it
    cancelled at shutdown as ``CANCELLED`` "the server shut down before the
    evaluation finished", and one whose replica stopped as ``FAILED``
    "interrupted: ..." (docs: Using it, "Shutdown")."""
    if report.status == EvaluationStatus.CANCELLED:
        return "shut down" in report.error
    if report.status == EvaluationStatus.FAILED:
        return report.error.startswith("interrupted")
    return False


@dataclass(frozen=True)
class Upload:
    """One exported checkpoint and what to do with it.

    ``card`` is the card's TOML text, built (and so checked) when the
    checkpoint was exported; ``onnx`` the exported file. The files in
    ``remove_when_done`` are removed once the evaluation has completed (and
    kept when it did not, for ``embedeval watch`` or another try)."""

    model: str
    onnx: Path
    card: str
    dataset: str
    #: Its step in its run (the card holds the run and the step).
    step: Optional[int] = None
    spec: SpecLike = None
    test_split: str = ""
    train_split: str = ""
    augmentation: Optional[AugmentationLike] = None
    positives_split: Optional[str] = None
    tags: Mapping[str, Any] = field(default_factory=dict)
    remove_when_done: Tuple[Path, ...] = ()
    #: Seconds the training loop spent exporting it.
    export_seconds: float = 0.0


class PendingEvaluation:
    """A checkpoint on its way through the server: registered, evaluated in
    the background, then its report. Like a ``concurrent.futures.Future``:
    :meth:`done`, :meth:`result`, :meth:`add_done_callback`."""

    def __init__(self, upload: Upload) -> None:
        self.upload = upload
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._report: Optional[EvaluationReport] = None
        self._error: Optional[BaseException] = None
        self._callbacks: List[Callable[[PendingEvaluation], None]] = []
        #: The evaluation's ID once the server accepted it (``None`` before).
        self.id: Optional[str] = None
        #: Where it is: "exported", "registering", "waiting for the server",
        #: "evaluating", "completed", "failed".
        self.state = "exported"
        #: Times the server was found unreachable (or busy) for it.
        self.failures = 0
        #: Times it was submitted again after the server stopped.
        self.resubmitted = 0

    def __repr__(self) -> str:
        return f"PendingEvaluation({self.model!r}, step={self.step}, {self.state})"

    @property
    def model(self) -> str:
        """The checkpoint's registry name."""
        return self.upload.model

    @property
    def step(self) -> Optional[int]:
        """Its step in its run."""
        return self.upload.step

    @property
    def export_seconds(self) -> float:
        """Seconds the training loop spent exporting it."""
        return self.upload.export_seconds

    def done(self) -> bool:
        """Whether it has ended (with a report or an error)."""
        return self._done.is_set()

    def result(self, timeout: Optional[float] = None) -> EvaluationReport:
        """Waits at most `timeout` seconds (``None``: as long as it takes)
        for the report (in whatever status it ended: see
        ``report.raise_for_status()``). Raises ``TimeoutError`` when it has
        not ended by then, and the error that ended it otherwise (e.g.
        :class:`~embedeval.errors.InvalidArgument` for a refused card)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"checkpoint {self.model} not evaluated after {timeout} s ({self.state})")
        if self._error is not None:
            raise self._error
        assert self._report is not None
        return self._report

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        """The error that ended it (``None`` when it ended with a report)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"checkpoint {self.model} not evaluated after {timeout} s ({self.state})")
        return self._error

    def add_done_callback(self, fn: Callable[[PendingEvaluation], None]) -> None:
        """Calls ``fn(self)`` when it ends (at once if it has), on the thread
        that ends it."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(fn)
                return
        fn(self)

    def _finish(self, report: Optional[EvaluationReport], error: Optional[BaseException]) -> None:
        with self._lock:
            self._report, self._error = report, error
            self.state = "completed" if report is not None and report.ok else "failed"
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            try:
                fn(self)
            except Exception:  # a callback's bug must not stop the others
                log.exception("embedeval: a callback of checkpoint %s failed", self.model)


class BackgroundEvaluator:
    """Registers and evaluates checkpoints on background threads (one per
    checkpoint, daemon threads: they do not keep the process alive).

    Args:
        client: the :class:`~embedeval.Client` to call (gRPC channels may be
            used from several threads).
        backoff: the first pause after a call the server could not take, in
            seconds; it doubles up to `max_backoff`.
        warn_after: failed tries of one checkpoint before its one warning.
        poll: seconds between looks at an evaluation in progress.
        warn: where warnings go (default: the ``embedeval`` logger).
    """

    def __init__(
        self,
        client: Client,
        *,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        warn_after: int = 3,
        poll: float = 1.0,
        warn: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.client = client
        self.backoff = max(0.01, float(backoff))
        self.max_backoff = max(self.backoff, float(max_backoff))
        self.warn_after = max(1, int(warn_after))
        self.poll = max(0.01, float(poll))
        self._warn = warn or (lambda message: log.warning("%s", message))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._all: List[PendingEvaluation] = []
        self._threads: Dict[int, threading.Thread] = {}

    def submit(self, upload: Upload) -> PendingEvaluation:
        """Starts evaluating `upload` in the background; returns at once."""
        if self._stop.is_set():
            raise RuntimeError("this BackgroundEvaluator is closed")
        pending = PendingEvaluation(upload)
        thread = threading.Thread(
            target=self._follow, args=(pending,), name=f"embedeval-{upload.model}", daemon=True
        )
        with self._lock:
            self._all.append(pending)
            self._threads[id(pending)] = thread
        thread.start()
        return pending

    @property
    def evaluations(self) -> List[PendingEvaluation]:
        """Every checkpoint submitted, in order."""
        with self._lock:
            return list(self._all)

    def pending(self) -> List[PendingEvaluation]:
        """The checkpoints that have not ended yet."""
        return [p for p in self.evaluations if not p.done()]

    def wait(self, timeout: Optional[float] = None) -> List[PendingEvaluation]:
        """Waits at most `timeout` seconds for every checkpoint to end;
        returns those that have not."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for p in self.evaluations:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            p._done.wait(left)
        return self.pending()

    def close(self) -> None:
        """Stops following: each thread ends at its next pause. Evaluations
        the server accepted go on there (detached)."""
        self._stop.set()

    # -- one checkpoint's thread ------------------------------------------------

    def _pause(self, seconds: float) -> bool:
        """Sleeps `seconds` unless closed; False when closed."""
        return not self._stop.wait(seconds)

    def _follow(self, p: PendingEvaluation) -> None:
        u = p.upload
        registered = False
        warned = False
        lost = 0  # times the server did not know the evaluation or model any more
        delay = self.backoff
        while not self._stop.is_set():
            try:
                if not registered:
                    p.state = "registering"
                    info = self.client.register_model(u.model, u.onnx, card=u.card, replace=True)
                    registered = True
                    for w in info.warnings:
                        self._warn(f"embedeval: checkpoint {u.model}: {w}")
                if p.id is None:
                    handle = self.client.evaluate(
                        u.model,
                        u.dataset,
                        spec=u.spec,
                        test_split=u.test_split,
                        train_split=u.train_split,
                        progress=False,
                        detach=True,
                        augmentation=u.augmentation,
                        positives_split=u.positives_split,
                        tags=u.tags or None,
                    )
                    p.id = handle.id
                    p.state = "evaluating"
                report = self.client.get_evaluation(p.id)
                delay = self.backoff
                if report.status in (EvaluationStatus.QUEUED, EvaluationStatus.RUNNING):
                    self._pause(self.poll)
                    continue
                if interrupted(report):
                    p.id = None
                    p.resubmitted += 1
                    continue
                if not report.ok:
                    self._warn(f"embedeval: checkpoint {u.model} (step {u.step}): evaluation {report.id} "
                               f"{report.status.value}: {report.error}")
                else:
                    for path in u.remove_when_done:
                        _remove(path)
                p._finish(report, None)
                return
            except TRANSIENT as e:
                p.failures += 1
                p.state = "waiting for the server"
                if p.failures == self.warn_after and not warned:
                    warned = True
                    self._warn(
                        f"embedeval: checkpoint {u.model} (step {u.step}) not evaluated yet: "
                        f"{e}; trying again "
                        f"every {self.max_backoff:g} s at most, it is evaluated when {self.client.url} answers"
                    )
                if not self._pause(delay):
                    break
                delay = min(self.max_backoff, delay * 2)
            except NotFound as e:
                # At submission: the dataset (or split) is not there. While
                # following: the server came back without the evaluation, so
                # the checkpoint is registered and submitted again (a few
                # times at most).
                if p.id is None or lost >= 3 or not u.onnx.exists():
                    self._fail(p, e)
                    return
                lost += 1
                p.id, registered = None, False
            except EmbedevalError as e:
                self._fail(p, e)
                return
            except Exception as e:  # noqa: BLE001 - a bug or I/O error ends this checkpoint, not the loop
                self._fail(p, e)
                return
        p.state = f"not finished ({p.state} when the evaluator closed)"

    def _fail(self, p: PendingEvaluation, error: BaseException) -> None:
        self._warn(f"embedeval: checkpoint {p.model} (step {p.step}) not evaluated: {type(error).__name__}: {error}")
        p._finish(None, error)


def _remove(path: Path) -> None:
    """Removes a file, or an empty folder; what is not there is fine."""
    try:
        if path.is_dir():
            path.rmdir()
        else:
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("embedeval: %s not removed: %s", path, e)
