"""embedeval.lightning.EmbedevalCallback in a real lightning.Trainer (CPU)
against a release server: a small SimCLR (training/lightning_simclr.py: the
repository's CIFAR ResNet with train_cifar.py's views and InfoNCE loss) trained for three
epochs on a 1,000-image CIFAR-10 subset.

- Three checkpoints are evaluated and recorded as one run; their metrics are
  in the CSVLogger's metrics.csv at the checkpoints' steps, equal to what
  ``embedeval runs show`` prints; the run's checkpoint to keep is logged.
  The training overhead per epoch is measured against the same training
  without the callback, and the export time (all the loop waits for) is
  printed.
- The server is stopped (SIGTERM) during the second epoch and started again
  during the third: training completes, one warning is logged, and every
  checkpoint is evaluated in the end (one cancelled by the shutdown is
  submitted again).

Run by `make test` in tests/lightning/.venv (scripts/bootstrap makes it):

    EMBEDEVAL_BIN=target/release/embedeval tests/lightning/.venv/bin/pytest tests/lightning -q -s
"""
from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import torch
from conftest import DATASET, Cifar, Server
from lightning.pytorch.loggers import CSVLogger
from lightning_simclr import SimCLR
from torch.utils.data import DataLoader, TensorDataset

import embedeval
import lightning as L
from embedeval.lightning import EmbedevalCallback

EPOCHS = 3
BATCH = 125  # 8 steps per epoch: checkpoints at steps 8, 16, 24
STEPS = [8, 16, 24]
# Compared between metrics.csv and the run.
METRICS = ["knn/top1", "uniformity", "alignment", "tolerance", "linear/top1"]


class EpochTimes(L.Callback):
    """Wall seconds of each training epoch (its exports included)."""

    def __init__(self) -> None:
        self.seconds: List[float] = []

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def _loader(cifar: Cifar) -> DataLoader:
    images = torch.from_numpy(cifar.train).permute(0, 3, 1, 2).float().contiguous()
    return DataLoader(TensorDataset(images), batch_size=BATCH, shuffle=True,
                      generator=torch.Generator().manual_seed(0))


def _fit(cifar: Cifar, root: Path, callbacks: List[Any]) -> L.Trainer:
    torch.manual_seed(0)
    trainer = L.Trainer(
        max_epochs=EPOCHS, accelerator="cpu", devices=1, logger=CSVLogger(root, name="simclr"),
        callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(SimCLR(), _loader(cifar))
    assert trainer.state.finished, trainer.state
    return trainer


def _metrics_csv(trainer: L.Trainer) -> Dict[int, Dict[str, float]]:
    """metrics.csv's embedeval/ columns by step (rows of a step merged)."""
    path = Path(trainer.logger.log_dir) / "metrics.csv"
    out: Dict[int, Dict[str, float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            values = {k: float(v) for k, v in row.items() if k.startswith("embedeval/") and v != ""}
            if values:
                out.setdefault(int(row["step"]), {}).update(values)
    return out


def _runs_show(server: Server, run: str) -> Dict[int, Dict[str, Any]]:
    """`embedeval runs show RUN --format json`: each checkpoint's report by step."""
    shown = json.loads(server.cli("runs", "show", run, "--dataset", DATASET, "--format", "json"))
    return {int(c["step"]): c["report"] for c in shown["checkpoints"]}


def _value(row: Dict[str, Any], name: str) -> float:
    value: Any = row
    for part in name.split("/"):
        value = value[part]
    return float(value)


def test_three_epochs_are_three_checkpoints_of_one_run_logged_at_their_steps(
    server: Server, cifar: Cifar, tmp_path: Path
) -> None:
    baseline = EpochTimes()
    _fit(cifar, tmp_path / "baseline", [baseline])

    callback = EmbedevalCallback(server.url, DATASET, preset="cifar10", retry_backoff=0.2, retry_max=2.0)
    timed = EpochTimes()
    trainer = _fit(cifar, tmp_path / "logs", [callback, timed])

    # One run of three checkpoints, each evaluated.
    assert callback.run_name == "simclr-version_0"
    with embedeval.Client(server.url) as client:
        run = client.get_run(callback.run_name, DATASET)
    assert [c.step for c in run.checkpoints] == STEPS
    assert [c.model for c in run.checkpoints] == [f"simclr-version_0-step{s}" for s in STEPS]
    assert all(c.report is not None and c.report.ok for c in run.checkpoints)
    assert [p.step for p in callback.evaluations] == STEPS and all(p.done() for p in callback.evaluations)
    card = run.checkpoints[0].report
    assert card is not None and card.tags["lr"] == "0.001" and card.tags["loss"] == "infonce"
    assert callback.warnings == [], callback.warnings

    # The CSVLogger has each report at its checkpoint's step, equal to
    # `embedeval runs show`'s numbers.
    logged = _metrics_csv(trainer)
    shown = _runs_show(server, callback.run_name)
    assert sorted(shown) == STEPS
    for step in STEPS:
        for name in METRICS:
            assert logged[step][f"embedeval/{name}"] == pytest.approx(_value(shown[step], name), rel=1e-9, abs=1e-12)
        assert logged[step]["embedeval/export_seconds"] > 0
    # The checkpoint to keep, logged at the last step as the step it names.
    keep = callback.checkpoint_to_keep
    assert keep is not None and keep.recommended in {c.model for c in run.checkpoints}
    kept_step = next(c.step for c in run.checkpoints if c.model == keep.recommended)
    assert logged[STEPS[-1]]["embedeval/checkpoint_to_keep"] == kept_step

    # Nothing left behind in the export folder once evaluated.
    assert callback.export_dir is not None and list(callback.export_dir.glob("*.onnx")) == []

    exports = [p.export_seconds for p in callback.evaluations]
    print(
        f"\nLightning overhead ({len(cifar.train)} images, batch {BATCH}, CIFAR ResNet 16-32-64, CPU): "
        f"epoch seconds without the callback {[round(s, 2) for s in baseline.seconds]}, "
        f"with it {[round(s, 2) for s in timed.seconds]} (the server evaluating beside training on the same "
        f"cores); export seconds per checkpoint {[round(s, 3) for s in exports]}"
    )


class Outage(L.Callback):
    """Stops the server at the second epoch's first batch, while the first
    checkpoint is being evaluated, and starts it again at the third epoch's
    third batch, once the callback has warned about the second."""

    def __init__(self, server: Server, callback: EmbedevalCallback) -> None:
        self.server = server
        self.callback = callback
        #: The first checkpoint's evaluation when the server was stopped.
        self.first_id = ""

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.current_epoch == 1 and batch_idx == 0:
            # Once the first checkpoint's evaluation runs (or has ended).
            first = self.callback.evaluations[0]
            deadline = time.monotonic() + 60
            with embedeval.Client(self.server.url) as client:
                while time.monotonic() < deadline:
                    if first.id is not None and client.get_evaluation(first.id).status != \
                            embedeval.EvaluationStatus.QUEUED:
                        break
                    time.sleep(0.01)
            self.first_id = first.id or ""
            self.server.stop()
        if trainer.current_epoch == 2 and batch_idx == 2:
            deadline = time.monotonic() + 60
            while not self.callback.warnings and time.monotonic() < deadline:
                time.sleep(0.1)
            self.server.start()


def test_a_server_stopped_and_started_again_loses_no_checkpoint(
    server: Server, cifar: Cifar, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A longer evaluation (100 k-means restarts) and no grace: the first
    # checkpoint's evaluation is running when the server stops, and is
    # cancelled.
    callback = EmbedevalCallback(server.url, DATASET, preset="cifar10", retry_backoff=0.2, retry_max=1.0,
                                 spec={"kmeans_restarts": 100, "kmeans_iterations": 200})
    server.grace = "0s"  # a job running at the stop is cancelled, not finished
    outage = Outage(server, callback)
    with caplog.at_level(logging.WARNING, logger="embedeval"):
        trainer = _fit(cifar, tmp_path / "logs", [callback, outage])

    # Training completed; the server was started twice.
    assert trainer.current_epoch == EPOCHS and server.starts == 2
    # A warning about the checkpoint exported while the server was down (and
    # one about the first, where the shutdown cancelled it): one each.
    warned = [r.getMessage() for r in caplog.records if r.name == "embedeval"]
    about = [next(f"step{s}" for s in STEPS if f"-step{s} " in w) for w in warned]
    assert "step16" in about and len(set(about)) == len(about), warned
    assert all("evaluated when" in w for w in warned), warned
    # Every checkpoint evaluated in the end, recorded as one run.
    with embedeval.Client(server.url) as client:
        run = client.get_run(callback.run_name, DATASET)
    assert [c.step for c in run.checkpoints] == STEPS
    assert all(c.report is not None and c.report.ok for c in run.checkpoints)
    first, second, _ = callback.evaluations
    assert second.failures >= 3
    # The first checkpoint's evaluation at the stop: cancelled by the
    # shutdown, then submitted again (or, where it finished first, kept).
    with embedeval.Client(server.url) as client:
        at_stop = client.get_evaluation(outage.first_id)
    if at_stop.status == embedeval.EvaluationStatus.CANCELLED:
        assert "shut down" in at_stop.error and first.resubmitted >= 1 and first.id != outage.first_id
    else:
        assert at_stop.ok and first.resubmitted == 0 and first.id == outage.first_id
    print(f"\nthe first checkpoint's evaluation at the server's stop: {at_stop.status.value}"
          f"{' (submitted again)' if first.resubmitted else ''}")
    logged = _metrics_csv(trainer)
    assert all("embedeval/knn/top1" in logged[s] for s in STEPS), sorted(logged)


def test_under_ddp_only_rank_zero_exports_and_submits(server: Server, cifar: Cifar, tmp_path: Path) -> None:
    # Two processes on the CPU (gloo), each with half of every batch. The
    # module goes to them through files in /dev/shm (this machine's kernel
    # refuses the file descriptors torch passes by default).
    torch.multiprocessing.set_sharing_strategy("file_system")
    callback = EmbedevalCallback(server.url, DATASET, preset="cifar10", run="simclr-ddp", keep_exports=True,
                                 export_dir=tmp_path / "exports", spec={"skip_linear": True})
    torch.manual_seed(0)
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", devices=2, strategy="ddp_spawn", logger=CSVLogger(tmp_path, name="ddp"),
        callbacks=[callback], enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(SimCLR(), _loader(cifar))
    # 1,000 images, batches of 125 split over two processes: 4 steps an
    # epoch. Each checkpoint registered and evaluated once (by rank 0 alone).
    with embedeval.Client(server.url) as client:
        run = client.get_run("simclr-ddp", DATASET)
        assert [c.step for c in run.checkpoints] == [4, 8]
        assert all(c.report is not None and c.report.ok for c in run.checkpoints)
        for c in run.checkpoints:
            assert len(client.list_evaluations(model=c.model)) == 1, c.model
    assert sorted(p.name for p in (tmp_path / "exports").glob("*.onnx")) == [
        "simclr-ddp-step4.onnx", "simclr-ddp-step8.onnx"]
