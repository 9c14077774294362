"""A PyTorch Lightning callback that evaluates each checkpoint on an embedeval
server while training goes on.

Needs Lightning (``pip install 'embedeval-client[lightning]'``)::

    from embedeval.lightning import EmbedevalCallback

    trainer = L.Trainer(max_epochs=100, callbacks=[
        EmbedevalCallback("http://evalbox:50051", dataset="cifar10",
                          loss="nt_xent", temperature=0.2, preset="cifar10"),
    ])
    trainer.fit(model, datamodule)

At the end of every `every_n_epochs`-th training epoch (or validation, with
``on="validation"``) the callback exports the encoder to ONNX (a dynamic
batch axis), writes it with its card into the export folder, and hands it to
a background thread (:mod:`embedeval._background`) that registers it as
checkpoint ``<run>-step<N>`` of the run (the logger's name and version; the
step is the trainer's global step) and evaluates it, detached. The training
loop waits only for the export. Reports are logged through the trainer's
loggers (TensorBoard, CSV, W&B, MLflow: Lightning's own ``log_metrics``) at
the checkpoint's step, on the training thread, at the first batch boundary
after they arrive. A server that is down or restarting does not stop
training: each checkpoint is tried again with back-off, warned about once,
and evaluated when the server is back. At the end of fit the callback waits
at most `wait_at_end` seconds for the last reports, logs the run's
"checkpoint to keep" and says what is still running and how to follow it.
Under DDP only global rank 0 exports and submits.

The exported module is, by default, the LightningModule's ``backbone``
followed by its projection head (an attribute named ``projection_head``,
``projector``, ``head`` or ``projection``, as lightly's and solo-learn's
modules name them), with two outputs: ``embedding`` (the head's) and
``features`` (the backbone's, flattened); a module with no such pair is
exported whole. `module` chooses otherwise: an attribute name
(``"encoder"``), a ``torch.nn.Module``, or a callable that takes the
LightningModule and returns the module to export.
"""
from __future__ import annotations

import os
import queue
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _toml
from ._background import BackgroundEvaluator, PendingEvaluation, Upload, log
from .errors import EmbedevalError, NotFound
from .torch import export_onnx

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client, SpecLike
    from .types import AugmentationLike, Recommendation, Run


def _callback_base() -> Any:
    """Lightning's Callback class: the ``lightning`` package's, or the
    standalone ``pytorch_lightning``'s when only it is installed (or only it
    has been imported: a Trainer checks callbacks against its own package)."""
    prefer_pl = "pytorch_lightning" in sys.modules and "lightning" not in sys.modules
    order = ["pytorch_lightning", "lightning.pytorch"] if prefer_pl else ["lightning.pytorch", "pytorch_lightning"]
    for name in order:
        try:
            module = __import__(f"{name}.callbacks", fromlist=["Callback"])
        except ImportError:
            continue
        return module.Callback
    raise ImportError("embedeval.lightning needs PyTorch Lightning: pip install 'embedeval-client[lightning]'")


_Callback = _callback_base()

__all__ = ["EmbedevalCallback"]

#: Attribute names of a projection head, in the order they are looked for.
_HEADS = ("projection_head", "projector", "head", "projection")
#: Hyper-parameter names of the temperature, in the order they are looked for.
_TAUS = ("temperature", "tau", "temp")
#: Card keys the callback sets itself: never taken from hyper-parameters.
_OWN_KEYS = frozenset({"loss", "loss_name", "temperature", "tau", "temp", "run", "step"})
_TAG_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def run_name(name: Any, version: Any) -> str:
    """A logger's name and version as a run name (``lightning_logs`` and 3
    give ``lightning_logs-version_3``), in the characters model names take
    (lower case, ``a-z 0-9 . _ -``)."""
    v = f"version_{version}" if isinstance(version, int) else str(version or "")
    text = "-".join(p for p in (str(name or ""), v) if p) or "run"
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "run"


def _hparams(pl_module: Any) -> Dict[str, Any]:
    """The module's hyper-parameters (``pl_module.hparams``) by their leaves'
    names: nested mappings and namespaces (an argparse or OmegaConf config,
    as solo-learn keeps its ``method_kwargs``) are looked into, two levels
    deep; where a name repeats, the shallower one wins."""
    out: Dict[str, Any] = {}
    levels: List[Any] = [getattr(pl_module, "hparams", None) or {}]
    for _ in range(3):
        nested: List[Any] = []
        for value in levels:
            items = value.items() if isinstance(value, Mapping) else vars(value).items()
            for k, v in items:
                if isinstance(v, Mapping) or type(v).__name__ in ("Namespace", "SimpleNamespace"):
                    nested.append(v)
                else:
                    out.setdefault(str(k), v)
        levels = nested
    return out


def _first_images(batch: Any) -> Any:
    """The first floating-point 4-D tensor in a batch (a tensor, or nested
    tuples, lists and dicts of them): the encoder's input."""
    if hasattr(batch, "dim") and hasattr(batch, "is_floating_point"):
        return batch if batch.dim() == 4 and batch.is_floating_point() else None
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for item in batch:
            found = _first_images(item)
            if found is not None:
                return found
    return None


def _wrapper(backbone: Any, head: Any) -> Any:
    """A module returning (head(f), f), f the backbone's flattened output."""
    import torch

    class BackboneAndHead(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone
            self.head = head

        def forward(self, x: Any) -> Any:
            features = self.backbone(x)
            if features.dim() > 2:
                features = torch.flatten(features, 1)
            return self.head(features), features

    out = BackboneAndHead()
    out.train(bool(getattr(backbone, "training", False)))
    return out


class EmbedevalCallback(_Callback):  # type: ignore[misc,valid-type]
    """Evaluates each checkpoint on an embedeval server while training goes
    on (see the module's documentation).

    Args:
        server: the server's URL (``"http://host:50051"``) or an
            :class:`embedeval.Client`; `token` and `ca_cert` as for the client.
        dataset: the dataset to evaluate on (the server must have it).
        every_n_epochs: evaluate every n-th epoch (the last epoch too, with
            `evaluate_last`).
        on: ``"train_epoch_end"`` or ``"validation"`` (after each validation
            that ends an n-th epoch).
        module: what to export (see the module's documentation).
        example_input: one input batch for the export; by default a batch of
            zeros shaped like the first training batch's images, or like
            `input_shape` (C, H, W).
        loss, loss_name, temperature: the training loss and tau for the
            cards; by default the module's hyper-parameters ``loss`` and
            ``temperature`` (or ``tau``).
        preset, card: the card's ``[input] preset`` and a card to start from
            (path or TOML text), as for :meth:`Client.register_model`.
        tags: tags of every checkpoint; with `hparams_as_tags` the module's
            scalar hyper-parameters are tags too (what `tags` says wins).
        spec, test_split, train_split, augmentation, positives_split: as for
            :meth:`Client.evaluate`.
        run: the run's name (default: the logger's name and version).
        export_dir: where exports are written (default
            ``<trainer.log_dir>/embedeval``); a checkpoint not evaluated by
            the end stays there as ``<run>-step<N>.onnx`` with its side-car
            card, for ``embedeval watch``.
        keep_exports: keep each ONNX file once evaluated.
        log_prefix: put before every logged name.
        wait_at_end: seconds ``on_fit_end`` waits for the last reports.
        retry_backoff, retry_max: the first and the longest pause between
            tries when the server does not answer.

    After fit, :attr:`evaluations` holds every checkpoint
    (:class:`~embedeval._background.PendingEvaluation`, with its report),
    :attr:`run` the run as the server has it and :attr:`checkpoint_to_keep`
    its recommendation.
    """

    def __init__(
        self,
        server: Union[str, Client],
        dataset: str,
        every_n_epochs: int = 1,
        *,
        on: str = "train_epoch_end",
        module: Union[None, str, Any, Callable[[Any], Any]] = None,
        example_input: Any = None,
        input_shape: Optional[Sequence[int]] = None,
        loss: Optional[str] = None,
        loss_name: Optional[str] = None,
        temperature: Optional[float] = None,
        preset: Optional[str] = None,
        card: Optional[Union[str, os.PathLike[str]]] = None,
        tags: Optional[Mapping[str, Any]] = None,
        hparams_as_tags: bool = True,
        spec: SpecLike = None,
        test_split: str = "",
        train_split: str = "",
        augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None,
        run: Optional[str] = None,
        export_dir: Optional[Union[str, os.PathLike[str]]] = None,
        keep_exports: bool = False,
        evaluate_last: bool = True,
        log_prefix: str = "embedeval/",
        wait_at_end: float = 300.0,
        token: Optional[str] = None,
        ca_cert: Optional[Union[str, os.PathLike[str], bytes]] = None,
        retry_backoff: float = 1.0,
        retry_max: float = 30.0,
    ) -> None:
        super().__init__()
        if on not in ("train_epoch_end", "validation"):
            raise ValueError(f"on must be 'train_epoch_end' or 'validation', got {on!r}")
        if int(every_n_epochs) < 1:
            raise ValueError(f"every_n_epochs must be at least 1, got {every_n_epochs!r}")
        if not dataset:
            raise ValueError("EmbedevalCallback needs the dataset to evaluate on")
        if run is not None:
            from .client._connection import _check_name

            _check_name(f"{run}-step0", "run")
        self.server = server
        self.dataset = dataset
        self.every_n_epochs = int(every_n_epochs)
        self.on = on
        self.module = module
        self.example_input = example_input
        self.input_shape = tuple(int(v) for v in input_shape) if input_shape is not None else None
        self.loss, self.loss_name, self.temperature = loss, loss_name, temperature
        self.preset, self.card = preset, card
        self.tags = dict(_toml.check_tags(tags))
        self.hparams_as_tags = hparams_as_tags
        self.spec, self.test_split, self.train_split = spec, test_split, train_split
        self.augmentation, self.positives_split = augmentation, positives_split
        self.run_name = run
        self.export_dir = Path(export_dir) if export_dir is not None else None
        self.keep_exports = keep_exports
        self.evaluate_last = evaluate_last
        self.log_prefix = log_prefix
        self.wait_at_end = float(wait_at_end)
        self._token, self._ca_cert = token, ca_cert
        self._backoff, self._backoff_max = float(retry_backoff), float(retry_max)
        self._client: Optional[Client] = None
        self._own_client = False
        self._evaluator: Optional[BackgroundEvaluator] = None
        self._arrived: Optional[queue.Queue[PendingEvaluation]] = None
        self._image_shape: Optional[Tuple[int, ...]] = None
        self._exported_steps: List[int] = []
        self._warned: List[str] = []
        #: Every checkpoint handed to the server, in order.
        self.evaluations: List[PendingEvaluation] = []
        #: The run as the server has it after fit (``None`` before, or when
        #: the server did not answer).
        self.run: Optional[Run] = None
        #: The run's checkpoint to keep after fit (``None`` before one with
        #: uniformity and tolerance is evaluated).
        self.checkpoint_to_keep: Optional[Recommendation] = None

    # -- set-up -------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        self._warned.append(message)
        log.warning("%s", message)

    @property
    def warnings(self) -> List[str]:
        """The warnings given so far (also sent to the ``embedeval`` logger)."""
        return list(self._warned)

    def setup(self, trainer: Any, pl_module: Any, stage: Optional[str] = None) -> None:
        if stage not in (None, "fit") or not trainer.is_global_zero or self._evaluator is not None:
            return
        from .client import Client

        if isinstance(self.server, str):
            self._client = Client(self.server, token=self._token, ca_cert=self._ca_cert)
            self._own_client = True
        else:
            self._client = self.server
        if self.run_name is None:
            logger = trainer.logger
            self.run_name = run_name(getattr(logger, "name", None) or "lightning", getattr(logger, "version", None))
        if self.export_dir is None:
            self.export_dir = Path(trainer.log_dir or trainer.default_root_dir) / "embedeval"
        self._card_for(pl_module, 0)  # a card that cannot be built fails now, not at the first epoch's end
        try:
            self._client.get_dataset(self.dataset)
        except NotFound:
            raise
        except EmbedevalError as e:
            self._warn(f"embedeval: {self._client.url} did not answer ({e}); training goes on, and the "
                       "checkpoints are evaluated when it does")
        self._arrived = queue.Queue()
        self._evaluator = BackgroundEvaluator(
            self._client, backoff=self._backoff, max_backoff=self._backoff_max, warn=self._warn
        )

    def _card_for(self, pl_module: Any, step: int) -> str:
        """The card of the checkpoint at `step`: the arguments over `card`,
        the loss and tau from the hyper-parameters where not given."""
        hp = _hparams(pl_module)
        loss = self.loss if self.loss is not None else hp.get("loss")
        if not isinstance(loss, str) or not loss:
            raise ValueError(
                "EmbedevalCallback needs the training loss: loss='nt_xent' (infonce, hard_infonce, nt_xent, "
                "simple, hard_simple, or 'other' with loss_name=), or a 'loss' hyper-parameter"
            )
        temperature = self.temperature
        if temperature is None:
            temperature = next((float(hp[k]) for k in _TAUS if isinstance(hp.get(k), (int, float))), None)
        tags: Dict[str, Any] = {}
        if self.hparams_as_tags:
            for k, v in hp.items():
                if k not in _OWN_KEYS and _TAG_KEY.fullmatch(k) and isinstance(v, (str, int, float, bool)):
                    text = _toml.tag_text(v)
                    if 0 < len(text) <= _toml.MAX_TAG_VALUE:
                        tags[k] = v
        tags.update(self.tags)
        if len(tags) > _toml.MAX_TAGS:  # the given tags first, then hyper-parameters in order
            keep = list(self.tags) + [k for k in tags if k not in self.tags]
            tags = {k: tags[k] for k in keep[: _toml.MAX_TAGS]}
        return _toml.build_card(
            self.card,
            loss=loss,
            loss_name=self.loss_name,
            temperature=temperature,
            preset=self.preset,
            run=self.run_name,
            step=step,
            tags=tags,
        )

    # -- the hooks ----------------------------------------------------------------

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self._image_shape is None and self._evaluator is not None:
            images = _first_images(batch)
            if images is not None:
                self._image_shape = tuple(images.shape[1:])

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._arrived is not None and not self._arrived.empty():
            self._log_arrived(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.on == "train_epoch_end" and self._due(trainer):
            self._checkpoint(trainer, pl_module)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self.on == "validation" and not trainer.sanity_checking and self._due(trainer):
            self._checkpoint(trainer, pl_module)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.evaluate_last and self._evaluator is not None and trainer.global_step not in self._exported_steps:
            self._checkpoint(trainer, pl_module)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._finish(trainer)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self._evaluator is not None:
            self._evaluator.close()

    def _due(self, trainer: Any) -> bool:
        return self._evaluator is not None and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    # -- one checkpoint -------------------------------------------------------------

    def _target(self, pl_module: Any) -> Any:
        import torch

        m = self.module
        if m is None:
            backbone = getattr(pl_module, "backbone", None)
            head = next((getattr(pl_module, n) for n in _HEADS
                         if isinstance(getattr(pl_module, n, None), torch.nn.Module)), None)
            if isinstance(backbone, torch.nn.Module) and head is not None:
                return _wrapper(backbone, head)
            return pl_module
        if isinstance(m, str):
            target = pl_module
            for part in m.split("."):
                target = getattr(target, part)
            return target
        if isinstance(m, torch.nn.Module):
            return m
        return m(pl_module)

    def _example(self, target: Any) -> Any:
        import torch

        if self.example_input is not None:
            return self.example_input
        shape = self.input_shape or self._image_shape
        if shape is None:
            raise ValueError("EmbedevalCallback: no training batch was seen to shape the export's input: "
                             "give input_shape=(C, H, W) or example_input=")
        param = next(iter(target.parameters()), None)
        device = param.device if param is not None else "cpu"
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        return torch.zeros((1, *shape), device=device, dtype=dtype)

    def _checkpoint(self, trainer: Any, pl_module: Any) -> None:
        """Exports the module at the current step and hands it over."""
        assert self._evaluator is not None and self._arrived is not None
        assert self.export_dir is not None and self.run_name is not None
        step = int(trainer.global_step)
        if step in self._exported_steps:
            return
        self._exported_steps.append(step)
        model = f"{self.run_name}-step{step}"
        start = time.perf_counter()
        card = self._card_for(pl_module, step)
        target = self._target(pl_module)
        self.export_dir.mkdir(parents=True, exist_ok=True)
        onnx_path = self.export_dir / f"{model}.onnx"
        partial = self.export_dir / f".{model}.onnx.part"
        export_onnx(target, self._example(target), partial)
        os.replace(partial, onnx_path)  # complete when visible (for `embedeval watch`)
        side = self.export_dir / f".{model}.toml.part"
        side.write_text(card, encoding="utf-8")
        os.replace(side, self.export_dir / f"{model}.toml")
        seconds = time.perf_counter() - start
        upload = Upload(
            model=model, onnx=onnx_path, card=card, dataset=self.dataset, step=step,
            spec=self.spec, test_split=self.test_split, train_split=self.train_split,
            augmentation=self.augmentation, positives_split=self.positives_split,
            remove_when_done=() if self.keep_exports else (onnx_path, self.export_dir / f"{model}.toml"),
            export_seconds=seconds,
        )
        pending = self._evaluator.submit(upload)
        self.evaluations.append(pending)
        pending.add_done_callback(self._arrived.put)
        self._log(trainer, {"export_seconds": seconds}, step)

    # -- logging --------------------------------------------------------------------

    def _log(self, trainer: Any, metrics: Mapping[str, float], step: int) -> None:
        from .trackers._flatten import _prefix

        prefix = _prefix(self.log_prefix) if self.log_prefix else ""
        named = {prefix + k: float(v) for k, v in metrics.items()}
        for logger in trainer.loggers:
            logger.log_metrics(named, step=step)
            logger.save()

    def _log_arrived(self, trainer: Any) -> None:
        from .trackers._flatten import report_scalars

        if self._arrived is None:
            return
        while True:
            try:
                pending = self._arrived.get_nowait()
            except queue.Empty:
                return
            if pending.exception() is not None or pending.step is None:
                continue
            report = pending.result()
            if report.ok:
                self._log(trainer, report_scalars(report, per_class=False), pending.step)

    def _finish(self, trainer: Any) -> None:
        """Waits for the last reports, logs them and the checkpoint to keep,
        and says what is left."""
        if self._evaluator is None:
            return
        evaluator, self._evaluator = self._evaluator, None
        deadline = time.monotonic() + self.wait_at_end
        while evaluator.pending() and time.monotonic() < deadline:
            evaluator.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            self._log_arrived(trainer)
        self._log_arrived(trainer)
        left = evaluator.pending()
        evaluator.close()
        assert self._client is not None and self.run_name is not None
        try:
            self.run = self._client.get_run(self.run_name, self.dataset)
        except EmbedevalError as e:
            self._warn(f"embedeval: run {self.run_name} not read back: {e}")
        if self.run is not None and self.run.checkpoint_to_keep is not None:
            keep = self.run.checkpoint_to_keep
            self.checkpoint_to_keep = keep
            step = next((c.step for c in self.run.checkpoints if c.model == keep.recommended), None)
            if step is not None:
                self._log(trainer, {"checkpoint_to_keep": step}, int(trainer.global_step))
                print(f"embedeval: run {self.run_name}: keep {keep.recommended} (step {step}): {keep.reason}",
                      file=sys.stderr)
        if left:
            self._warn(self._left_message(left))
        if self._own_client:
            self._client.close()

    def _left_message(self, left: List[PendingEvaluation]) -> str:
        assert self._client is not None
        url = self._client.url
        lines = [f"embedeval: {len(left)} checkpoint(s) of run {self.run_name} not evaluated after "
                 f"{self.wait_at_end:g} s:"]
        for p in left:
            where = (f"evaluation {p.id} still running on the server" if p.id is not None
                     else f"not yet taken by the server; kept at {p.upload.onnx}")
            lines.append(f"  {p.model} (step {p.step}): {where}")
        lines.append(f"follow them with: embedeval runs show {self.run_name} --dataset {self.dataset} --server {url}")
        if any(p.id is None for p in left):
            lines.append(f"evaluate those not taken with: embedeval watch {self.export_dir} --run {self.run_name} "
                         f"--dataset {self.dataset} --once --server {url}")
        return "\n".join(lines)
