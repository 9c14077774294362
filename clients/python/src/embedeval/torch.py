"""Evaluating a PyTorch module: export it to ONNX, register it, evaluate it.

Needs torch (``pip install 'embedeval-client[torch]'``), imported only when
these functions are called::

    from embedeval.torch import evaluate_module

    for epoch in range(epochs):
        train_one_epoch(model)
        report = evaluate_module(client, model, torch.zeros(1, 1, 8, 8),
                                 name="my-simclr", loss="infonce", temperature=0.2,
                                 dataset="digits", card=CARD,
                                 step=epoch, log_to=wandb.run)   # or "tensorboard:runs/x", "mlflow:..."
        print(epoch, report.uniformity, report.tolerance, report.knn.top1)
"""
from __future__ import annotations

import inspect
import os
import tempfile
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Sequence, Union

if TYPE_CHECKING:  # pragma: no cover
    from ._background import BackgroundEvaluator, PendingEvaluation
    from .client import Client, SpecLike
    from .types import AugmentationLike, EvaluationReport

__all__ = ["export_onnx", "evaluate_module", "evaluate_module_async"]

#: Output names given to a module's outputs when the caller names none: one
#: output is the embedding; of two, the first is the embedding and the second
#: the backbone features (the names the server recognises without a card).
_DEFAULT_OUTPUTS = {1: ["embedding"], 2: ["embedding", "features"]}


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("embedeval.torch needs PyTorch: pip install 'embedeval-client[torch]'") from e
    return torch


def export_onnx(
    module: Any,
    example_input: Any,
    path: Union[str, os.PathLike[str]],
    *,
    input_name: str = "images",
    output_names: Optional[Sequence[str]] = None,
    opset: int = 17,
) -> Path:
    """Exports `module` to ONNX at `path` (opset 17, the batch axis dynamic).

    Args:
        module: a ``torch.nn.Module`` returning one tensor (the embedding)
            or a tuple (embedding, features[, ...]).
        example_input: one input batch (e.g. ``torch.zeros(1, 3, 32, 32)``),
            on the module's device.
        input_name: the graph input's name.
        output_names: the outputs' names; default ``["embedding"]`` or
            ``["embedding", "features"]``.
        opset: the ONNX opset.

    The module is put in eval mode for the export and back in the mode it
    was in afterwards.
    """
    torch = _torch()
    path = Path(path)
    was_training = bool(getattr(module, "training", False))
    module.eval()
    try:
        with torch.no_grad():
            outputs = module(example_input)
        count = 1 if isinstance(outputs, torch.Tensor) else len(outputs)
        if output_names is None:
            if count not in _DEFAULT_OUTPUTS:
                raise ValueError(f"the module returns {count} outputs: name them with output_names=")
            names = list(_DEFAULT_OUTPUTS[count])
        else:
            names = list(output_names)
            if len(names) != count:
                raise ValueError(f"the module returns {count} outputs but output_names has {len(names)}")
        dynamic_axes = {input_name: {0: "batch"}}
        dynamic_axes.update({name: {0: "batch"} for name in names})
        kwargs = dict(
            export_params=True,
            opset_version=opset,
            do_constant_folding=True,
            input_names=[input_name],
            output_names=names,
            dynamic_axes=dynamic_axes,
        )
        # The TorchScript exporter: dynamic_axes as they are, and no
        # onnxscript needed (newer torch defaults to the dynamo exporter).
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kwargs["dynamo"] = False
        with warnings.catch_warnings():
            # The TorchScript exporter is chosen on purpose (see above).
            warnings.filterwarnings("ignore", ".*legacy TorchScript-based ONNX export", DeprecationWarning)
            warnings.filterwarnings("ignore", message="The feature will be removed")
            torch.onnx.export(module, (example_input,), str(path), **kwargs)
    finally:
        module.train(was_training)
    return path


def evaluate_module(
    client: Client,
    module: Any,
    example_input: Any,
    *,
    name: str,
    loss: str,
    temperature: Optional[float] = None,
    dataset: str,
    preset: Optional[str] = None,
    card: Optional[Union[str, os.PathLike[str]]] = None,
    spec: SpecLike = None,
    test_split: str = "",
    train_split: str = "",
    input_name: str = "images",
    output_names: Optional[Sequence[str]] = None,
    opset: int = 17,
    progress: bool = False,
    run: Optional[str] = None,
    step: Optional[int] = None,
    loss_name: Optional[str] = None,
    augmentation: Optional[AugmentationLike] = None,
    positives_split: Optional[str] = None,
    tags: Optional[Mapping[str, Any]] = None,
    log_to: Any = None,
    log_figures: Sequence[str] = (),
    log_prefix: str = "",
) -> EvaluationReport:
    """Exports `module` to ONNX (see :func:`export_onnx`), registers it as
    model `name` (``replace=True``: each call swaps the previous checkpoint
    in) and evaluates it on `dataset`.

    Args:
        client: an :class:`embedeval.Client`.
        module, example_input: as in :func:`export_onnx`.
        name: the registry name of the model.
        loss, temperature: the training loss and tau, for the model card.
        loss_name: the name of a loss of your own, with ``loss="other"``
            (see :meth:`Client.register_model`).
        dataset: the dataset to evaluate on.
        preset: the input preprocessing preset ("imagenet", "cifar10",
            "cifar100", "none": pixels / 255).
        card: a model.toml (path or text) for what the flags do not say,
            e.g. ``[input] scale = 0.0625`` for pixels of 0..16.
        spec, test_split, train_split, progress, augmentation,
            positives_split: as in :meth:`Client.evaluate` (`augmentation`:
            a recipe name such as ``"none"``, an
            :class:`~embedeval.types.Augmentation` or a dict of its fields).
        run, step: the training run this module is a checkpoint of and its
            step in it (``[training] run`` and ``step`` of the card), so that
            :meth:`Client.get_run` follows the run. Give each checkpoint its
            own `name` (``f"{run}-{step}"``, say) to keep them all: under one
            name each call replaces the last.
        tags: the model's tags, set in its card as
            :meth:`Client.register_model` sets them (a ``[training]`` key
            the card has, e.g. ``{"seed": 1}``, else a ``[tags]`` key); its
            reports carry them in ``report.tags``.
        log_to: where to log the report (see :mod:`embedeval.trackers`): a
            W&B run or ``"wandb"``, ``"tensorboard:<dir>"`` or a
            SummaryWriter, an MLflow run, ``"mlflow"`` or
            ``"mlflow:<tracking URI>"``, or a list of them. Its scalars
            are logged at `step` (without one: one step after the last), so
            a loop calling this once per epoch with ``step=epoch`` gives
            one point per epoch of every metric.
        log_figures: figure kinds to draw (PNG, ``client.render_figure``)
            and log with the report, e.g. ``("negatives", "penalty")``; a
            figure the report cannot give is warned about and left out.
        log_prefix: put before every logged name (``"digits"`` gives
            ``digits/knn/top1``).

    Returns:
        the :class:`~embedeval.types.EvaluationReport`.
    """
    trackers = _trackers(log_to)
    if isinstance(log_figures, str):
        log_figures = [log_figures]
    if log_figures:
        if log_to is None:
            raise ValueError("log_figures= needs log_to= (where to log them)")
        from .client import figure_request

        for kind in log_figures:  # a misspelt kind fails before the export, not after the evaluation
            figure_request("", kind, "png")
    with tempfile.TemporaryDirectory(prefix="embedeval-torch-") as tmp:
        onnx_path = export_onnx(
            module,
            example_input,
            Path(tmp) / "model.onnx",
            input_name=input_name,
            output_names=output_names,
            opset=opset,
        )
        client.register_model(
            name,
            onnx_path,
            loss=loss,
            loss_name=loss_name,
            temperature=temperature,
            preset=preset,
            card=card,
            replace=True,
            run=run,
            step=step,
            tags=tags,
        )
    report = client.evaluate(
        name,
        dataset,
        spec=spec,
        test_split=test_split,
        train_split=train_split,
        progress=progress,
        augmentation=augmentation,
        positives_split=positives_split,
    )
    if trackers is not None:
        _log(client, report, trackers, step=step, kinds=log_figures, prefix=log_prefix)
    return report


def _log(client: Client, report: EvaluationReport, to: Any, *, step: Optional[int],
         kinds: Sequence[str], prefix: str) -> None:
    """Logs `report` to `to` at `step` with the figures `kinds` drawn as PNG."""
    from .errors import EmbedevalError
    from .trackers import log_report

    figures = {}
    for kind in kinds:
        if not report.ok:
            break
        try:
            figures[kind] = client.render_figure(report.id, kind, format="png")
        except EmbedevalError as e:
            warnings.warn(f"figure {kind!r} of evaluation {report.id} not logged: {e}", stacklevel=3)
    log_report(report, to, step=step, figures=figures, prefix=prefix)


def _trackers(log_to: Any) -> Optional[List[Any]]:
    """The trackers of `log_to` (``None``: none); a target that cannot be
    logged to fails here, before any export."""
    if log_to is None:
        return None
    from .trackers import tracker

    return [tracker(t) for t in (log_to if isinstance(log_to, (list, tuple)) else [log_to])]


#: One background evaluator per client (see :func:`evaluate_module_async`).
_EVALUATORS: weakref.WeakKeyDictionary[Any, BackgroundEvaluator] = weakref.WeakKeyDictionary()
_EVALUATORS_LOCK = threading.Lock()


def _evaluator(client: Client) -> BackgroundEvaluator:
    from ._background import BackgroundEvaluator

    with _EVALUATORS_LOCK:
        evaluator = _EVALUATORS.get(client)
        if evaluator is None:
            evaluator = _EVALUATORS[client] = BackgroundEvaluator(client)
        return evaluator


def evaluate_module_async(
    client: Client,
    module: Any,
    example_input: Any,
    *,
    name: str,
    loss: str,
    temperature: Optional[float] = None,
    dataset: str,
    preset: Optional[str] = None,
    card: Optional[Union[str, os.PathLike[str]]] = None,
    spec: SpecLike = None,
    test_split: str = "",
    train_split: str = "",
    input_name: str = "images",
    output_names: Optional[Sequence[str]] = None,
    opset: int = 17,
    run: Optional[str] = None,
    step: Optional[int] = None,
    loss_name: Optional[str] = None,
    augmentation: Optional[AugmentationLike] = None,
    positives_split: Optional[str] = None,
    tags: Optional[Mapping[str, Any]] = None,
    log_to: Any = None,
    log_prefix: str = "",
    export_dir: Optional[Union[str, os.PathLike[str]]] = None,
) -> PendingEvaluation:
    """:func:`evaluate_module` without waiting: exports `module` (the only
    part the caller waits for), then registers and evaluates it on a
    background thread and returns at once with a
    :class:`~embedeval._background.PendingEvaluation` (``.done()``,
    ``.result(timeout)``, ``.add_done_callback(fn)``)::

        pending = []
        for epoch in range(epochs):
            train_one_epoch(model)
            pending.append(evaluate_module_async(client, model, x0, name=f"r-{epoch}", run="r", step=epoch,
                                                 loss="infonce", temperature=0.2, dataset="cifar10",
                                                 log_to="tensorboard:runs/r"))
        reports = [p.result(timeout=600) for p in pending]

    The server being down or restarting does not lose the checkpoint: it is
    tried again with back-off (one warning on the ``embedeval`` logger) and
    evaluated when the server is back (see :mod:`embedeval._background`). A
    card that cannot be built raises here, before the export.

    Args:
        export_dir: where the ONNX file is written and kept (default: a
            temporary folder, removed once the evaluation has completed).
        log_to, log_prefix: as for :func:`evaluate_module`; the report is
            logged from the background thread when it arrives (figures are
            not drawn: call :func:`evaluate_module` for those).
        The rest: as for :func:`evaluate_module`. Give each checkpoint its
        own `name`.
    """
    from . import _toml
    from ._background import Upload

    trackers = _trackers(log_to)
    card_text = _toml.build_card(
        card, loss=loss, loss_name=loss_name, temperature=temperature, preset=preset, run=run, step=step, tags=tags
    )
    from .client._connection import _check_name

    _check_name(name, "model")
    folder = Path(export_dir) if export_dir is not None else Path(tempfile.mkdtemp(prefix="embedeval-torch-"))
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    onnx_path = export_onnx(
        module, example_input, folder / f"{name}.onnx", input_name=input_name, output_names=output_names, opset=opset
    )
    upload = Upload(
        model=name,
        onnx=onnx_path,
        card=card_text,
        dataset=dataset,
        step=step,
        spec=spec,
        test_split=test_split,
        train_split=train_split,
        augmentation=augmentation,
        positives_split=positives_split,
        remove_when_done=() if export_dir is not None else (onnx_path, folder),
        export_seconds=time.perf_counter() - start,
    )
    pending = _evaluator(client).submit(upload)
    if trackers is not None:

        def log(p: PendingEvaluation) -> None:
            if p.exception() is None:
                _log(client, p.result(), trackers, step=step, kinds=(), prefix=log_prefix)

        pending.add_done_callback(log)
    return pending
